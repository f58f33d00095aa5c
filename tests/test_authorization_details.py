"""`source: authorization-details`: the users of c7n's `describe` (tags and permissions
boundary included) from GetAccountAuthorizationDetails and ListUsers pages of 1,000; and the
sandbox pages that call as AWS does."""
import json
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from c7n_unused_keys.names import EXEMPT_TAG
from c7n_unused_keys_sandbox.seed import organisation, seed_account
from conftest import (DEFAULT_ACCOUNT, ROOT, custodian_run, iam_client, read_json, run_command,
                      unused_keys_policy, write_policies)
from helpers import seeded

SOURCE = 'authorization-details'
OPTIONS = {'days': 45, 'never-used-days': 30}
BOUNDARY_DOC = json.dumps({'Version': '2012-10-17', 'Statement': [
    {'Effect': 'Allow', 'Action': 's3:*', 'Resource': '*'}]})


def seed_many(emu, total):
    """At least `total` users in DEFAULT_ACCOUNT, written directly (fast)."""
    emu.reset()
    users = organisation('dev', datetime.now(timezone.utc), ordinary=total)
    return seed_account(emu, DEFAULT_ACCOUNT, users, through_api=False)


def all_details(client, **params):
    pages = []
    while True:
        page = client.get_account_authorization_details(Filter=['User'], **params)
        pages.append(page)
        if not page['IsTruncated']:
            return pages
        params['Marker'] = page['Marker']


# -- the sandbox pages GetAccountAuthorizationDetails --------------------------------------

def test_the_sandbox_pages_the_call_as_aws_does(sandbox):
    users = seed_many(sandbox, 1001)
    assert len(users) > 1001
    c = iam_client(sandbox)
    names = [u.name for u in users]

    # MaxItems 1000, and AWS's default page: 100 users.
    for size, params in ((1000, {'MaxItems': 1000}), (100, {})):
        pages = all_details(c, **params)
        expected = [min(size, len(users) - i) for i in range(0, len(users), size)]
        assert [len(p['UserDetailList']) for p in pages] == expected
        assert [p['IsTruncated'] for p in pages] == [True] * (len(pages) - 1) + [False]
        assert sorted(u['UserName'] for p in pages for u in p['UserDetailList']) == \
            sorted(names)

    # Each user with its tags, as GetUser gives them.
    [tagged] = [u for u in users if u.name == 'oscar-exemption-expired']
    details = {u['UserName']: u for p in all_details(c, MaxItems=1000)
               for u in p['UserDetailList']}
    assert details[tagged.name]['Tags'] == c.get_user(UserName=tagged.name)['User']['Tags']
    assert [t['Key'] for t in details[tagged.name]['Tags']] == [EXEMPT_TAG]


def test_the_sandbox_refuses_a_page_over_1000(sandbox):
    c = iam_client(sandbox)
    with pytest.raises(c.exceptions.ClientError, match='less than or equal to 1000'):
        c.get_account_authorization_details(Filter=['User'], MaxItems=1001)


def test_the_sandbox_keeps_a_users_permissions_boundary(sandbox):
    c = iam_client(sandbox)
    arn = c.create_policy(PolicyName='boundary', PolicyDocument=BOUNDARY_DOC)['Policy']['Arn']
    c.create_user(UserName='bounded')
    c.put_user_permissions_boundary(UserName='bounded', PermissionsBoundary=arn)
    expected = {'PermissionsBoundaryType': 'PermissionsBoundaryPolicy',
                'PermissionsBoundaryArn': arn}
    assert c.get_user(UserName='bounded')['User']['PermissionsBoundary'] == expected
    [detail] = c.get_account_authorization_details(Filter=['User'])['UserDetailList']
    assert detail['PermissionsBoundary'] == expected
    # As AWS: ListUsers does not return it.
    assert 'PermissionsBoundary' not in c.list_users()['Users'][0]


# -- the source gives c7n's `describe` users -----------------------------------------------

def listing(name, source=None, *filters):
    p = {'name': name, 'resource': 'aws.iam-user', 'filters': list(filters)}
    if source:
        p['source'] = source
    return p


def seed_varied(emu):
    """The sandbox organisation, plus users with a path, a permissions boundary, tags, none,
    and a password used."""
    seeded(emu)
    c = iam_client(emu)
    arn = c.create_policy(PolicyName='boundary', PolicyDocument=BOUNDARY_DOC)['Policy']['Arn']
    c.create_user(UserName='bounded-tagged', Path='/ops/',
                  Tags=[{'Key': 'Team', 'Value': 'ops'}, {'Key': 'Owner', 'Value': 'ana'}])
    c.put_user_permissions_boundary(UserName='bounded-tagged', PermissionsBoundary=arn)
    c.create_user(UserName='bounded-bare', Path='/eng/team/')
    c.put_user_permissions_boundary(UserName='bounded-bare', PermissionsBoundary=arn)
    c.create_user(UserName='pathed-untagged', Path='/eng/')
    c.put_user_policy(UserName='pathed-untagged', PolicyName='inline', PolicyDocument=BOUNDARY_DOC)
    emu.backend(DEFAULT_ACCOUNT).users['pathed-untagged'].password_last_used = \
        datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=3)
    return arn


def run(emu, tmp_path, *policies):
    out = tmp_path / 'out'
    done = custodian_run(emu, out, write_policies(tmp_path / 'p.yml', *policies))
    assert done.returncode == 0, done.stderr

    def users(name):
        return {r['UserName']: r for r in read_json(out / name / 'resources.json')}

    def stats(name):
        return read_json(out / name / 'metadata.json')['api-stats']
    return users, stats


def test_same_user_records_as_describe_field_by_field(sandbox, tmp_path):
    arn = seed_varied(sandbox)
    users, stats = run(sandbox, tmp_path, listing('stock'), listing('details', SOURCE))
    stock, ours = users('stock'), users('details')
    assert len(stock) == len(sandbox.backend(DEFAULT_ACCOUNT).users) > 40
    assert sorted(ours) == sorted(stock)
    for name, r in stock.items():
        assert ours[name] == r, name
    # The cases are there to compare: tags, boundary, paths, none of them, a password.
    assert stock['bounded-tagged']['PermissionsBoundary']['PermissionsBoundaryArn'] == arn
    assert stock['bounded-tagged']['Path'] == '/ops/' and len(stock['bounded-tagged']['Tags']) == 2
    assert 'Tags' not in stock['bounded-bare'] and 'PermissionsBoundary' in stock['bounded-bare']
    assert set(stock['pathed-untagged']) == {'UserName', 'UserId', 'Arn', 'Path', 'CreateDate',
                                             'PasswordLastUsed'}
    # Nor does the inline policy document (which the call returns) reach the records.
    assert 'UserPolicyList' not in ours['pathed-untagged']
    calls = stats('details')
    assert calls == {'iam.ListUsers': 1, 'iam.GetAccountAuthorizationDetails': 1}
    assert stats('stock')['iam.GetUser'] == len(stock)


def test_calls_at_a_thousand_users_and_more(sandbox, tmp_path):
    """About U/1000 calls; pages of 1,000 of both calls, where `describe` makes U + U/100."""
    total = len(seed_many(sandbox, 1001))
    users, stats = run(sandbox, tmp_path, listing('stock'), listing('details', SOURCE))
    assert len(users('details')) == len(users('stock')) == total > 1001
    assert users('details') == users('stock')
    assert stats('details') == {'iam.ListUsers': 2, 'iam.GetAccountAuthorizationDetails': 2}
    assert stats('stock') == {'iam.ListUsers': -(-total // 100), 'iam.GetUser': total}


def test_a_user_deleted_after_listing_is_dropped_as_describe_drops_it(sandbox, tmp_path):
    seed_varied(sandbox)
    gone = 'pathed-untagged'
    c = iam_client(sandbox)

    def delete():
        c.delete_user_policy(UserName=gone, PolicyName='inline')
        c.delete_user(UserName=gone)
    sandbox.on_request('GetAccountAuthorizationDetails', delete)
    users, _ = run(sandbox, tmp_path, listing('details', SOURCE))
    assert gone not in users('details') and 'bounded-bare' in users('details')


UNUSED = dict(OPTIONS, type='unused-access-keys')
TAGGED = {'tag:' + EXEMPT_TAG: 'present'}


@pytest.mark.parametrize('filters', [
    [UNUSED, TAGGED], [TAGGED, UNUSED], [{'or': [UNUSED, {'type': 'marked-access-keys'}]}],
    [{'and': [TAGGED, UNUSED]}], [{'type': 'marked-access-keys'}]],
    ids=['tag-after', 'tag-before', 'or-marked', 'nested-tag', 'marked'])
def test_every_filter_matches_as_with_describe(sandbox, tmp_path, filters):
    seeded(sandbox)
    users, _ = run(sandbox, tmp_path, listing('stock', None, *filters),
                   listing('details', SOURCE, *filters))
    assert users('details') == users('stock')
    assert users('stock') or filters == [{'type': 'marked-access-keys'}]


RETIRE = ROOT / 'policies' / 'unused-access-keys-retire.yml'


def retire_steps(emu, tmp_path, source):
    """(user, step) of the shipped retire policy on day 0 and day 31, under `source`."""
    seeded(emu, ordinary=0)
    [policy] = yaml.safe_load(RETIRE.read_text())['policies']
    (tmp_path / source).mkdir()
    path = write_policies(tmp_path / source / 'p.yml', dict(policy, source=source))
    steps = []
    for day, advance in (('day0', 0), ('day31', 31)):
        emu.advance(DEFAULT_ACCOUNT, advance)
        done = custodian_run(emu, tmp_path / source / day, path)
        assert done.returncode == 0, done.stderr
        steps.append(sorted((r['UserName'], r['Step']) for r in read_json(
            tmp_path / source / day / policy['name'] / 'action-retire-access-keys')))
    return steps


def test_the_shipped_retire_policy_takes_the_same_steps(sandbox, tmp_path):
    parallel = retire_steps(sandbox, tmp_path, 'describe-parallel')
    ours = retire_steps(sandbox, tmp_path, SOURCE)
    assert ours == parallel
    # Both days do something, including what depends on the marker tags.
    assert {s for _, s in parallel[0]} >= {'deactivated'}
    assert {s for _, s in parallel[1]} >= {'deleted'}


def test_other_resources_refuse_it(tmp_path):
    path = write_policies(tmp_path / 'p.yml', {
        'name': 'roles', 'resource': 'aws.iam-role', 'source': SOURCE})
    done = run_command(['custodian', 'validate', path], None)
    assert done.returncode != 0
    assert 'source: %s is for aws.iam-user only, not iam-role' % SOURCE in done.stderr


def test_permissions_follow_the_source(tmp_path):
    def actions(source):
        path = write_policies(tmp_path / ('%s.yml' % source),
                              dict(unused_keys_policy('p', OPTIONS), source=source))
        done = run_command(['c7n-unused-keys', 'permissions', str(path)], None)
        assert done.returncode == 0, done.stderr
        return set(json.loads(done.stdout)['Statement'][0]['Action'])
    ours, parallel = actions(SOURCE), actions('describe-parallel')
    assert {'iam:GetAccountAuthorizationDetails', 'iam:ListUsers'} <= ours
    assert 'iam:GetUser' not in ours and 'iam:GetAccountAuthorizationDetails' not in parallel
    assert ours - parallel == {'iam:GetAccountAuthorizationDetails'}
    assert parallel - ours == {'iam:GetUser'}


def test_users_by_name_as_describe_gives_them_without_get_user(sandbox, monkeypatch, tmp_path):
    """c7n's event modes ask a source for users by name (get_resources): the same records
    as `describe`, from the two listings, with no GetUser (which the source does not
    declare)."""
    from c7n.config import Config
    from c7n.policy import Policy
    from c7n.resources import load_resources
    seed_varied(sandbox)
    for k, v in sandbox.env().items():
        monkeypatch.setenv(k, v)
    load_resources(('aws.iam-user',))
    names = ['bounded-tagged', 'bounded-bare', 'pathed-untagged', 'no-such-user']

    def by_name(source):
        policy = Policy(dict({'name': 'by-name', 'resource': 'aws.iam-user'}, **source),
                        Config.empty(region='us-east-1', output_dir=str(tmp_path)))
        sandbox.count_operations, sandbox.operations = True, {}
        try:
            found = policy.resource_manager.get_resources(names)
        finally:
            sandbox.count_operations = False
        return {u['UserName']: u for u in found}, dict(sandbox.operations)
    stock, stock_calls = by_name({})
    ours, calls = by_name({'source': SOURCE})
    assert sorted(ours) == sorted(stock) == sorted(names[:3])
    assert ours == stock
    assert stock_calls.get('GetUser', 0) >= len(names)
    assert calls == {'ListUsers': 1, 'GetAccountAuthorizationDetails': 1}
