"""IAM writes for retirement: the only module that changes anything in an account."""
import logging
from dataclasses import replace
from datetime import datetime
from typing import Callable, Dict, List, Optional, Sequence

from botocore.exceptions import ClientError

from . import facts, lifecycle, markers
from .errors import describe, is_gone
from .lifecycle import Plan

log = logging.getLogger('custodian.retire-access-keys')


def record(plan: Plan, error: Optional[str] = None) -> Dict:
    return {
        'UserName': plan.user,
        'AccessKeyId': plan.key_id,
        'Step': lifecycle.FAILED if error else plan.step,
        'At': plan.at.isoformat(),
        'DeleteOn': plan.delete_on.isoformat() if plan.delete_on and not error else None,
        'Error': error,
    }


def retire_user(client, retry, user: str, matched: Sequence[str], m: markers.Markers,
                now: datetime, opts: lifecycle.Options,
                is_self: Callable[[str], bool]) -> List[Dict]:
    """One step for each matched key of `user`, and tag upkeep for its other markers.

    A failure on one key is recorded on that key and the others go on.
    """
    try:
        by_id = {k.key_id: k for k in facts.list_keys(client, retry, user)}
    except Exception as e:  # any failure here is this user's, not the run's
        return [record(Plan(user=user, key_id=k, step=lifecycle.FAILED, at=now), _why(e))
                for k in matched]
    plans = [lifecycle.plan_matched(user, k, by_id.get(k), m, now, opts, is_self(k))
             for k in matched]
    plans += [p for k in sorted(m.key_ids() - set(matched))
              for p in [lifecycle.plan_unmatched(user, k, by_id.get(k), m, now, opts)] if p]
    return [execute(client, retry, p, now, opts) for p in plans]


def execute(client, retry, plan: Plan, now: datetime, opts: lifecycle.Options) -> Dict:
    try:
        if plan.delete:
            plan = _recheck(client, retry, plan, now, opts)
        if plan.warning:
            log.warning('retire-access-keys: %s %s: %s', plan.user, plan.key_id, plan.warning)
        if plan.deactivate:
            retry(client.update_access_key, UserName=plan.user, AccessKeyId=plan.key_id,
                  Status='Inactive')
        if plan.tag:
            try:
                retry(client.tag_user, UserName=plan.user,
                      Tags=[{'Key': k, 'Value': v} for k, v in plan.tag.items()])
            except ClientError as e:
                if plan.deactivate and not is_gone(e):
                    return record(plan, _undo_deactivate(client, retry, plan, e))
                raise
        if plan.delete:
            retry(client.delete_access_key, UserName=plan.user, AccessKeyId=plan.key_id)
        if plan.untag:
            retry(client.untag_user, UserName=plan.user, TagKeys=list(plan.untag))
    except ClientError as e:
        if is_gone(e):
            plan = replace(plan, step=lifecycle.GONE, delete_on=None)
            _untag_quietly(client, retry, plan, opts)
        else:
            log.error('retire-access-keys: %s %s: %s failed: %s', plan.user, plan.key_id,
                      plan.step, _why(e))
            return record(plan, _why(e))
    except Exception as e:  # a connection error or timeout fails this key only
        log.error('retire-access-keys: %s %s: %s failed: %s', plan.user, plan.key_id,
                  plan.step, _why(e))
        return record(plan, _why(e))
    log.info('retire-access-keys: %s %s: %s%s', plan.user, plan.key_id, plan.step,
             ' (delete on %s)' % plan.delete_on.isoformat() if plan.delete_on else '')
    return record(plan)


def _undo_deactivate(client, retry, plan: Plan, e: ClientError) -> str:
    """A deactivated key whose marker cannot be written is put back: no half-done key."""
    why = _why(e)
    try:
        retry(client.update_access_key, UserName=plan.user, AccessKeyId=plan.key_id,
              Status='Active')
        why += '; the key was reactivated, as its marker could not be written'
    except ClientError as undo:
        why += '; the key stays Inactive without a marker (%s); the next run marks it' % (
            _why(undo))
    log.error('retire-access-keys: %s %s: %s', plan.user, plan.key_id, why)
    return why


def _recheck(client, retry, plan: Plan, now: datetime, opts: lifecycle.Options) -> Plan:
    """Fresh ListAccessKeys and GetAccessKeyLastUsed right before an irreversible delete."""
    fresh = next((k for k in facts.list_keys(client, retry, plan.user)
                  if k.key_id == plan.key_id), None)
    used = facts.last_used(client, retry, fresh) if fresh is not None else None
    if fresh is not None and used is None:
        fresh = None
    return lifecycle.confirm_delete(plan, fresh, used.last_used if used else None, now, opts)


def _untag_quietly(client, retry, plan: Plan, opts: lifecycle.Options):
    """After NoSuchEntity: drop the key's tags, if its user is still there."""
    try:
        retry(client.untag_user, UserName=plan.user, TagKeys=[
            markers.deactivated_tag(opts.prefix, plan.key_id),
            markers.reactivated_tag(opts.prefix, plan.key_id)])
    except ClientError:
        pass


def _why(e: Exception) -> str:
    if isinstance(e, ClientError):
        return '%s (%s)' % (describe(e), e.operation_name)
    return '%s: %s' % (type(e).__name__, e)
