"""A user at IAM's limit of 50 tags: its key cannot be marked, so it is not deactivated.

The emulator refuses a 51st tag as IAM does (LimitExceeded, 409). The key stays Active on
every run (it is not flipped off and back), and shows as `failed`, with the reason, in the
record, the report and the notice.
"""
import json

import pytest
from botocore.exceptions import ClientError

from c7n_unused_keys import lifecycle
from c7n_unused_keys.accounts import load_accounts
from c7n_unused_keys_sandbox.seed import seed_organisation
from conftest import iam_client, read_json, run_command
from notices import CONFIG, DEV, notify_run, render

CROWDED = 'crowded-idle-100d'
POLICY = 'unused-access-keys-retire-notify'


def crowded_user(emu, account=DEV, tags=50):
    c = iam_client(emu, account)
    c.create_user(UserName=CROWDED)
    for start in range(0, tags, 10):
        c.tag_user(UserName=CROWDED, Tags=[{'Key': 'team-%02d' % i, 'Value': 'x'}
                                           for i in range(start, min(start + 10, tags))])
    key = c.create_access_key(UserName=CROWDED)['AccessKey']['AccessKeyId']
    emu.backdate_key(account, key, created_days=300, used_days=100)
    return key


def test_the_sandbox_refuses_a_51st_tag_as_iam_does(sandbox):
    crowded_user(sandbox, tags=50)
    c = iam_client(sandbox, DEV)
    with pytest.raises(ClientError) as refused:
        c.tag_user(UserName=CROWDED, Tags=[{'Key': 'one-more', 'Value': 'x'}])
    assert refused.value.response['Error']['Code'] == 'LimitExceeded'
    assert refused.value.response['ResponseMetadata']['HTTPStatusCode'] == 409
    # A tag it holds can still be rewritten.
    c.tag_user(UserName=CROWDED, Tags=[{'Key': 'team-00', 'Value': 'y'}])
    assert len(c.list_user_tags(UserName=CROWDED)['Tags']) == 50


def test_a_key_whose_user_is_at_the_tag_limit_is_left_active_and_failed(sandbox, tmp_path):
    seed_organisation(sandbox, load_accounts(CONFIG), through_api=False)
    key = crowded_user(sandbox)
    updates = []
    sandbox.on_request('UpdateAccessKey', lambda: updates.append(1), user=CROWDED, times=100)
    for day in ('run1', 'run2'):
        (message,) = notify_run(sandbox, tmp_path / day, fails=True)
        [rec] = [r for r in read_json(tmp_path / day / 'dev' / 'us-east-1' / POLICY /
                                      'action-retire-access-keys')
                 if r['AccessKeyId'] == key]
        assert rec['Step'] == lifecycle.FAILED
        assert 'its user has 50 tags, and IAM allows 50' in rec['Error']
        # The notice lists it under "Could not be changed", with the reason.
        html = render(message)
        assert 'Could not be changed' in html and key in html
        assert 'IAM allows 50' in html
    # Never deactivated, so never flipped back: no UpdateAccessKey on the user at all.
    assert updates == []
    [k] = sandbox.backend(DEV).users[CROWDED].access_keys
    assert k.status == 'Active'
    tags = {t['Key'] for t in sandbox.backend(DEV).list_user_tags(CROWDED)}
    assert len(tags) == 50 and not any(t.startswith('c7n-unused-keys') for t in tags)

    run = run_command(['c7n-unused-keys', 'report', tmp_path / 'run2', '--format', 'json'],
                      None)
    assert run.returncode == 2, run.stderr
    [row] = [r for r in json.loads(run.stdout)['rows'] if r['key_id'] == key]
    assert row['step'] == lifecycle.FAILED and 'IAM allows 50' in row['error']
