"""Every exemption the filter honours is logged, so that an audit finds who is exempt and why."""
import re
from datetime import datetime, timedelta, timezone

from c7n_unused_keys.names import EXEMPT_TAG
from conftest import DEFAULT_ACCOUNT, custodian_run, write_policies
from helpers import account_state

POLICY = {
    'name': 'retire', 'resource': 'aws.iam-user',
    'filters': [{'or': [{'type': 'unused-access-keys', 'days': 45},
                        {'type': 'marked-access-keys'}]}],
    'actions': [{'type': 'retire-access-keys', 'delete-after-days': 30}]}


def test_each_exemption_honoured_is_logged_and_its_key_untouched(sandbox, tmp_path):
    today = datetime.now(timezone.utc).date()
    later = (today + timedelta(days=30)).isoformat()
    earlier = (today - timedelta(days=10)).isoformat()
    c = sandbox.iam_client()
    keys = {}
    for user, tag in (('for-ever', '*'), ('until-later', '* until=%s' % later),
                      ('expired', '* until=%s' % earlier), ('idle', None)):
        c.create_user(UserName=user)
        keys[user] = c.create_access_key(UserName=user)['AccessKey']['AccessKeyId']
        sandbox.backdate_key(DEFAULT_ACCOUNT, keys[user], created_days=300, used_days=200)
        if tag:
            c.tag_user(UserName=user, Tags=[{'Key': EXEMPT_TAG, 'Value': tag}])
    # One user names one of its two idle keys: only that one is exempt.
    c.create_user(UserName='one-of-two')
    two = [c.create_access_key(UserName='one-of-two')['AccessKey']['AccessKeyId']
           for _ in range(2)]
    for key in two:
        sandbox.backdate_key(DEFAULT_ACCOUNT, key, created_days=300, used_days=200)
    c.tag_user(UserName='one-of-two', Tags=[{'Key': EXEMPT_TAG, 'Value': two[0]}])

    run = custodian_run(sandbox, tmp_path / 'out',
                        write_policies(tmp_path / 'p.yml', POLICY))
    assert run.returncode == 0, run.stderr

    log = (tmp_path / 'out' / 'retire' / 'custodian-run.log').read_text()
    # At INFO: custodian-run.log writes ' - INFO - ', stderr ':INFO '.
    pattern = (r'[ :]INFO[ -]+unused-access-keys: exemption honoured: user=(\S+) key=(\S+) '
               r'tag=%s value=(.+) until=(\S+)$' % EXEMPT_TAG)
    found = {m.groups() for m in re.finditer(pattern, log, re.M)}
    assert found == {
        ('for-ever', keys['for-ever'], "'*'", 'none'),
        ('until-later', keys['until-later'], "'* until=%s'" % later, later),
        ('one-of-two', two[0], repr(two[0]), 'none')}, log
    stderr = {m.groups() for m in re.finditer(pattern, run.stderr, re.M)}
    assert stderr == found, run.stderr

    state = account_state(sandbox)
    assert state['for-ever'].keys == {keys['for-ever']: 'Active'}
    assert state['until-later'].keys == {keys['until-later']: 'Active'}
    assert state['one-of-two'].keys == {two[0]: 'Active', two[1]: 'Inactive'}
    assert state['expired'].keys == {keys['expired']: 'Inactive'}
    assert state['idle'].keys == {keys['idle']: 'Inactive'}
