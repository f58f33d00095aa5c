"""The c7n-mailer template renders, with c7n-mailer's own rendering, from a real retire run."""
import logging

import yaml

from c7n_unused_keys.accounts import load_accounts
from c7n_unused_keys.names import EXEMPT_TAG, RESULTS_ANNOTATION
from c7n_unused_keys_sandbox.seed import seed_organisation
from conftest import ROOT, read_json, run_command
from notices import email_stages, expected

MAILER = ROOT / 'mailer'


def test_notify_policy_validates():
    run = run_command(['custodian', 'validate', MAILER / 'unused-access-keys-notify.yml'], None)
    assert run.returncode == 0, run.stderr


def test_template_lists_each_key_under_its_stage_and_how_to_keep_it(sandbox, tmp_path):
    from c7n_mailer.utils import get_rendered_jinja
    config = ROOT / 'custodian.yml'
    seed_organisation(sandbox, load_accounts(config), through_api=False)
    policy = ROOT / 'policies' / 'unused-access-keys-retire.yml'
    run = run_command(['c7n-org', 'run', '-c', config, '-s', tmp_path, '--cache-period', '0',
                       '-u', policy, '-a', 'dev'], sandbox)
    assert run.returncode == 0, run.stderr
    out = tmp_path / 'dev' / 'us-east-1' / 'unused-access-keys-retire'
    # What notify receives: the resources, carrying both annotations.
    resources = read_json(out / 'resources.json')
    records = read_json(out / 'action-retire-access-keys')
    for r in resources:
        r[RESULTS_ANNOTATION] = [x for x in records if x['UserName'] == r['UserName']]
    action = yaml.safe_load((MAILER / 'unused-access-keys-notify.yml').read_text())[
        'policies'][0]['actions'][1]
    message = {'action': action, 'policy': {'name': 'unused-access-keys-retire-notify'},
               'account': 'dev', 'account_id': '111111111111', 'region': 'us-east-1',
               'execution_start': 1795000000}
    html = get_rendered_jinja('owner@example.com', message, resources,
                              logging.getLogger('test'), 'template', 'default',
                              [str(MAILER / 'templates')])
    assert html, 'the template did not render'
    assert len(records) == 9
    assert email_stages(html) == expected(records)
    for rec in records:
        if rec['Step'] == 'deactivated':
            assert rec['DeleteOn'][:10] in html and rec['UserName'] in html
    for words in (EXEMPT_TAG, 'update-access-key', 'until=YYYY-MM-DD', 'never'):
        assert words in html, words
