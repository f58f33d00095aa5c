"""The document of `c7n-unused-keys permissions` is enough, and each action in it is needed.

The emulator enforces IAM here: a user holding exactly that document runs the shipped
policies through `custodian`.
"""
import json

import pytest

from c7n_unused_keys.names import MARKER_PREFIX
from c7n_unused_keys.sandbox.seed import organisation, seed_account
from conftest import DEFAULT_ACCOUNT, ROOT, account_state, custodian_run, run_command

POLICIES = sorted((ROOT / 'policies').glob('*.yml'))
PREFIX = MARKER_PREFIX + ':'
RETIRE = ROOT / 'policies' / 'unused-access-keys-retire.yml'
REPORT = ROOT / 'policies' / 'unused-access-keys-report.yml'


def document():
    run = run_command(['c7n-unused-keys', 'permissions'], None)
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


def run_as(emu, tmp_path, doc, policies=POLICIES):
    """Seed the sandbox account, then run the policies as a user holding `doc`."""
    from datetime import datetime, timezone
    seed_account(emu, DEFAULT_ACCOUNT, organisation('dev', datetime.now(timezone.utc)),
                 through_api=False)
    c = emu.iam_client()
    c.create_user(UserName='runner')
    c.put_user_policy(UserName='runner', PolicyName='c7n-unused-keys',
                      PolicyDocument=json.dumps(doc))
    key = c.create_access_key(UserName='runner')['AccessKey']
    before = state(emu)
    env = {'AWS_ACCESS_KEY_ID': key['AccessKeyId'],
           'AWS_SECRET_ACCESS_KEY': key['SecretAccessKey']}
    with emu.enforcing_iam():
        runs = [custodian_run(emu, tmp_path / p.stem, p, env=env) for p in policies]
    return before, state(emu), runs


def no_half_done_key(before, after):
    """Every key this run deactivated carries its marker; only the marker-old key is gone."""
    for user, (keys, tags) in after.items():
        for key_id, status in keys.items():
            if status == 'Inactive' and before[user][0][key_id] == 'Active':
                assert PREFIX + key_id in tags, (user, key_id)
    gone = {k for u, (keys, _) in before.items() for k in keys} - \
        {k for u, (keys, _) in after.items() for k in keys}
    assert gone <= set(before['ivan-deactivated-40d'][0])


def test_the_document_runs_every_shipped_policy(sandbox, tmp_path):
    before, after, runs = run_as(sandbox, tmp_path, DOCUMENT)
    for run in runs:
        assert run.returncode == 0, run.stderr
        assert 'AccessDenied' not in run.stderr
    assert after['bob-idle-50d'][0] != before['bob-idle-50d'][0]
    assert after['ivan-deactivated-40d'][0] == {}
    no_half_done_key(before, after)


# Losing the report only costs the hybrid pre-screen: by design it falls back to the
# API with a warning naming the denied call, and the answer stays exact.
REPORT_CALLS = ('iam:GenerateCredentialReport', 'iam:GetCredentialReport')


@pytest.mark.parametrize('action', ACTIONS)
def test_each_action_is_needed(sandbox, tmp_path, action):
    # The retire policy makes every call of the document but ListUserTags, which only
    # the report policy makes (its users are listed without tags).
    policy = REPORT if action == 'iam:ListUserTags' else RETIRE
    before, after, runs = run_as(sandbox, tmp_path, without(action), [policy])
    out = '\n'.join(r.stderr for r in runs)
    operation = action.split(':')[1]
    if action in REPORT_CALLS:
        assert all(r.returncode == 0 for r in runs)
        assert 'no credential report (AccessDenied' in out and 'falling back' in out
    else:
        assert any(r.returncode != 0 for r in runs)
        assert operation in out and ('AccessDenied' in out or 'not authorized' in out), out
    no_half_done_key(before, after)
