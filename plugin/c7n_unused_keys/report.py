"""`c7n-unused-keys report OUT`: one row per key from a `custodian run` or `c7n-org run` output.

OUT is a folder or an `s3://bucket/prefix` URL. Layouts, below OUT:
`<policy>/` (custodian), `<account>/<region>/<policy>/` (c7n-org) and
`<account>/<policy>/` (one prefix per account, as the Lambda policies write). An
output written to S3 has c7n's date folders, `<policy>/YYYY/MM/DD/HH/`, and
gzipped files; of several dated runs of one policy the report reads the latest.
Rows come from the filter's annotation in resources.json, joined with the action's
records; for a `--dryrun` output the step the action would take is worked out from
the policy's action settings in metadata.json, with the same pure functions the
action uses. A Lambda deployment (metadata.json and a "Provisioning policy lambda"
log, no resources.json) is listed as deployed.
"""
import csv
import gzip
import io
import json
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from . import lifecycle, markers
from .model import ListedKey
from .names import MARKER_PREFIX, UNUSED_ANNOTATION

ANNOTATION = UNUSED_ANNOTATION
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
    # Lambda deployments: {account, policy, region, output}; not failures.
    deployed: List[Dict[str, str]] = field(default_factory=list)
    # The run read for each dated policy folder: {account, policy, folder, started, older}.
    runs: List[Dict] = field(default_factory=list)

    def totals(self) -> Dict[str, Dict[str, int]]:
        out: Dict[str, Dict[str, int]] = {}
        # A key two policies both matched (the report and the retire policy) counts once.
        unused = set()
        for r in self.rows:
            for scope in (r.account, 'all accounts'):
                t = out.setdefault(scope, {'unused': 0})
                if r.idle_days is not None and (scope, r.account, r.key_id) not in unused:
                    unused.add((scope, r.account, r.key_id))
                    t['unused'] += 1
                if r.step:
                    name = ('would ' if r.would else '') + r.step
                    t[name] = t.get(name, 0) + 1
        for name, entries in (('failed policies', self.failures),
                              ('deployed policies', self.deployed)):
            for f in entries:
                for scope in (f['account'], 'all accounts'):
                    t = out.setdefault(scope, {'unused': 0})
                    t[name] = t.get(name, 0) + 1
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


LAYOUTS = {1: 'custodian', 2: 'per-account', 3: 'c7n-org'}
# c7n's blob outputs (s3://) put each run under `<policy>/YYYY/MM/DD/HH/` (UTC hour).
DATE = re.compile(r'^(.*)/(\d{4}/\d\d/\d\d/\d\d)$')
GZ = '.gz'


@dataclass
class RunDir:
    path: Path                   # the folder, local
    parts: tuple                 # its path below OUT without the date folders
    date: Optional[str] = None   # YYYY/MM/DD/HH of a blob output
    older: int = 0               # older dated runs of the same policy, not read

    @property
    def policy(self) -> str:
        return self.parts[-1]


def files_below(out: Path) -> List[str]:
    """Every file below `out`, as a path relative to it."""
    return [p.relative_to(out).as_posix() for p in out.rglob('*') if p.is_file()]


def runs_of(out: Path, files: Optional[Iterable[str]] = None):
    """(layout, [RunDir] read, [RunDir] of other layouts, not read) of the output under
    `out`; layout None when there is none.

    A policy folder is one with a metadata.json or a custodian-run.log (or either
    gzipped): c7n opens the log before it can fail on credentials, and writes
    metadata.json after. `files` lists the output's files relative to `out` (default:
    what is on disk). Layouts are told apart by depth; the shallowest found wins.
    Of the dated folders of one policy, the latest is read. Runs within one hour
    share a folder, where each file is the last run's (see `read`), so no two
    folders of a policy carry the same date; an undated folder counts as older
    than any dated one."""
    folders = set()
    for f in files_below(out) if files is None else files:
        folder, _, name = f.rpartition('/')
        if folder and (name[:-len(GZ)] if name.endswith(GZ) else name) in (
                'metadata.json', LOG):
            folders.add(folder)
    latest: Dict[tuple, RunDir] = {}
    for folder in sorted(folders):
        dated = DATE.match(folder)
        run = RunDir(path=out / folder, parts=tuple((dated[1] if dated else folder).split('/')),
                     date=dated[2] if dated else None)
        if len(run.parts) not in LAYOUTS:
            continue
        best = latest.get(run.parts)
        if best is None or (run.date or '') > (best.date or ''):
            run.older = best.older + 1 if best else 0
            latest[run.parts] = run
        else:
            best.older += 1
    if not latest:
        return None, [], []
    depth = min(len(parts) for parts in latest)
    runs = sorted(latest.values(), key=lambda r: r.parts)
    # Output of another layout below the same folder (a test run into a bucket's root
    # beside the Lambda functions' prefixes) is not read, and the report says so.
    return (LAYOUTS[depth], [r for r in runs if len(r.parts) == depth],
            [r for r in runs if len(r.parts) != depth])


def found(run_dir: Path, name: str) -> Optional[Path]:
    """The file `name` of a policy folder, or its gzipped copy as a blob output leaves."""
    for path in (run_dir / name, run_dir / (name + GZ)):
        if path.is_file():
            return path
    return None


def text_of(path: Path) -> str:
    if path.name.endswith(GZ):
        with gzip.open(path, 'rt', errors='replace') as fh:
            return fh.read()
    return path.read_text(errors='replace')


def json_of(run_dir: Path, name: str):
    path = found(run_dir, name)
    return None if path is None else json.loads(text_of(path))


def read(out: Path, accounts: Optional[Dict[str, str]] = None,
         files: Optional[Iterable[str]] = None) -> Report:
    layout, runs, skipped = runs_of(out, files)
    report = Report(layout=layout or ('c7n-org' if accounts else 'none'))
    for run in skipped:
        report.failures.append({
            'account': '*', 'policy': '/'.join(run.parts),
            'reason': 'not read: %s output beside the %s output read; report on each '
                      'folder on its own' % (LAYOUTS[len(run.parts)], layout)})
    seen = set()
    for run in runs:
        policy = run.policy
        # The folder above the policy's: c7n-org's account name, or a per-account
        # prefix (often the account id, which the accounts file names).
        account = (accounts or {}).get(run.parts[0], run.parts[0]) if len(run.parts) > 1 \
            else None
        meta = json_of(run.path, 'metadata.json')
        if meta is None:
            account = account or UNKNOWN
            seen.add((account, policy))
            report.failures.append({'account': account, 'policy': policy,
                                    'reason': NOT_STARTED})
            continue
        account_id = meta.get('config', {}).get('account_id')
        account_id = str(account_id) if account_id else ''
        account = account or account_id or UNKNOWN
        seen.add((account, policy))
        if run.date:
            start = meta.get('execution', {}).get('start')
            report.runs.append({
                'account': account, 'policy': policy,
                'folder': run.path.relative_to(out).as_posix(), 'older': run.older,
                'started': datetime.fromtimestamp(start, timezone.utc).strftime(
                    '%Y-%m-%d %H:%M:%S UTC') if start else None})
        resources = this_runs_resources(run.path, meta)
        if resources is None and not raised(meta) and deployment(run, meta):
            report.deployed.append({
                'account': account, 'policy': policy,
                'region': meta.get('config', {}).get('region') or '',
                'output': (meta.get('policy', {}).get('mode', {})
                           .get('execution-options', {}).get('output_dir') or '')})
            continue
        if resources is None:
            failure = '%s: %s' % (
                'the deployment of its Lambda function failed' if deployment(run, meta)
                else 'the policy stopped before its filters finished',
                failure_reason(run, meta, layout))
        else:
            rows = rows_of(run.path, policy, meta, account, account_id, resources)
            report.rows.extend(rows)
            failed = sum(r.step == lifecycle.FAILED for r in rows)
            failure = ('%d keys failed' % failed if failed else
                       failure_reason(run, meta, layout) if raised(meta) else None)
        if failure:
            report.failures.append({'account': account, 'policy': policy,
                                    'reason': failure})
    report.rows.sort(key=lambda r: (r.account, r.policy, r.user, r.key_id))
    if accounts and report.layout in ('c7n-org', 'per-account'):
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


# What c7n logs when it deploys a policy in a Lambda mode instead of running it.
PROVISIONING = 'Provisioning policy lambda'


def deployment(run: RunDir, meta: dict) -> bool:
    """This run deployed the policy's Lambda function (and wrote no resources.json)."""
    return any(level == 'INFO' and message.startswith(PROVISIONING)
               for level, message, _ in log_entries(run, meta))


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
    resources = json_of(run_dir, 'resources.json') if count is not None else None
    if resources is None:
        return None
    return resources if len(resources) == count else None


def log_entries(run: RunDir, meta: dict) -> List[tuple]:
    """This run's entries of custodian-run.log: [(level, message, [more lines])].

    In a folder, c7n appends to the log on every run, one `asctime - name - LEVEL -
    message` line per entry in local time, to the millisecond (truncated, like the
    start below). A blob output (s3://, dated and gzipped) uploads each run's own log
    from a fresh folder, in the local time of wherever it ran (UTC in Lambda): all of
    it is this run's, and its times are not compared."""
    log = found(run.path, LOG)
    start = meta.get('execution', {}).get('start')
    if start is None or log is None:
        return []
    start_ms = int(start) * 1000 + int((start - int(start)) * 1000)
    entries, mine = [], bool(run.date) or log.name.endswith(GZ)
    for line in text_of(log).splitlines():
        m = LINE.match(line)
        if m and not mine:
            at = time.mktime(time.strptime(m[1], '%Y-%m-%d %H:%M:%S'))
            mine = int(at) * 1000 + int(m[2]) >= start_ms
        if m and mine:
            entries.append((m[4], m[5], []))
        elif mine and entries:
            entries[-1][2].append(line)
    return entries


def failure_reason(run: RunDir, meta: dict, layout: Optional[str]) -> str:
    """Why this run failed, from its part of the log: the exception c7n logged with
    its traceback (`custodian run`), else the first ERROR line (c7n-org mutes the
    traceback: an action that fails a run logs its reason itself)."""
    entries = log_entries(run, meta)
    for level, message, more in reversed(entries):
        raised_with = exception_of(more) if level == 'ERROR' and message == RAISED else None
        if raised_with:
            return raised_with[:300]
    errors = [m for level, m, _ in entries if level == 'ERROR' and m != RAISED]
    if errors:
        return errors[0][:300]
    if layout == 'c7n-org':
        return 'no reason in %s: c7n-org logs the error to its own output' % LOG
    return 'no reason in %s' % (found(run.path, LOG) or run.path / LOG)


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


def rows_of(run_dir: Path, name: str, meta: dict, account: str, account_id: str,
            resources: list) -> List[Row]:
    policy = meta.get('policy', {})
    # Only this run's records: the file may be an earlier run's.
    run_id = meta.get('execution', {}).get('id')
    records = {(r['UserName'], r['AccessKeyId']): r
               for r in json_of(run_dir, ACTION_FILE) or ()
               if run_id and r.get('ExecutionId') == run_id}
    would = meta.get('config', {}).get('dryrun') and action_settings(policy) is not None
    rows = []
    for res in resources:
        for ann in res.get(ANNOTATION, ()):
            row = Row(account=account, account_id=account_id, policy=name,
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
        rows.append(Row(account=account, account_id=account_id, policy=name,
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
        prefix=action.get('marker-tag-prefix', MARKER_PREFIX),
        reactivation_grace=timedelta(days=filter_days(policy.get('filters')) or 0),
        approval=action.get('approval-tag'))
    now = datetime.fromtimestamp(meta['execution']['start'], timezone.utc)
    key = ListedKey(user=row.user, key_id=row.key_id, status=row.status,
                    created=now)
    plan = lifecycle.plan_matched(row.user, row.key_id, key,
                                  markers.markers_of(resource.get('Tags'), opts.prefix,
                                                     opts.approval),
                                  now, opts, is_self=False)
    if plan.delete:
        used = ann.get('LastUsedDate')
        plan = lifecycle.confirm_delete(
            plan, key, datetime.fromisoformat(used) if used else None, now, opts)
    row.step, row.would = plan.step, True
    row.delete_on = plan.delete_on.isoformat() if plan.delete_on else None


# -- writing ---------------------------------------------------------------

# A Lambda deployment's row: where the function's own runs write their output.
DEPLOYED = ('account', 'policy', 'region', 'its runs write to')
NOT_KEPT = "the function's /tmp (no s3:// output_dir in execution-options)"
# Of dated (s3://) outputs, the folder read for each policy and the older ones left.
RUNS = ('run read (latest of its policy)', 'started', 'older runs')
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


def with_policy(report: Report, header, rows):
    """The table's columns, with the policy's after the account's when the rows come
    from more than one policy (a key then shows once per policy that matched it)."""
    if len({r.policy for r in report.rows}) < 2:
        return header, rows, SHRINK, DROP
    bump = tuple(i + (i >= 1) for i in SHRINK) + (1,)
    return ((header[0], 'policy') + header[1:],
            [[c[0], r.policy] + c[1:] for c, r in zip(rows, report.rows)],
            bump, tuple(i + (i >= 1) for i in DROP))


def render(report: Report, fmt: str, width: Optional[int] = None) -> str:
    if fmt == 'json':
        return json.dumps({'layout': report.layout, 'rows': [asdict(r) for r in report.rows],
                           'totals': report.totals(), 'failures': report.failures,
                           'deployed': report.deployed, 'runs': report.runs}, indent=2)
    if fmt == 'csv':
        out = io.StringIO()
        w = csv.writer(out, lineterminator='\n')
        w.writerow(COLUMNS + ('error', 'policy'))
        for r in report.rows:
            w.writerow(cells(r) + [r.error or '', r.policy])
        return out.getvalue()
    header, rows, shrink, drop = with_policy(report, COLUMNS, [cells(r) for r in report.rows])
    totals = [[scope] + ['%s %d' % kv for kv in t.items()]
              for scope, t in report.totals().items()]
    totals = [[t[0], ', '.join(t[1:])] for t in totals]
    failures = [[f['account'], f['policy'], f['reason']] for f in report.failures]
    deployed = [[d['account'], d['policy'], d['region'], d['output'] or NOT_KEPT]
                for d in report.deployed]
    runs = [[r['folder'], r['started'] or '', str(r['older'])] for r in report.runs]
    if fmt == 'markdown':
        parts = [markdown(header, rows), '', '**Totals**', '',
                 markdown(('account', 'keys'), totals)]
        if failures:
            parts += ['', '**Failed**', '', markdown(('account', 'policy', 'reason'), failures)]
        if deployed:
            parts += ['', '**Deployed**', '', markdown(DEPLOYED, deployed)]
        if runs:
            parts += ['', '**Runs read**', '', markdown(RUNS, runs)]
        return '\n'.join(parts) + '\n'
    width = width or shutil.get_terminal_size((120, 24)).columns
    parts = [table(header, rows, width, shrink=shrink, drop=drop), '',
             table(('totals', 'keys'), totals, width, shrink=(1,))]
    if failures:
        parts += ['', table(('FAILED account', 'policy', 'reason'), failures, width,
                            shrink=(2,))]
    if deployed:
        parts += ['', table(('DEPLOYED account',) + DEPLOYED[1:], deployed, width,
                            shrink=(3, 1))]
    if runs:
        parts += ['', table(RUNS, runs, width, shrink=(0,))]
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
    # Not among `actions`: nothing was changed, but a person is needed.
    if 'awaiting-approval' in fail_on and any(
            r.step == lifecycle.AWAITING_APPROVAL for r in report.rows):
        return EXIT_FAIL_ON
    return 0


def run_report(output_dir: str, fmt: str, fail_on, config: Optional[str],
               width: Optional[int]) -> int:
    accounts = None
    if config:
        from .accounts import load_accounts
        accounts = load_accounts(config)
    if output_dir.startswith('s3://'):
        try:
            report = read_s3(output_dir, accounts)
        except S3Error as e:
            print('c7n-unused-keys report: cannot read %s: %s' % (output_dir, e),
                  file=sys.stderr)
            return EXIT_ERRORS
    else:
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


class S3Error(Exception):
    pass


def read_s3(url: str, accounts: Optional[Dict[str, str]] = None) -> Report:
    """The report of an `s3://bucket/prefix` output (c7n's `?region=` is taken too).

    Lists the prefix, downloads only the folders of the runs the report reads (the
    latest of each policy) to a temporary folder, and reads them there. boto3 is
    imported here only: a local report needs neither boto3 nor c7n. boto3 (1.28 and
    later) takes AWS_ENDPOINT_URL and the credentials from the environment itself."""
    from urllib.parse import parse_qs, urlparse
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError
    parsed = urlparse(url)
    bucket, prefix = parsed.netloc, parsed.path.strip('/')
    base = prefix + '/' if prefix else ''
    try:
        client = boto3.client('s3', region_name=parse_qs(parsed.query).get('region', [None])[0])
        pages = client.get_paginator('list_objects_v2').paginate(Bucket=bucket, Prefix=base)
        # Keys whose path could leave the temporary folder are not c7n's: left out.
        files = [f for f in (o['Key'][len(base):] for page in pages
                             for o in page.get('Contents', ()))
                 if not {'', '.', '..'} & set(f.split('/'))]
        with tempfile.TemporaryDirectory(prefix='c7n-unused-keys-report-') as tmp:
            out = Path(tmp)
            wanted = {run.path for run in runs_of(out, files)[1]}
            for f in files:
                if (out / f).parent in wanted:
                    (out / f).parent.mkdir(parents=True, exist_ok=True)
                    client.download_file(bucket, base + f, str(out / f))
            return read(out, accounts, files)
    except (BotoCoreError, ClientError) as e:
        raise S3Error(str(e)) from e
