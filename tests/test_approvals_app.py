"""The approval app over real HTTP on loopback: clicks signed as Slack signs them
(slack_sdk's SignatureVerifier, in c7n_unused_keys_sandbox.slack, not the app's code),
Slack's side stood in for by FakeSlack, the emulator behind the app."""
import contextlib
import json
import logging
import threading
from datetime import datetime, timedelta, timezone

import boto3
import pytest
import yaml

from c7n_unused_keys import markers
from c7n_unused_keys.approvals import clicks, config
from c7n_unused_keys.approvals.app import MAX_BODY, RequestScreen, build_app
from c7n_unused_keys.approvals.serve import PATH, make_server
from c7n_unused_keys.names import EXEMPT_TAG, MARKER_PREFIX
from c7n_unused_keys_sandbox import slack
from c7n_unused_keys_sandbox.loopback import serving
from conftest import ROOT, read_json, run_command, write_policies
from helpers import RETIRE, RETIRE_NAME, account_state, seed

SECRET = 'sandbox-signing-secret'
TOKEN = 'xoxb-sandbox'
APPROVAL = 'c7n-unused-keys-approved'
DEV, PROD = '111111111111', '333333333333'
# Approvers: one for the organisation, one for dev alone, one through a user group.
APPROVER, DEV_LEAD, GROUPED, OWNER = 'U0SECURITY', 'U0DEVLEAD', 'U0GROUPED', 'U0OWNER'
ORG = yaml.safe_load((ROOT / 'custodian.yml').read_text())
DAY = timedelta(days=1)


def make_config(fake, **settings):
    data = {'accounts-file': 'custodian.yml', 'approval-tag': APPROVAL,
            'signing-secret': {'env': 'SLACK_SIGNING_SECRET'},
            'bot-token': {'env': 'SLACK_BOT_TOKEN'},
            'approvers': {'users': [APPROVER], 'usergroups': ['S0SECURITY']},
            'accounts': {'dev': {'approvers': {'users': [DEV_LEAD]}}},
            'slack-api-url': fake.api_url}
    data.update(settings)
    return config.parse(data, ORG)


@pytest.fixture
def fake():
    with slack.FakeSlack({'S0SECURITY': [GROUPED]}) as s:
        yield s


@pytest.fixture
def aws(sandbox, monkeypatch):
    for k, v in sandbox.env().items():
        monkeypatch.setenv(k, v)
    return sandbox


@contextlib.contextmanager
def running(cfg, session=None):
    """The app served on loopback while in the block; its URL."""
    app = build_app(cfg, SECRET, TOKEN, session or boto3.Session())
    with serving(make_server(app, RequestScreen(SECRET)), 'approvals') as base:
        yield base + PATH


@pytest.fixture
def app(aws, fake):
    with running(make_config(fake)) as url:
        yield url


def d_tag(key_id):
    return markers.deactivated_tag(MARKER_PREFIX, key_id)


def a_tag(key_id):
    return markers.approval_tag(APPROVAL, key_id)


def awaiting(emu, user='alice', account=DEV, days=31, tags=()):
    """A user whose key was deactivated `days` ago and carries its marker; (key id,
    the buttons' value)."""
    iam = emu.iam_client(account)
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)['AccessKey']['AccessKeyId']
    iam.update_access_key(UserName=user, AccessKeyId=key, Status='Inactive')
    at = (datetime.now(timezone.utc) - days * DAY).replace(microsecond=0)
    iam.tag_user(UserName=user, Tags=[{'Key': d_tag(key), 'Value': markers.marker_value(
        at, at + 30 * DAY)}] + [{'Key': k, 'Value': v} for k, v in tags])
    return key, clicks.button_value(account, user, key, markers.format_time(at))


def message_of(key, value):
    """The digest message a click comes from: a key's section and its buttons."""
    return {'text': 'Unused IAM access keys', 'blocks': [
        {'type': 'section', 'text': {'type': 'mrkdwn', 'text': '- `%s`' % key}},
        {'type': 'actions', 'block_id': 'c7n-unused-keys:' + key, 'elements': [
            {'type': 'button', 'action_id': clicks.APPROVE, 'value': value},
            {'type': 'button', 'action_id': clicks.KEEP, 'value': value}]}]}


def press(url, fake, value, clicker=APPROVER, action=clicks.APPROVE, key=None, **kw):
    """Click; (HTTP status, what the app posted to the click's response URL)."""
    response_url = fake.response_url()
    message = message_of(key, value) if key else None
    status, _ = slack.click(url, SECRET, action, value, clicker, response_url, message, **kw)
    # Served, the app answers first and posts its answer after its work.
    return status, fake.posted_to(response_url, wait=20)


def answer_text(posted):
    """The answer a click got: the ephemeral text, or the context that replaced its
    buttons in the message."""
    (body,) = posted
    if body.get('replace_original'):
        (ctx,) = [b for b in body['blocks'] if b['type'] == 'context']
        assert not [b for b in body['blocks'] if b['type'] == 'actions']
        return ctx['elements'][0]['text']
    assert body['response_type'] == 'ephemeral'
    return body['text']


def test_an_approver_s_click_approves_and_the_message_says_so(aws, fake, app):
    key, value = awaiting(aws)
    status, posted = press(app, fake, value, key=key)
    assert status == 200
    # The message is updated in place: the key's buttons replaced by the answer.
    (body,) = posted
    assert body['replace_original'] is True and body['blocks'][0]['text']['text'] == '- `%s`' % key
    # Due since a day ago: deleted by the next run.
    assert answer_text(posted) == 'Approved by <@%s>; deleted by the next run.' % APPROVER
    value_written = account_state(aws, DEV)['alice'].tags[a_tag(key)]
    (approval,) = markers.parse_approvals(value_written, datetime.now(timezone.utc))
    assert approval.by == 'slack:' + APPROVER
    # A second click, by the same person or another approver, writes nothing.
    before = account_state(aws, DEV)
    for who in (APPROVER, DEV_LEAD):
        status, posted = press(app, fake, value, clicker=who, key=key)
        assert status == 200
        assert answer_text(posted).startswith('Already approved by <@%s>' % APPROVER)
    assert account_state(aws, DEV) == before


def test_a_served_click_is_acknowledged_before_the_account_is_read(aws, fake, app):
    """Slack waits 3 seconds for the acknowledgement: served, it does not wait for
    the account. The user's read is held until the click's HTTP answer has arrived."""
    key, value = awaiting(aws)
    answered, seen = threading.Event(), []
    aws.on_request('GetUser', lambda: seen.append(answered.wait(timeout=20)), user='alice')
    response_url = fake.response_url()
    status, _ = slack.click(app, SECRET, clicks.APPROVE, value, APPROVER, response_url,
                            message_of(key, value))
    answered.set()
    assert status == 200
    assert answer_text(fake.posted_to(response_url, wait=20)).startswith('Approved by')
    assert seen == [True]


def test_an_approval_during_the_grace_says_from_when_the_key_is_deleted(aws, fake, app):
    key, value = awaiting(aws, days=10)
    _, posted = press(app, fake, value, key=key)
    due = markers.parse_marker(account_state(aws, DEV)['alice'].tags[d_tag(key)],
                               datetime.now(timezone.utc)).delete_on
    assert answer_text(posted) == ('Approved by <@%s>; deleted by the next run, on or after '
                                   '%s.' % (APPROVER, markers.format_time(due)))
    assert a_tag(key) in account_state(aws, DEV)['alice'].tags


def test_approvers_per_account_and_through_a_user_group(aws, fake, app):
    dev_key, dev_value = awaiting(aws, 'alice', DEV)
    prod_key, prod_value = awaiting(aws, 'bob', PROD)
    # The dev lead approves in dev only; a member of the security group anywhere.
    _, posted = press(app, fake, prod_value, clicker=DEV_LEAD, key=prod_key)
    assert answer_text(posted) == 'Not done: <@%s> is not an approver for account prod.' % (
        DEV_LEAD)
    assert a_tag(prod_key) not in account_state(aws, PROD)['bob'].tags
    _, posted = press(app, fake, dev_value, clicker=DEV_LEAD, key=dev_key)
    assert answer_text(posted).startswith('Approved by <@%s>' % DEV_LEAD)
    _, posted = press(app, fake, prod_value, clicker=GROUPED, key=prod_key)
    assert answer_text(posted).startswith('Approved by <@%s>' % GROUPED)
    # The group's members were read once, and reused for the second click.
    assert fake.api_calls.count('usergroups.users.list') == 1


@pytest.mark.parametrize('case', ['bad signature', 'missing header', 'stale', 'ahead',
                                  'replayed', 'oversized'])
def test_a_request_not_from_slack_is_refused_and_nothing_written(aws, fake, app, caplog,
                                                                  case):
    key, value = awaiting(aws)
    response_url = fake.response_url()
    body = slack.form_body(slack.click_payload(clicks.APPROVE, value, APPROVER, response_url,
                                               message_of(key, value)))
    headers = slack.signed(body, SECRET)
    if case == 'bad signature':
        headers = slack.signed(body, 'not-the-secret')
    elif case == 'missing header':
        del headers['X-Slack-Signature']
    elif case == 'stale':
        headers = slack.signed(body, SECRET, timestamp=int(datetime.now().timestamp()) - 301)
    elif case == 'ahead':
        headers = slack.signed(body, SECRET, timestamp=int(datetime.now().timestamp()) + 301)
    elif case == 'oversized':
        body = body + b'&pad=' + b'x' * MAX_BODY
        headers = slack.signed(body, SECRET)
    before = account_state(aws, DEV)
    with caplog.at_level(logging.INFO, logger='c7n_unused_keys.approvals'):
        if case == 'replayed':
            assert slack.post(app, body, headers)[0] == 200
            assert fake.posted_to(response_url, wait=20)
            before = account_state(aws, DEV)
            assert a_tag(key) in before['alice'].tags
        status, text = slack.post(app, body, headers)
    want = {'bad signature': (401, 'bad signature'),
            'missing header': (401, 'missing header: X-Slack-Signature'),
            'stale': (401, 'stale request'), 'ahead': (401, 'stale request'),
            'replayed': (401, 'replayed request'),
            'oversized': (413, 'request body over')}[case]
    assert (status, want[1] in text) == (want[0], True), text
    assert account_state(aws, DEV) == before
    assert len(fake.posted_to(response_url)) == (1 if case == 'replayed' else 0)
    assert any(want[1] in r.getMessage() for r in caplog.records
               if r.name == 'c7n_unused_keys.approvals'), caplog.text


def refusals(emu, key, value):
    """Each click the app must refuse with a message: (click settings, start of the
    answer, what to do to the account first)."""
    iam = emu.iam_client(DEV)
    marker = account_state(emu, DEV)['alice'].tags[d_tag(key)]
    afresh = markers.marker_value(datetime.now(timezone.utc).replace(microsecond=0),
                                  datetime.now(timezone.utc) + 30 * DAY)
    return {
        'unknown action': (dict(action='approve'), 'Not done: unknown action', None),
        'malformed value': (dict(value=value.replace(' ', '|')),
                            'Not done: malformed button value', None),
        'no time in value': (dict(value=value.rsplit(' ', 1)[0] + ' yesterday'),
                             'Not done: malformed button value', None),
        'not allowed': (dict(clicker=OWNER), 'Not done: <@%s> is not an approver' % OWNER,
                        None),
        'account not in the file': (dict(value=value.replace(DEV, '444444444444', 1)),
                                    'Not done: account 444444444444 is not in the '
                                    'organisation file', None),
        'reactivated': ({}, 'Reactivated: %s' % key, lambda: iam.update_access_key(
            UserName='alice', AccessKeyId=key, Status='Active')),
        'deleted': ({}, 'Already deleted: %s' % key, lambda: iam.delete_access_key(
            UserName='alice', AccessKeyId=key)),
        'not awaiting approval': ({}, 'Not awaiting approval: %s' % key,
                                  lambda: iam.untag_user(UserName='alice',
                                                         TagKeys=[d_tag(key)])),
        'marked afresh': ({}, 'Marked afresh: %s' % key, lambda: iam.tag_user(
            UserName='alice', Tags=[{'Key': d_tag(key), 'Value': afresh}])),
        'exempt': ({}, 'Exempt: %s' % key, lambda: iam.tag_user(
            UserName='alice', Tags=[{'Key': EXEMPT_TAG, 'Value': key}])),
        'keep when exempt': (dict(action=clicks.KEEP), 'Exempt: %s' % key, lambda: iam.tag_user(
            UserName='alice', Tags=[{'Key': EXEMPT_TAG, 'Value': '*'}])),
    }, marker


REFUSALS = ['unknown action', 'malformed value', 'no time in value', 'not allowed',
            'account not in the file', 'reactivated', 'deleted', 'not awaiting approval',
            'marked afresh', 'exempt', 'keep when exempt']


@pytest.mark.parametrize('case', REFUSALS)
def test_a_click_that_cannot_approve_is_told_why_and_nothing_written(aws, fake, app, caplog,
                                                                      case):
    key, value = awaiting(aws)
    cases, _ = refusals(aws, key, value)
    settings, answer, change = cases[case]
    if change:
        change()
    before = account_state(aws, DEV)
    with caplog.at_level(logging.INFO, logger='c7n_unused_keys.approvals'):
        status, posted = press(app, fake, settings.get('value', value),
                               clicker=settings.get('clicker', APPROVER),
                               action=settings.get('action', clicks.APPROVE), key=key)
    assert status == 200
    assert answer_text(posted).startswith(answer), answer_text(posted)
    assert account_state(aws, DEV) == before
    logged = [r for r in caplog.records if r.name == 'c7n_unused_keys.approvals']
    assert any(r.levelno >= logging.INFO and ('refused' in r.getMessage())
               for r in logged), caplog.text


def test_an_account_role_that_cannot_be_assumed_is_told_and_nothing_written(aws, fake,
                                                                             caplog):
    """Under the emulator's IAM enforcement, the app's principal may assume only the
    approval role: an account whose role is another cannot be reached."""
    key, value = awaiting(aws)
    app_user = aws.iam_client(aws_default := '123456789012')
    app_user.create_user(UserName='approvals-app')
    app_user.put_user_policy(UserName='approvals-app', PolicyName='assume', PolicyDocument=(
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": '
        '"sts:AssumeRole", "Resource": "arn:aws:iam::*:role/c7n-unused-keys-approvals"}]}'))
    creds = app_user.create_access_key(UserName='approvals-app')['AccessKey']
    cfg = make_config(fake, **{'account-role': 'arn:aws:iam::{account_id}:role/elsewhere'})
    before = account_state(aws, DEV)
    with running(cfg, boto3.Session(
            aws_access_key_id=creds['AccessKeyId'],
            aws_secret_access_key=creds['SecretAccessKey'], region_name='us-east-1')) as url, \
            aws.enforcing_iam(), caplog.at_level(logging.INFO,
                                                 logger='c7n_unused_keys.approvals'):
        status, posted = press(url, fake, value, key=key)
    assert aws_default and status == 200
    text = answer_text(posted)
    assert text.startswith('Not done: account dev could not be reached (the role '
                           'arn:aws:iam::111111111111:role/elsewhere cannot be assumed'), text
    assert 'AccessDenied' in text
    assert account_state(aws, DEV) == before
    assert 'cannot be assumed' in caplog.text


def test_two_clicks_at_once_leave_one_approval(aws, fake, app):
    key, value = awaiting(aws)
    results = []
    start = threading.Barrier(4)

    def one(clicker):
        start.wait(timeout=10)
        results.append(press(app, fake, value, clicker=clicker, key=key))
    threads = [threading.Thread(target=one, args=(c,))
               for c in (APPROVER, APPROVER, DEV_LEAD, GROUPED)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(s for s, _ in results) == [200] * 4
    answers = sorted(answer_text(p).split(' ')[0] for _, p in results)
    assert answers == ['Already', 'Already', 'Already', 'Approved']
    value_written = account_state(aws, DEV)['alice'].tags[a_tag(key)]
    assert len(markers.parse_approvals(value_written, datetime.now(timezone.utc))) == 1


def test_two_person_rule_needs_two_distinct_approvers(aws, fake):
    key, value = awaiting(aws)
    with running(make_config(fake, **{'required-approvers': 2})) as url:
        _, posted = press(url, fake, value, clicker=APPROVER, key=key)
        assert answer_text(posted) == ('Approved by <@%s> (1 of 2 approvers); it needs 1 '
                                       'more.' % APPROVER)
        before = account_state(aws, DEV)
        _, posted = press(url, fake, value, clicker=APPROVER, key=key)
        assert answer_text(posted) == ('Already approved by <@%s> (1 of 2); nothing was '
                                       'written.' % APPROVER)
        assert account_state(aws, DEV) == before
        _, posted = press(url, fake, value, clicker=GROUPED, key=key)
        assert answer_text(posted).startswith('Approved by <@%s> and <@%s>; deleted by the '
                                              'next run' % (GROUPED, APPROVER))
    written = markers.parse_approvals(account_state(aws, DEV)['alice'].tags[a_tag(key)],
                                      datetime.now(timezone.utc))
    assert [a.by for a in written] == ['slack:' + APPROVER, 'slack:' + GROUPED]


def test_an_earlier_approval_of_the_time_alone_counts_as_one_of_two(aws, fake):
    earlier = markers.format_time(datetime.now(timezone.utc) - DAY)
    key, value = awaiting(aws)
    aws.iam_client(DEV).tag_user(UserName='alice', Tags=[{'Key': a_tag(key),
                                                          'Value': earlier}])
    with running(make_config(fake, **{'required-approvers': 2})) as url:
        _, posted = press(url, fake, value, key=key)
    assert answer_text(posted) == ('Approved by <@%s> and an unnamed approver; deleted by '
                                   'the next run.' % APPROVER)
    assert account_state(aws, DEV)['alice'].tags[a_tag(key)].startswith(earlier + ' ')


def test_two_person_rule_for_privileged_users_only(aws, fake):
    plain_key, plain = awaiting(aws, 'alice')
    admin_key, admin = awaiting(aws, 'root-admin', tags=[('privileged', 'yes')])
    with running(make_config(fake, **{'required-approvers': 2,
                                      'required-approvers-tag': 'privileged'})) as url:
        _, posted = press(url, fake, plain, key=plain_key)
        assert answer_text(posted).startswith('Approved by <@%s>; deleted' % APPROVER)
        _, posted = press(url, fake, admin, key=admin_key)
        assert answer_text(posted).startswith('Approved by <@%s> (1 of 2 approvers)' % APPROVER)


def test_keep_exempts_the_key_until_a_date_and_says_how_to_reactivate_it(aws, fake, app):
    key, value = awaiting(aws)
    _, posted = press(app, fake, value, action=clicks.KEEP, key=key)
    until = (datetime.now(timezone.utc) + 90 * DAY).date().isoformat()
    assert answer_text(posted) == (
        'Kept by <@%s>: %s of alice is exempt until %s and will not be deleted. Its owner '
        'can reactivate it with `aws iam update-access-key --user-name alice '
        '--access-key-id %s --status Active`.' % (APPROVER, key, until, key))
    assert account_state(aws, DEV)['alice'].tags[EXEMPT_TAG] == '%s until=%s' % (key, until)
    # Once exempt, neither button writes.
    before = account_state(aws, DEV)
    for action in (clicks.KEEP, clicks.APPROVE):
        _, posted = press(app, fake, value, action=action, key=key)
        assert answer_text(posted).startswith('Exempt: %s' % key)
    assert account_state(aws, DEV) == before


@pytest.mark.parametrize('existing,written', [
    # An exemption that ended is replaced; one ending the same day takes the key too.
    ('AKIAOLDOLDOLDOLDOLD0 until=2020-01-01', '{key} until={until}'),
    ('AKIAOLDOLDOLDOLDOLD0 until={until}', 'AKIAOLDOLDOLDOLDOLD0 until={until} {key}'),
    # Any other end (or none) would change what the tag promises its other keys.
    ('AKIAOLDOLDOLDOLDOLD0', None),
    ('AKIAOLDOLDOLDOLDOLD0 until=2099-01-01', None),
])
def test_keep_beside_an_existing_exemption(aws, fake, app, existing, written):
    until = (datetime.now(timezone.utc) + 90 * DAY).date().isoformat()
    existing = existing.format(until=until)
    key, value = awaiting(aws, tags=[(EXEMPT_TAG, existing)])
    _, posted = press(app, fake, value, action=clicks.KEEP, key=key)
    tag = account_state(aws, DEV)['alice'].tags[EXEMPT_TAG]
    if written is None:
        assert answer_text(posted).startswith('Cannot keep: the exempt tag')
        assert tag == existing
    else:
        assert answer_text(posted).startswith('Kept by')
        assert tag == written.format(key=key, until=until)


@pytest.mark.parametrize('data,field', [
    ({'approval-tag': 'has spaces!'}, "['approval-tag']"),
    ({'approvers': {'users': ['not-an-id']}}, "['approvers']['users'][0]"),
    ({'approvers': {'people': ['U0X']}}, "['approvers']"),
    ({'keep-days': 0}, "['keep-days']"),
    ({'required-approvers': 6}, "['required-approvers']"),
    ({'required-approvers-tag': 'privileged'}, "['required-approvers-tag']"),
    ({'signing-secret': {'file': '/x'}}, "['signing-secret']"),
    ({'accounts': {'nowhere': {}}}, "['accounts']['nowhere']"),
    ({'approvers': {}, 'accounts': {}}, "['approvers']"),
    ({'approval-tag': MARKER_PREFIX}, "['approval-tag']"),
    ({'keep_days': 30}, "(top level)"),
])
def test_a_bad_config_is_refused_naming_its_field(fake, data, field):
    with pytest.raises(config.ConfigError) as e:
        make_config(fake, **data)
    assert field in str(e.value), str(e.value)


def test_end_to_end_a_click_approves_the_next_run_deletes_and_a_keep_spares(aws, fake,
                                                                            tmp_path):
    """The shipped retire policy with approval-tag, run as users run it: `c7n-org run`
    over the organisation file, c7n's cache left on. Day 0 deactivates, day 31 awaits
    approval; one key is approved and one kept by a click on the buttons its record
    gives; the next run deletes the first, naming its approver, and leaves the second."""
    ids = seed(aws, account=DEV, users={'approved': dict(created=300, used=100),
                                        'kept': dict(created=300, used=100)})
    policies = yaml.safe_load(RETIRE.read_text())['policies']
    policies[0]['actions'][0]['approval-tag'] = APPROVAL
    policy = write_policies(tmp_path / 'retire.yml', *policies)

    def run(name):
        done = run_command(['c7n-org', 'run', '-c', ROOT / 'custodian.yml', '-a', 'dev',
                            '-s', tmp_path / name, '-u', policy], aws)
        assert done.returncode == 0, done.stderr
        return {r['UserName']: r for r in read_json(
            tmp_path / name / 'dev' / 'us-east-1' / RETIRE_NAME / 'action-retire-access-keys')}
    run('day0')
    aws.advance(DEV, 31)
    due = run('day31')
    assert {u: r['Step'] for u, r in due.items()} == {
        'approved': 'awaiting-approval', 'kept': 'awaiting-approval'}
    with running(make_config(fake)) as url:
        for user, action in (('approved', clicks.APPROVE), ('kept', clicks.KEEP)):
            # The value the digest's buttons carry: the record's user, key and marker.
            value = clicks.button_value(DEV, user, ids[user],
                                        due[user]['Marker'].split(' ')[0])
            _, posted = press(url, fake, value, action=action, key=ids[user])
            assert answer_text(posted).startswith(
                'Approved by' if action == clicks.APPROVE else 'Kept by')
    after = run('next')
    assert (after['approved']['Step'], after['approved']['ApprovedBy']) == (
        'deleted', 'slack:' + APPROVER)
    state = account_state(aws, DEV)
    assert state['approved'] == ({}, {})
    # Kept: exempt, so no longer unused for the policy; its marker is removed and the
    # key stays as it was, Inactive, for its owner to reactivate.
    assert after['kept']['Step'] == 'unmarked'
    assert state['kept'].keys == {ids['kept']: 'Inactive'}
    assert set(state['kept'].tags) == {EXEMPT_TAG}
    report = run_command(['c7n-unused-keys', 'report', tmp_path / 'next', '--format', 'json'],
                         None)
    rows = {r['user']: r for r in json.loads(report.stdout)['rows']}
    assert rows['approved']['approved_by'] == 'slack:' + APPROVER


def test_a_stale_read_loses_an_approval_and_never_adds_one(aws, fake):
    """IAM's eventual consistency: the second approver's read does not show the first
    approval, so its write holds its own alone. One approval is lost; the delete waits
    for another, as the action counts."""
    key, value = awaiting(aws)
    with running(make_config(fake, **{'required-approvers': 2})) as url:
        aws.serve_tags_stale(DEV, 'alice', reads=2)
        _, first = press(url, fake, value, clicker=APPROVER, key=key)
        _, second = press(url, fake, value, clicker=GROUPED, key=key)
    assert answer_text(first).startswith('Approved by <@%s> (1 of 2' % APPROVER)
    assert answer_text(second).startswith('Approved by <@%s> (1 of 2' % GROUPED)
    now = datetime.now(timezone.utc)
    written = markers.parse_approvals(account_state(aws, DEV)['alice'].tags[a_tag(key)], now)
    assert [a.by for a in written] == ['slack:' + GROUPED]
    from c7n_unused_keys import lifecycle
    from c7n_unused_keys.model import ListedKey
    opts = lifecycle.options_from({'approval-tag': APPROVAL, 'required-approvers': 2}, 45)
    tags = [{'Key': k, 'Value': v} for k, v in account_state(aws, DEV)['alice'].tags.items()]
    plan = lifecycle.plan_matched('alice', key, ListedKey('alice', key, 'Inactive', now),
                                  opts.markers_of(tags), now, opts, False)
    assert plan.step == lifecycle.AWAITING_APPROVAL and not plan.delete


def test_the_docs_manifest_asks_for_interactivity_and_the_scopes_the_app_uses():
    text = (ROOT / 'docs' / 'approvals.md').read_text()
    block = text.split('<!-- approvals-manifest -->\n```yaml\n', 1)[1].split('```', 1)[0]
    manifest = yaml.safe_load(block)
    interactivity = manifest['settings']['interactivity']
    assert interactivity['is_enabled'] is True
    assert interactivity['request_url'].startswith('https://')
    assert set(manifest['oauth_config']['scopes']['bot']) == {'chat:write', 'usergroups:read'}


def test_approvals_serve_answers_over_http_until_stopped(aws, fake, tmp_path):
    """The command as a user runs it: its secrets from the environment, its port printed."""
    import subprocess
    import sys
    (tmp_path / 'custodian.yml').write_text((ROOT / 'custodian.yml').read_text())
    data = yaml.safe_load((ROOT / 'approvals.yml').read_text())
    data.update({'signing-secret': {'env': 'SLACK_SIGNING_SECRET'},
                 'bot-token': {'env': 'SLACK_BOT_TOKEN'}, 'slack-api-url': fake.api_url})
    path = tmp_path / 'approvals.yml'
    path.write_text(yaml.safe_dump(data))
    env = dict(aws.env(), SLACK_SIGNING_SECRET=SECRET, SLACK_BOT_TOKEN=TOKEN,
               PATH='/usr/bin:/bin', HOME=str(tmp_path))
    proc = subprocess.Popen([sys.executable, '-m', 'c7n_unused_keys.cli', 'approvals',
                             'serve', '-c', str(path), '--port', '0'], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith('approvals: serving 3 accounts on http://127.0.0.1:'), (
            line + proc.stderr.read() if not line else line)
        url = line.split(' on ', 1)[1].strip()
        key, value = awaiting(aws)
        status, posted = press(url, fake, value, clicker='U0123ABC', key=key)
        assert status == 200 and answer_text(posted).startswith('Approved by <@U0123ABC>')
        body = slack.form_body(slack.click_payload(clicks.APPROVE, value, 'U0123ABC',
                                                   fake.response_url()))
        assert slack.post(url, body, slack.signed(body, 'wrong'))[0] == 401
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    del env['SLACK_BOT_TOKEN']
    missing = subprocess.run([sys.executable, '-m', 'c7n_unused_keys.cli', 'approvals',
                              'serve', '-c', str(path), '--port', '0'], env=env,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2
    assert "bot-token: env 'SLACK_BOT_TOKEN' cannot be read" in missing.stderr


def test_an_accounts_file_that_cannot_be_read_is_named(tmp_path):
    data = yaml.safe_load((ROOT / 'approvals.yml').read_text())
    path = tmp_path / 'approvals.yml'
    path.write_text(yaml.safe_dump(dict(data, **{'accounts-file': 'nowhere.yml'})))
    with pytest.raises(config.ConfigError, match=r"\['accounts-file'\]: nowhere.yml cannot "
                                                 r"be read"):
        config.load(str(path))
    (tmp_path / 'org.yml').write_text('accounts:\n  - name: dev\n')
    path.write_text(yaml.safe_dump(dict(data, **{'accounts-file': 'org.yml'})))
    with pytest.raises(config.ConfigError, match=r'accounts\[0\]: an account needs its '
                                                 r'account_id'):
        config.load(str(path))


def test_a_user_at_iam_s_tag_limit_is_told_and_nothing_written(aws, fake, app):
    """IAM allows 50 tags a user: with the marker and 49 others, an approval has no room."""
    key, value = awaiting(aws, tags=[('team-%02d' % i, 'x') for i in range(49)])
    before = account_state(aws, DEV)
    assert len(before['alice'].tags) == 50
    for action in (clicks.APPROVE, clicks.KEEP):
        _, posted = press(app, fake, value, action=action, key=key)
        assert answer_text(posted).startswith('Cannot write ') and "IAM's 50 tags" in \
            answer_text(posted)
    assert account_state(aws, DEV) == before
