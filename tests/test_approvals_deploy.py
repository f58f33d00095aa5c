"""`c7n-unused-keys approvals deploy` against the sandbox, and the deployed zip's handler
run as Lambda runs it: a clean interpreter with only the zip and boto3 on sys.path
(c7n_unused_keys_sandbox.functions), answering a click signed as Slack signs it."""
import io
import json
import zipfile
from datetime import datetime, timedelta, timezone

import boto3
import pytest
import yaml

from c7n_unused_keys import markers
from c7n_unused_keys.approvals import clicks, config, permissions
from c7n_unused_keys.names import MARKER_PREFIX
from c7n_unused_keys_sandbox import functions, slack
from conftest import DEFAULT_ACCOUNT, ROOT, run_command
from helpers import account_state

SECRET, TOKEN = 'deployed-signing-secret', 'xoxb-deployed-token'
DEV = '111111111111'
APPROVER = 'U0123ABC'
NAME, ROLE = 'c7n-unused-keys-approvals', 'c7n-unused-keys-approvals-app'


@pytest.fixture
def aws(sandbox, monkeypatch):
    for k, v in sandbox.env().items():
        monkeypatch.setenv(k, v)
    yield sandbox
    from moto.secretsmanager.models import secretsmanager_backends
    from moto.ssm.models import ssm_backends
    secretsmanager_backends.reset()
    ssm_backends.reset()


def shipped_config(tmp_path, fake, **settings):
    """The shipped approvals.yml, its secrets one in Secrets Manager and one in SSM, and
    Slack's API on loopback."""
    data = yaml.safe_load((ROOT / 'approvals.yml').read_text())
    data.update({'signing-secret': {'secretsmanager': 'c7n-unused-keys/slack-signing-secret'},
                 'bot-token': {'ssm': '/c7n-unused-keys/slack-bot-token'},
                 'slack-api-url': fake.api_url}, **settings)
    (tmp_path / 'custodian.yml').write_text((ROOT / 'custodian.yml').read_text())
    path = tmp_path / 'approvals.yml'
    path.write_text(yaml.safe_dump(data))
    return path


def store_secrets():
    boto3.client('secretsmanager').create_secret(
        Name='c7n-unused-keys/slack-signing-secret', SecretString=SECRET)
    boto3.client('ssm').put_parameter(Name='/c7n-unused-keys/slack-bot-token',
                                      Type='SecureString', Value=TOKEN)
    # A parameter in plain text, which a deploy refuses.
    boto3.client('ssm').put_parameter(Name='/plain', Type='String', Value=TOKEN)


def deploy(aws, path):
    run = run_command(['c7n-unused-keys', 'approvals', 'deploy', '-c', path], aws)
    assert run.returncode == 0, run.stderr
    return run


def test_deploy_makes_the_function_its_url_and_role_and_again_adds_nothing(aws, tmp_path):
    store_secrets()
    with slack.FakeSlack() as fake:
        path = shipped_config(tmp_path, fake)
    first = deploy(aws, path)
    lam, iam = boto3.client('lambda'), boto3.client('iam')
    url = lam.get_function_url_config(FunctionName=NAME)
    assert url['AuthType'] == 'NONE' and url['FunctionUrl'] in first.stdout
    fn = lam.get_function(FunctionName=NAME)
    conf = fn['Configuration']
    assert conf['Handler'] == 'c7n_unused_keys.approvals.handler.run'
    assert conf['Role'] == 'arn:aws:iam::%s:role/%s' % (DEFAULT_ACCOUNT, ROLE)
    # No secret in its environment.
    assert not (conf.get('Environment') or {}).get('Variables')
    assert fn['Concurrency'] == {'ReservedConcurrentExecutions': 1}
    cfg = config.load(str(path))
    assert json.loads(json.dumps(iam.get_role_policy(
        RoleName=ROLE, PolicyName='c7n-unused-keys-approvals')['PolicyDocument'])) == \
        permissions.app_role(cfg)
    code = functions.deployed_code(DEFAULT_ACCOUNT, 'us-east-1', NAME)
    with zipfile.ZipFile(io.BytesIO(code)) as z:
        names = z.namelist()
        text = b''.join(z.read(n) for n in names)
    assert 'approvals.json' in names
    assert {n.split('/')[0] for n in names} == {'approvals.json', 'c7n_unused_keys',
                                                'slack_bolt', 'slack_sdk'}
    # Neither secret is in the zip: only where each is kept.
    assert SECRET.encode() not in text and TOKEN.encode() not in text

    deploy(aws, path)
    assert [f['FunctionName'] for f in lam.list_functions()['Functions']] == [NAME]
    assert lam.get_function_url_config(FunctionName=NAME)['FunctionUrl'] == url['FunctionUrl']
    statements = json.loads(lam.get_policy(FunctionName=NAME)['Policy'])['Statement']
    assert [s['Sid'] for s in statements] == ['c7n-unused-keys-approvals-url']
    assert [r['RoleName'] for r in iam.list_roles()['Roles']].count(ROLE) == 1
    assert iam.list_role_policies(RoleName=ROLE)['PolicyNames'] == ['c7n-unused-keys-approvals']


@pytest.mark.parametrize('settings,field', [
    ({'signing-secret': {'env': 'SLACK_SIGNING_SECRET'}}, 'signing-secret: env'),
    ({'bot-token': {'secretsmanager': 'nowhere'}}, "bot-token: secretsmanager 'nowhere' "
                                                   "cannot be found"),
    ({'keep-days': 'ninety'}, "['keep-days']"),
    ({'bot-token': {'ssm': '/plain'}}, "bot-token: ssm '/plain' is a String, not a "
                                       "SecureString"),
])
def test_a_deploy_that_cannot_work_is_refused_before_anything_is_made(aws, tmp_path, settings,
                                                                       field):
    store_secrets()
    with slack.FakeSlack() as fake:
        path = shipped_config(tmp_path, fake, **settings)
    run = run_command(['c7n-unused-keys', 'approvals', 'deploy', '-c', path], aws)
    assert run.returncode == 2 and field in run.stderr, run.stderr
    assert boto3.client('lambda').list_functions()['Functions'] == []
    assert ROLE not in [r['RoleName'] for r in boto3.client('iam').list_roles()['Roles']]


def deploy_policy_name():
    from c7n_unused_keys.approvals.deploy import ROLE_POLICY
    return ROLE_POLICY


def url_event(body: bytes, headers: dict) -> dict:
    """What a function URL hands the function (payload format 2.0)."""
    return {'version': '2.0', 'rawPath': '/', 'rawQueryString': '',
            'headers': {k.lower(): v for k, v in headers.items()},
            'requestContext': {'http': {'method': 'POST', 'path': '/'}},
            'body': body.decode(), 'isBase64Encoded': False}


def test_the_deployed_handler_answers_a_click_from_its_zip_alone(aws, tmp_path):
    """...with no more than `permissions approvals` grants: the function's role (the
    deploy's) and the account's approval role, under the emulator's IAM enforcement.

    The emulator matches Secrets Manager, SSM and IAM user calls only against
    `Resource: "*"` (it resolves the resources of roles and STS calls alone), so those
    statements are granted on "*" here, and the documents' own resources are checked as
    data."""
    store_secrets()
    iam = aws.iam_client(DEV)
    iam.create_user(UserName='alice')
    key = iam.create_access_key(UserName='alice')['AccessKey']['AccessKeyId']
    iam.update_access_key(UserName='alice', AccessKeyId=key, Status='Inactive')
    at = (datetime.now(timezone.utc) - timedelta(days=31)).replace(microsecond=0)
    iam.tag_user(UserName='alice', Tags=[{
        'Key': markers.deactivated_tag(MARKER_PREFIX, key),
        'Value': markers.marker_value(at, at + timedelta(days=30))}])
    value = clicks.button_value(DEV, 'alice', key, markers.format_time(at))
    with slack.FakeSlack() as fake:
        path = shipped_config(tmp_path, fake)
        cfg = config.load(str(path))
        iam.create_role(RoleName='c7n-unused-keys-approvals',
                        AssumeRolePolicyDocument=json.dumps(permissions.account_role_trust(
                            'arn:aws:iam::%s:role/%s' % (DEFAULT_ACCOUNT, ROLE))))
        account_doc = permissions.account_role(cfg)
        assert {st['Resource'] for st in account_doc['Statement']} == {permissions.USERS}
        for st in account_doc['Statement']:
            st['Resource'] = '*'
        iam.put_role_policy(RoleName='c7n-unused-keys-approvals', PolicyName='approvals',
                            PolicyDocument=json.dumps(account_doc))
        deploy(aws, path)
        doc = permissions.app_role(cfg)
        reads = {st['Action']: st['Resource'] for st in doc['Statement']
                 if st['Action'] in ('secretsmanager:GetSecretValue', 'ssm:GetParameter')}
        assert reads == {
            'secretsmanager:GetSecretValue': [
                'arn:aws:secretsmanager:*:*:secret:c7n-unused-keys/slack-signing-secret-*'],
            'ssm:GetParameter': ['arn:aws:ssm:*:*:parameter/c7n-unused-keys/slack-bot-token']}
        doc['Statement'].append({'Effect': 'Allow', 'Action': sorted(reads), 'Resource': '*'})
        boto3.client('iam').put_role_policy(RoleName=ROLE, PolicyName=deploy_policy_name(),
                                            PolicyDocument=json.dumps(doc))
        task = functions.unpack(functions.deployed_code(DEFAULT_ACCOUNT, 'us-east-1', NAME),
                                tmp_path / 'task')
        runtime = functions.runtime_folder(tmp_path / 'runtime')
        creds = boto3.client('sts').assume_role(
            RoleArn='arn:aws:iam::%s:role/%s' % (DEFAULT_ACCOUNT, ROLE),
            RoleSessionName=NAME)['Credentials']
        env = {'AWS_ACCESS_KEY_ID': creds['AccessKeyId'],
               'AWS_SECRET_ACCESS_KEY': creds['SecretAccessKey'],
               'AWS_SESSION_TOKEN': creds['SessionToken'], 'AWS_REGION': 'us-east-1',
               'AWS_DEFAULT_REGION': 'us-east-1', 'AWS_ENDPOINT_URL': aws.url}
        response_url = fake.response_url()
        body = slack.form_body(slack.click_payload(clicks.APPROVE, value, APPROVER,
                                                   response_url))
        with aws.enforcing_iam():
            done = functions.invoke(task, runtime, 'c7n_unused_keys.approvals.handler.run',
                                    url_event(body, slack.signed(body, SECRET)), env,
                                    timeout=120)
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout.strip().splitlines()[-1])
        assert out['result']['statusCode'] == 200
        # Only the zip and the runtime: no c7n, no site-packages.
        assert 'c7n' not in out['modules'] and 'moto' not in out['modules']
        (answer,) = fake.posted_to(response_url)
    assert answer['text'].startswith('Approved by <@%s>' % APPROVER)
    written = account_state(aws, DEV)['alice'].tags[markers.approval_tag(
        'c7n-unused-keys-approved', key)]
    assert written.endswith(' by slack:' + APPROVER)


def test_permissions_approvals_prints_both_documents_from_the_config():
    run = run_command(['c7n-unused-keys', 'permissions', 'approvals', '-c',
                       ROOT / 'approvals.yml'], None)
    assert run.returncode == 0, run.stderr
    docs = json.loads(run.stdout)
    cfg = config.load(str(ROOT / 'approvals.yml'))
    assert docs['app-role']['policy'] == permissions.app_role(cfg)
    assert docs['account-role']['policy'] == permissions.account_role(cfg)
    (assume,) = [s for s in docs['app-role']['policy']['Statement']
                 if s['Action'] == 'sts:AssumeRole']
    assert assume['Resource'] == ['arn:aws:iam::%s:role/c7n-unused-keys-approvals' % a
                                  for a in ('111111111111', '222222222222', '333333333333')]
    (tag,) = [s for s in docs['account-role']['policy']['Statement']
              if s['Action'] == 'iam:TagUser']
    assert tag['Condition'] == {'ForAllValues:StringLike': {'aws:TagKeys': [
        'c7n-unused-keys-approved:*', 'c7n-unused-keys-exempt']}}
    # The account role trusts the app's role, in the account the config names.
    assert docs['account-role']['trust']['Statement'][0]['Principal'] == {
        'AWS': 'arn:aws:iam::999999999999:role/c7n-unused-keys-approvals-app'}
    # Nothing in either document deletes, untags or changes a key.
    actions = {a for d in docs.values() for s in d['policy']['Statement']
               for a in ([s['Action']] if isinstance(s['Action'], str) else s['Action'])}
    assert not {a for a in actions if a.startswith('iam:') and a not in (
        'iam:GetUser', 'iam:ListAccessKeys', 'iam:TagUser')}
