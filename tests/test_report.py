"""`c7n-unused-keys report` on real outputs of `custodian run` and `c7n-org run`."""
import csv
import io
import json

import pytest

from c7n_unused_keys.accounts import load_accounts
from c7n_unused_keys.seed import seed_organisation
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
    seed_organisation(emulator, load_accounts(CONFIG))
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
        assert rows[0][-1] == 'error'
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
    code = ('import sys, c7n_unused_keys; from c7n_org.cli import cli; '
            'sys.argv[0] = "c7n-org"; cli()')
    run = run_command(['python', '-c', code, 'run', '-c', CONFIG, '-s', tmp_path, '-u', REPORT,
                       '--cache-period', '0'], emulator,
                      extra_env={'PYTHONPATH': str(ROOT / 'tests' / 'spawn'),
                                 'C7N_UNUSED_KEYS_DISABLE': '1'})
    assert run.returncode == 0 and 'c7n_org:WARNING' in run.stderr
    # Nothing to read at all: the command says so.
    empty = report(tmp_path)
    assert empty.returncode != 0 and 'no custodian or c7n-org output' in empty.stderr


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
    seed_organisation(emulator, {'111111111111': 'dev'})
    out = tmp_path / 'out'
    real = org_run(emulator, out, RETIRE, '-a', 'dev')
    assert real.returncode == 0, real.stderr
    # A dry run into the same folder: the report shows its would-steps, not the old steps.
    dry = org_run(emulator, out, RETIRE, '-a', 'dev', '--dryrun')
    assert dry.returncode == 0, dry.stderr
    data, run = as_json(out)
    assert run.returncode == 0 and data['rows'] and all(r['would'] for r in data['rows'])
    # A run that stops before its filters: the old resources.json does not hide it.
    failed = org_run(emulator, out, RETIRE, '-a', 'dev', env=faults('ListUsers=AccessDenied'))
    assert failed.returncode != 0
    data, run = as_json(out)
    assert run.returncode == 2 and data['rows'] == []
    assert data['failures'][0]['reason'].startswith('the policy stopped before its filters')
    emulator.reset()


def test_a_tripped_circuit_breaker_is_a_failure(sandbox, tmp_path):
    from c7n_unused_keys.seed import SeedKey, SeedUser, seed_account
    seed_account(sandbox, '123456789012', [SeedUser('stale-%02d' % i, [SeedKey(300, used=100)])
                                          for i in range(25)])
    run = custodian_run(sandbox, tmp_path, RETIRE)
    assert run.returncode != 0
    data, rep = as_json(tmp_path)
    assert rep.returncode == 2
    assert any('exceeded resource-limit' in f['reason'] for f in data['failures'])
