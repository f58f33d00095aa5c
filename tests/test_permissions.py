"""`c7n-unused-keys permissions` prints the IAM policy document the policies need."""
import json

import pytest

from conftest import ROOT, run_command

# The shipped policies list users with their tags (source: authorization-details).
KEYS = {'iam:ListUsers', 'iam:GetAccountAuthorizationDetails', 'iam:ListAccessKeys',
        'iam:GetAccessKeyLastUsed', 'iam:GenerateCredentialReport', 'iam:GetCredentialReport'}
REPORT = KEYS
# GetUser: the action reads a marker back after a TagUser whose answer was lost.
RETIRE = KEYS | {'iam:GetUser', 'iam:UpdateAccessKey', 'iam:DeleteAccessKey', 'iam:TagUser',
                 'iam:UntagUser'}
# The CIS 1.12 policies add the password calls, and only they.
PASSWORDS = {'iam:GetLoginProfile', 'iam:GetUser', 'iam:DeleteLoginProfile'}


def permissions(*paths):
    run = run_command(['c7n-unused-keys', 'permissions'] + list(paths), None)
    return run, (json.loads(run.stdout) if run.returncode == 0 else None)


def actions(doc):
    [statement] = doc['Statement']
    assert statement['Effect'] == 'Allow' and statement['Resource'] == '*'
    return set(statement['Action'])


def test_default_path_is_the_policies_folder():
    run, doc = permissions()
    assert run.returncode == 0, run.stderr
    assert doc['Version'] == '2012-10-17' and actions(doc) == RETIRE | REPORT | PASSWORDS


def test_passwords_add_their_calls_only_where_a_policy_uses_them():
    _, report = permissions(str(ROOT / 'policies' / 'unused-credentials-cis-report.yml'))
    assert actions(report) == REPORT | {'iam:GetLoginProfile', 'iam:GetUser'}
    _, retire = permissions(str(ROOT / 'policies' / 'unused-credentials-cis-retire.yml'))
    assert actions(retire) == RETIRE | PASSWORDS


def test_a_filter_nested_in_or_is_counted():
    """c7n's Policy.get_permissions would miss the report calls of the retire policy."""
    _, doc = permissions(str(ROOT / 'policies' / 'unused-access-keys-retire.yml'))
    assert actions(doc) == RETIRE


def test_report_policy_alone():
    _, doc = permissions(str(ROOT / 'policies' / 'unused-access-keys-report.yml'))
    assert actions(doc) == REPORT


def test_the_lambda_policies_need_what_the_pull_policies_need():
    """The function's role: this document, plus its logs and its S3 output (docs/lambda.md)."""
    run, doc = permissions(str(ROOT / 'lambda'))
    assert run.returncode == 0, run.stderr
    assert actions(doc) == RETIRE | REPORT | PASSWORDS


def test_notify_adds_its_transport():
    # The retire policy with notify, and the key-level notice (the report's filter, which
    # reads the tags of unused keys' owners).
    _, doc = permissions(str(ROOT / 'mailer'))
    assert actions(doc) == RETIRE | REPORT | {'iam:ListUserTags', 'sqs:SendMessage'}


def test_no_policy_files_is_an_error(tmp_path):
    run, _ = permissions(str(tmp_path))
    assert run.returncode == 1 and 'no policy files' in run.stderr


# -- Cloud Custodian's own permission lint, on the plugin's elements -------------------------
# c7n's tests/test_policy.py::PolicyMetaLint::test_resource_permissions builds every filter
# and action of every resource with empty data on a bare manager and fails when one
# declares no permissions; its tests/test_iamgen.py fails when a permission is not a real
# IAM action. Teams run both in CI with plugins installed.
PLUGIN = 'c7n_unused_keys'


def _lint_manager(resource_type, cls, **data):
    from c7n.config import Bag, Config
    from c7n.ctx import ExecutionContext
    policy = Bag(dict({'name': 'permcheck', 'resource': resource_type,
                       'provider_name': 'aws'}, **data))
    return cls(ExecutionContext(None, policy, Config.empty()), policy)


def plugin_elements():
    """(qualified name, manager, element class) for each filter, action and source that
    the plugin registers, found by module on every AWS resource."""
    import c7n_unused_keys.register  # noqa: F401
    from c7n.provider import clouds
    from c7n.query import sources
    from c7n.resources import load_resources
    load_resources(('aws.*',))
    found = []
    for name, cls in sorted(clouds['aws'].resources.items()):
        for kind, registry in (('filters', cls.filter_registry),
                               ('actions', cls.action_registry)):
            for n, element in registry.items():
                if element.__module__.startswith(PLUGIN):
                    found.append(('%s.%s.%s' % (name, kind, n), name, cls, element))
        # Resources that map no source of their own list the shared registry, where the
        # plugin's sources refuse them (user_source._UsersOnly); iam-user maps them.
        mapping = getattr(cls, 'source_mapping', None)
        if not isinstance(mapping, dict):
            continue
        for n, source in mapping.items():
            if source.__module__.startswith(PLUGIN):
                found.append(('%s.source.%s' % (name, n), name, cls, n))
    assert {n for _, _, _, n in found if isinstance(n, str)} == \
        {n for n, s in sources.items() if s.__module__.startswith(PLUGIN)}
    return found


def permissions_of(resource_type, cls, element):
    if isinstance(element, str):   # a source: the manager's permissions under it
        return _lint_manager(resource_type, cls, source=element).get_permissions()
    return element({}, _lint_manager(resource_type, cls)).get_permissions()


def iam_actions(service):
    import botocore.session
    try:
        model = botocore.session.get_session().get_service_model(service)
    except Exception:   # no such service: no action of it is real
        return set()
    return set(model.operation_names)


ELEMENTS = plugin_elements()


def test_the_plugin_registers_what_the_lint_walks():
    assert {q for q, *_ in ELEMENTS} == {
        'iam-user.filters.unused-access-keys', 'iam-user.filters.marked-access-keys',
        'iam-user.filters.unused-passwords', 'iam-user.filters.marked-passwords',
        'iam-user.filters.dormant-users',
        'iam-user.actions.retire-passwords', 'iam-user.actions.retire-access-keys',
        'iam-user.source.describe-parallel',
        'iam-user.source.list-users', 'iam-user.source.authorization-details',
        'iam-access-key.filters.unused-access-keys',
        'iam-access-key.filters.active-finding', 'iam-access-key.actions.post-unused-key-finding',
        'account.actions.resolve-access-key-findings',
        'iam-access-key.filters.marked-access-keys', 'iam-access-key.actions.retire-access-keys',
        'iam-user.actions.notify-unused-keys', 'iam-access-key.actions.notify-unused-keys'}


@pytest.mark.parametrize('qualified,resource_type,cls,element', ELEMENTS,
                         ids=[e[0] for e in ELEMENTS])
def test_each_element_declares_real_iam_actions(qualified, resource_type, cls, element):
    perms = permissions_of(resource_type, cls, element)
    assert isinstance(perms, (list, tuple, set)) and perms, 'Missing permissions on ' + qualified
    invalid = [p for p in perms if ':' not in p
               or p.split(':', 1)[1] not in iam_actions(p.split(':', 1)[0])]
    assert not invalid, (qualified, invalid)


def test_the_lint_catches_a_made_up_action():
    """The name check is not vacuous: a misspelt action is not an IAM operation."""
    assert 'ListAccessKeys' in iam_actions('iam')
    assert 'ListAccessKey' not in iam_actions('iam') and not iam_actions('nosuchservice')
