"""`c7n-unused-keys permissions` prints the IAM policy document the policies need."""
import json

from conftest import ROOT, run_command

KEYS = {'iam:ListUsers', 'iam:ListAccessKeys', 'iam:GetAccessKeyLastUsed',
        'iam:GenerateCredentialReport', 'iam:GetCredentialReport'}
# The report policy lists users without GetUser and reads the tags of matched users.
REPORT = KEYS | {'iam:ListUserTags'}
RETIRE = KEYS | {'iam:GetUser', 'iam:UpdateAccessKey', 'iam:DeleteAccessKey', 'iam:TagUser',
                 'iam:UntagUser'}


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
    assert doc['Version'] == '2012-10-17' and actions(doc) == RETIRE | REPORT


def test_a_filter_nested_in_or_is_counted():
    """c7n's Policy.get_permissions would miss the report calls of the retire policy."""
    _, doc = permissions(str(ROOT / 'policies' / 'unused-access-keys-retire.yml'))
    assert actions(doc) == RETIRE


def test_report_policy_alone():
    _, doc = permissions(str(ROOT / 'policies' / 'unused-access-keys-report.yml'))
    assert actions(doc) == REPORT


def test_notify_adds_its_transport():
    _, doc = permissions(str(ROOT / 'mailer'))
    assert actions(doc) == RETIRE | {'sqs:SendMessage'}


def test_no_policy_files_is_an_error(tmp_path):
    run, _ = permissions(str(tmp_path))
    assert run.returncode == 1 and 'no policy files' in run.stderr
