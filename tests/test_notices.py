"""The digest, by stage, as c7n-mailer renders it from real retire runs (tests/notices.py):
email and Slack, day 0, day 24 (deletion within 7 days) and day 31 (deleted); nothing
when there is nothing to say; the approval stage; Slack's limits and c7n-mailer's own
Slack delivery."""
import copy
import json
import logging
import re
from datetime import datetime, timedelta

import pytest
import responses
import yaml

from c7n_unused_keys.accounts import load_accounts
from c7n_unused_keys.markers import MARKER_FORMAT
from c7n_unused_keys.names import RESULTS_ANNOTATION, UNUSED_ANNOTATION
from c7n_unused_keys_sandbox.seed import seed_organisation
from conftest import read_json
from notices import (CONFIG, DEV, HEADINGS, KEY, NOTIFY, SOON, email_stages, expected,
                     notify_run, render, slack)

# Slack's limits (Block Kit): 50 blocks a message, 3000 characters a section's text; a
# message's blocks are refused somewhat above 12000 characters in all.
MAX_BLOCKS, MAX_SECTION, MAX_BLOCKS_TEXT, MAX_TEXT = 50, 3000, 12000, 40000


def slack_stages(payload):
    """heading -> (count, key ids listed), from the Slack payload's sections."""
    got = {}
    for block in payload['blocks'][1:]:
        if block['type'] != 'section':
            continue
        heading, count = re.match(r'\*(.*?)\* \((\d+)\)', block['text']['text']).groups()
        got[heading] = (int(count), set(KEY.findall(block['text']['text'])))
    return got


def check_stages(message, records):
    want = expected(records)
    assert email_stages(render(message)) == want
    payload = slack(message)
    got = slack_stages(payload)
    assert set(got) == set(want)
    for heading, keys in want.items():
        count, listed = got[heading]
        # Each list is cut after 8 keys; approvals, with their commands, after 3.
        cut = 3 if heading == 'Awaiting approval to delete' else 8
        assert count == len(keys) and listed <= keys and len(listed) == min(len(keys), cut)
    assert payload['channel'] == '#cloud-security'
    return want


@pytest.fixture
def org(sandbox):
    seed_organisation(sandbox, load_accounts(CONFIG), through_api=False)
    return sandbox


def records_of(out):
    return read_json(out / 'dev' / 'us-east-1' / 'unused-access-keys-retire-notify' /
                     'action-retire-access-keys')


def test_each_stage_lists_its_keys_day_0_24_31(org, tmp_path):
    (message,) = notify_run(org, tmp_path / 'day0')
    day0 = check_stages(message, records_of(tmp_path / 'day0'))
    assert set(day0) == {'Deactivated today', 'Deleted'}
    deactivated = day0['Deactivated today']
    # The delete-on date it can be taken back until, and the last use, per key.
    html = render(message)
    listed = set().union(*day0.values())
    for res in message['resources']:
        for fact in res[UNUSED_ANNOTATION]:
            if fact['AccessKeyId'] not in listed:
                assert fact['AccessKeyId'] not in html
                continue
            row = re.search(r'<tr><td>%s</td>(.*?)</tr>' % fact['AccessKeyId'], html).group(1)
            assert '<td>%s</td>' % res['UserName'] in row and DEV in row
            assert ('never' if fact['NeverUsed'] else fact['LastUsedDate'][:10]) in row

    org.advance(DEV, 24)
    (message,) = notify_run(org, tmp_path / 'day24')
    day24 = check_stages(message, records_of(tmp_path / 'day24'))
    # Day 0's keys are due on day 30, heidi's (deactivated 5 days before day 0) on day 25.
    assert day24[SOON] >= deactivated and len(day24[SOON]) == len(deactivated) + 1

    org.advance(DEV, 7)
    (message,) = notify_run(org, tmp_path / 'day31')
    day31 = check_stages(message, records_of(tmp_path / 'day31'))
    assert day31['Deleted'] == day24[SOON]
    assert SOON not in day31


def test_nothing_to_say_sends_nothing(org, tmp_path):
    """Day 10: every key waits, none within 7 days of deletion (or was kept by its owner):
    no message is queued at all (c7n-mailer would send an empty one)."""
    assert notify_run(org, tmp_path / 'day0')
    org.advance(DEV, 10)
    assert notify_run(org, tmp_path / 'day10') == []
    assert {r['Step'] for r in records_of(tmp_path / 'day10')} == {'waiting', 'reactivated'}


def test_a_run_with_only_waiting_keys_would_render_empty_bodies():
    """What the action leaves out is what the templates would not list."""
    message = hand_made(3, step='waiting')
    for rec in message['resources'][0][RESULTS_ANNOTATION]:
        rec['DeleteOn'] = '2099-01-01T00:00:00+00:00'
    assert render(message).strip() == ''
    assert render(message, template='slack_template', recipient='#x').strip() == ''


def hand_made(n, user='bob', step='awaiting-approval'):
    """A message with n keys of one user, records shaped as the retire action's."""
    keys = ['AKIA%016d' % i for i in range(n)]
    res = {'UserName': user, 'Tags': [],
           UNUSED_ANNOTATION: [{'AccessKeyId': k, 'LastUsedDate': '2026-01-02T00:00:00+00:00',
                                'LastUsedService': 's3', 'LastUsedRegion': 'us-east-1',
                                'NeverUsed': False, 'IdleDays': 300, 'Reason': 'idle'}
                               for k in keys],
           RESULTS_ANNOTATION: [{'UserName': user, 'AccessKeyId': k, 'Step': step,
                                 'DeleteOn': '2026-02-01T00:00:00+00:00', 'Error': None,
                                 'ApprovalTag': 'c7n-unused-keys-approved:' + k}
                                for k in keys]}
    return {'action': {'template': 'unused-access-keys.html',
                       'slack_template': 'unused-access-keys.slack'},
            'policy': {'name': 'p', 'resource': 'iam-user'}, 'account': 'dev',
            'account_id': DEV, 'region': 'us-east-1', 'execution_start': 1795000000,
            'resources': [res]}


def test_a_delete_names_its_approver_where_the_approval_does():
    message = hand_made(2, step='deleted')
    named, alone = message['resources'][0][RESULTS_ANNOTATION]
    named['ApprovedBy'], alone['ApprovedBy'] = 'slack:U0123ABC', None
    html = render(message)
    assert set(email_stages(html)) == {'Deleted'}
    assert html.count('approved by') == 1 and 'approved by slack:U0123ABC' in html
    lines = slack(message)['blocks'][1]['text']['text'].splitlines()
    assert [line.split('`')[1] for line in lines if 'approved by' in line] == [named['AccessKeyId']]
    assert any(line.endswith('; approved by slack:U0123ABC') for line in lines), lines


def test_awaiting_approval_lists_the_commands_that_approve_or_keep_each_key():
    message = hand_made(2)
    html = render(message)
    assert set(email_stages(html)) == {'Awaiting approval to delete'}
    payload = slack(message)
    text = payload['blocks'][1]['text']['text']
    for k in ('AKIA%016d' % i for i in range(2)):
        # `date -u +FORMAT` writes the markers' own format, which the action reads.
        approve = ('aws iam tag-user --user-name bob --tags Key=c7n-unused-keys-approved:%s,'
                   'Value=$(date -u +%s)' % (k, MARKER_FORMAT))
        keep = 'aws iam update-access-key --user-name bob --access-key-id %s --status Active' % k
        # The exempt tag holds a list: the notice says what to add, not a command that
        # would overwrite it.
        exempt = 'add %s to the user' % k
        for cmd in (approve, keep, exempt):
            assert cmd in html
        assert '`%s`' % approve in text and '`%s`' % keep in text


def with_buttons(n, others=0, user='bob'):
    """A message of n keys awaiting approval (their markers as the action leaves them),
    rendered for the approval app's buttons; `others` more keys at each other stage."""
    message = hand_made(n, user=user)
    for i, r in enumerate(message['resources'][0][RESULTS_ANNOTATION]):
        r['Marker'] = '2026-01-%02dT10:00:00Z delete-on=2026-02-01T00:00:00Z' % (i % 28 + 1)
    for step in ('deactivated', 'deleted', 'failed', 'waiting', 'unused') if others else ():
        more = hand_made(others, user='other-' + step, step=step)['resources'][0]
        message['resources'].append(more)
    message['action']['approval_buttons'] = True
    return message


def buttons_of(payload):
    """key id -> the values of its two buttons (approve, keep), in block order."""
    found = {}
    for b in payload['blocks']:
        if b['type'] == 'actions':
            assert b['block_id'].startswith('c7n-unused-keys:')
            approve, keep = b['elements']
            assert (approve['action_id'], keep['action_id']) == (
                'c7n-unused-keys-approve', 'c7n-unused-keys-keep')
            assert (approve['text']['text'], keep['text']['text']) == ('Approve delete', 'Keep')
            found[b['block_id'].split(':', 1)[1]] = (approve['value'], keep['value'])
    return found


def test_each_key_awaiting_approval_gets_its_two_buttons():
    message = with_buttons(2)
    payload = slack(message)
    got = buttons_of(payload)
    assert list(got) == ['AKIA%016d' % i for i in range(2)]
    for i, (k, values) in enumerate(got.items()):
        # The account, the user, the key and the time of the marker the button is for.
        want = '%s bob %s 2026-01-%02dT10:00:00Z' % (DEV, k, i + 1)
        assert values == (want, want)
    assert 'without buttons' not in json.dumps(payload)
    # The email keeps its commands.
    assert 'aws iam tag-user --user-name bob' in render(message)
    # Without the option the digest is as before: commands, no buttons.
    del message['action']['approval_buttons']
    assert buttons_of(slack(message)) == {}


def test_keys_beyond_the_buttons_keep_their_commands_within_slack_s_limits():
    # Every stage full, and the longest user names IAM allows.
    message = with_buttons(30, others=20, user='u' * 64)
    for r in message['resources'][1:]:
        r['UserName'] = 'v' * 64
        for rec in r[RESULTS_ANNOTATION]:
            rec['UserName'] = r['UserName']
    payload = slack(message)
    got = buttons_of(payload)
    assert len(got) == 4 and len(payload['blocks']) <= MAX_BLOCKS
    assert len(json.dumps(payload['blocks'])) <= MAX_BLOCKS_TEXT
    assert max(len(b['text']['text']) for b in payload['blocks']
               if b['type'] == 'section') <= MAX_SECTION
    rest = next(b['text']['text'] for b in payload['blocks'] if b['type'] == 'section'
                and 'without buttons' in b['text']['text'])
    assert rest.startswith('*Awaiting approval to delete*, without buttons (26)')
    listed = set(KEY.findall(rest))
    assert len(listed) == 3 and not listed & set(got)
    assert 'aws iam tag-user --user-name %s --tags Key=c7n-unused-keys-approved:' % (
        'u' * 64) in rest
    assert '...and 23 more' in rest


def test_a_key_without_its_marker_keeps_its_commands():
    message = with_buttons(2)
    message['resources'][0][RESULTS_ANNOTATION][1]['Marker'] = None
    payload = slack(message)
    assert list(buttons_of(payload)) == ['AKIA%016d' % 0]
    assert 'approve: `aws iam tag-user --user-name bob --tags Key=c7n-unused-keys-approved:' \
        'AKIA%016d' % 1 in json.dumps(payload).replace('\\n', '\n')


@pytest.mark.parametrize('user', ['o"brien', 'back\\slash', 'new\nline', '<@here> & `x`'])
def test_slack_payload_stays_json_whatever_the_user_name(user):
    payload = slack(hand_made(1, user=user, step='deactivated'))
    text = payload['blocks'][1]['text']['text']
    shown = user.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;').replace(
        '`', "'")
    assert 'user `%s`' % shown in text


def test_slack_payload_within_limits_with_500_keys():
    message = hand_made(250, user='u' * 64, step='deactivated')
    other = copy.deepcopy(message['resources'][0])
    for r in other[RESULTS_ANNOTATION]:
        r['Step'] = 'awaiting-approval'
    message['resources'].append(other)
    payload = slack(message)
    sections = [b['text']['text'] for b in payload['blocks'] if b['type'] == 'section']
    assert len(payload['blocks']) <= MAX_BLOCKS
    assert max(len(t) for t in sections) <= MAX_SECTION
    assert len(json.dumps(payload['blocks'])) <= MAX_BLOCKS_TEXT
    assert len(payload['text']) <= MAX_TEXT
    assert '...and 242 more' in sections[1] and '...and 247 more' in sections[2]


@responses.activate
def test_delivered_through_c7n_mailer_slack_code(org, tmp_path):
    """c7n-mailer's SlackDelivery, its HTTP calls answered by a local recorder: the
    security channel gets the digest of a real run."""
    from c7n_mailer.slack_delivery import SlackDelivery
    from notices import TEMPLATES
    (message,) = notify_run(org, tmp_path / 'day0')
    want = expected(records_of(tmp_path / 'day0'))
    message['action']['to'] = ['slack://#cloud-security']
    responses.add(responses.POST, 'https://slack.com/api/chat.postMessage',
                  json={'ok': True})
    delivery = SlackDelivery({'templates_folders': [TEMPLATES], 'slack_token': 'xoxb-test'},
                             logging.getLogger('test'), None)
    delivery.slack_handler(message, delivery.get_to_addrs_slack_messages_map(message))
    (call,) = responses.calls
    assert call.request.headers['Authorization'] == 'Bearer xoxb-test'
    sent = json.loads(call.request.body)
    assert sent['channel'] == 'cloud-security'
    got = slack_stages(sent)
    assert {h: n for h, (n, _) in got.items()} == {h: len(k) for h, k in want.items()}
    assert 'Deactivated today: %d' % len(want['Deactivated today']) in sent['text']


def test_headings_are_those_the_tests_read():
    assert {'Deactivated today', 'Deleted', 'Awaiting approval to delete'} <= set(HEADINGS)


DOCS = CONFIG.parent / 'docs' / 'owners.md'
# What changes from run to run: key ids, dates and times.
VOLATILE = [(re.compile(r'AKIA[0-9A-Z]{16}'), 'AKIA...'),
            (re.compile(r'\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?'), 'DATE')]


def normal(text):
    for pattern, into in VOLATILE:
        text = pattern.sub(into, text)
    return text


def docs_blocks(text, names=('rendered-slack', 'rendered-email')):
    """The rendered examples of a page, by their markers."""
    return tuple(re.search(r'<!-- %s -->\n```\w*\n(.*?)```\n' % name, text, re.S).group(1)
                 for name in names)


README = CONFIG.parent / 'README.md'
README_BLOCKS = ('readme-slack', 'readme-email')


def as_text(payload, html):
    """What a reader sees: the Slack message's texts, and the email without its markup."""
    slack_text = '\n'.join(b['text']['text'] for b in payload['blocks'] if 'text' in b) + '\n'
    email = re.sub(r'</(tr|h3|p|li|ul|table)>', '\n', html)
    email = re.sub(r'</t[dh]>', ' | ', email)
    email = re.sub(r'<[^>]+>', '', email).replace('&lt;', '<').replace('&gt;', '>').replace(
        '&amp;', '&').replace('&#39;', "'").replace('&#34;', '"')
    lines = [' '.join(line.split()) for line in email.splitlines()]
    return slack_text, '\n'.join(line for line in lines if line) + '\n'


def test_docs_examples_are_a_fresh_rendering(org, tmp_path):
    """docs/owners.md shows the digest of a real day-0 run in dev, and the README the same
    as text. To regenerate both:
    UPDATE_DOCS=1 python -m pytest tests/test_notices.py -k docs_examples."""
    import os
    (message,) = notify_run(org, tmp_path / 'day0')
    payload, html = slack(message), render(message)
    fresh = (json.dumps(payload, indent=2) + '\n',
             '\n'.join(line for line in html.splitlines() if line.strip()) + '\n')
    text_fresh = as_text(payload, html)
    if os.environ.get('UPDATE_DOCS'):
        for path, names, bodies in ((DOCS, ('rendered-slack', 'rendered-email'), fresh),
                                    (README, README_BLOCKS, text_fresh)):
            text = path.read_text()
            for name, body in zip(names, bodies):
                text = re.sub(r'(<!-- %s -->\n```\w*\n).*?(```\n)' % name,
                              lambda m: m.group(1) + body + m.group(2), text, flags=re.S)
            path.write_text(text)
    assert [normal(b) for b in docs_blocks(DOCS.read_text())] == [normal(b) for b in fresh]
    assert [normal(b) for b in docs_blocks(README.read_text(), README_BLOCKS)] == \
        [normal(b) for b in text_fresh]


@responses.activate
def test_owner_hears_of_own_keys_and_the_security_channel_of_all(org, tmp_path, monkeypatch):
    """The shipped recipients, resolved by c7n-mailer: `slack://owners` posts each owner
    (found by the user's OwnerContact tag) the digest of their keys alone, keys without
    an owner go to owner_absent_contact, and `slack://#cloud-security` gets every key."""
    import boto3
    from urllib.parse import parse_qs
    from c7n_mailer.email_delivery import EmailDelivery
    from c7n_mailer.slack_delivery import SlackDelivery
    from notices import TEMPLATES
    org.iam_client(DEV).tag_user(UserName='bob-idle-50d',
                                 Tags=[{'Key': 'OwnerContact', 'Value': 'bob@example.com'}])
    (message,) = notify_run(org, tmp_path / 'day0')
    want = expected(records_of(tmp_path / 'day0'))
    everything = set().union(*want.values())
    bob = {r['AccessKeyId'] for r in records_of(tmp_path / 'day0')
           if r['UserName'] == 'bob-idle-50d'}
    ids = {'bob@example.com': 'UBOB', 'cloud-security@example.com': 'USEC'}

    def lookup(request):
        email = parse_qs(request.body)['email'][0]
        return 200, {}, json.dumps({'ok': True, 'user': {'id': ids[email]}})
    responses.add_callback(responses.POST, 'https://slack.com/api/users.lookupByEmail',
                           callback=lookup, content_type='application/json')
    responses.add(responses.POST, 'https://slack.com/api/chat.postMessage', json={'ok': True})
    for k in ('AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'):
        monkeypatch.setenv(k, 'x')
    config = {'templates_folders': [TEMPLATES], 'slack_token': 'xoxb-test',
              'contact_tags': ['OwnerContact'], 'region': 'us-east-1'}
    logger = logging.getLogger('test')
    emails = EmailDelivery(config, boto3.Session(region_name='us-east-1'), logger)
    delivery = SlackDelivery(config, logger, emails)
    delivery.slack_handler(message, delivery.get_to_addrs_slack_messages_map(message))
    sent = {}
    for call in responses.calls:
        if call.request.url.endswith('chat.postMessage'):
            payload = json.loads(call.request.body)
            listed = set().union(*(keys for _, keys in slack_stages(payload).values()))
            sent[payload['channel']] = listed
    assert set(sent) == {'UBOB', 'USEC', 'cloud-security'}
    assert sent['UBOB'] == bob
    assert sent['USEC'] == everything - bob
    assert sent['cloud-security'] == everything


def test_awaiting_approval_from_a_real_run_names_the_approving_command(org, tmp_path):
    """The retire policy with `approval-tag`: on day 31 the due keys await approval, and
    the notice lists each with the exact command that approves it (the record's tag)."""
    import yaml
    data = yaml.safe_load(NOTIFY.read_text())
    data['policies'][0]['actions'][0]['approval-tag'] = 'c7n-unused-keys-approved'
    policy = tmp_path / 'notify-approval.yml'
    policy.write_text(yaml.safe_dump(data))
    notify_run(org, tmp_path / 'day0', policy)
    org.advance(DEV, 24)
    notify_run(org, tmp_path / 'day24', policy)
    org.advance(DEV, 7)
    (message,) = notify_run(org, tmp_path / 'day31', policy)
    records = records_of(tmp_path / 'day31')
    waiting = {r['AccessKeyId']: r for r in records if r['Step'] == 'awaiting-approval'}
    assert waiting and not [r for r in records if r['Step'] == 'deleted']
    stages = check_stages(message, records)
    # Each is listed once: ivan's key (due before day 0) awaited approval since day 0,
    # and that run's notice told it.
    told_before = {k for k, r in waiting.items() if ' told=approval' in (r['Marker'] or '')}
    assert told_before and stages['Awaiting approval to delete'] == set(waiting) - told_before
    html = render(message)
    for key, rec in waiting.items():
        if key in told_before:
            continue
        assert rec['ApprovalTag'] == 'c7n-unused-keys-approved:' + key
        assert ('aws iam tag-user --user-name %s --tags Key=%s,Value=' % (
            rec['UserName'], rec['ApprovalTag'])) in html


def test_a_failed_key_is_told_too_then_the_run_fails(org, tmp_path):
    """c7n runs no action after one that raises: the retire action leaves the failure to
    the notice, which tells everyone (the failed key under its own heading), then fails."""
    from conftest import faults
    (message,) = notify_run(org, tmp_path / 'out', env=faults(
        'UpdateAccessKey=AccessDenied/bob-idle-50d'), fails=True)
    records = records_of(tmp_path / 'out')
    failed = {r['AccessKeyId'] for r in records if r['Step'] == 'failed'}
    assert failed and {r['UserName'] for r in records if r['Step'] == 'failed'} == {
        'bob-idle-50d'}
    stages = check_stages(message, records)
    assert stages['Could not be changed'] == failed and stages['Deactivated today']
    log = (tmp_path / 'out' / 'dev' / 'us-east-1' / 'unused-access-keys-retire-notify' /
           'custodian-run.log').read_text()
    assert 'ERROR' in log and 'bob-idle-50d' in log and 'AccessDenied' in log
    # And the report counts the run as failed.
    from conftest import run_command
    report = run_command(['c7n-unused-keys', 'report', tmp_path / 'out', '--format', 'json'],
                         None)
    assert report.returncode == 2 and json.loads(report.stdout)['failures'], report.stdout


@pytest.mark.parametrize('until,listed', [('2099-01-01', True), ('2000-01-01', False)])
def test_the_templates_list_what_the_action_decided(until, listed):
    """The window's last day comes from the action (`deletion_notice_until`), not from
    the mailer's clock, which may run later or in another time zone."""
    message = hand_made(1, step='waiting')
    message['resources'][0][RESULTS_ANNOTATION][0]['DeleteOn'] = '2098-12-31T00:00:00+00:00'
    message['action']['deletion_notice_until'] = until
    for body in (render(message), json.dumps(slack(message)) if listed else
                 render(message, template='slack_template', recipient='#x')):
        assert ('AKIA%016d' % 0 in body) is listed


def test_a_use_without_a_region_names_the_service_alone():
    """AWS records some uses (s3, for one) with region N/A: no 'None' in the notice."""
    message = hand_made(2, step='deactivated')
    facts = message['resources'][0][UNUSED_ANNOTATION]
    facts[0]['LastUsedRegion'] = None
    html = render(message)
    text = json.dumps(slack(message))
    for body in (html, text):
        assert '2026-01-02 (s3)' in body and '2026-01-02 (s3, us-east-1)' in body
        assert 'None' not in body


def test_a_lowered_grace_keeps_the_announced_date_and_its_soon_notice(org, tmp_path):
    """Day 0 announces 'deleted on day 30'; on day 10 the grace is lowered to 7. The keys
    are not deleted before day 30, day 24 says they go within 7 days, day 30 deletes
    them. (Before markers held the date, day 10 deleted them with no notice between.)"""
    (message,) = notify_run(org, tmp_path / 'day0')
    day0 = {r['AccessKeyId']: r for r in records_of(tmp_path / 'day0')}
    told = {k for k, r in day0.items() if r['Step'] == 'deactivated'}
    assert told
    data = yaml.safe_load(NOTIFY.read_text())
    data['policies'][0]['actions'][0]['delete-after-days'] = 7
    lowered = tmp_path / 'lowered.yml'
    lowered.write_text(yaml.safe_dump(data))

    def keys_left():
        return {k.access_key_id: k.status for u in org.backend(DEV).users.values()
                for k in u.access_keys}

    org.advance(DEV, 10)
    notify_run(org, tmp_path / 'day10', policy=lowered)
    day10 = {r['AccessKeyId']: r for r in records_of(tmp_path / 'day10')}
    assert all(keys_left()[k] == 'Inactive' for k in told)
    for k in told:
        # The same date, though 10 days were shifted into the past.
        assert day10[k]['Step'] == 'waiting'
        announced = datetime.fromisoformat(day0[k]['DeleteOn']) - timedelta(days=10)
        assert abs(datetime.fromisoformat(day10[k]['DeleteOn']) - announced) < timedelta(
            seconds=2)

    org.advance(DEV, 14)
    (message,) = notify_run(org, tmp_path / 'day24', policy=lowered)
    day24 = check_stages(message, records_of(tmp_path / 'day24'))
    assert told <= day24[SOON] and not told & day24.get('Deleted', set())
    assert all(keys_left()[k] == 'Inactive' for k in told)

    org.advance(DEV, 6)
    (message,) = notify_run(org, tmp_path / 'day30', policy=lowered)
    day30 = check_stages(message, records_of(tmp_path / 'day30'))
    assert told <= day30['Deleted'] and not told & set(keys_left())


def without_queue(emu, out):
    """A run while the mailer's queue is missing (SQS answers NonExistentQueue): it fails."""
    from notices import QUEUE, sqs_client
    sqs = sqs_client(emu, DEV)
    for url in sqs.list_queues(QueueNamePrefix=QUEUE).get('QueueUrls', []):
        sqs.delete_queue(QueueUrl=url)
    return notify_run(emu, out, fails=True, queue=False)


def test_news_not_delivered_is_told_by_the_next_run_and_only_once(org, tmp_path):
    """The queue is missing on day 0 and on the delete day, then fixed: the digests name
    each stage of each key exactly once (deactivated, soon, deleted), and a plain rerun
    after a delivered notice sends nothing. (Before, the rerun saw the keys only
    `waiting`, and no digest ever said they were deactivated, nor deleted.)"""
    told = {}

    def digest(out):
        for message in notify_run(org, out):
            for heading, keys in email_stages(render(message)).items():
                for k in keys:
                    told.setdefault(k, []).append(heading)

    assert without_queue(org, tmp_path / 'day0-missing') == []
    day0 = {r['AccessKeyId'] for r in records_of(tmp_path / 'day0-missing')
            if r['Step'] == 'deactivated'}
    assert day0
    digest(tmp_path / 'day0-fixed')
    assert notify_run(org, tmp_path / 'day0-again') == []
    org.advance(DEV, 24)
    digest(tmp_path / 'day24')
    org.advance(DEV, 1)
    digest(tmp_path / 'day25')
    org.advance(DEV, 6)
    assert without_queue(org, tmp_path / 'day31-missing') == []
    gone = {k.access_key_id for u in org.backend(DEV).users.values() for k in u.access_keys}
    assert not day0 & gone
    digest(tmp_path / 'day31-fixed')
    digest(tmp_path / 'day31-again')
    for k in day0:
        assert told.get(k) == ['Deactivated today', SOON, 'Deleted'], (k, told.get(k))
    # The markers of the deleted keys went with the notice that told them.
    tags = {t['Key'] for u in org.backend(DEV).users.values()
            for t in org.backend(DEV).list_user_tags(u.name)}
    assert not any(t.endswith(k) for t in tags for k in day0)


def test_console_passwords_are_told_in_the_same_stages_once(org, tmp_path):
    """retire-passwords with the notice after it, through c7n-org: day 0 tells the
    passwords marked (with the removal date) and the one removed; the next run the same
    day tells nothing new, as the markers say what was told."""
    data = yaml.safe_load(NOTIFY.read_text())
    policy = data['policies'][0]
    policy['filters'] = [{'or': [{'type': 'unused-passwords', 'days': 45,
                                  'never-used-days': 30}, {'type': 'marked-passwords'}]}]
    policy['actions'][0] = {'type': 'retire-passwords', 'remove-after-days': 30}
    path = tmp_path / 'passwords.yml'
    path.write_text(yaml.safe_dump(data))
    (message,) = notify_run(org, tmp_path / 'day0', path)
    payload = slack(message)
    text = '\n'.join(b['text']['text'] for b in payload['blocks'] if b['type'] == 'section')
    for user in ('quinn-password-60d', 'sybil-password-never'):
        line = next(x for x in text.splitlines() if '`%s`' % user in x)
        assert line.startswith('- `console password` user') and \
            'console access is removed on 20' in line and line.endswith(' unless used'), line
    deleted = text.split('*Deleted* (1)\n', 1)[1].splitlines()[0]
    assert '`console password` user `rupert-password-400d`' in deleted
    html = render(message)
    assert 'rupert-password-400d' in html and 'console password' in html
    # Told: the markers say so, and the next run has nothing to say.
    tags = {t['Key']: t['Value'] for t in org.backend(DEV).list_user_tags('quinn-password-60d')}
    assert tags['c7n-unused-keys-password'].endswith(' told=deactivated')
    assert notify_run(org, tmp_path / 'again', path) == []


def test_a_password_due_within_the_window_is_told_removed_on_its_date():
    message = hand_made(0)
    message['resources'] = [{'UserName': 'quinn', 'Tags': [],
                             'c7n:unused-passwords': {'PasswordLastUsed': '2026-10-01T00:00:00',
                                                      'NeverUsed': False, 'IdleDays': 60},
                             'c7n:retire-passwords': [{
                                 'UserName': 'quinn', 'Credential': 'password',
                                 'Step': 'waiting', 'RemoveOn': '2026-02-01T00:00:00+00:00',
                                 'Error': None, 'ApprovalTag': None, 'ApprovedBy': None,
                                 'Marker': None, 'News': 'soon'}]}]
    text = slack(message)['blocks'][1]['text']['text']
    assert text.startswith('*%s' % SOON)
    assert '- `console password` user `quinn`, last used 2026-10-01; removed on 2026-02-01' \
        in text
