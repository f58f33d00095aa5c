"""The steps of `make demo` (after its install): sandbox, org-wide runs, report, stop."""
import json
import time

from c7n_unused_keys.report.output import read
from conftest import ROOT, run_command

STEPS_PER_ACCOUNT = {'unused': 9, 'deactivated': 6, 'waiting': 1, 'deleted': 1,
                     'reactivated': 1}


def test_demo(tmp_path):
    started = time.monotonic()
    run = run_command(['c7n-unused-keys', 'demo', '-c', ROOT / 'custodian.yml',
                       '--policies', ROOT / 'policies', '-s', tmp_path / 'demo'], None,
                      timeout=300)
    took = time.monotonic() - started
    assert run.returncode == 0, run.stdout + run.stderr
    assert took < 120
    out = run.stdout
    assert '# ready' in out and out.rstrip().endswith(
        'The sandbox is stopped. Outputs are under %s.' % (tmp_path / 'demo'))
    report = read(tmp_path / 'demo' / 'unused-access-keys-report')
    assert report.totals() == {'dev': {'unused': 7}, 'prod': {'unused': 7},
                               'staging': {'unused': 7}, 'all accounts': {'unused': 21}}
    totals = read(tmp_path / 'demo' / 'unused-access-keys-retire').totals()
    for name in ('dev', 'staging', 'prod'):
        assert totals[name] == STEPS_PER_ACCOUNT
        assert '%s  ' % name in out
    assert 'unused 27, deactivated 18, waiting 3, deleted 3, reactivated 3' in out
    # The CIS 1.12 set: per account, one password removed (marked 40 days before), two
    # marked for removal, and three users left dormant.
    cis = read(tmp_path / 'demo' / 'unused-credentials-cis-report').totals()
    done = read(tmp_path / 'demo' / 'unused-credentials-cis-retire').totals()
    for name in ('dev', 'staging', 'prod'):
        assert cis[name]['dormant'] == 3
        assert (done[name]['removed'], done[name]['marked']) == (1, 2)
    # The Slack digest of each account's retire run, as c7n-mailer would post it.
    for name in ('dev', 'staging', 'prod'):
        head = '== Slack digest for %s (c7n-mailer, slack://#cloud-security)\n' % name
        body = out.split(head, 1)[1].split('\n== ', 1)[0].split('\n\nThe sandbox', 1)[0]
        payload = json.loads(body)
        assert payload['channel'] == '#cloud-security'
        assert 'Deactivated today: 6' in payload['text'] and 'Deleted: 1' in payload['text']


def test_wait_ready_sees_lines_that_arrive_together():
    """The sandbox may write its environment and '# ready' in one piece."""
    import subprocess
    import sys
    from c7n_unused_keys_sandbox.demo import wait_ready
    code = ("import sys, time; sys.stdout.write('export A=1\\nexport B=2\\n# ready\\n'); "
            "sys.stdout.flush(); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True)
    try:
        started = time.monotonic()
        assert wait_ready(proc) == {'A': '1', 'B': '2'}
        assert time.monotonic() - started < 10
    finally:
        proc.kill()
        proc.wait()


def test_demo_lambda(tmp_path):
    """`make demo-lambda`: both lambda/ policies deployed with c7n-org to the three
    accounts, each function invoked once, the report read back from S3."""
    scratch = tmp_path / 'tmp'
    scratch.mkdir()
    run = run_command(['c7n-unused-keys', 'demo-lambda', '-c', ROOT / 'custodian.yml',
                       '--policies', ROOT / 'lambda', '-s', tmp_path / 'demo'], None,
                      timeout=300, extra_env={'TMPDIR': str(scratch)})
    assert run.returncode == 0, run.stdout + run.stderr
    # Its unpacked functions are removed once it is done.
    assert list(scratch.iterdir()) == []
    out = run.stdout
    for policy in ('unused-access-keys-report', 'unused-access-keys-retire'):
        for name, account in (('dev', '111111111111'), ('staging', '222222222222'),
                              ('prod', '333333333333')):
            assert 'Ran account:%s region:us-east-1 policy:%s provisioned' % (
                name, policy) in out
            assert '== invoke custodian-%s in %s (%s), us-east-1' % (
                policy, name, account) in out
            assert '%s/%s/' % (account, policy) in out   # the run the report read
    steps = ', '.join('%s %d' % kv for kv in STEPS_PER_ACCOUNT.items())
    for name in ('dev', 'staging', 'prod'):
        assert any(line.split()[:1] == [name] and line.endswith(steps)
                   for line in out.splitlines()), out
    assert out.rstrip().endswith('The sandbox is stopped.')


def test_demo_approval(tmp_path):
    """`make demo-approval`: a day-31 run with approval-tag, its digest with buttons, a
    click signed as Slack signs, the message update, the delete, the report's approver."""
    run = run_command(['c7n-unused-keys', 'demo-approval', '-c', ROOT / 'custodian.yml',
                       '-s', tmp_path / 'demo'], None, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    digest = json.loads((tmp_path / 'demo' / 'digest.json').read_text())
    (approve, keep), = [b['elements'] for b in digest['blocks'] if b['type'] == 'actions']
    assert (approve['text']['text'], keep['text']['text']) == ('Approve delete', 'Keep')
    account, user, key, _ = approve['value'].split(' ')
    assert (account, user) == ('111111111111', 'ivan-deactivated-40d')
    assert '[Approve delete]  [Keep]  (value: %s)' % approve['value'] in out
    assert 'answered HTTP 200' in out
    update = out.split('== 4.', 1)[1].split('\n== 5.', 1)[0]
    assert 'Approved by <@U0SECURITY>; deleted by the next run.' in update
    before, after = (read(tmp_path / 'demo' / d) for d in ('day31', 'next'))
    assert [(r.key_id, r.step) for r in before.rows if r.user == user] == [
        (key, 'awaiting-approval')]
    assert [(r.key_id, r.step, r.approved_by) for r in after.rows if r.user == user] == [
        (key, 'deleted', 'slack:U0SECURITY')]
    assert 'deleted (approved by slack:U0SECURITY)' in out
    assert out.rstrip().endswith('The sandbox is stopped. Outputs are under %s.' % (
        tmp_path / 'demo'))
