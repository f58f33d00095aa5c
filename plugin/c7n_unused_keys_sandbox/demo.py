"""`make demo`: the main job org-wide against a fresh local sandbox, then the report.

Starts `c7n-unused-keys sandbox` as a child process, runs `c7n-org run` with the
report policies (keys, and the CIS 1.12 set: keys, console passwords and dormant users),
then the retire policies, prints the report of each, then the
Slack digest of each account that c7n-mailer would send for the retire run (the
shipped template, rendered by c7n-mailer), and stops the sandbox whatever happened.
"""
import json
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict

from c7n_unused_keys.accounts import load_accounts
from c7n_unused_keys.names import RESULTS_ANNOTATION
from c7n_unused_keys.report.output import read
from c7n_unused_keys.report.render import render

POLICIES = ('unused-access-keys-report', 'unused-access-keys-retire')
RETIRE = POLICIES[-1]
# With the CIS 1.12 set (keys and console passwords at 45 days, and dormant users): each
# report before the retire policies change anything.
DEMO = ('unused-access-keys-report', 'unused-credentials-cis-report',
        'unused-access-keys-retire', 'unused-credentials-cis-retire')
READY_TIMEOUT = 180


def run_demo(config: str, policies_dir: str, output_dir: str) -> int:
    out = Path(output_dir)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    sandbox = subprocess.Popen(
        [sys.executable, '-m', 'c7n_unused_keys.cli', 'sandbox', '-c', config],
        stdout=subprocess.PIPE, text=True)
    try:
        env = wait_ready(sandbox)
        for policy in DEMO:
            print('\n== c7n-org run -c %s -u %s/%s.yml' % (config, policies_dir, policy),
                  flush=True)
            run = subprocess.run(
                [tool('c7n-org'), 'run', '-c', config, '-s', str(out / policy),
                 '--cache-period', '0', '-u', '%s/%s.yml' % (policies_dir, policy)],
                env=dict(os.environ, **env), capture_output=True, text=True, timeout=600)
            sys.stdout.write(''.join('   ' + line + '\n' for line in run.stderr.splitlines()
                                     if 'c7n_org:' in line))
            if run.returncode != 0:
                print('c7n-org failed (exit %d):\n%s' % (run.returncode, run.stderr[-3000:]))
                return 1
            report = read(out / policy, load_accounts(config))
            print('\n== c7n-unused-keys report %s' % (out / policy))
            sys.stdout.write(render(report, 'table'))
            if report.failures:
                return 1
        print_slack_digests(out / RETIRE, config, Path(policies_dir).parent / 'mailer')
    finally:
        sandbox.send_signal(signal.SIGTERM)
        try:
            sandbox.wait(timeout=30)
        except subprocess.TimeoutExpired:
            sandbox.kill()
    print('\nThe sandbox is stopped. Outputs are under %s.' % out)
    return 0


def print_slack_digests(out: Path, config: str, mailer: Path) -> None:
    """The message c7n-mailer would post to the security channel for each account's run:
    the run's resources with the action's records on them, as the notify action sends
    them, rendered with c7n-mailer's own rendering and the shipped Slack template."""
    from c7n_mailer.utils import get_rendered_jinja
    accounts = load_accounts(config)
    for run in sorted(out.glob('*/*/%s' % RETIRE)):
        account, region = run.parent.parent.name, run.parent.name
        resources = json.loads((run / 'resources.json').read_text())
        done = run / 'action-retire-access-keys'
        records = json.loads(done.read_text()) if done.exists() else []
        for r in resources:
            r[RESULTS_ANNOTATION] = [x for x in records if x['UserName'] == r['UserName']]
        account_id = next((i for i, n in accounts.items() if n == account), '')
        message = {'action': {'slack_template': 'unused-access-keys.slack'},
                   'policy': {'name': RETIRE}, 'account': account,
                   'account_id': account_id, 'region': region,
                   'execution_start': json.loads((run / 'metadata.json').read_text())[
                       'execution']['start']}
        body = get_rendered_jinja('#cloud-security', message, resources, logging.getLogger(
            'demo'), 'slack_template', 'slack_default', [str(mailer / 'templates')])
        print('\n== Slack digest for %s (c7n-mailer, slack://#cloud-security)' % account)
        print(json.dumps(json.loads(body), indent=2) if body and body.strip()
              else '(nothing to say: no message)')


def wait_ready(sandbox: subprocess.Popen) -> Dict[str, str]:
    """Echo the sandbox's lines until it is ready; return the environment it printed."""
    lines: queue.Queue = queue.Queue()

    def pump():
        # A thread, as select() cannot see lines already in the pipe's read buffer.
        for line in sandbox.stdout:
            lines.put(line)
        lines.put(None)
    threading.Thread(target=pump, daemon=True).start()
    env, deadline = {}, time.monotonic() + READY_TIMEOUT
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if line is None:
            break
        print(line.rstrip(), flush=True)
        if line.startswith('export '):
            k, _, v = line[len('export '):].strip().partition('=')
            env[k] = v
        if line.startswith('# ready'):
            return env
    raise SystemExit('the sandbox did not become ready in %ss (exit %s)' % (
        READY_TIMEOUT, sandbox.poll()))


def tool(name: str) -> str:
    """A console script of this environment, else from PATH."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else name
