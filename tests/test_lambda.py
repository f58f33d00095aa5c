"""The policies as Lambda functions: the exact zip c7n builds, its handler run the way
Lambda runs it (`python -I -S`, boto3 only), deployment with c7n-org, and validation.

A function's results are compared with `custodian run` of the shipped pull-mode
policy on a twin account: same users, same dates, same answers.
"""
import functools
import gzip
import json
import re
from datetime import datetime, timezone

import pytest
import yaml

from c7n_unused_keys_sandbox.functions import (FUNCTION_ROLE, OUTPUT_BUCKET, deployed_code,
                                          function_env, invoke, prepare_account,
                                          prepare_bucket, runtime_folder, scheduled_event,
                                          unpack)
from c7n_unused_keys.lambda_mode import HANDLER, PACKAGE
from c7n_unused_keys_sandbox.seed import organisation, seed_account
from conftest import DEFAULT_ACCOUNT, ROOT, custodian_run, read_json, run_command

LAMBDA = ROOT / 'lambda'
FUNCTION_ACCOUNT = '111111111111'   # runs the function; DEFAULT_ACCOUNT runs custodian
REPORT = 'unused-access-keys-report'
RETIRE = 'unused-access-keys-retire'


@pytest.fixture
def twins(sandbox):
    """FUNCTION_ACCOUNT and DEFAULT_ACCOUNT seeded alike, a role for the functions, the
    output bucket."""
    now = datetime.now(timezone.utc)
    for account in (FUNCTION_ACCOUNT, DEFAULT_ACCOUNT):
        seed_account(sandbox, account, organisation('dev', now, ordinary=10), through_api=False)
    prepare_account(sandbox, FUNCTION_ACCOUNT)
    prepare_bucket(sandbox, FUNCTION_ACCOUNT)
    return sandbox


@pytest.fixture(scope='module')
def runtime(tmp_path_factory):
    return runtime_folder(tmp_path_factory.mktemp('runtime'))


def load(path, account=FUNCTION_ACCOUNT, **mode):
    """The policies of a file as c7n-org loads them for `account`, variables expanded;
    `mode` overrides options of their mode (None removes one)."""
    from c7n.config import Config
    from c7n.policy import PolicyCollection
    from c7n.resources import load_resources
    import c7n_unused_keys.register  # noqa: F401
    load_resources(('aws.iam-user',))
    data = yaml.safe_load(path.read_text())
    for p in data['policies']:
        p['mode'].update(mode)
        p['mode'] = {k: v for k, v in p['mode'].items() if v is not None}
    config = Config.empty(account_id=account, region='us-east-1')
    policies = list(PolicyCollection.from_data(data, config))
    for p in policies:
        p.expand_variables(p.get_variables())
    return policies


@functools.lru_cache(maxsize=None)
def build_zip(path, index: int = 0) -> bytes:
    """The exact zip c7n would upload for the policy `index` of `path` (built once per
    test process: c7n's packaging reads and compresses all of c7n)."""
    from c7n.mu import PolicyLambda
    return PolicyLambda(load(path)[index]).get_archive().get_bytes()


def every_function():
    """(path, index) of each policy of lambda/: c7n-org deploys one function each."""
    return [(path, i) for path in sorted(LAMBDA.glob('*.yml'))
            for i in range(len(yaml.safe_load(path.read_text())['policies']))]


def run_function(emu, code: bytes, tmp_path, runtime, handler=HANDLER):
    task = unpack(code, tmp_path / 'task')
    env = function_env(emu.env(), FUNCTION_ACCOUNT, function_name='custodian-test')
    proc = invoke(task, runtime, handler, scheduled_event(FUNCTION_ACCOUNT, 'us-east-1', 'r'),
                  env, timeout=240)
    return proc


def outputs(emu, policy) -> dict:
    """{file name: parsed content} of the function's latest output in the bucket."""
    import boto3
    s3 = boto3.client('s3', endpoint_url=emu.url, region_name='us-east-1',
                      aws_access_key_id='testing', aws_secret_access_key='testing')
    prefix = '%s/%s/' % (FUNCTION_ACCOUNT, policy)
    found = {}
    for obj in s3.list_objects_v2(Bucket=OUTPUT_BUCKET, Prefix=prefix).get('Contents', []):
        name = obj['Key'].rsplit('/', 1)[1]
        assert name.endswith('.gz'), obj['Key']
        body = gzip.decompress(s3.get_object(Bucket=OUTPUT_BUCKET, Key=obj['Key'])['Body'].read())
        found[name[:-3]] = body.decode() if name.endswith('.log.gz') else json.loads(body)
    return found


def matched(resources) -> set:
    """(user, key's case) of every matched key: comparable across twin accounts."""
    return {(r['UserName'], k['CreateDate'][:10], k['Reason'])
            for r in resources for k in r['c7n:unused-access-keys']}


def steps(records) -> set:
    return {(r['UserName'], r['Step']) for r in records}


def twin_state(emu, account) -> dict:
    """Per user: key statuses and tag keys (key ids left out), comparable across twin
    accounts."""
    b = emu.backend(account)
    return {u.name: (sorted(k.status for k in u.access_keys),
                     sorted(re.sub(r'AKIA[0-9A-Z]{16}', 'KEY', t['Key'])
                            for t in b.list_user_tags(u.name)))
            for u in b.users.values()}


def test_the_lambda_policies_are_the_pull_policies_plus_a_mode():
    for path, i in every_function():
        fn = yaml.safe_load(path.read_text())['policies'][i]
        pull = yaml.safe_load((ROOT / 'policies' / path.name).read_text())['policies'][i]
        mode = fn.pop('mode')
        assert fn == pull, (path.name, i)
        assert mode['type'] == 'periodic' and mode['schedule'] == 'rate(1 day)'
        assert mode['packages'] == [PACKAGE] and mode['handler'] == HANDLER
        assert mode['role'] == 'arn:aws:iam::{account_id}:role/%s' % FUNCTION_ROLE
        assert mode['execution-options']['output_dir'] == \
            's3://%s/{account_id}?region=us-east-1' % OUTPUT_BUCKET
        assert fn['conditions'] == [{'type': 'value', 'key': 'region', 'value': 'us-east-1'}]


def test_the_zip_carries_no_sandbox_and_nothing_that_imports_moto():
    """The sandbox is a package of its own: `packages: [c7n_unused_keys]` leaves it out."""
    import ast
    import io
    import zipfile
    for path, i in every_function():
        z = zipfile.ZipFile(io.BytesIO(build_zip(path, i)))
        names = z.namelist()
        ours = [n for n in names if n.startswith('c7n_unused_keys')]
        assert ours and all(n.startswith('c7n_unused_keys/') for n in ours), ours
        assert not any('sandbox' in n for n in names)
        for name in (n for n in names if n.endswith('.py')):
            source = z.read(name)
            if b'moto' not in source:
                continue   # no import can name it
            tree = ast.parse(source)
            imported = {a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                        for a in node.names} | {
                node.module or '' for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom)}
            assert not any(m == 'moto' or m.startswith('moto.') for m in imported), name


def test_the_zip_carries_the_plugin_and_names_its_handler():
    import io
    import zipfile
    for path, i in every_function():
        names = zipfile.ZipFile(io.BytesIO(build_zip(path, i))).namelist()
        assert 'c7n_unused_keys/handler.py' in names and 'c7n_unused_keys/register.py' in names
        assert 'c7n/handler.py' in names
        config = json.loads(zipfile.ZipFile(io.BytesIO(build_zip(path, i))).read(
            'config.json'))
        (policy,) = config['policies']
        assert policy['mode']['handler'] == HANDLER
        # c7n-org's variables are filled in before the zip is built.
        assert policy['mode']['role'] == \
            'arn:aws:iam::%s:role/%s' % (FUNCTION_ACCOUNT, FUNCTION_ROLE)
        assert policy['mode']['execution-options']['output_dir'].startswith(
            's3://%s/%s?' % (OUTPUT_BUCKET, FUNCTION_ACCOUNT))


def test_the_report_function_finds_what_custodian_run_finds(twins, tmp_path, runtime):
    proc = run_function(twins, build_zip(LAMBDA / (REPORT + '.yml')), tmp_path, runtime)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ran = json.loads(proc.stdout.strip().splitlines()[-1])
    assert ran['result'] is True
    # What Lambda's runtime holds, and nothing from this environment's site-packages.
    assert not [p for p in ran['sys_path'] if 'site-packages' in p]
    assert not {'yaml', 'jsonschema', 'moto', 'c7n_unused_keys_hook'} & set(ran['modules'])

    out = outputs(twins, REPORT)
    assert {'resources.json', 'metadata.json', 'custodian-run.log'} <= set(out)
    local = custodian_run(twins, tmp_path / 'local', ROOT / 'policies' / (REPORT + '.yml'))
    assert local.returncode == 0, local.stderr[-3000:]
    expected = matched(read_json(tmp_path / 'local' / REPORT / 'resources.json'))
    assert expected, 'the seeding has unused keys'
    assert matched(out['resources.json']) == expected

    # The report reads the function's output back from the bucket.
    read = run_command(['c7n-unused-keys', 'report', 's3://%s' % OUTPUT_BUCKET,
                        '--format', 'json'], twins)
    assert read.returncode == 0, read.stderr
    rows = json.loads(read.stdout)['rows']
    assert {(r['account_id'], r['user'], r['key_id']) for r in rows} == {
        (FUNCTION_ACCOUNT, r['UserName'], k['AccessKeyId'])
        for r in out['resources.json'] for k in r['c7n:unused-access-keys']}


def test_the_retire_function_retires_as_custodian_run_does(twins, tmp_path, runtime):
    code = build_zip(LAMBDA / (RETIRE + '.yml'))
    pull = ROOT / 'policies' / (RETIRE + '.yml')
    for day, shift in (('day0', 0), ('day31', 31)):
        if shift:
            for account in (FUNCTION_ACCOUNT, DEFAULT_ACCOUNT):
                twins.advance(account, shift)
        proc = run_function(twins, code, tmp_path / day, runtime)
        assert proc.returncode == 0, proc.stderr[-3000:]
        local = custodian_run(twins, tmp_path / day / 'local', pull)
        assert local.returncode == 0, local.stderr[-3000:]
        expected = steps(read_json(tmp_path / day / 'local' / RETIRE /
                                   'action-retire-access-keys'))
        assert steps(outputs(twins, RETIRE)['action-retire-access-keys']) == expected
        assert twin_state(twins, FUNCTION_ACCOUNT) == twin_state(twins, DEFAULT_ACCOUNT)
    # The timeline did happen: keys were deactivated on day 0 and deleted on day 31.
    day0 = {s for _, s in steps(read_json(
        tmp_path / 'day0' / 'local' / RETIRE / 'action-retire-access-keys'))}
    assert 'deactivated' in day0
    assert 'deleted' in {s for _, s in expected}
    # Each invocation also wrote its records to a file of its own, gzipped in the bucket:
    # a later run in the same hour's folder (a retry) does not overwrite them.
    runs = sorted((v['Start'], steps(v['Records'])) for name, v in outputs(twins, RETIRE).items()
                  if name.startswith('retire-access-keys-'))
    assert [s for _, s in runs] == [steps(read_json(
        tmp_path / day / 'local' / RETIRE / 'action-retire-access-keys')) for day in ('day0',
                                                                               'day31')]


def test_c7n_default_handler_cannot_run_the_policy(twins, tmp_path, runtime):
    """The same zip with c7n's own handler: the plugin is in it, but never registered."""
    code = build_zip(LAMBDA / (REPORT + '.yml'))
    proc = run_function(twins, code, tmp_path, runtime, handler='custodian_policy.run')
    assert proc.returncode != 0
    assert "Invalid filter type" in proc.stderr, proc.stderr[-2000:]
    assert outputs(twins, REPORT) == {}


def test_without_packages_the_handler_is_not_in_the_zip(twins, tmp_path, runtime):
    """Built without `packages`, as c7n would (validation refuses such a policy; this
    shows the clean interpreter hides site-packages)."""
    from c7n.mu import PolicyLambda
    (policy,) = load(LAMBDA / (REPORT + '.yml'))
    policy.data['mode'].pop('packages')
    code = PolicyLambda(policy).get_archive().get_bytes()
    proc = run_function(twins, code, tmp_path, runtime)
    assert proc.returncode != 0
    assert "No module named 'c7n_unused_keys'" in proc.stderr, proc.stderr[-2000:]


def functions(emu, account, region):
    from c7n_unused_keys_sandbox.emulator import account_client
    fns = {f['FunctionName']: f for f in account_client(
        emu.env(), account, 'lambda', region).list_functions()['Functions']}
    rules = [r['Name'] for r in account_client(
        emu.env(), account, 'events', region).list_rules()['Rules']]
    return fns, rules


ORG = {'dev': '111111111111', 'staging': '222222222222', 'prod': '333333333333'}


def test_c7n_org_deploys_one_function_per_account_in_us_east_1_updates_and_removes_it(
        sandbox, tmp_path):
    for account in ORG.values():
        prepare_account(sandbox, account)
    prepare_bucket(sandbox, ORG['dev'])
    accounts = ROOT / 'custodian.yml'
    policy = LAMBDA / (REPORT + '.yml')
    name = 'custodian-' + REPORT
    run = run_command(['c7n-org', 'run', '-c', accounts, '-s', tmp_path / 'deploy',
                       '-u', policy], sandbox)
    assert run.returncode == 0, run.stderr[-3000:]
    first = {}
    for account in ORG.values():
        fns, rules = functions(sandbox, account, 'us-east-1')
        assert list(fns) == [name] and rules == [name]
        assert fns[name]['Handler'] == HANDLER
        assert fns[name]['Role'] == 'arn:aws:iam::%s:role/%s' % (account, FUNCTION_ROLE)
        first[account] = fns[name]['CodeSha256']
        assert functions(sandbox, account, 'us-west-2') == ({}, [])
        # The uploaded zip is the one c7n builds here, for that account.
        import io
        import zipfile
        uploaded = zipfile.ZipFile(io.BytesIO(deployed_code(account, 'us-east-1', name)))
        built = zipfile.ZipFile(io.BytesIO(build_zip(policy)))
        assert sorted(uploaded.namelist()) == sorted(built.namelist())
        assert json.loads(uploaded.read('config.json'))['policies'][0]['mode']['role'] == \
            fns[name]['Role']

    # Run again with a changed threshold: the functions are updated in place.
    changed = yaml.safe_load(policy.read_text())
    changed['policies'][0]['filters'][0]['days'] = 60
    edited = tmp_path / policy.name
    edited.write_text(yaml.safe_dump(changed))
    run = run_command(['c7n-org', 'run', '-c', accounts, '-s', tmp_path / 'update',
                       '-u', edited], sandbox)
    assert run.returncode == 0, run.stderr[-3000:]
    for account in ORG.values():
        fns, rules = functions(sandbox, account, 'us-east-1')
        assert list(fns) == [name] and rules == [name]
        assert fns[name]['CodeSha256'] != first[account]
        config = json.loads(zipfile.ZipFile(io.BytesIO(
            deployed_code(account, 'us-east-1', name))).read('config.json'))
        assert config['policies'][0]['filters'][0]['days'] == 60

    # Removed: a dry run first, then one account, then the rest.
    remove = ['c7n-unused-keys', 'remove-functions', '-c', accounts, LAMBDA]
    run = run_command(remove + ['--dryrun'], sandbox)
    assert run.returncode == 0, run.stderr
    assert sorted(run.stdout.splitlines()[:-1]) == sorted(
        'would remove %s us-east-1 %s' % (a, name) for a in ORG)
    assert all(list(functions(sandbox, a, 'us-east-1')[0]) == [name] for a in ORG.values())
    run = run_command(remove + ['-a', 'dev'], sandbox)
    assert run.returncode == 0 and run.stdout.splitlines() == [
        'removing dev us-east-1 %s' % name, 'removed 1 function(s)'], run.stderr
    assert functions(sandbox, ORG['dev'], 'us-east-1') == ({}, [])
    assert list(functions(sandbox, ORG['prod'], 'us-east-1')[0]) == [name]
    # -r narrows the regions; an accounts file without `regions` means c7n-org's defaults.
    run = run_command(remove + ['-r', 'us-west-2'], sandbox)
    assert run.returncode == 0 and run.stdout.splitlines() == ['removed 0 function(s)']
    regionless = yaml.safe_load(accounts.read_text())
    for account in regionless['accounts']:
        del account['regions']
    (tmp_path / 'regionless.yml').write_text(yaml.safe_dump(regionless))
    run = run_command(['c7n-unused-keys', 'remove-functions', '-c', tmp_path / 'regionless.yml',
                       LAMBDA], sandbox)
    assert run.returncode == 0 and run.stdout.splitlines()[-1] == 'removed 2 function(s)', \
        run.stderr
    assert all(functions(sandbox, a, r) == ({}, [])
               for a in ORG.values() for r in ('us-east-1', 'us-west-2'))


@pytest.mark.parametrize('args,says', [
    (['policies'], 'no Lambda-mode policy in policies'),
    (['lambda', '-a', 'nosuch'], 'no account of custodian.yml is named nosuch'),
    (['nosuch.yml'], 'no such file or folder: nosuch.yml'),
    (['lambda', '-c', 'nosuch.yml'], 'no such file or folder: nosuch.yml'),
])
def test_remove_functions_refuses_bad_input_and_touches_nothing(sandbox, args, says):
    before = sandbox.requests
    run = run_command(['c7n-unused-keys', 'remove-functions'] + args, sandbox)
    assert run.returncode == 1 and says in run.stderr, run.stderr
    assert sandbox.requests == before
