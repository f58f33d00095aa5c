"""A seeded account that covers every case of the filter, with the expected outcome per key.

The thresholds are those of the shipped report policy: days 45, never-used-days 30,
status Active. Boundary keys sit one hour on either side, so the seconds a run
takes cannot move them across.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from c7n_unused_keys.names import EXEMPT_TAG

H = 1 / 24
OTHER_KEY = 'AKIAZZZZZZZZZZZZZZZZ'


@dataclass
class K:
    created: float
    used: Optional[float] = None
    status: str = 'Active'
    unused: bool = False          # matches days 45 / never-used-days 30 / Active
    exempt: bool = False          # would match, but its user's exempt tag keeps it
    key_id: str = ''


@dataclass
class U:
    name: str
    keys: List[K]
    exempt_tag: Optional[str] = None
    path: str = '/'


def cases() -> List[U]:
    users = [
        U('recent-1d', [K(400, used=1)]),
        U('recent-10d', [K(400, used=10)]),
        U('recent-44d', [K(400, used=44)]),
        U('boundary-under', [K(400, used=45 - H)]),
        U('boundary-over', [K(400, used=45 + H, unused=True)]),
        U('stale-50d', [K(400, used=50, unused=True)]),
        U('stale-120d', [K(400, used=120, unused=True)]),
        U('stale-400d', [K(500, used=400, unused=True)]),
        U('never-young', [K(3)]),
        U('never-old', [K(60, unused=True)]),
        U('never-boundary-under', [K(30 - H)]),
        U('never-boundary-over', [K(30 + H, unused=True)]),
        U('two-keys', [K(300, used=2), K(200, used=100, unused=True)]),
        U('two-stale-keys', [K(300, used=90, unused=True), K(200, unused=True)]),
        U('exempt-one-of-two', [K(300, used=90, exempt=True), K(200, used=80, unused=True)],
          exempt_tag='{key0}'),
        U('inactive-stale', [K(400, used=200, status='Inactive')]),
        U('inactive-and-active', [K(400, used=200, status='Inactive'), K(100, used=60,
                                                                         unused=True)]),
        U('exempt-all', [K(400, used=300, exempt=True)], exempt_tag='*'),
        U('exempt-expired', [K(400, used=300, unused=True)],
          exempt_tag='* until=2020-01-01'),
        U('exempt-other-key', [K(400, used=300, unused=True)], exempt_tag=OTHER_KEY),
        U('exempt-until-future', [K(400, used=300, exempt=True)],
          exempt_tag='* until=2999-01-01'),
        U('exempt-malformed', [K(400, used=300, unused=True)], exempt_tag='forever please'),
        U('no-keys', []),
        U('with-path', [K(400, used=70, unused=True)], path='/engineering/'),
    ]
    users += [U('ordinary-%02d' % i, [K(200, used=i % 7 + 1)]) for i in range(12)]
    return users


def seed(client, emu, account: str, users: List[U]) -> Dict[str, U]:
    """Create the users and keys through the API, then backdate them in the emulator."""
    for u in users:
        client.create_user(UserName=u.name, Path=u.path)
        for k in u.keys:
            k.key_id = client.create_access_key(UserName=u.name)['AccessKey']['AccessKeyId']
            if k.status != 'Active':
                client.update_access_key(UserName=u.name, AccessKeyId=k.key_id,
                                         Status=k.status)
            emu.backdate_key(account, k.key_id, created_days=k.created, used_days=k.used,
                             never_used=k.used is None)
        if u.exempt_tag is not None:
            value = u.exempt_tag.format(key0=u.keys[0].key_id if u.keys else '')
            client.tag_user(UserName=u.name,
                            Tags=[{'Key': EXEMPT_TAG, 'Value': value}])
    return {u.name: u for u in users}


def expected(users: List[U], status: Optional[str] = 'Active') -> Tuple[set, set]:
    """(unused key ids, exempt key ids); status=None: with `status: any` instead of Active."""
    keys = [k for u in users for k in u.keys]
    unused = {k.key_id for k in keys if k.unused}
    if status is None:
        unused |= {k.key_id for u in users for k in u.keys if k.status != 'Active'
                   and not k.exempt and stale(k) and not exempts(u)}
    return unused, {k.key_id for k in keys if k.exempt}


def stale(k: K) -> bool:
    return k.used >= 45 if k.used is not None else k.created >= 30


def exempts(u: U) -> bool:
    return u.exempt_tag in ('*', '* until=2999-01-01')


def candidates(users: List[U]) -> Tuple[int, int]:
    """(users, keys) that the hybrid pre-screen must keep, from a report made just now."""
    def may(k):
        return k.status == 'Active' and (k.used >= 45 if k.used is not None else k.created >= 30)

    def slot_may(k):
        return (k.used is not None and k.used >= 45) or (k.used is None and k.created >= 30)
    users_kept = [u for u in users if any(slot_may(k) for k in u.keys)]
    return len(users_kept), sum(1 for u in users for k in u.keys if may(k))
