"""`c7n-unused-keys report OUT`: one row per key from a `custodian run` or `c7n-org run` output.

Layouts: `OUT/<policy>/metadata.json` (custodian) or
`OUT/<account>/<region>/<policy>/metadata.json` (c7n-org). Rows come from the
filter's annotation in resources.json, joined with the action's records; for a
`--dryrun` output the step the action would take is worked out from the policy's
action settings in metadata.json, with the same pure functions the action uses.
"""
import csv
import io
import json
import shutil
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Dict, List, Optional

from . import lifecycle, markers
from .model import ListedKey

ANNOTATION = 'c7n:unused-access-keys'
ACTION = 'retire-access-keys'
ACTION_FILE = 'action-' + ACTION
ACTED = (lifecycle.DEACTIVATED, lifecycle.MARKED, lifecycle.DELETED)

EXIT_FAIL_ON = 1
EXIT_ERRORS = 2


@dataclass
class Row:
    account: str
    account_id: str
    policy: str
    user: str
    key_id: str
    status: Optional[str] = None
    last_used: Optional[str] = None
    last_service: Optional[str] = None
    last_region: Optional[str] = None
    idle_days: Optional[int] = None
    step: Optional[str] = None
    delete_on: Optional[str] = None
    error: Optional[str] = None
    would: bool = False


@dataclass
class Report:
    layout: str
    rows: List[Row] = field(default_factory=list)
    failures: List[Dict[str, str]] = field(default_factory=list)

    def totals(self) -> Dict[str, Dict[str, int]]:
        out: Dict[str, Dict[str, int]] = {}
        for r in self.rows:
            for scope in (r.account, 'all accounts'):
                t = out.setdefault(scope, {'unused': 0})
                t['unused'] += r.idle_days is not None
                if r.step:
                    name = ('would ' if r.would else '') + r.step
                    t[name] = t.get(name, 0) + 1
        for f in self.failures:
            for scope in (f['account'], 'all accounts'):
                t = out.setdefault(scope, {'unused': 0})
                t['failed policies'] = t.get('failed policies', 0) + 1
        everyone = out.pop('all accounts', {'unused': 0})
        return dict(sorted(out.items()), **{'all accounts': everyone})


# -- reading ---------------------------------------------------------------

def runs_of(out: Path):
    """(layout, [(account name, region, policy dir)])."""
    flat = sorted(out.glob('*/metadata.json'))
    if flat:
        return 'custodian', [(None, None, m.parent) for m in flat]
    org = sorted(out.glob('*/*/*/metadata.json'))
    if org:
        return 'c7n-org', [(m.parts[-4], m.parts[-3], m.parent) for m in org]
    raise SystemExit('c7n-unused-keys report: no custodian or c7n-org output under %s' % out)


def read(out: Path, accounts: Optional[Dict[str, str]] = None) -> Report:
    layout, runs = runs_of(out)
    report = Report(layout=layout)
    seen = set()
    for account, region, run_dir in runs:
        meta = json.loads((run_dir / 'metadata.json').read_text())
        account_id = str(meta.get('config', {}).get('account_id', ''))
        account = account or account_id
        seen.add((account, run_dir.name))
        if not this_run(run_dir / 'resources.json', meta):
            failure = 'the policy stopped before its filters finished: %s' % (
                logged_error(run_dir, meta) or 'see %s' % (run_dir / 'custodian-run.log'))
        else:
            rows = rows_of(run_dir, meta, account, account_id)
            report.rows.extend(rows)
            failed = sum(r.step == lifecycle.FAILED for r in rows)
            failure = '%d keys failed' % failed if failed else logged_error(run_dir, meta)
        if failure:
            report.failures.append({'account': account, 'policy': run_dir.name,
                                    'reason': failure})
    report.rows.sort(key=lambda r: (r.account, r.policy, r.user, r.key_id))
    if accounts and layout == 'c7n-org':
        policies = {p for _, p in seen}
        for account_id, name in accounts.items():
            for policy in policies - {p for a, p in seen if a == name}:
                report.failures.append({'account': name, 'policy': policy,
                                        'reason': 'no output: the policy did not run '
                                                  '(c7n-org only warns about this)'})
    return report


def this_run(path: Path, meta: dict) -> bool:
    """c7n never clears an output folder: a file older than the run is a leftover."""
    start = meta.get('execution', {}).get('start', 0)
    return path.exists() and path.stat().st_mtime >= start - 1


def logged_error(run_dir: Path, meta: dict) -> Optional[str]:
    """The first ERROR line this run wrote to its log (a tripped circuit breaker, say)."""
    log = run_dir / 'custodian-run.log'
    if not this_run(log, meta):
        return None
    errors = [line.split(' - ERROR - ', 1)[1] for line in
              log.read_text(errors='replace').splitlines() if ' - ERROR - ' in line]
    return errors[0][:300] if errors else None


def rows_of(run_dir: Path, meta: dict, account: str, account_id: str) -> List[Row]:
    resources = json.loads((run_dir / 'resources.json').read_text())
    policy = meta.get('policy', {})
    records = {}
    if this_run(run_dir / ACTION_FILE, meta):
        records = {(r['UserName'], r['AccessKeyId']): r
                   for r in json.loads((run_dir / ACTION_FILE).read_text())}
    would = meta.get('config', {}).get('dryrun') and action_settings(policy) is not None
    rows = []
    for res in resources:
        for ann in res.get(ANNOTATION, ()):
            row = Row(account=account, account_id=account_id, policy=run_dir.name,
                      user=res['UserName'], key_id=ann['AccessKeyId'], status=ann['Status'],
                      last_used=(ann['LastUsedDate'] or '')[:10] or None,
                      last_service=ann['LastUsedService'], last_region=ann['LastUsedRegion'],
                      idle_days=ann['IdleDays'])
            rec = records.pop((row.user, row.key_id), None)
            if rec:
                row.step, row.delete_on, row.error = rec['Step'], rec['DeleteOn'], rec['Error']
            elif would:
                would_step(row, res, policy, meta, ann)
            rows.append(row)
    for (user, key_id), rec in sorted(records.items()):
        rows.append(Row(account=account, account_id=account_id, policy=run_dir.name,
                        user=user, key_id=key_id, step=rec['Step'], delete_on=rec['DeleteOn'],
                        error=rec['Error']))
    return rows


def action_settings(policy: dict) -> Optional[dict]:
    return next((a for a in policy.get('actions', ()) if isinstance(a, dict)
                 and a.get('type') == ACTION), None)


def filter_days(filters) -> Optional[int]:
    """`days` of the first unused-access-keys filter, looking inside and/or/not blocks."""
    for f in filters or ():
        if isinstance(f, dict):
            if f.get('type') == 'unused-access-keys':
                return f.get('days')
            for block in ('and', 'or', 'not'):
                found = filter_days(f.get(block))
                if found is not None:
                    return found
    return None


def would_step(row: Row, resource: dict, policy: dict, meta: dict, ann: dict):
    """The step retire-access-keys would take, from the dry run's facts and settings
    (its recheck included, on the facts the filter saw)."""
    action = action_settings(policy)
    opts = lifecycle.Options(
        delete_after=timedelta(days=action.get('delete-after-days', 30)),
        prefix=action.get('marker-tag-prefix', 'c7n-unused-keys'),
        reactivation_grace=timedelta(days=filter_days(policy.get('filters')) or 0))
    now = datetime.fromtimestamp(meta['execution']['start'], timezone.utc)
    key = ListedKey(user=row.user, key_id=row.key_id, status=row.status,
                    created=now)
    plan = lifecycle.plan_matched(row.user, row.key_id, key,
                                  markers.markers_of(resource.get('Tags'), opts.prefix),
                                  now, opts, is_self=False)
    if plan.delete:
        used = ann.get('LastUsedDate')
        plan = lifecycle.confirm_delete(
            plan, key, datetime.fromisoformat(used) if used else None, now, opts)
    row.step, row.would = plan.step, True
    row.delete_on = plan.delete_on.isoformat() if plan.delete_on else None


# -- writing ---------------------------------------------------------------

COLUMNS = ('account', 'user', 'key', 'status', 'last used', 'via', 'idle', 'step',
           'delete on')
# For a narrow table: columns cut first (to 8 characters), then columns left out.
SHRINK = (1, 5, 7, 0)
DROP = (5, 3)


def cells(r: Row) -> List[str]:
    used = r.last_used or ('never' if r.idle_days is not None else '')
    via = ' '.join(v for v in (r.last_service, r.last_region) if v)
    step = (('would ' if r.would else '') + r.step) if r.step else ''
    if r.error:
        step += ': ' + r.error
    return [r.account, r.user, r.key_id, r.status or '', used, via,
            '' if r.idle_days is None else str(r.idle_days), step, (r.delete_on or '')[:10]]


def render(report: Report, fmt: str, width: Optional[int] = None) -> str:
    if fmt == 'json':
        return json.dumps({'layout': report.layout, 'rows': [asdict(r) for r in report.rows],
                           'totals': report.totals(), 'failures': report.failures}, indent=2)
    if fmt == 'csv':
        out = io.StringIO()
        w = csv.writer(out, lineterminator='\n')
        w.writerow(COLUMNS + ('error',))
        for r in report.rows:
            w.writerow(cells(r) + [r.error or ''])
        return out.getvalue()
    rows = [cells(r) for r in report.rows]
    totals = [[scope] + ['%s %d' % kv for kv in t.items()]
              for scope, t in report.totals().items()]
    totals = [[t[0], ', '.join(t[1:])] for t in totals]
    failures = [[f['account'], f['policy'], f['reason']] for f in report.failures]
    if fmt == 'markdown':
        parts = [markdown(COLUMNS, rows), '', '**Totals**', '',
                 markdown(('account', 'keys'), totals)]
        if failures:
            parts += ['', '**Failed**', '', markdown(('account', 'policy', 'reason'), failures)]
        return '\n'.join(parts) + '\n'
    width = width or shutil.get_terminal_size((120, 24)).columns
    parts = [table(COLUMNS, rows, width, shrink=SHRINK, drop=DROP), '',
             table(('totals', 'keys'), totals, width, shrink=(1,))]
    if failures:
        parts += ['', table(('FAILED account', 'policy', 'reason'), failures, width,
                            shrink=(2,))]
    return '\n'.join(parts) + '\n'


def markdown(header, rows) -> str:
    def esc(v):
        return str(v).replace('|', '\\|')
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(esc(c) for c in row) + ' |' for row in rows]
    return '\n'.join(lines)


def table(header, rows, width: int, shrink=(), drop=()) -> str:
    """Columns as wide as their content. To fit `width`, the widest of the `shrink`
    columns is cut with '…' (down to 8 characters), then `drop` columns are left
    out in order. Key ids are never cut."""
    keep = list(range(len(header)))
    widths = [max([len(header[i])] + [len(r[i]) for r in rows]) for i in keep]

    def total():
        return sum(widths[i] for i in keep) + 2 * (len(keep) - 1)
    for gone in (None,) + tuple(drop):
        if gone is not None:
            keep.remove(gone)
        while total() > width:
            i = max((c for c in shrink if c in keep), key=lambda c: widths[c], default=None)
            if i is None or widths[i] <= 8:
                break
            widths[i] -= 1
        if total() <= width:
            break

    def fit(value, n):
        return value if len(value) <= n else value[:n - 1] + '…'

    def line(values):
        return '  '.join(fit(values[i], widths[i]).ljust(widths[i]) for i in keep).rstrip()
    return '\n'.join([line(header), '  '.join('-' * widths[i] for i in keep)] +
                     [line(r) for r in rows])


def exit_code(report: Report, fail_on) -> int:
    if report.failures:
        return EXIT_ERRORS
    if 'unused' in fail_on and any(r.idle_days is not None for r in report.rows):
        return EXIT_FAIL_ON
    if 'actions' in fail_on and any(r.step in ACTED for r in report.rows):
        return EXIT_FAIL_ON
    return 0


def run_report(output_dir: str, fmt: str, fail_on, config: Optional[str],
               width: Optional[int]) -> int:
    accounts = None
    if config:
        from .accounts import load_accounts
        accounts = load_accounts(config)
    report = read(Path(output_dir), accounts)
    sys.stdout.write(render(report, fmt, width))
    for f in report.failures:
        print('c7n-unused-keys report: FAILED %s %s: %s' % (f['account'], f['policy'],
                                                             f['reason']), file=sys.stderr)
    return exit_code(report, fail_on)
