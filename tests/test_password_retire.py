"""`retire-passwords` through the real `custodian` (and `c7n-org`, with c7n's cache on),
day 0 to the removal day: the mark and
its date, the grace, the recheck and the removal; a login, an exemption or someone
else's removal in between; an approval; the breaker; keys and passwords of one user in
one run. Time moves by `advance`, which ages login profiles, uses and marks alike."""
from datetime import datetime, timezone

import pytest

from c7n_unused_keys import markers
from c7n_unused_keys.names import EXEMPT_TAG
from conftest import DEFAULT_ACCOUNT, custodian_run, iam_client, read_json, write_policies
from helpers import ACTION as KEY_ACTION
from helpers import UNUSED as KEY_FILTER

NAME = 'retire-passwords'
M_TAG = 'c7n-unused-keys-password'
FILTERS = [{'or': [{'type': 'unused-passwords', 'days': 45, 'never-used-days': 30},
                   {'type': 'marked-passwords'}]}]
# In one region, as the shipped policies: c7n-org runs a policy in every region of an
# account, and two overlapping runs would each see the other's removals (gone).
POLICY = {'name': NAME, 'resource': 'aws.iam-user', 'filters': FILTERS,
          'conditions': [{'type': 'value', 'key': 'region', 'value': 'us-east-1'}],
          'actions': [{'type': 'retire-passwords', 'remove-after-days': 30}]}
# name -> (login profile created, last used), days ago.
USERS = {'idle': (300, 100), 'logs-in': (300, 100), 'exempted': (300, 100),
         'removed-by-admin': (300, 100), 'recent': (300, 2), 'never': (60, None)}


# Under c7n-org, the organisation file's dev account.
DEV = '111111111111'


def seed(emu, users=USERS, account=DEFAULT_ACCOUNT):
    iam = iam_client(emu, account)
    b = emu.backend(account)
    for user, (created, used) in users.items():
        iam.create_user(UserName=user)
        iam.create_login_profile(UserName=user, Password='Sandbox-Passw0rd!')
        b.users[user].create_date = b.users[user].create_date.replace(year=2025)
        emu.backdate_password(account, user, created_days=created, used_days=used,
                              never_used=used is None)


def run(emu, tmp_path, name, policy=POLICY, ok=True, org=False):
    """The policy run as `custodian run`, or with `org` as `c7n-org run` over the dev
    account, c7n's cache left on; its records by user."""
    path = write_policies(tmp_path / ('%s.yml' % name), policy)
    if org:
        from conftest import ROOT, run_command
        done = run_command(['c7n-org', 'run', '-c', ROOT / 'custodian.yml', '-a', 'dev',
                            '-s', tmp_path / name, '-u', path], emu)
        out = tmp_path / name / 'dev' / 'us-east-1' / policy['name']
    else:
        done = custodian_run(emu, tmp_path / name, path)
        out = tmp_path / name / policy['name']
    assert (done.returncode == 0) == ok, done.stderr
    assert 'Exception running policy' not in done.stderr, done.stderr
    out = out / 'action-retire-passwords'
    return ({r['UserName']: r for r in read_json(out)} if out.exists() else {}), done


def has_password(emu, user, account=DEFAULT_ACCOUNT):
    return bool(emu.backend(account).users[user].password)


def tags(emu, user, account=DEFAULT_ACCOUNT):
    return {t['Key']: t['Value'] for t in emu.backend(account).list_user_tags(user)}


@pytest.mark.parametrize('org', [False, True], ids=['custodian', 'c7n-org'])
def test_day_0_to_the_removal_day(sandbox, tmp_path, org):
    account = DEV if org else DEFAULT_ACCOUNT
    seed(sandbox, account=account)
    day0, _ = run(sandbox, tmp_path, 'day0', org=org)
    assert {u: r['Step'] for u, r in day0.items()} == {
        u: 'marked' for u in ('idle', 'logs-in', 'exempted', 'removed-by-admin', 'never')}
    mark = markers.parse_marker(tags(sandbox, 'idle', account)[M_TAG],
                                datetime.now(timezone.utc))
    assert day0['idle']['RemoveOn'] == mark.delete_on.isoformat()
    assert (mark.delete_on - mark.at).days == 30
    assert all(has_password(sandbox, u, account) for u in USERS)

    sandbox.advance(account, 10)
    day10, _ = run(sandbox, tmp_path, 'day10', org=org)
    assert {r['Step'] for r in day10.values()} == {'waiting'}
    # Meanwhile: a login, an exemption, and an admin removes a password by hand.
    sandbox.backdate_password(account, 'logs-in', used_days=0)
    iam = iam_client(sandbox, account)
    iam.tag_user(UserName='exempted', Tags=[{'Key': EXEMPT_TAG, 'Value': 'password'}])
    iam.delete_login_profile(UserName='removed-by-admin')
    sandbox.advance(account, 21)

    day31, _ = run(sandbox, tmp_path, 'day31', org=org)
    assert {u: r['Step'] for u, r in day31.items()} == {
        'idle': 'removed', 'never': 'removed', 'logs-in': 'unmarked', 'exempted': 'unmarked',
        'removed-by-admin': 'gone'}
    assert all(r['Credential'] == 'password' for r in day31.values())
    assert not has_password(sandbox, 'idle', account)
    assert not has_password(sandbox, 'never', account)
    for user in ('logs-in', 'exempted', 'recent'):
        assert has_password(sandbox, user, account)
    assert not any(M_TAG in tags(sandbox, u, account) for u in USERS)
    # A second run the same day (within c7n's cache period) has nothing left to do.
    again, _ = run(sandbox, tmp_path, 'again', org=org)
    assert again == {}


def test_a_use_just_before_the_removal_is_seen_by_the_recheck(sandbox, tmp_path):
    seed(sandbox, {'idle': (300, 100)})
    run(sandbox, tmp_path, 'day0')
    sandbox.advance(DEFAULT_ACCOUNT, 31)

    def login():
        sandbox.backdate_password(DEFAULT_ACCOUNT, 'idle', used_days=0)
    # The filter's reads see it unused; the login lands before the recheck's.
    sandbox.on_request('GetLoginProfile', login, user='idle', skip=1)
    day31, done = run(sandbox, tmp_path, 'day31')
    assert day31['idle']['Step'] == 'marked' and has_password(sandbox, 'idle')
    assert 'after its marker; marked again' in done.stderr


def test_with_approval_tag_the_removal_waits_for_an_approval(sandbox, tmp_path):
    seed(sandbox, {'waits': (300, 100), 'approved': (300, 100)})
    policy = dict(POLICY, actions=[dict(POLICY['actions'][0],
                                        **{'approval-tag': 'c7n-unused-keys-approved'})])
    run(sandbox, tmp_path, 'day0', policy)
    sandbox.advance(DEFAULT_ACCOUNT, 31)
    iam_client(sandbox).tag_user(UserName='approved', Tags=[{
        'Key': 'c7n-unused-keys-approved-password',
        'Value': markers.approval_value(datetime.now(timezone.utc), 'slack:U0123ABC')}])
    day31, _ = run(sandbox, tmp_path, 'day31', policy)
    assert (day31['waits']['Step'], day31['waits']['ApprovalTag']) == (
        'awaiting-approval', 'c7n-unused-keys-approved-password')
    assert (day31['approved']['Step'], day31['approved']['ApprovedBy']) == (
        'removed', 'slack:U0123ABC')
    assert has_password(sandbox, 'waits') and not has_password(sandbox, 'approved')


def test_the_breaker_stops_a_run_before_any_removal(sandbox, tmp_path):
    seed(sandbox, {'a': (300, 100), 'b': (300, 100)})
    policy = dict(POLICY, actions=[dict(POLICY['actions'][0], **{'max-removals':
                                                                 {'amount': 1}})])
    run(sandbox, tmp_path, 'day0', policy)
    sandbox.advance(DEFAULT_ACCOUNT, 31)
    before = {u: tags(sandbox, u) for u in 'ab'}
    _, done = run(sandbox, tmp_path, 'day31', policy, ok=False)
    assert '2 removals planned of 2 passwords matched, above max-removals (amount 1)' in \
        done.stderr
    assert has_password(sandbox, 'a') and has_password(sandbox, 'b')
    assert {u: tags(sandbox, u) for u in 'ab'} == before


def test_keys_and_passwords_of_one_user_in_one_run_do_not_collide(sandbox, tmp_path):
    seed(sandbox, {'both': (300, 100)})
    iam = iam_client(sandbox)
    key = iam.create_access_key(UserName='both')['AccessKey']['AccessKeyId']
    sandbox.backdate_key(DEFAULT_ACCOUNT, key, created_days=300, used_days=100)
    policy = {'name': 'both', 'resource': 'aws.iam-user',
              'filters': [{'or': [KEY_FILTER, {'type': 'marked-access-keys'},
                                  FILTERS[0]['or'][0], FILTERS[0]['or'][1]]}],
              'actions': [KEY_ACTION, POLICY['actions'][0]]}
    run(sandbox, tmp_path, 'day0', policy)
    out = tmp_path / 'day0' / 'both'
    keys = read_json(out / 'action-retire-access-keys')
    pw = read_json(out / 'action-retire-passwords')
    assert [(r['AccessKeyId'], r['Step']) for r in keys] == [(key, 'deactivated')]
    assert [(r['UserName'], r['Step']) for r in pw] == [('both', 'marked')]
    assert {M_TAG, 'c7n-unused-keys:' + key} <= set(tags(sandbox, 'both'))
    sandbox.advance(DEFAULT_ACCOUNT, 31)
    run(sandbox, tmp_path, 'day31', policy)
    out = tmp_path / 'day31' / 'both'
    assert [r['Step'] for r in read_json(out / 'action-retire-access-keys')] == ['deleted']
    assert [r['Step'] for r in read_json(out / 'action-retire-passwords')] == ['removed']
    assert tags(sandbox, 'both') == {}
    assert not has_password(sandbox, 'both')
    assert iam.list_access_keys(UserName='both')['AccessKeyMetadata'] == []


def test_the_report_has_a_row_per_password_with_its_credential(sandbox, tmp_path):
    import json

    from conftest import run_command
    seed(sandbox, {'idle': (300, 100), 'logs-in': (300, 100)})
    run(sandbox, tmp_path, 'day0')
    sandbox.backdate_password(DEFAULT_ACCOUNT, 'logs-in', used_days=0)
    sandbox.advance(DEFAULT_ACCOUNT, 31)
    run(sandbox, tmp_path, 'day31')
    done = run_command(['c7n-unused-keys', 'report', tmp_path / 'day31', '--format', 'json'],
                       None)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    rows = {r['user']: r for r in data['rows']}
    assert {u: (r['credential'], r['key_id'], r['step']) for u, r in rows.items()} == {
        'idle': ('password', '', 'removed'), 'logs-in': ('password', '', 'unmarked')}
    assert rows['idle']['idle_days'] == 131 and rows['idle']['delete_on']
    assert data['totals']['all accounts'] == {'unused': 1, 'removed': 1, 'unmarked': 1}
    table = run_command(['c7n-unused-keys', 'report', tmp_path / 'day31', '--width', '200'],
                        None).stdout
    line = next(x for x in table.splitlines() if x.split()[1:2] == ['idle'])
    assert line.split()[2] == 'password' and 'removed' in line


def test_a_user_that_fails_fails_the_run_after_the_others_are_done(sandbox, tmp_path):
    from conftest import faults
    seed(sandbox, {'a': (300, 100), 'b': (300, 100)})
    run(sandbox, tmp_path, 'day0')
    sandbox.advance(DEFAULT_ACCOUNT, 31)
    path = write_policies(tmp_path / 'day31.yml', POLICY)
    done = custodian_run(sandbox, tmp_path / 'day31', path,
                         env=faults('DeleteLoginProfile=AccessDenied/a'))
    assert done.returncode != 0
    recs = {r['UserName']: r for r in read_json(
        tmp_path / 'day31' / NAME / 'action-retire-passwords')}
    assert (recs['a']['Step'], recs['b']['Step']) == ('failed', 'removed')
    assert 'AccessDenied' in recs['a']['Error']
    assert 'retire-passwords: 1 of 2 users failed: a: AccessDenied' in done.stderr
    # The failed user keeps its password and its mark, for the next run.
    assert has_password(sandbox, 'a') and M_TAG in tags(sandbox, 'a')
    assert not has_password(sandbox, 'b')


def test_a_removal_whose_answer_is_lost_is_recorded_as_removed(sandbox, tmp_path):
    """IAM applies the DeleteLoginProfile and the answer is lost: botocore's retry meets
    NoSuchEntity, which is this run's own removal, not someone else's."""
    from conftest import faults
    seed(sandbox, {'a': (300, 100)})
    run(sandbox, tmp_path, 'day0')
    sandbox.advance(DEFAULT_ACCOUNT, 31)
    path = write_policies(tmp_path / 'day31.yml', POLICY)
    done = custodian_run(sandbox, tmp_path / 'day31', path,
                         env=faults('DeleteLoginProfile=Lost'))
    assert done.returncode == 0, done.stderr
    (rec,) = read_json(tmp_path / 'day31' / NAME / 'action-retire-passwords')
    assert rec['Step'] == 'removed' and not has_password(sandbox, 'a')
    assert 'an earlier attempt removed it' in done.stderr
    assert tags(sandbox, 'a') == {}


def shape(emu, account):
    b = emu.backend(account)
    return {u.name: (bool(u.password), frozenset(t['Key'] for t in b.list_user_tags(u.name)))
            for u in b.users.values()}


def test_killed_after_every_call_a_clean_rerun_converges(sandbox, tmp_path):
    """SIGKILL after each IAM call of a day-31 run: whatever was left, a clean rerun ends
    where an unbroken run ends, and no password is removed that was not due."""
    from concurrent.futures import ThreadPoolExecutor

    from conftest import ROOT
    from c7n_unused_keys_sandbox.seed import SeedPassword, SeedUser, seed_account
    cases = [SeedUser('due', [], password=SeedPassword(300, used=100, marker=40)),
             SeedUser('new', [], password=SeedPassword(300, used=100)),
             SeedUser('back', [], password=SeedPassword(300, used=2, marker=10)),
             SeedUser('gone', [], tags={M_TAG: '2026-01-01T00:00:00Z'})]
    path = write_policies(tmp_path / 'p.yml', POLICY)

    def fresh(account):
        seed_account(sandbox, account, [SeedUser(u.name, [], dict(u.tags), u.case,
                                                 u.password) for u in cases],
                     through_api=False)
    fresh(DEFAULT_ACCOUNT)
    unbroken = custodian_run(sandbox, tmp_path / 'unbroken', path)
    assert unbroken.returncode == 0, unbroken.stderr
    expected = shape(sandbox, DEFAULT_ACCOUNT)
    assert expected == {'due': (False, frozenset()), 'new': (True, frozenset({M_TAG})),
                        'back': (True, frozenset()), 'gone': (False, frozenset())}
    stats = read_json(tmp_path / 'unbroken' / NAME / 'metadata.json')['api-stats']
    total = sum(n for op, n in stats.items() if op.startswith('iam.'))

    def crash_at(n):
        account = '3%011d' % n
        fresh(account)
        assume = ['--assume', 'arn:aws:iam::%s:role/c7n-unused-keys' % account]
        killed = custodian_run(sandbox, tmp_path / ('killed-%d' % n), path, *assume,
                               env={'PYTHONPATH': str(ROOT / 'tests' / 'faults'),
                                    'C7N_TEST_KILL_AFTER': str(n)})
        assert killed.returncode == -9, (n, killed.returncode, killed.stderr[-1500:])
        left = shape(sandbox, account)
        # Only the due password may be gone; the others keep theirs.
        assert all(left[u][0] for u in ('new', 'back')), (n, left)
        rerun = custodian_run(sandbox, tmp_path / ('rerun-%d' % n), path, *assume)
        assert rerun.returncode == 0, (n, rerun.stderr[-1500:])
        assert shape(sandbox, account) == expected, n
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(crash_at, range(1, total + 1)))


def test_the_iam_22_view_after_the_cis_policies_ran_their_course(sandbox, tmp_path):
    """`c7n-org run` of the CIS 1.12 retire policies with c7n's cache left on, day 0 and
    the removal day, in the sandbox's dev account: then, by a fresh credential report,
    no user keeps an active key or a console password unused for 45 days or more, but
    the two the policies keep by design: an exempt key, and a key its owner reactivated
    within the filter's days (reactivation counts as use)."""
    from c7n_unused_keys.credential_report import parse_report
    from c7n_unused_keys_sandbox.seed import lifecycle_cases, seed_account
    from conftest import ROOT, run_command
    dev = '111111111111'
    seed_account(sandbox, dev, lifecycle_cases(datetime.now(timezone.utc)),
                 through_api=False)
    policy = ROOT / 'policies' / 'unused-credentials-cis-retire.yml'
    for day in ('day0', 'day31'):
        done = run_command(['c7n-org', 'run', '-c', ROOT / 'custodian.yml', '-a', 'dev',
                            '-s', tmp_path / day, '-u', policy], sandbox)
        assert done.returncode == 0, done.stderr
        assert 'Exception running policy' not in done.stderr, done.stderr
        if day == 'day0':
            sandbox.advance(dev, 31)
    iam = iam_client(sandbox, dev)
    # IAM makes a new report at most every 4 hours, and the day-31 run made one before
    # its changes: age it past that, so that the report shows what the run left.
    sandbox.backdate_report(dev, 5 / 24)
    iam.generate_credential_report()
    resp = iam.get_credential_report()
    now = datetime.now(timezone.utc)
    report = parse_report(resp['Content'], resp['GeneratedTime'])
    limit = 45 * 86400
    stale_keys = sorted(s.user for slots in report.slots.values() for s in slots
                        if s.active and (now - (s.last_used or s.last_rotated)
                                         ).total_seconds() >= limit)
    stale_passwords = sorted(
        p.user for p in report.passwords.values() if p.enabled and (
            p.last_used is None or (now - p.last_used).total_seconds() >= limit))
    assert stale_keys == ['judy-reactivated', 'mallory-exempt']
    assert stale_passwords == []
    # The passwords went as the lifecycle says: removed on day 31, or never unused.
    users = sandbox.backend(dev).users
    assert [u for u in ('peggy-password-10d', 'quinn-password-60d', 'rupert-password-400d',
                        'sybil-password-never') if users[u].password] == ['peggy-password-10d']


def test_two_overlapping_runs_remove_each_password_once(sandbox, tmp_path):
    """c7n-org runs a policy without a region condition in both regions of the account
    at once: two runs overlap. Each due password is removed by one of them; the other
    records it gone; nothing else changes."""
    seed(sandbox, {'a': (300, 100), 'b': (300, 100), 'recent': (300, 2)}, account=DEV)
    everywhere = dict(POLICY)
    del everywhere['conditions']
    run(sandbox, tmp_path, 'day0', everywhere, org=True)
    sandbox.advance(DEV, 31)
    run(sandbox, tmp_path, 'day31', everywhere, org=True)
    steps = {}
    for region in ('us-east-1', 'us-west-2'):
        for rec in read_json(tmp_path / 'day31' / 'dev' / region / NAME /
                             'action-retire-passwords'):
            steps.setdefault(rec['UserName'], []).append(rec['Step'])
    # The later run sees the password gone, or, once the mark is gone too, nothing.
    assert set(steps) == {'a', 'b'}
    assert all(s.count('removed') == 1 and set(s) <= {'removed', 'gone'}
               for s in steps.values()), steps
    assert not has_password(sandbox, 'a', DEV) and has_password(sandbox, 'recent', DEV)
    assert tags(sandbox, 'a', DEV) == tags(sandbox, 'b', DEV) == {}


def test_a_user_at_iam_s_tag_limit_cannot_be_marked_and_keeps_its_password(sandbox, tmp_path):
    """IAM allows 50 tags a user: the mark cannot be written, so the run fails on that
    user, and nothing else of it changes; the others are marked."""
    seed(sandbox, {'full': (300, 100), 'other': (300, 100)})
    iam_client(sandbox).tag_user(UserName='full', Tags=[
        {'Key': 'team-%02d' % i, 'Value': 'x'} for i in range(50)])
    recs, done = run(sandbox, tmp_path, 'day0', ok=False)
    assert recs['full']['Step'] == 'failed' and 'LimitExceeded' in recs['full']['Error']
    assert recs['other']['Step'] == 'marked'
    assert has_password(sandbox, 'full') and M_TAG not in tags(sandbox, 'full')
    assert len(tags(sandbox, 'full')) == 50
