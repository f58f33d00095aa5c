"""Bad options of every element are refused, naming the field.

`custodian validate` (and `custodian run`) check the policy against c7n's jsonschema, then
call each element's validate(). `c7n-org run` only calls validate(). The cases run
in-process both ways: through c7n's own `validate` command, and through validate() alone
as `c7n-org run` calls it. A few subprocess tests drive the stock commands.
"""
import logging
import re

import pytest
import yaml
from c7n import commands
from c7n.config import Bag, Config
from c7n.exceptions import PolicyValidationError
from c7n.policy import PolicyCollection

from conftest import ROOT, custodian_run, run_command, unused_keys_policy, write_policies
from helpers import account_state


def unused(options):
    return unused_keys_policy('bad-input', options)


def retire_policy(action=None, marked=None, with_filter=True):
    filters = [{'type': 'unused-access-keys', 'days': 45}] if with_filter else []
    if marked is not None:
        filters = [{'or': filters + [dict({'type': 'marked-access-keys'}, **marked)]}]
    return {'name': 'bad-retire', 'resource': 'aws.iam-user', 'filters': filters,
            'actions': [dict({'type': 'retire-access-keys'}, **(action or {}))]}


def passwords_policy(action=None, with_filter=True):
    filters = [{'or': [{'type': 'unused-passwords', 'days': 45},
                       {'type': 'marked-passwords'}]}] if with_filter else [
        {'type': 'marked-passwords'}]
    return {'name': 'bad-passwords', 'resource': 'aws.iam-user', 'filters': filters,
            'actions': [dict({'type': 'retire-passwords'}, **(action or {}))]}


def marked_top_level(options):
    policy = retire_policy()
    policy['filters'].append(dict({'type': 'marked-access-keys'}, **options))
    return policy


# (policy, text that both `custodian validate` and validate() alone must show)
BAD = [
    # unused-access-keys
    (unused({'days': 0}), "On instance['days']"),
    (unused({'days': -1}), "On instance['days']"),
    (unused({'days': '45'}), "On instance['days']"),
    (unused({'days': 4.5}), "On instance['days']"),
    (unused({}), "'days' is a required property"),
    (unused({'days': 45, 'max-days': 45}), 'max-days (45) must be greater than days (45)'),
    (unused({'days': 45, 'max-days': 30}), 'max-days (30) must be greater than days (45)'),
    (unused({'days': 45, 'max-days': 'lots'}), "On instance['max-days']"),
    (unused({'days': 1, 'max-days': 1}), "On instance['max-days']"),
    (unused({'days': 30, 'max-days': 44, 'never-used-days': 60}),
     'never-used-days (60) is above max-days (44)'),
    (unused({'days': 45, 'never-used-days': -1}), "On instance['never-used-days']"),
    (unused({'days': 45, 'never-used-days': 'soon'}), "On instance['never-used-days']"),
    (unused({'days': 45, 'source': 'cloudtrail'}), "On instance['source']"),
    (unused({'days': 45, 'status': 'active'}), "On instance['status']"),
    (unused({'days': 45, 'status': 5}), "On instance['status']"),
    (unused({'days': 45, 'source': ['api']}), "On instance['source']"),
    (unused({'days': 45, 'report-max-age-hours': -1}), "On instance['report-max-age-hours']"),
    (unused({'days': 45, 'report-max-age-hours': 'old'}),
     "On instance['report-max-age-hours']"),
    # The old name, in hours where c7n's own report_max_age is in seconds, names the new one.
    (unused({'days': 45, 'report-max-age': 4}), 'renamed: use report-max-age-hours'),
    (unused({'days': 45, 'report-timeout': 0}), "On instance['report-timeout']"),
    (unused({'days': 45, 'report-timeout': 'soon'}), "On instance['report-timeout']"),
    (unused({'days': 45, 'exempt-tag': ''}), "On instance['exempt-tag']"),
    (unused({'days': 45, 'exempt-tag': 7}), "On instance['exempt-tag']"),
    (unused({'days': 45, 'colour': 'red'}), "'colour' was unexpected"),
    (unused({'days': 45, 'never_used_days': 30}), "'never_used_days' was unexpected"),
    # retire-access-keys
    (retire_policy({'delete-after-days': 0}), "On instance['delete-after-days']"),
    (retire_policy({'delete-after-days': -3}), "On instance['delete-after-days']"),
    (retire_policy({'delete-after-days': '30'}), "On instance['delete-after-days']"),
    (retire_policy({'delete-after-days': 1.5}), "On instance['delete-after-days']"),
    (retire_policy({'marker-tag-prefix': ''}), "On instance['marker-tag-prefix']"),
    (retire_policy({'marker-tag-prefix': 'has spaces!'}), "On instance['marker-tag-prefix']"),
    (retire_policy({'marker-tag-prefix': 7}), "On instance['marker-tag-prefix']"),
    (dict(retire_policy(), filters=[{'or': [
        {'and': [{'type': 'unused-access-keys', 'days': 45}, {'tag:Team': 'data'}]},
        {'type': 'marked-access-keys'}]}]),
     'its unused-access-keys filter must be a top-level filter or sit directly in a '
     'top-level or'),
    (dict(retire_policy(), filters=[{'not': [{'type': 'unused-access-keys', 'days': 45}]}]),
     'its unused-access-keys filter must be a top-level filter'),
    (retire_policy({'recheck-max-age-seconds': -1}), "On instance['recheck-max-age-seconds']"),
    (retire_policy({'recheck-max-age-seconds': 'a minute'}),
     "On instance['recheck-max-age-seconds']"),
    (retire_policy({'recheck-max-age-seconds': 301}), "On instance['recheck-max-age-seconds']"),
    (retire_policy({'recheck-max-age-seconds': float('nan')}),
     'recheck-max-age-seconds must be a finite number, not nan'),
    (retire_policy({'max-deactivations': {'percent': float('nan')}}),
     'max-deactivations.percent must be a finite number, not nan'),
    (unused({'days': 45, 'report-max-age-hours': float('inf')}),
     'report-max-age-hours must be a finite number, not inf'),
    (unused({'days': 45, 'report-max-age-hours': float('nan')}),
     'report-max-age-hours must be a finite number, not nan'),
    (retire_policy({'max-deactivations': {}}), "On instance['max-deactivations']"),
    (retire_policy({'max-deactivations': 20}), "On instance['max-deactivations']"),
    (retire_policy({'max-deactivations': {'op': 'and'}}),
     'max-deactivations needs an amount, a percent or both'),
    (retire_policy({'max-deactivations': {'amount': -1}}),
     "On instance['max-deactivations']['amount']"),
    (retire_policy({'max-deactivations': {'amount': '20'}}),
     "On instance['max-deactivations']['amount']"),
    (retire_policy({'max-deactivations': {'percent': 101}}),
     "On instance['max-deactivations']['percent']"),
    (retire_policy({'max-deactivations': {'amount': 5, 'op': 'xor'}}),
     "On instance['max-deactivations']['op']"),
    (retire_policy({'max-deactivations': {'amount': 5, 'limit': 3}}),
     "'limit' was unexpected"),
    (retire_policy({'delete_after_days': 30}), "'delete_after_days' was unexpected"),
    ({'name': 'bad-retire', 'resource': 'aws.iam-user',
      'filters': [{'type': 'unused-access-keys', 'days': 45, 'status': 'Active'}],
      'actions': [{'type': 'retire-access-keys'}]},
     'its unused-access-keys filter must keep matching deactivated keys'),
    (retire_policy(with_filter=False),
     'retire-access-keys acts on the keys that an unused-access-keys filter matched'),
    (retire_policy({'approval-tag': ''}), "On instance['approval-tag']"),
    (retire_policy({'approval-tag': 'has spaces!'}), "On instance['approval-tag']"),
    (retire_policy({'approval-tag': True}), "On instance['approval-tag']"),
    (retire_policy({'approval-tag': 'c7n-unused-keys'}),
     "approval-tag 'c7n-unused-keys' overlaps the marker tags"),
    (retire_policy({'approval-tag': 'c7n-unused-keys-reactivated:ok'}),
     "approval-tag 'c7n-unused-keys-reactivated:ok' overlaps the marker tags"),
    (retire_policy({'required-approvers': 2}),
     'required-approvers and required-approvers-tag count the approvals of approval-tag'),
    (retire_policy({'required-approvers-tag': 'privileged'}),
     'required-approvers and required-approvers-tag count the approvals of approval-tag'),
    (retire_policy({'approval-tag': 'a', 'required-approvers-tag': 'privileged'}),
     'set required-approvers to 2 or more'),
    (retire_policy({'approval-tag': 'a', 'required-approvers': 0}),
     "On instance['required-approvers']"),
    (retire_policy({'approval-tag': 'a', 'required-approvers': 6}),
     "On instance['required-approvers']"),
    (retire_policy({'approval-tag': 'a', 'required-approvers': '2'}),
     "On instance['required-approvers']"),
    (retire_policy({'approval-tag': 'a', 'required-approvers': 2,
                    'required-approvers-tag': ''}), "On instance['required-approvers-tag']"),
    (retire_policy({'approval-tag': 'p', 'marker-tag-prefix': 'p:x'}),
     "approval-tag 'p' overlaps the marker tags of marker-tag-prefix 'p:x'"),
    (retire_policy({'marker-tag-prefix': 'a'}, marked={'marker-tag-prefix': 'b'}),
     "marker-tag-prefix 'a' differs from that of the marked-access-keys filter ('b')"),
    # notify-unused-keys: a misspelt option is not a silent default
    (dict(retire_policy(), actions=[{'type': 'retire-access-keys'}, {
        'type': 'notify-unused-keys', 'deletion_notice_dayz': 3, 'to': ['resource-owner'],
        'transport': {'type': 'sqs', 'queue': 'https://sqs.us-east-1.amazonaws.com/1/q'}}]),
     "'deletion_notice_dayz' was unexpected"),
    (dict(retire_policy(), actions=[{'type': 'retire-access-keys'}, {
        'type': 'notify-unused-keys', 'approval_buttons': 'yes', 'to': ['resource-owner'],
        'transport': {'type': 'sqs', 'queue': 'https://sqs.us-east-1.amazonaws.com/1/q'}}]),
     "'yes' is not of type 'boolean'"),
    # unused-passwords
    ({'name': 'bad-passwords', 'resource': 'aws.iam-user',
      'filters': [{'type': 'unused-passwords'}]}, "'days' is a required property"),
    ({'name': 'bad-passwords', 'resource': 'aws.iam-user',
      'filters': [{'type': 'unused-passwords', 'days': 0}]}, "On instance['days']"),
    ({'name': 'bad-passwords', 'resource': 'aws.iam-user',
      'filters': [{'type': 'unused-passwords', 'days': 45, 'max-days': 45}]},
     'unused-passwords: max-days (45) must be greater than days (45)'),
    ({'name': 'bad-passwords', 'resource': 'aws.iam-user',
      'filters': [{'type': 'unused-passwords', 'days': 45, 'status': 'Active'}]},
     "'status' was unexpected"),
    # retire-passwords
    (passwords_policy({'max-removals': {'op': 'and'}}),
     'retire-passwords: max-removals needs an amount, a percent or both'),
    (passwords_policy({'required-approvers': 2}),
     'retire-passwords: required-approvers and required-approvers-tag count the approvals'),
    (passwords_policy({'remove-after-days': 0}), "On instance['remove-after-days']"),
    (passwords_policy({'delete-after-days': 30}), "'delete-after-days' was unexpected"),
    (passwords_policy(with_filter=False),
     'retire-passwords acts on the passwords that an unused-passwords filter matched'),
    # marked-access-keys
    (marked_top_level({'marker-tag-prefix': 'x y'}), "On instance['marker-tag-prefix']"),
    (marked_top_level({'marker-tag-prefix': ''}), "On instance['marker-tag-prefix']"),
    (marked_top_level({'marker-tag-prefix': 7}), "On instance['marker-tag-prefix']"),
    (marked_top_level({'prefix': 'x'}), "'prefix' was unexpected"),
]
IDS = ['%d-%s' % (i, re.sub(r'\W+', '-', names)[:40]) for i, (_, names) in enumerate(BAD)]


@pytest.fixture(autouse=True, scope='module')
def schema_of_iam_users_only():
    """The schema a fresh `custodian validate` builds for these policies: aws.iam-user's
    alone. In this process other tests may have loaded every AWS resource, which makes
    each call build and check against the whole schema (about a second)."""
    from c7n import schema
    made, generate = {}, schema.generate

    def iam_users_only(resource_types=()):
        key = tuple(resource_types) or ('aws.iam-user',)
        if key not in made:
            made[key] = generate(key)
        return made[key]
    schema.generate = iam_users_only
    yield
    schema.generate = generate


def custodian_validate(tmp_path, caplog, *policies) -> str:
    """c7n's `custodian validate` command, in-process; its log, or '' when valid."""
    path = write_policies(tmp_path / 'p.yml', *policies)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger='custodian'):
        try:
            commands.validate(Bag(configs=[str(path)], check_deprecations='yes'))
        except SystemExit as e:
            assert e.code == 1
            return caplog.text
    assert 'Configuration valid' in caplog.text
    return ''


def org_run_validate(*policies, variables=None):
    """What `c7n-org run` checks before it runs a policy: validate() alone, no schema."""
    from c7n.resources import load_resources
    load_resources(('aws.iam-user',))
    config = Config.empty(region='us-east-1', account_id='123456789012', dryrun=True)
    # Through YAML, as the command reads it, so that messages show the same instance.
    data = yaml.safe_load(yaml.safe_dump({'policies': list(policies)}))
    for p in PolicyCollection.from_data(data, config):
        p.expand_variables(p.get_variables(variables or {}))
        p.validate()


def flat(text):
    """A message without c7n's schema index and layout, to compare the two paths."""
    return ' '.join(re.sub(r'schema\[\d+\]', 'schema', text).split())


@pytest.mark.parametrize('policy,names', BAD, ids=IDS)
def test_bad_option_is_refused_with_the_same_message_both_ways(tmp_path, caplog, policy,
                                                               names):
    by_command = custodian_validate(tmp_path, caplog, policy)
    assert names in by_command
    with pytest.raises(PolicyValidationError) as alone:
        org_run_validate(policy)
    assert names in str(alone.value)
    # The same message: what validate() says is what `custodian validate` says.
    assert flat(str(alone.value)) in flat(by_command)


def test_nested_bad_option_is_refused_both_ways(tmp_path, caplog):
    policy = retire_policy(marked={'prefix': 'x'})
    # Inside an `or`, c7n's schema check names no field but shows the offending filter.
    assert "{'prefix': 'x', 'type': 'marked-access-keys'}" in custodian_validate(
        tmp_path, caplog, policy)
    with pytest.raises(PolicyValidationError, match="'prefix' was unexpected"):
        org_run_validate(policy)


def test_good_policies_are_accepted_both_ways(tmp_path, caplog):
    good = [
        unused({'days': 30, 'max-days': 44, 'never-used-days': 0, 'status': 'any',
                'source': 'api', 'report-max-age-hours': 0.5, 'report-timeout': 60,
                'exempt-tag': 'keep-my-keys'}),
        retire_policy({'delete-after-days': 1, 'marker-tag-prefix': 'p:x/y=z+a@b-c',
                       'approval-tag': 'p:x/y=z+a@b-c-approved',
                       'max-deactivations': {'amount': 0, 'percent': 12.5, 'op': 'and'}},
                      marked={'marker-tag-prefix': 'p:x/y=z+a@b-c'}),
        dict(retire_policy({'approval-tag': 'approved', 'required-approvers': 2,
                            'required-approvers-tag': 'privileged'}), name='two-person'),
        dict(passwords_policy({'remove-after-days': 1, 'approval-tag': 'approved',
                               'required-approvers': 2, 'required-approvers-tag': 'admin',
                               'max-removals': {'amount': 0, 'percent': 10, 'op': 'and'}}),
             name='passwords'),
    ]
    assert custodian_validate(tmp_path, caplog, *good) == ''
    org_run_validate(*good)


def test_variables_are_checked_once_expanded(tmp_path, caplog):
    """As c7n does, a `{var}` passes the type check before expansion; its value is checked
    after it, which is when `c7n-org run` calls validate()."""
    policy = unused({'days': '{days}'})
    assert custodian_validate(tmp_path, caplog, policy) == ''
    org_run_validate(policy, variables={'days': 45})
    with pytest.raises(PolicyValidationError, match=re.escape("On instance['days']")):
        org_run_validate(policy, variables={'days': -1})


# Subprocess smoke tests of the stock commands.

def test_custodian_validate_names_the_field(tmp_path):
    path = write_policies(tmp_path / 'p.yml', unused({'days': -1}))
    run = run_command(['custodian', 'validate', path], None)
    assert run.returncode == 1
    assert "On instance['days']" in run.stderr and 'Configuration invalid' in run.stderr


def test_custodian_run_of_a_bad_policy_touches_nothing(sandbox, tmp_path):
    c = sandbox.iam_client()
    c.create_user(UserName='stale')
    key = c.create_access_key(UserName='stale')['AccessKey']['AccessKeyId']
    sandbox.backdate_key('123456789012', key, created_days=300, used_days=200)
    state, before = account_state(sandbox), sandbox.requests
    policies = write_policies(tmp_path / 'p.yml', retire_policy({'delete-after-days': 0}))
    run = custodian_run(sandbox, tmp_path / 'out', policies)
    assert run.returncode != 0 and "On instance['delete-after-days']" in run.stderr
    assert sandbox.requests == before and account_state(sandbox) == state
    assert not list((tmp_path / 'out').glob('*/resources.json'))


ORG_MATRIX = [
    (unused({'days': -1}), "On instance['days']", ()),
    (unused({'days': '45'}), "On instance['days']", ()),
    (unused({'days': 45, 'status': 'active'}), "On instance['status']", ()),
    (retire_policy({'delete-after-days': 0}), "On instance['delete-after-days']",
     ('--dryrun',)),
    (unused({'days': 45, 'report-max-age': 4}), 'renamed: use report-max-age-hours', ()),
]


@pytest.mark.parametrize('policy,names,extra', ORG_MATRIX, ids=[n for _, n, _ in ORG_MATRIX])
def test_c7n_org_run_refuses_a_bad_option(sandbox, tmp_path, policy, names, extra):
    """c7n-org logs each account's validate() error as a warning (and exits 0): so what
    shows the refusal is that every account and region names the field, no policy ran
    and no request reached the emulator."""
    path = write_policies(tmp_path / 'p.yml', policy)
    before = sandbox.requests
    run = run_command(['c7n-org', 'run', '-c', ROOT / 'custodian.yml', '-s', tmp_path / 'out',
                       '--cache-period', '0', '-u', path] + list(extra), sandbox)
    refused = {}
    for entry in re.split(r'\n(?=\d{4}-\d\d-\d\d )', run.stderr):
        found = re.match(r'.*Error running policy in (\S+) @ (\S+) exception:\s+Error on '
                         r'policy:%s resource:aws.iam-user\n' % policy['name'], entry)
        if found:
            refused[found.groups()] = entry
    assert sorted(refused) == sorted((a, r) for a in ('dev', 'staging', 'prod')
                                     for r in ('us-east-1', 'us-west-2')), run.stderr
    assert all(names in entry for entry in refused.values()), run.stderr
    assert sandbox.requests == before
    assert not list((tmp_path / 'out').glob('**/resources.json'))


# Lambda modes: without `packages` and `handler` the function could never load the plugin.
LAMBDA_OPTIONS = {'packages': ['c7n_unused_keys'], 'handler': 'c7n_unused_keys.handler.run'}
LAMBDA_FIX = ('add `packages: [c7n_unused_keys]` and `handler: c7n_unused_keys.handler.run` '
              'to its mode')
MODE_EXTRA = {
    'periodic': {'schedule': 'rate(1 day)'},
    'schedule': {'schedule': 'rate(1 day)', 'group-name': 'default'},
    'cloudtrail': {'events': [{'source': 'iam.amazonaws.com', 'event': 'CreateAccessKey',
                               'ids': 'requestParameters.userName'}]},
    'config-poll-rule': {'schedule': 'One_Hour'},
}
# Modes that c7n itself refuses on aws.iam-user, whatever the options.
REFUSED_BY_C7N = {'phd', 'config-poll-rule', 'guard-duty'}


def lambda_modes():
    import c7n.resources.securityhub  # noqa: F401  (registers the hub-* modes)
    from c7n.policy import LambdaMode, execution
    return sorted(k for k, m in execution.items() if issubclass(m, LambdaMode))


def in_lambda(policy, mode_type, **options):
    return dict(policy, mode=dict({'type': mode_type, 'role': 'arn:aws:iam::123456789012:role/x'},
                                  **MODE_EXTRA.get(mode_type, {}), **options))


def test_every_lambda_mode_is_covered():
    # c7n 0.9.53's eleven Lambda modes; a new one appears here first.
    assert lambda_modes() == sorted([
        'asg-instance-state', 'cloudtrail', 'config-poll-rule', 'config-rule',
        'ec2-instance-state', 'guard-duty', 'hub-action', 'hub-finding', 'periodic', 'phd',
        'schedule'])


@pytest.mark.parametrize('mode_type', lambda_modes())
def test_a_lambda_mode_without_packages_and_handler_is_refused(tmp_path, caplog, mode_type):
    policies = [unused({'days': 45}), retire_policy(),
                # A plugin source alone needs the plugin in the function too.
                {'name': 'source-only', 'resource': 'aws.iam-user', 'source': 'list-users',
                 'filters': [{'type': 'value', 'key': 'UserName', 'value': 'x'}]}]
    for policy in policies:
        bad = in_lambda(policy, mode_type)
        # guard-duty: c7n raises a ValueError of its own.
        with pytest.raises((PolicyValidationError, ValueError)) as alone:
            org_run_validate(bad)
        by_command = custodian_validate(tmp_path, caplog, bad)
        assert by_command
        if mode_type in REFUSED_BY_C7N:
            continue
        for text in (str(alone.value), by_command):
            assert 'mode %s runs in AWS Lambda' % mode_type in text
            assert LAMBDA_FIX in text and 'missing: packages, handler' in text
        # Either option alone is not enough, and the message says which is missing.
        for given, missing in (('packages', 'handler'), ('handler', 'packages')):
            half = in_lambda(policy, mode_type, **{given: LAMBDA_OPTIONS[given]})
            with pytest.raises(PolicyValidationError, match='missing: %s\\)' % missing):
                org_run_validate(half)
        good = in_lambda(policy, mode_type, **LAMBDA_OPTIONS)
        org_run_validate(good)
        assert custodian_validate(tmp_path, caplog, good) == ''


def test_a_custom_handler_is_accepted(tmp_path, caplog):
    """A handler of the user's own (that imports c7n_unused_keys.register) is fine."""
    good = in_lambda(unused({'days': 45}), 'periodic', packages=['c7n_unused_keys', 'ours'],
                     handler='ours.handler.run')
    org_run_validate(good)
    assert custodian_validate(tmp_path, caplog, good) == ''


@pytest.mark.parametrize('mode,says', [
    ({'packages': ['c7n_unused_keys'], 'handler': 'c7n_unused_keys.handlr.run'},
     'missing: handler (the plugin has no handler c7n_unused_keys.handlr.run)'),
    ({'packages': ['c7n_unused_keys'], 'handler': 'ours.handler.run'},
     'missing: handler (ours.handler.run: its module is not in packages)'),
    ({'handler': 'ours.handler.run'},
     'missing: packages, handler (ours.handler.run: its module is not in packages)'),
])
def test_a_handler_that_cannot_load_is_refused(tmp_path, caplog, mode, says):
    bad = in_lambda(unused({'days': 45}), 'periodic', **mode)
    with pytest.raises(PolicyValidationError) as alone:
        org_run_validate(bad)
    assert says in str(alone.value) and LAMBDA_FIX in str(alone.value)
    assert says in custodian_validate(tmp_path, caplog, bad)


def lambda_functions(emu, account='123456789012'):
    from c7n_unused_keys_sandbox.emulator import account_client
    fns = []
    for region in ('us-east-1', 'us-west-2'):
        fns += account_client(emu.env(), account, 'lambda', region).list_functions()['Functions']
    return fns


@pytest.mark.parametrize('mode_type', [m for m in lambda_modes() if m not in REFUSED_BY_C7N])
def test_custodian_run_refuses_each_lambda_mode_and_deploys_nothing(sandbox, tmp_path,
                                                                    mode_type):
    path = write_policies(tmp_path / 'p.yml', in_lambda(unused({'days': 45}), mode_type))
    before = sandbox.requests
    run = custodian_run(sandbox, tmp_path / 'out', path)
    assert run.returncode != 0
    assert 'mode %s runs in AWS Lambda' % mode_type in run.stderr, run.stderr
    assert LAMBDA_FIX in run.stderr
    assert sandbox.requests == before
    assert lambda_functions(sandbox) == []


def test_c7n_org_run_of_a_lambda_policy_without_the_options_deploys_nothing(sandbox, tmp_path):
    path = write_policies(tmp_path / 'p.yml', dict(
        in_lambda(unused({'days': 45}), 'periodic'),
        conditions=[{'type': 'value', 'key': 'region', 'value': 'us-east-1'}]))
    before = sandbox.requests
    run = run_command(['c7n-org', 'run', '-c', ROOT / 'custodian.yml', '-s', tmp_path / 'out',
                       '-u', path], sandbox)
    assert run.stderr.count(LAMBDA_FIX) == 6, run.stderr   # 3 accounts x 2 regions
    assert sandbox.requests == before
    assert all(lambda_functions(sandbox, a) == []
               for a in ('111111111111', '222222222222', '333333333333'))
