"""`make demo-approval`: a delete approved from Slack, end to end, in a fresh sandbox.

In one account of the organisation file (its first), on loopback only:
1. `c7n-org run` of the notify policy with `approval-tag` and `approval_buttons`: a key
   deactivated 40 days ago awaits approval;
2. the Slack digest that c7n-mailer would post, rendered from the queued message, with
   its buttons;
3. a click on "Approve delete", sent to the local approval app (`approvals serve`'s
   server) as a request signed the way Slack signs it;
4. the message update the app posts to the click's `response_url`;
5. the next run, which deletes the key;
6. the report, naming the approver.
Slack's side is a stand-in on loopback (c7n_unused_keys_sandbox.slack). Everything stops
whatever happened.
"""
import base64
import json
import logging
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import yaml

from c7n_unused_keys.accounts import load_accounts
from c7n_unused_keys.approvals import clicks, config
from c7n_unused_keys.approvals.app import RequestScreen, build_app
from c7n_unused_keys.approvals.serve import PATH, make_server
from c7n_unused_keys.report.output import read
from c7n_unused_keys.report.render import render

from . import slack
from .demo import tool
from .emulator import Emulator, account_client
from .loopback import serving
from .seed import seed_organisation

ROOT = Path(__file__).resolve().parent.parent.parent
NOTIFY = 'unused-access-keys-notify.yml'
APPROVAL = 'c7n-unused-keys-approved'
QUEUE = 'cloud-custodian-mailer'
# The sandbox's Slack: its signing secret, and the approver's user id.
SECRET = 'sandbox-signing-secret'
APPROVER = 'U0SECURITY'


def run_demo_approval(accounts_file: str, output_dir: str) -> int:
    try:
        import c7n_mailer.utils  # noqa: F401
    except ImportError:
        print('c7n-unused-keys demo-approval: c7n-mailer renders the digest; '
              'pip install c7n-mailer', file=sys.stderr)
        return 1
    out = Path(output_dir)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    accounts = load_accounts(accounts_file)
    account_id, account = next(iter(accounts.items()))
    logging.getLogger('c7n_unused_keys.approvals').addHandler(_printed())
    logging.getLogger('c7n_unused_keys.approvals').setLevel(logging.INFO)
    with Emulator() as emu, slack.FakeSlack() as fake:
        env = emu.env()
        os.environ.update(env)
        seed_organisation(emu, {account_id: account}, ordinary=5)
        policy = _notify_policy(out)
        sqs = account_client(env, account_id, 'sqs', 'us-east-1')
        queue_url = sqs.create_queue(QueueName=QUEUE)['QueueUrl']

        print('\n== 1. c7n-org run -a %s -u %s (approval-tag: %s, approval_buttons)' % (
            account, policy, APPROVAL), flush=True)
        if not _org_run(accounts_file, out / 'day31', policy, account, env):
            return 1
        _report(out / 'day31', {account_id: account})

        digest = _digest(sqs, queue_url)
        (out / 'digest.json').write_text(json.dumps(digest, indent=2))
        print('\n== 2. The Slack digest (c7n-mailer, slack://#cloud-security; its JSON in '
              '%s)' % (out / 'digest.json'))
        _show(digest)
        buttons = [e for b in digest['blocks'] if b['type'] == 'actions'
                   for e in b['elements'] if e['action_id'] == clicks.APPROVE]
        if not buttons:
            print('the digest has no "Approve delete" button')
            return 1

        cfg = config.parse({
            'accounts-file': accounts_file, 'approval-tag': APPROVAL,
            'signing-secret': {'env': 'SLACK_SIGNING_SECRET'},
            'bot-token': {'env': 'SLACK_BOT_TOKEN'},
            'approvers': {'users': [APPROVER]}, 'slack-api-url': fake.api_url},
            yaml.safe_load(Path(accounts_file).read_text()))
        server = make_server(build_app(cfg, SECRET, 'xoxb-sandbox'), RequestScreen(SECRET))
        with serving(server, 'approvals') as base:
            url = base + PATH
            value = buttons[0]['value']
            response_url = fake.response_url()
            print('\n== 3. A click on "Approve delete" by <@%s>: POST %s, signed as Slack '
                  'signs (X-Slack-Signature over v0:<timestamp>:<body>)' % (APPROVER, url))
            print('   button value: %s' % value)
            status, _ = slack.click(url, SECRET, clicks.APPROVE, value, APPROVER,
                                    response_url, digest)
            print('   answered HTTP %d' % status)
            # Served, the app answers first and updates the message after its work.
            updates = fake.posted_to(response_url, wait=20)
        print('\n== 4. The message, updated in place through response_url')
        for posted in updates:
            for b in posted.get('blocks', []):
                if b.get('block_id') == 'c7n-unused-keys:' + value.split(' ')[2]:
                    print('   ' + b['elements'][0]['text'])
        print('\n== 5. The next run: c7n-org run -a %s -u %s' % (account, policy), flush=True)
        if not _org_run(accounts_file, out / 'next', policy, account, env):
            return 1
        print('\n== 6. The report names the approver')
        report = _report(out / 'next', {account_id: account})
    approved = [r for r in report.rows if r.approved_by]
    print('\nThe sandbox is stopped. Outputs are under %s.' % out)
    return 0 if approved else 1


def _show(digest: dict):
    """The digest as Slack shows it, roughly: each block's text, and its buttons."""
    for b in digest['blocks']:
        if b['type'] == 'actions':
            print('   ' + '  '.join('[%s]' % e['text']['text'] for e in b['elements']) +
                  '  (value: %s)' % b['elements'][0]['value'])
        else:
            text = b['text']['text'] if b['type'] == 'section' else b['elements'][0]['text']
            print('\n'.join('   | ' + line for line in text.splitlines()))


def _printed() -> logging.Handler:
    h = logging.StreamHandler(sys.stdout)
    h.setFormatter(logging.Formatter('   app log: %(message)s'))
    return h


def _notify_policy(out: Path) -> Path:
    """The shipped notify policy, with approvals and the digest's buttons."""
    data = yaml.safe_load((ROOT / 'mailer' / NOTIFY).read_text())
    actions = data['policies'][0]['actions']
    actions[0]['approval-tag'] = APPROVAL
    actions[1]['approval_buttons'] = True
    path = out / NOTIFY
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _org_run(accounts_file: str, out: Path, policy: Path, account: str, env) -> bool:
    run = subprocess.run(
        [tool('c7n-org'), 'run', '-c', accounts_file, '-s', str(out), '-a', account,
         '-u', str(policy)], env=dict(os.environ, **env), capture_output=True, text=True,
        timeout=600)
    sys.stdout.write(''.join('   ' + line + '\n' for line in run.stderr.splitlines()
                             if 'c7n_org:' in line))
    if run.returncode != 0:
        print('c7n-org failed (exit %d):\n%s' % (run.returncode, run.stderr[-3000:]))
    return run.returncode == 0


def _report(out: Path, accounts):
    report = read(out, accounts)
    print('\n   c7n-unused-keys report %s' % out)
    sys.stdout.write(render(report, 'table', width=180))
    return report


def _digest(sqs, queue_url: str) -> dict:
    """The queued message, decoded as c7n-mailer decodes it and rendered for the
    security channel with the shipped Slack template."""
    from c7n_mailer.utils import get_rendered_jinja
    (m,) = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1)['Messages']
    message = json.loads(zlib.decompress(base64.b64decode(m['Body'])))
    body = get_rendered_jinja('#cloud-security', message, message['resources'],
                              logging.getLogger('demo'), 'slack_template', 'slack_default',
                              [str(ROOT / 'mailer' / 'templates')])
    return json.loads(body)
