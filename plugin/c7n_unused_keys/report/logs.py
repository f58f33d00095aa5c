"""Reading custodian-run.log: the entries of one run, why it failed, and whether it
deployed a Lambda function instead of running."""
import re
import time
from typing import List, Optional

from .files import found, text_of
from .layout import GZ, LOG, RunDir

# The message c7n logs (with the traceback) when a policy run raises; c7n-org mutes it.
RAISED = 'Error while executing policy'

LINE = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) - (\S+) - ([A-Z]+) - (.*)$')

# What c7n logs when it deploys a policy in a Lambda mode instead of running it.
PROVISIONING = 'Provisioning policy lambda'


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


def deployment(run: RunDir, meta: dict) -> bool:
    """This run deployed the policy's Lambda function (and wrote no resources.json)."""
    return any(level == 'INFO' and message.startswith(PROVISIONING)
               for level, message, _ in log_entries(run, meta))
