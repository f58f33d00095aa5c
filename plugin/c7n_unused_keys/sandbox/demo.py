"""`make demo`: the main job org-wide against a fresh local sandbox, then the report.

Starts `c7n-unused-keys sandbox` as a child process, runs `c7n-org run` with the
report policy and then the retire policy, prints the report of each, and stops
the sandbox whatever happened.
"""
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

from ..accounts import load_accounts
from ..report import read, render

POLICIES = ('unused-access-keys-report', 'unused-access-keys-retire')
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
        for policy in POLICIES:
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
    finally:
        sandbox.send_signal(signal.SIGTERM)
        try:
            sandbox.wait(timeout=30)
        except subprocess.TimeoutExpired:
            sandbox.kill()
    print('\nThe sandbox is stopped. Outputs are under %s.' % out)
    return 0


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
