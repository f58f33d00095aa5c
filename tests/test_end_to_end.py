"""The shipped policies through the real `custodian run` and `c7n-org run`, against the emulator."""
from datetime import datetime, timedelta, timezone

import pytest

from c7n_unused_keys.names import UNUSED_ANNOTATION
import cases
from conftest import (DEFAULT_ACCOUNT, ROOT, custodian_run, faults, iam_client, read_json,
                      run_command, unused_keys_policy, write_policies)

POLICY = 'unused-access-keys-report'
RETIRE = 'unused-access-keys-retire'
ACCOUNTS = {'dev': '111111111111', 'staging': '222222222222', 'prod': '333333333333'}


def check_key_by_key(resources, users, now, status='Active'):
    """Every matched key's annotation against what was seeded."""
    seeded = {k.key_id: (u, k) for u in users for k in u.keys}
    got = {}
    for r in resources:
        for ann in r[UNUSED_ANNOTATION]:
            got[ann['AccessKeyId']] = ann
            u, k = seeded[ann['AccessKeyId']]
            assert r['UserName'] == u.name
            assert ann['Status'] == (status or k.status)
            created = datetime.fromisoformat(ann['CreateDate'])
            assert abs(created - (now - timedelta(days=k.created))) < timedelta(minutes=5)
            assert ann['NeverUsed'] is (k.used is None)
            if k.used is None:
                assert ann['LastUsedDate'] is None and ann['LastUsedService'] is None
                assert ann['IdleDays'] == int(k.created)
            else:
                used = datetime.fromisoformat(ann['LastUsedDate'])
                assert abs(used - (now - timedelta(days=k.used))) < timedelta(minutes=5)
                assert (ann['LastUsedService'], ann['LastUsedRegion']) == ('s3', 'us-east-1')
                assert ann['IdleDays'] == int(k.used)
            assert ann['Source'] == 'api'
    expected = cases.expected(users)[0] if status else cases.expected(users, status=None)[0]
    assert set(got) == expected


def test_custodian_run_on_the_policies_directory(sandbox, tmp_path):
    users = cases.cases()
    cases.seed(iam_client(sandbox), sandbox, DEFAULT_ACCOUNT, users)
    now = datetime.now(timezone.utc)
    run = custodian_run(sandbox, tmp_path, ROOT / 'policies')
    assert run.returncode == 0, run.stderr
    assert 'unused-access-keys: checking %d users with source: hybrid' % len(users) \
        in run.stderr
    # The retire policy's filter (status any) lists every unused key before acting.
    retire = [r for r in read_json(tmp_path / RETIRE / 'resources.json')
              if UNUSED_ANNOTATION in r]
    check_key_by_key(retire, users, now, status=None)
    # c7n runs a directory's files in no set order. The report (status Active) sees
    # every unused key if it ran first, and none once retire has deactivated them.
    report = read_json(tmp_path / POLICY / 'resources.json')
    if run.stderr.index('policy:' + POLICY) < run.stderr.index('policy:' + RETIRE):
        check_key_by_key(report, users, now)
    else:
        assert report == []
    # The report policy alone, on a fresh copy of the account.
    sandbox.reset()
    users = cases.cases()
    cases.seed(iam_client(sandbox), sandbox, DEFAULT_ACCOUNT, users)
    check_key_by_key(report_run(sandbox, tmp_path / 'report-only', users), users,
                     datetime.now(timezone.utc))


def report_run(emu, out, users):
    """The report policy alone, then `custodian report` on its output."""
    policy = ROOT / 'policies' / 'unused-access-keys-report.yml'
    run = custodian_run(emu, out, policy)
    assert run.returncode == 0, run.stderr
    # `custodian report` reads the same output; the annotation needs a quoted JMESPath.
    report = run_command(['custodian', 'report', '-s', out, '--format', 'csv', '--field',
                          'Keys="%s"[].AccessKeyId' % UNUSED_ANNOTATION, policy], emu)
    assert report.returncode == 0, report.stderr
    for key_id in cases.expected(users)[0]:
        assert key_id in report.stdout
    return read_json(out / POLICY / 'resources.json')


def seed_org(emu):
    """Each account gets its own slice of the case matrix."""
    every = cases.cases()
    slices = {'dev': every[:12], 'staging': every[12:24], 'prod': every[24:]}
    for name, users in slices.items():
        cases.seed(iam_client(emu, ACCOUNTS[name]), emu, ACCOUNTS[name], users)
    return slices


@pytest.mark.parametrize('start_method', ['default', 'spawn'])
def test_c7n_org_runs_once_per_account(sandbox, tmp_path, start_method):
    slices = seed_org(sandbox)
    now = datetime.now(timezone.utc)
    extra = {'PYTHONPATH': str(ROOT / 'tests' / 'spawn')} if start_method == 'spawn' else {}
    run = run_command(['c7n-org', 'run', '-c', ROOT / 'custodian.yml', '-s', tmp_path,
                       '--cache-period', '0', '-u',
                       ROOT / 'policies' / 'unused-access-keys-report.yml'],
                      sandbox, extra_env=extra)
    assert run.returncode == 0, run.stderr
    assert 'c7n_org:WARNING' not in run.stderr, run.stderr
    for name, users in slices.items():
        # The accounts file lists two regions; the policy's region condition runs it once.
        runs = sorted(p.relative_to(tmp_path) for p in tmp_path.glob(name + '/*/*/metadata.json'))
        assert [str(p) for p in runs] == ['%s/us-east-1/%s/metadata.json' % (name, POLICY)]
        out = tmp_path / name / 'us-east-1' / POLICY
        resources = read_json(out / 'resources.json')
        check_key_by_key(resources, users, now)
        meta = read_json(out / 'metadata.json')
        assert meta['api-stats']['iam.ListUsers'] == 1
        arns = {r['Arn'].split(':')[4] for r in resources}
        assert arns <= {ACCOUNTS[name]}


def test_c7n_org_workers_need_the_hook_under_spawn(sandbox, tmp_path):
    """Negative control: the parent imports the plugin itself, the hook is off, and
    spawned workers (fresh interpreters) no longer know the filter."""
    seed_org(sandbox)
    code = ('import sys, c7n_unused_keys.register; from c7n_org.cli import cli; '
            'sys.argv[0] = "c7n-org"; cli()')
    run = run_command(['python', '-c', code, 'run', '-c', ROOT / 'custodian.yml', '-s',
                       tmp_path, '--cache-period', '0', '-u',
                       ROOT / 'policies' / 'unused-access-keys-report.yml'], sandbox,
                      extra_env={'PYTHONPATH': str(ROOT / 'tests' / 'spawn'),
                                 'C7N_UNUSED_KEYS_DISABLE': '1'})
    assert "Invalid filter type {'type': 'unused-access-keys'" in run.stderr
    assert not list(tmp_path.glob('*/*/*/resources.json'))


def test_c7n_org_validate_and_report(sandbox, tmp_path):
    slices = seed_org(sandbox)
    policy = ROOT / 'policies' / 'unused-access-keys-report.yml'
    run = run_command(['c7n-org', 'validate', '-c', ROOT / 'custodian.yml', '-u', policy],
                      None)
    assert run.returncode == 0, run.stderr
    run = run_command(['c7n-org', 'run', '-c', ROOT / 'custodian.yml', '-s', tmp_path,
                       '--cache-period', '0', '-u', policy], sandbox)
    assert run.returncode == 0, run.stderr
    run = run_command(['c7n-org', 'report', '-c', ROOT / 'custodian.yml', '-s', tmp_path,
                       '-u', policy, '--format', 'csv'], sandbox)
    assert run.returncode == 0, run.stderr
    names = {u.name for users in slices.values() for u in users
             if any(k.unused for k in u.keys)}
    assert names and all(n in run.stdout for n in names)


def test_hybrid_falls_back_to_api_when_the_report_is_denied(sandbox, tmp_path):
    users = cases.cases()
    cases.seed(iam_client(sandbox), sandbox, DEFAULT_ACCOUNT, users)
    run = custodian_run(sandbox, tmp_path, ROOT / 'policies' / 'unused-access-keys-report.yml',
                        env=faults('GetCredentialReport=AccessDenied'))
    assert run.returncode == 0, run.stderr
    assert 'no credential report (AccessDenied: injected by the tests); falling back to ' \
        'source: api' in run.stderr
    resources = read_json(tmp_path / POLICY / 'resources.json')
    assert {k['AccessKeyId'] for r in resources for k in r[UNUSED_ANNOTATION]} == \
        cases.expected(users)[0]
    stats = read_json(tmp_path / POLICY / 'metadata.json')['api-stats']
    assert stats['iam.ListAccessKeys'] == len(users)


def test_credential_report_source_fails_loudly_without_a_report(sandbox, tmp_path):
    cases.seed(iam_client(sandbox), sandbox, DEFAULT_ACCOUNT, cases.cases()[:3])
    policy = write_policies(tmp_path / 'p.yml', unused_keys_policy(
        'report-only', {'days': 45, 'source': 'credential-report'}))
    run = custodian_run(sandbox, tmp_path / 'out', policy,
                        env=faults('GenerateCredentialReport=AccessDenied'))
    assert run.returncode != 0
    assert 'no credential report for source: credential-report' in run.stderr


def test_throttled_calls_are_retried_to_the_same_answer(sandbox, tmp_path):
    users = cases.cases()
    cases.seed(iam_client(sandbox), sandbox, DEFAULT_ACCOUNT, users)
    policy = write_policies(tmp_path / 'p.yml', unused_keys_policy('throttled', {
        'days': 45, 'never-used-days': 30, 'status': 'Active', 'source': 'api'}))
    run = custodian_run(sandbox, tmp_path / 'out', policy, env=faults(
        'ListAccessKeys=Throttling@2,GetAccessKeyLastUsed=Throttling@3'))
    assert run.returncode == 0, run.stderr
    resources = read_json(tmp_path / 'out' / 'throttled' / 'resources.json')
    assert {k['AccessKeyId'] for r in resources for k in r[UNUSED_ANNOTATION]} == \
        cases.expected(users)[0]


def test_credential_report_source_asks_the_api_when_slots_are_ambiguous(sandbox, tmp_path):
    c = iam_client(sandbox)
    c.create_user(UserName='rotated')
    old = c.create_access_key(UserName='rotated')['AccessKey']['AccessKeyId']
    sandbox.backdate_key(DEFAULT_ACCOUNT, old, created_days=300, used_days=100)
    c.generate_credential_report()
    # Replaced after the report: a slot and a key that match nothing.
    c.delete_access_key(UserName='rotated', AccessKeyId=old)
    new = c.create_access_key(UserName='rotated')['AccessKey']['AccessKeyId']
    sandbox.backdate_key(DEFAULT_ACCOUNT, new, created_days=200, used_days=90)
    policy = write_policies(tmp_path / 'p.yml', unused_keys_policy(
        'report-source', {'days': 45, 'source': 'credential-report'}))
    run = custodian_run(sandbox, tmp_path / 'out', policy)
    assert run.returncode == 0, run.stderr
    assert 'rotated: report slots do not map to keys one to one; asking the API' in run.stderr
    out = tmp_path / 'out' / 'report-source'
    [user] = read_json(out / 'resources.json')
    [ann] = user[UNUSED_ANNOTATION]
    assert (ann['AccessKeyId'], ann['IdleDays'], ann['Source']) == (new, 90, 'api')
    assert read_json(out / 'metadata.json')['api-stats']['iam.GetAccessKeyLastUsed'] == 1
