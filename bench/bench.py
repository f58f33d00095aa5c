"""`make bench`: IAM calls, retries and wall time of the whole job, against the sandbox.

Not a test: it prints tables and the targets ("met" or "missed"), and writes
.bench/results.json. Every figure is measured in this run, and ratios compare methods of
the same run.

The job, at each size (BENCH_SIZES, default "1000,5000" users; 1.5 keys a user, about
10% of keys unused for 60 days or more, seeded with `c7n_unused_keys_sandbox.seed`):

- report: active keys unused for 45 days or more, never-used keys counted from creation
  (30 days). The shipped report policy, the same policy under the other user sources,
  and stock c7n's `credential` filter. Up to 1,000 users only (they are slow): the
  filter's `api` and `credential-report` sources, the policy on aws.iam-access-key, and
  the AWS CLI guide's per-key script.
- retire, day 0 and day 31: the shipped retire policy deactivates the unused keys, then
  (31 days later, moved with `Emulator.advance`; the keys in use stay in use) deletes
  them. Beside it, on a twin account, stock c7n's closest policy: the `credential`
  filter with `remove-keys` (`matched: true`; `disable: true` on day 0; on day 31
  inactive keys idle for 75 days, or never used and 60 days old, are deleted).

Each request waits BENCH_LATENCY_MS (default 30 ms, about an IAM round trip), so time
reflects round trips and concurrency. Calls are the IAM requests that reached the
emulator. "÷ floor" divides them by the least an exact answer needs: listing pages
(U/1000 ListUsers) + 3 credential report calls + one ListAccessKeys per candidate user +
one GetAccessKeyLastUsed per candidate key, plus for retire one write per key
(UpdateAccessKey or DeleteAccessKey) and one tag write per user (TagUser or UntagUser),
and on a delete day one more ListAccessKeys per user (the status read before a delete).
Candidates are the users and keys whose report row can match: the unused keys.

With BENCH_RATE (default "50,20"; "0" skips), the emulator also limits each account to
that many IAM requests a second (a token bucket of one second's worth, answering
`Throttling` beyond it, as IAM does), and the report and retire methods of the shipped and
stock policies, the user sources and (up to 1,000 users) the other methods run again at
each rate on BENCH_RATE_USERS (default 1000) users; the lower rate also at the largest
size (without the variants below), where the targets are set. "retries" counts the
requests answered `Throttling`: each is retried.

The plugin makes 8 to 16 IAM calls at once, halving on throttling (`pace`). The shipped
policies also run with that fixed at 8 (`+fixed8`, `C7N_UNUSED_KEYS_CALLS=8`: what it
was) and with botocore's own adaptive retry mode (`+boto-adaptive`,
`AWS_RETRY_MODE=adaptive`: a client-side rate limiter): the report at every size, and
every shipped method under each rate.

Also measured: `c7n-org run` over ORG_ACCOUNTS accounts of ORG_USERS users (BENCH_ORG,
default "20x250"; "0" skips; c7n-org's default worker count), and the start-up hook's
cost in `python -X importtime -c pass`.

`bench/bench.py --markdown` prints the tables of the saved run; `--update-docs` writes
them into docs/performance.md and README.md. BENCH_OUT (default ".bench") is where the
run's files go.
"""
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

from c7n_unused_keys.names import UNUSED_ANNOTATION
from c7n_unused_keys_sandbox.seed import ordinary_users, seed_account
from c7n_unused_keys_sandbox.emulator import Emulator

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / os.environ.get('BENCH_OUT', '.bench')
BIN = Path(sys.executable).parent
SIZES = [int(s) for s in os.environ.get('BENCH_SIZES', '1000,5000').split(',') if s]
LATENCY = float(os.environ.get('BENCH_LATENCY_MS', '30')) / 1000
RATES = sorted((float(r) for r in os.environ.get('BENCH_RATE', '50,20').split(',')
                if r and float(r)), reverse=True)
RATE_USERS = int(os.environ.get('BENCH_RATE_USERS', '1000'))
# The slow reference methods run only up to this many users.
REFERENCE_USERS = 1000
ORG_ACCOUNTS, ORG_USERS = (int(n) for n in (
    os.environ.get('BENCH_ORG', '20x250') + 'x0').split('x')[:2])
LATER = 31
NOT_IAM = ('AssumeRole', 'GetCallerIdentity')
# The plugin's calls at once: adaptive (the default), fixed at 8 (what it was), and
# adaptive with botocore's own adaptive retry mode (a client-side rate limiter).
VARIANTS = {'+fixed8': {'C7N_UNUSED_KEYS_CALLS': '8'},
            '+boto-adaptive': {'AWS_RETRY_MODE': 'adaptive'}}


def stock_filters(active, days, never_used_days):
    """Stock c7n's `credential` filters for keys of that status, idle for `days`, or never
    used and `never_used_days` old."""
    def age(key, value):
        return {'type': 'credential', 'key': key, 'value_type': 'age', 'value': value,
                'op': 'greater-than'}
    return [
        {'type': 'credential', 'key': 'access_keys.active', 'value': active},
        {'or': [age('access_keys.last_used_date', days),
                {'and': [{'type': 'credential', 'key': 'access_keys.last_used_date',
                          'value': 'absent'},
                         age('access_keys.last_rotated', never_used_days)]}]}]


STOCK_FILTERS = stock_filters(True, 45, 30)
# Day 31: inactive keys idle for the 45 days plus the 30 of grace (never used: 30 + 30).
STOCK_DELETE_FILTERS = stock_filters(False, 75, 60)


def shipped(file_name, name):
    policy = yaml.safe_load((ROOT / 'policies' / file_name).read_text())['policies'][0]
    policy = {k: v for k, v in policy.items() if k != 'conditions'}
    return dict(policy, name=name)


def report_policies(references):
    """{method: policy} of the report job; `references` adds the slow ones."""
    report = shipped('unused-access-keys-report.yml', 'shipped-report')
    out = {'shipped-report': report,
           'report-list-users': dict(report, name='report-list-users', source='list-users'),
           'report-describe-parallel': dict(report, name='report-describe-parallel',
                                            source='describe-parallel'),
           'stock-credential': {'name': 'stock-credential', 'resource': 'aws.iam-user',
                                'filters': STOCK_FILTERS}}
    if references:
        for source in ('api', 'credential-report'):
            name = 'report-%s' % source
            out[name] = dict(report, name=name, filters=[
                dict(report['filters'][0], source=source)])
        keys = {k: v for k, v in report.items() if k != 'source'}
        out['shipped-report-keys'] = dict(keys, name='shipped-report-keys',
                                          resource='aws.iam-access-key')
    return out


def retire_policies(day):
    if day == 0:
        stock = {'filters': STOCK_FILTERS,
                 'actions': [{'type': 'remove-keys', 'matched': True, 'disable': True}]}
    else:
        stock = {'filters': STOCK_DELETE_FILTERS,
                 'actions': [{'type': 'remove-keys', 'matched': True}]}
    return (shipped('unused-access-keys-retire.yml', 'shipped-retire-day%d' % day),
            dict(stock, name='stock-retire-day%d' % day, resource='aws.iam-user'))


class Account:
    """One seeded account, and what an exact answer holds for it."""

    def __init__(self, emu, account, size, seed):
        self.emu, self.account, self.size = emu, account, size
        self.users = ordinary_users('bench%d' % size, size, random.Random(seed),
                                    unused_share=0.1)
        seed_account(emu, account, self.users, through_api=False)
        self.unused = {k.key_id for u in self.users for k in u.keys if k.used >= 45}
        self.candidate_users = sum(1 for u in self.users
                                   if any(k.key_id in self.unused for k in u.keys))

    def floor(self, writes_per_key=0, writes_per_user=0, rechecks_per_user=0):
        return (math.ceil(self.size / 1000) + 3 + self.candidate_users + len(self.unused) +
                writes_per_key * len(self.unused) +
                (writes_per_user + rechecks_per_user) * self.candidate_users)

    def keys(self):
        """{key id: status} of every key in the account now."""
        return {k.access_key_id: k.status
                for u in self.emu.backend(self.account).users.values() for k in u.access_keys}

    def later(self, days):
        """`days` pass; keys in use stay in use (their last use stays as recent)."""
        self.emu.advance(self.account, days)
        for u in self.users:
            for k in u.keys:
                if k.key_id not in self.unused:
                    self.emu.backdate_key(self.account, k.key_id, used_days=k.used)


def counting(emu):
    emu.count_operations, emu.operations, emu.throttled = True, {}, {}


def counted(emu):
    emu.count_operations = False
    calls = {op: n for op, n in emu.operations.items() if op not in NOT_IAM}
    return calls, sum(emu.throttled.values())


def custodian(emu, acct, policy, out, env=None):
    """`custodian run` of one policy; (IAM calls by operation, retries, seconds, resources)."""
    path = out / ('%s.yml' % policy['name'])
    path.write_text(yaml.safe_dump({'policies': [policy]}))
    run_env = dict(os.environ, **emu.env())
    run_env.update(env or {})
    cmd = [str(BIN / 'custodian'), 'run', '-s', str(out), '--cache-period', '0',
           '--assume', 'arn:aws:iam::%s:role/bench' % acct.account, str(path)]
    # Every method starts without a credential report, so each pays for its own.
    emu.backend(acct.account).report_snapshot = None
    counting(emu)
    run = subprocess.run(cmd, env=run_env, capture_output=True, text=True, timeout=7200)
    calls, retries = counted(emu)
    if run.returncode != 0:
        raise SystemExit('%s failed:\n%s' % (policy['name'], run.stderr[-3000:]))
    meta = json.loads((out / policy['name'] / 'metadata.json').read_text())
    resources = json.loads((out / policy['name'] / 'resources.json').read_text())
    return calls, retries, meta['execution']['duration'], resources


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


def per_key_script(emu, acct):
    """The AWS CLI guide's method: ListUsers, ListAccessKeys per user,
    GetAccessKeyLastUsed per key, one call after another."""
    iam = emu.iam_client(acct.account)
    now = datetime.now(timezone.utc)
    found = set()
    counting(emu)
    start = time.monotonic()
    for page in iam.get_paginator('list_users').paginate():
        for user in page['Users']:
            for key in iam.list_access_keys(UserName=user['UserName'])['AccessKeyMetadata']:
                used = iam.get_access_key_last_used(AccessKeyId=key['AccessKeyId'])
                when = used['AccessKeyLastUsed'].get('LastUsedDate')
                idle = now - (when or key['CreateDate'])
                if key['Status'] == 'Active' and idle.days >= (45 if when else 30):
                    found.add(key['AccessKeyId'])
    seconds = time.monotonic() - start
    calls, retries = counted(emu)
    return calls, retries, seconds, found


def script_row(emu, acct):
    print('  %-28s' % 'per-key-script', end='', flush=True)
    calls, retries, seconds, found = per_key_script(emu, acct)
    print('%8.1fs %6d calls %5d retries' % (seconds, sum(calls.values()), retries), flush=True)
    return {'per-key-script': row('report', calls, retries, seconds, acct.floor(), found,
                                  acct.unused)}


def row(job, calls, retries, seconds, floor, found, expected):
    return {'job': job, 'calls': calls, 'retries': retries, 'seconds': round(seconds, 2),
            'floor': floor, 'exact': found == expected, 'matched': len(found)}


def report_rows(emu, acct, out, methods, env=None):
    rows = {}
    for name, policy in methods.items():
        print('  %-28s' % (name + suffix(env)), end='', flush=True)
        calls, retries, seconds, resources = custodian(emu, acct, policy, out, env)
        found = (stock_keys(emu, acct.account, resources) if name.startswith('stock')
                 else our_keys(resources))
        rows[name + suffix(env)] = row('report', calls, retries, seconds, acct.floor(),
                                       found, acct.unused)
        print('%8.1fs %6d calls %5d retries' % (seconds, sum(calls.values()), retries),
              flush=True)
    return rows


def suffix(env):
    return next((name for name, e in VARIANTS.items() if e == env), '')


def retire_rows(emu, ours, stock, out, env=None, with_stock=True):
    """Day 0 and day 31 of the shipped retire policy on `ours`, and of stock's on `stock`."""
    rows = {}
    for day in (0, LATER):
        if day:
            ours.later(LATER)
            if with_stock:
                stock.later(LATER)
        mine, theirs = retire_policies(day)
        pairs = [(mine, ours)] + ([(theirs, stock)] if with_stock else [])
        for policy, acct in pairs:
            name = policy['name'] + ('' if policy is theirs else suffix(env))
            print('  %-28s' % name, end='', flush=True)
            before = acct.keys()
            calls, retries, seconds, _ = custodian(
                emu, acct, policy, out, None if policy is theirs else env)
            after = acct.keys()
            changed = {k for k in before if after.get(k) != before[k]}
            if day == 0:
                found = {k for k in changed if after.get(k) == 'Inactive'}
            else:
                found = set(before) - set(after)
            rows[name] = row('retire day %d' % day, calls, retries, seconds,
                             # A delete day lists each user's keys again before its deletes.
                             acct.floor(1, 1, rechecks_per_user=1 if day else 0), found,
                             acct.unused)
            # Any other change is wrong too: a key deleted on day 0, or switched off on 31.
            rows[name]['exact'] &= changed == found
            print('%8.1fs %6d calls %5d retries' % (seconds, sum(calls.values()), retries),
                  flush=True)
    return rows


def measure(emu, size, references):
    out = OUT / str(size)
    out.mkdir(parents=True, exist_ok=True)
    print('seeding three accounts of %d users ...' % size, flush=True)
    report = Account(emu, '5%011d' % size, size, size)
    ours = Account(emu, '7%011d' % size, size, size)
    stock = Account(emu, '8%011d' % size, size, size)
    emu.latency = LATENCY
    try:
        rows = report_rows(emu, report, out, report_policies(references))
        rows.update(report_rows(emu, report, out, {
            'shipped-report': report_policies(False)['shipped-report']}, VARIANTS['+fixed8']))
        if references:
            rows.update(script_row(emu, report))
        rows.update(retire_rows(emu, ours, stock, out))
    finally:
        emu.latency = 0.0
    return {'users': size, 'keys': sum(len(u.keys) for u in report.users),
            'unused': len(report.unused), 'candidate_users': report.candidate_users,
            'methods': rows}


def under_rate(emu, rate, size, variants=True):
    """At `rate` IAM requests a second per account, on `size` users: the shipped and stock
    methods, the user sources, the slow reference methods (up to 1,000 users) and, with
    `variants`, the shipped policies' variants."""
    out = OUT / ('rate-%g-%d' % (rate, size))
    out.mkdir(parents=True, exist_ok=True)
    print('at %g requests a second per account, %d users:' % (rate, size), flush=True)
    base = size * 10000 + int(rate) * 10
    report = Account(emu, '9%011d' % (base + 1), size, size)
    accounts = [Account(emu, '9%011d' % (base + n), size, size)
                for n in ((2, 3, 4, 5) if variants else (2, 3))]
    emu.latency, emu.rate = LATENCY, rate
    try:
        rows = report_rows(emu, report, out, report_policies(size <= REFERENCE_USERS))
        if size <= REFERENCE_USERS:
            rows.update(script_row(emu, report))
        for env in VARIANTS.values() if variants else ():
            rows.update(report_rows(emu, report, out, {
                'shipped-report': report_policies(False)['shipped-report']}, env))
        rows.update(retire_rows(emu, accounts[0], accounts[1], out))
        for acct, env in zip(accounts[2:], VARIANTS.values()):
            rows.update(retire_rows(emu, acct, None, out, env, with_stock=False))
    finally:
        emu.latency, emu.rate = 0.0, 0
    return {'rate': rate, 'users': size, 'unused': len(report.unused), 'methods': rows}


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
        seed_account(emu, account, users, through_api=False)
        expected |= {k.key_id for u in users for k in u.keys if k.used >= 45}
        accounts.append({'account_id': account, 'name': 'bench%02d' % n,
                         'role': 'arn:aws:iam::%s:role/bench' % account,
                         'regions': ['us-east-1']})
    config = out / 'accounts.yml'
    config.write_text(yaml.safe_dump({'accounts': accounts}))
    methods = report_policies(False)
    rows = {}
    emu.latency = LATENCY
    try:
        for name in ('shipped-report', 'stock-credential'):
            policy = methods[name]
            print('  c7n-org %-20s' % name, end='', flush=True)
            for a in accounts:
                emu.backend(a['account_id']).report_snapshot = None
            path = out / ('%s.yml' % name)
            path.write_text(yaml.safe_dump({'policies': [policy]}))
            env = {k: v for k, v in os.environ.items() if k != 'C7N_ORG_PARALLEL'}
            env.update(emu.env())
            # Calls from each account's metadata.json (c7n's api-stats): counting them at
            # the emulator costs it CPU that the 2 cores share with the 8 workers.
            start = time.monotonic()
            run = subprocess.run(
                [str(BIN / 'c7n-org'), 'run', '-c', str(config), '-u', str(path),
                 '-s', str(out / 'runs'), '--cache-period', '0'],
                env=env, capture_output=True, text=True, timeout=3600)
            wall = time.monotonic() - start
            if run.returncode != 0 or 'c7n_org:WARNING' in run.stderr:
                raise SystemExit('c7n-org %s failed:\n%s' % (name, run.stderr[-3000:]))
            keys, calls = set(), {}
            for a in accounts:
                where = out / 'runs' / a['name'] / 'us-east-1' / name
                stats = json.loads((where / 'metadata.json').read_text())['api-stats']
                for op, n in stats.items():
                    calls[op] = calls.get(op, 0) + n
                resources = json.loads((where / 'resources.json').read_text())
                keys |= (stock_keys(emu, a['account_id'], resources)
                         if name.startswith('stock') else our_keys(resources))
            rows[name] = {'calls': calls, 'seconds': round(wall, 1),
                          'exact': keys == expected, 'matched': len(keys)}
            print('%8.1fs' % wall, flush=True)
    finally:
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


# -- targets -----------------------------------------------------------------------------
STOCK_OF = {'shipped-report': 'stock-credential',
            'shipped-retire-day0': 'stock-retire-day0',
            'shipped-retire-day%d' % LATER: 'stock-retire-day%d' % LATER}


def total(r):
    return sum(r['calls'].values())


def targets(saved):
    by = {r['users']: r['methods'] for r in saved['results']}
    out = []
    big = max(by, default=None)
    for name, limit in (('shipped-report', 0.05), ('shipped-retire-day0', 0.1),
                        ('shipped-retire-day%d' % LATER, 0.1)):
        if big is None:
            break
        r, stock = by[big][name], by[big][STOCK_OF[name]]
        out.append(('%s at %d users: calls %d <= 1.05 x floor %d (x%.3f)' % (
            name, big, total(r), r['floor'], total(r) / r['floor']),
            total(r) <= 1.05 * r['floor']))
        out.append(('%s at %d users: %.1fs <= %g x %s %.1fs (x%.3f)' % (
            name, big, r['seconds'], limit, STOCK_OF[name], stock['seconds'],
            r['seconds'] / stock['seconds']), r['seconds'] <= limit * stock['seconds']))
    if saved.get('org'):
        o = saved['org']['methods']
        ratio = o['shipped-report']['seconds'] / o['stock-credential']['seconds']
        out.append(('c7n-org run, %d accounts x %d users, shipped report: %.1fs <= 0.15 x '
                    'stock %.1fs (x%.3f)' % (saved['org']['accounts'],
                                             saved['org']['users_each'],
                                             o['shipped-report']['seconds'],
                                             o['stock-credential']['seconds'], ratio),
                    ratio <= 0.15 and o['shipped-report']['exact']))
    for rated in saved.get('rates', ()):
        r = rated['methods']
        exact = [n for n in r if n.startswith('shipped') and not r[n]['exact']]
        out.append(('at %g requests/s, %d users: every shipped method exact (variants too)' % (
            rated['rate'], rated['users']), not exact))
    if saved.get('rates'):
        lowest = min(r['rate'] for r in saved['rates'])
        for low in (r for r in saved['rates'] if r['rate'] == lowest):
            for name, stock in STOCK_OF.items():
                r, s = low['methods'][name], low['methods'][stock]
                out.append((
                    'under the lower rate (%g/s), %d users: %s %.1fs <= %s %.1fs, exact; '
                    'retries %d and %d' % (low['rate'], low['users'], name, r['seconds'],
                                           stock, s['seconds'], r['retries'], s['retries']),
                    r['seconds'] <= s['seconds'] and r['exact']))
    for size, methods in by.items():
        wrong = [n for n in methods if not n.startswith('stock') and not methods[n]['exact']]
        out.append(('exactness at %d users: every method but stock%s' % (
            size, (' (not: %s)' % ', '.join(wrong)) if wrong else ''), not wrong))
    if len(by) > 1:
        small, large = min(by), max(by)
        scale = large / small
        for name in STOCK_OF:
            ratio = total(by[large][name]) / max(1, total(by[small][name]))
            out.append(('linear cost, %s: calls x%.2f for x%g users (within 10%%)' % (
                name, ratio, scale), abs(ratio - scale) <= 0.1 * scale))
    return out


# -- tables ------------------------------------------------------------------------------
def lines(rows, md=False, rate=None):
    """Rows of one table: method, job, calls, ÷ floor, ÷ stock, retries, seconds, ÷ stock,
    exact; with `rate`, also seconds ÷ (calls / rate), the least time the rate allows."""
    head = ('method', 'job', 'IAM calls', '÷ floor', '÷ stock', 'retries', 'seconds',
            '÷ stock') + (('÷ calls/rate',) if rate else ()) + ('exact',)
    text = '%-30s %-13s %9s %7s %7s %7s %8s %7s ' + ('%12s ' if rate else '') + ' %s'
    out = []
    if md:
        out += ['| %s |' % ' | '.join(head),
                '|---|---|%s---|' % ('---:|' * (len(head) - 3))]
    else:
        out.append(text % head)
    for name, r in rows.items():
        stock = rows.get(stock_for(name, r))
        cells = (name, r['job'], '%d' % total(r), '%.2f' % (total(r) / r['floor']),
                 '%.2f' % (total(r) / total(stock)) if stock else '–',
                 '%d' % r['retries'], '%.1f' % r['seconds'],
                 '%.3f' % (r['seconds'] / stock['seconds']) if stock else '–')
        if rate:
            cells += ('%.2f' % (r['seconds'] / (total(r) / rate)),)
        cells += ('yes' if r['exact'] else 'no: %d keys' % r['matched'],)
        out.append(('| %s |' % ' | '.join(cells)) if md else text % cells)
    return out


def stock_for(name, r):
    base = name.split('+')[0]
    if base in STOCK_OF:
        return STOCK_OF[base]
    return 'stock-credential' if r['job'] == 'report' else None


def render(saved, md=False):
    out = []
    if saved.get('command'):
        out += ['One run of `%s`, %s, on this 2-core machine, idle.' % (
            saved['command'], saved['duration'])]
    for r in saved['results']:
        out += ['', '%d users, %d keys, %d of them unused (%d users hold them); %g ms a '
                'request, no rate limit:' % (r['users'], r['keys'], r['unused'],
                                             r['candidate_users'], saved['latency_ms']), '']
        out += lines(r['methods'], md=md)
    for rated in saved.get('rates', ()):
        out += ['', 'At %g IAM requests a second per account (token bucket; beyond it '
                '`Throttling`), %d users, %g ms a request:' % (
                    rated['rate'], rated['users'], saved['latency_ms']), '']
        out += lines(rated['methods'], md=md, rate=rated['rate'])
    out += concurrency(saved)
    if saved.get('org'):
        o = saved['org']
        stock = o['methods']['stock-credential']
        out += ['', '`c7n-org run`, %d accounts of %d users (%d unused keys), %s workers:' % (
            o['accounts'], o['users_each'], o['unused'], o['workers']), '']
        if md:
            out += ['| policy | IAM calls | seconds | ÷ stock | exact |',
                    '|---|---:|---:|---:|---|']
        for name, r in o['methods'].items():
            cells = (name, '%d' % sum(r['calls'].values()), '%.1f' % r['seconds'],
                     '%.3f' % (r['seconds'] / stock['seconds']),
                     'yes' if r['exact'] else 'no: %d keys' % r['matched'])
            out.append(('| %s |' % ' | '.join(cells)) if md else
                       '%-30s %9s calls %7ss  x%s of stock  exact %s' % cells)
    s = saved['startup']
    out += ['', 'Start-up hook: %d µs (median of %d runs; max %d) of %d µs of imports in '
            '`python -X importtime -c pass`.' % (s['hook_us_median'], s['runs'],
                                                 s['hook_us_max'],
                                                 s['startup_imports_us_median'])]
    out += ['', 'Targets:', '']
    out += ['- %s: %s' % ('met' if t['met'] else ('**missed**' if md else 'MISSED'),
                          t['target']) for t in saved['targets']]
    return '\n'.join(out)


def concurrency(saved):
    """The shipped policies with the plugin's pace, fixed at 8, and with botocore's adaptive
    mode: seconds, and under a rate seconds ÷ (calls / rate) and retries."""
    out = ['', 'Calls at once (the shipped policies: pace, the default; `+fixed8`; '
           '`+boto-adaptive`):', '']
    big = max(saved['results'], key=lambda r: r['users'], default={'methods': {}})
    m = big['methods']
    if 'shipped-report+fixed8' in m:
        out.append('- no rate limit, %d users: shipped-report %.1fs, fixed at 8 %.1fs' % (
            big['users'], m['shipped-report']['seconds'],
            m['shipped-report+fixed8']['seconds']))
    for rated in saved.get('rates', ()):
        m = rated['methods']
        for name in STOCK_OF:
            cells = []
            for variant in ('',) + tuple(VARIANTS):
                r = m.get(name + variant)
                if r:
                    cells.append('%s %.1fs, x%.2f of calls/rate, %d retries' % (
                        variant.lstrip('+') or 'pace', r['seconds'],
                        r['seconds'] / (total(r) / rated['rate']), r['retries']))
            out.append('- %g/s, %d users, %s: %s' % (rated['rate'], rated['users'], name,
                                                   '; '.join(cells)))
    return out


BEGIN, END = '<!-- bench:begin -->', '<!-- bench:end -->'


def update_docs(saved):
    """Write the saved run's tables between the markers of docs/performance.md, and its
    5,000-user table and targets into README.md."""
    body = render(saved, md=True)
    for path, text in ((ROOT / 'docs' / 'performance.md', body),
                       (ROOT / 'README.md', readme_block(saved))):
        doc = path.read_text()
        head, rest = doc.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        path.write_text('%s%s\n%s\n%s%s' % (head, BEGIN, text.strip('\n'), END, tail))
        print('updated %s' % path.relative_to(ROOT))


def readme_block(saved):
    big = max(saved['results'], key=lambda r: r['users'])
    keep = ('shipped-report', 'report-list-users', 'report-describe-parallel',
            'stock-credential', 'shipped-retire-day0', 'stock-retire-day0',
            'shipped-retire-day%d' % LATER, 'stock-retire-day%d' % LATER)
    rows = {k: big['methods'][k] for k in keep if k in big['methods']}
    out = ['%d users, %d unused keys, %g ms a request (`%s`, %s):' % (
        big['users'], big['unused'], saved['latency_ms'], saved['command'],
        saved['duration']), '']
    out += lines(rows, md=True)
    out += ['', 'Targets:', '']
    out += ['- %s: %s' % ('met' if t['met'] else '**missed**', t['target'])
            for t in saved['targets']]
    return '\n'.join(out)


def main():
    if sys.argv[1:] == ['--markdown']:
        print(render(json.loads((OUT / 'results.json').read_text()), md=True))
        return
    if sys.argv[1:] == ['--update-docs']:
        update_docs(json.loads((OUT / 'results.json').read_text()))
        return
    OUT.mkdir(exist_ok=True)
    start = time.monotonic()
    with Emulator() as emu:
        results = [measure(emu, size, size <= REFERENCE_USERS) for size in SIZES]
        rates = [under_rate(emu, rate, RATE_USERS) for rate in RATES]
        # The lower rate also at the largest size: the targets are set there.
        if RATES and SIZES and max(SIZES) != RATE_USERS:
            rates.append(under_rate(emu, min(RATES), max(SIZES), variants=False))
        organisation = org(emu) if ORG_ACCOUNTS and ORG_USERS else None
    saved = {'latency_ms': LATENCY * 1000, 'results': results, 'rates': rates,
             'org': organisation, 'startup': hook(),
             'command': 'make bench' if not any(k.startswith('BENCH_') for k in os.environ)
             else ' '.join('%s=%s' % (k, v) for k, v in sorted(os.environ.items())
                           if k.startswith('BENCH_')) + ' make bench',
             'duration': '%d min %d s' % divmod(int(time.monotonic() - start), 60)}
    saved['targets'] = [{'target': t, 'met': ok} for t, ok in targets(saved)]
    print(render(saved))
    print('\nCalls: IAM requests that reached the emulator. "÷ floor": calls over the least '
          'an exact answer needs (listing pages + 3 report calls + ListAccessKeys per '
          'candidate user + GetAccessKeyLastUsed per candidate key, + writes for retire, '
          '+ a status read per user on a delete day). '
          '"retries": requests answered Throttling. "seconds": the policy run '
          '(metadata.json), its user listing included; for the script, its run.')
    (OUT / 'results.json').write_text(json.dumps(saved, indent=2))
    print('\nwrote %s' % (OUT / 'results.json'))


if __name__ == '__main__':
    main()
