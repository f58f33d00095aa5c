"""IAM writes for retirement: the only module that changes anything in an account."""
import logging
import math
import time
from dataclasses import replace
from datetime import datetime
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

from botocore.exceptions import ClientError

from . import facts, lifecycle, markers
from .errors import describe, is_gone
from .lifecycle import Plan
from .model import Reads

log = logging.getLogger('custodian.retire-access-keys')


def record(plan: Plan, error: Optional[str] = None) -> Dict:
    return {
        'UserName': plan.user,
        'AccessKeyId': plan.key_id,
        'Step': lifecycle.FAILED if error else plan.step,
        'At': plan.at.isoformat(),
        'DeleteOn': plan.delete_on.isoformat() if plan.delete_on and not error else None,
        'Error': error,
        # With `approval-tag`: the user tag whose value (the time, MARKER_FORMAT) approves
        # the key's deletion, while the key waits; None otherwise.
        'ApprovalTag': plan.approval_tag if not error else None,
        # Who approved a delete, as its approval names them ('by' in its value); None
        # for any other step, and for an approval of the time alone.
        'ApprovedBy': plan.approved_by if plan.step == lifecycle.DELETED and not error
        else None,
        # The key's deactivation marker as the run left it (its `told=`, the stages a
        # notice delivered): what notify-unused-keys reads and updates.
        'Marker': plan.marker if not error else None,
    }


def fresh(reads: Optional[Reads], max_age: float,
          clock: Callable[[], float] = time.monotonic) -> Optional[Reads]:
    """`reads` while they are at most `max_age` seconds old, else None; 0 (or anything
    but a finite positive number) never uses them."""
    if reads is None or not 0 < max_age < math.inf or not clock() - reads.at <= max_age:
        return None
    return reads


def plan_user(client, retry, user: str, matched: Sequence[str], m: markers.Markers,
              now: datetime, opts: lifecycle.Options,
              is_self: Callable[[str], bool],
              scope: Optional[Set[str]] = None,
              reads: Optional[Reads] = None,
              tags: Optional[Sequence[dict]] = None) -> Tuple[List[Plan], List[Dict]]:
    """(plans, failure records): one step for each matched key of `user` and tag upkeep
    for its other markers, from a fresh ListAccessKeys, or from the filter's listing in
    `reads` (fresh ones only). Writes nothing.

    With `scope` (the key ids a key-level policy acts on), the markers of keys that
    exist outside it are left alone: another filter of the policy kept those keys out.
    With the user's `tags`, a step whose marker would exceed IAM's tag limit fails
    before any write.
    """
    try:
        listed = reads.keys if reads is not None else facts.list_keys(client, retry, user)
        by_id = {k.key_id: k for k in listed}
    except Exception as e:  # any failure here is this user's, not the run's
        return [], [record(Plan(user=user, key_id=k, step=lifecycle.FAILED, at=now), _why(e))
                    for k in matched]
    plans = [lifecycle.plan_matched(user, k, by_id.get(k), m, now, opts, is_self(k))
             for k in matched]
    plans += [p for k in sorted(m.key_ids() - set(matched))
              if scope is None or k in scope or k not in by_id
              for p in [lifecycle.plan_unmatched(user, k, by_id.get(k), m, now, opts)] if p]
    if tags is None:
        return plans, []
    plans, refused = lifecycle.within_tag_limit(plans, [t['Key'] for t in tags])
    for plan, why in refused:
        log.error('retire-access-keys: %s %s: %s', user, plan.key_id, why)
    return plans, [record(plan, why) for plan, why in refused]


def status_read_again(client, retry, user: str, reads: Optional[Reads]) -> Optional[Reads]:
    """`reads` with the user's keys listed afresh, for a user with a delete planned: an
    owner's reactivation since the filter's read is seen. The last-use dates are kept
    (AWS updates them hours late anyway). None when the listing fails: the recheck then
    makes its own calls, and fails that key if they fail too."""
    if reads is None:
        return None
    try:
        return replace(reads, keys=facts.list_keys(client, retry, user))
    except Exception as e:  # the recheck's own calls decide
        log.warning('retire-access-keys: %s: ListAccessKeys before a delete failed (%s); '
                    'the recheck reads afresh', user, _why(e))
        return None


def execute(client, retry, plan: Plan, now: datetime, opts: lifecycle.Options,
            reads: Optional[Reads] = None) -> Dict:
    """Carry out one plan. A delete is rechecked first: on `reads` (the filter's, fresh
    ones only) when they hold the key's last use, else with fresh calls."""
    try:
        if plan.delete:
            plan = _recheck(client, retry, plan, now, opts, reads)
        if plan.warning:
            log.warning('retire-access-keys: %s %s: %s', plan.user, plan.key_id, plan.warning)
        if plan.deactivate:
            retry(client.update_access_key, UserName=plan.user, AccessKeyId=plan.key_id,
                  Status='Inactive')
        if plan.tag:
            try:
                retry(client.tag_user, UserName=plan.user,
                      Tags=[{'Key': k, 'Value': v} for k, v in plan.tag.items()])
            except Exception as e:  # a lost answer may hide an applied write
                if plan.deactivate and not _gone(e):
                    return _marker_not_confirmed(client, retry, plan, e, opts)
                raise
        if plan.delete:
            _delete(client, retry, plan)
            return _untag_after_delete(client, retry, plan)
        if plan.untag:
            retry(client.untag_user, UserName=plan.user, TagKeys=list(plan.untag))
    except ClientError as e:
        if is_gone(e):
            plan = replace(plan, step=lifecycle.GONE, delete_on=None, approval_tag=None)
            _untag_quietly(client, retry, plan, opts)
        else:
            log.error('retire-access-keys: %s %s: %s failed: %s', plan.user, plan.key_id,
                      plan.step, _why(e))
            return record(plan, _why(e))
    except Exception as e:  # a connection error or timeout fails this key only
        log.error('retire-access-keys: %s %s: %s failed: %s', plan.user, plan.key_id,
                  plan.step, _why(e))
        return record(plan, _why(e))
    return _done(plan)


def _done(plan: Plan) -> Dict:
    log.info('retire-access-keys: %s %s: %s%s', plan.user, plan.key_id, plan.step,
             ' (delete on %s)' % plan.delete_on.isoformat() if plan.delete_on else '')
    return record(plan)


def _gone(e: Exception) -> bool:
    return isinstance(e, ClientError) and is_gone(e)


def _delete(client, retry, plan: Plan):
    try:
        retry(client.delete_access_key, UserName=plan.user, AccessKeyId=plan.key_id)
    except ClientError as e:
        # The recheck saw the key just before. NoSuchEntity on a retried call means an
        # earlier attempt of ours was applied and its answer lost: the key is deleted.
        if not (is_gone(e) and e.response.get('ResponseMetadata', {}).get(
                'RetryAttempts', 0) > 0):
            raise
        log.warning('retire-access-keys: %s %s: DeleteAccessKey was retried and found the '
                    'key gone: an earlier attempt deleted it', plan.user, plan.key_id)
    except Exception as e:  # no answer at all: the delete may have been applied
        try:
            still = any(k.key_id == plan.key_id
                        for k in facts.list_keys(client, retry, plan.user))
        except Exception:  # unknown: report the delete's own error
            raise e
        if still:
            raise
        log.warning('retire-access-keys: %s %s: DeleteAccessKey got no answer, and the key '
                    'is gone: it was deleted', plan.user, plan.key_id)


def _untag_after_delete(client, retry, plan: Plan) -> Dict:
    """The key is gone whatever happens here: a tag left behind is removed next run."""
    if plan.retag:
        try:
            retry(client.tag_user, UserName=plan.user,
                  Tags=[{'Key': k, 'Value': v} for k, v in plan.retag.items()])
        except Exception as e:  # the delete stands; the notice lists it from this record
            log.warning('retire-access-keys: %s %s: deleted, but its marker could not say so '
                        '(%s); a notice that fails now will not tell it again', plan.user,
                        plan.key_id, _why(e))
            plan = replace(plan, marker=None)
    if plan.untag:
        try:
            retry(client.untag_user, UserName=plan.user, TagKeys=list(plan.untag))
        except Exception as e:  # the delete stands; only the tags are left
            log.warning('retire-access-keys: %s %s: deleted, but its tags %s could not be '
                        'removed (%s); the next run removes them', plan.user, plan.key_id,
                        ', '.join(plan.untag), _why(e))
    return _done(plan)


def _marker_not_confirmed(client, retry, plan: Plan, e: Exception,
                          opts: lifecycle.Options) -> Dict:
    """TagUser failed after a deactivation. Leave a state the next run reads right:
    Inactive with its marker (waiting), Inactive without one (marked next run), or Active
    without one. Never Active with a marker, which reads as its owner's reactivation.

    Only a definite refusal (an error answer to a call made once) proves the marker was
    not written, and only then is the key put back. After a lost answer the write may
    have been applied, and a read straight after a write may not show it yet (IAM is
    eventually consistent), so the key stays Inactive; the read only sets the record.
    """
    d_tag = markers.deactivated_tag(opts.prefix, plan.key_id)
    why = _why(e)
    try:
        written = _tag_value(client, retry, plan.user, d_tag)
    except Exception as read:  # the state stands either way; only the record is unsure
        written, why = None, why + '; its marker could not be read back (%s)' % _why(read)
    if written is not None:
        # The write was applied and only its answer lost, or another run marked the key.
        marked = markers.parse_marker(written, plan.at) or markers.MarkerValue(plan.at)
        log.warning('retire-access-keys: %s %s: TagUser failed (%s), but the marker %s=%s is '
                    'there; the key stays deactivated', plan.user, plan.key_id, why, d_tag,
                    written)
        # The record holds the marker that is there (a notice rewrites it with told=).
        return _done(replace(plan, delete_on=lifecycle.delete_on(marked, opts.delete_after),
                             marker=written))
    if not _refused(e):
        why += ('; the key stays Inactive, with or without its marker; the next run waits '
                'for it or marks it')
        log.error('retire-access-keys: %s %s: %s', plan.user, plan.key_id, why)
        return record(plan, why)
    try:
        retry(client.update_access_key, UserName=plan.user, AccessKeyId=plan.key_id,
              Status='Active')
    except Exception as undo:  # Inactive without a marker is marked next run
        why += '; the key stays Inactive without a marker (%s); the next run marks it' % (
            _why(undo))
        log.error('retire-access-keys: %s %s: %s', plan.user, plan.key_id, why)
        return record(plan, why)
    why += '; the key was reactivated, as its marker could not be written'
    try:
        # Another run may have marked the key meanwhile, and a read straight after its
        # write may not show it (IAM is eventually consistent): remove it unread.
        # Removing a tag the user does not hold is no error.
        retry(client.untag_user, UserName=plan.user, TagKeys=[d_tag])
    except Exception as check:  # reported; the next run may read a reactivation
        why += '; a marker written meanwhile by another run could not be removed (%s)' % (
            _why(check))
    log.error('retire-access-keys: %s %s: %s', plan.user, plan.key_id, why)
    return record(plan, why)


# 409 ConcurrentModification: another write to the user was in flight (another run's
# marker, most likely). Ours was not applied, but the user's tags are unknown until
# reads catch up with that write, so the key is not put back on its account.
NOT_DEFINITE = ('ConcurrentModification',)


def _refused(e: Exception) -> bool:
    """An error answer (4xx, not throttling, not a concurrent write) to a call sent once:
    nothing was applied, and nothing else was being written."""
    if not isinstance(e, ClientError):
        return False
    meta = e.response.get('ResponseMetadata', {})
    code = e.response.get('Error', {}).get('Code', '')
    return (meta.get('RetryAttempts', 0) == 0 and meta.get('HTTPStatusCode', 500) < 500
            and 'Throttl' not in code and code not in NOT_DEFINITE)


def _tag_value(client, retry, user: str, key: str) -> Optional[str]:
    tags = retry(client.get_user, UserName=user)['User'].get('Tags', ())
    return next((t['Value'] for t in tags if t['Key'] == key), None)


def _recheck(client, retry, plan: Plan, now: datetime, opts: lifecycle.Options,
             reads: Optional[Reads] = None) -> Plan:
    """The key's status and last use right before an irreversible delete: from `reads`
    when they hold them, else from fresh ListAccessKeys and GetAccessKeyLastUsed."""
    if reads is not None and plan.key_id in reads.last_used:
        used = reads.last_used[plan.key_id]
        listed = next((k for k in reads.keys if k.key_id == plan.key_id), None)
        return lifecycle.confirm_delete(plan, listed, used.last_used, now, opts)
    listed = next((k for k in facts.list_keys(client, retry, plan.user)
                   if k.key_id == plan.key_id), None)
    used = facts.last_used(client, retry, listed) if listed is not None else None
    if listed is not None and used is None:
        listed = None
    return lifecycle.confirm_delete(plan, listed, used.last_used if used else None, now, opts)


def _untag_quietly(client, retry, plan: Plan, opts: lifecycle.Options):
    """After NoSuchEntity: drop the key's tags, if its user is still there."""
    try:
        retry(client.untag_user, UserName=plan.user, TagKeys=[
            markers.deactivated_tag(opts.prefix, plan.key_id),
            markers.reactivated_tag(opts.prefix, plan.key_id)] + (
                [markers.approval_tag(opts.approval, plan.key_id)] if opts.approval else []))
    except ClientError:
        pass


def _why(e: Exception) -> str:
    if isinstance(e, ClientError):
        return '%s (%s)' % (describe(e), e.operation_name)
    return '%s: %s' % (type(e).__name__, e)
