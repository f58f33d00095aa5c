"""`c7n-unused-keys report` on a folder that several runs shared: Lambda's retries of a
failed run land in the same hour's folder, and a local `-s out` may be reused. Every run's
records are read, not only the last run's."""
import json
from datetime import datetime, timezone
from pathlib import Path

import boto3

from c7n_unused_keys.names import RUN_RECORDS
from c7n_unused_keys.report import files, layout, output
from c7n_unused_keys.report.s3 import read_s3
from c7n_unused_keys_sandbox.seed import SeedKey, SeedUser, seed_account
from conftest import DEFAULT_ACCOUNT, ROOT, custodian_run, faults, run_command
from helpers import account_state

RETIRE = ROOT / 'policies' / 'unused-access-keys-retire.yml'
NAME = 'unused-access-keys-retire'
DUE = ('alice-due', 'bob-due', 'carol-due')
PROTECTED = 'dora-protected'
# An SCP that protects one key: each of its deletes answers AccessDenied.
DENIED = faults('DeleteAccessKey=AccessDenied/%s' % PROTECTED)
BUCKET = 'c7n-unused-keys-report-runs'


def day31(emu):
    """Four keys deactivated 31 days ago (due for deletion) and one in use."""
    users = seed_account(emu, DEFAULT_ACCOUNT, [
        SeedUser(name, [SeedKey(300, used=100, status='Inactive', marker=31)])
        for name in DUE + (PROTECTED,)] + [
        SeedUser('erin-in-use', [SeedKey(300, used=1)])], through_api=False)
    return {u.name: u.keys[0].key_id for u in users}


def as_json(out, *args, emu=None):
    run = run_command(['c7n-unused-keys', 'report', out, '--format', 'json'] + list(args), emu)
    return json.loads(run.stdout) if run.stdout else None, run


def steps(data):
    return sorted((r['user'], r['step'], tuple(r.get('runs') or ())) for r in data['rows'])


def test_every_run_of_a_reused_folder_is_read(sandbox, tmp_path):
    ids = day31(sandbox)
    out = tmp_path / 'out'
    # Day 31, one scheduled run tried three times: the first deletes three keys and fails
    # on the protected one, its retries fail on it again.
    for _ in range(3):
        run = custodian_run(sandbox, out, RETIRE, env=DENIED)
        assert run.returncode != 0 and 'AccessDenied' in run.stderr
    assert set(account_state(sandbox)) == set(DUE) | {PROTECTED, 'erin-in-use'}
    assert all(account_state(sandbox)[u].keys == {} for u in DUE)
    data, rep = as_json(out)
    assert steps(data) == sorted([(u, 'deleted', (1,)) for u in DUE] +
                                 [(PROTECTED, 'failed', (1, 2, 3))])
    [protected] = [r for r in data['rows'] if r['user'] == PROTECTED]
    assert protected['key_id'] == ids[PROTECTED] and 'AccessDenied' in protected['error']
    # The filter's view (last run) joins the latest record.
    assert protected['status'] == 'Inactive' and protected['idle_days'] == 100
    assert rep.returncode == 2
    assert data['failures'] == [{'account': DEFAULT_ACCOUNT, 'policy': NAME,
                                 'reason': '1 keys failed'}]
    [read] = data['runs']
    assert (read['folder'], read['read'], read['not_read']) == (NAME, 3, 0)
    assert data['totals'][DEFAULT_ACCOUNT] == {'unused': 1, 'deleted': 3, 'failed': 1,
                                              'failed policies': 1}

    # The SCP is lifted: the next run into the folder deletes the key. An earlier run's
    # failure stays shown, with its runs; the key's latest record decides the exit code.
    run = custodian_run(sandbox, out, RETIRE)
    assert run.returncode == 0, run.stderr
    assert account_state(sandbox)[PROTECTED].keys == {}
    data, rep = as_json(out, '--fail-on', 'errors')
    assert steps(data) == sorted([(u, 'deleted', (1,)) for u in DUE] + [
        (PROTECTED, 'failed', (1, 2, 3)), (PROTECTED, 'deleted', (4,))])
    assert (rep.returncode, data['failures']) == (0, [])
    assert [(r['read'], r['not_read']) for r in data['runs']] == [(4, 0)]
    assert as_json(out, '--fail-on', 'actions')[1].returncode == 1
    table = run_command(['c7n-unused-keys', 'report', out, '--width', '200'], None).stdout
    lines = table.splitlines()
    assert lines[0].split()[-1] == 'runs'
    assert [line.split()[-1] for line in lines if ids[PROTECTED] in line] == ['1-3', '4']
    # The runs section: ... runs read, then the folder, never cut.
    assert any(line.split()[-2:] == ['4', NAME] for line in lines if 'runs read' not in line)


def s3():
    return boto3.client('s3', region_name='us-east-1')


def test_runs_sharing_an_s3_hour_folder_are_all_read(sandbox, tmp_path, monkeypatch):
    """The form Lambda writes: gzipped files in the hour's folder; run 1 fails on a key,
    the retry deletes it."""
    for k, v in sandbox.env().items():
        monkeypatch.setenv(k, v)
    client = s3()
    client.create_bucket(Bucket=BUCKET)
    # A fixed hour in c7n's URL template puts both runs in one folder, as a retry is.
    url = 's3://%s/retire/{policy_name}/2030/01/01/00?region=us-east-1' % BUCKET
    day31(sandbox)
    assert custodian_run(sandbox, url, RETIRE, env=DENIED).returncode != 0
    again = custodian_run(sandbox, url, RETIRE)
    assert again.returncode == 0, again.stderr
    keys = [o['Key'] for o in client.list_objects_v2(Bucket=BUCKET)['Contents']]
    folder = 'retire/%s/2030/01/01/00/' % NAME
    runs = [k for k in keys if k.startswith(folder + 'retire-access-keys-')]
    assert len(runs) == 2 and all(k.endswith('.json.gz') for k in runs)
    expected = sorted([(u, 'deleted', (1,)) for u in DUE] + [
        (PROTECTED, 'failed', (1,)), (PROTECTED, 'deleted', (2,))])
    data, rep = as_json('s3://%s/retire' % BUCKET, '--fail-on', 'errors', emu=sandbox)
    assert rep.returncode == 0, rep.stderr
    assert steps(data) == expected
    assert [(r['folder'], r['read']) for r in data['runs']] == [(folder[:-1].split('/', 1)[1],
                                                                   2)]
    # A synced copy reads the same.
    copy = tmp_path / 'copy'
    for key in keys:
        path = copy / key[len('retire/'):]
        path.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(BUCKET, key, str(path))
    data, rep = as_json(copy)
    assert rep.returncode == 0 and steps(data) == expected
    # An object above the size bound is fetched only up to it, then refused.
    monkeypatch.setattr(files, 'MAX_FILE_BYTES', 200)
    bounded = read_s3('s3://%s/retire' % BUCKET)
    assert [f['reason'] for f in bounded.failures] == [
        '%s/2030/01/01/00/metadata.json.gz: larger than 200 bytes decompressed, the most the '
        'report reads of a file' % NAME]
    for key in keys:
        client.delete_object(Bucket=BUCKET, Key=key)
    client.delete_bucket(Bucket=BUCKET)


def minimal_run(folder: Path, number: int, records, error=None, latest=False):
    """The files one run of the retire policy leaves, as the action writes them."""
    start = 1_900_000_000 + number * 60
    run_id = 'run-%04d' % number
    stamp = '20300101T00%02d%02d000000Z' % divmod(number, 60)
    (folder / (RUN_RECORDS % (stamp, run_id))).write_text(json.dumps({
        'ExecutionId': run_id, 'Start': start, 'Policy': NAME, 'Error': error,
        'Records': [dict(r, ExecutionId=run_id) for r in records]}))
    if latest:
        (folder / 'metadata.json').write_text(json.dumps({
            'execution': {'id': run_id, 'start': start}, 'config': {'account_id': '1'},
            'policy': {'name': NAME}, 'metrics': [{'MetricName': 'ResourceCount',
                                                   'Value': 0}]}))
        (folder / 'resources.json').write_text('[]')


def record(user, step='deleted', error=None):
    return {'UserName': user, 'AccessKeyId': 'AKIA' + user.upper().ljust(16, 'X')[:16],
            'Step': step, 'At': '2030-01-01T00:00:00+00:00', 'DeleteOn': None,
            'Error': error, 'ApprovalTag': None}


def test_the_runs_read_are_bounded_and_a_failed_run_stays_failed(tmp_path):
    folder = tmp_path / NAME
    folder.mkdir()
    total = layout.MAX_RUN_FILES + 5
    for n in range(1, total + 1):
        minimal_run(folder, n, [record('user-%03d' % n)], latest=n == total,
                    error='circuit breaker' if n == total - 1 else None)
    data = output.read(tmp_path)
    [read] = data.runs
    assert (read['read'], read['not_read']) == (layout.MAX_RUN_FILES, 5)
    assert sorted(r.user for r in data.rows) == ['user-%03d' % n for n in range(6, total + 1)]
    # A run that failed as a whole (its breaker tripped) is a failure, also when a later
    # run succeeded.
    started = datetime.fromtimestamp(1_900_000_000 + (total - 1) * 60, timezone.utc)
    assert [f['reason'] for f in data.failures] == [
        'run %d of %d read (started %s) failed: circuit breaker' % (
            layout.MAX_RUN_FILES - 1, layout.MAX_RUN_FILES,
            started.strftime('%Y-%m-%d %H:%M:%S UTC'))]
