"""`c7n-unused-keys report` on key-level outputs (`unused-access-keys` on
aws.iam-access-key): one row per key, the same columns, rows and totals as the
user-level policy beside it on the same accounts."""
import json
import shutil

import pytest
import yaml

from c7n_unused_keys.accounts import load_accounts
from c7n_unused_keys_sandbox.seed import seed_organisation
from conftest import ROOT, custodian_run, run_command
from helpers import seeded

CONFIG = ROOT / 'custodian.yml'
USERS = 'unused-access-keys-report'
KEYS = 'unused-access-keys-report-keys'
NAMES = ('dev', 'staging', 'prod')


def key_level(policy: dict) -> dict:
    """The shipped user-level report policy on aws.iam-access-key: the same filter."""
    keys = {k: v for k, v in policy.items() if k != 'source'}
    return dict(keys, name=KEYS, resource='aws.iam-access-key')


def both_policies(path):
    shipped = yaml.safe_load((ROOT / 'policies' / 'unused-access-keys-report.yml').read_text())
    (users,) = shipped['policies']
    assert users['name'] == USERS and users['resource'] == 'aws.iam-user'
    path.write_text(yaml.safe_dump({'policies': [users, key_level(users)]}))
    return path


def report(out, *args):
    return run_command(['c7n-unused-keys', 'report', out] + list(args), None)


def as_json(out):
    run = report(out, '--format', 'json')
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def only(tree, policy, dest):
    """A copy of an output tree holding one policy's folders."""
    other = {USERS, KEYS} - {policy}
    shutil.copytree(tree, dest, ignore=lambda _, names: [n for n in names if n in other])
    return dest


def without_policy(rows):
    """The rows without their policy, delete-on dates to the day (each policy's run
    has its own start)."""
    return sorted((tuple(sorted((k, v[:10] if k == 'delete_on' and v else v)
                                for k, v in r.items() if k != 'policy'))
                   for r in rows), key=repr)


@pytest.fixture(scope='module')
def org_output(emulator, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('key-report')
    emulator.reset()
    seed_organisation(emulator, load_accounts(CONFIG), through_api=False)
    run = run_command(['c7n-org', 'run', '-c', CONFIG, '-s', tmp / 'out', '--cache-period',
                       '0', '-u', both_policies(tmp / 'both.yml')], emulator)
    yield tmp, run
    emulator.reset()


def test_c7n_org_key_level_rows_and_totals_are_the_user_level_ones(org_output, tmp_path):
    tmp, run = org_output
    assert run.returncode == 0, run.stderr
    for name in NAMES:
        assert (tmp / 'out' / name / 'us-east-1' / KEYS / 'resources.json').is_file()
    users = as_json(only(tmp / 'out', USERS, tmp_path / 'users'))
    keys = as_json(only(tmp / 'out', KEYS, tmp_path / 'keys'))
    assert keys['failures'] == [] and keys['layout'] == 'c7n-org'
    assert {r['policy'] for r in keys['rows']} == {KEYS}
    # One row per key: 7 unused keys in each seeded account, none twice.
    assert len(keys['rows']) == 21
    assert len({(r['account'], r['key_id']) for r in keys['rows']}) == 21
    assert without_policy(keys['rows']) == without_policy(users['rows'])
    assert keys['totals'] == users['totals']
    assert keys['totals']['all accounts'] == {'unused': 21}
    # Both policies in one output: a policy column, and each key counted once.
    mixed = as_json(tmp / 'out')
    assert {r['policy'] for r in mixed['rows']} == {USERS, KEYS}
    assert mixed['totals'] == users['totals']


@pytest.mark.parametrize('fmt', ['table', 'csv', 'markdown'])
def test_key_level_output_has_the_same_columns(org_output, tmp_path, fmt):
    tmp, _ = org_output
    users = report(only(tmp / 'out', USERS, tmp_path / 'users'), '--format', fmt,
                   '--width', '200')
    keys = report(only(tmp / 'out', KEYS, tmp_path / 'keys'), '--format', fmt,
                  '--width', '200')
    assert keys.returncode == 0, keys.stderr
    # Same header and the same lines apart from the policy's name (csv's last column).
    assert keys.stdout.splitlines()[0] == users.stdout.splitlines()[0]
    assert sorted(keys.stdout.replace(KEYS, USERS).splitlines()) == \
        sorted(users.stdout.splitlines())


def test_custodian_key_level_rows_are_the_user_level_ones(sandbox, tmp_path):
    ids = seeded(sandbox, ordinary=20)
    run = custodian_run(sandbox, tmp_path / 'out', both_policies(tmp_path / 'both.yml'))
    assert run.returncode == 0, run.stderr
    users = as_json(only(tmp_path / 'out', USERS, tmp_path / 'users'))
    keys = as_json(only(tmp_path / 'out', KEYS, tmp_path / 'keys'))
    assert keys['layout'] == 'custodian' and keys['failures'] == []
    assert keys['rows'], 'the seeding has unused keys'
    assert {r['key_id'] for r in keys['rows']} <= set(sum(ids.values(), []))
    assert without_policy(keys['rows']) == without_policy(users['rows'])
    assert keys['totals'] == users['totals']


RETIRE = 'unused-access-keys-retire'
RETIRE_KEYS = 'unused-access-keys-retire-keys'


def retire_policies(path, which):
    (users,) = yaml.safe_load((ROOT / 'policies' / (RETIRE + '.yml')).read_text())['policies']
    keys = dict({k: v for k, v in users.items() if k != 'source'}, name=RETIRE_KEYS,
                resource='aws.iam-access-key')
    path.write_text(yaml.safe_dump({'policies': [{'users': users, 'keys': keys}[w]
                                                 for w in which]}))
    return path


def steps(rows):
    """What each row says, without the key id (a reseeded account has new ids)."""
    return sorted((r['account'], r['user'], r['status'] or '', r['idle_days'] or -1,
                   r['step'], r['would'], (r['delete_on'] or '')[:10]) for r in rows)


def test_key_level_dry_run_would_take_the_user_level_steps(emulator, tmp_path):
    emulator.reset()
    seed_organisation(emulator, load_accounts(CONFIG), through_api=False)
    run = run_command(['c7n-org', 'run', '-c', CONFIG, '-s', tmp_path / 'out',
                       '--cache-period', '0', '--dryrun', '-u',
                       retire_policies(tmp_path / 'p.yml', ('users', 'keys'))], emulator)
    emulator.reset()
    assert run.returncode == 0, run.stderr
    data = as_json(tmp_path / 'out')
    users = [r for r in data['rows'] if r['policy'] == RETIRE]
    keys = [r for r in data['rows'] if r['policy'] == RETIRE_KEYS]
    assert all(r['would'] for r in keys)
    assert {r['step'] for r in keys} == {'deactivated', 'waiting', 'deleted', 'reactivated'}
    assert without_policy(keys) == without_policy(users)


def test_key_level_retire_rows_are_the_user_level_ones(emulator, tmp_path):
    """Each policy on a freshly seeded organisation: the same steps, key by key."""
    found = {}
    for which in ('users', 'keys'):
        emulator.reset()
        seed_organisation(emulator, load_accounts(CONFIG), through_api=False)
        run = run_command(['c7n-org', 'run', '-c', CONFIG, '-s', tmp_path / which,
                           '--cache-period', '0', '-u',
                           retire_policies(tmp_path / (which + '.yml'), (which,))], emulator)
        assert run.returncode == 0, run.stderr
        found[which] = as_json(tmp_path / which)
    emulator.reset()
    users, keys = found['users'], found['keys']
    assert {r['policy'] for r in keys['rows']} == {RETIRE_KEYS}
    assert not any(r['would'] for r in keys['rows'])
    assert {r['step'] for r in keys['rows']} == {'deactivated', 'waiting', 'deleted',
                                                 'reactivated'}
    assert steps(keys['rows']) == steps(users['rows'])
    assert keys['totals'] == users['totals']
