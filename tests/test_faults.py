"""Faults injected into the real `custodian` subprocess (tests/faults): the final state
equals that of a run without faults, and the safety invariants hold."""
import json
import os
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import yaml

from c7n_unused_keys_sandbox.seed import organisation, seed_account
from conftest import BIN, DEFAULT_ACCOUNT, ROOT, custodian_run, faults, run_command
from helpers import PREFIX, account_state, no_key_deactivated_without_its_marker, seeded


RETIRE = ROOT / 'policies' / 'unused-access-keys-retire.yml'
NAME = 'unused-access-keys-retire'


def shape(emu, account=DEFAULT_ACCOUNT):
    """Per user: its keys (by age) as (status, has marker), and its other tag keys."""
    b = emu.backend(account)
    out = {}
    for u in b.users.values():
        tags = {t['Key'] for t in b.list_user_tags(u.name)}
        keys = sorted(u.access_keys, key=lambda k: k.create_date)
        out[u.name] = ([(k.status, PREFIX + k.access_key_id in tags)
                        for k in keys],
                       sorted(t.split(':')[0] for t in tags))
    return out


def steps(out):
    run = run_command(['c7n-unused-keys', 'report', out, '--format', 'json'], None)
    return sorted((r['user'], r['step']) for r in json.loads(run.stdout)['rows'])


def same_as_a_clean_run(emu, tmp_path, spec):
    """A clean run and a run under the faults `spec`, each from the same seeded account:
    the invariants hold, and both leave the same state and report the same steps.
    Returns the clean run's steps."""
    seeded(emu, ordinary=0)
    clean = custodian_run(emu, tmp_path / 'clean', RETIRE)
    assert clean.returncode == 0, clean.stderr
    expected = shape(emu), steps(tmp_path / 'clean')

    seeded(emu, ordinary=0)
    before = account_state(emu)
    faulted = custodian_run(emu, tmp_path / 'faulted', RETIRE, env=faults(spec))
    assert faulted.returncode == 0, faulted.stderr
    invariants(before, account_state(emu))
    assert (shape(emu), steps(tmp_path / 'faulted')) == expected
    return {s for _, s in expected[1]}


def test_twenty_percent_throttling_changes_nothing(sandbox, tmp_path):
    # The lifecycle cases alone: each throttled call costs c7n's retry a wait.
    assert 'deleted' in same_as_a_clean_run(sandbox, tmp_path, '*=Throttling~0.2')


def test_lost_answers_to_every_kind_of_write_change_nothing(sandbox, tmp_path):
    """Each write is applied and its first answer lost; botocore's retry then meets the
    write already made (a delete: NoSuchEntity)."""
    assert {'deactivated', 'deleted', 'reactivated'} <= same_as_a_clean_run(
        sandbox, tmp_path, 'UpdateAccessKey=Lost,TagUser=Lost,UntagUser=Lost,DeleteAccessKey=Lost')


def invariants(before, after, crashed=False):
    """No key deleted but the one whose marker is 40 days old; no Active key deleted.
    After a run that was not killed, also: every key this run deactivated carries its
    marker, and no marker outlives its key."""
    if not crashed:
        no_key_deactivated_without_its_marker(before, after)
        for user, (keys, tags) in after.items():
            for tag in tags:
                if tag.startswith(PREFIX):
                    assert tag.split(':', 1)[1] in keys, (user, tag)
    for user, (keys, _) in before.items():
        for key_id, status in keys.items():
            if key_id not in after[user].keys:
                assert user == 'ivan-deactivated-40d' and status == 'Inactive', (user, key_id)


def test_errors_on_single_calls(sandbox, tmp_path):
    seeded(sandbox)
    before = account_state(sandbox)
    run = custodian_run(sandbox, tmp_path, RETIRE, env=faults(
        'UpdateAccessKey=ServiceFailure/bob-idle-50d,'
        'DeleteAccessKey=AccessDenied/ivan-deactivated-40d'))
    assert run.returncode != 0
    after = account_state(sandbox)
    invariants(before, after)
    records = {r['UserName']: r for r in json.loads(
        (tmp_path / NAME / 'action-retire-access-keys').read_text())}
    assert records['bob-idle-50d']['Step'] == 'failed'
    assert 'ServiceFailure' in records['bob-idle-50d']['Error']
    assert records['ivan-deactivated-40d']['Step'] == 'failed'
    assert 'retire-access-keys: 2 of 9 keys failed' in run.stderr
    for user in ('bob-idle-50d', 'ivan-deactivated-40d'):
        assert user in run.stderr
    assert records['carol-idle-120d']['Step'] == 'deactivated'
    assert list(after['bob-idle-50d'].keys.values()) == ['Active']
    assert len(after['ivan-deactivated-40d'].keys) == 1


def test_a_key_deleted_by_someone_else_between_filter_and_action(sandbox, tmp_path):
    seeded(sandbox)
    b = sandbox.backend(DEFAULT_ACCOUNT)
    doomed = {u: b.users[u].access_keys[0].access_key_id
              for u in ('bob-idle-50d', 'ivan-deactivated-40d')}
    for user, action in (('bob-idle-50d', 'UpdateAccessKey'),
                         ('ivan-deactivated-40d', 'DeleteAccessKey')):
        sandbox.on_request(action, lambda u=user: b.delete_access_key(doomed[u], u),
                           user=user)
    before = account_state(sandbox)
    run = custodian_run(sandbox, tmp_path, RETIRE)
    assert run.returncode == 0, run.stderr
    records = {r['UserName']: r['Step'] for r in json.loads(
        (tmp_path / NAME / 'action-retire-access-keys').read_text())}
    assert records['bob-idle-50d'] == records['ivan-deactivated-40d'] == 'gone'
    after = account_state(sandbox)
    before['bob-idle-50d'].keys.clear()  # deleted by someone else, not by the run
    invariants(before, after)
    assert after['bob-idle-50d'] == ({}, {}) and after['ivan-deactivated-40d'] == ({}, {})


RETIRED = {'bob-idle-50d', 'carol-idle-120d', 'dave-idle-400d', 'frank-never-used',
           'grace-two-keys', 'heidi-deactivated-5d', 'ivan-deactivated-40d',
           'judy-reactivated', 'oscar-exemption-expired'}


def retire_with_report_trouble(emu, out, env=None):
    before = account_state(emu)
    run = custodian_run(emu, out, RETIRE, env=env)
    assert run.returncode == 0, run.stderr
    invariants(before, account_state(emu))
    users = {r['UserName'] for r in json.loads((out / NAME / 'resources.json').read_text())}
    return run, users


def test_report_missing(sandbox, tmp_path):
    seeded(sandbox, ordinary=0)
    run, users = retire_with_report_trouble(sandbox, tmp_path)
    assert 'generating a credential report' in run.stderr and users == RETIRED


def test_report_in_progress_is_waited_for(sandbox, tmp_path):
    seeded(sandbox, ordinary=0)
    run, users = retire_with_report_trouble(
        sandbox, tmp_path, env=faults('GetCredentialReport=ReportInProgress@2'))
    assert 'credential report of' in run.stderr and users == RETIRED


def test_report_stale_is_regenerated(sandbox, tmp_path):
    seeded(sandbox, ordinary=0)
    sandbox.iam_client().generate_credential_report()
    # Since that report bob's key was used: a stale report would still list bob.
    bob = sandbox.backend(DEFAULT_ACCOUNT).users['bob-idle-50d'].access_keys[0]
    sandbox.backdate_key(DEFAULT_ACCOUNT, bob.access_key_id, used_days=0.1)
    sandbox.backdate_report(DEFAULT_ACCOUNT, days=2)
    run, users = retire_with_report_trouble(sandbox, tmp_path)
    assert 'generating a credential report' in run.stderr
    assert users == RETIRED - {'bob-idle-50d'}


def test_report_denied_falls_back_to_the_api(sandbox, tmp_path):
    seeded(sandbox, ordinary=0)
    run, users = retire_with_report_trouble(
        sandbox, tmp_path, env=faults('GenerateCredentialReport=AccessDenied,'
                                      'GetCredentialReport=AccessDenied'))
    assert 'falling back to source: api' in run.stderr and users == RETIRED


def test_two_runs_at_once(sandbox, tmp_path):
    seeded(sandbox)
    single = custodian_run(sandbox, tmp_path / 'single', RETIRE)
    assert single.returncode == 0, single.stderr
    expected = shape(sandbox)
    seeded(sandbox)
    before = account_state(sandbox)
    env = dict(os.environ, **sandbox.env())
    procs = [subprocess.Popen([str(BIN / 'custodian'), 'run', '-s', str(tmp_path / str(n)),
                               '--cache-period', '0', str(RETIRE)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in (1, 2)]
    results = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1][-2000:] for r in results]
    invariants(before, account_state(sandbox))
    assert shape(sandbox) == expected


CRASH_USERS = ('bob-idle-50d', 'heidi-deactivated-5d', 'ivan-deactivated-40d',
               'judy-reactivated')
CRASH_WORKERS = 3


def seeded_small(emu, account=DEFAULT_ACCOUNT):
    """One user for each step of the lifecycle: few calls, so every N can be tried."""
    users = [u for u in organisation('dev', datetime.now(timezone.utc), ordinary=0)
             if u.name in CRASH_USERS]
    seed_account(emu, account, users, through_api=False)


def iam_calls(out):
    stats = json.loads((out / NAME / 'metadata.json').read_text())['api-stats']
    return sum(n for op, n in stats.items() if op.startswith('iam.'))


def test_killed_after_every_call_a_clean_rerun_converges(sandbox, tmp_path):
    seeded_small(sandbox)
    unbroken = custodian_run(sandbox, tmp_path / 'unbroken', RETIRE)
    assert unbroken.returncode == 0, unbroken.stderr
    expected, total = shape(sandbox), iam_calls(tmp_path / 'unbroken')
    assert total >= 15

    # A clean rerun from a state equal to one already rerun from repeats that rerun: many
    # N leave the same state (reads change nothing), so each distinct state is rerun once.
    reruns, lock = {}, threading.Lock()

    def crash_at(n):
        # Each N in an account of its own, reached through its role as c7n-org does.
        account = '2%011d' % n
        seeded_small(sandbox, account)
        assume = ['--assume', 'arn:aws:iam::%s:role/c7n-unused-keys' % account]
        before = account_state(sandbox, account)
        killed = custodian_run(sandbox, tmp_path / ('killed-%d' % n), RETIRE, *assume,
                               env={'PYTHONPATH': str(ROOT / 'tests' / 'faults'),
                                    'C7N_TEST_KILL_AFTER': str(n)})
        assert killed.returncode == -9, (n, killed.returncode, killed.stderr[-1500:])
        # A kill may leave a key deactivated without its marker, or a marker without
        # its key; never a key deleted early or an Active key deleted.
        invariants(before, account_state(sandbox, account), crashed=True)
        left = state_read_by_a_run(sandbox, account)
        with lock:
            if left in reruns:
                return
            reruns[left] = n
        rerun = custodian_run(sandbox, tmp_path / ('rerun-%d' % n), RETIRE, *assume)
        assert rerun.returncode == 0, (n, rerun.stderr[-1500:])
        invariants(before, account_state(sandbox, account))
        assert shape(sandbox, account) == expected, n

    with ThreadPoolExecutor(max_workers=CRASH_WORKERS) as pool:
        list(pool.map(crash_at, range(1, total + 1)))
    # At least: nothing written, the report generated, and the writes' states (how many
    # depends on the order of the action's concurrent calls).
    assert len(reruns) >= 4, reruns


def state_read_by_a_run(emu, account):
    """What a run reads, with key ids replaced by their place: per user its keys by age
    (status, created and last used, to the day) and its tags (marker values to the day),
    and whether the account has a credential report. Times to the day: the markers a
    kill leaves are written within the test's minutes, days away from every threshold
    the lifecycle compares them with (30 days to delete, 45 of reactivation grace)."""
    b = emu.backend(account)
    out = []
    for u in sorted(b.users.values(), key=lambda u: u.name):
        keys = sorted(u.access_keys, key=lambda k: k.create_date)
        place = {k.access_key_id: 'key%d' % i for i, k in enumerate(keys)}
        tags = []
        for t in b.list_user_tags(u.name):
            key = t['Key']
            for kid, name in place.items():
                key = key.replace(kid, name)
            tags.append((key, t['Value'][:10]))
        out.append((u.name, tuple((k.status, k.create_date.date(),
                                   k.last_used.timestamp.date() if k.last_used else None)
                                  for k in keys), tuple(sorted(tags))))
    return tuple(out), getattr(b, 'report_snapshot', None) is not None


def test_a_connection_error_on_one_key_fails_that_key_only(sandbox, tmp_path):
    seeded(sandbox, ordinary=0)
    before = account_state(sandbox)
    run = custodian_run(sandbox, tmp_path, RETIRE, env=faults(
        'DeleteAccessKey=EndpointConnectionError/ivan-deactivated-40d'))
    assert run.returncode != 0
    invariants(before, account_state(sandbox))
    records = {r['UserName']: r for r in json.loads(
        (tmp_path / NAME / 'action-retire-access-keys').read_text())}
    assert records['ivan-deactivated-40d']['Step'] == 'failed'
    assert 'EndpointConnectionError' in records['ivan-deactivated-40d']['Error']
    assert records['bob-idle-50d']['Step'] == 'deactivated'
    assert steps(tmp_path) and run_command(
        ['c7n-unused-keys', 'report', tmp_path], None).returncode == 2


def with_recheck_max_age(tmp_path, seconds) -> str:
    """The shipped retire policy with `recheck-max-age-seconds` set."""
    data = yaml.safe_load(RETIRE.read_text())
    data['policies'][0]['actions'][0]['recheck-max-age-seconds'] = seconds
    path = tmp_path / ('retire-max-age-%s.yml' % seconds)
    path.write_text(yaml.safe_dump(data))
    return str(path)


def recheck_case(emu, tmp_path, change):
    """`change(key)` happens to ivan's key (Inactive, marker 40 days old) after the
    filter saw it and before the action's recheck, with `recheck-max-age-seconds: 0`
    (every delete is rechecked with fresh calls)."""
    seeded(emu, ordinary=0)
    key = emu.backend(DEFAULT_ACCOUNT).users['ivan-deactivated-40d'].access_keys[0]
    # ListAccessKeys for ivan: the filter's, the action's, then the recheck's: the
    # change lands after the action planned a delete, just before its recheck.
    emu.on_request('ListAccessKeys', lambda: change(key), user='ivan-deactivated-40d', skip=2)
    run = custodian_run(emu, tmp_path, with_recheck_max_age(tmp_path, 0))
    assert run.returncode == 0, run.stderr
    records = {r['UserName']: r['Step'] for r in json.loads(
        (tmp_path / NAME / 'action-retire-access-keys').read_text())}
    return records['ivan-deactivated-40d'], key


def test_a_delete_reads_the_status_again_after_the_filter(sandbox, tmp_path):
    """With the filter's reads fresh (the default), an owner's reactivation between the
    filter's ListAccessKeys and the delete is seen: the key's status is read again just
    before, and the key stays. (The delete relied on the filter's read before.)"""
    seeded(sandbox, ordinary=0)
    key = sandbox.backend(DEFAULT_ACCOUNT).users['ivan-deactivated-40d'].access_keys[0]

    def reactivate():
        key.status = 'Active'
    # The filter's last-use read of ivan's key comes after its listing of ivan's keys.
    sandbox.on_request('GetAccessKeyLastUsed', reactivate, key=key.access_key_id)
    run = custodian_run(sandbox, tmp_path, RETIRE)
    assert run.returncode == 0, run.stderr
    steps = {r['UserName']: r['Step'] for r in json.loads(
        (tmp_path / NAME / 'action-retire-access-keys').read_text())}
    assert steps['ivan-deactivated-40d'] == 'reactivated'
    assert sandbox.backend(DEFAULT_ACCOUNT).access_keys[key.access_key_id].status == 'Active'


def test_fresh_reads_of_the_filter_stand_in_for_the_recheck(sandbox, tmp_path):
    """By default (reads at most 60 s old) the action plans and rechecks on the filter's
    reads: one ListAccessKeys and one GetAccessKeyLastUsed for ivan's key in the run,
    against three and two with `recheck-max-age-seconds: 0`; the same steps either way."""
    def run(policy, out):
        seeded(sandbox, ordinary=0)
        ivan = sandbox.backend(DEFAULT_ACCOUNT).users['ivan-deactivated-40d']
        key_id = ivan.access_keys[0].access_key_id
        calls = {'ListAccessKeys': 0, 'GetAccessKeyLastUsed': 0}
        for action in calls:
            def count(action=action):
                calls[action] += 1
            sandbox.on_request(action, count, user=None if action.startswith('Get')
                               else 'ivan-deactivated-40d', times=100)
        result = custodian_run(sandbox, out, policy)
        assert result.returncode == 0, result.stderr
        steps = {(r['UserName'], r['AccessKeyId']): r['Step'] for r in json.loads(
            (out / NAME / 'action-retire-access-keys').read_text())}
        assert steps[('ivan-deactivated-40d', key_id)] == 'deleted'
        assert key_id not in sandbox.backend(DEFAULT_ACCOUNT).access_keys
        return calls, {(u, s) for (u, _), s in steps.items()}
    reused, steps = run(str(RETIRE), tmp_path / 'default')
    fresh, fresh_steps = run(with_recheck_max_age(tmp_path, 0), tmp_path / 'zero')
    # The default lists ivan's keys again right before the delete: the filter's, then that.
    assert (reused['ListAccessKeys'], fresh['ListAccessKeys']) == (2, 3)
    # ivan's is the one delete: its recheck is the only extra GetAccessKeyLastUsed.
    assert fresh['GetAccessKeyLastUsed'] - reused['GetAccessKeyLastUsed'] == 1
    assert steps == fresh_steps


def test_recheck_keeps_a_key_used_after_its_marker(sandbox, tmp_path):
    from moto.iam.models import AccessKeyLastUsed
    from c7n_unused_keys_sandbox.moto_fixes import utcnow_naive

    def used(key):
        key.last_used = AccessKeyLastUsed(utcnow_naive(), 's3', 'us-east-1')
    step, key = recheck_case(sandbox, tmp_path, used)
    assert step == 'marked'
    assert key.access_key_id in {k.access_key_id for k in
                                 sandbox.backend(DEFAULT_ACCOUNT).access_keys.values()}


def test_recheck_keeps_a_key_reactivated_meanwhile(sandbox, tmp_path):
    def reactivate(key):
        key.status = 'Active'
    step, key = recheck_case(sandbox, tmp_path, reactivate)
    assert step == 'reactivated' and key.status == 'Active'
    assert key.access_key_id in sandbox.backend(DEFAULT_ACCOUNT).access_keys
