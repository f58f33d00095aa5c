"""`source: describe-parallel`: the same users as c7n's own listing, GetUser in parallel."""
from datetime import datetime, timezone

from c7n_unused_keys.seed import organisation, seed_account
from conftest import (DEFAULT_ACCOUNT, custodian_run, read_json, run_command,
                      unused_keys_policy, write_policies)


def test_same_resources_and_calls_as_the_stock_listing(sandbox, tmp_path):
    seed_account(sandbox, DEFAULT_ACCOUNT, organisation('dev', datetime.now(timezone.utc)))
    options = {'days': 45, 'never-used-days': 30}
    stock = unused_keys_policy('stock', options)
    parallel = dict(unused_keys_policy('parallel', options), source='describe-parallel')
    path = write_policies(tmp_path / 'p.yml', stock, parallel)
    run = custodian_run(sandbox, tmp_path / 'out', path)
    assert run.returncode == 0, run.stderr

    def users(name):
        return sorted(read_json(tmp_path / 'out' / name / 'resources.json'),
                      key=lambda r: r['UserName'])
    assert users('parallel') == users('stock') and len(users('stock')) == 9
    [oscar] = [r for r in users('parallel') if r['UserName'] == 'oscar-exemption-expired']
    assert [t['Key'] for t in oscar['Tags']] == ['c7n-unused-keys-exempt']
    stats = read_json(tmp_path / 'out' / 'parallel' / 'metadata.json')['api-stats']
    assert stats['iam.ListUsers'] == 1 and stats['iam.GetUser'] == 42


def test_other_resources_refuse_it(tmp_path):
    path = write_policies(tmp_path / 'p.yml', {
        'name': 'roles', 'resource': 'aws.iam-role', 'source': 'describe-parallel'})
    run = run_command(['custodian', 'validate', path], None)
    assert run.returncode != 0
    assert 'source: describe-parallel is for aws.iam-user only, not iam-role' in run.stderr
