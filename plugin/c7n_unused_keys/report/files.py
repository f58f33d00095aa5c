"""Reading c7n's files: bounded, decompressed, parsed, and checked for the shape
the report relies on before it is used."""
import gzip
import json
import math
import os
import zlib
from pathlib import Path
from typing import Optional, Union

from ..names import UNUSED_ANNOTATION
from .layout import GZ

# No file is read beyond this size, decompressed: a damaged or hostile file (a gzip
# bomb) is refused instead of filling memory. Far above what c7n writes for the
# largest accounts (resources.json of 10,000 users is about 20 MiB).
MAX_FILE_BYTES = 64 << 20


class Damaged(Exception):
    """A file of the output that cannot be read as c7n writes it."""

    def __init__(self, path: Path, why: str):
        super().__init__('%s: %s' % (path, why))
        self.path, self.why = path, why


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


def password_records_shape(records, where='records') -> Optional[str]:
    if not isinstance(records, list):
        return '%s is not a list' % where
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            return '%s[%d] is not an object' % (where, i)
        for name, optional in (('UserName', False), ('Step', False), ('RemoveOn', True),
                               ('Error', True), ('ExecutionId', True)):
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
