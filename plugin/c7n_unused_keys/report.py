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
import re
import shutil
import sys
import time
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
#
# c7n never clears an output folder: each run overwrites the files it writes and
# leaves the others, and appends to custodian-run.log. What belongs to the run
# that metadata.json describes is decided from data c7n and the action write:
# - metadata.json is written when c7n's execution context exits, also when the
#   run fails; a failed run carries a `PolicyException` metric;
# - c7n records the `ResourceCount` metric right before it writes resources.json,
#   so resources.json is this run's exactly when the metric is there (and counts it);
# - each record of the action carries the run's `ExecutionId` (metadata.json's id);
# - custodian-run.log lines carry no run id: a line is this run's when its own
#   timestamp is at or after the run's start. Both are readings of one clock in one
#   process, so no slack is needed; the log only gives the reason of a failure,
#   never decides whether there was one.

LOG = 'custodian-run.log'
# The message c7n logs (with the traceback) when a policy run raises; c7n-org mutes it.
RAISED = 'Error while executing policy'
LINE = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) - (\S+) - ([A-Z]+) - (.*)$')
UNKNOWN = 'unknown'


def runs_of(out: Path):
    """(layout, [(account name, region, policy dir)]), layout None when there is no
    output. A policy folder is one with a metadata.json or a custodian-run.log: c7n
    opens the log before it can fail on credentials, and writes metadata.json after."""
    for layout, depth in (('custodian', 1), ('c7n-org', 3)):
        pattern = '/'.join(['*'] * depth + ['%s'])
        dirs = sorted({p.parent for name in ('metadata.json', LOG)
                       for p in out.glob(pattern % name)})
        if dirs:
            return layout, [(d.parts[-3], d.parts[-2], d) if depth == 3 else (None, None, d)
                            for d in dirs]
    return None, []


def read(out: Path, accounts: Optional[Dict[str, str]] = None) -> Report:
    layout, runs = runs_of(out)
    report = Report(layout=layout or ('c7n-org' if accounts else 'none'))
    seen = set()
    for account, region, run_dir in runs:
        if not (run_dir / 'metadata.json').exists():
            account = account or UNKNOWN
            seen.add((account, run_dir.name))
            report.failures.append({'account': account, 'policy': run_dir.name,
                                    'reason': NOT_STARTED})
            continue
        meta = json.loads((run_dir / 'metadata.json').read_text())
        account_id = meta.get('config', {}).get('account_id')
        account_id = str(account_id) if account_id else ''
        account = account or account_id or UNKNOWN
        seen.add((account, run_dir.name))
        resources = this_runs_resources(run_dir, meta)
        if resources is None:
            failure = 'the policy stopped before its filters finished: %s' % (
                failure_reason(run_dir, meta, layout))
        else:
            rows = rows_of(run_dir, meta, account, account_id, resources)
            report.rows.extend(rows)
            failed = sum(r.step == lifecycle.FAILED for r in rows)
            failure = ('%d keys failed' % failed if failed else
                       failure_reason(run_dir, meta, layout) if raised(meta) else None)
        if failure:
            report.failures.append({'account': account, 'policy': run_dir.name,
                                    'reason': failure})
    report.rows.sort(key=lambda r: (r.account, r.policy, r.user, r.key_id))
    if accounts and report.layout == 'c7n-org':
        policies = {p for _, p in seen}
        for account_id, name in accounts.items():
            if not any(a == name for a, _ in seen):
                report.failures.append({'account': name, 'policy': '*', 'reason': NO_OUTPUT})
                continue
            for policy in sorted(policies - {p for a, p in seen if a == name}):
                report.failures.append({'account': name, 'policy': policy,
                                        'reason': 'no output: the policy did not run '
                                                  '(c7n-org only warns about this)'})
    return report


NOT_STARTED = ('no metadata.json: c7n could not start the policy (with c7n-org, mostly '
               'credentials or a role that cannot be assumed; c7n-org\'s own log says why)')
NO_OUTPUT = ('no output: no policy ran in this account (no credentials, a role that cannot '
             'be assumed, or a policy c7n-org could not load; c7n-org\'s own log says why)')


def metrics(meta: dict) -> Dict[str, float]:
    return {m.get('MetricName'): m.get('Value') for m in meta.get('metrics') or ()}


def raised(meta: dict) -> bool:
    """c7n adds this metric when the policy run raised (metadata.json is written after)."""
    return 'PolicyException' in metrics(meta)


def this_runs_resources(run_dir: Path, meta: dict) -> Optional[list]:
    """resources.json if this run wrote it: c7n records ResourceCount right before."""
    count = metrics(meta).get('ResourceCount')
    path = run_dir / 'resources.json'
    if count is None or not path.exists():
        return None
    resources = json.loads(path.read_text())
    return resources if len(resources) == count else None


def log_entries(run_dir: Path, meta: dict) -> List[tuple]:
    """This run's entries of custodian-run.log: [(level, message, [more lines])].

    c7n appends to the log on every run, one `asctime - name - LEVEL - message` line
    per entry in local time, to the millisecond (truncated, like the start below)."""
    log = run_dir / LOG
    start = meta.get('execution', {}).get('start')
    if start is None or not log.exists():
        return []
    start_ms = int(start) * 1000 + int((start - int(start)) * 1000)
    entries, mine = [], False
    for line in log.read_text(errors='replace').splitlines():
        m = LINE.match(line)
        if m and not mine:
            at = time.mktime(time.strptime(m[1], '%Y-%m-%d %H:%M:%S'))
            mine = int(at) * 1000 + int(m[2]) >= start_ms
        if m and mine:
            entries.append((m[4], m[5], []))
        elif mine and entries:
            entries[-1][2].append(line)
    return entries


def failure_reason(run_dir: Path, meta: dict, layout: Optional[str]) -> str:
    """Why this run failed, from its part of the log: the exception c7n logged with
    its traceback (`custodian run`), else the first ERROR line (c7n-org mutes the
    traceback: an action that fails a run logs its reason itself)."""
    entries = log_entries(run_dir, meta)
    for level, message, more in reversed(entries):
        raised_with = exception_of(more) if level == 'ERROR' and message == RAISED else None
        if raised_with:
            return raised_with[:300]
    errors = [m for level, m, _ in entries if level == 'ERROR' and m != RAISED]
    if errors:
        return errors[0][:300]
    if layout == 'c7n-org':
        return 'no reason in %s: c7n-org logs the error to its own output' % LOG
    return 'no reason in %s' % (run_dir / LOG)


def exception_of(traceback: List[str]) -> Optional[str]:
    """The exception at the end of a logged traceback, without its module path
    (and without its class for c7n's own PolicyExecutionError and kin)."""
    frames = [i for i, line in enumerate(traceback) if line.startswith('  File "')]
    if not frames:
        return None
    i = frames[-1] + 1
    while i < len(traceback) and traceback[i].startswith('    '):
        i += 1
    text = ' '.join(line.strip() for line in traceback[i:] if line.strip())
    name, sep, message = text.partition(': ')
    if not sep:
        return text.rsplit('.', 1)[-1] or None
    if name.startswith('c7n.exceptions.'):
        return message
    return '%s: %s' % (name.rsplit('.', 1)[-1], message)


def rows_of(run_dir: Path, meta: dict, account: str, account_id: str,
            resources: list) -> List[Row]:
    policy = meta.get('policy', {})
    records = {}
    if (run_dir / ACTION_FILE).exists():
        # Only this run's records: the file may be an earlier run's.
        run_id = meta.get('execution', {}).get('id')
        records = {(r['UserName'], r['AccessKeyId']): r
                   for r in json.loads((run_dir / ACTION_FILE).read_text())
                   if run_id and r.get('ExecutionId') == run_id}
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
    if report.layout == 'none':
        print('c7n-unused-keys report: no custodian or c7n-org output under %s' % output_dir,
              file=sys.stderr)
        return EXIT_ERRORS
    sys.stdout.write(render(report, fmt, width))
    for f in report.failures:
        print('c7n-unused-keys report: FAILED %s %s: %s' % (f['account'], f['policy'],
                                                             f['reason']), file=sys.stderr)
    return exit_code(report, fail_on)
