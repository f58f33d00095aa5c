"""Helpers shared by several test modules: the retire tests' seeding and account state,
and the shipped retire policy on aws.iam-access-key. Test modules import these, never
each other."""
from conftest import DEFAULT_ACCOUNT, ROOT, iam_client

# The shipped retire policy, and its key-level twin.
RETIRE = ROOT / 'policies' / 'unused-access-keys-retire.yml'
RETIRE_NAME = 'unused-access-keys-retire'
KEY_NAME = 'keys-retire'


def state(emu, account=DEFAULT_ACCOUNT):
    """Every user's keys (id -> status) and tags, read from the emulator."""
    b = emu.backend(account)
    return {u.name: {'keys': {k.access_key_id: k.status for k in u.access_keys},
                     'tags': {t['Key']: t['Value'] for t in b.list_user_tags(u.name)}}
            for u in b.users.values()}


def seed(emu, account=DEFAULT_ACCOUNT, users=None):
    """name -> key id. Ordinary users keep the circuit breaker quiet."""
    users = users or {
        'stale': dict(created=300, used=100),
        'never-used': dict(created=60),
        'keeper': dict(created=300, used=90),
        'recent': dict(created=300, used=1),
        'young': dict(created=5),
    }
    c = iam_client(emu, account)
    ids = {}
    for name, k in users.items():
        c.create_user(UserName=name)
        ids[name] = c.create_access_key(UserName=name)['AccessKey']['AccessKeyId']
        emu.backdate_key(account, ids[name], created_days=k['created'], used_days=k.get('used'),
                         never_used='used' not in k)
        if k.get('status') == 'Inactive':
            c.update_access_key(UserName=name, AccessKeyId=ids[name], Status='Inactive')
    return ids


UNUSED = {'type': 'unused-access-keys', 'days': 45, 'never-used-days': 30}
ACTION = {'type': 'retire-access-keys', 'delete-after-days': 30,
          'max-deactivations': {'amount': 20, 'percent': 25, 'op': 'and'}}


def key_policy(filters=None, action=None, name=KEY_NAME):
    """The shipped user-level retire policy, on aws.iam-access-key."""
    return {'name': name, 'resource': 'aws.iam-access-key',
            'filters': filters or [{'or': [UNUSED, {'type': 'marked-access-keys'}]}],
            'actions': [action or ACTION]}
