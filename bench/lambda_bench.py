"""`make bench`, Lambda part: what the plugin costs a policy's function. Prints numbers.

- The zip c7n builds for lambda/unused-access-keys-report.yml, with the plugin
  (`packages: [c7n_unused_keys]`) and without it (c7n alone).
- Cold-start import time of the handler module in a clean interpreter (`python -I -S`,
  the unpacked zip and boto3 only, as Lambda runs it): the plugin's handler against
  c7n's own `custodian_policy`, median of BENCH_LAMBDA_RUNS (default 9) runs each.
- One invocation of each lambda/ policy's handler against an account of
  BENCH_LAMBDA_USERS users (default 1000; 1.5 keys a user, about 10% unused), each
  request waiting BENCH_LATENCY_MS (default 30), beside `custodian run` of the matching
  pull-mode policy on a twin account, in the same run.
"""
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import yaml

import c7n_unused_keys.register  # noqa: F401
from c7n_unused_keys_sandbox.functions import (function_env, invoke, prepare_account,
                                          prepare_bucket, runtime_folder, scheduled_event,
                                          unpack)
from c7n_unused_keys_sandbox.emulator import DEFAULT_ACCOUNT, Emulator
from c7n_unused_keys_sandbox.seed import ordinary_users, seed_account

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
USERS = int(os.environ.get('BENCH_LAMBDA_USERS', '1000'))
RUNS = int(os.environ.get('BENCH_LAMBDA_RUNS', '9'))
LATENCY = float(os.environ.get('BENCH_LATENCY_MS', '30')) / 1000
FUNCTION_ACCOUNT = '111111111111'


def build(path: Path, account=FUNCTION_ACCOUNT, drop=()) -> bytes:
    from c7n.config import Config
    from c7n.mu import PolicyLambda
    from c7n.policy import PolicyCollection
    from c7n.resources import load_resources
    load_resources(('aws.iam-user',))
    data = yaml.safe_load(path.read_text())
    (policy,) = PolicyCollection.from_data(data, Config.empty(account_id=account,
                                                               region='us-east-1'))
    policy.expand_variables(policy.get_variables())
    for key in drop:   # after loading: validation refuses a policy without them
        policy.data['mode'].pop(key)
    return PolicyLambda(policy).get_archive().get_bytes()


def import_seconds(task: Path, runtime: Path, modules: str) -> float:
    code = ('import sys, time; sys.path[:0] = [%r, %r]; t = time.perf_counter(); '
            'import %s; print(time.perf_counter() - t)' % (str(task), str(runtime), modules))
    out = subprocess.run([sys.executable, '-I', '-S', '-B', '-c', code], cwd=task, check=True,
                         capture_output=True, text=True, env={'AWS_DEFAULT_REGION': 'us-east-1'})
    return float(out.stdout.strip())


def main():
    work = Path(tempfile.mkdtemp(prefix='lambda-bench-'))
    runtime = runtime_folder(work / 'runtime')
    report = ROOT / 'lambda' / 'unused-access-keys-report.yml'
    zipped, alone = build(report), build(report, drop=('packages', 'handler'))
    print('Zip of %s: %d bytes with the plugin, %d bytes with c7n alone (x%.3f, +%d bytes);'
          ' %d and %d files' % (report.relative_to(ROOT), len(zipped), len(alone),
                                len(zipped) / len(alone), len(zipped) - len(alone),
                                len(zipfile.ZipFile(io.BytesIO(zipped)).namelist()),
                                len(zipfile.ZipFile(io.BytesIO(alone)).namelist())))

    task = unpack(zipped, work / 'task')
    # c7n's handler imports c7n.resources.iam too, at the first event of an IAM policy.
    cold = {m: [] for m in ('c7n_unused_keys.handler', 'custodian_policy, c7n.resources.iam',
                            'custodian_policy')}
    for _ in range(RUNS):
        for modules in cold:
            cold[modules].append(import_seconds(task, runtime, modules))
    ours, base = (statistics.median(cold[m]) for m in list(cold)[:2])
    print('Cold-start imports (median of %d runs, python -I -S):' % RUNS)
    for modules, times in cold.items():
        print('  %-38s %4.0f ms' % (modules, statistics.median(times) * 1000))
    print('  the plugin adds %+.0f ms (x%.2f) to what c7n imports for an IAM policy' % (
        (ours - base) * 1000, ours / base))

    with Emulator() as emu:
        for account in (FUNCTION_ACCOUNT, DEFAULT_ACCOUNT):
            seed_account(emu, account, ordinary_users('bench', USERS, random.Random(11),
                                                      unused_share=0.1), through_api=False)
        prepare_account(emu, FUNCTION_ACCOUNT)
        prepare_bucket(emu, FUNCTION_ACCOUNT)
        print('\nOne invocation, %d users (%d keys) per account, %.0f ms a request:' % (
            USERS, sum(len(u.access_keys) for u in emu.backend(DEFAULT_ACCOUNT).users.values()),
            LATENCY * 1000))
        emu.latency = LATENCY
        invocations = {}
        for name in ('unused-access-keys-report', 'unused-access-keys-retire'):
            fn_task = unpack(build(ROOT / 'lambda' / (name + '.yml')), work / name)
            env = function_env(emu.env(), FUNCTION_ACCOUNT, function_name='custodian-' + name)
            before = emu.requests
            t = time.perf_counter()
            proc = invoke(fn_task, runtime, 'c7n_unused_keys.handler.run',
                          scheduled_event(FUNCTION_ACCOUNT, 'us-east-1', name), env)
            fn_seconds, fn_calls = time.perf_counter() - t, emu.requests - before
            if proc.returncode:
                sys.exit(proc.stderr[-3000:])
            out = work / ('local-' + name)
            before = emu.requests
            t = time.perf_counter()
            local = subprocess.run(
                [str(BIN / 'custodian'), 'run', '-s', str(out), '--cache-period', '0',
                 str(ROOT / 'policies' / (name + '.yml'))],
                env=dict(os.environ, **emu.env()), capture_output=True, text=True)
            local_seconds, local_calls = time.perf_counter() - t, emu.requests - before
            if local.returncode:
                sys.exit(local.stderr[-3000:])
            print('  %-26s function %6.1f s %5d requests | custodian run %6.1f s %5d requests'
                  ' | x%.2f time' % (name, fn_seconds, fn_calls, local_seconds, local_calls,
                                     fn_seconds / local_seconds))
            invocations[name] = {'function_s': fn_seconds, 'function_requests': fn_calls,
                                 'custodian_s': local_seconds, 'custodian_requests': local_calls}
        emu.latency = 0
    print('\nSeconds are wall time of the whole process: interpreter start, imports, the '
          'run, and the upload of its output (S3 for the function, a folder for custodian).'
          ' Requests include STS and S3.')
    (ROOT / '.bench').mkdir(exist_ok=True)
    (ROOT / '.bench' / 'lambda.json').write_text(json.dumps(
        {'zip_bytes': len(zipped), 'zip_bytes_c7n_alone': len(alone), 'cold_start_s': cold,
         'users': USERS, 'latency_ms': LATENCY * 1000, 'invocations': invocations},
        indent=2))


if __name__ == '__main__':
    main()
