"""`c7n-unused-keys report` on what c7n writes to S3 (gzipped, in dated folders), read
from the bucket or from a copy, and on the output of a Lambda deployment."""
import gzip
import json
import sys
from datetime import datetime, timezone

import boto3
import pytest
import yaml

from c7n_unused_keys.accounts import load_accounts
from c7n_unused_keys_sandbox.seed import SeedKey, SeedUser, seed_account, seed_organisation
from c7n_unused_keys_sandbox.seed import lifecycle_cases
from conftest import DEFAULT_ACCOUNT, ROOT, custodian_run, faults, run_command

CONFIG = ROOT / 'custodian.yml'
REPORT = ROOT / 'policies' / 'unused-access-keys-report.yml'
POLICY = 'unused-access-keys-report'
BUCKET = 'c7n-unused-keys-report-tests'
IDS = {name: account_id for account_id, name in load_accounts(CONFIG).items()}
DEPLOYED = 'unused-keys-deployed'
ROLE = 'report-tests-lambda'


def s3_url(prefix):
    # c7n looks the bucket's region up over https unless the URL names it.
    return 's3://%s/%s?region=us-east-1' % (BUCKET, prefix)


def client(emu, service, account=DEFAULT_ACCOUNT):
    env = emu.env()
    creds = dict(aws_access_key_id=env['AWS_ACCESS_KEY_ID'],
                 aws_secret_access_key=env['AWS_SECRET_ACCESS_KEY'])
    kw = dict(endpoint_url=env['AWS_ENDPOINT_URL'], region_name=env['AWS_DEFAULT_REGION'])
    if account != DEFAULT_ACCOUNT:
        got = boto3.client('sts', **kw, **creds).assume_role(
            RoleArn='arn:aws:iam::%s:role/report-tests' % account,
            RoleSessionName='report-tests')['Credentials']
        creds = dict(aws_access_key_id=got['AccessKeyId'],
                     aws_secret_access_key=got['SecretAccessKey'],
                     aws_session_token=got['SessionToken'])
    return boto3.client(service, **kw, **creds)


def keys_under(s3, prefix):
    pages = s3.get_paginator('list_objects_v2').paginate(
        Bucket=BUCKET, Prefix=prefix + '/' if prefix else '')
    return sorted(o['Key'] for page in pages for o in page.get('Contents', ()))


def lambda_policy(path, name, role, account=DEFAULT_ACCOUNT):
    """A policy in a Lambda mode as the plugin's Lambda policies opt in (no filter of
    the plugin: only the deployment is looked at), in us-east-1 only."""
    path.write_text(yaml.safe_dump({'policies': [{
        'name': name, 'resource': 'aws.iam-user',
        'conditions': [{'type': 'value', 'key': 'region', 'value': 'us-east-1'}],
        'mode': {'type': 'periodic', 'schedule': 'rate(1 day)',
                 'role': 'arn:aws:iam::%s:role/%s' % (account, role),
                 'packages': ['c7n_unused_keys'],
                 'handler': 'c7n_unused_keys.handler.run',
                 'execution-options': {'output_dir': s3_url('lambda')}}}]}))
    return path


def ran(run):
    assert run.returncode == 0, run.stderr
    return run


@pytest.fixture(scope='module')
def outputs(emulator, tmp_path_factory):
    """Real runs of the same state written to S3 and to local folders."""
    tmp = tmp_path_factory.mktemp('s3-outputs')
    emulator.reset()
    s3 = client(emulator, 's3')
    s3.create_bucket(Bucket=BUCKET)
    now = datetime.now(timezone.utc)
    seed_account(emulator, DEFAULT_ACCOUNT, lifecycle_cases(now), through_api=False)
    seed_organisation(emulator, load_accounts(CONFIG), ordinary=0, through_api=False)
    ran(custodian_run(emulator, s3_url('custodian'), REPORT))
    ran(custodian_run(emulator, tmp / 'custodian', REPORT))
    ran(run_command(['c7n-org', 'run', '-c', CONFIG, '-s', s3_url('org'), '--cache-period',
                     '0', '-u', REPORT], emulator))
    ran(run_command(['c7n-org', 'run', '-c', CONFIG, '-s', tmp / 'org', '--cache-period',
                     '0', '-u', REPORT], emulator))
    # The per-account prefix of the Lambda policies, written from the dev account.
    ran(custodian_run(emulator, s3_url('per-account/%s' % IDS['dev']), REPORT,
                      '--assume', 'arn:aws:iam::%s:role/c7n-unused-keys' % IDS['dev']))
    # A Lambda deployment, to S3 and to a folder; and one that fails (no such role).
    for account in (DEFAULT_ACCOUNT, IDS['dev']):
        emulator.iam_client(account).create_role(
            RoleName=ROLE, AssumeRolePolicyDocument=json.dumps({
                'Version': '2012-10-17', 'Statement': [{
                    'Effect': 'Allow', 'Action': 'sts:AssumeRole',
                    'Principal': {'Service': 'lambda.amazonaws.com'}}]}))
    deploy = lambda_policy(tmp / 'deploy.yml', DEPLOYED, ROLE)
    ran(custodian_run(emulator, s3_url('deploy'), deploy))
    ran(custodian_run(emulator, tmp / 'deploy', deploy))
    ran(run_command(['c7n-org', 'run', '-c', CONFIG, '-a', 'dev', '-s', tmp / 'org-deploy',
                     '-u', lambda_policy(tmp / 'org.yml', DEPLOYED, ROLE, '{account_id}')],
                    emulator))
    bad = custodian_run(emulator, tmp / 'deploy-failed',
                        lambda_policy(tmp / 'bad.yml', DEPLOYED + '-bad', 'no-such-role'))
    assert bad.returncode != 0
    yield tmp, s3
    name = 'custodian-' + DEPLOYED
    for account in (DEFAULT_ACCOUNT, IDS['dev']):
        events, functions = client(emulator, 'events', account), client(emulator, 'lambda',
                                                                         account)
        targets = events.list_targets_by_rule(Rule=name)['Targets']
        events.remove_targets(Rule=name, Ids=[t['Id'] for t in targets])
        events.delete_rule(Name=name)
        functions.delete_function(FunctionName=name)
    for key in keys_under(s3, ''):
        s3.delete_object(Bucket=BUCKET, Key=key)
    s3.delete_bucket(Bucket=BUCKET)
    emulator.reset()


def report(out, *args, emu=None, env=None):
    run = run_command(['c7n-unused-keys', 'report', out, '--format', 'json'] + list(args),
                      emu, extra_env=env)
    return json.loads(run.stdout) if run.stdout else None, run


def key_rows(data):
    return sorted((r['account'], r['user'], r['key_id'], r['idle_days']) for r in data['rows'])


def test_c7n_writes_gzipped_files_in_dated_folders(outputs):
    """What the reading below relies on, as c7n 0.9.53 writes it."""
    _, s3 = outputs
    keys = keys_under(s3, 'custodian')
    assert keys and all(k.endswith('.gz') for k in keys)
    names = {k.rsplit('/', 1)[1] for k in keys}
    assert names == {'metadata.json.gz', 'custodian-run.log.gz', 'resources.json.gz'}
    # <prefix>/<policy>/YYYY/MM/DD/HH/<file>, the hour (UTC) the run started.
    [folder] = {k.rsplit('/', 1)[0] for k in keys}
    meta = json.loads(gzip.decompress(s3.get_object(
        Bucket=BUCKET, Key=folder + '/metadata.json.gz')['Body'].read()))
    started = datetime.fromtimestamp(meta['execution']['start'], timezone.utc)
    assert folder == 'custodian/%s/%s' % (POLICY, started.strftime('%Y/%m/%d/%H'))


def test_an_s3_url_reads_as_the_same_run_in_a_folder(outputs, emulator):
    tmp, _ = outputs
    local, run = report(tmp / 'custodian')
    assert run.returncode == 0, run.stderr
    before = emulator.requests
    # Only the emulator's address and dummy credentials in the environment: boto3
    # takes AWS_ENDPOINT_URL itself.
    data, run = report('s3://%s/custodian' % BUCKET, emu=emulator)
    assert run.returncode == 0, run.stderr
    assert emulator.requests > before
    assert len(data['rows']) == 7 and key_rows(data) == key_rows(local)
    assert data['layout'] == local['layout'] == 'custodian'
    [shown] = data['runs']
    assert shown['policy'] == POLICY and shown['older'] == 0
    assert shown['folder'].startswith(POLICY + '/') and len(shown['folder'].split('/')) == 5
    assert local['runs'] == []
    # c7n's own form of the URL reads the same.
    again, _ = report(s3_url('custodian'), emu=emulator)
    assert key_rows(again) == key_rows(local)


def test_c7n_org_output_in_s3_reads_as_in_a_folder(outputs, emulator):
    tmp, _ = outputs
    local, _ = report(tmp / 'org')
    data, run = report('s3://%s/org' % BUCKET, emu=emulator)
    assert run.returncode == 0, run.stderr
    assert data['layout'] == local['layout'] == 'c7n-org'
    assert key_rows(data) == key_rows(local)
    assert {r['account'] for r in data['rows']} == {'dev', 'staging', 'prod'}
    assert sorted(r['folder'].split('/')[0] for r in data['runs']) == sorted(IDS)


def download(s3, prefix, into):
    """The objects under `prefix` into a folder, as `aws s3 sync` leaves them."""
    for key in keys_under(s3, prefix):
        path = into / key[len(prefix) + 1:]
        path.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(BUCKET, key, str(path))
    return into


def test_a_downloaded_copy_of_the_bucket_reads_the_same(outputs, tmp_path):
    tmp, s3 = outputs
    copy = download(s3, 'custodian', tmp_path / 'copy')
    assert all(p.name.endswith('.gz') for p in copy.rglob('*') if p.is_file())
    data, run = report(copy)
    assert run.returncode == 0, run.stderr
    assert key_rows(data) == key_rows(report(tmp / 'custodian')[0])


def test_the_latest_dated_run_is_read(outputs, emulator, tmp_path):
    """An older run copied to an earlier date, then a real run after a change."""
    _, s3 = outputs
    for key in keys_under(s3, 'custodian'):
        parts = key.split('/')
        s3.copy_object(Bucket=BUCKET, CopySource={'Bucket': BUCKET, 'Key': key},
                       Key='/'.join(['dated', POLICY, '2001', '01', '01', '00', parts[-1]]))
    old, _ = report('s3://%s/dated' % BUCKET, emu=emulator)
    [late] = seed_account(emulator, DEFAULT_ACCOUNT, [SeedUser('zed-idle-90d', [
        SeedKey(200, used=90)])], through_api=False)
    ran(custodian_run(emulator, s3_url('dated'), REPORT))
    data, run = report('s3://%s/dated' % BUCKET, emu=emulator)
    assert run.returncode == 0, run.stderr
    assert {r['key_id'] for r in data['rows']} == \
        {r['key_id'] for r in old['rows']} | {late.keys[0].key_id}
    folders = {k.rsplit('/', 1)[0] for k in keys_under(s3, 'dated')}
    [shown] = data['runs']
    assert shown['folder'] == max(f.split('/', 1)[1] for f in folders)
    assert shown['older'] == len(folders) - 1 >= 1
    text = run_command(['c7n-unused-keys', 'report', 's3://%s/dated' % BUCKET, '--width',
                        '200'], emulator).stdout
    assert 'folder read (latest of its policy)' in text and shown['folder'] in text
    # However narrow the table, the folder is never cut.
    narrow = run_command(['c7n-unused-keys', 'report', 's3://%s/dated' % BUCKET, '--width',
                          '40'], emulator).stdout
    assert shown['folder'] in narrow
    # A synced copy picks the same run.
    data, _ = report(download(s3, 'dated', tmp_path / 'copy'))
    assert [r['folder'] for r in data['runs']] == [shown['folder']]


def test_runs_in_the_same_hour_share_a_folder_and_the_last_one_is_read(outputs, emulator):
    """c7n names the folder by the hour: a later run of that hour overwrites the files it
    writes and leaves the others. A fixed date in c7n's URL template puts both runs in
    one folder, as two runs within an hour are."""
    _, s3 = outputs
    url = 's3://%s/same/{policy_name}/2030/01/01/00?region=us-east-1' % BUCKET
    ran(custodian_run(emulator, url, REPORT))
    folder = 'same/%s/2030/01/01/00' % POLICY
    assert folder + '/resources.json.gz' in keys_under(s3, 'same')
    failed = custodian_run(emulator, url, REPORT, env=faults('ListUsers=AccessDenied'))
    assert failed.returncode != 0
    # The first run's resources.json is still there, and is not this run's.
    assert folder + '/resources.json.gz' in keys_under(s3, 'same')
    data, run = report('s3://%s/same' % BUCKET, emu=emulator, env={'TZ': 'JST-9'})
    assert run.returncode == 2 and data['rows'] == []
    assert data['failures'] == [{
        'account': DEFAULT_ACCOUNT, 'policy': POLICY,
        'reason': 'the policy stopped before its filters finished: ClientError: An error '
                  'occurred (AccessDenied) when calling the ListUsers operation: injected '
                  'by the tests'}]
    assert [(r['folder'], r['older']) for r in data['runs']] == [
        (folder.split('/', 1)[1], 0)]


def test_a_per_account_prefix_names_its_account(outputs, emulator):
    data, run = report('s3://%s/per-account' % BUCKET, emu=emulator)
    assert run.returncode == 0, run.stderr
    assert data['layout'] == 'per-account'
    assert {r['account'] for r in data['rows']} == {IDS['dev']} and len(data['rows']) == 7
    # With the accounts file: the account's name, and the accounts without output.
    data, run = report('s3://%s/per-account' % BUCKET, '-c', CONFIG, emu=emulator)
    assert run.returncode == 2
    assert {r['account'] for r in data['rows']} == {'dev'}
    assert sorted(f['account'] for f in data['failures']) == ['prod', 'staging']


def test_a_c7n_org_deployment_is_deployed_per_account(outputs, emulator):
    tmp, _ = outputs
    data, run = report(tmp / 'org-deploy', '-c', CONFIG)
    assert data['layout'] == 'c7n-org' and data['rows'] == []
    assert data['deployed'] == [{'account': 'dev', 'policy': DEPLOYED, 'region': 'us-east-1',
                                 'output': s3_url('lambda')}]
    # Only the accounts the run left out fail, not the deployment.
    assert run.returncode == 2
    assert sorted(f['account'] for f in data['failures']) == ['prod', 'staging']
    assert report(tmp / 'org-deploy')[1].returncode == 0


@pytest.mark.parametrize('where', ['s3', 'folder'])
def test_a_lambda_deployment_is_deployed_not_failed(outputs, emulator, where):
    tmp, _ = outputs
    out = 's3://%s/deploy' % BUCKET if where == 's3' else tmp / 'deploy'
    # S3: read in a time zone where the log's times would not match the run's start;
    # a blob output's log is all one run's.
    data, run = report(out, '--fail-on', 'errors', emu=emulator,
                       env={'TZ': 'JST-9'} if where == 's3' else None)
    assert run.returncode == 0, run.stderr
    assert data['failures'] == [] and data['rows'] == []
    assert data['deployed'] == [{'account': DEFAULT_ACCOUNT, 'policy': DEPLOYED,
                                 'region': 'us-east-1', 'output': s3_url('lambda')}]
    assert data['totals']['all accounts'] == {'unused': 0, 'deployed policies': 1}
    text = run_command(['c7n-unused-keys', 'report', out, '--width', '200'], emulator).stdout
    [line] = [t for t in text.splitlines() if DEPLOYED in t and 'UTC' not in t]
    assert line.split() == [DEFAULT_ACCOUNT, DEPLOYED, 'us-east-1', s3_url('lambda')]
    assert 'DEPLOYED account' in text and 'FAILED' not in text


def test_a_failed_deployment_is_a_failure(outputs):
    tmp, _ = outputs
    data, run = report(tmp / 'deploy-failed')
    assert run.returncode == 2 and data['deployed'] == []
    [failure] = data['failures']
    assert failure['policy'] == DEPLOYED + '-bad'
    assert failure['reason'].startswith('the deployment of its Lambda function failed: ')
    assert 'CreateFunction' in failure['reason']


def test_an_unreadable_bucket_is_an_error(emulator):
    data, run = report('s3://no-such-bucket-here/x', emu=emulator)
    assert run.returncode == 2 and data is None
    assert 'cannot read s3://no-such-bucket-here/x' in run.stderr and 'NoSuchBucket' in run.stderr


# The report in a fresh interpreter: argv[1] the output, argv[2:] packages it must not import.
CHECK = ('import sys\n'
         'from c7n_unused_keys.cli import main\n'
         'code = main(["report", sys.argv[1], "--format", "json"])\n'
         'found = sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[2:])\n'
         'assert not found, found\n'
         'sys.exit(code)\n')


def test_a_local_report_imports_neither_c7n_nor_boto3(outputs, tmp_path):
    """In a fresh interpreter, on a folder and on a gzipped copy of an S3 output."""
    tmp, s3 = outputs
    for out in (tmp / 'org', download(s3, 'org', tmp_path / 'copy')):
        run = run_command([sys.executable, '-c', CHECK, out, 'c7n', 'boto3', 'botocore'], None)
        assert run.returncode == 0, run.stderr
        assert len(json.loads(run.stdout)['rows']) == 21


def test_an_s3_report_imports_boto3_but_not_c7n(outputs, emulator):
    run = run_command([sys.executable, '-c', CHECK, 's3://%s/org' % BUCKET, 'c7n'], emulator)
    assert run.returncode == 0, run.stderr
    assert len(json.loads(run.stdout)['rows']) == 21
    run = run_command([sys.executable, '-c', CHECK, 's3://%s/org' % BUCKET, 'boto3'], emulator)
    assert run.returncode != 0 and "['boto3'" in run.stderr
