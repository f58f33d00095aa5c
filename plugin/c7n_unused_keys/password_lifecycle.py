"""The retirement step of a console password: pure functions of fresh password facts, the
user's tags and `now`.

A password cannot be deactivated, only removed (DeleteLoginProfile), so its lifecycle is
notice, grace, recheck, remove: a run that finds it unused marks the user; once
`remove-after-days` have passed since, a run that finds it still unused, read afresh,
removes the login profile. A use in between, an exemption, or a login profile made
anew clears or renews the mark. MFA devices and keys are never touched.

Its tags stand apart from the keys': `<prefix>-password` (the marker, in the keys'
marker format) and `<approval-tag>-password` (its approval, in the keys' approval
format), so that neither lifecycle reads the other's.
"""
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Dict, Iterable, Optional, Tuple

from . import lifecycle, markers
from .model import PasswordFacts
from .names import MARKER_PREFIX

MARKED = 'marked'
WAITING = 'waiting'
AWAITING_APPROVAL = lifecycle.AWAITING_APPROVAL
REMOVED = 'removed'
# The mark taken off a password that stays: used since, or exempt.
UNMARKED = 'unmarked'
# The login profile was removed by someone else: its mark goes.
GONE = 'gone'
FAILED = 'failed'
STEPS = (MARKED, WAITING, AWAITING_APPROVAL, REMOVED, UNMARKED, GONE, FAILED)
PASSWORD_SUFFIX = '-password'
# retire-passwords' default grace between the mark and the removal.
REMOVE_AFTER_DAYS = 30


@dataclass(frozen=True)
class PasswordOptions:
    remove_after: timedelta
    prefix: str = MARKER_PREFIX
    # `approval-tag`: the head of the approval tags; None removes without approval.
    approval: Optional[str] = None
    required_approvers: int = 1
    required_approvers_tag: Optional[str] = None

    @property
    def marker_tag(self) -> str:
        return self.prefix + PASSWORD_SUFFIX

    @property
    def approval_tag(self) -> Optional[str]:
        return self.approval + PASSWORD_SUFFIX if self.approval else None


def options_from(action) -> PasswordOptions:
    """The options of a retire-passwords action's data: the one place its defaults live."""
    return PasswordOptions(
        remove_after=timedelta(days=action.get('remove-after-days', REMOVE_AFTER_DAYS)),
        prefix=action.get('marker-tag-prefix', MARKER_PREFIX),
        approval=action.get('approval-tag'),
        required_approvers=action.get('required-approvers', 1),
        required_approvers_tag=action.get('required-approvers-tag'))


@dataclass(frozen=True)
class PasswordMarks:
    """A user's password tags: its marker and its approval (raw values), and whether it
    carries `required-approvers-tag`."""
    marker: Optional[str] = None
    approval: Optional[str] = None
    privileged: bool = False


def marks_of(tags: Iterable[dict], opts: PasswordOptions) -> PasswordMarks:
    by_key = {t['Key']: t['Value'] for t in tags or ()}
    return PasswordMarks(
        marker=by_key.get(opts.marker_tag),
        approval=by_key.get(opts.approval_tag) if opts.approval_tag else None,
        privileged=opts.required_approvers_tag is not None
        and opts.required_approvers_tag in by_key)


@dataclass(frozen=True)
class PasswordPlan:
    user: str
    step: str
    at: datetime
    # The day the login profile may be removed, as the notice says it.
    remove_on: Optional[datetime] = None
    remove: bool = False
    tag: Dict[str, str] = field(default_factory=dict)
    untag: Tuple[str, ...] = ()
    # Set when a removal must first be rechecked with fresh reads.
    marker_at: Optional[datetime] = None
    warning: Optional[str] = None
    # The tag that approves the removal, while one can be given.
    approval_tag: Optional[str] = None
    approved_by: Optional[str] = None
    # The marker's value once the plan is carried out (None: no marker).
    marker: Optional[str] = None


def _stale(opts: PasswordOptions, marks: PasswordMarks) -> Tuple[str, ...]:
    """The password tags the user carries, to remove."""
    return tuple(t for t, v in ((opts.marker_tag, marks.marker),
                                (opts.approval_tag, marks.approval)) if v is not None)


def _with_approval(plan: PasswordPlan, opts: PasswordOptions) -> PasswordPlan:
    if not opts.approval or plan.step not in (MARKED, WAITING, AWAITING_APPROVAL):
        return plan
    return replace(plan, approval_tag=opts.approval_tag)


def _mark(base: PasswordPlan, opts: PasswordOptions, marks: PasswordMarks, now: datetime,
          warning: Optional[str] = None) -> PasswordPlan:
    # The marker holds seconds: the date announced is the date it holds.
    at = now.replace(microsecond=0)
    value = markers.marker_value(at, at + opts.remove_after)
    # An approval counts only for the mark it follows.
    untag = (opts.approval_tag,) if marks.approval is not None else ()
    return replace(base, step=MARKED, tag={opts.marker_tag: value}, untag=untag,
                   remove_on=at + opts.remove_after, marker=value, warning=warning)


def plan_password(user: str, facts: Optional[PasswordFacts], matched: bool,
                  marks: PasswordMarks, now: datetime, opts: PasswordOptions
                  ) -> Optional[PasswordPlan]:
    """The step for a user's password: `facts` as read (None: no login profile),
    `matched` when unused-passwords matched it (unused, not exempt). None: nothing to
    do (no marker, and nothing to mark)."""
    plan = _plan(user, facts, matched, marks, now, opts)
    return None if plan is None else _with_approval(plan, opts)


def _plan(user, facts, matched, marks, now, opts) -> Optional[PasswordPlan]:
    base = PasswordPlan(user=user, step=GONE, at=now)
    stale = _stale(opts, marks)
    if facts is None:
        return replace(base, step=GONE, untag=stale) if stale else None
    if not matched:
        return replace(base, step=UNMARKED, untag=stale) if stale else None
    marker = markers.parse_marker(marks.marker, now)
    if marker is None:
        warning = None if marks.marker is None else (
            'marker %s=%r cannot be parsed; rewritten as now' % (opts.marker_tag, marks.marker))
        return _mark(base, opts, marks, now, warning)
    # A use, or a login profile made, after the mark: the mark was for another password
    # (or another idle spell), so the grace starts again.
    if facts.last_used is not None and facts.last_used >= marker.at:
        return _mark(base, opts, marks, now, 'used at %s, after its marker; marked again' %
                     facts.last_used.isoformat())
    if facts.created >= marker.at:
        return _mark(base, opts, marks, now, 'login profile made at %s, after its marker; '
                     'marked again' % facts.created.isoformat())
    due = lifecycle.delete_on(marker, opts.remove_after)
    pinned = {}
    if marker.delete_on is None or due > marker.delete_on:
        pinned = {opts.marker_tag: markers.marker_value(marker.at, due, told=marker.told)}
    if now < due:
        return replace(base, step=WAITING, remove_on=due, tag=pinned,
                       marker=pinned.get(opts.marker_tag, marks.marker))
    approvers: Tuple[str, ...] = ()
    if opts.approval:
        given = lifecycle.approvals_given(opts.approval_tag, marks.approval, marker.at,
                                          marks.marker, now)
        approvers = given.approvers
        if len(approvers) < lifecycle.approvers_needed(
                opts.required_approvers, opts.required_approvers_tag, marks.privileged):
            return replace(base, step=AWAITING_APPROVAL, remove_on=due, tag=pinned,
                           warning=given.warning,
                           marker=pinned.get(opts.marker_tag, marks.marker))
    return replace(base, step=REMOVED, remove=True, untag=stale, marker_at=marker.at,
                   remove_on=due, approved_by=lifecycle.approved_by(approvers))


def confirm_removal(plan: PasswordPlan, fresh: Optional[PasswordFacts], now: datetime,
                    opts: PasswordOptions, marks: PasswordMarks) -> PasswordPlan:
    """Recheck a planned removal against a fresh GetLoginProfile and GetUser."""
    if fresh is None:
        return replace(plan, step=GONE, remove=False, approved_by=None)
    if fresh.last_used is not None and fresh.last_used >= plan.marker_at:
        return _with_approval(_mark(replace(plan, remove=False, approved_by=None), opts,
                                    marks, now, 'used at %s, after its marker; marked again'
                                    % fresh.last_used.isoformat()), opts)
    if fresh.created >= plan.marker_at:
        return _with_approval(_mark(replace(plan, remove=False, approved_by=None), opts,
                                    marks, now, 'login profile made at %s, after its marker; '
                                    'marked again' % fresh.created.isoformat()), opts)
    return plan
