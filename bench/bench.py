"""`make bench`: IAM calls and wall time of one detection job, five ways, against the sandbox.

Not a test: it prints a table and writes .bench/results.json. Every figure is measured
in this run, and ratios compare methods of the same run.

The job: active keys unused for 45 days or more, never-used keys counted by age (30
days). Each size gets an account of its own, seeded with `c7n_unused_keys.seed`
(1.5 keys a user, about 10% of keys unused). Each request to the emulator waits a fixed
latency (BENCH_LATENCY_MS, default 30 ms, about an IAM round trip), so wall time
reflects round trips and concurrency rather than the emulator's own speed. Note: the
emulator's GetAccessKeyLastUsed scans every key of every account, so it costs O(keys)
per call on top of the latency.

Environment: BENCH_SIZES (default "1000,5000"), BENCH_LATENCY_MS (default 30).
"""
import json
import os
import random
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

from c7n_unused_keys.sandbox import Emulator, iam_client
from c7n_unused_keys.seed import ordinary_users, seed_account

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / '.bench'
BIN = Path(sys.executable).parent
SIZES = [int(s) for s in os.environ.get('BENCH_SIZES', '1000,5000').split(',') if s]
LATENCY = float(os.environ.get('BENCH_LATENCY_MS', '30')) / 1000
LISTING = ('iam.ListUsers', 'iam.GetUser')
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
    shipped = yaml.safe_load(
        (ROOT / 'policies' / 'unused-access-keys-report.yml').read_text())['policies'][0]
    shipped = {k: v for k, v in shipped.items() if k != 'conditions'}
    return ours + [stock, listing, parallel, dict(shipped, name='shipped-report')]


def custodian(emu, account, policy, out):
    path = out / ('%s.yml' % policy['name'])
    path.write_text(yaml.safe_dump({'policies': [policy]}))
    env = dict(os.environ, **emu.env())
    cmd = [str(BIN / 'custodian'), 'run', '-s', str(out), '--cache-period', '0',
           '--assume', 'arn:aws:iam::%s:role/bench' % account, str(path)]
    start = time.monotonic()
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    wall = time.monotonic() - start
    if run.returncode != 0:
        raise SystemExit('%s failed:\n%s' % (policy['name'], run.stderr[-3000:]))
    meta = json.loads((out / policy['name'] / 'metadata.json').read_text())
    resources = json.loads((out / policy['name'] / 'resources.json').read_text())
    return {'stats': meta['api-stats'], 'wall': wall,
            'policy_seconds': meta['execution']['duration'],
            'resources': resources, 'stderr': run.stderr}


def our_keys(resources):
    return {k['AccessKeyId'] for r in resources for k in r.get('c7n:unused-access-keys', ())}


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
        print('  %-18s' % policy['name'], end='', flush=True)
        # Every method starts without a credential report, so each pays for its own.
        emu.backend(account).report_snapshot = None
        r = custodian(emu, account, policy, out)
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
            'matched': None if keys is None else len(keys)}
        if policy['name'] == 'ours-hybrid':
            rows[policy['name']]['candidates'] = candidates(r['stderr'])
        print('%8.1fs' % r['policy_seconds'], flush=True)
    print('  %-18s' % 'per-key-script', end='', flush=True)
    emu.count_operations, emu.operations = True, {}
    keys, wall = per_key_script(emu, account)
    emu.count_operations = False
    calls = {'iam.' + k: v for k, v in emu.operations.items()}
    rows['per-key-script'] = {'calls': calls, 'own_calls': own_calls(calls),
                              'wall_seconds': round(wall, 2), 'policy_seconds': round(wall, 2),
                              'exact': keys == expected, 'matched': len(keys)}
    print('%8.1fs' % wall, flush=True)
    emu.latency = 0.0
    listing = rows['listing-only']['policy_seconds']
    for name, row in rows.items():
        # What the filter adds on top of c7n's stock listing (the script lists for itself).
        row['filter_seconds'] = round(row['policy_seconds'] - (
            0 if name in ('per-key-script', 'listing-parallel', 'shipped-report') else listing), 2)
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
    out.append(('hybrid speed at %d users (filter time beyond the listing): %.1fs <= 0.5 x '
                'api %.1fs and <= stock %.1fs' % (
                    max(by), f['ours-hybrid'], f['ours-api'], f['stock-credential']),
                f['ours-hybrid'] <= 0.5 * f['ours-api'] and
                f['ours-hybrid'] <= f['stock-credential']))
    out.append(('shipped report policy at %d users: %.1fs <= 0.2 x stock %.1fs, exact' % (
        max(by), t['shipped-report'], t['stock-credential']),
        t['shipped-report'] <= 0.2 * t['stock-credential'] and big['shipped-report']['exact']))
    if len(by) > 1:
        small, large = min(by), max(by)
        ratio = by[large]['ours-hybrid']['own_calls'] / max(1, by[small]['ours-hybrid']['own_calls'])
        scale = large / small
        out.append(('linear cost: hybrid calls x%.2f for x%.0f users (within 10%%)' % (
            ratio, scale), abs(ratio - scale) <= 0.1 * scale))
    return out


def table(results):
    lines = []
    for r in results:
        m = r['methods']
        per_key, stock = m['per-key-script'], m['stock-credential']
        lines.append('\n%d users, %d keys, %d unused; latency %.0f ms a request' % (
            r['users'], r['keys'], r['unused'], LATENCY * 1000))
        lines.append('%-22s %7s %7s %7s %8s %8s %9s %9s %6s' % (
            'method', 'calls', 'own', 'listing', 'seconds', 'filter s', 'vs script',
            'vs stock', 'exact'))
        for name, row in m.items():
            listing = sum(row['calls'].get(op, 0) for op in LISTING)
            lines.append('%-22s %7d %7d %7d %8.1f %8.1f %9.2f %9.2f %6s' % (
                name, sum(row['calls'].values()), row['own_calls'], listing,
                row['policy_seconds'], row['filter_seconds'],
                row['policy_seconds'] / per_key['policy_seconds'],
                row['policy_seconds'] / stock['policy_seconds'],
                '-' if row['exact'] is None else
                ('yes' if row['exact'] else 'NO (%d)' % row['matched'])))
    return '\n'.join(lines)


def main():
    OUT.mkdir(exist_ok=True)
    with Emulator() as emu:
        results = [measure(emu, size) for size in SIZES]
    print(table(results))
    print('\nTargets:')
    met = targets(results)
    for text, ok in met:
        print('  %-6s %s' % ('met' if ok else 'MISSED', text))
    print('\n"seconds": the policy run (metadata.json duration), c7n\'s user listing included;'
          ' for the script, its run. "filter s": seconds beyond the stock listing'
          ' (listing-only). "own": calls beside ListUsers and GetUser.')
    print('The emulator answers GetAccessKeyLastUsed in O(keys): it scans every key.')
    (OUT / 'results.json').write_text(json.dumps(
        {'latency_ms': LATENCY * 1000, 'results': results,
         'targets': [{'target': t, 'met': ok} for t, ok in met]}, indent=2))
    print('\nwrote %s' % (OUT / 'results.json'))


if __name__ == '__main__':
    main()
