"""The user tags that hold each key's retirement state. Pure: no AWS.

- `<prefix>:<AccessKeyId>` = time the key was deactivated (the deletion clock).
- `<prefix>-reactivated:<AccessKeyId>` = time a run found the key reactivated by its
  owner. Reactivation counts as use: the key is not deactivated again until the
  filter's `days` have passed since, so a second run on the same day does not undo it.
"""
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Dict, Iterable, Mapping, Optional

from .names import REACTIVATED_SUFFIX

_VALUE = re.compile(r'^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$')
# A marker this far ahead of now was not written by a run: treat it as malformed.
FUTURE_SKEW = timedelta(hours=1)


@dataclass(frozen=True)
class Markers:
    """The retirement tags of one user, by key id (raw values)."""
    deactivated: Mapping[str, str]
    reactivated: Mapping[str, str]

    def key_ids(self):
        return set(self.deactivated) | set(self.reactivated)


def deactivated_tag(prefix: str, key_id: str) -> str:
    return '%s:%s' % (prefix, key_id)


def reactivated_tag(prefix: str, key_id: str) -> str:
    return '%s%s:%s' % (prefix, REACTIVATED_SUFFIX, key_id)


def format_time(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def parse_time(value: Optional[str], now: datetime) -> Optional[datetime]:
    """The time in a marker value; None when absent, malformed or in the future."""
    if value is None or not _VALUE.match(value):
        return None
    try:
        when = datetime.strptime(value, '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return None if when > now + FUTURE_SKEW else when


def markers_of(tags: Iterable[dict], prefix: str) -> Markers:
    found: Dict[str, Dict[str, str]] = {'d': {}, 'r': {}}
    heads = {'d': deactivated_tag(prefix, ''), 'r': reactivated_tag(prefix, '')}
    for tag in tags or ():
        for kind, head in heads.items():
            if tag['Key'].startswith(head) and len(tag['Key']) > len(head):
                found[kind][tag['Key'][len(head):]] = tag['Value']
    return Markers(deactivated=found['d'], reactivated=found['r'])
