"""The two IAM documents of the approval app, from its config. Pure.

- The app's role, in the account the function runs in: assume each account's approval
  role, read its two secrets, write its logs.
- The approval role of each account: read a user and its keys, and tag it, only with
  the approval and exempt tags (`aws:TagKeys`).
"""
import json
import sys
from typing import Dict, List

from .. import markers
from .config import APP_ROLE_NAME, ApprovalsConfig, ConfigError, load

# The reads a click's decision takes (account.read_user), and its one write.
ACCOUNT_READS = ('iam:GetUser', 'iam:ListAccessKeys')
# These three actions take users only; every user of the account, whatever its path.
USERS = 'arn:aws:iam::*:user/*'


def _secret_resource(kind: str, name: str) -> str:
    if name.startswith('arn:'):
        return name
    if kind == 'ssm':
        return 'arn:aws:ssm:*:*:parameter/%s' % name.lstrip('/')
    # A secret's ARN ends with six random characters after its name.
    return 'arn:aws:secretsmanager:*:*:secret:%s-*' % name


def app_role(cfg: ApprovalsConfig) -> Dict:
    roles = sorted({cfg.role_of(a) for a in cfg.accounts})
    secrets: Dict[str, List[str]] = {}
    for s in (cfg.signing_secret, cfg.bot_token):
        if s.kind != 'env':
            secrets.setdefault(s.kind, []).append(_secret_resource(s.kind, s.name))
    statements = [{'Sid': 'AssumeTheApprovalRoleOfEachAccount', 'Effect': 'Allow',
                   'Action': 'sts:AssumeRole', 'Resource': roles}]
    if 'secretsmanager' in secrets:
        statements.append({'Sid': 'ReadItsSlackSecrets', 'Effect': 'Allow',
                           'Action': 'secretsmanager:GetSecretValue',
                           'Resource': sorted(secrets['secretsmanager'])})
    if 'ssm' in secrets:
        statements.append({'Sid': 'ReadItsSlackParameters', 'Effect': 'Allow',
                           'Action': 'ssm:GetParameter', 'Resource': sorted(secrets['ssm'])})
    statements.append({'Sid': 'WriteItsLogs', 'Effect': 'Allow',
                       'Action': ['logs:CreateLogGroup', 'logs:CreateLogStream',
                                  'logs:PutLogEvents'], 'Resource': '*'})
    return {'Version': '2012-10-17', 'Statement': statements}


def account_role(cfg: ApprovalsConfig) -> Dict:
    return {'Version': '2012-10-17', 'Statement': [
        {'Sid': 'ReadTheUserAndItsKeys', 'Effect': 'Allow', 'Action': list(ACCOUNT_READS),
         'Resource': USERS},
        {'Sid': 'TagOnlyApprovalsAndExemptions', 'Effect': 'Allow', 'Action': 'iam:TagUser',
         'Resource': USERS,
         'Condition': {'ForAllValues:StringLike': {'aws:TagKeys': [
             markers.approval_tag(cfg.approval_tag, '*'), cfg.exempt_tag]}}}]}


def account_role_trust(app_role_arn: str) -> Dict:
    return {'Version': '2012-10-17', 'Statement': [{
        'Effect': 'Allow', 'Principal': {'AWS': app_role_arn}, 'Action': 'sts:AssumeRole'}]}


LAMBDA_TRUST = {'Version': '2012-10-17', 'Statement': [{
    'Effect': 'Allow', 'Principal': {'Service': 'lambda.amazonaws.com'},
    'Action': 'sts:AssumeRole'}]}


def run_permissions(path: str) -> int:
    try:
        cfg = load(path)
    except ConfigError as e:
        print('c7n-unused-keys permissions approvals: %s' % e, file=sys.stderr)
        return 2
    role_name = cfg.function.get('role-name', APP_ROLE_NAME)
    print(json.dumps({
        'app-role': {'name': role_name, 'policy': app_role(cfg),
                     'trust': LAMBDA_TRUST},
        'account-role': {'arn': cfg.account_role, 'policy': account_role(cfg),
                         'trust': account_role_trust('arn:aws:iam::%s:role/%s' % (
                             cfg.app_account or '<the app account>', role_name))}},
        indent=2))
    return 0
