"""The retire policy in the corners: c7n's resource cache, lost responses, a concurrent run,
spent markers, stale annotations and the `max-deactivations` circuit breaker.

Every test asserts the emulator's final state, not only what a run printed.
"""
import json
import time
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from c7n_unused_keys import markers
from c7n_unused_keys.names import EXEMPT_TAG
from conftest import (DEFAULT_ACCOUNT, ROOT, custodian_run, faults, iam_client, read_json,
                      run_command)
from helpers import PREFIX, R_PREFIX, account_state, seeded

RETIRE = ROOT / 'policies' / 'unused-access-keys-retire.yml'
NAME = 'unused-access-keys-retire'


def steps(out):
    return {(r['UserName'], r['AccessKeyId']): r['Step']
            for r in read_json(out / NAME / 'action-retire-access-keys')}


def matched_users(out):
    return {r['UserName'] for r in read_json(out / NAME / 'resources.json')}


def cached_run(emu, out, cache, *extra, policy=RETIRE, env=None):
    """`custodian run` as the README says it, with c7n's default 15-minute cache, in a
    cache file of the test's own."""
    return run_command(['custodian', 'run', '-s', out, '-f', cache] + list(extra) + [policy],
                       emu, extra_env=env)


# -- 1. c7n's resource cache -----------------------------------------------------------

# A rerun within the cache period: tests/test_retire.py, at both levels.

def test_a_key_its_owner_reactivated_stays_active_under_the_cache(sandbox, tmp_path):
    ids = seeded(sandbox)
    cache = tmp_path / 'cache.sqlite'
    assert cached_run(sandbox, tmp_path / 'one', cache).returncode == 0
    bob = ids['bob-idle-50d'][0]
    assert account_state(sandbox)['bob-idle-50d'].keys == {bob: 'Inactive'}
    iam_client(sandbox).update_access_key(UserName='bob-idle-50d', AccessKeyId=bob,
                                          Status='Active')
    again = cached_run(sandbox, tmp_path / 'two', cache)
    assert again.returncode == 0, again.stderr
    assert steps(tmp_path / 'two')[('bob-idle-50d', bob)] == 'reactivated'
    keys, tags = account_state(sandbox)['bob-idle-50d']
    assert keys == {bob: 'Active'} and PREFIX + bob not in tags and R_PREFIX + bob in tags


def test_an_exemption_added_after_the_dry_run_is_honoured(sandbox, tmp_path):
    ids = seeded(sandbox)
    cache = tmp_path / 'cache.sqlite'
    dry = cached_run(sandbox, tmp_path / 'dry', cache, '--dryrun')
    assert dry.returncode == 0, dry.stderr
    assert 'carol-idle-120d' in matched_users(tmp_path / 'dry')
    iam_client(sandbox).tag_user(UserName='carol-idle-120d', Tags=[
        {'Key': EXEMPT_TAG, 'Value': '*'}])
    real = cached_run(sandbox, tmp_path / 'real', cache)
    assert real.returncode == 0, real.stderr
    carol = ids['carol-idle-120d'][0]
    keys, tags = account_state(sandbox)['carol-idle-120d']
    assert keys == {carol: 'Active'} and not [t for t in tags if t.startswith(PREFIX)]
    assert ('carol-idle-120d', carol) not in steps(tmp_path / 'real')


def test_another_policy_s_matches_are_not_acted_on(sandbox, tmp_path):
    """In one process, c7n's in-memory cache shares user objects between policies."""
    c = iam_client(sandbox)
    c.create_user(UserName='x')
    idle = c.create_access_key(UserName='x')['AccessKey']['AccessKeyId']
    sandbox.backdate_key(DEFAULT_ACCOUNT, idle, created_days=300, used_days=100)
    # A marker whose key is gone: the retire policy reaches x through marked-access-keys.
    c.tag_user(UserName='x', Tags=[{'Key': PREFIX + 'AKIAGONEGONEGONEGONE',
                                    'Value': '2020-01-01T00:00:00Z'}])
    retire = yaml.safe_load(RETIRE.read_text())['policies'][0]
    retire['filters'][0]['or'][0]['days'] = 400
    retire['filters'][0]['or'][0]['never-used-days'] = 400
    report = {'name': 'look-only', 'resource': 'aws.iam-user',
              'source': retire['source'], 'filters': [{'type': 'unused-access-keys',
                                                       'days': 45}]}
    policies = tmp_path / 'both.yml'
    policies.write_text(yaml.safe_dump({'policies': [report, retire]}))
    run = run_command(['custodian', 'run', '-s', tmp_path / 'out', '-f', 'memory', policies],
                      sandbox)
    assert run.returncode == 0, run.stderr
    keys, tags = account_state(sandbox)['x']
    assert keys == {idle: 'Active'} and tags == {}


# -- 3. deletes whose follow-up fails or whose answer is lost -------------------------

def day31(emu, tmp_path, env=None):
    """ivan's key (marker 40 days old) is due for deletion on this run."""
    ids = seeded(emu, ordinary=0)
    run = custodian_run(emu, tmp_path / 'day31', RETIRE, env=env)
    return ids['ivan-deactivated-40d'][0], run


def test_a_delete_whose_untag_fails_is_recorded_as_deleted(sandbox, tmp_path):
    ivan, run = day31(sandbox, tmp_path,
                      env=faults('UntagUser=ServiceFailure/ivan-deactivated-40d'))
    assert run.returncode == 0, run.stderr
    assert steps(tmp_path / 'day31')[('ivan-deactivated-40d', ivan)] == 'deleted'
    assert PREFIX + ivan in run.stderr  # the warning names the leftover tag
    keys, tags = account_state(sandbox)['ivan-deactivated-40d']
    assert keys == {} and PREFIX + ivan in tags
    rerun = custodian_run(sandbox, tmp_path / 'next', RETIRE)
    assert rerun.returncode == 0, rerun.stderr
    assert account_state(sandbox)['ivan-deactivated-40d'] == ({}, {})


def test_a_delete_whose_answer_is_lost_is_recorded_as_deleted(sandbox, tmp_path):
    ivan, run = day31(sandbox, tmp_path,
                      env=faults('DeleteAccessKey=Lost/ivan-deactivated-40d'))
    assert run.returncode == 0, run.stderr
    assert steps(tmp_path / 'day31')[('ivan-deactivated-40d', ivan)] == 'deleted'
    assert account_state(sandbox)['ivan-deactivated-40d'] == ({}, {})
    report = run_command(['c7n-unused-keys', 'report', tmp_path / 'day31', '--fail-on',
                          'actions'], None)
    assert report.returncode == 1, report.stdout + report.stderr


# -- 3b. an undo must not read later as the owner's reactivation ----------------------

def next_step_of_bob(emu, tmp_path, env=None, hook=None):
    """Day 0 with a fault on bob's marker, then a clean run: bob's steps and state."""
    ids = seeded(emu, ordinary=0)
    if hook:
        hook()
    bob = ids['bob-idle-50d'][0]
    first = custodian_run(emu, tmp_path / 'first', RETIRE, env=env)
    after_first = account_state(emu)['bob-idle-50d']
    second = custodian_run(emu, tmp_path / 'second', RETIRE)
    assert second.returncode == 0, second.stderr
    return bob, first, after_first, steps(tmp_path / 'second').get(('bob-idle-50d', bob))


def test_a_marker_applied_with_its_answer_lost_is_not_read_as_a_reactivation(sandbox, tmp_path):
    # Two attempts are enough to lose one answer and meet a 500; botocore's backoff
    # between five would only cost time.
    bob, first, after_first, step = next_step_of_bob(
        sandbox, tmp_path, env=dict(faults('TagUser=Lost500/bob-idle-50d'),
                                    AWS_MAX_ATTEMPTS='2'))
    keys, tags = after_first
    # Whatever the first run left, the next run reads it as the policy's own doing.
    assert (keys[bob], PREFIX + bob in tags) in (('Inactive', True), ('Inactive', False),
                                                 ('Active', False)), after_first
    assert step in ('waiting', 'marked', 'deactivated'), step
    keys, tags = account_state(sandbox)['bob-idle-50d']
    assert keys == {bob: 'Inactive'} and PREFIX + bob in tags and R_PREFIX + bob not in tags


def other_run_marks(emu, ago=timedelta(0), lagging=False):
    """A callback: another run's marker on bob's key lands, written `ago`; with
    `lagging`, reads of bob's tags lag that write (they show the tags from before it)."""
    def mark():
        b = emu.backend(DEFAULT_ACCOUNT)
        key = b.users['bob-idle-50d'].access_keys[0].access_key_id
        if lagging:
            emu.serve_tags_stale(DEFAULT_ACCOUNT, 'bob-idle-50d', reads=5)
        b.tag_user('bob-idle-50d', [{'Key': PREFIX + key, 'Value': markers.format_time(
            datetime.now(timezone.utc) - ago)}])
    return mark


def test_a_concurrent_run_s_marker_is_not_read_as_a_reactivation(sandbox, tmp_path):
    """Our TagUser fails while another run marks the same key."""
    # Just before our deactivation is handled, the other run's marker lands.
    bob, first, after_first, step = next_step_of_bob(
        sandbox, tmp_path, env=faults('TagUser=AccessDenied/bob-idle-50d'),
        hook=lambda: sandbox.on_request('UpdateAccessKey', other_run_marks(
            sandbox, timedelta(minutes=1)), user='bob-idle-50d'))
    assert after_first.keys == {bob: 'Inactive'} and PREFIX + bob in after_first.tags
    assert step == 'waiting'
    assert R_PREFIX + bob not in account_state(sandbox)['bob-idle-50d'].tags


@pytest.mark.parametrize('lagging', [False, True], ids=['reads-current', 'reads-lagging'])
def test_a_marker_that_lands_during_the_undo_is_removed(sandbox, tmp_path, lagging):
    """A definite refusal of our marker: we put the key back, while another run's marker
    lands. It is removed unread, so the key is Active without it, also when reads lag
    the write. (Before, the undo read first, missed a lagging marker, and left the key
    Active with it.)"""
    # The second UpdateAccessKey for bob is the undo (back to Active).
    bob, first, after_first, step = next_step_of_bob(
        sandbox, tmp_path, env=faults('TagUser=AccessDenied/bob-idle-50d'),
        hook=lambda: sandbox.on_request('UpdateAccessKey', other_run_marks(
            sandbox, lagging=lagging), user='bob-idle-50d', skip=1))
    assert first.returncode != 0
    assert after_first == ({bob: 'Active'}, {})
    assert step == 'deactivated'


def test_two_runs_at_once_with_reads_lagging_writes_leave_the_key_deactivated(sandbox,
                                                                             tmp_path):
    """Run A deactivates bob's key, run B marks it; A's TagUser meets IAM's 409
    ConcurrentModification, and A's read-back is stale (it misses B's marker). The key
    stays Inactive with B's marker, and the next run waits. (Before, A took the 409 for a
    definite refusal and put the key back: Active with B's marker, read as its owner's
    reactivation.)"""
    bob, first, after_first, step = next_step_of_bob(
        sandbox, tmp_path, env=faults('TagUser=ConcurrentModification/bob-idle-50d'),
        hook=lambda: sandbox.on_request('UpdateAccessKey', other_run_marks(
            sandbox, timedelta(minutes=1), lagging=True), user='bob-idle-50d'))
    assert first.returncode != 0
    assert after_first.keys == {bob: 'Inactive'} and PREFIX + bob in after_first.tags
    assert step == 'waiting'
    assert R_PREFIX + bob not in account_state(sandbox)['bob-idle-50d'].tags


def test_the_sandbox_serves_stale_tags_for_the_reads_asked(sandbox):
    from conftest import iam_client
    c = iam_client(sandbox)
    c.create_user(UserName='lag', Tags=[{'Key': 'a', 'Value': '1'}])
    sandbox.serve_tags_stale(DEFAULT_ACCOUNT, 'lag', reads=2)
    c.tag_user(UserName='lag', Tags=[{'Key': 'b', 'Value': '2'}])
    assert c.get_user(UserName='lag')['User']['Tags'] == [{'Key': 'a', 'Value': '1'}]
    assert c.list_user_tags(UserName='lag')['Tags'] == [{'Key': 'a', 'Value': '1'}]
    # Caught up.
    assert {t['Key'] for t in c.get_user(UserName='lag')['User']['Tags']} == {'a', 'b'}


# -- 3. spent markers ------------------------------------------------------------------

def test_a_reactivation_tag_is_removed_once_its_grace_has_passed(sandbox, tmp_path):
    # No ordinary users: 46 days on, they would all be idle.
    ids = seeded(sandbox, ordinary=0)
    judy = ids['judy-reactivated'][0]
    run = custodian_run(sandbox, tmp_path / 'day0', RETIRE)
    assert run.returncode == 0, run.stderr
    assert steps(tmp_path / 'day0')[('judy-reactivated', judy)] == 'reactivated'
    assert R_PREFIX + judy in account_state(sandbox)['judy-reactivated'].tags
    # Within the grace, with the key in use, judy's markers need no work.
    sandbox.backdate_key(DEFAULT_ACCOUNT, judy, used_days=0)
    run = custodian_run(sandbox, tmp_path / 'day1', RETIRE)
    assert run.returncode == 0, run.stderr
    assert 'judy-reactivated' not in matched_users(tmp_path / 'day1')
    # Past the grace (the filter's 45 days), the tag has done its job.
    sandbox.advance(DEFAULT_ACCOUNT, 46)
    sandbox.backdate_key(DEFAULT_ACCOUNT, judy, used_days=1)
    run = custodian_run(sandbox, tmp_path / 'day46', RETIRE)
    assert run.returncode == 0, run.stderr
    assert account_state(sandbox)['judy-reactivated'] == ({judy: 'Active'}, {})
    run = custodian_run(sandbox, tmp_path / 'day46b', RETIRE)
    assert run.returncode == 0, run.stderr
    assert 'judy-reactivated' not in matched_users(tmp_path / 'day46b')


def test_a_reactivation_tag_is_removed_when_its_key_is_gone(sandbox, tmp_path):
    ids = seeded(sandbox)
    judy = ids['judy-reactivated'][0]
    assert custodian_run(sandbox, tmp_path / 'day0', RETIRE).returncode == 0
    iam_client(sandbox).delete_access_key(UserName='judy-reactivated', AccessKeyId=judy)
    run = custodian_run(sandbox, tmp_path / 'day1', RETIRE)
    assert run.returncode == 0, run.stderr
    assert account_state(sandbox)['judy-reactivated'] == ({}, {})


# -- 4. the circuit breaker counts deactivations ----------------------------------------

def many_stale(emu, stale=25, fresh=30):
    emu.reset()
    c = iam_client(emu)
    ids = {}
    for i in range(stale + fresh):
        name = ('stale-%02d' if i < stale else 'fresh-%02d') % i
        c.create_user(UserName=name)
        ids[name] = c.create_access_key(UserName=name)['AccessKey']['AccessKeyId']
        emu.backdate_key(DEFAULT_ACCOUNT, ids[name], created_days=300,
                         used_days=100 if i < stale else 1)
    return ids


def with_breaker(tmp_path, name, **limit):
    data = yaml.safe_load(RETIRE.read_text())
    data['policies'][0]['actions'][0]['max-deactivations'] = limit
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_breaker_trips_on_planned_deactivations_and_writes_nothing(sandbox, tmp_path):
    many_stale(sandbox)
    before = account_state(sandbox)
    run = custodian_run(sandbox, tmp_path / 'out', RETIRE)
    assert run.returncode != 0
    assert 'retire-access-keys: circuit breaker: 25 deactivations planned' in run.stderr
    assert account_state(sandbox) == before
    report = run_command(['c7n-unused-keys', 'report', tmp_path / 'out', '--format', 'json'],
                         None)
    assert report.returncode == 2
    failures = json.loads(report.stdout)['failures']
    assert [f['policy'] for f in failures] == [NAME]
    assert 'circuit breaker' in failures[0]['reason']


def test_keys_waiting_out_their_grace_do_not_trip_the_breaker(sandbox, tmp_path):
    ids = many_stale(sandbox)
    raised = with_breaker(tmp_path, 'raised.yml', amount=100)
    day0 = custodian_run(sandbox, tmp_path / 'day0', raised)
    assert day0.returncode == 0, day0.stderr
    sandbox.advance(DEFAULT_ACCOUNT, 5)
    day5 = custodian_run(sandbox, tmp_path / 'day5', RETIRE)
    assert day5.returncode == 0, day5.stderr
    assert set(steps(tmp_path / 'day5').values()) == {'waiting'}
    assert {n: s.keys for n, s in account_state(sandbox).items() if n.startswith('stale')} == \
        {n: {ids[n]: 'Inactive'} for n in ids if n.startswith('stale')}


def test_the_breaker_counts_a_percent_of_the_keys_seen(sandbox, tmp_path):
    many_stale(sandbox, stale=5, fresh=10)
    before = account_state(sandbox)
    tight = with_breaker(tmp_path, 'tight.yml', percent=30)
    run = custodian_run(sandbox, tmp_path / 'out', tight)
    assert run.returncode != 0
    assert '5 deactivations planned of 15 keys seen' in run.stderr
    assert account_state(sandbox) == before
    loose = with_breaker(tmp_path, 'loose.yml', percent=40)
    run = custodian_run(sandbox, tmp_path / 'out2', loose)
    assert run.returncode == 0, run.stderr
    assert sum(1 for keys, _ in account_state(sandbox).values()
               for s in keys.values() if s == 'Inactive') == 5


def test_keys_switched_off_by_hand_count_against_the_breaker(sandbox, tmp_path):
    """Marking starts the deletion clock as a deactivation does."""
    ids = many_stale(sandbox)
    c = iam_client(sandbox)
    for name, key in ids.items():
        if name.startswith('stale'):
            c.update_access_key(UserName=name, AccessKeyId=key, Status='Inactive')
    before = account_state(sandbox)
    run = custodian_run(sandbox, tmp_path / 'out', RETIRE)
    assert run.returncode != 0
    assert 'circuit breaker: 25 deactivations planned of 55 keys seen' in run.stderr
    assert account_state(sandbox) == before


def test_a_delete_with_no_answer_at_all_is_recorded_as_deleted(sandbox, tmp_path):
    """No botocore retry: the key is read back, and it is gone."""
    ivan, run = day31(sandbox, tmp_path,
                      env=dict(faults('DeleteAccessKey=Lost/ivan-deactivated-40d'),
                               AWS_MAX_ATTEMPTS='1'))
    assert run.returncode == 0, run.stderr
    assert steps(tmp_path / 'day31')[('ivan-deactivated-40d', ivan)] == 'deleted'
    assert account_state(sandbox)['ivan-deactivated-40d'] == ({}, {})


def test_one_user_s_writes_are_made_one_after_another(sandbox, tmp_path):
    """IAM may refuse concurrent writes to one user (ConcurrentModification)."""
    c = iam_client(sandbox)
    c.create_user(UserName='two-idle')
    for created in (300, 200):
        key = c.create_access_key(UserName='two-idle')['AccessKey']['AccessKeyId']
        sandbox.backdate_key(DEFAULT_ACCOUNT, key, created_days=created, used_days=100)
    seen = []
    sandbox.on_request('TagUser', lambda: seen.append(time.monotonic()), user='two-idle',
                       times=2)
    # Each answer takes at least this long: writes made one after another start at least
    # this far apart; concurrent ones start together.
    sandbox.latency = 0.3
    try:
        run = custodian_run(sandbox, tmp_path / 'out', RETIRE)
    finally:
        sandbox.latency = 0.0
    assert run.returncode == 0, run.stderr
    assert len(seen) == 2 and seen[1] - seen[0] >= 0.3, seen
    assert set(account_state(sandbox)['two-idle'].keys.values()) == {'Inactive'}


def test_an_owner_s_reactivation_holds_under_c7n_org_s_default_cache(sandbox, tmp_path):
    """`c7n-org run` as the README writes it: its 15-minute cache on, rerun at once."""
    from c7n_unused_keys.accounts import load_accounts
    from c7n_unused_keys_sandbox.seed import organisation, seed_account
    config = ROOT / 'custodian.yml'
    dev = next(a for a, n in load_accounts(config).items() if n == 'dev')
    users = seed_account(sandbox, dev, organisation('dev', datetime.now(timezone.utc)),
                         through_api=False)
    bob = next(u.keys[0].key_id for u in users if u.name == 'bob-idle-50d')
    (tmp_path / 'cache').mkdir()
    org = ['c7n-org', 'run', '-c', config, '--cache-path', tmp_path / 'cache', '-u', RETIRE]
    first = run_command(org + ['-s', tmp_path / 'one'], sandbox)
    assert first.returncode == 0, first.stderr
    assert account_state(sandbox, dev)['bob-idle-50d'].keys == {bob: 'Inactive'}
    iam_client(sandbox, dev).update_access_key(UserName='bob-idle-50d', AccessKeyId=bob,
                                               Status='Active')
    again = run_command(org + ['-s', tmp_path / 'two'], sandbox)
    assert again.returncode == 0, again.stderr
    [records] = (tmp_path / 'two' / 'dev').glob('*/%s/action-retire-access-keys' % NAME)
    assert {(r['AccessKeyId'], r['Step']) for r in read_json(records)
            if r['UserName'] == 'bob-idle-50d'} == {(bob, 'reactivated')}
    keys, tags = account_state(sandbox, dev)['bob-idle-50d']
    assert keys == {bob: 'Active'} and PREFIX + bob not in tags and R_PREFIX + bob in tags
