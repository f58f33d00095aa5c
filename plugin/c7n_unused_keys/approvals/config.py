"""approvals.yml: the approval app's settings, read and checked. Pure: no AWS, no Slack.

The organisation is the c7n-org accounts file the policies run with (`accounts-file`):
a click naming any other account is refused.
"""
import os
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, Mapping, Optional

from .. import markers
from ..names import EXEMPT_TAG, MARKER_PREFIX

# Keep exempts a key for this many days unless `keep-days` says otherwise.
KEEP_DAYS = 90
FUNCTION_NAME = 'c7n-unused-keys-approvals'
APP_ROLE_NAME = 'c7n-unused-keys-approvals-app'
ACCOUNT_ROLE = 'arn:aws:iam::{account_id}:role/c7n-unused-keys-approvals'
SLACK_API_URL = 'https://slack.com/api/'
# The config in the function's zip, as to_data writes it.
CONFIG_FILE = 'approvals.json'

_TAG = {'type': 'string', 'pattern': r'^[\w.:/=+@-]{1,80}$'}
_APPROVERS = {
    'type': 'object', 'additionalProperties': False,
    'properties': {
        'users': {'type': 'array', 'items': {'type': 'string', 'pattern': r'^[UW][A-Z0-9]{2,20}$'}},
        'usergroups': {'type': 'array',
                       'items': {'type': 'string', 'pattern': r'^S[A-Z0-9]{2,20}$'}}}}
_SECRET = {
    'type': 'object', 'additionalProperties': False, 'minProperties': 1, 'maxProperties': 1,
    'properties': {
        'secretsmanager': {'type': 'string', 'minLength': 1},
        'ssm': {'type': 'string', 'minLength': 1},
        # Only for `approvals serve`: a deployed function never reads secrets from its
        # environment.
        'env': {'type': 'string', 'pattern': r'^[A-Za-z_][A-Za-z0-9_]*$'}}}
SCHEMA = {
    'type': 'object', 'additionalProperties': False,
    'required': ['accounts-file', 'approval-tag', 'signing-secret', 'bot-token', 'approvers'],
    'properties': {
        'accounts-file': {'type': 'string', 'minLength': 1},
        # The account the function runs in: the account roles trust its role.
        'app-account': {'type': 'string', 'pattern': r'^\d{12}$'},
        'account-role': {'type': 'string', 'pattern': r'^arn:aws[\w-]*:iam::.*:role/.+$'},
        'approval-tag': _TAG,
        'marker-tag-prefix': _TAG,
        'exempt-tag': {'type': 'string', 'minLength': 1, 'maxLength': 128},
        'keep-days': {'type': 'integer', 'minimum': 1, 'maximum': 3650},
        'required-approvers': {'type': 'integer', 'minimum': 1,
                               'maximum': markers.MAX_APPROVALS},
        'required-approvers-tag': {'type': 'string', 'minLength': 1, 'maxLength': 128},
        'approvers': _APPROVERS,
        'accounts': {'type': 'object', 'additionalProperties': {
            'type': 'object', 'additionalProperties': False,
            'properties': {'approvers': _APPROVERS}}},
        'signing-secret': _SECRET,
        'bot-token': _SECRET,
        'slack-api-url': {'type': 'string', 'pattern': r'^https?://'},
        'function': {
            'type': 'object', 'additionalProperties': False,
            'properties': {
                'name': {'type': 'string', 'pattern': r'^[A-Za-z0-9_-]{1,64}$'},
                'role-name': {'type': 'string', 'pattern': r'^[\w+=,.@-]{1,64}$'},
                'region': {'type': 'string', 'pattern': r'^[a-z]{2}(-[a-z]+)+-\d$'},
                'memory': {'type': 'integer', 'minimum': 128, 'maximum': 10240},
                'timeout': {'type': 'integer', 'minimum': 3, 'maximum': 900},
                'runtime': {'type': 'string', 'pattern': r'^python3\.\d+$'}}},
    }}


class ConfigError(ValueError):
    """approvals.yml (or its accounts file) cannot be used; the message names the field."""


@dataclass(frozen=True)
class Approvers:
    users: FrozenSet[str] = frozenset()
    usergroups: FrozenSet[str] = frozenset()

    def __or__(self, other: 'Approvers') -> 'Approvers':
        return Approvers(self.users | other.users, self.usergroups | other.usergroups)


@dataclass(frozen=True)
class Secret:
    """Where a secret is read: `secretsmanager`, `ssm` (a SecureString) or `env`."""
    kind: str
    name: str


@dataclass(frozen=True)
class ApprovalsConfig:
    # Account id -> name: the organisation file's accounts, the only ones served.
    accounts: Mapping[str, str]
    approval_tag: str
    signing_secret: Secret
    bot_token: Secret
    approvers: Approvers
    # Account id -> approvers for that account alone (beside the organisation's).
    account_approvers: Mapping[str, Approvers] = field(default_factory=dict)
    account_role: str = ACCOUNT_ROLE
    marker_prefix: str = MARKER_PREFIX
    exempt_tag: str = EXEMPT_TAG
    keep_days: int = KEEP_DAYS
    required_approvers: int = 1
    required_approvers_tag: Optional[str] = None
    slack_api_url: str = SLACK_API_URL
    function: Mapping[str, object] = field(default_factory=dict)
    app_account: Optional[str] = None

    def approvers_of(self, account_id: str) -> Approvers:
        return self.approvers | self.account_approvers.get(account_id, Approvers())

    def role_of(self, account_id: str) -> str:
        return self.account_role.replace('{account_id}', account_id)

    def to_data(self) -> Dict:
        """What the deployed function reads back with `from_data` (no secret, only where
        each one is kept)."""
        return {
            'accounts': dict(self.accounts), 'approval-tag': self.approval_tag,
            'signing-secret': {self.signing_secret.kind: self.signing_secret.name},
            'bot-token': {self.bot_token.kind: self.bot_token.name},
            'approvers': _approvers_data(self.approvers),
            'account-approvers': {a: _approvers_data(v)
                                  for a, v in self.account_approvers.items()},
            'account-role': self.account_role, 'marker-tag-prefix': self.marker_prefix,
            'exempt-tag': self.exempt_tag, 'keep-days': self.keep_days,
            'required-approvers': self.required_approvers,
            'required-approvers-tag': self.required_approvers_tag,
            'slack-api-url': self.slack_api_url, 'function': dict(self.function),
            'app-account': self.app_account}


def _approvers_data(a: Approvers) -> Dict:
    return {'users': sorted(a.users), 'usergroups': sorted(a.usergroups)}


def _approvers(data: Optional[Mapping]) -> Approvers:
    data = data or {}
    return Approvers(frozenset(data.get('users', ())), frozenset(data.get('usergroups', ())))


def _secret(data: Mapping) -> Secret:
    (kind, name), = data.items()
    return Secret(kind, name)


def from_data(data: Mapping) -> ApprovalsConfig:
    """The config as `to_data` wrote it into the function's zip."""
    return ApprovalsConfig(
        accounts=dict(data['accounts']), approval_tag=data['approval-tag'],
        signing_secret=_secret(data['signing-secret']), bot_token=_secret(data['bot-token']),
        approvers=_approvers(data['approvers']),
        account_approvers={a: _approvers(v) for a, v in data['account-approvers'].items()},
        account_role=data['account-role'], marker_prefix=data['marker-tag-prefix'],
        exempt_tag=data['exempt-tag'], keep_days=data['keep-days'],
        required_approvers=data['required-approvers'],
        required_approvers_tag=data['required-approvers-tag'],
        slack_api_url=data['slack-api-url'], function=data['function'],
        app_account=data.get('app-account'))


def _where(error) -> str:
    return ''.join('[%r]' % p for p in error.absolute_path) or '(top level)'


def parse(data: object, accounts_data: object, source: str = 'approvals.yml') -> ApprovalsConfig:
    """The config of approvals.yml's `data` and its accounts file's; ConfigError names
    the field that is wrong."""
    # Imported here: the deployed function reads its config with from_data, and its zip
    # carries neither.
    import jsonschema
    errors = sorted(jsonschema.Draft7Validator(SCHEMA).iter_errors(data),
                    key=lambda e: list(e.absolute_path))
    if errors:
        e = jsonschema.exceptions.best_match(errors)
        raise ConfigError('%s: %s: %s' % (source, _where(e), e.message))
    listed = accounts_data.get('accounts') if isinstance(accounts_data, dict) else None
    accounts = {}
    for i, a in enumerate(listed if isinstance(listed, list) else []):
        if not isinstance(a, dict) or not str(a.get('account_id', '')).isdigit():
            raise ConfigError('%s: accounts[%d]: an account needs its account_id' % (
                data['accounts-file'], i))
        accounts[str(a['account_id'])] = str(a.get('name') or a['account_id'])
    if not accounts:
        raise ConfigError('%s: accounts-file %r lists no account' % (source, data['accounts-file']))
    by_name = {n: i for i, n in accounts.items()}
    account_approvers = {}
    for ref, settings in (data.get('accounts') or {}).items():
        account = ref if ref in accounts else by_name.get(ref)
        if account is None:
            raise ConfigError("%s: ['accounts'][%r]: not an account name or id of %s" % (
                source, ref, data['accounts-file']))
        account_approvers[account] = _approvers((settings or {}).get('approvers'))
    needed = data.get('required-approvers', 1)
    if 'required-approvers-tag' in data and needed < 2:
        raise ConfigError("%s: ['required-approvers-tag']: names the users whose deletes "
                          "need required-approvers; set required-approvers to 2 or more" % source)
    approvers = _approvers(data['approvers'])
    if not (approvers.users or approvers.usergroups or any(
            a.users or a.usergroups for a in account_approvers.values())):
        raise ConfigError("%s: ['approvers']: names no Slack user or user group, so no one "
                          "could approve" % source)
    if markers.heads_overlap(data.get('marker-tag-prefix', MARKER_PREFIX), data['approval-tag']):
        raise ConfigError("%s: ['approval-tag']: overlaps the marker tags" % source)
    return ApprovalsConfig(
        accounts=accounts, approval_tag=data['approval-tag'],
        signing_secret=_secret(data['signing-secret']), bot_token=_secret(data['bot-token']),
        approvers=approvers, account_approvers=account_approvers,
        account_role=data.get('account-role', ACCOUNT_ROLE),
        marker_prefix=data.get('marker-tag-prefix', MARKER_PREFIX),
        exempt_tag=data.get('exempt-tag', EXEMPT_TAG),
        keep_days=data.get('keep-days', KEEP_DAYS), required_approvers=needed,
        required_approvers_tag=data.get('required-approvers-tag'),
        slack_api_url=data.get('slack-api-url', SLACK_API_URL),
        function=dict(data.get('function') or {}), app_account=data.get('app-account'))


def load(path: str) -> ApprovalsConfig:
    """approvals.yml at `path`; its accounts-file is read relative to it."""
    import yaml
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError('%s: cannot be read: %s' % (path, e))
    if not isinstance(data, dict) or not isinstance(data.get('accounts-file'), str):
        return parse(data, None, path)
    accounts_path = os.path.join(os.path.dirname(path), data['accounts-file'])
    try:
        with open(accounts_path) as f:
            accounts = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError("%s: ['accounts-file']: %s cannot be read: %s" % (
            path, data['accounts-file'], e))
    return parse(data, accounts, path)
