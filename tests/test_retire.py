"""The retire policy through the real `custodian` and `c7n-org`. Time moves by `advance`.

The lifecycle's tests run at both levels: the shipped user-level policy, and its twin on
aws.iam-access-key (`helpers.key_policy`); tests/test_key_retire.py holds what only the
key level has."""
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from c7n_unused_keys import markers
from c7n_unused_keys.permissions import needed
from conftest import (DEFAULT_ACCOUNT, ROOT, custodian_run, faults, iam_client, read_json,
                      run_command, write_policies)
from helpers import (KEY_NAME, PREFIX, RETIRE, RETIRE_NAME, account_state, key_policy, seed,
                     seeded)

ACCOUNTS = {'dev': '111111111111', 'staging': '222222222222', 'prod': '333333333333'}


class Retire:
    """`custodian run` of the retire policy at one level ('user' or 'key'), and its records."""

    def __init__(self, level: str, tmp_path: Path):
        self.level = level
        if level == 'user':
            self.name, self.policy = RETIRE_NAME, RETIRE
        else:
            self.name = KEY_NAME
            self.policy = write_policies(tmp_path / 'keys.yml', key_policy())

    def __call__(self, emu, out, *extra, env=None):
        return custodian_run(emu, out, self.policy, *extra, env=env)

    def records(self, out):
        return read_json(out / self.name / 'action-retire-access-keys')

    def steps(self, out):
        return {(r['UserName'], r['Step']) for r in self.records(out)}


@pytest.fixture(params=['user', 'key'])
def retire(request, tmp_path):
    return Retire(request.param, tmp_path)


@pytest.fixture
def users(tmp_path):
    """The user level alone, for what these tests check of it only."""
    return Retire('user', tmp_path)


# -- At both levels ----------------------------------------------------------------------

def test_timeline(sandbox, tmp_path, retire):
    ids = seed(sandbox)
    c = iam_client(sandbox)

    day0 = retire(sandbox, tmp_path / 'day0')
    assert day0.returncode == 0, day0.stderr
    assert retire.steps(tmp_path / 'day0') == {
        ('stale', 'deactivated'), ('never-used', 'deactivated'), ('keeper', 'deactivated')}
    s = account_state(sandbox)
    for name in ('stale', 'never-used', 'keeper'):
        assert s[name].keys == {ids[name]: 'Inactive'}
        marker = s[name].tags[PREFIX + ids[name]]
        # The deactivation time and the delete-on date this run announced.
        value = markers.parse_marker(marker, datetime.now(timezone.utc))
        assert abs(value.at - datetime.now(timezone.utc)) < timedelta(minutes=5)
        assert value.delete_on == value.at + timedelta(days=30)
    assert s['recent'].keys == {ids['recent']: 'Active'} and not s['recent'].tags
    assert s['young'].keys == {ids['young']: 'Active'}
    recs = retire.records(tmp_path / 'day0')
    run_id = read_json(tmp_path / 'day0' / retire.name / 'metadata.json')['execution']['id']
    assert all(set(r) == {'UserName', 'AccessKeyId', 'Step', 'At', 'DeleteOn', 'Error',
                          'ApprovalTag', 'ApprovedBy', 'Marker', 'ExecutionId'}
               and r['ExecutionId'] == run_id
               for r in recs)
    assert all(r['DeleteOn'] and r['Error'] is None for r in recs)
    # One resource per matched user (or key), carrying its own record.
    found = read_json(tmp_path / 'day0' / retire.name / 'resources.json')
    assert sorted(r['UserName'] for r in found) == ['keeper', 'never-used', 'stale']
    if retire.level == 'key':
        assert {r['AccessKeyId'] for r in found} == {ids[n] for n in ('stale', 'never-used',
                                                                      'keeper')}

    sandbox.advance(DEFAULT_ACCOUNT, 10)
    day10 = retire(sandbox, tmp_path / 'day10')
    assert day10.returncode == 0, day10.stderr
    assert retire.steps(tmp_path / 'day10') == {
        ('stale', 'waiting'), ('never-used', 'waiting'), ('keeper', 'waiting')}
    assert {n: v.keys for n, v in account_state(sandbox).items()} == \
        {n: v.keys for n, v in s.items()}

    # Its owner needs the key back during the grace period.
    c.update_access_key(UserName='keeper', AccessKeyId=ids['keeper'], Status='Active')

    sandbox.advance(DEFAULT_ACCOUNT, 21)
    day31 = retire(sandbox, tmp_path / 'day31')
    assert day31.returncode == 0, day31.stderr
    # The young key has now gone unused for 36 days since its creation.
    assert retire.steps(tmp_path / 'day31') == {
        ('stale', 'deleted'), ('never-used', 'deleted'), ('keeper', 'reactivated'),
        ('young', 'deactivated')}
    s = account_state(sandbox)
    assert s['stale'].keys == {} and s['never-used'].keys == {}
    assert [k for v in s.values() for k in v.tags if k.startswith(PREFIX)] == \
        [PREFIX + ids['young']]
    assert s['keeper'].keys == {ids['keeper']: 'Active'}
    assert s['recent'].keys == {ids['recent']: 'Active'}
    assert s['young'].keys == {ids['young']: 'Inactive'}

    # The reactivation holds on the next run: it counts as use.
    again = retire(sandbox, tmp_path / 'day31b')
    assert again.returncode == 0, again.stderr
    assert account_state(sandbox)['keeper'].keys == {ids['keeper']: 'Active'}

    # Over the timeline, the calls made are exactly the permissions that `c7n-unused-keys
    # permissions` declares, but the action's GetUser: it reads a marker
    # back only after a TagUser whose answer was lost (tests/test_retire_corners.py).
    made = set()
    for day in ('day0', 'day10', 'day31', 'day31b'):
        stats = read_json(tmp_path / day / retire.name / 'metadata.json')['api-stats']
        made |= {'iam:' + op.split('.', 1)[1] for op in stats}
    assert made == needed([str(retire.policy)]) - {'iam:GetUser'}


def test_inactive_key_without_marker_is_marked_and_survives(sandbox, tmp_path, retire):
    ids = seed(sandbox, users={'off': dict(created=300, used=100, status='Inactive'),
                               'on': dict(created=300, used=2)})
    run = retire(sandbox, tmp_path / 'out')
    assert run.returncode == 0, run.stderr
    assert retire.steps(tmp_path / 'out') == {('off', 'marked')}
    s = account_state(sandbox)
    assert s['off'].keys == {ids['off']: 'Inactive'}
    assert PREFIX + ids['off'] in s['off'].tags


def test_dryrun_changes_nothing(sandbox, tmp_path, retire):
    seed(sandbox)
    first = retire(sandbox, tmp_path / 'first')
    assert first.returncode == 0, first.stderr
    sandbox.advance(DEFAULT_ACCOUNT, 31)
    before = account_state(sandbox)
    run = retire(sandbox, tmp_path / 'dry', '--dryrun')
    assert run.returncode == 0, run.stderr
    assert account_state(sandbox) == before
    assert read_json(tmp_path / 'dry' / retire.name / 'resources.json')
    assert not (tmp_path / 'dry' / retire.name / 'action-retire-access-keys').exists()


@pytest.mark.parametrize('day', [0, 31])
def test_two_runs_on_the_same_day_equal_one(sandbox, tmp_path, retire, day):
    ids = seed(sandbox)
    if day:
        start = retire(sandbox, tmp_path / 'start')
        assert start.returncode == 0, start.stderr
        iam_client(sandbox).update_access_key(UserName='keeper', AccessKeyId=ids['keeper'],
                                              Status='Active')
        sandbox.advance(DEFAULT_ACCOUNT, day)
    first = retire(sandbox, tmp_path / 'one')
    assert first.returncode == 0, first.stderr
    once = account_state(sandbox)
    second = retire(sandbox, tmp_path / 'two')
    assert second.returncode == 0, second.stderr
    assert account_state(sandbox) == once


def test_circuit_breaker_stops_before_any_action(sandbox, tmp_path, retire):
    seed(sandbox, users={'stale-%02d' % i: dict(created=300, used=100) for i in range(25)})
    before = account_state(sandbox)
    run = retire(sandbox, tmp_path / 'out')
    assert run.returncode != 0
    assert 'circuit breaker: 25 deactivations planned of 25 keys seen' in run.stderr
    assert account_state(sandbox) == before


def test_a_rerun_within_the_cache_period_waits(sandbox, tmp_path, retire):
    """`custodian run` as the README says it, with c7n's default 15-minute cache (in a
    cache file of the test's own), twice."""
    seeded(sandbox)
    cache = tmp_path / 'cache.sqlite'

    def cached_run(out):
        return run_command(['custodian', 'run', '-s', out, '-f', cache, retire.policy], sandbox)
    first = cached_run(tmp_path / 'one')
    assert first.returncode == 0, first.stderr
    after_first = account_state(sandbox)
    second = cached_run(tmp_path / 'two')
    assert second.returncode == 0, second.stderr
    assert account_state(sandbox) == after_first
    got = {(r['UserName'], r['AccessKeyId']): r['Step']
           for r in retire.records(tmp_path / 'two')}
    deactivated = {(r['UserName'], r['AccessKeyId']) for r in retire.records(tmp_path / 'one')
                   if r['Step'] == 'deactivated'}
    assert deactivated and {k: got[k] for k in deactivated} == {k: 'waiting' for k in deactivated}
    assert 'marked' not in got.values() and 'gone' not in got.values()


# -- The user level ----------------------------------------------------------------------

def test_one_failing_key_does_not_stop_the_others(sandbox, tmp_path, users):
    ids = seed(sandbox)
    day0 = users(sandbox, tmp_path / 'day0')
    assert day0.returncode == 0, day0.stderr
    sandbox.advance(DEFAULT_ACCOUNT, 31)
    run = users(sandbox, tmp_path / 'day31', env=faults('DeleteAccessKey=AccessDenied/stale'))
    assert run.returncode != 0
    assert 'retire-access-keys: 1 of 4 keys failed: stale %s: AccessDenied' % ids['stale'] \
        in run.stderr
    recs = {r['UserName']: r for r in users.records(tmp_path / 'day31')}
    assert recs['stale']['Step'] == 'failed' and 'AccessDenied' in recs['stale']['Error']
    assert recs['never-used']['Step'] == 'deleted'
    s = account_state(sandbox)
    assert s['stale'].keys == {ids['stale']: 'Inactive'}
    assert PREFIX + ids['stale'] in s['stale'].tags
    assert s['never-used'].keys == {}


def test_marker_of_a_key_deleted_by_someone_else_is_removed(sandbox, tmp_path, users):
    ids = seed(sandbox, users={'solo': dict(created=300, used=100),
                               'on': dict(created=300, used=2)})
    day0 = users(sandbox, tmp_path / 'day0')
    assert day0.returncode == 0, day0.stderr
    iam_client(sandbox).delete_access_key(UserName='solo', AccessKeyId=ids['solo'])
    run = users(sandbox, tmp_path / 'day1')
    assert run.returncode == 0, run.stderr
    assert users.steps(tmp_path / 'day1') == {('solo', 'gone')}
    assert account_state(sandbox)['solo'].tags == {}


def test_malformed_marker_is_rewritten_and_nothing_deleted(sandbox, tmp_path, users):
    ids = seed(sandbox, users={'odd': dict(created=300, used=100, status='Inactive'),
                               'on': dict(created=300, used=2)})
    iam_client(sandbox).tag_user(UserName='odd', Tags=[
        {'Key': PREFIX + ids['odd'], 'Value': 'ages ago'}])
    run = users(sandbox, tmp_path / 'out')
    assert run.returncode == 0, run.stderr
    assert "cannot be parsed; rewritten as now" in run.stderr
    assert users.steps(tmp_path / 'out') == {('odd', 'marked')}
    s = account_state(sandbox)['odd']
    assert s.keys == {ids['odd']: 'Inactive'}
    assert s.tags[PREFIX + ids['odd']].endswith('Z')


def test_org_wide(sandbox, tmp_path):
    ids = {name: seed(sandbox, account) for name, account in ACCOUNTS.items()}
    org = ['c7n-org', 'run', '-c', ROOT / 'custodian.yml', '--cache-period', '0', '-u', RETIRE]
    day0 = run_command(org + ['-s', tmp_path / 'day0'], sandbox)
    assert day0.returncode == 0, day0.stderr
    assert 'c7n_org:WARNING' not in day0.stderr and 'ERROR' not in day0.stderr
    for name, account in ACCOUNTS.items():
        runs = list((tmp_path / 'day0' / name).glob('*/%s/metadata.json' % RETIRE_NAME))
        assert len(runs) == 1 and runs[0].parent.parent.name == 'us-east-1'
        s = account_state(sandbox, account)
        assert {n for n, v in s.items() if 'Inactive' in v.keys.values()} == \
            {'stale', 'never-used', 'keeper'}
        sandbox.advance(account, 31)
    iam_client(sandbox, ACCOUNTS['prod']).update_access_key(
        UserName='keeper', AccessKeyId=ids['prod']['keeper'], Status='Active')
    day31 = run_command(org + ['-s', tmp_path / 'day31'], sandbox)
    assert day31.returncode == 0, day31.stderr
    for name, account in ACCOUNTS.items():
        s = account_state(sandbox, account)
        assert s['stale'].keys == {} and s['never-used'].keys == {}
        kept = 'Active' if name == 'prod' else None
        assert s['keeper'].keys == ({ids[name]['keeper']: 'Active'} if kept else {})
        assert s['recent'].keys == {ids[name]['recent']: 'Active'}
        assert [k for v in s.values() for k in v.tags if k.startswith(PREFIX)] == \
            [PREFIX + ids[name]['young']]


def test_org_wide_failure_is_not_hidden_by_c7n_org(sandbox, tmp_path):
    for account in ACCOUNTS.values():
        seed(sandbox, account)
    org = ['c7n-org', 'run', '-c', ROOT / 'custodian.yml', '--cache-period', '0', '-u', RETIRE]
    run = run_command(org + ['-s', tmp_path], sandbox,
                      extra_env=faults('UpdateAccessKey=AccessDenied/keeper'))
    assert run.returncode != 0
    assert 'retire-access-keys: 1 of 3 keys failed: keeper' in run.stderr


def test_a_key_is_never_left_deactivated_without_its_marker(sandbox, tmp_path, users):
    ids = seed(sandbox)
    run = users(sandbox, tmp_path / 'out', env=faults('TagUser=AccessDenied/stale'))
    assert run.returncode != 0
    assert 'AccessDenied: injected by the tests (TagUser); the key was reactivated' in run.stderr
    s = account_state(sandbox)
    assert s['stale'] == ({ids['stale']: 'Active'}, {})
    assert s['never-used'].keys == {ids['never-used']: 'Inactive'}
    assert PREFIX + ids['never-used'] in s['never-used'].tags


def test_an_expired_key_is_retired_as_a_deactivated_one(sandbox, tmp_path, users):
    """IAM's third status, Expired: the key signs nothing, so it is marked (not
    deactivated), waits its grace and is deleted; it is never recorded `reactivated`.
    (Before, the delete's recheck took it for a reactivation, and it was never deleted.)"""
    ids = seed(sandbox, users={'expired': dict(created=300, used=100),
                               'recent': dict(created=300, used=1)})
    sandbox.backend(DEFAULT_ACCOUNT).access_keys[ids['expired']].status = 'Expired'
    day0 = users(sandbox, tmp_path / 'day0')
    assert day0.returncode == 0, day0.stderr
    assert users.steps(tmp_path / 'day0') == {('expired', 'marked')}
    assert account_state(sandbox)['expired'].keys == {ids['expired']: 'Expired'}
    sandbox.advance(DEFAULT_ACCOUNT, 10)
    assert users(sandbox, tmp_path / 'day10').returncode == 0
    assert users.steps(tmp_path / 'day10') == {('expired', 'waiting')}
    sandbox.advance(DEFAULT_ACCOUNT, 21)
    day31 = users(sandbox, tmp_path / 'day31')
    assert day31.returncode == 0, day31.stderr
    assert users.steps(tmp_path / 'day31') == {('expired', 'deleted')}
    s = account_state(sandbox)
    assert s['expired'] == ({}, {})
    assert s['recent'].keys == {ids['recent']: 'Active'}
