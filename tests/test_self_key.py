"""The policy never deactivates or deletes the key it runs with.

The emulator marks a key used the moment it signs a request, so the filter can
never match the runner's own key end to end. Here the filter's facts are faked
and the real action runs, in-process, with that key's credentials.
"""
import yaml

from c7n_unused_keys.names import RESULTS_ANNOTATION
from c7n_unused_keys.model import RunFindings

from conftest import DEFAULT_ACCOUNT, ROOT, iam_client


def test_the_runners_own_key_is_skipped(sandbox, monkeypatch, tmp_path):
    c = iam_client(sandbox)
    keys = {}
    for user in ('robot', 'other'):
        c.create_user(UserName=user)
        keys[user] = c.create_access_key(UserName=user)['AccessKey']
    for k, v in sandbox.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv('AWS_ACCESS_KEY_ID', keys['robot']['AccessKeyId'])
    monkeypatch.setenv('AWS_SECRET_ACCESS_KEY', keys['robot']['SecretAccessKey'])

    import c7n_unused_keys.register  # noqa: F401
    from c7n.config import Config
    from c7n.policy import Policy
    data = yaml.safe_load((ROOT / 'policies' / 'unused-access-keys-retire.yml').read_text())
    policy = Policy(data['policies'][0], Config.empty(
        region='us-east-1', account_id=DEFAULT_ACCOUNT, output_dir=str(tmp_path)))
    [action] = policy.resource_manager.actions
    # The action acts on what its policy's filter matched in this run.
    [unused] = action.unused_filters()
    monkeypatch.setattr(unused, 'run_findings', lambda run: RunFindings(
        {user: [keys[user]['AccessKeyId']] for user in ('robot', 'other')}, 2))
    resources = [{'UserName': user, 'Tags': []} for user in ('robot', 'other')]
    records = {r['UserName']: r['Step'] for r in action.process(resources)}

    assert records == {'robot': 'skipped-self', 'other': 'deactivated'}
    b = sandbox.backend(DEFAULT_ACCOUNT)
    assert b.users['robot'].access_keys[0].status == 'Active'
    assert b.users['other'].access_keys[0].status == 'Inactive'
    assert b.list_user_tags('robot') == []
    assert resources[0][RESULTS_ANNOTATION][0]['Step'] == 'skipped-self'


def test_the_profile_a_role_is_assumed_from_counts_as_self(tmp_path, monkeypatch):
    """With --profile P --assume ROLE the run holds role credentials, but P's key is
    what it depends on."""
    import boto3
    from c7n_unused_keys.actions import own_key_ids
    creds = tmp_path / 'credentials'
    creds.write_text('[runner]\naws_access_key_id = AKIARUNNERKEY0000001\n'
                     'aws_secret_access_key = secret\n')
    monkeypatch.setenv('AWS_SHARED_CREDENTIALS_FILE', str(creds))
    monkeypatch.setenv('AWS_CONFIG_FILE', str(tmp_path / 'none'))
    role = boto3.Session(aws_access_key_id='ASIAROLEKEY000000001',
                         aws_secret_access_key='s', aws_session_token='t')
    assert own_key_ids(role, 'runner') == {'ASIAROLEKEY000000001', 'AKIARUNNERKEY0000001'}
