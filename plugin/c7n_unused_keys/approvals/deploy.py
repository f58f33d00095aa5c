"""`c7n-unused-keys approvals deploy`: the approval app as a Lambda function with a
function URL, packaged and published with c7n's own `c7n.mu`, as c7n-mailer deploys
itself; its role and its URL made or brought up to date, so a second deploy changes
what changed and adds nothing."""
import json
import logging
import sys

import boto3

from . import config as approvals_config
from . import permissions
from .config import APP_ROLE_NAME, CONFIG_FILE, FUNCTION_NAME

log = logging.getLogger('c7n_unused_keys.approvals')

HANDLER = 'c7n_unused_keys.approvals.handler.run'
# What the zip holds beside its config: the plugin's package (only its pure modules
# are imported by the app) and Bolt with its Slack SDK.
MODULES = ('c7n_unused_keys', 'slack_bolt', 'slack_sdk')
URL_STATEMENT = 'c7n-unused-keys-approvals-url'
ROLE_POLICY = 'c7n-unused-keys-approvals'


def archive(cfg: approvals_config.ApprovalsConfig):
    from c7n.mu import PythonPackageArchive
    zipped = PythonPackageArchive(modules=MODULES)
    zipped.add_contents(CONFIG_FILE, json.dumps(cfg.to_data(), indent=2))
    zipped.close()
    return zipped


def _role(session, name: str, cfg) -> str:
    iam = session.client('iam')
    trust = json.dumps(permissions.LAMBDA_TRUST)
    try:
        arn = iam.get_role(RoleName=name)['Role']['Arn']
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust)
    except iam.exceptions.NoSuchEntityException:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust,
                              Description='c7n-unused-keys approval app')['Role']['Arn']
    iam.put_role_policy(RoleName=name, PolicyName=ROLE_POLICY,
                        PolicyDocument=json.dumps(permissions.app_role(cfg)))
    return arn


def _url(client, name: str) -> str:
    try:
        url = client.get_function_url_config(FunctionName=name)['FunctionUrl']
        client.update_function_url_config(FunctionName=name, AuthType='NONE')
    except client.exceptions.ResourceNotFoundException:
        url = client.create_function_url_config(FunctionName=name, AuthType='NONE')[
            'FunctionUrl']
    try:
        policy = json.loads(client.get_policy(FunctionName=name)['Policy'])
    except client.exceptions.ResourceNotFoundException:
        policy = {'Statement': []}
    if not any(st.get('Sid') == URL_STATEMENT for st in policy['Statement']):
        # Slack calls the URL without AWS credentials: Slack's signature is the check.
        client.add_permission(FunctionName=name, StatementId=URL_STATEMENT,
                              Action='lambda:InvokeFunctionUrl', Principal='*',
                              FunctionUrlAuthType='NONE')
    return url


def _check_secrets(session, cfg):
    for field, s in (('signing-secret', cfg.signing_secret), ('bot-token', cfg.bot_token)):
        if s.kind == 'env':
            raise approvals_config.ConfigError(
                "%s: env: a deployed function reads its secrets from Secrets Manager or "
                "SSM, never from its environment; use secretsmanager or ssm" % field)
        try:
            if s.kind == 'ssm':
                p = session.client('ssm').get_parameter(Name=s.name)['Parameter']
                if p['Type'] != 'SecureString':
                    raise approvals_config.ConfigError(
                        '%s: ssm %r is a %s, not a SecureString' % (field, s.name, p['Type']))
            else:
                session.client('secretsmanager').describe_secret(SecretId=s.name)
        except approvals_config.ConfigError:
            raise
        except Exception as e:
            raise approvals_config.ConfigError('%s: %s %r cannot be found: %s' % (
                field, s.kind, s.name, e))


def deploy(cfg: approvals_config.ApprovalsConfig, session=None) -> str:
    """Publish the function, its role and its URL; the URL."""
    from c7n.mu import LambdaFunction, LambdaManager
    fn = cfg.function
    region = fn.get('region', 'us-east-1')
    session = session or boto3.Session(region_name=region)
    _check_secrets(session, cfg)
    name = fn.get('name', FUNCTION_NAME)
    role = _role(session, fn.get('role-name', APP_ROLE_NAME), cfg)
    func = LambdaFunction({
        'name': name, 'description': 'c7n-unused-keys: approve deletes from Slack',
        'handler': HANDLER, 'runtime': fn.get('runtime', 'python3.11'),
        'memory_size': fn.get('memory', 256), 'timeout': fn.get('timeout', 10),
        'role': role,
        # One click decided at a time in the whole organisation: IAM has no conditional
        # write, and a click reads a tag, then writes it.
        'concurrency': 1,
        'tags': {'c7n-unused-keys': 'approvals'}}, archive(cfg))
    log.info('approvals: publishing %s in %s', name, region)
    LambdaManager(lambda: session).publish(func)
    return _url(session.client('lambda'), name)


def run_deploy(path: str) -> int:
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(message)s')
    logging.getLogger('botocore').setLevel(logging.WARNING)
    try:
        cfg = approvals_config.load(path)
        url = deploy(cfg)
    except approvals_config.ConfigError as e:
        print('c7n-unused-keys approvals deploy: %s' % e, file=sys.stderr)
        return 2
    print('approvals: %d accounts; the Slack app\'s interactivity request URL: %s' % (
        len(cfg.accounts), url))
    return 0
