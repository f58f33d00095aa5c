"""The sandbox organisation: users, keys and console passwords that cover every case of
the lifecycle.

Every date is relative to now, so the sandbox works on any day. The same code
seeds the demo, the tests and the benchmarks. Users and keys are created through
the IAM API (through each account's role, as c7n-org reaches it); dates are then
moved back in the emulator.
"""
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Dict, List, Optional

from c7n_unused_keys import markers
from c7n_unused_keys.names import EXEMPT_TAG, MARKER_PREFIX
from c7n_unused_keys.password_lifecycle import PASSWORD_SUFFIX

from . import moto_fixes

# The console password every seeded login profile gets (the sandbox's only).
PASSWORD = 'Sandbox-Passw0rd!'


@dataclass
class SeedKey:
    created: float
    used: Optional[float] = None        # days since last use; None: never used
    status: str = 'Active'
    marker: Optional[float] = None      # days since the policy deactivated it
    key_id: str = ''


@dataclass
class SeedPassword:
    created: float                      # days since its login profile was made
    used: Optional[float] = None        # days since last use; None: never used
    marker: Optional[float] = None      # days since retire-passwords marked it


@dataclass
class SeedUser:
    name: str
    keys: List[SeedKey]
    tags: Dict[str, str] = field(default_factory=dict)
    case: str = 'ordinary'
    password: Optional[SeedPassword] = None
    # Days since the user was made; by default as old as its oldest credential.
    created: Optional[float] = None


def lifecycle_cases(now: datetime) -> List[SeedUser]:
    """One user per case; names say what they hold."""
    expired = (now.date() - timedelta(days=10)).isoformat()
    return [
        SeedUser('alice-recent', [SeedKey(200, used=1)], case='used recently'),
        SeedUser('bob-idle-50d', [SeedKey(300, used=50)], case='last used 50 days ago'),
        SeedUser('carol-idle-120d', [SeedKey(300, used=120)], case='last used 120 days ago'),
        SeedUser('dave-idle-400d', [SeedKey(500, used=400)], case='last used 400 days ago'),
        SeedUser('erin-new-key', [SeedKey(3)], case='never used, created 3 days ago'),
        SeedUser('frank-never-used', [SeedKey(60)], case='never used, created 60 days ago'),
        SeedUser('grace-two-keys', [SeedKey(300, used=2), SeedKey(200, used=100)],
                 case='two keys: one used, one idle'),
        SeedUser('heidi-deactivated-5d',
                 [SeedKey(300, used=200, status='Inactive', marker=5)],
                 case='deactivated by the policy 5 days ago'),
        SeedUser('ivan-deactivated-40d',
                 [SeedKey(300, used=300, status='Inactive', marker=40)],
                 case='deactivated by the policy 40 days ago'),
        SeedUser('judy-reactivated', [SeedKey(300, used=100, marker=10)],
                 case='deactivated 10 days ago, reactivated by its owner'),
        SeedUser('mallory-exempt', [SeedKey(300, used=200)], tags={EXEMPT_TAG: '*'},
                 case='exempt'),
        SeedUser('oscar-exemption-expired', [SeedKey(300, used=200)],
                 tags={EXEMPT_TAG: '* until=%s' % expired}, case='exemption expired'),
        # Console passwords, and no keys.
        SeedUser('peggy-password-10d', [], password=SeedPassword(300, used=10),
                 case='console password used 10 days ago'),
        SeedUser('quinn-password-60d', [], password=SeedPassword(300, used=60),
                 case='console password used 60 days ago'),
        SeedUser('rupert-password-400d', [], password=SeedPassword(500, used=400, marker=40),
                 case='console password used 400 days ago, marked 40 days ago'),
        SeedUser('sybil-password-never', [], password=SeedPassword(60),
                 case='console password never used, set 60 days ago'),
        SeedUser('trent-dormant', [], created=400,
                 case='no key and no password left, made 400 days ago'),
    ]


def ordinary_users(prefix: str, count: int, rng: random.Random,
                   unused_share: float = 0.0) -> List[SeedUser]:
    """Users with one or two keys (1.5 on average); `unused_share` of keys idle 60+ days."""
    users = []
    for n in range(1, count + 1):
        keys = []
        for _ in range(rng.choice((1, 2))):
            created = rng.randint(100, 900)
            if rng.random() < unused_share:
                keys.append(SeedKey(created, used=rng.randint(60, min(created, 400))))
            else:
                keys.append(SeedKey(created, used=rng.randint(0, 30)))
        users.append(SeedUser('%s-%05d' % (prefix, n), keys))
    return users


def organisation(account_name: str, now: datetime, ordinary: int = 30,
                 extra: int = 0, seed: int = 7) -> List[SeedUser]:
    """The users of one sandbox account."""
    rng = random.Random('%s-%d' % (account_name, seed))
    users = lifecycle_cases(now) + ordinary_users('%s-user' % account_name, ordinary, rng)
    if extra:
        users += ordinary_users('%s-extra' % account_name, extra, rng, unused_share=0.1)
    return users


def seed_account(emu, account: str, users: List[SeedUser], workers: int = 8,
                 through_api: bool = True) -> List[SeedUser]:
    """Create the users, then move their dates back. Returns them, with ids.

    Through the IAM API by default, as c7n-org reaches an account; `through_api=False`
    writes the emulator's objects directly, for thousands of users in a test.
    """
    now = datetime.now(timezone.utc)
    backend = emu.backend(account)
    client = emu.iam_client(account) if through_api else None

    def tags_of(user: SeedUser) -> Dict[str, str]:
        tags = dict(user.tags)
        for k in user.keys:
            if k.marker is not None:
                tags[markers.deactivated_tag(MARKER_PREFIX, k.key_id)] = \
                    markers.format_time(now - timedelta(days=k.marker))
        if user.password and user.password.marker is not None:
            tags[MARKER_PREFIX + PASSWORD_SUFFIX] = markers.format_time(
                now - timedelta(days=user.password.marker))
        return tags

    def create(user: SeedUser):
        client.create_user(UserName=user.name)
        for k in user.keys:
            k.key_id = client.create_access_key(UserName=user.name)['AccessKey']['AccessKeyId']
            if k.status != 'Active':
                client.update_access_key(UserName=user.name, AccessKeyId=k.key_id,
                                         Status=k.status)
        if user.password:
            client.create_login_profile(UserName=user.name, Password=PASSWORD)
        tags = tags_of(user)
        if tags:
            client.tag_user(UserName=user.name,
                            Tags=[{'Key': t, 'Value': v} for t, v in tags.items()])

    def create_directly(user: SeedUser):
        backend.create_user('us-east-1', user.name)
        for k in user.keys:
            k.key_id = backend.create_access_key(user.name).access_key_id
            if k.status != 'Active':
                backend.update_access_key(user.name, k.key_id, k.status)
        if user.password:
            backend.create_login_profile(user.name, PASSWORD)
        tags = tags_of(user)
        if tags:
            backend.tag_user(user.name, [{'Key': t, 'Value': v} for t, v in tags.items()])

    if not through_api:
        for user in users:
            create_directly(user)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(create, users))
    for user in users:
        for k in user.keys:
            emu.backdate_key(account, k.key_id, created_days=k.created, used_days=k.used,
                             never_used=k.used is None)
        p = user.password
        if p:
            emu.backdate_password(account, user.name, created_days=p.created,
                                  used_days=p.used, never_used=p.used is None)
        # A user exists before its credentials: made with the oldest, not today.
        held = backend.users[user.name]
        made = [held.create_date] + [k.create_date for k in held.access_keys]
        if p:
            made.append(held.login_profile_created)
        if user.created is not None:
            made.append(moto_fixes.utcnow_naive() - timedelta(days=user.created))
        held.create_date = min(made)
    return users


def seed_organisation(emu, accounts: Dict[str, str], ordinary: int = 30,
                      extra: int = 0, through_api: bool = True) -> Dict[str, List[SeedUser]]:
    """Seed each account {account_id: name}; returns the users per account id."""
    now = datetime.now(timezone.utc)
    return {account: seed_account(emu, account, organisation(name, now, ordinary, extra),
                                  through_api=through_api)
            for account, name in accounts.items()}
