"""`retire-access-keys` on aws.iam-access-key through the real `custodian`: what only the key
level has, and the two levels carrying on each other's work. The lifecycle both levels
share is tested at both in tests/test_retire.py."""
import json
from datetime import datetime, timezone

import pytest
import yaml
from c7n.config import Config
from c7n.exceptions import PolicyValidationError
from c7n.policy import PolicyCollection

from c7n_unused_keys.names import UNUSED_ANNOTATION
from c7n_unused_keys.model import RunFindings
from conftest import (DEFAULT_ACCOUNT, custodian_run, iam_client, read_json, run_command,
                      write_policies)
from helpers import (ACTION, KEY_NAME, PREFIX, R_PREFIX, RETIRE, RETIRE_NAME, UNUSED,
                     account_state, key_policy, no_key_deactivated_without_its_marker, seed,
                     seeded)

NAME = KEY_NAME


def key_file(tmp_path, **kw):
    return write_policies(tmp_path / 'keys.yml', key_policy(**kw))


def retire(emu, tmp_path, out, *extra, **kw):
    return custodian_run(emu, tmp_path / out, key_file(tmp_path, **kw), *extra)


def records(out, name=NAME):
    return read_json(out / name / 'action-retire-access-keys')


def steps(out, name=NAME):
    return {(r['UserName'], r['Step']) for r in records(out, name)}


def cached_run(emu, out, cache, policy):
    """`custodian run` with c7n's default 15-minute cache, in a cache file of the test's."""
    return run_command(['custodian', 'run', '-s', out, '-f', cache, policy], emu)


# -- What only the key level has ------------------------------------------------------------

def test_the_key_the_policy_runs_with_is_skipped(sandbox, monkeypatch, tmp_path):
    """The emulator marks a key used as it signs, so the filter's matches are faked (as in
    tests/test_self_key.py) and the real key-level action runs with that key."""
    c = iam_client(sandbox)
    keys = {}
    for user in ('robot', 'other'):
        c.create_user(UserName=user)
        keys[user] = c.create_access_key(UserName=user)['AccessKey']
    for k, v in sandbox.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv('AWS_ACCESS_KEY_ID', keys['robot']['AccessKeyId'])
    monkeypatch.setenv('AWS_SECRET_ACCESS_KEY', keys['robot']['SecretAccessKey'])
    import c7n_unused_keys.register  # noqa: F401
    from c7n.policy import Policy
    policy = Policy(key_policy(), Config.empty(
        region='us-east-1', account_id=DEFAULT_ACCOUNT, output_dir=str(tmp_path)))
    [action] = policy.resource_manager.actions
    [unused] = action.unused_filters()
    monkeypatch.setattr(unused, 'run_findings', lambda run: RunFindings(
        {user: [keys[user]['AccessKeyId']] for user in ('robot', 'other')}, 2))
    resources = [{'UserName': u, 'AccessKeyId': keys[u]['AccessKeyId'], 'Status': 'Active',
                  'Tags': []} for u in ('robot', 'other')]
    assert {r['UserName']: r['Step'] for r in action.process(resources)} == \
        {'robot': 'skipped-self', 'other': 'deactivated'}
    assert account_state(sandbox)['robot'] == ({keys['robot']['AccessKeyId']: 'Active'}, {})
    assert account_state(sandbox)['other'].keys == {keys['other']['AccessKeyId']: 'Inactive'}
    assert resources[0]['c7n:retire-access-keys'][0]['Step'] == 'skipped-self'


def test_a_key_another_filter_drops_is_not_acted_on_though_its_owner_is(sandbox, tmp_path):
    """Keys, not users: a second unused key of the same owner stays as it is."""
    c = iam_client(sandbox)
    c.create_user(UserName='two')
    kept, retired = (c.create_access_key(UserName='two')['AccessKey']['AccessKeyId']
                     for _ in range(2))
    for k in (kept, retired):
        sandbox.backdate_key(DEFAULT_ACCOUNT, k, created_days=300, used_days=100)
    seed(sandbox, users={'on-%d' % i: dict(created=300, used=2) for i in range(4)})
    filters = [{'or': [UNUSED, {'type': 'marked-access-keys'}]},
               {'type': 'value', 'key': 'AccessKeyId', 'op': 'ne', 'value': kept}]
    run = retire(sandbox, tmp_path, 'out', filters=filters)
    assert run.returncode == 0, run.stderr
    assert {r['AccessKeyId'] for r in records(tmp_path / 'out')} == {retired}
    s = account_state(sandbox)['two']
    assert s.keys == {kept: 'Active', retired: 'Inactive'}
    assert set(s.tags) == {PREFIX + retired}
    # Still dropped on day 31: its sibling is deleted, it is left alone.
    sandbox.advance(DEFAULT_ACCOUNT, 31)
    run = retire(sandbox, tmp_path, 'day31', filters=filters)
    assert run.returncode == 0, run.stderr
    assert account_state(sandbox)['two'] == ({kept: 'Active'}, {})


# -- Across the two levels -------------------------------------------------------------------

@pytest.mark.parametrize('first', ['user', 'key'])
def test_a_key_retired_at_one_level_is_deleted_at_the_other(sandbox, tmp_path, first):
    ids = seed(sandbox)
    key_level = key_file(tmp_path)

    def run(level, out):
        policy, name = (RETIRE, RETIRE_NAME) if level == 'user' else (key_level, NAME)
        done = custodian_run(sandbox, tmp_path / out, policy)
        assert done.returncode == 0, done.stderr
        return steps(tmp_path / out, name)

    second = 'key' if first == 'user' else 'user'
    assert run(first, 'day0') == {
        ('stale', 'deactivated'), ('never-used', 'deactivated'), ('keeper', 'deactivated')}
    sandbox.advance(DEFAULT_ACCOUNT, 10)
    # The other level reads the first one's markers: it waits, it does not mark again.
    assert run(second, 'day10') == {
        ('stale', 'waiting'), ('never-used', 'waiting'), ('keeper', 'waiting')}
    iam_client(sandbox).update_access_key(UserName='keeper', AccessKeyId=ids['keeper'],
                                          Status='Active')
    sandbox.advance(DEFAULT_ACCOUNT, 21)
    assert run(second, 'day31') == {
        ('stale', 'deleted'), ('never-used', 'deleted'), ('keeper', 'reactivated'),
        ('young', 'deactivated')}
    s = account_state(sandbox)
    assert s['stale'].keys == {} and s['never-used'].keys == {}
    assert s['keeper'].keys == {ids['keeper']: 'Active'}
    assert {k for v in s.values() for k in v.tags if k.startswith(PREFIX)} == \
        {PREFIX + ids['young']}
    # And back: the first level keeps the reactivation and the new marker as they are.
    assert run(first, 'day31b') == {('keeper', 'reactivated'), ('young', 'waiting')}
    assert account_state(sandbox) == s


# -- Markers of keys that are gone -----------------------------------------------------------

def test_the_marker_of_a_deleted_key_is_removed_when_its_owner_has_another(sandbox, tmp_path):
    c = iam_client(sandbox)
    ids = seed(sandbox, users={'pair': dict(created=300, used=100),
                               **{'on-%d' % i: dict(created=300, used=2) for i in range(4)}})
    day0 = retire(sandbox, tmp_path, 'day0')
    assert day0.returncode == 0, day0.stderr
    assert account_state(sandbox)['pair'].keys == {ids['pair']: 'Inactive'}
    # The owner makes a new key, in use, and someone deletes the retired one.
    fresh = c.create_access_key(UserName='pair')['AccessKey']['AccessKeyId']
    sandbox.backdate_key(DEFAULT_ACCOUNT, fresh, created_days=3, used_days=1)
    c.delete_access_key(UserName='pair', AccessKeyId=ids['pair'])
    run = retire(sandbox, tmp_path, 'day1')
    assert run.returncode == 0, run.stderr
    assert steps(tmp_path / 'day1') == {('pair', 'gone')}
    assert account_state(sandbox)['pair'] == ({fresh: 'Active'}, {})
    # The owner's remaining key carried the marker to the action.
    (carrier,) = read_json(tmp_path / 'day1' / NAME / 'resources.json')
    assert carrier['AccessKeyId'] == fresh and UNUSED_ANNOTATION not in carrier
    assert [r['AccessKeyId'] for r in records(tmp_path / 'day1')] == [ids['pair']]


def test_a_reactivated_key_used_since_loses_its_marker(sandbox, tmp_path):
    ids = seed(sandbox, users={'back': dict(created=300, used=100),
                               **{'on-%d' % i: dict(created=300, used=2) for i in range(4)}})
    day0 = retire(sandbox, tmp_path, 'day0')
    assert day0.returncode == 0, day0.stderr
    c = iam_client(sandbox)
    c.update_access_key(UserName='back', AccessKeyId=ids['back'], Status='Active')
    assert retire(sandbox, tmp_path, 'day0b').returncode == 0
    assert R_PREFIX + ids['back'] in account_state(sandbox)['back'].tags
    # Used again, and the reactivation's grace (the filter's 45 days) passes.
    sandbox.advance(DEFAULT_ACCOUNT, 46)
    sandbox.backdate_key(DEFAULT_ACCOUNT, ids['back'], used_days=1)
    run = retire(sandbox, tmp_path, 'day46')
    assert run.returncode == 0, run.stderr
    assert {s for u, s in steps(tmp_path / 'day46') if u == 'back'} == {'unmarked'}
    assert account_state(sandbox)['back'] == ({ids['back']: 'Active'}, {})


def keyless_cleanup(prefix=None):
    """The user-level policy that a key-level retire policy is paired with: it reaches only
    users without any access key, and removes their markers (their keys are all gone)."""
    marked = {'type': 'marked-access-keys'}
    action = {'type': 'retire-access-keys'}
    if prefix:
        marked['marker-tag-prefix'] = action['marker-tag-prefix'] = prefix
    return {'name': 'keyless-markers', 'resource': 'aws.iam-user',
            'filters': [{'not': [{'type': 'access-key', 'key': 'AccessKeyId',
                                  'value': 'present'}]},
                        {'or': [{'type': 'unused-access-keys', 'days': 45}, marked]}],
            'actions': [action]}


def test_a_user_whose_every_key_is_gone_is_cleaned_by_the_paired_user_level_policy(
        sandbox, tmp_path):
    c = iam_client(sandbox)
    ids = seed(sandbox, users={'solo': dict(created=300, used=100),
                               'stale': dict(created=300, used=100),
                               **{'on-%d' % i: dict(created=300, used=2) for i in range(4)}})
    day0 = retire(sandbox, tmp_path, 'day0')
    assert day0.returncode == 0, day0.stderr
    c.delete_access_key(UserName='solo', AccessKeyId=ids['solo'])
    # No key resource is left for `solo`: the key-level policy cannot reach its marker.
    run = retire(sandbox, tmp_path, 'day1')
    assert run.returncode == 0, run.stderr
    assert PREFIX + ids['solo'] in account_state(sandbox)['solo'].tags
    assert 'solo' not in {u for u, _ in steps(tmp_path / 'day1')}
    before = account_state(sandbox)
    pair = write_policies(tmp_path / 'pair.yml', key_policy(), keyless_cleanup())
    run = custodian_run(sandbox, tmp_path / 'paired', pair)
    assert run.returncode == 0, run.stderr
    assert steps(tmp_path / 'paired', 'keyless-markers') == {('solo', 'gone')}
    after = account_state(sandbox)
    assert after['solo'] == ({}, {})
    # It touched no one else: the key that waits keeps its marker.
    assert {u: v for u, v in after.items() if u != 'solo'} == \
        {u: v for u, v in before.items() if u != 'solo'}
    # After the paired run, no marker is left for a key that does not exist.
    existing = {k for v in after.values() for k in v.keys}
    assert all(t.split(':', 1)[1] in existing for v in after.values() for t in v.tags
               if t.startswith(PREFIX) or t.startswith(R_PREFIX))


# -- c7n's resource cache ---------------------------------------------------------------------

def test_the_user_listing_under_the_keys_is_not_read_from_the_cache(sandbox, tmp_path):
    """Another policy's cached users (ListUsers + GetUser) must not stand in for the
    listing that c7n makes the key listing from."""
    seed(sandbox, users={'on-%d' % i: dict(created=300, used=2) for i in range(4)})
    c = iam_client(sandbox)
    c.create_user(UserName='leaving')
    cache = tmp_path / 'cache.sqlite'
    users = write_policies(tmp_path / 'users.yml', {
        'name': 'users', 'resource': 'aws.iam-user',
        'filters': [{'type': 'unused-access-keys', 'days': 45}]})
    fill = cached_run(sandbox, tmp_path / 'fill', cache, users)
    assert fill.returncode == 0, fill.stderr
    # After the users were cached: one user leaves, one arrives with an unused key.
    c.delete_user(UserName='leaving')
    c.create_user(UserName='arrived')
    new = c.create_access_key(UserName='arrived')['AccessKey']['AccessKeyId']
    sandbox.backdate_key(DEFAULT_ACCOUNT, new, created_days=300, used_days=100)
    run = cached_run(sandbox, tmp_path / 'keys', cache, key_file(tmp_path))
    assert run.returncode == 0, run.stderr
    assert steps(tmp_path / 'keys') == {('arrived', 'deactivated')}
    assert account_state(sandbox)['arrived'].keys == {new: 'Inactive'}


# -- Validation and permissions ---------------------------------------------------------------

def validate_alone(*policies):
    """validate() of each policy, as `c7n-org run` calls it."""
    from c7n.resources import load_resources
    load_resources(('aws.iam-access-key', 'aws.iam-user'))
    config = Config.empty(region='us-east-1', account_id='123456789012', dryrun=True)
    data = yaml.safe_load(yaml.safe_dump({'policies': list(policies)}))
    for p in PolicyCollection.from_data(data, config):
        p.validate()


BAD = [
    (key_policy(filters=[{'type': 'marked-access-keys'}]),
     'acts on the keys that an unused-access-keys filter matched'),
    (key_policy(filters=[{'and': [UNUSED]}]),
     'must be a top-level filter or sit directly in a top-level or'),
    (key_policy(filters=[{'not': [{'or': [UNUSED]}]}]),
     'must be a top-level filter or sit directly in a top-level or'),
    (key_policy(filters=[dict(UNUSED, status='Active')]),
     'must keep matching deactivated keys'),
    (key_policy(filters=[dict(UNUSED, **{'max-days': 90})]),
     'must keep matching deactivated keys'),
    (key_policy(action={'type': 'retire-access-keys', 'max-deactivations': {'op': 'and'}}),
     'max-deactivations needs an amount, a percent or both'),
    (key_policy(filters=[{'or': [UNUSED, {'type': 'marked-access-keys',
                                          'marker-tag-prefix': 'other'}]}]),
     "marker-tag-prefix 'c7n-unused-keys' differs from that of the marked-access-keys"),
]


@pytest.mark.parametrize('policy,message', BAD, ids=[m[:30] for _, m in BAD])
def test_cross_field_rules_are_those_of_the_user_level_action(policy, message):
    with pytest.raises(PolicyValidationError, match=message.replace('(', r'\(')):
        validate_alone(policy)


@pytest.mark.parametrize('field,value', [('delete-after-days', 0), ('marker-tag-prefix', ''),
                                         ('max-deactivations', {'amount': -1}),
                                         ('max-days', 3)])
def test_custodian_validate_names_a_bad_field(tmp_path, field, value):
    policy = key_policy(action=dict(ACTION, **{field: value}))
    run = run_command(['custodian', 'validate', write_policies(tmp_path / 'p.yml', policy)],
                      None)
    assert run.returncode != 0 and field in run.stderr, run.stderr


def test_the_key_level_policy_and_its_pairing_validate(tmp_path):
    validate_alone(key_policy(), keyless_cleanup('p:x'))
    run = run_command(['custodian', 'validate', write_policies(
        tmp_path / 'p.yml', key_policy(), keyless_cleanup())], None)
    assert run.returncode == 0, run.stderr


def permissions(path):
    run = run_command(['c7n-unused-keys', 'permissions', path], None)
    assert run.returncode == 0, run.stderr
    return set(json.loads(run.stdout)['Statement'][0]['Action'])


def test_permissions_of_a_key_level_retire_policy(tmp_path):
    assert permissions(key_file(tmp_path)) == {
        'iam:ListUsers', 'iam:ListAccessKeys', 'iam:GetAccessKeyLastUsed',
        'iam:GenerateCredentialReport', 'iam:GetCredentialReport', 'iam:ListUserTags',
        'iam:UpdateAccessKey', 'iam:DeleteAccessKey', 'iam:TagUser', 'iam:UntagUser',
        'iam:GetUser'}


def run_as(emu, tmp_path, policy, drop=None):
    """Seed the sandbox's lifecycle cases, then run `policy` as a user holding the
    document of `c7n-unused-keys permissions`, less `drop`."""
    from c7n_unused_keys_sandbox.seed import organisation, seed_account
    actions = sorted(permissions(policy) - {drop})
    seed_account(emu, DEFAULT_ACCOUNT, organisation('dev', datetime.now(timezone.utc)),
                 through_api=False)
    c = emu.iam_client()
    c.create_user(UserName='runner')
    c.put_user_policy(UserName='runner', PolicyName='c7n-unused-keys', PolicyDocument=json.dumps(
        {'Version': '2012-10-17', 'Statement': [
            {'Effect': 'Allow', 'Action': actions, 'Resource': '*'}]}))
    key = c.create_access_key(UserName='runner')['AccessKey']
    before = account_state(emu)
    with emu.enforcing_iam():
        run = custodian_run(emu, tmp_path / 'out', policy, env={
            'AWS_ACCESS_KEY_ID': key['AccessKeyId'],
            'AWS_SECRET_ACCESS_KEY': key['SecretAccessKey']})
    return before, account_state(emu), run


# Every call of the document that a run on the sandbox's cases makes. The report calls
# only save GetAccessKeyLastUsed calls (denied, the filter falls back to the API), and
# GetUser only reads a marker back after a lost TagUser answer.
NEEDED = ['iam:ListUsers', 'iam:ListAccessKeys', 'iam:GetAccessKeyLastUsed',
          'iam:ListUserTags', 'iam:UpdateAccessKey', 'iam:TagUser', 'iam:DeleteAccessKey',
          'iam:UntagUser']


@pytest.mark.parametrize('drop', [None] + NEEDED)
def test_the_document_is_enough_and_each_call_needed(sandbox, tmp_path, drop):
    before, after, run = run_as(sandbox, tmp_path, key_file(tmp_path), drop)
    if drop is None:
        assert run.returncode == 0, run.stderr
        assert 'AccessDenied' not in run.stderr
        # The sandbox's marker-old key is deleted, and its marker with it.
        assert after['ivan-deactivated-40d'] == ({}, {})
        assert after['bob-idle-50d'].keys != before['bob-idle-50d'].keys
    else:
        assert run.returncode != 0
        assert drop.split(':')[1] in run.stderr and 'AccessDenied' in run.stderr, run.stderr
    no_key_deactivated_without_its_marker(before, after)


def counted(emu, run):
    emu.operations.clear()
    emu.count_operations = True
    try:
        done = run()
    finally:
        emu.count_operations = False
    assert done.returncode == 0, done.stderr
    return dict(emu.operations)


def test_each_owner_s_tags_are_read_once_and_no_user_is_described(sandbox, tmp_path):
    ids = seeded(sandbox, ordinary=20)
    sandbox.iam_client().create_user(UserName='keyless')
    ops = counted(sandbox, lambda: retire(sandbox, tmp_path, 'out'))
    # unused-access-keys reads its candidate owners' tags, marked-access-keys the others'
    # (it needs every marker): one ListUserTags per user with a key, none per user without.
    assert ops.get('ListUserTags') == len([u for u, keys in ids.items() if keys])
    assert ops.get('GetUser', 0) == 0
    assert ops.get('ListUsers') == 1


def test_keys_that_come_without_their_owner_s_tags_get_them_read_by_the_action(
        sandbox, tmp_path):
    c = iam_client(sandbox)
    ids = seed(sandbox, users={'x': dict(created=300, used=2), 'stale': dict(
        created=300, used=100), **{'on-%d' % i: dict(created=300, used=2) for i in range(4)}})
    # A marker of a key of x's deleted meanwhile.
    c.tag_user(UserName='x', Tags=[{'Key': PREFIX + 'AKIAGONE0000000000001',
                                    'Value': '2020-01-01T00:00:00Z'}])
    # x's key reaches the action by a stock filter, without the owner's tags.
    filters = [{'or': [UNUSED, {'type': 'value', 'key': 'UserName', 'value': 'x'}]}]
    ops = counted(sandbox, lambda: retire(sandbox, tmp_path, 'out', filters=filters))
    assert steps(tmp_path / 'out') == {('x', 'gone'), ('stale', 'deactivated')}
    assert account_state(sandbox)['x'] == ({ids['x']: 'Active'}, {})
    # stale's tags, read by the filter; x's, read by the action.
    assert ops.get('ListUserTags') == 2


@pytest.mark.parametrize('module,name', [('key_level', 'RetireKeyResource'),
                                         ('key_level', 'MarkedKeyResource'),
                                         ('key_level', 'UnusedKeyResource')])
def test_each_docstring_opens_with_a_valid_key_level_policy(tmp_path, module, name):
    import importlib
    import textwrap
    doc = getattr(importlib.import_module('c7n_unused_keys.' + module), name).__doc__
    assert doc.index(':example:') < 200
    block = doc.split('.. code-block:: yaml', 1)[1].split('\n\n', 2)[1]
    assert 'resource: aws.iam-access-key' in block
    path = tmp_path / 'example.yml'
    path.write_text(textwrap.dedent(block))
    run = run_command(['custodian', 'validate', path], None)
    assert run.returncode == 0, (block, run.stderr)
