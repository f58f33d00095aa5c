"""`c7n-unused-keys report` on damaged or hostile output: each damaged file is a FAILED
row naming it, the healthy accounts are shown, the exit code is 2; reads are bounded;
symbolic links are not followed."""
import gzip
import json
import os
import shutil
import sys

import pytest

from c7n_unused_keys.accounts import load_accounts
from c7n_unused_keys_sandbox.seed import seed_organisation
from conftest import ROOT, run_command

CONFIG = ROOT / 'custodian.yml'
RETIRE = ROOT / 'policies' / 'unused-access-keys-retire.yml'
NAME = 'unused-access-keys-retire'
HEALTHY = ('dev', 'staging')
DAMAGED = 'prod/us-east-1/' + NAME


@pytest.fixture(scope='module')
def real(emulator, tmp_path_factory):
    """One real c7n-org run of the retire policy over the three accounts."""
    out = tmp_path_factory.mktemp('damaged') / 'real'
    emulator.reset()
    seed_organisation(emulator, load_accounts(CONFIG), ordinary=0, through_api=False)
    run = run_command(['c7n-org', 'run', '-c', CONFIG, '-s', out, '--cache-period', '0',
                       '-u', RETIRE], emulator)
    assert run.returncode == 0, run.stderr
    yield out
    emulator.reset()


def as_json(out, *args):
    run = run_command(['c7n-unused-keys', 'report', out, '--format', 'json'] + list(args), None)
    return json.loads(run.stdout) if run.stdout else None, run


def healthy_rows(data):
    return sorted((r['account'], r['user'], r['key_id'], r['step']) for r in data['rows']
                  if r['account'] in HEALTHY)


def run_file(folder):
    [found] = [p for p in folder.iterdir() if p.name.startswith('retire-access-keys-')]
    return found


def cut(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path.name


def empty(path):
    path.write_bytes(b'')
    return path.name


def gzip_all(folder):
    """As an S3 output leaves them (`aws s3 sync`): every file gzipped."""
    for path in list(folder.iterdir()):
        path.with_name(path.name + '.gz').write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()


def not_gzip(folder):
    gzip_all(folder)
    (folder / 'resources.json.gz').write_bytes(b'[{"UserName": "not gzip at all"}]')
    return 'resources.json.gz'


def write(folder, name, value):
    (folder / name).write_text(json.dumps(value))
    return name


def metadata_with(folder, **changes):
    meta = json.loads((folder / 'metadata.json').read_text())
    meta.update(changes)
    return write(folder, 'metadata.json', meta)


# Each: (damage it does to the prod account's folder -> the file's name, words of the reason)
DAMAGE = {
    'resources cut short': (lambda f: cut(f / 'resources.json'), 'not valid JSON'),
    'resources empty': (lambda f: empty(f / 'resources.json'), 'not valid JSON'),
    'not gzip': (not_gzip, 'not gzip'),
    'gzip cut short': (lambda f: gzip_all(f) or cut(f / 'metadata.json.gz'),
                       'cut short'),
    'metadata a list': (lambda f: write(f, 'metadata.json', []), 'not a JSON object'),
    'metadata metrics an object': (lambda f: metadata_with(f, metrics={'ResourceCount': 1}),
                                   'metrics'),
    'metadata start a string': (lambda f: metadata_with(f, execution={'id': 'x',
                                                                      'start': 'noon'}),
                                'execution.start'),
    'resources an object': (lambda f: write(f, 'resources.json', {'UserName': 'x'}),
                            'not a JSON array'),
    'annotation of the wrong shape': (lambda f: write(f, 'resources.json', [
        dict(r, **{'c7n:unused-access-keys': [{'AccessKeyId': 7}]})
        for r in json.loads((f / 'resources.json').read_text())]), 'AccessKeyId'),
    'action records cut short': (lambda f: cut(f / 'action-retire-access-keys'),
                                 'not valid JSON'),
    'run records cut short': (lambda f: cut(run_file(f)), 'not valid JSON'),
    'run records of the wrong shape': (
        lambda f: write(f, run_file(f).name, {'ExecutionId': 'x', 'Start': 1,
                                              'Records': [{'Step': 1}]}),
        'Records'),
}


@pytest.mark.parametrize('kind', sorted(DAMAGE))
def test_a_damaged_file_is_a_failed_row_naming_it(real, tmp_path, kind):
    baseline, _ = as_json(real)
    out = tmp_path / 'out'
    shutil.copytree(real, out)
    damage, words = DAMAGE[kind]
    name = damage(out / DAMAGED)
    data, run = as_json(out)
    assert run.returncode == 2, run.stderr
    assert 'Traceback' not in run.stderr
    failures = [f for f in data['failures'] if f['account'] == 'prod']
    assert [f['reason'].split(': ')[0] for f in failures] == ['%s/%s' % (DAMAGED, name)]
    assert words in failures[0]['reason']
    assert healthy_rows(data) == healthy_rows(baseline) != []
    assert [f for f in data['failures'] if f['account'] != 'prod'] == []
    # The table says so too.
    text = run_command(['c7n-unused-keys', 'report', out, '--width', '250'], None)
    assert text.returncode == 2 and '%s/%s' % (DAMAGED, name) in text.stdout
    assert all(account in text.stdout for account in HEALTHY)


# The report in a fresh interpreter, then its peak memory (VmHWM, KiB).
# VmHWM, the peak of this process's own memory since its exec: getrusage's ru_maxrss
# keeps the peak of the process it was forked from (Linux carries it across exec), so
# it measured the test worker as much as the report.
MEASURE = ('import sys\n'
           'from c7n_unused_keys.cli import main\n'
           'code = main(["report", sys.argv[1], "--format", "json"])\n'
           'peak = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")]\n'
           'print(peak[0].split()[1], file=sys.stderr)\n'
           'sys.exit(code)\n')


def test_reads_are_bounded(real, tmp_path):
    """A gzip bomb (a few MB of gzip that decompress to ten times the bound) and an
    oversized plain file are refused by the bound, without reading them whole."""
    from c7n_unused_keys.report.files import MAX_FILE_BYTES
    out = tmp_path / 'out'
    shutil.copytree(real, out)
    bomb = out / DAMAGED / 'resources.json.gz'
    (out / DAMAGED / 'resources.json').unlink()
    member = gzip.compress(b' ' * (16 << 20))
    with open(bomb, 'wb') as fh:
        for _ in range(10 * MAX_FILE_BYTES // (16 << 20)):
            fh.write(member)
    assert bomb.stat().st_size < 8 << 20
    # Sparse: bigger than the bound on disk, nothing to write.
    big = out / 'staging' / 'us-east-1' / NAME / 'action-retire-access-keys'
    with open(big, 'r+b') as fh:
        fh.truncate(MAX_FILE_BYTES + 1)
    run = run_command([sys.executable, '-c', MEASURE, out], None)
    assert run.returncode == 2, run.stderr
    data = json.loads(run.stdout)
    limit = 'larger than %d MiB' % (MAX_FILE_BYTES >> 20)
    assert sorted((f['account'], f['reason'].split(': ')[0]) for f in data['failures']) == [
        ('prod', DAMAGED + '/resources.json.gz'),
        ('staging', 'staging/us-east-1/%s/action-retire-access-keys' % NAME)]
    assert all(limit in f['reason'] for f in data['failures'])
    assert {r['account'] for r in data['rows']} == {'dev', 'staging'}
    peak_mib = int(run.stderr.split()[-1]) >> 10
    assert peak_mib < 3 * (MAX_FILE_BYTES >> 20) + 100


@pytest.mark.parametrize('where', ['outside', 'inside'])
def test_a_symbolic_link_is_named_not_followed(real, tmp_path, where):
    out = tmp_path / 'out'
    shutil.copytree(real, out)
    elsewhere = tmp_path / 'elsewhere'
    shutil.move(str(out / 'prod'), str(elsewhere))
    if where == 'outside':
        os.symlink(elsewhere, out / 'prod')
    else:
        # A link to a folder inside the output is not followed either: read once.
        shutil.move(str(elsewhere), str(out / 'prod'))
        os.symlink(out / 'prod', out / 'prod-again')
    # And a file linked to one outside, in place of a policy's metadata.json.
    meta = out / 'dev' / 'us-east-1' / NAME / 'metadata.json'
    shutil.move(str(meta), str(tmp_path / 'metadata.json'))
    os.symlink(tmp_path / 'metadata.json', meta)
    data, run = as_json(out)
    assert run.returncode == 2
    link = 'prod' if where == 'outside' else 'prod-again'
    reasons = {f['reason'].split(': ')[0]: f['reason'] for f in data['failures']}
    assert set(reasons) == {link, 'dev/us-east-1/%s/metadata.json' % NAME}
    assert all('symbolic link' in r and 'not read' in r for r in reasons.values())
    assert str(elsewhere if where == 'outside' else out / 'prod') in reasons[link]
    assert {r['account'] for r in data['rows']} == (
        {'staging'} if where == 'outside' else {'staging', 'prod'})
