"""Notices as c7n-mailer makes them: the shipped notify policy run by c7n-org against the
emulator, its message read back from the emulator's queue and decoded as c7n-mailer does,
then rendered with c7n-mailer's own `get_rendered_jinja`."""
import base64
import json
import logging
import re
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from c7n_unused_keys_sandbox.emulator import account_client
from conftest import ROOT, run_command

MAILER = ROOT / 'mailer'
TEMPLATES = str(MAILER / 'templates')
CONFIG = ROOT / 'custodian.yml'
NOTIFY = MAILER / 'unused-access-keys-notify.yml'
QUEUE = 'cloud-custodian-mailer'
DEV = '111111111111'
# The stage headings, as both templates write them.
HEADINGS = ('Deactivated today', 'To be deleted within', 'Deleted',
            'Awaiting approval to delete', 'Could not be changed')


def sqs_client(emu, account=DEV):
    """An SQS client whose calls land in `account`, through AssumeRole as c7n-org does."""
    return account_client(emu.env(), account, 'sqs', 'us-east-1')


def notify_run(emu, out: Path, policy: Path = NOTIFY, account='dev', account_id=DEV,
               env=None, fails=False, queue=True):
    """Run `policy` with c7n-org in one account; the messages its notify action queued,
    decoded as c7n-mailer decodes them (a list: none when nothing was sent). With
    `queue` False, the queue is not made first (a run while it is missing)."""
    sqs = sqs_client(emu, account_id)
    if not queue:
        run = run_command(['c7n-org', 'run', '-c', CONFIG, '-s', out, '--cache-period', '0',
                           '-u', policy, '-a', account], emu, extra_env=env)
        assert (run.returncode != 0) == fails, run.stderr
        return []
    url = sqs.create_queue(QueueName=QUEUE)['QueueUrl']
    run = run_command(['c7n-org', 'run', '-c', CONFIG, '-s', out, '--cache-period', '0',
                       '-u', policy, '-a', account], emu, extra_env=env)
    assert (run.returncode != 0) == fails, run.stderr
    got = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get('Messages', [])
        if not batch:
            return got
        for m in batch:
            got.append(json.loads(zlib.decompress(base64.b64decode(m['Body']))))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m['ReceiptHandle'])


def render(message, resources=None, template='template', recipient='owner@example.com'):
    """The body c7n-mailer renders for `recipient`: `template` is the action's key that
    names it ('template' for email, 'slack_template' for Slack)."""
    from c7n_mailer.utils import get_rendered_jinja
    default = 'slack_default' if template == 'slack_template' else 'default'
    return get_rendered_jinja(recipient, message, message['resources'] if resources is None
                              else resources, logging.getLogger('test'), template, default,
                              [TEMPLATES])


def slack(message, resources=None, recipient='#cloud-security'):
    """The Slack payload, parsed: it must be JSON."""
    return json.loads(render(message, resources, 'slack_template', recipient))


def notify_action():
    return yaml.safe_load(NOTIFY.read_text())['policies'][0]['actions'][1]


KEY = re.compile(r'AKIA[0-9A-Z]{16}')
SOON = 'To be deleted within 7 days'


# The stages in the order a key goes through them, as a marker's told= names them.
TOLD_ORDER = ('deactivated', 'soon', 'approval', 'deleted')


def told_of(marker):
    """The last stage a notice told, from a record's Marker: its told=, none for a marker
    of this version without one, and the deactivation for one of an earlier version."""
    if not marker:
        return None
    if ' delete-on=' not in marker:
        return 'deactivated'
    found = re.search(r' told=([a-z]+)', marker)
    return found.group(1) if found else None


def expected(records, days=7):
    """heading -> key ids, from the action's records, by the notice's rules: each key
    under the stage it is at, unless a notice already told that stage; failures always."""
    soon = (datetime.now(timezone.utc) + timedelta(days=days)).date().isoformat()
    headings = {'deactivated': 'Deactivated today', 'soon': SOON,
                'approval': 'Awaiting approval to delete', 'deleted': 'Deleted'}
    want = {}
    for r in records:
        if r['Step'] == 'failed':
            want.setdefault('Could not be changed', set()).add(r['AccessKeyId'])
            continue
        stage = {'deactivated': 'deactivated', 'deleted': 'deleted',
                 'awaiting-approval': 'approval'}.get(r['Step'])
        if r['Step'] in ('waiting', 'marked'):
            stage = 'soon' if r['DeleteOn'][:10] <= soon else 'deactivated'
        if stage is None:
            continue
        told = told_of(r.get('Marker')) if 'Marker' in r else (
            'deactivated' if r['Step'] in ('waiting', 'marked') else None)
        if told is not None and TOLD_ORDER.index(stage) <= TOLD_ORDER.index(told):
            continue
        want.setdefault(headings[stage], set()).add(r['AccessKeyId'])
    return want


def email_stages(html):
    """heading -> key ids under it, from the rendered email."""
    got = {}
    for part in html.split('<h3>')[1:]:
        heading, count = re.match(r'(.*?) \((\d+)\)</h3>', part).groups()
        got[heading] = set(KEY.findall(part))
        assert len(got[heading]) == int(count)
    return got
