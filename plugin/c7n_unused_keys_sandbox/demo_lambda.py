"""`make demo-lambda`: the lambda/ policies deployed and run in every sandbox account.

Starts the emulator in this process and seeds it as `make demo` does, with each
account's function role and the output bucket. Then, per policy: `c7n-org run` deploys
it to every account; each account's function is invoked once (the zip the emulator
stored, run as Lambda runs it: see `functions`); and `c7n-unused-keys report` reads
the results back from S3. The emulator stops whatever happened.
"""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from c7n_unused_keys.accounts import load_accounts
from c7n_unused_keys.lambda_mode import HANDLER
from .demo import POLICIES, tool
from .functions import (OUTPUT_BUCKET, deployed_code, function_env, invoke, prepare_account,
                        prepare_bucket, runtime_folder, scheduled_event, unpack)


def run_demo_lambda(config: str, lambda_dir: str, output_dir: str) -> int:
    accounts = load_accounts(config)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix='c7n-unused-keys-lambda-'))
    try:
        return _run(accounts, config, lambda_dir, out, work)
    finally:
        # The unpacked functions and the runtime's links: nothing is left behind.
        shutil.rmtree(work, ignore_errors=True)


def _run(accounts, config: str, lambda_dir: str, out: Path, work: Path) -> int:
    from .seed import seed_organisation
    from .emulator import Emulator
    runtime = runtime_folder(work / 'runtime')
    with Emulator() as emu:
        print('# sandbox: AWS emulator on %s' % emu.url, flush=True)
        for account, users in seed_organisation(emu, accounts).items():
            prepare_account(emu, account)
            print('# seeded %s (%s): %d users, function role c7n-unused-keys-lambda' % (
                account, accounts[account], len(users)), flush=True)
        prepare_bucket(emu, next(iter(accounts)))
        env = dict(os.environ, **emu.env())
        for policy in POLICIES:
            path = '%s/%s.yml' % (lambda_dir, policy)
            print('\n== c7n-org run -c %s -u %s' % (config, path), flush=True)
            run = subprocess.run([tool('c7n-org'), 'run', '-c', config, '-s',
                                  str(out / policy), '-u', path],
                                 env=env, capture_output=True, text=True, timeout=600)
            sys.stdout.write(''.join('   ' + line + '\n' for line in run.stderr.splitlines()
                                     if 'c7n_org:' in line))
            if run.returncode != 0 or 'Exception running policy' in run.stderr:
                print('c7n-org failed (exit %d):\n%s' % (run.returncode, run.stderr[-3000:]))
                return 1
            name = 'custodian-' + policy
            for account, account_name in accounts.items():
                print('== invoke %s in %s (%s), us-east-1' % (name, account_name, account),
                      flush=True)
                task = unpack(deployed_code(account, 'us-east-1', name),
                              work / account / policy)
                proc = invoke(task, runtime, HANDLER,
                              scheduled_event(account, 'us-east-1', name),
                              function_env(emu.env(), account, function_name=name))
                if proc.returncode != 0:
                    print('the function failed (exit %d):\n%s' % (
                        proc.returncode, proc.stderr[-3000:]))
                    return 1
        url = 's3://%s' % OUTPUT_BUCKET
        print('\n== c7n-unused-keys report %s -c %s' % (url, config), flush=True)
        report = subprocess.run([tool('c7n-unused-keys'), 'report', url, '-c', config],
                                env=env, text=True, timeout=600)
    print('\nThe sandbox is stopped.')
    return report.returncode
