"""Helpers shared by several test modules: seeding an account (through the sandbox's own
seeder), one snapshot of an account, the invariant every retire run keeps, and the
shipped retire policy at both levels. Test modules import these, never each other."""
from datetime import datetime, timezone
from typing import Dict, NamedTuple

from c7n_unused_keys import markers
from c7n_unused_keys.names import MARKER_PREFIX
from c7n_unused_keys_sandbox.seed import SeedKey, SeedUser, organisation, seed_account
from conftest import DEFAULT_ACCOUNT, ROOT

# The shipped retire policy, and its key-level twin.
RETIRE = ROOT / 'policies' / 'unused-access-keys-retire.yml'
RETIRE_NAME = 'unused-access-keys-retire'
KEY_NAME = 'keys-retire'
# The tag keys of a key's marker and of its reactivation, less the key id.
PREFIX = MARKER_PREFIX + ':'
R_PREFIX = markers.reactivated_tag(MARKER_PREFIX, '')


class UserState(NamedTuple):
    keys: Dict[str, str]   # key id -> status
    tags: Dict[str, str]   # tag key -> value


def account_state(emu, account: str = DEFAULT_ACCOUNT) -> Dict[str, UserState]:
    """Every user's keys and tags, read from the emulator."""
    b = emu.backend(account)
    return {u.name: UserState({k.access_key_id: k.status for k in u.access_keys},
                              {t['Key']: t['Value'] for t in b.list_user_tags(u.name)})
            for u in b.users.values()}


# The retire tests' five users: one per lifecycle step they take.
FIVE = {
    'stale': dict(created=300, used=100),
    'never-used': dict(created=60),
    'keeper': dict(created=300, used=90),
    'recent': dict(created=300, used=1),
    'young': dict(created=5),
}


def seed(emu, account=DEFAULT_ACCOUNT, users=None) -> Dict[str, str]:
    """One key per user, {name: dict(created=days, used=days, status=...)}; returns
    name -> key id. The default users are FIVE, which keep the circuit breaker quiet."""
    made = seed_account(emu, account, [
        SeedUser(name, [SeedKey(k['created'], used=k.get('used'),
                                status=k.get('status', 'Active'))])
        for name, k in (users or FIVE).items()], through_api=False)
    return {u.name: u.keys[0].key_id for u in made}


def seeded(emu, ordinary=30, account=DEFAULT_ACCOUNT) -> dict:
    """A fresh account holding the sandbox's lifecycle cases and `ordinary` users;
    {user: [key ids]}."""
    emu.reset()
    users = seed_account(emu, account,
                         organisation('dev', datetime.now(timezone.utc), ordinary=ordinary),
                         through_api=False)
    return {u.name: [k.key_id for k in u.keys] for u in users}


def no_key_deactivated_without_its_marker(before, after, prefix=PREFIX):
    """Every key that was Active in `before` and is Inactive in `after` carries its marker."""
    for user, state in after.items():
        for key_id, status in state.keys.items():
            if status == 'Inactive' and before[user].keys.get(key_id) == 'Active':
                assert prefix + key_id in state.tags, (user, key_id)


UNUSED = {'type': 'unused-access-keys', 'days': 45, 'never-used-days': 30}
ACTION = {'type': 'retire-access-keys', 'delete-after-days': 30,
          'max-deactivations': {'amount': 20, 'percent': 25, 'op': 'and'}}


def key_policy(filters=None, action=None, name=KEY_NAME):
    """The shipped user-level retire policy, on aws.iam-access-key."""
    return {'name': name, 'resource': 'aws.iam-access-key',
            'filters': filters or [{'or': [UNUSED, {'type': 'marked-access-keys'}]}],
            'actions': [action or ACTION]}
