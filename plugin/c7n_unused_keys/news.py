"""Whether a notice has something to say about a resource: the digest's stages.

Mirrors the stages of mailer/templates/unused-access-keys-stages.j2, so that a run
whose keys merely wait out their grace sends nothing at all. Pure: no c7n, no boto3.
"""
from datetime import date
from typing import Optional

from .names import RESULTS_ANNOTATION, UNUSED_ANNOTATION

# Steps that are news whatever their date; `waiting` and `marked` are news once their
# delete-on date is within the notice's window.
NEWS = ('deactivated', 'deleted', 'awaiting-approval', 'failed')
SOON = ('waiting', 'marked')


def says_something(resource: dict, soon: date) -> bool:
    """True when the digest lists at least one key of `resource` (a user, or a key)."""
    own = resource.get('AccessKeyId')
    records = [r for r in resource.get(RESULTS_ANNOTATION, ())
               if not own or r.get('AccessKeyId') == own]
    if not records:
        # A notice without the retire action lists each unused key.
        return bool(resource.get(UNUSED_ANNOTATION))
    return any(r.get('Step') in NEWS or (
        r.get('Step') in SOON and _due(r.get('DeleteOn')) is not None
        and _due(r.get('DeleteOn')) <= soon) for r in records)


def _due(value: Optional[str]) -> Optional[date]:
    return date.fromisoformat(value[:10]) if value else None
