"""The retirement step of each key: pure functions of fresh key facts, markers and `now`.

A Plan says what to call and in which order is left to `act`: deactivate, tag,
delete, untag. Deactivating before tagging means a run that dies in between
leaves an Inactive key without a marker, which the next run marks (and never
deletes on that run).
"""
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Dict, Mapping, Optional, Tuple

from . import markers
from .model import ListedKey
from .names import MARKER_PREFIX

DEACTIVATED = 'deactivated'
MARKED = 'marked'
WAITING = 'waiting'
DELETED = 'deleted'
# Due for deletion, but `approval-tag` is set and no approval later than the marker.
AWAITING_APPROVAL = 'awaiting-approval'
REACTIVATED = 'reactivated'
# A marker removed from a key that stays as it is: exempt or no longer unused, or a
# reactivation tag past its grace.
UNMARKED = 'unmarked'
SKIPPED_SELF = 'skipped-self'
GONE = 'gone'
FAILED = 'failed'
STEPS = (DEACTIVATED, MARKED, WAITING, AWAITING_APPROVAL, DELETED, REACTIVATED, UNMARKED,
         SKIPPED_SELF, GONE, FAILED)
# The steps after which a key stays deactivated with its marker: an approval may be given.
APPROVABLE = (DEACTIVATED, MARKED, WAITING, AWAITING_APPROVAL)


@dataclass(frozen=True)
class Options:
    delete_after: timedelta
    prefix: str
    # Reactivation counts as use for this long (the filter's `days`).
    reactivation_grace: timedelta
    # `approval-tag`: the head of the approval tags; None deletes without approval.
    approval: Optional[str] = None
    # A notice follows (notify-unused-keys): the marker of a deleted key stays, saying
    # so, until a notice has told it, and is then removed by the notice.
    keeps_deleted: bool = False
    # `required-approvers`: distinct approvers a delete needs; with
    # `required-approvers-tag`, only for users carrying that tag (others need one).
    required_approvers: int = 1
    required_approvers_tag: Optional[str] = None

    def markers_of(self, tags) -> markers.Markers:
        """A user's markers as this action reads them."""
        return markers.markers_of(tags, self.prefix, self.approval, self.required_approvers_tag)

    def approvers_needed(self, m: markers.Markers) -> int:
        return approvers_needed(self.required_approvers, self.required_approvers_tag,
                                m.privileged)


def approvers_needed(required: int, required_tag: Optional[str], privileged: bool) -> int:
    """Distinct approvers a delete needs: `required-approvers`, or one for a user
    without `required-approvers-tag` when it is set. The rule of keys, passwords and
    the approval app."""
    return 1 if required_tag is not None and not privileged else required


# retire-access-keys' default grace between deactivation and deletion.
DELETE_AFTER_DAYS = 30


def options_from(action: Mapping, days: int, keeps_deleted: bool = False) -> Options:
    """The Options of a retire-access-keys action's data, for a policy whose
    unused-access-keys filter has `days`: the one place its defaults live, for the
    action and for the report's dry-run steps."""
    return Options(
        delete_after=timedelta(days=action.get('delete-after-days', DELETE_AFTER_DAYS)),
        prefix=action.get('marker-tag-prefix', MARKER_PREFIX),
        reactivation_grace=timedelta(days=days),
        approval=action.get('approval-tag'),
        keeps_deleted=keeps_deleted,
        required_approvers=action.get('required-approvers', 1),
        required_approvers_tag=action.get('required-approvers-tag'))


@dataclass(frozen=True)
class Plan:
    user: str
    key_id: str
    step: str
    at: datetime
    delete_on: Optional[datetime] = None
    deactivate: bool = False
    delete: bool = False
    tag: Dict[str, str] = field(default_factory=dict)
    untag: Tuple[str, ...] = ()
    # Set when a delete must first be rechecked with fresh calls.
    marker_at: Optional[datetime] = None
    warning: Optional[str] = None
    # The tag that approves this key's deletion, while one can be given.
    approval_tag: Optional[str] = None
    # The deactivation marker's value once the plan is carried out (None: no marker).
    marker: Optional[str] = None
    # Tags written after the delete: the marker of a deleted key, kept until told.
    retag: Dict[str, str] = field(default_factory=dict)
    # With `approval-tag`: who approved this delete, as the approval names them.
    approved_by: Optional[str] = None


def usable(status: str) -> bool:
    """Whether a key with this status signs requests. IAM's model lists a third status,
    `Expired`: such a key is as unusable as an Inactive one, so it counts as deactivated
    (marked, waits its grace, deleted after the recheck), never as reactivated."""
    return status == 'Active'


def _tags(opts: Options, key_id: str):
    return (markers.deactivated_tag(opts.prefix, key_id),
            markers.reactivated_tag(opts.prefix, key_id))


def _approval(opts: Options, key_id: str, m: Optional[markers.Markers] = None) -> Tuple[str, ...]:
    """The key's approval tag, as a tag to remove: when approvals are on and, given the
    markers, when the tag is there."""
    if not opts.approval or (m is not None and key_id not in m.approved):
        return ()
    return (markers.approval_tag(opts.approval, key_id),)


def with_approval(plan: Plan, opts: Options) -> Plan:
    """The approval tag a notice offers, on a key that stays deactivated and marked."""
    if not opts.approval or plan.step not in APPROVABLE:
        return plan
    return replace(plan, approval_tag=markers.approval_tag(opts.approval, plan.key_id))


def delete_on(marker: markers.MarkerValue, grace: timedelta) -> datetime:
    """The day a marked credential may go, `grace` after its marker: never before the
    date a run announced (a lowered grace), later when the grace was raised since."""
    by_grace = marker.at + grace
    return by_grace if marker.delete_on is None else max(marker.delete_on, by_grace)


def stamp(opts: Options, key_id: str, now: datetime) -> Dict[str, str]:
    """The marker of a key deactivated (or found deactivated) now."""
    return {markers.deactivated_tag(opts.prefix, key_id):
            markers.marker_value(now, now + opts.delete_after)}


def plan_matched(user: str, key_id: str, key: Optional[ListedKey], m: markers.Markers,
                 now: datetime, opts: Options, is_self: bool) -> Plan:
    """The step for a key that the filter matched as unused."""
    return with_approval(_plan_matched(user, key_id, key, m, now, opts, is_self), opts)


def _plan_matched(user: str, key_id: str, key: Optional[ListedKey], m: markers.Markers,
                  now: datetime, opts: Options, is_self: bool) -> Plan:
    d_tag, r_tag = _tags(opts, key_id)
    raw = m.deactivated.get(key_id)
    # An approval counts only for the deactivation it follows: any other step drops it.
    a_kept = _approval(opts, key_id, m)
    stale = tuple(t for t, v in ((d_tag, raw), (r_tag, m.reactivated.get(key_id)))
                  if v is not None) + a_kept
    base = Plan(user=user, key_id=key_id, step=GONE, at=now)
    if is_self:
        return replace(base, step=SKIPPED_SELF)
    if key is None:
        return replace(base, step=GONE, untag=stale)
    marked_now = stamp(opts, key_id, now)
    r_kept = (r_tag,) if r_tag in stale else ()
    if usable(key.status):
        if raw is not None:
            return replace(base, step=REACTIVATED, untag=(d_tag,) + a_kept,
                           tag={r_tag: markers.format_time(now)})
        reactivated = markers.parse_time(m.reactivated.get(key_id), now)
        if reactivated is not None and now - reactivated < opts.reactivation_grace:
            return replace(base, step=REACTIVATED, untag=a_kept)
        return replace(base, step=DEACTIVATED, deactivate=True, tag=marked_now,
                       untag=r_kept + a_kept, delete_on=now + opts.delete_after,
                       marker=marked_now[d_tag])
    marker = markers.parse_marker(raw, now)
    if marker is None:
        warning = None if raw is None else (
            'marker %s=%r cannot be parsed; rewritten as now' % (d_tag, raw))
        return replace(base, step=MARKED, tag=marked_now, untag=r_kept + a_kept,
                       warning=warning, delete_on=now + opts.delete_after,
                       marker=marked_now[d_tag])
    marker_at, due = marker.at, delete_on(marker, opts.delete_after)
    # The marker holds the date announced from now on: a marker of an earlier version
    # gets it, and a raised grace moves it later. A moved date is news again: what was
    # told of the old one stays told only as far as the deactivation.
    pinned = {}
    if marker.delete_on is None or due > marker.delete_on:
        told = markers.TOLD[0] if marker.told_stage else None
        pinned = {d_tag: markers.marker_value(marker_at, due, told=told)}
    if now < due:
        return replace(base, step=WAITING, delete_on=due, untag=r_kept, tag=pinned,
                       marker=pinned.get(d_tag, raw))
    approvers: Tuple[str, ...] = ()
    if opts.approval:
        given = approvals_given(markers.approval_tag(opts.approval, key_id),
                                m.approved.get(key_id), marker_at, raw, now)
        approvers = given.approvers
        if len(approvers) < opts.approvers_needed(m):
            return replace(base, step=AWAITING_APPROVAL, delete_on=due, untag=r_kept,
                           warning=given.warning, tag=pinned, marker=pinned.get(d_tag, raw))
    base = replace(base, approved_by=approved_by(approvers))
    if not opts.keeps_deleted:
        return replace(base, step=DELETED, delete=True, untag=stale, marker_at=marker_at)
    kept = markers.marker_value(marker_at, due, deleted=now, told=marker.told_stage)
    return replace(base, step=DELETED, delete=True, untag=tuple(t for t in stale if t != d_tag),
                   marker_at=marker_at, retag={d_tag: kept}, marker=kept)


@dataclass(frozen=True)
class ApprovalsGiven:
    """The distinct approvers of an approval tag later than the marker, and a warning
    when the tag's value counts for nothing."""
    approvers: Tuple[str, ...] = ()
    warning: Optional[str] = None


def approvals_given(tag: str, value: Optional[str], marker_at: datetime, marker_raw: str,
                    now: datetime) -> ApprovalsGiven:
    """What the approval tag `tag` (value `value`) gives a marker of `marker_at`: the
    one rule of keys and passwords."""
    found = markers.parse_approvals(value, now)
    approvers = markers.approvers_after(found or (), marker_at)
    warning = None
    if value is not None and found is None:
        warning = ("approval %s=%r is not a time, alone or followed by ' by <approver>' "
                   "(and more such approvals); awaiting approval" % (tag, value))
    elif value is not None and not approvers:
        warning = "approval %s=%r is not later than its deactivation (%s); " \
            "awaiting approval" % (tag, value, marker_raw)
    return ApprovalsGiven(approvers, warning)


def approved_by(approvers: Tuple[str, ...]) -> Optional[str]:
    """The approvers a record names: those with a name, in their order."""
    return ', '.join(a for a in approvers if a) or None


def confirm_delete(plan: Plan, fresh: Optional[ListedKey], last_used: Optional[datetime],
                   now: datetime, opts: Options) -> Plan:
    """Recheck a planned delete against fresh ListAccessKeys and GetAccessKeyLastUsed."""
    d_tag, r_tag = _tags(opts, plan.key_id)
    # With approvals on, a planned delete had one; it never outlives the deactivation.
    a_tag = _approval(opts, plan.key_id)
    if fresh is None:
        return replace(plan, step=GONE, delete=False, retag={}, marker=None,
                       untag=plan.untag + (() if d_tag in plan.untag else (d_tag,)))
    if usable(fresh.status):
        return replace(plan, step=REACTIVATED, delete=False, untag=(d_tag,) + a_tag,
                       tag={r_tag: markers.format_time(now)}, retag={}, marker=None)
    if last_used is not None and last_used >= plan.marker_at:
        marked_now = stamp(opts, plan.key_id, now)
        return with_approval(replace(
            plan, step=MARKED, delete=False, untag=a_tag, retag={},
            tag=marked_now, delete_on=now + opts.delete_after, marker=marked_now[d_tag],
            warning='used at %s, after its marker; marked again%s' % (
                last_used.isoformat(), '; its approval is removed' if a_tag else '')), opts)
    return plan


# IAM's quota of tags per user: TagUser beyond it is refused (LimitExceeded).
TAGS_PER_USER = 50


def within_tag_limit(plans, tag_keys, limit: int = TAGS_PER_USER):
    """(plans that fit, [(plan, reason)] that do not) of one user whose tags are
    `tag_keys`, in the order they run: each TagUser comes before that plan's untag, so a
    plan whose new tags would take the user past IAM's limit is refused before anything
    is changed, a deactivation included (a key that cannot be marked stays Active)."""
    have, fit, refused = set(tag_keys), [], []
    for plan in plans:
        new = set(plan.tag) - have
        if new and len(have) + len(new) > limit:
            refused.append((plan, 'its user has %d tags, and IAM allows %d: no room for %s; '
                                  'the key is left as it is (remove a tag of the user to let '
                                  'it be retired)' % (len(have), limit, ', '.join(sorted(new)))))
            continue
        fit.append(plan)
        have = (have | new) - set(plan.untag)
    return fit, refused


def plan_unmatched(user: str, key_id: str, key: Optional[ListedKey], m: markers.Markers,
                   now: datetime, opts: Options) -> Optional[Plan]:
    """A key with a marker that the filter did not match; None means leave it alone.

    Gone: drop its tags. Active with a deactivation marker: it was reactivated and
    has been used since, so drop the marker. Inactive with a deactivation marker:
    exempt or no longer unused, so drop the marker; should it match again, it is
    marked afresh and waits the whole grace. A reactivation tag past its grace has
    done its job. An approval goes with the marker, and alone it approves nothing.
    """
    d_tag, r_tag = _tags(opts, key_id)
    a_kept = _approval(opts, key_id, m)
    base = Plan(user=user, key_id=key_id, step=GONE, at=now)
    kept = markers.parse_marker(m.deactivated.get(key_id), now)
    if key is None and kept is not None and kept.deleted is not None and opts.keeps_deleted \
            and kept.told_stage != markers.TOLD[-1]:
        # Deleted by an earlier run whose notice was not delivered: told again, and its
        # marker removed by the notice that tells it.
        return replace(base, step=DELETED, at=kept.deleted, delete_on=None,
                       marker=m.deactivated[key_id], untag=tuple(
                           t for t, kid in ((r_tag, m.reactivated),) if key_id in kid) + a_kept)
    if key is None:
        return replace(base, untag=tuple(
            t for t, kid in ((d_tag, m.deactivated), (r_tag, m.reactivated)) if key_id in kid)
            + a_kept)
    if key_id in m.deactivated:
        step = REACTIVATED if usable(key.status) else UNMARKED
        return replace(base, step=step, untag=(d_tag,) + (
            (r_tag,) if key_id in m.reactivated else ()) + a_kept)
    if reactivation_spent(m.reactivated.get(key_id), now, opts.reactivation_grace):
        return replace(base, step=UNMARKED, untag=(r_tag,) + a_kept)
    if a_kept:
        return replace(base, step=UNMARKED, untag=a_kept)
    return None


def reactivation_spent(value: Optional[str], now: datetime, grace: timedelta) -> bool:
    """A reactivation tag whose grace has passed, or that cannot be read."""
    if value is None:
        return False
    when = markers.parse_time(value, now)
    return when is None or now - when >= grace


def keys_needing_work(m: markers.Markers, present: Optional[set], now: datetime,
                      grace: Optional[timedelta]) -> set:
    """The key ids whose markers a retire run would act on.

    A deactivation marker always does (its key waits, is deleted, was reactivated or
    is gone), and so does an approval (with its marker, or left alone: removed). A
    reactivation tag does once its grace has passed (`grace` None: never)
    or its key is gone; `present` None means the keys were not listed, so tags
    within their grace are left out.
    """
    found = set(m.deactivated) | set(m.approved)
    for key_id, value in m.reactivated.items():
        if grace is not None and reactivation_spent(value, now, grace):
            found.add(key_id)
        elif present is not None and key_id not in present:
            found.add(key_id)
    return found


@dataclass(frozen=True)
class Breaker:
    """`max-deactivations`: a limit on the deactivations one run plans, in keys and/or a
    percent of the keys the filter saw; with both, `op` says whether either (`or`) or
    both (`and`) must be exceeded, as in c7n's `max-resources`."""
    amount: Optional[int] = None
    percent: Optional[float] = None
    op: str = 'or'

    @classmethod
    def of(cls, limit: Optional[Mapping]) -> Optional['Breaker']:
        """The breaker of an action's limit option (`max-deactivations`,
        `max-removals`); None without one."""
        if not limit:
            return None
        return cls(amount=limit.get('amount'), percent=limit.get('percent'),
                   op=limit.get('op', 'or'))

    def tripped(self, planned: int, seen: int) -> bool:
        over = []
        if self.amount is not None:
            over.append(planned > self.amount)
        if self.percent is not None:
            over.append(planned * 100.0 > self.percent * seen)
        if not over:
            return False
        return all(over) if self.op == 'and' else any(over)

    def describe(self) -> str:
        parts = []
        if self.amount is not None:
            parts.append('amount %d' % self.amount)
        if self.percent is not None:
            parts.append('percent %g' % self.percent)
        return (' %s ' % self.op).join(parts)
