"""`approval-tag`: deletion waits for a person's approval, through the real `custodian`.

Time moves by `advance`, which ages every time-valued tag with the keys, approvals too.
"""
import json
from datetime import datetime, timedelta, timezone

import yaml

from c7n_unused_keys import markers
from c7n_unused_keys.names import MARKER_PREFIX
from conftest import (DEFAULT_ACCOUNT, custodian_run, iam_client, read_json, run_command,
                      write_policies)
from helpers import ACTION as KEY_ACTION
from helpers import KEY_NAME, account_state, key_policy, seed
from helpers import RETIRE as POLICY
from helpers import RETIRE_NAME as NAME

APPROVAL = 'c7n-unused-keys-approved'
USERS = {
    'waits': dict(created=300, used=100),
    'early': dict(created=300, used=100),
    'approved': dict(created=300, used=100),
    'named': dict(created=300, used=100),
    'used': dict(created=300, used=100),
    'recent': dict(created=300, used=1),
}


def approval_policy(tmp_path):
    """The shipped retire policy with `approval-tag`, rechecking every delete with fresh
    calls (`recheck-max-age-seconds: 0`), so that a use can land just before one."""
    policies = yaml.safe_load(POLICY.read_text())['policies']
    policies[0]['actions'][0]['approval-tag'] = APPROVAL
    policies[0]['actions'][0]['recheck-max-age-seconds'] = 0
    return write_policies(tmp_path / 'retire.yml', *policies)


def by_user(out, name=NAME):
    return {r['UserName']: r for r in read_json(out / name / 'action-retire-access-keys')}


def a_tag(key_id):
    return '%s:%s' % (APPROVAL, key_id)


def d_tag(key_id):
    return markers.deactivated_tag(MARKER_PREFIX, key_id)


def when(value):
    """The deactivation time of a marker."""
    return markers.parse_marker(value, datetime.now(timezone.utc)).at


def approve(emu, user, key_id, at, by=None):
    iam_client(emu).tag_user(UserName=user, Tags=[
        {'Key': a_tag(key_id), 'Value': markers.approval_value(at, by)}])


def report(out, *args):
    return run_command(['c7n-unused-keys', 'report', out, '--format', 'json'] + list(args),
                       None)


def test_deletion_waits_for_an_approval_given_after_the_deactivation(sandbox, tmp_path):
    ids = seed(sandbox, users=USERS)
    policy = approval_policy(tmp_path)

    day0 = custodian_run(sandbox, tmp_path / 'day0', policy)
    assert day0.returncode == 0, day0.stderr
    recs = by_user(tmp_path / 'day0')
    due = ('waits', 'early', 'approved', 'named', 'used')
    assert {u: r['Step'] for u, r in recs.items()} == {u: 'deactivated' for u in due}
    # While the key stays deactivated, its record names the tag that approves it.
    assert all(recs[u]['ApprovalTag'] == a_tag(ids[u]) for u in due)

    sandbox.advance(DEFAULT_ACCOUNT, 10)
    tags = account_state(sandbox)
    deactivated = {u: when(tags[u].tags[d_tag(ids[u])]) for u in due}
    approve(sandbox, 'early', ids['early'], deactivated['early'] - timedelta(days=1))
    now = datetime.now(timezone.utc)
    approve(sandbox, 'approved', ids['approved'], now)
    approve(sandbox, 'named', ids['named'], now, by='slack:U0123ABC')
    approve(sandbox, 'used', ids['used'], now)
    assert all(deactivated[u] < now for u in due)
    sandbox.advance(DEFAULT_ACCOUNT, 21)

    # A dry run changes nothing, and the report infers what the run would do.
    before = account_state(sandbox)
    dry = custodian_run(sandbox, tmp_path / 'dry', policy, '--dryrun')
    assert dry.returncode == 0, dry.stderr
    assert account_state(sandbox) == before
    run = report(tmp_path / 'dry')
    assert run.returncode == 0, run.stderr
    rows = {r['user']: r for r in json.loads(run.stdout)['rows']}
    assert {u: (rows[u]['step'], rows[u]['would']) for u in due} == {
        'waits': ('awaiting-approval', True), 'early': ('awaiting-approval', True),
        'approved': ('deleted', True), 'named': ('deleted', True), 'used': ('deleted', True)}
    # Due 30 days after its marker, as the marker now reads.
    due_on = {u: (when(before[u].tags[d_tag(ids[u])]) + timedelta(days=30)).isoformat()
              for u in due}
    assert rows['waits']['delete_on'] == due_on['waits']
    assert report(tmp_path / 'dry', '--fail-on', 'awaiting-approval').returncode == 1

    # 'used' is used after the filter saw it, before the recheck: ListAccessKeys for it
    # is the filter's, the action's, then the recheck's.
    from moto.iam.models import AccessKeyLastUsed

    from c7n_unused_keys_sandbox.moto_fixes import utcnow_naive
    key = sandbox.backend(DEFAULT_ACCOUNT).users['used'].access_keys[0]

    def use():
        key.last_used = AccessKeyLastUsed(utcnow_naive(), 's3', 'us-east-1')
    sandbox.on_request('ListAccessKeys', use, user='used', skip=2)
    day31 = custodian_run(sandbox, tmp_path / 'day31', policy)
    assert day31.returncode == 0, day31.stderr
    recs = by_user(tmp_path / 'day31')
    assert {u: recs[u]['Step'] for u in due} == {
        'waits': 'awaiting-approval', 'early': 'awaiting-approval', 'approved': 'deleted',
        'named': 'deleted', 'used': 'marked'}
    # The record of a delete names its approver when the approval does.
    assert {u: recs[u]['ApprovedBy'] for u in due} == {
        'waits': None, 'early': None, 'approved': None, 'named': 'slack:U0123ABC',
        'used': None}
    for u in ('waits', 'early'):
        assert recs[u]['ApprovalTag'] == a_tag(ids[u])
        assert recs[u]['DeleteOn'] == due_on[u]
        # Nothing changed: the key, its marker and the early approval stay as they were.
        assert account_state(sandbox)[u] == before[u]
    assert account_state(sandbox)['waits'].keys == {ids['waits']: 'Inactive'}
    assert a_tag(ids['early']) in account_state(sandbox)['early'].tags
    assert 'is not later than its deactivation' in day31.stderr
    after = account_state(sandbox)
    # Deleted, and its marker and approval removed in the same untag.
    assert after['approved'] == after['named'] == ({}, {})
    assert recs['approved']['ApprovalTag'] is None
    # The recheck kept the used key, said why, and dropped its approval (it predates the
    # new marker).
    assert after['used'].keys == {ids['used']: 'Inactive'}
    assert a_tag(ids['used']) not in after['used'].tags
    assert when(after['used'].tags[d_tag(ids['used'])]) > deactivated['used']
    assert 'used at' in day31.stderr and 'after its marker' in day31.stderr
    run = report(tmp_path / 'day31')
    assert run.returncode == 0, run.stderr
    totals = json.loads(run.stdout)['totals']['all accounts']
    assert (totals['awaiting-approval'], totals['deleted'], totals['marked']) == (2, 2, 1)
    # The report says who approved each delete, where the approval names them.
    rows = {r['user']: r for r in json.loads(run.stdout)['rows']}
    assert {u: rows[u]['approved_by'] for u in ('approved', 'named')} == {
        'approved': None, 'named': 'slack:U0123ABC'}
    text = run_command(['c7n-unused-keys', 'report', tmp_path / 'day31', '--width', '200'],
                       None)
    assert 'deleted (approved by slack:U0123ABC)' in text.stdout, text.stdout
    assert report(tmp_path / 'day31', '--fail-on', 'awaiting-approval').returncode == 1

    # The owner takes back the key approved too early: its marker and approval go.
    iam_client(sandbox).update_access_key(UserName='early', AccessKeyId=ids['early'],
                                          Status='Active')
    back = custodian_run(sandbox, tmp_path / 'back', policy)
    assert back.returncode == 0, back.stderr
    assert by_user(tmp_path / 'back')['early']['Step'] == 'reactivated'
    early = account_state(sandbox)['early']
    assert early[0] == {ids['early']: 'Active'}
    assert not {d_tag(ids['early']), a_tag(ids['early'])} & set(early[1])


def test_a_lone_approval_is_removed(sandbox, tmp_path):
    """An approval left on a key that was deleted outside the lifecycle: the user reaches
    the action through marked-access-keys, which reads approvals too."""
    ids = seed(sandbox, users={'gone': dict(created=300, used=1),
                               'recent': dict(created=300, used=1)})
    c = iam_client(sandbox)
    c.delete_access_key(UserName='gone', AccessKeyId=ids['gone'])
    approve(sandbox, 'gone', ids['gone'], datetime.now(timezone.utc))
    run = custodian_run(sandbox, tmp_path / 'out', approval_policy(tmp_path))
    assert run.returncode == 0, run.stderr
    assert by_user(tmp_path / 'out')['gone']['Step'] == 'gone'
    assert account_state(sandbox)['gone'] == ({}, {})


def test_key_level_policy_waits_for_approval_too(sandbox, tmp_path):
    ids = seed(sandbox, users={u: USERS[u] for u in ('waits', 'approved', 'recent')})
    policy = write_policies(tmp_path / 'keys.yml', key_policy(
        action=dict(KEY_ACTION, **{'approval-tag': APPROVAL})))
    day0 = custodian_run(sandbox, tmp_path / 'day0', policy)
    assert day0.returncode == 0, day0.stderr
    assert {u: r['Step'] for u, r in by_user(tmp_path / 'day0', KEY_NAME).items()} == {
        'waits': 'deactivated', 'approved': 'deactivated'}
    sandbox.advance(DEFAULT_ACCOUNT, 10)
    approve(sandbox, 'approved', ids['approved'], datetime.now(timezone.utc), by='slack:U0KEY')
    sandbox.advance(DEFAULT_ACCOUNT, 21)
    day31 = custodian_run(sandbox, tmp_path / 'day31', policy)
    assert day31.returncode == 0, day31.stderr
    recs = by_user(tmp_path / 'day31', KEY_NAME)
    assert (recs['waits']['Step'], recs['waits']['ApprovalTag']) == (
        'awaiting-approval', a_tag(ids['waits']))
    assert (recs['approved']['Step'], recs['approved']['ApprovedBy']) == ('deleted', 'slack:U0KEY')
    after = account_state(sandbox)
    assert after['waits'].keys == {ids['waits']: 'Inactive'}
    assert after['approved'] == ({}, {})
