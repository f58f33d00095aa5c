"""The document of `c7n-unused-keys permissions` is enough, and each action in it is needed.

The emulator enforces IAM here: a user holding exactly that document runs the shipped
policies through `custodian`.
"""
import json

import pytest
import yaml

from c7n_unused_keys import markers
from c7n_unused_keys_sandbox.seed import organisation, seed_account
from conftest import DEFAULT_ACCOUNT, ROOT, custodian_run, faults, run_command, write_policies
from helpers import account_state, no_key_deactivated_without_its_marker

POLICIES = sorted((ROOT / 'policies').glob('*.yml'))
RETIRE = ROOT / 'policies' / 'unused-access-keys-retire.yml'
REPORT = ROOT / 'policies' / 'unused-access-keys-report.yml'
CIS_RETIRE = ROOT / 'policies' / 'unused-credentials-cis-retire.yml'


def document(*paths):
    run = run_command(['c7n-unused-keys', 'permissions'] + [str(p) for p in paths], None)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


DOCUMENT = document()
ACTIONS = DOCUMENT['Statement'][0]['Action']


def without(action):
    doc = json.loads(json.dumps(DOCUMENT))
    doc['Statement'][0]['Action'] = [a for a in ACTIONS if a != action]
    return doc


def state(emu):
    """The account as the policies see it: everyone but the user they run as."""
    return {u: v for u, v in account_state(emu).items() if u != 'runner'}


def run_as(emu, tmp_path, doc, policies=POLICIES, prepare=None, extra_env=None):
    """Seed the sandbox account, then run the policies as a user holding `doc`;
    `prepare(client)` changes the account in between."""
    from datetime import datetime, timezone
    seed_account(emu, DEFAULT_ACCOUNT, organisation('dev', datetime.now(timezone.utc)),
                 through_api=False)
    c = emu.iam_client()
    if prepare:
        prepare(c)
    c.create_user(UserName='runner')
    c.put_user_policy(UserName='runner', PolicyName='c7n-unused-keys',
                      PolicyDocument=json.dumps(doc))
    key = c.create_access_key(UserName='runner')['AccessKey']
    before = state(emu)
    env = dict(extra_env or {}, AWS_ACCESS_KEY_ID=key['AccessKeyId'],
               AWS_SECRET_ACCESS_KEY=key['SecretAccessKey'])
    with emu.enforcing_iam():
        runs = [custodian_run(emu, tmp_path / p.stem, p, env=env) for p in policies]
    return before, state(emu), runs


def no_half_done_key(before, after):
    """Every key this run deactivated carries its marker; only the marker-old key is gone."""
    no_key_deactivated_without_its_marker(before, after)
    gone = {k for u, (keys, _) in before.items() for k in keys} - \
        {k for u, (keys, _) in after.items() for k in keys}
    assert gone <= set(before['ivan-deactivated-40d'].keys)


def test_the_document_runs_every_shipped_policy(sandbox, tmp_path):
    before, after, runs = run_as(sandbox, tmp_path, DOCUMENT)
    for run in runs:
        assert run.returncode == 0, run.stderr
        assert 'AccessDenied' not in run.stderr
    assert after['bob-idle-50d'].keys != before['bob-idle-50d'].keys
    assert after['ivan-deactivated-40d'].keys == {}
    # The CIS 1.12 policies too: the password marked 40 days ago is removed, the one
    # idle 60 days is marked.
    users = sandbox.backend(DEFAULT_ACCOUNT).users
    assert not users['rupert-password-400d'].password and after['rupert-password-400d'] == (
        {}, {})
    assert users['quinn-password-60d'].password
    assert 'c7n-unused-keys-password' in after['quinn-password-60d'].tags
    no_half_done_key(before, after)


# Losing the report only costs the hybrid pre-screen: by design it falls back to the
# API with a warning naming the denied call, and the answer stays exact.
REPORT_CALLS = ('iam:GenerateCredentialReport', 'iam:GetCredentialReport')


@pytest.mark.parametrize('action', ACTIONS)
def test_each_action_is_needed(sandbox, tmp_path, action):
    # The retire policy makes every call of the document; GetUser only to read a marker
    # back after a TagUser whose answer was lost (its users come with their tags).
    # The password calls are made by the CIS 1.12 retire policy, on the sandbox's
    # password users (one marked 40 days ago is removed).
    policy = REPORT if action == 'iam:ListUserTags' else \
        CIS_RETIRE if action in ('iam:GetLoginProfile', 'iam:DeleteLoginProfile') else RETIRE
    env = faults('TagUser=Lost500/bob-idle-50d') if action == 'iam:GetUser' else None
    before, after, runs = run_as(sandbox, tmp_path, without(action), [policy], extra_env=env)
    out = '\n'.join(r.stderr for r in runs)
    operation = action.split(':')[1]
    if action in REPORT_CALLS:
        assert all(r.returncode == 0 for r in runs)
        assert 'no credential report (AccessDenied' in out and 'falling back' in out
    else:
        assert any(r.returncode != 0 for r in runs)
        assert operation in out and ('AccessDenied' in out or 'not authorized' in out), out
    no_half_done_key(before, after)


APPROVAL = 'c7n-unused-keys-approved'


def test_the_approval_path_needs_no_other_call(sandbox, tmp_path):
    """With `approval-tag`, the approvals are read with the markers (the users' tags) and
    removed with them (UntagUser): the same document runs it."""
    from datetime import datetime, timezone
    policies = yaml.safe_load(RETIRE.read_text())['policies']
    policies[0]['actions'][0]['approval-tag'] = APPROVAL
    approval = write_policies(tmp_path / 'approval.yml', *policies)
    assert document(approval)['Statement'][0]['Action'] == document(RETIRE)['Statement'][0][
        'Action']
    due = 'ivan-deactivated-40d'

    def approve(c):
        key_id = c.list_access_keys(UserName=due)['AccessKeyMetadata'][0]['AccessKeyId']
        c.tag_user(UserName=due, Tags=[{'Key': markers.approval_tag(APPROVAL, key_id),
                                        'Value': markers.format_time(datetime.now(timezone.utc))}])
    before, after, runs = run_as(sandbox, tmp_path, DOCUMENT, [approval], prepare=approve)
    assert runs[0].returncode == 0, runs[0].stderr
    assert 'AccessDenied' not in runs[0].stderr
    assert any(t.startswith(APPROVAL + ':') for t in before[due].tags)
    # Approved: deleted, and its marker and approval removed.
    assert after[due] == ({}, {})
    no_half_done_key(before, after)
