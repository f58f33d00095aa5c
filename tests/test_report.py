"""`c7n-unused-keys report` on real outputs of `custodian run` and `c7n-org run`."""
import csv
import io
import json
import os
import time
from datetime import datetime, timezone

import pytest
import yaml

from c7n_unused_keys.accounts import load_accounts
from c7n_unused_keys_sandbox.emulator import DEFAULT_ACCOUNT
from c7n_unused_keys_sandbox.seed import lifecycle_cases, seed_account, seed_organisation
from conftest import ROOT, custodian_run, faults, run_command

CONFIG = ROOT / 'custodian.yml'
REPORT = ROOT / 'policies' / 'unused-access-keys-report.yml'
RETIRE = ROOT / 'policies' / 'unused-access-keys-retire.yml'
NAMES = ('dev', 'staging', 'prod')
IDS = {name: account_id for account_id, name in load_accounts(CONFIG).items()}
# Per account, what the seeded lifecycle cases lead to (see seed.lifecycle_cases).
RETIRE_STEPS = {'deactivated': 6, 'waiting': 1, 'deleted': 1, 'reactivated': 1}


def org_run(emu, out, policy, *extra, env=None):
    run = run_command(['c7n-org', 'run', '-c', CONFIG, '-s', out, '--cache-period', '0',
                       '-u', policy] + list(extra), emu, extra_env=env)
    return run


def report(out, *args):
    return run_command(['c7n-unused-keys', 'report', out] + list(args), None)


@pytest.fixture(scope='module')
def outputs(emulator, tmp_path_factory):
    """Real outputs: one seeded organisation, run in the order a rollout takes."""
    tmp = tmp_path_factory.mktemp('outputs')
    emulator.reset()
    seed_organisation(emulator, load_accounts(CONFIG), through_api=False)
    runs = {
        'report': org_run(emulator, tmp / 'report', REPORT),
        'dryrun': org_run(emulator, tmp / 'dryrun', RETIRE, '--dryrun'),
        # A single account through custodian, for the other layout (dry run: no change).
        'custodian': custodian_run(emulator, tmp / 'custodian', REPORT),
        'retire': org_run(emulator, tmp / 'retire', RETIRE,
                          env=faults('UpdateAccessKey=AccessDenied/bob-idle-50d%staging')),
    }
    yield tmp, runs
    emulator.reset()


def as_json(out, *args):
    run = report(out, '--format', 'json', *args)
    return json.loads(run.stdout), run


def test_report_policy_rows(outputs):
    tmp, runs = outputs
    assert runs['report'].returncode == 0, runs['report'].stderr
    data, run = as_json(tmp / 'report')
    assert run.returncode == 0, run.stderr
    assert data['layout'] == 'c7n-org'
    for name in NAMES:
        rows = [r for r in data['rows'] if r['account'] == name]
        assert {r['user'] for r in rows} == {
            'bob-idle-50d', 'carol-idle-120d', 'dave-idle-400d', 'frank-never-used',
            'grace-two-keys', 'judy-reactivated', 'oscar-exemption-expired'}
        assert all(r['step'] is None and r['status'] == 'Active' for r in rows)
        assert data['totals'][name] == {'unused': 7}
        bob = next(r for r in rows if r['user'] == 'bob-idle-50d')
        assert (bob['idle_days'], bob['last_service'], bob['last_region']) == \
            (50, 's3', 'us-east-1')
        assert {r['account_id'] for r in rows} == {IDS[name]}
    assert data['totals']['all accounts'] == {'unused': 21}


def test_custodian_layout(outputs):
    tmp, runs = outputs
    assert runs['custodian'].returncode == 0, runs['custodian'].stderr
    data, run = as_json(tmp / 'custodian')
    assert data['layout'] == 'custodian' and run.returncode == 0
    # The emulator's default account holds no users.
    assert data['rows'] == [] and data['failures'] == []


def test_dryrun_shows_the_steps_the_action_would_take(outputs):
    tmp, runs = outputs
    assert runs['dryrun'].returncode == 0, runs['dryrun'].stderr
    data, _ = as_json(tmp / 'dryrun')
    for name in NAMES:
        rows = [r for r in data['rows'] if r['account'] == name]
        assert all(r['would'] for r in rows)
        steps = {}
        for r in rows:
            steps[r['step']] = steps.get(r['step'], 0) + 1
        assert steps == RETIRE_STEPS
        heidi = next(r for r in rows if r['user'] == 'heidi-deactivated-5d')
        assert heidi['step'] == 'waiting' and heidi['delete_on']
        assert data['totals'][name]['would deactivated'] == 6
    table = report(tmp / 'dryrun', '--width', '200').stdout
    assert 'would deactivated' in table and 'would deleted' in table


def test_retire_rows_and_a_failed_account(outputs):
    tmp, runs = outputs
    assert runs['retire'].returncode != 0
    data, run = as_json(tmp / 'retire')
    assert run.returncode == 2
    assert data['failures'] == [{'account': 'staging', 'policy': 'unused-access-keys-retire',
                                 'reason': '1 keys failed'}]
    assert 'the policy stopped' not in run.stderr
    assert 'FAILED staging unused-access-keys-retire' in run.stderr
    for name in ('dev', 'prod'):
        totals = data['totals'][name]
        assert {k: v for k, v in totals.items() if k in RETIRE_STEPS} == RETIRE_STEPS
    [bob] = [r for r in data['rows'] if r['account'] == 'staging'
             and r['user'] == 'bob-idle-50d']
    assert bob['step'] == 'failed' and 'AccessDenied' in bob['error']


@pytest.mark.parametrize('fmt', ['table', 'csv', 'json', 'markdown'])
def test_every_format(outputs, fmt):
    tmp, _ = outputs
    run = report(tmp / 'report', '--format', fmt, '--width', '100')
    assert run.returncode == 0, run.stderr
    text = run.stdout
    key_ids = {r['key_id'] for r in as_json(tmp / 'report')[0]['rows']}
    assert len(key_ids) == 21 and all(k in text for k in key_ids)
    if fmt == 'table':
        assert all(len(line) <= 100 for line in text.splitlines())
        assert text.splitlines()[0].split()[:3] == ['account', 'user', 'key']
    elif fmt == 'csv':
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0][:4] == ['account', 'user', 'key', 'status'] and len(rows) == 22
        assert rows[0][-3:] == ['error', 'policy', 'credential']
        assert {(r[-2], r[-1]) for r in rows[1:]} == {('unused-access-keys-report',
                                                        'access key')}
    elif fmt == 'json':
        assert len(json.loads(text)['rows']) == 21
    else:
        assert text.startswith('| account | user | key |') and '**Totals**' in text


def test_table_fits_a_narrow_terminal(outputs):
    tmp, _ = outputs
    text = report(tmp / 'retire', '--width', '80').stdout
    assert all(len(line) <= 80 for line in text.splitlines())
    assert '…' in text
    header = text.splitlines()[0].split()
    assert 'via' not in header and 'key' in header and 'step' in header
    wide = report(tmp / 'retire', '--width', '200').stdout.splitlines()[0].split()
    assert wide == ['account', 'user', 'key', 'status', 'last', 'used', 'via', 'idle', 'step',
                    'delete', 'on']


@pytest.mark.parametrize('which,fail_on,code', [
    ('report', [], 0), ('report', ['unused'], 1), ('report', ['actions'], 0),
    ('dryrun', ['actions'], 1), ('dryrun', [], 0), ('retire', [], 2), ('retire', ['actions'], 2)])
def test_exit_codes(outputs, which, fail_on, code):
    tmp, _ = outputs
    args = [a for f in fail_on for a in ('--fail-on', f)]
    assert report(tmp / which, *args).returncode == code


def test_a_policy_that_never_ran_is_a_failure(emulator, tmp_path):
    """c7n-org only warns and exits 0 when workers cannot load a policy."""
    code = ('import sys, c7n_unused_keys.register; from c7n_org.cli import cli; '
            'sys.argv[0] = "c7n-org"; cli()')
    run = run_command(['python', '-c', code, 'run', '-c', CONFIG, '-s', tmp_path, '-u', REPORT,
                       '--cache-period', '0'], emulator,
                      extra_env={'PYTHONPATH': str(ROOT / 'tests' / 'spawn'),
                                 'C7N_UNUSED_KEYS_DISABLE': '1'})
    assert run.returncode == 0 and 'c7n_org:WARNING' in run.stderr
    # Nothing to read at all: the command says so, as an error.
    empty = report(tmp_path)
    assert empty.returncode == 2 and 'no custodian or c7n-org output' in empty.stderr


def test_accounts_without_output_are_failures(outputs, tmp_path):
    """With the accounts file, an account that left no output counts as failed."""
    tmp, _ = outputs
    import shutil
    shutil.copytree(tmp / 'report', tmp_path / 'partial')
    shutil.rmtree(tmp_path / 'partial' / 'prod')
    data, run = as_json(tmp_path / 'partial', '-c', CONFIG)
    assert run.returncode == 2
    assert [(f['account'], f['reason'][:9]) for f in data['failures']] == [('prod', 'no output')]
    assert report(tmp_path / 'partial').returncode == 0


def test_leftovers_of_an_earlier_run_in_the_same_folder_are_not_trusted(emulator, tmp_path):
    """c7n overwrites files but never clears the folder."""
    emulator.reset()
    seed_organisation(emulator, {'111111111111': 'dev'}, through_api=False)
    out = tmp_path / 'out'
    real = org_run(emulator, out, RETIRE, '-a', 'dev')
    assert real.returncode == 0, real.stderr
    # A dry run into the same folder: the report shows its would-steps, and the real
    # run's steps as that run's (run 1 of 2), never as the dry run's.
    dry = org_run(emulator, out, RETIRE, '-a', 'dev', '--dryrun')
    assert dry.returncode == 0, dry.stderr
    data, run = as_json(out)
    latest = [r for r in data['rows'] if not r['runs']]
    assert run.returncode == 0 and latest and all(r['would'] for r in latest)
    earlier = [r for r in data['rows'] if r['runs']]
    assert earlier and all(r['runs'] == [1] and not r['would'] for r in earlier)
    assert [r['read'] for r in data['runs']] == [2]
    # A run that stops before its filters: the old resources.json does not hide it.
    failed = org_run(emulator, out, RETIRE, '-a', 'dev', env=faults('ListUsers=AccessDenied'))
    assert failed.returncode != 0
    data, run = as_json(out)
    assert run.returncode == 2 and data['rows'] and all(r['runs'] == [1] for r in data['rows'])
    assert [f['reason'][:47] for f in data['failures']] == [
        'the policy stopped before its filters finished:']
    emulator.reset()


def test_a_tripped_circuit_breaker_is_a_failure(sandbox, tmp_path):
    from c7n_unused_keys_sandbox.seed import SeedKey, SeedUser, seed_account
    seed_account(sandbox, '123456789012', [SeedUser('stale-%02d' % i, [SeedKey(300, used=100)])
                                          for i in range(25)], through_api=False)
    run = custodian_run(sandbox, tmp_path, RETIRE)
    assert run.returncode != 0
    data, rep = as_json(tmp_path)
    assert rep.returncode == 2
    assert [f['reason'] for f in data['failures']] == [
        'retire-access-keys: circuit breaker: 25 deactivations planned of 25 keys seen, above '
        'max-deactivations (amount 20 and percent 25); nothing was changed']


def ahead(folder, hours=1):
    """Every file's mtime an hour ahead, as a copy, a restore or a clock step leaves them:
    the report must not read times off files."""
    later = time.time() + hours * 3600
    for path in folder.rglob('*'):
        os.utime(path, (later, later))


def test_leftovers_are_not_trusted_whatever_the_file_times(sandbox, tmp_path):
    seed_account(sandbox, DEFAULT_ACCOUNT, lifecycle_cases(datetime.now(timezone.utc)),
                 through_api=False)
    name = 'unused-access-keys-retire'
    # A real run with one failed key: action records, ERROR lines in the log, exit 2.
    real = custodian_run(sandbox, tmp_path, RETIRE,
                         env=faults('UpdateAccessKey=AccessDenied/bob-idle-50d'))
    assert real.returncode != 0
    steps = {r['Step'] for r in json.loads(
        (tmp_path / name / 'action-retire-access-keys').read_text())}
    assert {'failed', 'deactivated'} <= steps
    # A dry run into the same folder leaves that action file and appends to the log.
    dry = custodian_run(sandbox, tmp_path, RETIRE, '--dryrun')
    assert dry.returncode == 0, dry.stderr
    ahead(tmp_path)
    data, run = as_json(tmp_path)
    latest = [r for r in data['rows'] if not r['runs']]
    assert latest and all(r['would'] and r['step'] != 'failed' for r in latest)
    [bob] = [r for r in latest if r['user'] == 'bob-idle-50d']
    assert (bob['status'], bob['step']) == ('Active', 'deactivated')
    # The real run's failure stays shown as its own (run 1 of 2): nothing made it good.
    [failed_bob] = [r for r in data['rows'] if r['runs'] and r['user'] == 'bob-idle-50d']
    assert (failed_bob['step'], failed_bob['runs']) == ('failed', [1])
    assert (run.returncode, [f['reason'] for f in data['failures']]) == (2, ['1 keys failed'])
    # A run that stops before its filters leaves the dry run's resources.json.
    failed = custodian_run(sandbox, tmp_path, RETIRE, env=faults('ListUsers=AccessDenied'))
    assert failed.returncode != 0
    ahead(tmp_path, 2)
    data, run = as_json(tmp_path)
    assert run.returncode == 2 and all(r['runs'] == [1] for r in data['rows'])
    assert data['failures'] == [{
        'account': DEFAULT_ACCOUNT, 'policy': name, 'reason': '1 keys failed'}, {
        'account': DEFAULT_ACCOUNT, 'policy': name,
        'reason': 'the policy stopped before its filters finished: ClientError: An error '
                  'occurred (AccessDenied) when calling the ListUsers operation: injected '
                  'by the tests'}]


def no_credentials(emu):
    """The environment of a shell without AWS credentials (the endpoint stays local)."""
    return {'AWS_ENDPOINT_URL': emu.env()['AWS_ENDPOINT_URL'], 'AWS_DEFAULT_REGION': 'us-east-1',
            'AWS_SHARED_CREDENTIALS_FILE': os.devnull, 'AWS_CONFIG_FILE': os.devnull,
            'AWS_EC2_METADATA_DISABLED': 'true'}


def test_every_account_failed(emulator, tmp_path):
    run = run_command(['c7n-org', 'run', '-c', CONFIG, '-s', tmp_path / 'out', '--cache-period',
                       '0', '-u', REPORT], None, extra_env=no_credentials(emulator))
    assert run.returncode != 0
    for args in (['-c', CONFIG, '--fail-on', 'errors'], []):
        data, rep = as_json(tmp_path / 'out', *args)
        assert rep.returncode == 2
        assert sorted((f['account'], f['policy']) for f in data['failures']) == sorted(
            (name, 'unused-access-keys-report') for name in NAMES)
        assert data['rows'] == []
    # No output at all: with the accounts file each account is named, without it an error.
    (tmp_path / 'empty').mkdir()
    data, rep = as_json(tmp_path / 'empty', '-c', CONFIG, '--fail-on', 'errors')
    assert rep.returncode == 2 and sorted(f['account'] for f in data['failures']) == \
        sorted(NAMES)
    assert report(tmp_path / 'empty').returncode == 2
    assert report(tmp_path / 'missing').returncode == 2


def test_a_failed_custodian_run_names_its_account(emulator, tmp_path):
    """c7n learns the account from STS (or --assume-role's ARN); without credentials it
    cannot, and the report says so rather than `None`."""
    run = custodian_run(emulator, tmp_path / 'denied', REPORT,
                        env=faults('ListUsers=AccessDenied'))
    assert run.returncode != 0
    data, _ = as_json(tmp_path / 'denied')
    assert [f['account'] for f in data['failures']] == [DEFAULT_ACCOUNT]
    bare = run_command(['custodian', 'run', '-s', tmp_path / 'bare', '--cache-period', '0',
                        REPORT], None, extra_env=no_credentials(emulator))
    assert bare.returncode != 0
    data, rep = as_json(tmp_path / 'bare')
    assert rep.returncode == 2
    assert [(f['account'], f['reason']) for f in data['failures']] == [
        ('unknown', 'the policy stopped before its filters finished: NoCredentialsError: '
                    'Unable to locate credentials')]


BREAKER = ('retire-access-keys: circuit breaker: 7 deactivations planned, more than '
           'max-deactivations amount 5; nothing was changed')


def failing_policy(path, log):
    path.write_text(yaml.safe_dump({'policies': [{
        'name': 'fails-in-its-action', 'resource': 'aws.iam-user',
        'conditions': [{'type': 'value', 'key': 'region', 'value': 'us-east-1'}],
        'filters': [{'type': 'unused-access-keys', 'days': 45}],
        'actions': [{'type': 'fail-run', 'message': BREAKER, 'log': log}]}]}))
    return path


@pytest.mark.parametrize('command', ['custodian', 'c7n-org'])
@pytest.mark.parametrize('log', [True, False])
def test_an_action_that_fails_the_run_is_a_failure_with_its_reason(sandbox, tmp_path, command,
                                                                  log):
    """A PolicyExecutionError raised by an action (the circuit breaker's way): c7n logs it
    with its traceback under `custodian run`; c7n-org mutes that, so there the reason
    reaches custodian-run.log only when the action logs it."""
    seed_account(sandbox, DEFAULT_ACCOUNT if command == 'custodian' else IDS['dev'],
                 lifecycle_cases(datetime.now(timezone.utc)), through_api=False)
    policy = failing_policy(tmp_path / 'policy.yml', log)
    env = {'PYTHONPATH': str(ROOT / 'tests' / 'failing_action')}
    out = tmp_path / 'out'
    if command == 'custodian':
        run = custodian_run(sandbox, out, policy, env=env)
    else:
        run = org_run(sandbox, out, policy, '-a', 'dev', env=env)
    assert run.returncode != 0 and BREAKER in run.stderr
    data, rep = as_json(out)
    assert rep.returncode == 2
    # The filters finished: their rows are shown, and no step was taken.
    users = {r['user'] for r in data['rows']}
    assert 'bob-idle-50d' in users and 'alice-recent' not in users
    assert all(r['step'] is None for r in data['rows'])
    [failure] = data['failures']
    if log or command == 'custodian':
        assert failure['reason'] == BREAKER
    else:
        assert failure['reason'] == ('no reason in custodian-run.log: c7n-org logs the '
                                     'error to its own output')


def test_a_tripped_circuit_breaker_under_c7n_org_names_its_reason(sandbox, tmp_path):
    from c7n_unused_keys_sandbox.seed import SeedKey, SeedUser, seed_account
    dev = load_accounts(CONFIG)
    dev_id = next(a for a, n in dev.items() if n == 'dev')
    seed_account(sandbox, dev_id, [SeedUser('stale-%02d' % i, [SeedKey(300, used=100)])
                                   for i in range(25)], through_api=False)
    before = {u.name: [k.status for k in u.access_keys]
              for u in sandbox.backend(dev_id).users.values()}
    run = org_run(sandbox, tmp_path, RETIRE)
    assert run.returncode != 0
    data, rep = as_json(tmp_path, '-c', CONFIG)
    assert rep.returncode == 2
    assert [(f['account'], f['reason']) for f in data['failures']] == [
        ('dev', 'retire-access-keys: circuit breaker: 25 deactivations planned of 25 keys '
                'seen, above max-deactivations (amount 20 and percent 25); nothing was changed')]
    assert {u.name: [k.status for k in u.access_keys]
            for u in sandbox.backend(dev_id).users.values()} == before


def test_two_policies_show_a_policy_column_and_count_a_key_once(outputs, tmp_path):
    """The report and the retire policy in one output (as the Lambda functions write):
    each row names its policy, and a key both matched counts once as unused."""
    import shutil
    tmp, _ = outputs
    both = tmp_path / 'both'
    shutil.copytree(tmp / 'report', both)
    shutil.copytree(tmp / 'dryrun', both, dirs_exist_ok=True)
    data, run = as_json(both)
    policies = {r['policy'] for r in data['rows']}
    assert policies == {'unused-access-keys-report', 'unused-access-keys-retire'}
    for name in NAMES:
        unused = {r['key_id'] for r in data['rows']
                  if r['account'] == name and r['idle_days'] is not None}
        assert data['totals'][name]['unused'] == len(unused)
        assert len([r for r in data['rows'] if r['account'] == name]) > len(unused)
    table = report(both, '--width', '200').stdout.splitlines()
    assert table[0].split()[:3] == ['account', 'policy', 'user']
    assert any('unused-access-keys-retire' in line for line in table[2:])
    single = report(tmp / 'report', '--width', '200').stdout.splitlines()
    assert single[0].split()[:2] == ['account', 'user']


def test_output_of_another_layout_beside_is_named_not_dropped(outputs, tmp_path):
    """A custodian run into the root of a c7n-org output folder: the report reads one
    layout, and names the other as a failure instead of leaving it out unseen."""
    import shutil
    tmp, _ = outputs
    mixed = tmp_path / 'mixed'
    shutil.copytree(tmp / 'report', mixed)
    shutil.copytree(tmp / 'custodian', mixed, dirs_exist_ok=True)
    data, run = as_json(mixed)
    assert run.returncode == 2
    assert data['layout'] == 'custodian'
    assert {(f['account'], f['reason'].split(';')[0]) for f in data['failures']} == {
        ('*', 'not read: c7n-org output beside the custodian output read')}
    assert {f['policy'] for f in data['failures']} == {
        '%s/us-east-1/unused-access-keys-report' % n for n in NAMES}
