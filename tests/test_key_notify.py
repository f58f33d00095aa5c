"""The c7n-mailer template renders key-level resources (aws.iam-access-key): one line per key
under its stage, naming it, from the message a real notify action sent to the emulator's queue."""
import base64
import json
import logging
import re
import zlib

import pytest
import yaml

from c7n_unused_keys.accounts import load_accounts
from c7n_unused_keys.names import RESULTS_ANNOTATION, UNUSED_ANNOTATION
from c7n_unused_keys_sandbox.seed import seed_organisation
from conftest import ROOT, read_json, run_command
from notices import sqs_client
from notices import email_stages, expected

MAILER = ROOT / 'mailer'
CONFIG = ROOT / 'custodian.yml'
NOTICE = MAILER / 'unused-access-keys-notice.yml'
QUEUE = 'cloud-custodian-mailer'
DEV = '111111111111'


def render(message, resources):
    from c7n_mailer.utils import get_rendered_jinja
    html = get_rendered_jinja('owner@example.com', message, resources,
                              logging.getLogger('test'), 'template', 'default',
                              [str(MAILER / 'templates')])
    assert html, 'the template did not render'
    return html


def key_lines(html):
    """The table's lines, each as the text of its cells."""
    rows = re.findall(r'<tr>(.*?)</tr>', html, re.S)
    return [re.findall(r'<td>(.*?)</td>', r, re.S) for r in rows if '<td>' in r]


@pytest.fixture
def noticed(sandbox, tmp_path):
    """The shipped key-level notice policy, run by c7n-org in dev: the message its
    notify action put on the queue, decoded as c7n-mailer decodes it."""
    seed_organisation(sandbox, load_accounts(CONFIG), through_api=False)
    sqs = sqs_client(sandbox, DEV)
    url = sqs.create_queue(QueueName=QUEUE)['QueueUrl']
    run = run_command(['c7n-org', 'run', '-c', CONFIG, '-s', tmp_path, '--cache-period', '0',
                       '-u', NOTICE, '-a', 'dev'], sandbox)
    assert run.returncode == 0, run.stderr
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)['Messages']
    assert len(got) == 1
    message = json.loads(zlib.decompress(base64.b64decode(got[0]['Body'])))
    return message, tmp_path / 'dev' / 'us-east-1' / 'unused-access-keys-notice'


def test_notice_policy_validates():
    run = run_command(['custodian', 'validate', NOTICE], None)
    assert run.returncode == 0, run.stderr
    (policy,) = yaml.safe_load(NOTICE.read_text())['policies']
    assert policy['resource'] == 'aws.iam-access-key'


def test_one_line_per_key_naming_it_user_last_use_and_reason(noticed):
    message, out = noticed
    resources = message['resources']
    # The message carries the key resources that the run wrote.
    assert {r['AccessKeyId'] for r in resources} == \
        {r['AccessKeyId'] for r in read_json(out / 'resources.json')}
    assert len(resources) == 7
    html = render(message, resources)
    lines = key_lines(html)
    assert len(lines) == len(resources)
    for res in resources:
        (ann,) = res[UNUSED_ANNOTATION]
        [line] = [c for c in lines if c[0] == res['AccessKeyId']]
        assert line[1] == res['UserName'] and DEV in line[2]
        used = 'never' if ann['NeverUsed'] else ann['LastUsedDate'][:10]
        assert line[3].startswith(used)
        assert line[4] == ann['Reason']
    assert set(email_stages(html)) == {'Unused, nothing done yet'}
    assert 'frank-never-used' in html and 'never used' in html


def test_retire_records_on_a_key_show_that_key_only(sandbox, tmp_path):
    """A key resource carrying its owner's retire records (the user-level action's
    shape: every key of the user) renders one line, its own, with the step."""
    seed_organisation(sandbox, load_accounts(CONFIG), through_api=False)
    # bob gets a second idle key: the user-level records then name two keys of his.
    second = sandbox.iam_client(DEV).create_access_key(UserName='bob-idle-50d')
    sandbox.backdate_key(DEV, second['AccessKey']['AccessKeyId'], created_days=300,
                         used_days=90)
    shipped = yaml.safe_load((ROOT / 'policies' / 'unused-access-keys-retire.yml')
                             .read_text())['policies']
    keys = {'name': 'keys', 'resource': 'aws.iam-access-key',
            'conditions': shipped[0]['conditions'],
            'filters': [dict({'type': 'unused-access-keys', 'days': 45,
                              'never-used-days': 30})]}
    path = tmp_path / 'p.yml'
    # The keys first, then the retire policy acts on them.
    path.write_text(yaml.safe_dump({'policies': [keys] + shipped}))
    run = run_command(['c7n-org', 'run', '-c', CONFIG, '-s', tmp_path / 'out',
                       '--cache-period', '0', '-u', path, '-a', 'dev'], sandbox)
    assert run.returncode == 0, run.stderr
    out = tmp_path / 'out' / 'dev' / 'us-east-1'
    resources = read_json(out / 'keys' / 'resources.json')
    records = read_json(out / shipped[0]['name'] / 'action-retire-access-keys')
    for r in resources:
        r[RESULTS_ANNOTATION] = [x for x in records if x['UserName'] == r['UserName']]
    bob = [r for r in resources if r['UserName'] == 'bob-idle-50d']
    assert len(bob) == 2 and all(len(r[RESULTS_ANNOTATION]) == 2 for r in bob)
    html = render({'action': {'template': 'unused-access-keys.html'},
                   'policy': {'name': 'keys'}, 'account': 'dev', 'account_id': DEV,
                   'execution_start': 1795000000}, resources)
    mine = {r['AccessKeyId'] for r in resources}
    assert email_stages(html) == expected([x for x in records if x['AccessKeyId'] in mine])
    assert {r['AccessKeyId'] for r in bob} <= email_stages(html)['Deactivated today']


def test_key_level_retire_with_notify_names_each_key_and_its_step(sandbox, tmp_path):
    """retire-access-keys on aws.iam-access-key, then notify: the message c7n sent
    renders one line per key, with the step the action recorded for it."""
    seed_organisation(sandbox, load_accounts(CONFIG), through_api=False)
    sqs = sqs_client(sandbox, DEV)
    url = sqs.create_queue(QueueName=QUEUE)['QueueUrl']
    (retire,) = yaml.safe_load((ROOT / 'policies' / 'unused-access-keys-retire.yml')
                               .read_text())['policies']
    (notice,) = yaml.safe_load(NOTICE.read_text())['policies']
    policy = dict({k: v for k, v in retire.items() if k != 'source'}, name='keys-retire',
                  resource='aws.iam-access-key',
                  actions=retire['actions'] + notice['actions'])
    path = tmp_path / 'p.yml'
    path.write_text(yaml.safe_dump({'policies': [policy]}))
    run = run_command(['c7n-org', 'run', '-c', CONFIG, '-s', tmp_path / 'out',
                       '--cache-period', '0', '-u', path, '-a', 'dev'], sandbox)
    assert run.returncode == 0, run.stderr
    records = read_json(tmp_path / 'out' / 'dev' / 'us-east-1' / 'keys-retire' /
                        'action-retire-access-keys')
    (got,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)['Messages']
    message = json.loads(zlib.decompress(base64.b64decode(got['Body'])))
    assert len(records) == 9
    assert email_stages(render(message, message['resources'])) == expected(records)
