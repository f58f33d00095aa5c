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
import math
import os
import re
import shutil
import sys
import tempfile
import time
import zlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Union

from . import lifecycle, markers
from .model import ListedKey
from .names import RUN_RECORDS, UNUSED_ANNOTATION

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
    # The runs read in its folder (1: the oldest) whose record of the key the row shows.
    runs: List[int] = field(default_factory=list)


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
# Several runs share a folder (Lambda's retries in the same hour, a reused `-s`):
# each run of the action also writes its records to a file named by the run
# (names.RUN_RECORDS), which no later run overwrites; the report reads them all
# (the latest MAX_RUN_FILES) beside the last run's files.

LOG = 'custodian-run.log'
# The message c7n logs (with the traceback) when a policy run raises; c7n-org mutes it.
RAISED = 'Error while executing policy'
LINE = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) - (\S+) - ([A-Z]+) - (.*)$')
UNKNOWN = 'unknown'


LAYOUTS = {1: 'custodian', 2: 'per-account', 3: 'c7n-org'}
# c7n's blob outputs (s3://) put each run under `<policy>/YYYY/MM/DD/HH/` (UTC hour).
DATE = re.compile(r'^(.*)/(\d{4}/\d\d/\d\d/\d\d)$')
GZ = '.gz'
# The per-run record files of retire-access-keys (names.RUN_RECORDS), plain or gzipped;
# their names sort by the run's start.
RUN_FILE = re.compile('^%s(\\.gz)?$' % (re.escape(RUN_RECORDS) % (
    r'\d{8}T\d{12}Z', r'[0-9A-Za-z-]{1,64}')))
# At most this many runs' record files of one policy folder are read: the latest ones.
MAX_RUN_FILES = 50
# No file is read beyond this size, decompressed: a damaged or hostile file (a gzip
# bomb) is refused instead of filling memory. Far above what c7n writes for the
# largest accounts (resources.json of 10,000 users is about 20 MiB).
MAX_FILE_BYTES = 64 << 20
# The files the report reads in a policy folder (besides the run record files).
READ_NAMES = ('metadata.json', 'resources.json', ACTION_FILE, LOG)


class Damaged(Exception):
    """A file of the output that cannot be read as c7n writes it."""

    def __init__(self, path: Path, why: str):
        super().__init__('%s: %s' % (path, why))
        self.path, self.why = path, why


@dataclass
class RunDir:
    path: Path                   # the folder, local
    parts: tuple                 # its path below OUT without the date folders
    date: Optional[str] = None   # YYYY/MM/DD/HH of a blob output
    older: int = 0               # older dated runs of the same policy, not read

    @property
    def policy(self) -> str:
        return self.parts[-1]


@dataclass
class RunRecords:
    """One run's records: from its own file, or (the latest run) from the action file."""
    execution_id: str
    start: Optional[float]
    records: List[dict]
    error: Optional[str] = None  # what failed the run as a whole (its circuit breaker)
    number: int = 0              # 1 for the oldest run read in its folder


def files_below(out: Path):
    """([every regular file], [every symbolic link]) below `out`, as paths relative to
    it. Links are not followed: what they point to may lie outside the output."""
    files, links = [], []
    for root, dirs, names in os.walk(out):
        base = Path(root)
        for name in dirs + names:
            path = base / name
            if path.is_symlink():
                links.append(path.relative_to(out).as_posix())
            elif name in names and path.is_file():
                files.append(path.relative_to(out).as_posix())
    return sorted(files), sorted(links)


def base_name(name: str) -> str:
    return name[:-len(GZ)] if name.endswith(GZ) else name


def runs_of(out: Path, files: Optional[Iterable[str]] = None):
    """(layout, [RunDir] read, [RunDir] of other layouts, not read) of the output under
    `out`; layout None when there is none.

    A policy folder is one with a metadata.json or a custodian-run.log (or either
    gzipped): c7n opens the log before it can fail on credentials, and writes
    metadata.json after. `files` lists the output's files relative to `out` (default:
    what is on disk). Layouts are told apart by depth; the shallowest found wins.
    Of the dated folders of one policy, the latest is read. Runs within one hour
    share a folder (see `read`), so no two folders of a policy carry the same date;
    an undated folder counts as older than any dated one."""
    folders = set()
    for f in files_below(out)[0] if files is None else files:
        folder, _, name = f.rpartition('/')
        if folder and base_name(name) in ('metadata.json', LOG):
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


def run_record_names(names: Iterable[str]):
    """([the names to read], how many left unread) of the run record files among
    `names` (one folder's): the latest MAX_RUN_FILES, a gzipped copy counting once."""
    by_run = {}
    for name in sorted(names):
        if RUN_FILE.match(name):
            by_run.setdefault(base_name(name), name)
    latest = sorted(by_run)[-MAX_RUN_FILES:]
    return [by_run[n] for n in latest], len(by_run) - len(latest)


def found(run_dir: Path, name: str) -> Optional[Path]:
    """The file `name` of a policy folder, or its gzipped copy as a blob output leaves."""
    for path in (run_dir / name, run_dir / (name + GZ)):
        if path.is_symlink():
            raise Damaged(path, 'a symbolic link to %s, not read: the report reads only '
                                'the files inside the output' % os.readlink(path))
        if path.is_file():
            return path
    return None


def bytes_of(path: Path, tail: bool = False) -> Union[bytes, bytearray]:
    """The file's content, decompressed, at most MAX_FILE_BYTES of it: beyond, Damaged
    (or, with `tail`, its last MAX_FILE_BYTES: a log a reused folder keeps growing)."""
    bound = MAX_FILE_BYTES
    limit = 'larger than %s%s, the most the report reads of a file' % (
        '%d MiB' % (bound >> 20) if bound % (1 << 20) == 0 else '%d bytes' % bound,
        ' decompressed' if path.name.endswith(GZ) else '')
    try:
        if path.name.endswith(GZ):
            with gzip.open(path, 'rb') as fh:
                data = _bounded_read(fh, MAX_FILE_BYTES + 1)
        else:
            with open(path, 'rb') as fh:
                size = os.fstat(fh.fileno()).st_size
                if size > MAX_FILE_BYTES and not tail:
                    raise Damaged(path, limit)
                fh.seek(max(0, size - MAX_FILE_BYTES))
                data = fh.read(MAX_FILE_BYTES + 1)
    except gzip.BadGzipFile as e:
        raise Damaged(path, 'not gzip (%s)' % e) from e
    except EOFError as e:
        raise Damaged(path, 'cut short (%s)' % e) from e
    except (OSError, zlib.error) as e:
        raise Damaged(path, 'cannot be read (%s)' % e) from e
    if len(data) > MAX_FILE_BYTES:
        raise Damaged(path, limit)
    return data


def _bounded_read(fh, most: int) -> bytearray:
    """At most `most` bytes of a stream, read a MiB at a time into one buffer: GzipFile's
    own read(n) gathers its chunks and joins them, which holds the content about three
    times over."""
    data = bytearray()
    while len(data) < most:
        chunk = fh.read(min(1 << 20, most - len(data)))
        if not chunk:
            break
        data += chunk
    return data


def text_of(path: Path, tail: bool = False) -> str:
    return bytes_of(path, tail).decode('utf-8', errors='replace')


def json_of(run_dir: Path, name: str, check=None):
    """The parsed file `name` of a policy folder (None when it is not there), checked
    by `check(value)`, which returns what is wrong with its shape, if anything."""
    path = found(run_dir, name)
    return None if path is None else parsed(path, check)


def parsed(path: Path, check=None):
    try:
        value = json.loads(text_of(path))
    except (ValueError, RecursionError) as e:
        raise Damaged(path, 'not valid JSON (%s)' % (str(e)[:100] or type(e).__name__)) from e
    wrong = check(value) if check else None
    if wrong:
        raise Damaged(path, 'not in the shape it is written in: %s' % wrong)
    return value


# -- shapes: what the report relies on, checked before it is used ------------

def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _text(v, optional=True) -> bool:
    return isinstance(v, str) or (optional and v is None)


def metadata_shape(meta) -> Optional[str]:
    if not isinstance(meta, dict):
        return 'not a JSON object'
    for key in ('execution', 'config', 'policy'):
        if not isinstance(meta.get(key, {}), dict):
            return '%s is not an object' % key
    execution = meta.get('execution', {})
    if 'start' in execution and not _number(execution['start']):
        return 'execution.start is not a number'
    if not _text(execution.get('id')):
        return 'execution.id is not a string'
    found_metrics = meta.get('metrics', [])
    if not isinstance(found_metrics, list) or not all(isinstance(m, dict)
                                                      for m in found_metrics):
        return 'metrics is not a list of objects'
    policy = meta.get('policy', {})
    if not isinstance(policy.get('actions', []), list):
        return 'policy.actions is not a list'
    mode = policy.get('mode', {})
    if not isinstance(mode, dict) or not isinstance(mode.get('execution-options', {}), dict):
        return 'policy.mode is not an object'
    return None


ANNOTATION_FIELDS = (('AccessKeyId', False), ('Status', True), ('LastUsedDate', True),
                     ('LastUsedService', True), ('LastUsedRegion', True))


def resources_shape(resources) -> Optional[str]:
    if not isinstance(resources, list):
        return 'not a JSON array'
    for i, res in enumerate(resources):
        if not isinstance(res, dict) or not isinstance(res.get('UserName'), str):
            return 'resource %d has no UserName' % i
        tags = res.get('Tags', [])
        if not isinstance(tags, list) or not all(
                isinstance(t, dict) and _text(t.get('Key'), False) and _text(t.get('Value'))
                for t in tags):
            return 'resource %d: Tags is not a list of Key/Value objects' % i
        anns = res.get(UNUSED_ANNOTATION, [])
        if not isinstance(anns, list):
            return 'resource %d: %s is not a list' % (i, UNUSED_ANNOTATION)
        for ann in anns:
            if not isinstance(ann, dict):
                return 'resource %d: %s holds a non-object' % (i, UNUSED_ANNOTATION)
            for name, optional in ANNOTATION_FIELDS:
                if not _text(ann.get(name), optional):
                    return 'resource %d: %s.%s is not a string' % (i, UNUSED_ANNOTATION, name)
            idle = ann.get('IdleDays')
            if idle is not None and not _number(idle):
                return 'resource %d: %s.IdleDays is not a number' % (i, UNUSED_ANNOTATION)
    return None


def records_shape(records, where='records') -> Optional[str]:
    if not isinstance(records, list):
        return '%s is not a list' % where
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            return '%s[%d] is not an object' % (where, i)
        for name, optional in (('UserName', False), ('AccessKeyId', False), ('Step', False),
                               ('DeleteOn', True), ('Error', True), ('ExecutionId', True)):
            if not _text(rec.get(name), optional):
                return '%s[%d].%s is not a string' % (where, i, name)
    return None


def run_records_shape(value) -> Optional[str]:
    if not isinstance(value, dict):
        return 'not a JSON object'
    if not _text(value.get('ExecutionId'), False):
        return 'ExecutionId is not a string'
    if not _number(value.get('Start')):
        return 'Start is not a number'
    if not _text(value.get('Error')):
        return 'Error is not a string'
    return records_shape(value.get('Records'), 'Records')


# -- reading a whole output ---------------------------------------------------

def failure(account, policy, reason) -> Dict[str, str]:
    return {'account': account, 'policy': policy, 'reason': reason}


def damaged(out: Path, e: Damaged) -> str:
    """The reason of a failure for a damaged file: its path below OUT, then why."""
    try:
        where = e.path.relative_to(out).as_posix()
    except ValueError:
        where = str(e.path)
    return '%s: %s' % (where, e.why)


def read(out: Path, accounts: Optional[Dict[str, str]] = None,
         files: Optional[Iterable[str]] = None) -> Report:
    links = []
    if files is None:
        files, links = files_below(out)
    layout, runs, skipped = runs_of(out, files)
    report = Report(layout=layout or ('c7n-org' if accounts else 'none'))
    for run in skipped:
        report.failures.append(failure(
            '*', '/'.join(run.parts),
            'not read: %s output beside the %s output read; report on each folder on its '
            'own' % (LAYOUTS[len(run.parts)], layout)))
    seen = set()
    folders = {run.path.relative_to(out).as_posix() for run in runs}
    for link in links:
        folder, _, name = link.rpartition('/')
        if folder in folders and base_name(name) in READ_NAMES:
            continue  # named by its folder's reading, as the file it stands for
        parts = link.split('/')
        account = '*'
        if report.layout in ('c7n-org', 'per-account'):
            account = (accounts or {}).get(parts[0], parts[0])
            seen.add((account, '*'))
        report.failures.append(failure(account, '*', (
            '%s: a symbolic link to %s, not read: the report reads only the files inside '
            'the output, and follows no link' % (link, os.readlink(out / link)))))
    names: Dict[str, List[str]] = {}
    for f in files:
        folder, _, name = f.rpartition('/')
        names.setdefault(folder, []).append(name)
    for run in runs:
        # The folder above the policy's: c7n-org's account name, or a per-account
        # prefix (often the account id, which the accounts file names).
        account = (accounts or {}).get(run.parts[0], run.parts[0]) if len(run.parts) > 1 \
            else None
        try:
            read_run(report, out, run, account, layout, seen,
                     names.get(run.path.relative_to(out).as_posix(), []))
        except Damaged as e:
            seen.add((account or UNKNOWN, run.policy))
            report.failures.append(failure(account or UNKNOWN, run.policy, damaged(out, e)))
        except Exception as e:  # noqa: BLE001 - content no check foresaw: one folder's loss
            seen.add((account or UNKNOWN, run.policy))
            report.failures.append(failure(account or UNKNOWN, run.policy, '%s: cannot be read '
                                           '(%s: %s)' % (run.path.relative_to(out).as_posix(),
                                                         type(e).__name__, e)))
    report.rows.sort(key=lambda r: (r.account, r.policy, r.user, r.key_id))
    if accounts and report.layout in ('c7n-org', 'per-account'):
        policies = {p for _, p in seen if p != '*'}
        for account_id, name in accounts.items():
            if not any(a == name for a, _ in seen):
                report.failures.append(failure(name, '*', NO_OUTPUT))
                continue
            if (name, '*') in seen:
                continue
            for policy in sorted(policies - {p for a, p in seen if a == name}):
                report.failures.append(failure(name, policy, 'no output: the policy did not '
                                                             'run (c7n-org only warns about '
                                                             'this)'))
    return report


def read_run(report: Report, out: Path, run: RunDir, account: Optional[str],
             layout: Optional[str], seen: set, names: List[str]):
    """The rows, failures and deployments of one policy folder, into `report`."""
    policy = run.policy
    meta = json_of(run.path, 'metadata.json', metadata_shape)
    if meta is None:
        account = account or UNKNOWN
        seen.add((account, policy))
        report.failures.append(failure(account, policy, NOT_STARTED))
        return
    account_id = meta.get('config', {}).get('account_id')
    account_id = str(account_id) if account_id else ''
    account = account or account_id or UNKNOWN
    seen.add((account, policy))
    try:
        read_run_files(report, out, run, meta, account, account_id, layout, names)
    except Damaged as e:
        report.failures.append(failure(account, policy, damaged(out, e)))


def read_run_files(report: Report, out: Path, run: RunDir, meta: dict, account: str,
                   account_id: str, layout: Optional[str], names: List[str]):
    policy = run.policy
    resources = this_runs_resources(run.path, meta)
    if resources is None and not raised(meta) and deployment(run, meta):
        report.deployed.append({
            'account': account, 'policy': policy,
            'region': meta.get('config', {}).get('region') or '',
            'output': (meta.get('policy', {}).get('mode', {})
                       .get('execution-options', {}).get('output_dir') or '')})
        return
    history, not_read, problems = runs_recorded(run.path, meta, names)
    for e in problems:
        report.failures.append(failure(account, policy, damaged(out, e)))
    start = meta.get('execution', {}).get('start')
    if run.date or len(history) > 1 or not_read:
        report.runs.append({
            'account': account, 'policy': policy,
            'folder': run.path.relative_to(out).as_posix(), 'older': run.older,
            'started': when(start), 'read': max(len(history), 1), 'not_read': not_read})
    try:
        rows = rows_of(policy, meta, account, account_id, resources or [], history)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        # What the shape checks let through and the rows still trip on.
        raise Damaged(found(run.path, 'resources.json') or run.path,
                      'not in the shape it is written in: %s: %s' % (type(e).__name__, e)) from e
    report.rows.extend(rows)
    latest = {}
    for past in history:
        for rec in past.records:
            latest[(rec['UserName'], rec['AccessKeyId'])] = rec
    failed = sum(rec['Step'] == lifecycle.FAILED for rec in latest.values())
    run_id = meta.get('execution', {}).get('id')
    if failed:
        report.failures.append(failure(account, policy, '%d keys failed' % failed))
    for past in history:
        if past.error and past.execution_id != run_id:
            report.failures.append(failure(account, policy, 'run %d of %d read (started %s) '
                                           'failed: %s' % (past.number, len(history),
                                                           when(past.start), past.error)))
    this_run_failed_keys = any(rec['Step'] == lifecycle.FAILED for past in history
                               if past.execution_id == run_id for rec in past.records)
    if resources is None:
        report.failures.append(failure(account, policy, '%s: %s' % (
            'the deployment of its Lambda function failed' if deployment(run, meta)
            else 'the policy stopped before its filters finished',
            failure_reason(run, meta, layout))))
    elif raised(meta) and not this_run_failed_keys:
        report.failures.append(failure(account, policy, failure_reason(run, meta, layout)))


def when(start) -> Optional[str]:
    return datetime.fromtimestamp(start, timezone.utc).strftime(
        '%Y-%m-%d %H:%M:%S UTC') if start else None


def runs_recorded(run_dir: Path, meta: dict, names: Iterable[str]):
    """([RunRecords] oldest first, numbered; run files left unread; [Damaged]) of a
    policy folder whose files are `names`: every run's own record file (the latest
    MAX_RUN_FILES), and the run
    metadata.json describes, from the action file when it has no file of its own (an
    output of an earlier version) or took no action (a dry run: no records)."""
    problems = []
    chosen, not_read = run_record_names(names)
    history = []
    for name in chosen:
        try:
            path = found(run_dir, base_name(name))
            value = parsed(path, run_records_shape)
        except Damaged as e:
            problems.append(e)
            continue
        history.append(RunRecords(execution_id=value['ExecutionId'], start=value['Start'],
                                  records=value['Records'], error=value.get('Error')))
    run_id = meta.get('execution', {}).get('id')
    try:
        # Only this run's records: the file may be an earlier run's.
        action = [r for r in json_of(run_dir, ACTION_FILE, records_shape) or ()
                  if run_id and r.get('ExecutionId') == run_id]
    except Damaged as e:
        problems.append(e)
        action = []
    if run_id and run_id not in {h.execution_id for h in history}:
        history.append(RunRecords(execution_id=run_id,
                                  start=meta.get('execution', {}).get('start'),
                                  records=action))
    history.sort(key=lambda h: (h.start or 0, h.execution_id != run_id))
    for n, h in enumerate(history, 1):
        h.number = n
    return history, not_read, problems


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


# The resources whose resources.json holds users and keys. A policy of another resource
# in the same output (the account policy that resolves findings) has no rows: only its
# failures are reported.
KEY_RESOURCES = frozenset(('iam-user', 'iam-access-key', 'aws.iam-user',
                           'aws.iam-access-key'))


def holds_keys(meta: dict) -> bool:
    resource = meta.get('policy', {}).get('resource')
    return resource is None or resource in KEY_RESOURCES


def this_runs_resources(run_dir: Path, meta: dict) -> Optional[list]:
    """resources.json if this run wrote it: c7n records ResourceCount right before.
    Of a policy whose resources are not users or keys, an empty list."""
    count = metrics(meta).get('ResourceCount')
    if count is not None and not holds_keys(meta):
        return []
    resources = json_of(run_dir, 'resources.json', resources_shape) \
        if count is not None else None
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
    for line in text_of(log, tail=True).splitlines():
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


def rows_of(name: str, meta: dict, account: str, account_id: str, resources: list,
            history: List[RunRecords]) -> List[Row]:
    """The rows of one policy folder: one per key the filter matched in the run
    metadata.json describes (with that run's record of the key, or the step a dry run
    would take), and one per other step a key took in any run read. Records of
    consecutive runs that agree (a key failing on every retry) make one row, with
    their runs."""
    policy = meta.get('policy', {})
    run_id = meta.get('execution', {}).get('id')
    latest = next((h.number for h in history if h.execution_id == run_id), None)
    steps: Dict[tuple, List[list]] = {}   # key -> [[runs, record]] in the runs' order
    for past in history:
        for rec in past.records:
            groups = steps.setdefault((rec['UserName'], rec['AccessKeyId']), [])
            if groups and (groups[-1][1]['Step'], groups[-1][1]['Error']) == (
                    rec['Step'], rec['Error']):
                groups[-1] = [groups[-1][0] + [past.number], rec]
            else:
                groups.append([[past.number], rec])
    would = meta.get('config', {}).get('dryrun') and action_settings(policy) is not None

    def recorded(row: Row, runs: List[int], rec: dict) -> Row:
        row.step, row.delete_on, row.error = rec['Step'], rec.get('DeleteOn'), rec.get('Error')
        row.runs = runs
        return row

    rows = []
    for res in resources:
        for ann in res.get(UNUSED_ANNOTATION, ()):
            row = Row(account=account, account_id=account_id, policy=name,
                      user=res['UserName'], key_id=ann['AccessKeyId'],
                      status=ann.get('Status'),
                      last_used=(ann.get('LastUsedDate') or '')[:10] or None,
                      last_service=ann.get('LastUsedService'),
                      last_region=ann.get('LastUsedRegion'), idle_days=ann.get('IdleDays'))
            groups = steps.pop((row.user, row.key_id), [])
            mine = groups.pop() if groups and groups[-1][0][-1] == latest else None
            rows.extend(recorded(Row(account=account, account_id=account_id, policy=name,
                                     user=row.user, key_id=row.key_id), runs, rec)
                        for runs, rec in groups)
            if mine:
                recorded(row, *mine)
            elif would:
                would_step(row, res, policy, meta, ann)
            rows.append(row)
    for (user, key_id), groups in sorted(steps.items()):
        rows.extend(recorded(Row(account=account, account_id=account_id, policy=name,
                                 user=user, key_id=key_id), runs, rec) for runs, rec in groups)
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
    opts = lifecycle.options_from(action_settings(policy),
                                  filter_days(policy.get('filters')) or 0)
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
# The folder read for each policy of a dated (s3://) output (and the older ones left),
# and every folder where more than one run's records were read. The folder is last and
# never cut: it is what a reader copies to look further.
RUNS = ('latest run started', 'older folders', 'runs read',
        'folder read (latest of its policy)')
COLUMNS = ('account', 'user', 'key', 'status', 'last used', 'via', 'idle', 'step',
           'delete on')
# For a narrow table: columns cut first (to 8 characters), then columns left out.
SHRINK = (1, 5, 7, 0)
DROP = (5, 3)


def span(runs: List[int]) -> str:
    """`1-3`, `4`, `1,3`: the runs of a row."""
    parts, i = [], 0
    while i < len(runs):
        j = i
        while j + 1 < len(runs) and runs[j + 1] == runs[j] + 1:
            j += 1
        parts.append(str(runs[i]) if i == j else '%d-%d' % (runs[i], runs[j]))
        i = j + 1
    return ','.join(parts)


def several_runs(report: Report) -> bool:
    return any(r['read'] > 1 for r in report.runs)


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
        w.writerow(COLUMNS + ('runs', 'error', 'policy'))
        for r in report.rows:
            w.writerow(cells(r) + [span(r.runs), r.error or '', r.policy])
        return out.getvalue()
    header, rows, shrink, drop = with_policy(report, COLUMNS, [cells(r) for r in report.rows])
    if several_runs(report):
        # Which runs of a shared folder took each step (numbered as in `runs read`).
        header = tuple(header) + ('runs',)
        rows = [c + [span(r.runs)] for c, r in zip(rows, report.rows)]
    totals = [[scope] + ['%s %d' % kv for kv in t.items()]
              for scope, t in report.totals().items()]
    totals = [[t[0], ', '.join(t[1:])] for t in totals]
    failures = [[f['account'], f['policy'], f['reason']] for f in report.failures]
    deployed = [[d['account'], d['policy'], d['region'], d['output'] or NOT_KEPT]
                for d in report.deployed]
    runs = [[r['started'] or '', str(r['older']),
             str(r['read']) + (' (%d older not read)' % r['not_read'] if r['not_read'] else ''),
             r['folder']]
            for r in report.runs]
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
        parts += ['', table(RUNS, runs, width)]
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
        for f in report.failures:
            print('c7n-unused-keys report: %s' % f['reason'], file=sys.stderr)
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
        sizes = {o['Key'][len(base):]: o.get('Size', 0) for page in pages
                 for o in page.get('Contents', ())}
        files = [f for f in sizes if not {'', '.', '..'} & set(f.split('/'))]
        with tempfile.TemporaryDirectory(prefix='c7n-unused-keys-report-') as tmp:
            out = Path(tmp)
            wanted = {run.path for run in runs_of(out, files)[1]}
            by_folder: Dict[Path, List[str]] = {}
            for f in files:
                if (out / f).parent in wanted:
                    by_folder.setdefault((out / f).parent, []).append(f)
            for folder, names in by_folder.items():
                folder.mkdir(parents=True, exist_ok=True)
                # Of the run record files, only those the report reads.
                records = set(run_record_names(f.rsplit('/', 1)[-1] for f in names)[0])
                for f in names:
                    name = f.rsplit('/', 1)[-1]
                    if RUN_FILE.match(name) and name not in records:
                        continue
                    if sizes[f] > MAX_FILE_BYTES:
                        # Its first bytes are enough for the bound to refuse it.
                        body = client.get_object(Bucket=bucket, Key=base + f,
                                                 Range='bytes=0-%d' % MAX_FILE_BYTES)['Body']
                        with open(out / f, 'wb') as fh:
                            shutil.copyfileobj(body, fh)
                    else:
                        client.download_file(bucket, base + f, str(out / f))
            return read(out, accounts, files)
    except (BotoCoreError, ClientError) as e:
        raise S3Error(str(e)) from e
