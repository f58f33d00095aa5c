"""Finding the output's layout: its policy folders, the latest dated run of each,
and the names of the files the report reads in them."""
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Optional

from ..names import RUN_RECORDS

# The action's file of records, in every policy folder it ran in.
ACTION = 'retire-access-keys'
ACTION_FILE = 'action-' + ACTION
# retire-passwords' records, one per user.
PASSWORD_ACTION_FILE = 'action-retire-passwords'

LOG = 'custodian-run.log'

# The files the report reads in a policy folder (besides the run record files).
READ_NAMES = ('metadata.json', 'resources.json', ACTION_FILE, PASSWORD_ACTION_FILE, LOG)

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


@dataclass
class RunDir:
    path: Path                   # the folder, local
    parts: tuple                 # its path below OUT without the date folders
    date: Optional[str] = None   # YYYY/MM/DD/HH of a blob output
    older: int = 0               # older dated runs of the same policy, not read

    @property
    def policy(self) -> str:
        return self.parts[-1]


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
