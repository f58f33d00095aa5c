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

The report's modules, one job each: `layout` (the output's policy folders), `files` and
`logs` (reading c7n's files, bounded and checked), `rows` (rows and a dry run's steps),
`output` (a whole output into a Report), `render`, and `s3` (the only one that imports
boto3, and only for an s3:// output).
"""
import sys
from pathlib import Path
from typing import Optional

from .. import lifecycle
from .output import read
from .render import render
from .rows import ACTED, Report

EXIT_FAIL_ON = 1
EXIT_ERRORS = 2


def run_report(output_dir: str, fmt: str, fail_on, config: Optional[str],
               width: Optional[int]) -> int:
    accounts = None
    if config:
        from ..accounts import load_accounts
        accounts = load_accounts(config)
    if output_dir.startswith('s3://'):
        from .s3 import S3Error, read_s3
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
