"""The user tags that hold each key's retirement state. Pure: no AWS.

- `<prefix>:<AccessKeyId>` = `<time the key was deactivated> delete-on=<time>`: the
  deletion clock and the date that run announced. A later run never deletes before
  that date, whatever the grace is then; a raised grace moves it later (and the
  marker with it). A marker of an earlier version holds the time alone: its date is
  the time plus today's `delete-after-days`.
- `<prefix>-reactivated:<AccessKeyId>` = time a run found the key reactivated by its
  owner. Reactivation counts as use: the key is not deactivated again until the
  filter's `days` have passed since, so a second run on the same day does not undo it.
- `<approval-tag>:<AccessKeyId>` (only with the action's `approval-tag`) = time a
  person approved the key's deletion, then optionally ` by <approver>` (for example
  `2026-12-02T10:00:00Z by slack:U0123ABC`); it counts only when later than the
  deactivation. The time alone is an approval whose approver is not named. Further
  approvals follow, space-separated, each `<time>` or `<time> by <approver>` (IAM tag
  values allow no comma): `2026-12-02T10:00:00Z by slack:U1 2026-12-02T10:05:00Z by
  slack:U2`.
"""
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple

from .names import REACTIVATED_SUFFIX

# The format of every time the tags hold (UTC), as `date -u +%Y-%m-%dT%H:%M:%SZ` writes it.
MARKER_FORMAT = '%Y-%m-%dT%H:%M:%SZ'
_VALUE = re.compile(r'^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$')
DELETE_ON = 'delete-on='

# A marker this far ahead of now was not written by a run: treat it as malformed.
FUTURE_SKEW = timedelta(hours=1)

# An approval's value: its time, then this and who approved.
APPROVED_BY = ' by '
# Who approved: one word of the characters an IAM tag value may hold, less the space.
_APPROVER = re.compile(r'[\w.:/=+\-@]+')


@dataclass(frozen=True)
class Markers:
    """The retirement tags of one user, by key id (raw values)."""
    deactivated: Mapping[str, str]
    reactivated: Mapping[str, str]
    # Approvals of deletion; empty unless the approval tag's head was given.
    approved: Mapping[str, str] = field(default_factory=dict)
    # The user carries the action's `required-approvers-tag`: its deletes need
    # `required-approvers`, others one.
    privileged: bool = False

    def key_ids(self):
        return set(self.deactivated) | set(self.reactivated) | set(self.approved)


def deactivated_tag(prefix: str, key_id: str) -> str:
    return '%s:%s' % (prefix, key_id)


def reactivated_tag(prefix: str, key_id: str) -> str:
    return '%s%s:%s' % (prefix, REACTIVATED_SUFFIX, key_id)


def approval_tag(head: str, key_id: str) -> str:
    return '%s:%s' % (head, key_id)


def heads_overlap(prefix: str, approval: str) -> bool:
    """An approval head whose tags could be read as markers, or the reverse."""
    a_head = approval_tag(approval, '')
    return any(h.startswith(a_head) or a_head.startswith(h)
               for h in (deactivated_tag(prefix, ''), reactivated_tag(prefix, '')))


def format_time(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime(MARKER_FORMAT)


def _time(value: str) -> Optional[datetime]:
    if not _VALUE.match(value):
        return None
    try:
        return datetime.strptime(value, MARKER_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def parse_time(value: Optional[str], now: datetime) -> Optional[datetime]:
    """The time in a tag value; None when absent, malformed or in the future."""
    when = None if value is None else _time(value)
    return None if when is None or when > now + FUTURE_SKEW else when


@dataclass(frozen=True)
class ApprovalValue:
    """One approval of a key's deletion: when it was given, and by whom (None: a value
    of the time alone names no one)."""
    at: datetime
    by: Optional[str] = None


# An approval tag's value holds at most this many approvals: 5 of `<time> by <approver>`
# with approvers of 24 characters stay within IAM's 256 characters a value.
MAX_APPROVALS = 5


def approval_value(at: datetime, by: Optional[str] = None) -> str:
    return format_time(at) + (APPROVED_BY + by if by else '')


def approvals_value(approvals: Sequence[ApprovalValue]) -> str:
    """The tag value of these approvals, in the order given."""
    return ' '.join(approval_value(a.at, a.by) for a in approvals)


def parse_approvals(value: Optional[str], now: datetime) -> Optional[Tuple[ApprovalValue, ...]]:
    """The approvals of an approval tag's value, in their order: each a time, then
    optionally `by <approver>`; None when absent or malformed in any part, or when any
    time is in the future."""
    if value is None:
        return None
    tokens = value.split(' ')
    found, i = [], 0
    while i < len(tokens):
        at = parse_time(tokens[i], now)
        if at is None:
            return None
        by = None
        if i + 1 < len(tokens) and ' %s ' % tokens[i + 1] == APPROVED_BY:
            if i + 2 >= len(tokens) or not _APPROVER.fullmatch(tokens[i + 2]):
                return None
            by, i = tokens[i + 2], i + 3
        else:
            i += 1
        found.append(ApprovalValue(at, by))
    return tuple(found)


def approvers_after(approvals: Iterable[ApprovalValue], since: datetime) -> Tuple[str, ...]:
    """The distinct approvers of approvals given after `since`, in their order; an
    approval that names no one counts as one approver, '' (no name to compare)."""
    seen = []
    for a in approvals:
        who = a.by or ''
        if a.at > since and who not in seen:
            seen.append(who)
    return tuple(seen)


# The stages a notice tells an owner, in the order a key goes through them. A marker's
# `told=` names the last one a notice delivered.
TOLD = ('deactivated', 'soon', 'approval', 'deleted')


@dataclass(frozen=True)
class MarkerValue:
    """A deactivation marker: when the key was deactivated, the delete-on date a run
    announced (None in a marker written before markers held it), when it was deleted
    (the marker of a deleted key is kept until a notice told it), and the last stage a
    notice delivered (None: none yet)."""
    at: datetime
    delete_on: Optional[datetime] = None
    deleted: Optional[datetime] = None
    told: Optional[str] = None

    @property
    def told_stage(self) -> Optional[str]:
        """The last stage told. A marker of an earlier version (the time alone) was
        written by a run whose notice, if any, told the deactivation."""
        if self.delete_on is None:
            return TOLD[0]
        return self.told


def marker_value(at: datetime, delete_on: datetime, deleted: Optional[datetime] = None,
                 told: Optional[str] = None) -> str:
    return ' '.join([format_time(at), DELETE_ON + format_time(delete_on)] +
                    (['deleted=' + format_time(deleted)] if deleted else []) +
                    (['told=' + told] if told else []))


def parse_marker(value: Optional[str], now: datetime) -> Optional[MarkerValue]:
    """A deactivation marker's value; None when absent or malformed in any part, or
    when its deactivation time is in the future or after its delete-on date."""
    if value is None:
        return None
    head, *fields = value.split(' ')
    at = parse_time(head, now)
    if at is None:
        return None
    if not fields:
        return MarkerValue(at)
    found = {}
    for f in fields:
        name, sep, v = f.partition('=')
        if not sep or name in found:
            return None
        found[name] = v
    delete_on = _time(found.pop('delete-on', ''))
    deleted_raw, told = found.pop('deleted', None), found.pop('told', None)
    deleted = None if deleted_raw is None else _time(deleted_raw)
    if (found or delete_on is None or delete_on < at
            or (deleted_raw is not None and deleted is None)
            or (told is not None and told not in TOLD)):
        return None
    return MarkerValue(at, delete_on, deleted, told)


def with_told(value: str, stage: str, now: datetime) -> Optional[str]:
    """The marker `value` once a notice told `stage`; None when it cannot be parsed."""
    m = parse_marker(value, now)
    if m is None or m.delete_on is None:
        return None
    return marker_value(m.at, m.delete_on, m.deleted, stage)


def markers_of(tags: Iterable[dict], prefix: str, approval: Optional[str] = None,
               privileged_tag: Optional[str] = None) -> Markers:
    """The markers of one user; its approvals too when `approval` (the head) is given,
    and whether it carries `privileged_tag` (any value)."""
    found: Dict[str, Dict[str, str]] = {'d': {}, 'r': {}, 'a': {}}
    heads = {'d': deactivated_tag(prefix, ''), 'r': reactivated_tag(prefix, '')}
    if approval:
        heads['a'] = approval_tag(approval, '')
    privileged = False
    for tag in tags or ():
        privileged = privileged or (privileged_tag is not None and tag['Key'] == privileged_tag)
        for kind, head in heads.items():
            if tag['Key'].startswith(head) and len(tag['Key']) > len(head):
                found[kind][tag['Key'][len(head):]] = tag['Value']
    return Markers(deactivated=found['d'], reactivated=found['r'], approved=found['a'],
                   privileged=privileged)
