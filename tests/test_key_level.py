"""`unused-access-keys` on aws.iam-access-key: one resource per key, the same answer as
on aws.iam-user, for every source."""
import json

import pytest

from c7n_unused_keys.names import EXEMPT_ANNOTATION, UNUSED_ANNOTATION
from conftest import custodian_run, read_json, run_command, write_policies
from helpers import seeded

OPTIONS = {'days': 45, 'never-used-days': 30}


def both(source, **options):
    """The user-level and the key-level policy, with the same filter."""
    f = dict({'type': 'unused-access-keys', 'source': source}, **OPTIONS, **options)
    return ({'name': 'users', 'resource': 'aws.iam-user', 'filters': [f]},
            {'name': 'keys', 'resource': 'aws.iam-access-key', 'filters': [f]})


@pytest.mark.parametrize('source', ['api', 'hybrid', 'credential-report'])
@pytest.mark.parametrize('status', ['any', 'Active'])
def test_the_key_level_filter_matches_the_keys_the_user_level_one_does(
        sandbox, tmp_path, source, status):
    ids = seeded(sandbox, ordinary=20)
    run = custodian_run(sandbox, tmp_path, write_policies(
        tmp_path / 'p.yml', *both(source, status=status)))
    assert run.returncode == 0, run.stderr
    users = read_json(tmp_path / 'users' / 'resources.json')
    keys = read_json(tmp_path / 'keys' / 'resources.json')
    by_user = {(u['UserName'], a['AccessKeyId']): a for u in users for a in u[UNUSED_ANNOTATION]}
    assert by_user, 'the seeding has unused keys'
    assert {(k['UserName'], k['AccessKeyId']) for k in keys} == set(by_user)
    for k in keys:
        (ann,) = k[UNUSED_ANNOTATION]
        user_ann = by_user[(k['UserName'], k['AccessKeyId'])]
        assert ann == user_ann
        # The owner's tags, as the user-level resource carries them.
        user = next(u for u in users if u['UserName'] == k['UserName'])
        assert k['Tags'] == user.get('Tags', [])
    # The seeding's exempt user: its key is exempt on both levels, and named.
    assert 'mallory-exempt' not in {k['UserName'] for k in keys}
    assert all(k['AccessKeyId'] in sum(ids.values(), []) for k in keys)


def test_exempt_keys_are_annotated_not_matched(sandbox, tmp_path):
    seeded(sandbox, ordinary=0)
    run = custodian_run(sandbox, tmp_path, write_policies(
        tmp_path / 'p.yml', both('api')[1]))
    assert run.returncode == 0, run.stderr
    keys = read_json(tmp_path / 'keys' / 'resources.json')
    assert 'mallory-exempt' not in {k['UserName'] for k in keys}
    assert 'oscar-exemption-expired' in {k['UserName'] for k in keys}
    assert not any(EXEMPT_ANNOTATION in k for k in keys)


@pytest.mark.parametrize('source', ['api', 'hybrid'])
def test_the_key_level_filter_lists_nothing_again_and_reads_candidate_owners_tags_only(
        sandbox, tmp_path, source):
    ids = seeded(sandbox, ordinary=20)
    sandbox.operations.clear()
    sandbox.count_operations = True
    try:
        run = custodian_run(sandbox, tmp_path, write_policies(
            tmp_path / 'p.yml', both(source)[1]))
    finally:
        sandbox.count_operations = False
    assert run.returncode == 0, run.stderr
    ops = dict(sandbox.operations)
    keys = read_json(tmp_path / 'keys' / 'resources.json')
    owners = {k['UserName'] for k in keys} | {'mallory-exempt'}   # exempt: tags read too
    # c7n's listing: one ListAccessKeys per user; the filter adds none, and no GetUser.
    assert ops.get('ListAccessKeys') == len(ids)
    assert ops.get('GetUser', 0) == 0
    assert ops.get('ListUserTags') == len(owners)
    last_used = ops.get('GetAccessKeyLastUsed', 0)
    every_key = sum(len(v) for v in ids.values())
    if source == 'api':
        assert last_used == every_key
    else:
        # The credential report rules out keys that cannot match.
        assert len(keys) <= last_used < every_key


def key_level_document(tmp_path):
    path = write_policies(tmp_path / 'keys.yml', both('hybrid')[1])
    run = run_command(['c7n-unused-keys', 'permissions', path], None)
    assert run.returncode == 0, run.stderr
    return path, json.loads(run.stdout)


def test_the_permissions_of_a_key_level_policy_include_c7n_s_user_listing(tmp_path):
    """c7n lists a child resource per parent; its manager declares only ListAccessKeys."""
    _, doc = key_level_document(tmp_path)
    assert set(doc['Statement'][0]['Action']) == {
        'iam:ListUsers', 'iam:ListAccessKeys', 'iam:GetAccessKeyLastUsed', 'iam:ListUserTags',
        'iam:GenerateCredentialReport', 'iam:GetCredentialReport'}


@pytest.mark.parametrize('drop', [None, 'iam:ListUsers', 'iam:ListAccessKeys',
                                  'iam:GetAccessKeyLastUsed', 'iam:ListUserTags'])
def test_the_key_level_document_is_enough_and_each_call_needed(sandbox, tmp_path, drop):
    path, doc = key_level_document(tmp_path)
    doc['Statement'][0]['Action'] = [a for a in doc['Statement'][0]['Action'] if a != drop]
    seeded(sandbox, ordinary=5)
    c = sandbox.iam_client()
    c.create_user(UserName='runner')
    c.put_user_policy(UserName='runner', PolicyName='p', PolicyDocument=json.dumps(doc))
    key = c.create_access_key(UserName='runner')['AccessKey']
    env = {'AWS_ACCESS_KEY_ID': key['AccessKeyId'],
           'AWS_SECRET_ACCESS_KEY': key['SecretAccessKey']}
    with sandbox.enforcing_iam():
        run = custodian_run(sandbox, tmp_path / 'out', path, env=env)
    if drop is None:
        assert run.returncode == 0, run.stderr
        assert read_json(tmp_path / 'out' / 'keys' / 'resources.json')
    else:
        assert run.returncode != 0
        assert drop.split(':')[1] in run.stderr, run.stderr


def test_the_key_level_filter_lists_users_afresh_under_c7n_s_cache(sandbox, tmp_path):
    """With c7n's cache on, a user-level policy caches the users; a user leaves and
    another comes; the key-level policy then lists keys from users listed afresh."""
    from conftest import DEFAULT_ACCOUNT, run_command as run
    seeded(sandbox, ordinary=3)
    c = sandbox.iam_client()
    c.create_user(UserName='leaving')
    c.create_access_key(UserName='leaving')
    cache = tmp_path / 'cache.sqlite'
    users, keys = both('api')

    def cached(out, policy):
        path = write_policies(tmp_path / ('%s.yml' % out), policy)
        return run(['custodian', 'run', '-s', tmp_path / out, '-f', cache, path], sandbox)
    first = cached('first', users)
    assert first.returncode == 0, first.stderr
    for k in c.list_access_keys(UserName='leaving')['AccessKeyMetadata']:
        c.delete_access_key(UserName='leaving', AccessKeyId=k['AccessKeyId'])
    c.delete_user(UserName='leaving')
    c.create_user(UserName='arrived')
    new = c.create_access_key(UserName='arrived')['AccessKey']['AccessKeyId']
    sandbox.backdate_key(DEFAULT_ACCOUNT, new, created_days=300, used_days=100)
    second = cached('second', keys)
    assert second.returncode == 0, second.stderr
    keys = read_json(tmp_path / 'second' / 'keys' / 'resources.json')
    assert new in {k['AccessKeyId'] for k in keys}


@pytest.mark.parametrize('source', ['list-users', 'describe-parallel'])
def test_a_user_listing_source_on_keys_is_refused_naming_it(tmp_path, source):
    """What makes no sense on a key resource: the plugin's user-listing sources."""
    policy = dict(both('api')[1], source=source)
    run = run_command(['custodian', 'validate', write_policies(tmp_path / 'p.yml', policy)],
                      None)
    assert run.returncode != 0
    assert 'source: %s is for aws.iam-user only, not iam-access-key' % source in run.stderr, \
        run.stderr


def test_the_key_listing_itself_is_never_read_from_c7n_s_cache(sandbox, tmp_path):
    """A key deactivated and a key made since the last run, within the cache period:
    the key-level filter sees both as they are now, as the user-level one does."""
    from conftest import DEFAULT_ACCOUNT, run_command as run
    seeded(sandbox, ordinary=3)
    c = sandbox.iam_client()
    cache = tmp_path / 'cache.sqlite'
    users, keys = both('api', status='Active')

    def cached(out, *policies):
        path = write_policies(tmp_path / ('%s.yml' % out), *policies)
        return run(['custodian', 'run', '-s', tmp_path / out, '-f', cache, path], sandbox)
    first = cached('first', keys)
    assert first.returncode == 0, first.stderr
    old = read_json(tmp_path / 'first' / 'keys' / 'resources.json')[0]
    c.update_access_key(UserName=old['UserName'], AccessKeyId=old['AccessKeyId'],
                        Status='Inactive')
    c.create_user(UserName='arrived')
    new = c.create_access_key(UserName='arrived')['AccessKey']['AccessKeyId']
    sandbox.backdate_key(DEFAULT_ACCOUNT, new, created_days=300, used_days=100)
    second = cached('second', users, keys)
    assert second.returncode == 0, second.stderr
    found = {k['AccessKeyId'] for k in read_json(tmp_path / 'second' / 'keys' / 'resources.json')}
    assert new in found and old['AccessKeyId'] not in found
    by_user = {a['AccessKeyId'] for u in read_json(tmp_path / 'second' / 'users' /
                                                   'resources.json')
               for a in u[UNUSED_ANNOTATION]}
    assert found == by_user


def test_a_key_level_marked_policy_lists_users_afresh_under_c7n_s_cache(sandbox, tmp_path):
    from conftest import run_command as run
    seeded(sandbox, ordinary=3)
    c = sandbox.iam_client()
    c.create_user(UserName='leaving')
    c.create_access_key(UserName='leaving')
    cache = tmp_path / 'cache.sqlite'

    def cached(out, policy):
        path = write_policies(tmp_path / ('%s.yml' % out), policy)
        return run(['custodian', 'run', '-s', tmp_path / out, '-f', cache, path], sandbox)
    assert cached('users', both('api')[0]).returncode == 0
    for k in c.list_access_keys(UserName='leaving')['AccessKeyMetadata']:
        c.delete_access_key(UserName='leaving', AccessKeyId=k['AccessKeyId'])
    c.delete_user(UserName='leaving')
    marked = cached('marked', {'name': 'marked', 'resource': 'aws.iam-access-key',
                               'filters': [{'type': 'marked-access-keys'}]})
    assert marked.returncode == 0, marked.stderr
    # The seeding's deactivated keys carry markers.
    users = {k['UserName'] for k in read_json(tmp_path / 'marked' / 'marked' /
                                              'resources.json')}
    assert 'heidi-deactivated-5d' in users
