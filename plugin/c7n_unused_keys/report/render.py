"""Rendering a report: a table that fits the terminal, markdown, CSV or JSON."""
import csv
import io
import json
import shutil
from dataclasses import asdict
from typing import List, Optional

from .rows import Report, Row

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
    if r.approved_by:
        step += ' (approved by %s)' % r.approved_by
    if r.error:
        step += ': ' + r.error
    # A password's row names its credential where a key's names the key.
    return [r.account, r.user, r.key_id or r.credential, r.status or '', used, via,
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
        w.writerow(COLUMNS + ('runs', 'error', 'policy', 'credential'))
        for r in report.rows:
            w.writerow(cells(r) + [span(r.runs), r.error or '', r.policy, r.credential])
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
