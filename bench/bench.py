"""`make bench`: IAM calls and wall time of one detection job, five ways, against the sandbox.

Not a test: it prints a table and writes .bench/results.json. Every figure is measured
in this run, and ratios compare methods of the same run.

The job: active keys unused for 45 days or more, never-used keys counted by age (30
days). Each size gets an account of its own, seeded with `c7n_unused_keys.sandbox.seed`
(1.5 keys a user, about 10% of keys unused). Each request to the emulator waits a fixed
latency (BENCH_LATENCY_MS, default 30 ms, about an IAM round trip), so wall time
reflects round trips and concurrency rather than the emulator's own speed. The
emulator serves from this process: "emu cpu" is the CPU it spent, which on a small
machine competes with the run for cores. Stock moto's GetAccessKeyLastUsed scans every
key of every account (O(keys) a call); the sandbox looks the key up by id instead.

The shipped report policy is also run on aws.iam-access-key (c7n's per-key resource:
ListUsers, then ListAccessKeys per user), beside the same policy on aws.iam-user.

Also measured: `c7n-org run` over ORG_ACCOUNTS accounts of ORG_USERS users (c7n-org's
default worker count), and the start-up hook's cost in `python -X importtime -c pass`.

Environment: BENCH_SIZES (default "1000,5000"), BENCH_LATENCY_MS (default 30),
BENCH_ORG ("20x250"; "0" skips c7n-org).
"""
import json
import os
import statistics
import random
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

from c7n_unused_keys.sandbox.server import Emulator, iam_client
from c7n_unused_keys.sandbox.seed import ordinary_users, seed_account
from c7n_unused_keys.names import UNUSED_ANNOTATION

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / '.bench'
BIN = Path(sys.executable).parent
SIZES = [int(s) for s in os.environ.get('BENCH_SIZES', '1000,5000').split(',') if s]
LATENCY = float(os.environ.get('BENCH_LATENCY_MS', '30')) / 1000
LISTING = ('iam.ListUsers', 'iam.GetUser')
ORG_ACCOUNTS, ORG_USERS = (int(n) for n in (
    os.environ.get('BENCH_ORG', '20x250') + 'x0').split('x')[:2])
FILTER = {'days': 45, 'never-used-days': 30, 'status': 'Active'}

STOCK_FILTERS = [
    {'type': 'credential', 'key': 'access_keys.active', 'value': True},
    {'or': [
        {'type': 'credential', 'key': 'access_keys.last_used_date',
         'value_type': 'age', 'value': 45, 'op': 'greater-than'},
        {'and': [
            {'type': 'credential', 'key': 'access_keys.last_used_date', 'value': 'absent'},
            {'type': 'credential', 'key': 'access_keys.last_rotated',
             'value_type': 'age', 'value': 30, 'op': 'greater-than'}]}]}]


def policies():
    ours = [{'name': 'ours-%s' % s, 'resource': 'aws.iam-user',
             'filters': [dict(FILTER, type='unused-access-keys', source=s)]}
            for s in ('api', 'credential-report', 'hybrid')]
    stock = {'name': 'stock-credential', 'resource': 'aws.iam-user', 'filters': STOCK_FILTERS}
    listing = {'name': 'listing-only', 'resource': 'aws.iam-user'}
    parallel = dict(listing, name='listing-parallel', source='describe-parallel')
    # source: api without c7n's GetUser listing, beside the shipped (hybrid) policy.
    api_listed = dict(ours[0], name='api-list-users', source='list-users')
    return ours + [stock, listing, parallel, shipped_report(), api_listed, key_level_report()]


def shipped_report():
    shipped = yaml.safe_load(
        (ROOT / 'policies' / 'unused-access-keys-report.yml').read_text())['policies'][0]
    shipped = {k: v for k, v in shipped.items() if k != 'conditions'}
    return dict(shipped, name='shipped-report')


def key_level_report():
    """The shipped report policy's filter on aws.iam-access-key: one resource per key."""
    shipped = {k: v for k, v in shipped_report().items() if k != 'source'}
    return dict(shipped, name='shipped-report-keys', resource='aws.iam-access-key')


def custodian(emu, account, policy, out):
    path = out / ('%s.yml' % policy['name'])
    path.write_text(yaml.safe_dump({'policies': [policy]}))
    env = dict(os.environ, **emu.env())
    cmd = [str(BIN / 'custodian'), 'run', '-s', str(out), '--cache-period', '0',
           '--assume', 'arn:aws:iam::%s:role/bench' % account, str(path)]
    start = time.monotonic()
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    end = time.monotonic()
    wall = end - start
    if run.returncode != 0:
        raise SystemExit('%s failed:\n%s' % (policy['name'], run.stderr[-3000:]))
    meta = json.loads((out / policy['name'] / 'metadata.json').read_text())
    resources = json.loads((out / policy['name'] / 'resources.json').read_text())
    return {'stats': meta['api-stats'], 'wall': wall, 'end': end,
            'policy_seconds': meta['execution']['duration'],
            'resources': resources, 'stderr': run.stderr}


def our_keys(resources):
    return {k['AccessKeyId'] for r in resources for k in r.get(UNUSED_ANNOTATION, ())}


def stock_keys(emu, account, resources):
    """Stock c7n matches report slots; map them to key ids as c7n does (CreateDate)."""
    users = emu.backend(account).users
    found = set()
    for r in resources:
        for slot in r.get('c7n:matched-keys', ()):
            rotated = slot['last_rotated'][:19]
            found |= {k.access_key_id for k in users[r['UserName']].access_keys
                      if k.create_date.strftime('%Y-%m-%dT%H:%M:%S') == rotated}
    return found


def per_key_script(emu, account):
    """The AWS CLI guide's method: ListUsers, ListAccessKeys per user,
    GetAccessKeyLastUsed per key, one call after another."""
    iam = iam_client(emu.env(), account)
    now = datetime.now(timezone.utc)
    found = set()
    start = time.monotonic()
    for page in iam.get_paginator('list_users').paginate():
        for user in page['Users']:
            for key in iam.list_access_keys(UserName=user['UserName'])['AccessKeyMetadata']:
                used = iam.get_access_key_last_used(AccessKeyId=key['AccessKeyId'])
                when = used['AccessKeyLastUsed'].get('LastUsedDate')
                idle = now - (when or key['CreateDate'])
                if key['Status'] == 'Active' and idle.days >= (45 if when else 30):
                    found.add(key['AccessKeyId'])
    return found, time.monotonic() - start


def candidates(stderr):
    users = re.search(r'leaves (\d+) of \d+ users to check', stderr)
    keys = re.search(r'checked \d+ users \((\d+) keys\)', stderr)
    return int(users.group(1)), int(keys.group(1))


def own_calls(stats):
    return sum(n for op, n in stats.items() if op not in LISTING)


def measure(emu, size):
    account = '5%011d' % size
    users = ordinary_users('bench%d' % size, size, random.Random(size), unused_share=0.1)
    print('seeding %d users into %s ...' % (size, account), flush=True)
    seed_account(emu, account, users)
    expected = {k.key_id for u in users for k in u.keys if k.used >= 45}
    out = OUT / str(size)
    out.mkdir(parents=True, exist_ok=True)
    emu.latency = LATENCY
    rows = {}
    for policy in policies():
        print('  %-22s' % policy['name'], end='', flush=True)
        # Every method starts without a credential report, so each pays for its own.
        emu.backend(account).report_snapshot = None
        emu.count_operations, emu.operations, emu.last_seen = True, {}, {}
        cpu = time.process_time()
        r = custodian(emu, account, policy, out)
        cpu = time.process_time() - cpu
        emu.count_operations = False
        # c7n's listing of keys ends with its last ListAccessKeys call.
        ops = ('ListUsers', 'GetUser') + (
            ('ListAccessKeys',) if policy['resource'] == 'aws.iam-access-key' else ())
        listed = max(emu.last_seen[op] for op in ops if op in emu.last_seen)
        if policy['name'].startswith('listing'):
            keys = None
        elif policy['name'] == 'stock-credential':
            keys = stock_keys(emu, account, r['resources'])
        else:
            keys = our_keys(r['resources'])
        rows[policy['name']] = {
            'calls': r['stats'], 'own_calls': own_calls(r['stats']),
            'wall_seconds': round(r['wall'], 2), 'policy_seconds': round(r['policy_seconds'], 2),
            'exact': None if keys is None else keys == expected,
            'matched': None if keys is None else len(keys), 'emulator_cpu': round(cpu, 1),
            # From c7n's last listing call (seen at the emulator) to the end of the run.
            'filter_seconds': round(r['end'] - listed, 2)}
        if policy['name'] == 'ours-hybrid':
            rows[policy['name']]['candidates'] = candidates(r['stderr'])
        print('%8.1fs' % r['policy_seconds'], flush=True)
    print('  %-22s' % 'per-key-script', end='', flush=True)
    emu.count_operations, emu.operations = True, {}
    cpu = time.process_time()
    keys, wall = per_key_script(emu, account)
    cpu = time.process_time() - cpu
    emu.count_operations = False
    calls = {'iam.' + k: v for k, v in emu.operations.items()}
    rows['per-key-script'] = {'calls': calls, 'own_calls': own_calls(calls),
                              'wall_seconds': round(wall, 2), 'policy_seconds': round(wall, 2),
                              'exact': keys == expected, 'matched': len(keys),
                              # the script's own client runs in this process too
                              'emulator_cpu': round(cpu, 1), 'filter_seconds': round(wall, 2)}
    print('%8.1fs' % wall, flush=True)
    emu.latency = 0.0
    return {'users': size, 'keys': sum(len(u.keys) for u in users),
            'unused': len(expected), 'methods': rows}


def targets(results):
    by = {r['users']: r['methods'] for r in results}
    big = by[max(by)]
    out = []
    for size, m in by.items():
        h = m['ours-hybrid']
        cu, ck = h['candidates']
        out.append(('hybrid calls at %d users: %d <= 3 + %d + %d' % (
            size, h['own_calls'], cu, ck), h['own_calls'] <= 3 + cu + ck))
        out.append(('exactness at %d users: api, credential-report, hybrid' % size,
                    all(m['ours-%s' % s]['exact'] for s in
                        ('api', 'credential-report', 'hybrid'))))
    f = {k: v['filter_seconds'] for k, v in big.items()}
    t = {k: v['policy_seconds'] for k, v in big.items()}
    out.append(('hybrid speed at %d users, time after c7n\'s listing: %.1fs <= 0.5 x '
                'api %.1fs and <= stock credential %.1fs' % (
                    max(by), f['ours-hybrid'], f['ours-api'], f['stock-credential']),
                f['ours-hybrid'] <= 0.5 * f['ours-api'] and
                f['ours-hybrid'] <= f['stock-credential']))
    out.append(('hybrid speed at %d users, whole runs listing with list-users: shipped '
                '(hybrid) %.1fs <= 0.5 x api %.1fs' % (
                    max(by), t['shipped-report'], t['api-list-users']),
                t['shipped-report'] <= 0.5 * t['api-list-users']))
    for size, m in by.items():
        out.append(('key-level report at %d users: the same keys as the user-level one'
                    % size, m['shipped-report-keys']['exact'] and m['shipped-report']['exact']))
    out.append(('shipped report policy at %d users: %.1fs <= 0.2 x stock %.1fs, exact' % (
        max(by), t['shipped-report'], t['stock-credential']),
        t['shipped-report'] <= 0.2 * t['stock-credential'] and big['shipped-report']['exact']))
    if len(by) > 1:
        small, large = min(by), max(by)
        scale = large / small
        for name in ('ours-hybrid', 'shipped-report'):
            ratio = by[large][name]['own_calls'] / max(1, by[small][name]['own_calls'])
            total = sum(by[large][name]['calls'].values()) / max(
                1, sum(by[small][name]['calls'].values()))
            out.append(('linear cost, %s: own calls x%.2f, all calls x%.2f for x%.0f users '
                        '(within 10%%)' % (name, ratio, total, scale),
                        abs(ratio - scale) <= 0.1 * scale and abs(total - scale) <= 0.1 * scale))
    return out


def table(results):
    lines = []
    for r in results:
        m = r['methods']
        per_key, stock = m['per-key-script'], m['stock-credential']
        script_calls = sum(per_key['calls'].values())
        stock_calls = sum(stock['calls'].values())
        lines.append('\n%d users, %d keys, %d unused; latency %.0f ms a request' % (
            r['users'], r['keys'], r['unused'], LATENCY * 1000))
        lines.append('%-22s %6s %6s %6s %6s %6s %7s %7s %6s %6s %6s %6s' % (
            'method', 'calls', 'own', 'list', '/scrpt', '/stock', 'seconds', 'filter',
            '/scrpt', '/stock', 'emucpu', 'exact'))
        for name, row in m.items():
            calls = sum(row['calls'].values())
            listing = sum(row['calls'].get(op, 0) for op in LISTING)
            lines.append('%-22s %6d %6d %6d %6.2f %6.2f %7.1f %7.1f %6.2f %6.2f %6.1f %6s' % (
                name, calls, row['own_calls'], listing,
                calls / script_calls, calls / stock_calls,
                row['policy_seconds'], row['filter_seconds'],
                row['policy_seconds'] / per_key['policy_seconds'],
                row['policy_seconds'] / stock['policy_seconds'], row['emulator_cpu'],
                '-' if row['exact'] is None else
                ('yes' if row['exact'] else 'NO (%d)' % row['matched'])))
    return '\n'.join(lines)


def key_level(results):
    """The shipped report policy on keys beside the same policy on users: calls per
    operation and seconds."""
    lines = []
    for r in results:
        users, keys = r['methods']['shipped-report'], r['methods']['shipped-report-keys']
        lines.append('\nshipped report policy at %d users: aws.iam-user beside '
                     'aws.iam-access-key' % r['users'])
        lines.append('  %-30s %8s %8s' % ('IAM operation', 'users', 'keys'))
        for op in sorted(set(users['calls']) | set(keys['calls'])):
            lines.append('  %-30s %8d %8d' % (op, users['calls'].get(op, 0),
                                              keys['calls'].get(op, 0)))
        lines.append('  %-30s %8d %8d' % ('all', sum(users['calls'].values()),
                                          sum(keys['calls'].values())))
        lines.append('  %-30s %8.1f %8.1f' % ('seconds (policy run)', users['policy_seconds'],
                                              keys['policy_seconds']))
        lines.append('  %-30s %8s %8s' % ('exact', *(
            'yes' if m['exact'] else 'NO (%d)' % m['matched'] for m in (users, keys))))
    return '\n'.join(lines)


def org(emu):
    """`c7n-org run` of the shipped report policy and of the stock credential policy over
    ORG_ACCOUNTS accounts of ORG_USERS users, with c7n-org's default worker count."""
    out = OUT / 'org'
    out.mkdir(parents=True, exist_ok=True)
    accounts, expected = [], set()
    print('seeding %d accounts of %d users ...' % (ORG_ACCOUNTS, ORG_USERS), flush=True)
    for n in range(1, ORG_ACCOUNTS + 1):
        account = '6%011d' % n
        users = ordinary_users('org%02d' % n, ORG_USERS, random.Random(n), unused_share=0.1)
        seed_account(emu, account, users)
        expected |= {k.key_id for u in users for k in u.keys if k.used >= 45}
        accounts.append({'account_id': account, 'name': 'bench%02d' % n,
                         'role': 'arn:aws:iam::%s:role/bench' % account,
                         'regions': ['us-east-1']})
    config = out / 'accounts.yml'
    config.write_text(yaml.safe_dump({'accounts': accounts}))
    stock = {'name': 'stock-credential', 'resource': 'aws.iam-user', 'filters': STOCK_FILTERS}
    rows = {}
    emu.latency = LATENCY
    for policy in (shipped_report(), stock):
        print('  c7n-org %-18s' % policy['name'], end='', flush=True)
        for a in accounts:
            emu.backend(a['account_id']).report_snapshot = None
        path = out / ('%s.yml' % policy['name'])
        path.write_text(yaml.safe_dump({'policies': [policy]}))
        env = {k: v for k, v in os.environ.items() if k != 'C7N_ORG_PARALLEL'}
        env.update(emu.env())
        start = time.monotonic()
        run = subprocess.run(
            [str(BIN / 'c7n-org'), 'run', '-c', str(config), '-u', str(path),
             '-s', str(out / 'runs'), '--cache-period', '0'],
            env=env, capture_output=True, text=True, timeout=3600)
        wall = time.monotonic() - start
        if run.returncode != 0 or 'c7n_org:WARNING' in run.stderr:
            raise SystemExit('c7n-org %s failed:\n%s' % (policy['name'], run.stderr[-3000:]))
        calls, keys = {}, set()
        for a in accounts:
            where = out / 'runs' / a['name'] / 'us-east-1' / policy['name']
            for op, n in json.loads((where / 'metadata.json').read_text())['api-stats'].items():
                calls[op] = calls.get(op, 0) + n
            resources = json.loads((where / 'resources.json').read_text())
            keys |= (stock_keys(emu, a['account_id'], resources)
                     if policy is stock else our_keys(resources))
        rows[policy['name']] = {'calls': calls, 'wall_seconds': round(wall, 1),
                                'exact': keys == expected, 'matched': len(keys)}
        print('%8.1fs' % wall, flush=True)
    emu.latency = 0.0
    return {'accounts': ORG_ACCOUNTS, 'users_each': ORG_USERS, 'unused': len(expected),
            'workers': 'c7n-org default (%d: 4 per core)' % (4 * (os.cpu_count() or 1)),
            'methods': rows}


def hook(runs=15):
    """Microseconds of the start-up hook in `python -X importtime -c pass`, beside the
    whole start-up of that interpreter (the sum of every module's own time)."""
    hooks, totals = [], []
    for _ in range(runs):
        err = subprocess.run([sys.executable, '-X', 'importtime', '-c', 'pass'],
                             capture_output=True, text=True).stderr
        rows = [line.split('|') for line in err.splitlines() if line.startswith('import time:')
                and 'self [us]' not in line]
        totals.append(sum(int(r[0].split(':')[1]) for r in rows))
        hooks.append(sum(int(r[1]) for r in rows if r[2].strip() == 'c7n_unused_keys_hook'))
    return {'runs': runs, 'hook_us_median': statistics.median(hooks),
            'hook_us_max': max(hooks), 'startup_imports_us_median': statistics.median(totals)}


def markdown(saved):
    """The tables of a saved run (.bench/results.json), for docs/performance.md."""
    lines = []
    for r in saved['results']:
        m = r['methods']
        script, stock = m['per-key-script'], m['stock-credential']
        lines += ['', '%d users, %d keys, %d of them unused:' % (r['users'], r['keys'],
                                                                   r['unused']), '',
                  '| method | IAM calls | of them listing | ÷ script | ÷ stock | seconds |'
                  ' ÷ script | ÷ stock | after listing | exact |',
                  '|---|---:|---:|---:|---:|---:|---:|---:|---:|---|']
        for name, row in m.items():
            calls = sum(row['calls'].values())
            lines.append('| %s | %d | %d | %.2f | %.2f | %.1f | %.2f | %.2f | %.1f | %s |' % (
                name, calls, sum(row['calls'].get(op, 0) for op in LISTING),
                calls / sum(script['calls'].values()), calls / sum(stock['calls'].values()),
                row['policy_seconds'], row['policy_seconds'] / script['policy_seconds'],
                row['policy_seconds'] / stock['policy_seconds'], row['filter_seconds'],
                '–' if row['exact'] is None else
                ('yes' if row['exact'] else 'no: %d keys' % row['matched'])))
    if saved.get('org'):
        o = saved['org']
        stock = o['methods']['stock-credential']
        lines += ['', '`c7n-org run`, %d accounts of %d users (%d unused keys), %s workers:' % (
            o['accounts'], o['users_each'], o['unused'], o['workers']), '',
            '| policy | IAM calls | seconds | ÷ stock | exact |', '|---|---:|---:|---:|---|']
        for name, row in o['methods'].items():
            lines.append('| %s | %d | %.1f | %.2f | %s |' % (
                name, sum(row['calls'].values()), row['wall_seconds'],
                row['wall_seconds'] / stock['wall_seconds'],
                'yes' if row['exact'] else 'no: %d keys' % row['matched']))
    lines += ['', 'Targets:', '']
    lines += ['- %s: %s' % ('met' if t['met'] else '**missed**', t['target'])
              for t in saved['targets']]
    return '\n'.join(lines)


def main():
    if sys.argv[1:] == ['--markdown']:
        print(markdown(json.loads((OUT / 'results.json').read_text())))
        return
    OUT.mkdir(exist_ok=True)
    with Emulator() as emu:
        results = [measure(emu, size) for size in SIZES]
        organisation = org(emu) if ORG_ACCOUNTS and ORG_USERS else None
    startup = hook()
    print(table(results))
    print(key_level(results))
    if organisation:
        stock = organisation['methods']['stock-credential']
        print('\nc7n-org run, %d accounts of %d users (%d unused keys), %s workers:' % (
            organisation['accounts'], organisation['users_each'], organisation['unused'],
            organisation['workers']))
        for name, row in organisation['methods'].items():
            print('  %-18s %6d calls %7.1fs  x%.2f of stock time  exact %s' % (
                name, sum(row['calls'].values()), row['wall_seconds'],
                row['wall_seconds'] / stock['wall_seconds'], 'yes' if row['exact'] else
                'NO (%d)' % row['matched']))
    print('\nStart-up hook: %d us (median of %d; max %d) of %d us of imports in '
          '`python -X importtime -c pass`' % (
              startup['hook_us_median'], startup['runs'], startup['hook_us_max'],
              startup['startup_imports_us_median']))
    print('\nTargets:')
    met = targets(results)
    for text, ok in met:
        print('  %-6s %s' % ('met' if ok else 'MISSED', text))
    print('\n"seconds": the policy run (metadata.json duration), its user listing included;'
          ' for the script, its run. "filter": seconds from c7n\'s last listing'
          ' call (ListUsers or GetUser; ListAccessKeys too for aws.iam-access-key, seen at the'
          ' emulator) to the end of the run.'
          ' "own": calls beside ListUsers and GetUser. "/scrpt", "/stock": ratios to the'
          ' per-key script and to stock c7n\'s credential policy. "emucpu": CPU seconds the'
          ' emulator spent.')
    print('Stock moto answers GetAccessKeyLastUsed in O(keys), scanning every key of every'
          ' account; the sandbox looks the key up by id, so no method pays for that scan.')
    (OUT / 'results.json').write_text(json.dumps(
        {'latency_ms': LATENCY * 1000, 'results': results, 'org': organisation,
         'startup': startup, 'targets': [{'target': t, 'met': ok} for t, ok in met]},
        indent=2))
    print('\nwrote %s' % (OUT / 'results.json'))


if __name__ == '__main__':
    main()
