"""`c7n-unused-keys sandbox` as a user starts it: a subprocess that serves until SIGTERM."""
import json
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

from c7n_unused_keys import markers
from c7n_unused_keys.names import EXEMPT_TAG, MARKER_PREFIX
from c7n_unused_keys_sandbox.emulator import account_client
from conftest import ROOT

ACCOUNTS = ('111111111111', '222222222222', '333333333333')
START_TIMEOUT = 120


def start(*args):
    proc = subprocess.Popen([sys.executable, '-m', 'c7n_unused_keys.cli', 'sandbox',
                             '-c', str(ROOT / 'custodian.yml')] + list(args),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    lines, deadline = [], time.monotonic() + START_TIMEOUT
    for line in proc.stdout:
        lines.append(line.rstrip())
        if line.startswith('# ready') or time.monotonic() > deadline:
            break
    assert lines and lines[-1].startswith('# ready'), (lines, proc.poll())
    env = dict(line[len('export '):].split('=', 1) for line in lines
               if line.startswith('export '))
    return proc, env, lines


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    return proc.returncode, out


def client(env, account):
    return account_client(env, account)


def port_is_free(port):
    """Nobody listens there, and a new server could bind it (as servers do, with
    SO_REUSEADDR: the stopped server's closed connections may linger in TIME_WAIT)."""
    with socket.socket() as s:
        s.settimeout(2)
        if s.connect_ex(('127.0.0.1', port)) == 0:
            return False
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(('127.0.0.1', port))
        except OSError:
            return False
    return True


def days_ago(dt):
    return (datetime.now(timezone.utc) - dt).total_seconds() / 86400


@pytest.fixture(scope='module')
def served():
    proc, env, lines = start()
    try:
        yield env, lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_prints_the_free_port_it_picked_and_the_environment(served):
    env, lines = served
    url = re.match(r'# c7n-unused-keys sandbox: AWS emulator on (http://127\.0\.0\.1:\d+)',
                   lines[0]).group(1)
    assert env == {'AWS_ENDPOINT_URL': url, 'AWS_ACCESS_KEY_ID': 'testing',
                   'AWS_SECRET_ACCESS_KEY': 'testing', 'AWS_DEFAULT_REGION': 'us-east-1'}
    for account in ACCOUNTS:
        assert any(line.startswith('# seeded %s' % account) for line in lines)


@pytest.mark.parametrize('account', ACCOUNTS)
def test_every_lifecycle_case_answers_through_the_api(served, account):
    env, _ = served
    iam = client(env, account)
    users = {u['UserName'] for u in iam.get_paginator('list_users').paginate()
             .build_full_result()['Users']}
    assert len(users) >= 40

    def keys(user):
        return iam.list_access_keys(UserName=user)['AccessKeyMetadata']

    def idle(key):
        used = iam.get_access_key_last_used(AccessKeyId=key['AccessKeyId'])
        when = used['AccessKeyLastUsed'].get('LastUsedDate')
        return None if when is None else round(days_ago(when))

    def tags(user):
        return {t['Key']: t['Value'] for t in iam.list_user_tags(UserName=user)['Tags']}

    assert idle(keys('alice-recent')[0]) == 1
    assert [idle(k) for k in keys('bob-idle-50d')] == [50]
    assert [idle(k) for k in keys('carol-idle-120d')] == [120]
    assert [idle(k) for k in keys('dave-idle-400d')] == [400]
    [new] = keys('erin-new-key')
    assert idle(new) is None and round(days_ago(new['CreateDate'])) == 3
    [old] = keys('frank-never-used')
    assert idle(old) is None and round(days_ago(old['CreateDate'])) == 60
    assert sorted(idle(k) for k in keys('grace-two-keys')) == [2, 100]
    for user, marker_days, status in (('heidi-deactivated-5d', 5, 'Inactive'),
                                      ('ivan-deactivated-40d', 40, 'Inactive'),
                                      ('judy-reactivated', 10, 'Active')):
        [k] = keys(user)
        assert k['Status'] == status
        value = tags(user)[markers.deactivated_tag(MARKER_PREFIX, k['AccessKeyId'])]
        marked = datetime.strptime(value, '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=timezone.utc)
        assert round(days_ago(marked)) == marker_days
    assert tags('mallory-exempt') == {EXEMPT_TAG: '*'}
    until = tags('oscar-exemption-expired')[EXEMPT_TAG].split('until=')[1]
    assert datetime.fromisoformat(until).date() < datetime.now(timezone.utc).date()


def test_extra_users_and_a_chosen_port_then_sigterm_frees_it():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    proc, env, _ = start('--port', str(port), '--users', '5')
    assert env['AWS_ENDPOINT_URL'] == 'http://127.0.0.1:%d' % port
    iam = client(env, '222222222222')
    users = iam.list_users()['Users']
    assert len([u for u in users if '-extra-' in u['UserName']]) == 5
    assert not port_is_free(port)
    code, out = stop(proc)
    assert code == 0 and '# stopped' in out
    assert port_is_free(port)


@pytest.mark.parametrize('account', ACCOUNTS)
def test_no_user_is_younger_than_its_oldest_credential(served, account):
    env, _ = served
    iam = client(env, account)
    users = iam.get_paginator('list_users').paginate().build_full_result()['Users']
    without = []
    for user in users:
        made = [k['CreateDate'] for k in
                iam.list_access_keys(UserName=user['UserName'])['AccessKeyMetadata']]
        try:
            made.append(iam.get_login_profile(UserName=user['UserName'])['LoginProfile'][
                'CreateDate'])
        except iam.exceptions.NoSuchEntityException:
            pass
        if not made:
            without.append(user['UserName'])
            continue
        assert user['CreateDate'] <= min(made), user['UserName']
    # Only the dormant user holds no credential, and it is as old as it says.
    assert without == ['trent-dormant']
    trent = next(u for u in users if u['UserName'] == 'trent-dormant')
    assert round(days_ago(trent['CreateDate'])) == 400
    dave = iam.get_user(UserName='dave-idle-400d')['User']
    assert round(days_ago(dave['CreateDate'])) == 500


def test_the_password_cases_answer_as_iam_does(served):
    env, _ = served
    iam = client(env, ACCOUNTS[0])
    peggy = iam.get_user(UserName='peggy-password-10d')['User']
    assert round(days_ago(peggy['PasswordLastUsed'])) == 10
    assert 'PasswordLastUsed' not in iam.get_user(UserName='sybil-password-never')['User']
    sybil = iam.get_login_profile(UserName='sybil-password-never')['LoginProfile']
    assert round(days_ago(sybil['CreateDate'])) == 60
    tags = iam.list_user_tags(UserName='rupert-password-400d')['Tags']
    assert [t['Key'] for t in tags] == ['c7n-unused-keys-password']


@pytest.mark.parametrize('value', ['abc', '-1', '2.5'])
def test_users_must_be_a_whole_number(capsys, value):
    from c7n_unused_keys.cli import main
    with pytest.raises(SystemExit) as exit:
        main(['sandbox', '--users', value])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert "argument --users: expected a whole number of users, 0 or more, got %r" % value \
        in err, err
    assert '_count' not in err


def test_the_sandbox_extra_refuses_the_moto_that_lacks_its_request_handler():
    """c7n pins moto 5.2.2, whose werkzeug_app has no MotoRequestHandler (added in 5.2.5)."""
    from importlib.metadata import requires
    from packaging.requirements import Requirement
    [moto] = [Requirement(r) for r in requires('c7n-unused-keys')
              if r.startswith('moto') and 'sandbox' in r]
    assert not moto.specifier.contains('5.2.2') and not moto.specifier.contains('5.2.4')
    assert moto.specifier.contains('5.2.5')
    from moto.moto_server import werkzeug_app
    assert hasattr(werkzeug_app, 'MotoRequestHandler')


def test_serves_what_the_lambda_path_needs(served):
    """Each account's function role, the output bucket, and the services a deployment and
    its function use: Lambda, EventBridge, S3 and CloudWatch Logs."""
    from c7n_unused_keys_sandbox.functions import FUNCTION_ROLE, OUTPUT_BUCKET
    from c7n_unused_keys_sandbox.emulator import account_client
    env, lines = served
    assert '# output bucket s3://%s (in %s)' % (OUTPUT_BUCKET, ACCOUNTS[0]) in lines
    for account in ACCOUNTS:
        role = client(env, account).get_role(RoleName=FUNCTION_ROLE)['Role']
        assert 'lambda.amazonaws.com' in json.dumps(role['AssumeRolePolicyDocument'])
        s3 = account_client(env, account, 's3', 'us-east-1')
        s3.put_object(Bucket=OUTPUT_BUCKET, Key='%s/probe' % account, Body=b'x')
        assert account_client(env, account, 'lambda', 'us-east-1').list_functions()[
            'Functions'] == []
        assert account_client(env, account, 'events', 'us-east-1').list_rules()['Rules'] == []
        logs = account_client(env, account, 'logs', 'us-east-1')
        logs.create_log_group(logGroupName='/aws/lambda/probe')
        assert [g['logGroupName'] for g in logs.describe_log_groups()['logGroups']] == [
            '/aws/lambda/probe']
    keys = [o['Key'] for o in account_client(env, ACCOUNTS[0], 's3', 'us-east-1')
            .list_objects_v2(Bucket=OUTPUT_BUCKET)['Contents']]
    assert sorted(keys) == sorted('%s/probe' % a for a in ACCOUNTS)


def test_a_response_class_s_methods_are_listed_once(emulator):
    """moto_fixes: the action lookup of every request finds the names moto lists, listed
    once per class."""
    from moto.core import responses, utils
    from moto.iam.responses import IamResponse
    listed = responses.method_names_from_class(IamResponse)
    assert listed == utils.method_names_from_class(IamResponse) and 'list_access_keys' in listed
    assert responses.method_names_from_class(IamResponse) is listed


@pytest.mark.parametrize('value,moved', [
    ('2026-12-02T10:00:00Z', '2026-11-22T10:00:00Z'),
    ('2026-12-02T10:00:00Z delete-on=2027-01-01T10:00:00Z told=soon',
     '2026-11-22T10:00:00Z delete-on=2026-12-22T10:00:00Z told=soon'),
    ('2026-12-02T10:00:00Z by slack:U1 2026-12-03T10:00:00Z by slack:U2',
     '2026-11-22T10:00:00Z by slack:U1 2026-11-23T10:00:00Z by slack:U2'),
    # An exemption's date, and anything else, stays as it is.
    ('AKIAAAAAAAAAAAAAAAAA until=2027-01-01', None),
    ('2026-12-02T10:00:00Z and more', None),
])
def test_moving_time_moves_every_time_valued_tag_approvals_too(value, moved):
    from datetime import timedelta
    from c7n_unused_keys_sandbox.emulator import shifted
    assert shifted(value, timedelta(days=10)) == (moved or value)
