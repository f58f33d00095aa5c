"""The opt-in user sources: `describe-parallel` (same users, GetUser in parallel) and
`list-users` (ListUsers alone; the filter reads the tags of the users it matches)."""
import json
from datetime import datetime, timezone

import pytest

from c7n_unused_keys.names import EXEMPT_ANNOTATION, EXEMPT_TAG, UNUSED_ANNOTATION
from c7n_unused_keys_sandbox.seed import organisation, seed_account
from conftest import (DEFAULT_ACCOUNT, custodian_run, read_json, run_command,
                      unused_keys_policy, write_policies)


def test_same_resources_and_calls_as_the_stock_listing(sandbox, tmp_path):
    seed_account(sandbox, DEFAULT_ACCOUNT, organisation('dev', datetime.now(timezone.utc)),
                 through_api=False)
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
    assert [t['Key'] for t in oscar['Tags']] == [EXEMPT_TAG]
    stats = read_json(tmp_path / 'out' / 'parallel' / 'metadata.json')['api-stats']
    # One GetUser per user of the account.
    count = len(sandbox.backend(DEFAULT_ACCOUNT).users)
    assert stats['iam.ListUsers'] == 1 and stats['iam.GetUser'] == count == 47


def test_other_resources_refuse_it(tmp_path):
    path = write_policies(tmp_path / 'p.yml', {
        'name': 'roles', 'resource': 'aws.iam-role', 'source': 'describe-parallel'})
    run = run_command(['custodian', 'validate', path], None)
    assert run.returncode != 0
    assert 'source: describe-parallel is for aws.iam-user only, not iam-role' in run.stderr


# -- source: list-users ------------------------------------------------------------

OPTIONS = {'days': 45, 'never-used-days': 30}


def run_policies(sandbox, tmp_path, *policies):
    seed_account(sandbox, DEFAULT_ACCOUNT, organisation('dev', datetime.now(timezone.utc)),
                 through_api=False)
    run = custodian_run(sandbox, tmp_path / 'out', write_policies(tmp_path / 'p.yml', *policies))
    assert run.returncode == 0, run.stderr

    def users(name):
        return {r['UserName']: r for r in read_json(tmp_path / 'out' / name / 'resources.json')}

    def stats(name):
        return read_json(tmp_path / 'out' / name / 'metadata.json')['api-stats']
    return users, stats


def listed(name, *filters):
    return {'name': name, 'resource': 'aws.iam-user', 'source': 'list-users',
            'filters': list(filters)}


def test_list_users_matches_the_same_keys_with_the_same_tags(sandbox, tmp_path):
    unused = dict(OPTIONS, type='unused-access-keys')
    users, stats = run_policies(
        sandbox, tmp_path, unused_keys_policy('stock', OPTIONS), listed('listed', unused),
        # With an exempt tag nobody carries: the users with unused keys before exemptions.
        unused_keys_policy('unexempted', dict(OPTIONS, **{'exempt-tag': 'no-such-tag'})))
    stock, ours = users('stock'), users('listed')
    assert sorted(ours) == sorted(stock) and len(stock) == 9
    for name, r in stock.items():
        for field in (UNUSED_ANNOTATION, EXEMPT_ANNOTATION, 'Tags'):
            assert ours[name].get(field) == r.get(field), (name, field)
    assert ours['oscar-exemption-expired']['Tags'][0]['Key'] == EXEMPT_TAG
    # No GetUser; ListUserTags only for users with unused keys (mallory's are exempt).
    assert 'mallory-exempt' in users('unexempted') and 'mallory-exempt' not in ours
    calls = stats('listed')
    assert calls['iam.ListUsers'] == 1 and 'iam.GetUser' not in calls
    assert calls['iam.ListUserTags'] == len(users('unexempted')) < 42


def test_list_users_tag_filters_after_ours_see_the_tags(sandbox, tmp_path):
    tagged = {'tag:' + EXEMPT_TAG: 'present'}
    users, _ = run_policies(
        sandbox, tmp_path,
        dict(unused_keys_policy('stock', OPTIONS),
             filters=[dict(OPTIONS, type='unused-access-keys'), tagged]),
        listed('listed', dict(OPTIONS, type='unused-access-keys'), tagged))
    assert sorted(users('listed')) == sorted(users('stock')) == ['oscar-exemption-expired']


UNUSED = dict(OPTIONS, type='unused-access-keys')


@pytest.mark.parametrize('policy, message', [
    (listed('p', {'tag:Team': 'present'}, UNUSED),
     "the filter {'tag:Team': 'present'} placed before unused-access-keys would see none"),
    (listed('p', {'type': 'value', 'key': 'Tags', 'value': 'empty'}, UNUSED),
     'placed before unused-access-keys would see none'),
    (listed('p', {'or': [UNUSED, {'UserName': 'x'}]}),
     'with source: list-users it must be a top-level filter'),
    (listed('p', UNUSED, {'type': 'marked-access-keys'}),
     "marked-access-keys reads every user's tags; source: list-users lists users"),
    (dict(listed('p', UNUSED), actions=[{'type': 'retire-access-keys'}]),
     'retire-access-keys keeps its markers in user tags'),
    ({'name': 'p', 'resource': 'aws.iam-role', 'source': 'list-users'},
     'source: list-users is for aws.iam-user only, not iam-role'),
])
def test_list_users_refuses_what_would_need_every_users_tags(tmp_path, policy, message):
    run = run_command(['custodian', 'validate', write_policies(tmp_path / 'p.yml', policy)],
                      None)
    assert run.returncode != 0
    assert message in run.stderr, run.stderr


def test_list_users_permissions(tmp_path):
    path = write_policies(tmp_path / 'p.yml', listed('p', UNUSED))
    run = run_command(['c7n-unused-keys', 'permissions', path], None)
    assert run.returncode == 0, run.stderr
    actions = set(json.loads(run.stdout)['Statement'][0]['Action'])
    assert {'iam:ListUsers', 'iam:ListUserTags'} <= actions and 'iam:GetUser' not in actions


@pytest.mark.parametrize('source', ['list-users', 'describe-parallel'])
def test_users_are_listed_a_thousand_a_page(sandbox, tmp_path, source):
    """ListUsers at MaxItems=1000 (IAM's largest page): 1,051 users in 2 calls, not 11."""
    from c7n_unused_keys_sandbox.seed import SeedUser
    from conftest import write_policies
    from helpers import seeded
    # The lifecycle cases, then users without keys: each is listed, and no more is read.
    seeded(sandbox, ordinary=0)
    extra = 1051 - len(sandbox.backend(DEFAULT_ACCOUNT).users)
    seed_account(sandbox, DEFAULT_ACCOUNT, [SeedUser('keyless-%04d' % i, [])
                                            for i in range(extra)], through_api=False)
    assert len(sandbox.backend(DEFAULT_ACCOUNT).users) == 1051
    sandbox.operations.clear()
    sandbox.count_operations = True
    try:
        run = custodian_run(sandbox, tmp_path, write_policies(tmp_path / 'p.yml', {
            'name': 'p', 'resource': 'aws.iam-user', 'source': source,
            'filters': [{'type': 'unused-access-keys', 'days': 45, 'source': 'api'}]}))
    finally:
        sandbox.count_operations = False
    assert run.returncode == 0, run.stderr
    assert sandbox.operations['ListUsers'] == 2
    # Every user is seen: one ListAccessKeys each, at one page each.
    assert sandbox.operations['ListAccessKeys'] == 1051
