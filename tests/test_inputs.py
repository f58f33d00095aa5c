"""Inputs at the edges: no users, a user with two keys, users with paths, >1,000 users."""
import random

from c7n_unused_keys_sandbox.seed import SeedKey, SeedUser, ordinary_users, seed_account
from c7n_unused_keys.names import UNUSED_ANNOTATION
from conftest import DEFAULT_ACCOUNT, ROOT, custodian_run, read_json

REPORT = ROOT / 'policies' / 'unused-access-keys-report.yml'
RETIRE = ROOT / 'policies' / 'unused-access-keys-retire.yml'


def test_no_users(sandbox, tmp_path):
    for policy in (REPORT, RETIRE):
        run = custodian_run(sandbox, tmp_path, policy)
        assert run.returncode == 0, run.stderr
        out = tmp_path / policy.stem
        assert read_json(out / 'resources.json') == []
        # Nothing to check: not even the credential report is asked for.
        assert read_json(out / 'metadata.json')['api-stats'] == {'iam.ListUsers': 1}


def test_two_keys_only_the_unused_one_is_retired_and_paths_are_fine(sandbox, tmp_path):
    c = sandbox.iam_client()
    c.create_user(UserName='two', Path='/teams/data/')
    used, idle = (c.create_access_key(UserName='two')['AccessKey']['AccessKeyId']
                  for _ in range(2))
    sandbox.backdate_key(DEFAULT_ACCOUNT, used, created_days=300, used_days=1)
    sandbox.backdate_key(DEFAULT_ACCOUNT, idle, created_days=200, used_days=100)
    run = custodian_run(sandbox, tmp_path, RETIRE)
    assert run.returncode == 0, run.stderr
    keys = {k.access_key_id: k.status
            for k in sandbox.backend(DEFAULT_ACCOUNT).users['two'].access_keys}
    assert keys == {used: 'Active', idle: 'Inactive'}
    [rec] = read_json(tmp_path / RETIRE.stem / 'action-retire-access-keys')
    assert (rec['AccessKeyId'], rec['Step']) == (idle, 'deactivated')


def test_more_than_a_thousand_users_are_paged(sandbox, tmp_path):
    users = ordinary_users('many', 1050, random.Random(3), unused_share=0.1)
    users.append(SeedUser('last-one', [SeedKey(300, used=200)]))
    # Straight into the emulator: this test is about c7n's paging, not about creating users.
    seed_account(sandbox, DEFAULT_ACCOUNT, users, through_api=False)
    expected = {k.key_id for u in users for k in u.keys if k.used >= 45}
    run = custodian_run(sandbox, tmp_path, REPORT)
    assert run.returncode == 0, run.stderr
    out = tmp_path / REPORT.stem
    resources = read_json(out / 'resources.json')
    found = {k['AccessKeyId'] for r in resources for k in r[UNUSED_ANNOTATION]}
    assert found == expected and len(expected) > 100
    assert 'last-one' in {r['UserName'] for r in resources}
    # The report policy lists users with their tags 1,000 a page, in both calls (so
    # 1,051 users still take two pages of each): no GetUser, no ListUserTags.
    stats = read_json(out / 'metadata.json')['api-stats']
    assert stats['iam.ListUsers'] == 2 and stats['iam.GetAccountAuthorizationDetails'] == 2
    assert 'iam.GetUser' not in stats and 'iam.ListUserTags' not in stats
