"""`unused-passwords` through the real `custodian`, against the emulator: the decision at
its boundaries, a password used since the report, a report that says `no_information`,
a user without a login profile, an exemption, and the calls the report saves."""
from datetime import datetime, timezone

from c7n_unused_keys.names import EXEMPT_PASSWORD_ANNOTATION, EXEMPT_TAG, \
    UNUSED_PASSWORD_ANNOTATION
from conftest import DEFAULT_ACCOUNT, custodian_run, iam_client, read_json, write_policies

NAME = 'unused-passwords'
POLICY = {'name': NAME, 'resource': 'aws.iam-user',
          'filters': [{'type': 'unused-passwords', 'days': 45, 'never-used-days': 30}]}
# name -> (login profile created, last used) in days ago; None: never used. A user
# absent from the login profiles has no console password.
PASSWORDS = {
    'used-44d': (300, 44.9), 'used-46d': (300, 45.1),
    'never-29d': (29.9, None), 'never-31d': (30.1, None),
    'used-since-report': (300, 100), 'exempt': (300, 200),
}
USERS = list(PASSWORDS) + ['no-password']


def seed(emu):
    iam = iam_client(emu)
    for user in USERS:
        iam.create_user(UserName=user)
        if user in PASSWORDS:
            iam.create_login_profile(UserName=user, Password='Sandbox-Passw0rd!')
    iam.tag_user(UserName='exempt', Tags=[{'Key': EXEMPT_TAG, 'Value': 'password'}])
    b = emu.backend(DEFAULT_ACCOUNT)
    for user in USERS:
        # Users as old as their oldest credential.
        b.users[user].create_date = b.users[user].create_date.replace(year=2025)
    for user, (created, used) in PASSWORDS.items():
        emu.backdate_password(DEFAULT_ACCOUNT, user, created_days=created, used_days=used,
                              never_used=used is None)


def test_unused_passwords_are_matched_exactly_and_the_report_saves_calls(sandbox, tmp_path):
    seed(sandbox)
    iam = iam_client(sandbox)
    # The report is made now, then the password is used: the report says 100 days.
    iam.generate_credential_report()
    rows = {line.split(',')[0]: line.split(',')[3:5] for line in
            iam.get_credential_report()['Content'].decode().splitlines()[1:]}
    assert rows['used-since-report'][0] == 'true' and rows['never-31d'] == ['true',
                                                                          'no_information']
    assert rows['no-password'] == ['false', 'N/A']
    sandbox.backdate_password(DEFAULT_ACCOUNT, 'used-since-report', used_days=0)

    policy = write_policies(tmp_path / 'p.yml', POLICY)
    run = custodian_run(sandbox, tmp_path / 'out', policy)
    assert run.returncode == 0, run.stderr
    found = {r['UserName']: r for r in read_json(tmp_path / 'out' / NAME / 'resources.json')}
    assert sorted(found) == ['never-31d', 'used-46d']
    used = found['used-46d'][UNUSED_PASSWORD_ANNOTATION]
    assert (used['NeverUsed'], used['IdleDays'], used['Source']) == (False, 45, 'api')
    assert used['Reason'] == 'password last used 45 days ago (days: 45)'
    never = found['never-31d'][UNUSED_PASSWORD_ANNOTATION]
    assert never['NeverUsed'] and never['PasswordLastUsed'] is None
    assert never['Reason'] == ('password never used; login profile created 30 days ago '
                               '(never-used-days: 30)')
    assert datetime.fromisoformat(never['LoginProfileCreated']) < datetime.now(timezone.utc)
    # The report ruled out the password used 44 days ago and the user without one:
    # the others (used 46 days ago, never used, used since, exempt) were confirmed.
    stats = read_json(tmp_path / 'out' / NAME / 'metadata.json')['api-stats']
    assert stats['iam.GetLoginProfile'] == 5
    assert 'exemption honoured: user=exempt' in run.stderr


def test_an_exemption_that_ended_no_longer_spares_the_password(sandbox, tmp_path):
    seed(sandbox)
    iam_client(sandbox).tag_user(UserName='exempt', Tags=[
        {'Key': EXEMPT_TAG, 'Value': 'password until=2020-01-01'}])
    run = custodian_run(sandbox, tmp_path / 'out', write_policies(tmp_path / 'p.yml', POLICY))
    assert run.returncode == 0, run.stderr
    found = {r['UserName']: r for r in read_json(tmp_path / 'out' / NAME / 'resources.json')}
    assert sorted(found) == ['exempt', 'never-31d', 'used-46d', 'used-since-report']
    assert EXEMPT_PASSWORD_ANNOTATION not in found['exempt']


def test_dormant_users_are_listed_by_the_cis_report(sandbox, tmp_path):
    """The CIS report's dormant-users policy on the sandbox's cases: users whose keys are
    all Inactive (deactivated 5 and 40 days ago) and the one left with nothing; not the
    users with a password or an active key. The report lists them as dormant."""
    import json

    from c7n_unused_keys_sandbox.seed import lifecycle_cases, seed_account
    from conftest import ROOT, run_command
    seed_account(sandbox, DEFAULT_ACCOUNT, lifecycle_cases(datetime.now(timezone.utc)),
                 through_api=False)
    policy = ROOT / 'policies' / 'unused-credentials-cis-report.yml'
    run = custodian_run(sandbox, tmp_path / 'out', policy)
    assert run.returncode == 0, run.stderr
    name = 'unused-credentials-cis-dormant-users'
    found = {r['UserName']: r['c7n:dormant-user']
             for r in read_json(tmp_path / 'out' / name / 'resources.json')}
    assert sorted(found) == ['heidi-deactivated-5d', 'ivan-deactivated-40d', 'trent-dormant']
    assert found['trent-dormant']['LastUsed'] is None
    assert found['trent-dormant']['Reason'] == (
        'no active key and no console password; never used; made 400 days ago (days: 45)')
    assert found['ivan-deactivated-40d']['IdleDays'] == 300
    # The report ruled out every user with a use within 45 days (no call for them).
    stats = read_json(tmp_path / 'out' / name / 'metadata.json')['api-stats']
    assert stats['iam.ListAccessKeys'] < 17
    done = run_command(['c7n-unused-keys', 'report', tmp_path / 'out', '--format', 'json'],
                       None)
    rows = [r for r in json.loads(done.stdout)['rows'] if r['policy'] == name]
    assert sorted((r['user'], r['credential'], r['step']) for r in rows) == [
        (u, 'user', 'dormant') for u in sorted(found)]
    # The passwords policy of the same file: the passwords unused for 45 days.
    pw = read_json(tmp_path / 'out' / 'unused-credentials-cis-passwords-report' /
                   'resources.json')
    assert sorted(r['UserName'] for r in pw) == [
        'quinn-password-60d', 'rupert-password-400d', 'sybil-password-never']
