"""Reading a whole output into a Report.

c7n never clears an output folder: each run overwrites the files it writes and
leaves the others, and appends to custodian-run.log. What belongs to the run
that metadata.json describes is decided from data c7n and the action write:
- metadata.json is written when c7n's execution context exits, also when the
  run fails; a failed run carries a `PolicyException` metric;
- c7n records the `ResourceCount` metric right before it writes resources.json,
  so resources.json is this run's exactly when the metric is there (and counts it);
- each record of the action carries the run's `ExecutionId` (metadata.json's id);
- custodian-run.log lines carry no run id: a line is this run's when its own
  timestamp is at or after the run's start. Both are readings of one clock in one
  process, so no slack is needed; the log only gives the reason of a failure,
  never decides whether there was one.
Several runs share a folder (Lambda's retries in the same hour, a reused `-s`):
each run of the action also writes its records to a file named by the run
(names.RUN_RECORDS), which no later run overwrites; the report reads them all
(the latest MAX_RUN_FILES) beside the last run's files.
"""
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from .. import lifecycle
from .files import (Damaged, found, json_of, metadata_shape, parsed,
                    password_records_shape, records_shape, resources_shape,
                    run_records_shape)
from .layout import ACTION_FILE, LAYOUTS, PASSWORD_ACTION_FILE, READ_NAMES, RunDir, \
    base_name, files_below, run_record_names, runs_of
from .logs import deployment, failure_reason
from .rows import Report, RunRecords, rows_of

UNKNOWN = 'unknown'

NOT_STARTED = ('no metadata.json: c7n could not start the policy (with c7n-org, mostly '
               'credentials or a role that cannot be assumed; c7n-org\'s own log says why)')

NO_OUTPUT = ('no output: no policy ran in this account (no credentials, a role that cannot '
             'be assumed, or a policy c7n-org could not load; c7n-org\'s own log says why)')


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
    run_id = meta.get('execution', {}).get('id')
    try:
        # retire-passwords' records of this run (its file may be an earlier run's).
        passwords = [r for r in json_of(run.path, PASSWORD_ACTION_FILE,
                                        password_records_shape) or ()
                     if run_id and r.get('ExecutionId') == run_id]
    except Damaged as e:
        report.failures.append(failure(account, policy, damaged(out, e)))
        passwords = []
    try:
        rows = rows_of(policy, meta, account, account_id, resources or [], history,
                       passwords)
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
    if failed:
        report.failures.append(failure(account, policy, '%d keys failed' % failed))
    failed = sum(rec['Step'] == lifecycle.FAILED for rec in passwords)
    if failed:
        report.failures.append(failure(account, policy, '%d passwords failed' % failed))
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
