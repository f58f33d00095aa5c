"""Whether a notice has something to say about a resource: the digest's stages.

Mirrors the stages of mailer/templates/unused-access-keys-stages.j2, so that a run
whose keys merely wait out their grace sends nothing at all. Pure: no c7n, no boto3.
"""
from datetime import date, datetime, timezone
from typing import List, Optional

from . import lifecycle, markers
from .names import PASSWORD_RESULTS, RESULTS_ANNOTATION, UNUSED_ANNOTATION

# Steps whose key is news once its delete-on date is within the notice's window.
SOON = (lifecycle.WAITING, lifecycle.MARKED)
# The digest's stage of each step, as the owner's news; `waiting` and `marked` keys are
# deactivated, and `soon` once their delete-on date is within the notice's window.
# A console password (retire-passwords) takes the same stages: marked is its notice
# ("removed on <date> unless used"), removed its deletion.
STAGE_OF_STEP = {lifecycle.DEACTIVATED: 'deactivated', lifecycle.MARKED: 'deactivated',
                 lifecycle.WAITING: 'deactivated', lifecycle.AWAITING_APPROVAL: 'approval',
                 lifecycle.DELETED: 'deleted', 'removed': 'deleted'}
FAILED = lifecycle.FAILED


def records_of(resource: dict) -> List[dict]:
    """The records a notice tells of a resource: a user's all, its password's too; a
    key's own, and those it carries for keys of its owner that are not resources
    (deleted, or not matched)."""
    own = resource.get('AccessKeyId')
    return [r for r in resource.get(RESULTS_ANNOTATION, ())
            if not own or own in (r.get('AccessKeyId'), r.get('CarriedBy'))] + (
        [] if own else list(resource.get(PASSWORD_RESULTS, ())))


def stage(record: dict, soon: date) -> Optional[str]:
    """The stage a key is at, from its record, for a notice whose window ends `soon`."""
    step = record.get('Step')
    if step == FAILED:
        return FAILED
    found = STAGE_OF_STEP.get(step)
    due = _due(record.get('DeleteOn') or record.get('RemoveOn'))
    if step in SOON and due is not None and due <= soon:
        found = 'soon'
    return found


def news(record: dict, soon: date, now: datetime) -> Optional[str]:
    """The stage a notice tells of this key, or None: a stage after the last one a
    notice delivered (the `told=` of its marker), or a failure, which is always news.

    A record without `Marker` (of an earlier version) keeps the earlier rule: every
    deactivation, deletion, approval and failure, and each run in the window."""
    found = stage(record, soon)
    if found is None or found == FAILED:
        return found
    if 'Marker' not in record:
        legacy = found != 'deactivated' or record.get('Step') == lifecycle.DEACTIVATED
        return found if legacy else None
    marker = markers.parse_marker(record['Marker'], now) if record['Marker'] else None
    told = marker.told_stage if marker is not None else None
    if told is not None and markers.TOLD.index(found) <= markers.TOLD.index(told):
        return None
    return found


def says_something(resource: dict, soon: date, now: Optional[datetime] = None) -> bool:
    """True when the digest lists at least one key of `resource` (a user, or a key)."""
    records = records_of(resource)
    if not records:
        # A notice without the retire action lists each unused key.
        return bool(resource.get(UNUSED_ANNOTATION))
    now = now or datetime.now(timezone.utc)
    return any(news(r, soon, now) for r in records)


def _due(value: Optional[str]) -> Optional[date]:
    return date.fromisoformat(value[:10]) if value else None
