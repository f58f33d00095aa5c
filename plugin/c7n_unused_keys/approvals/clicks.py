"""What a click in the digest asks, and what it may write. Pure: functions of the
config, the user's state as read from its account, and `now`.

A button's value names the account, the user, the key and the time of the marker it
was offered for: `<account id> <user> <access key id> <marker time>`. Nothing else in
a click is trusted: each decision is taken on the user's tags and keys read afresh.
"""
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Mapping, Optional, Tuple

from .. import decide, lifecycle, markers
from .config import ApprovalsConfig

APPROVE = 'c7n-unused-keys-approve'
KEEP = 'c7n-unused-keys-keep'
ACTIONS = (APPROVE, KEEP)
TAG_VALUE_LIMIT = 256
_ACCOUNT = re.compile(r'^\d{12}$')
_USER = re.compile(r'^[\w+=,.@-]{1,64}$')
_KEY = re.compile(r'^[A-Z0-9]{16,128}$')


class BadClick(ValueError):
    """A click whose action or value this app never offers."""


@dataclass(frozen=True)
class Click:
    action: str
    account: str
    user: str
    key_id: str
    marker_at: datetime
    # Who clicked: a Slack user id, as Slack's signed request names them.
    clicker: str

    @property
    def approver(self) -> str:
        return 'slack:' + self.clicker


@dataclass(frozen=True)
class UserState:
    """A user as read from its account: its tags and its keys' statuses, by key id."""
    tags: Mapping[str, str]
    keys: Mapping[str, str]


@dataclass(frozen=True)
class Outcome:
    """A click's answer: the tags to write (none: nothing is written), what to tell the
    clicker, and a word for the log (approved, already, kept, refused)."""
    kind: str
    message: str
    write: Optional[Mapping[str, str]] = None


def button_value(account: str, user: str, key_id: str, marker_at: str) -> str:
    return ' '.join((account, user, key_id, marker_at))


def parse_click(action: str, value: object, clicker: object, now: datetime) -> Click:
    """The click of a button of this app; BadClick says what is wrong with it."""
    if action not in ACTIONS:
        raise BadClick('unknown action %r: this app answers only %s' % (
            action, ' and '.join(ACTIONS)))
    if not isinstance(clicker, str) or not re.fullmatch(r'[UW][A-Z0-9]{2,20}', clicker):
        raise BadClick('the click names no Slack user')
    parts = value.split(' ') if isinstance(value, str) else []
    if len(parts) != 4:
        raise BadClick('malformed button value %r: expected "<account id> <user> '
                       '<access key id> <marker time>"' % (value,))
    account, user, key_id, at = parts
    marker_at = markers.parse_time(at, now)
    if not (_ACCOUNT.match(account) and _USER.match(user) and _KEY.match(key_id)) \
            or marker_at is None:
        raise BadClick('malformed button value %r: expected "<account id> <user> '
                       '<access key id> <marker time>"' % (value,))
    return Click(action, account, user, key_id, marker_at, clicker)


def _refused(message: str) -> Outcome:
    return Outcome('refused', message)


def _check(cfg: ApprovalsConfig, click: Click, state: UserState, now: datetime
           ) -> Tuple[Optional[Outcome], Optional[markers.MarkerValue]]:
    """(a refusal, or None and the key's marker): what both buttons need."""
    key = '%s of %s' % (click.key_id, click.user)
    if click.key_id not in state.keys:
        return _refused('Already deleted: %s is no longer a key of the user.' % key), None
    if state.keys[click.key_id] == 'Active':
        return _refused('Reactivated: %s is Active again, so its owner keeps it; '
                        'nothing was written.' % key), None
    d_tag = markers.deactivated_tag(cfg.marker_prefix, click.key_id)
    marker = markers.parse_marker(state.tags.get(d_tag), now)
    if marker is None:
        return _refused('Not awaiting approval: %s carries no readable marker (%s); it was '
                        'unmarked, exempted or never retired.' % (key, d_tag)), None
    if marker.at != click.marker_at:
        return _refused('Marked afresh: %s was deactivated again at %s, after this message '
                        '(%s); use the newest digest.' % (
                            key, markers.format_time(marker.at),
                            markers.format_time(click.marker_at))), None
    raw = state.tags.get(cfg.exempt_tag)
    if raw is not None:
        try:
            ex = decide.parse_exemption(raw)
        except ValueError as e:
            return _refused('Its exempt tag %s=%r cannot be read (%s); fix it first.' % (
                cfg.exempt_tag, raw, e)), None
        if decide.exemption_in_force(ex, click.key_id, now):
            return _refused('Exempt: %s is exempted by %s=%r; nothing to approve or keep.' % (
                key, cfg.exempt_tag, raw)), None
    return None, marker


def _room_for(tags: Mapping[str, str], tag: str, value: str) -> Optional[Outcome]:
    if len(value) > TAG_VALUE_LIMIT:
        return _refused('Cannot write %s: its value would exceed IAM\'s %d characters.' % (
            tag, TAG_VALUE_LIMIT))
    # IAM refuses a new tag beyond its limit (LimitExceeded).
    if tag not in tags and len(tags) >= lifecycle.TAGS_PER_USER:
        return _refused('Cannot write %s: the user already has IAM\'s %d tags.' % (
            tag, lifecycle.TAGS_PER_USER))
    return None


def approvers_needed(cfg: ApprovalsConfig, state: UserState) -> int:
    return lifecycle.approvers_needed(cfg.required_approvers, cfg.required_approvers_tag,
                                      cfg.required_approvers_tag in state.tags)


def judge_approve(cfg: ApprovalsConfig, click: Click, state: UserState, now: datetime
                  ) -> Outcome:
    refusal, marker = _check(cfg, click, state, now)
    if refusal:
        return refusal
    a_tag = markers.approval_tag(cfg.approval_tag, click.key_id)
    given = [a for a in markers.parse_approvals(state.tags.get(a_tag), now) or ()
             if a.at > marker.at]
    approvers = markers.approvers_after(given, marker.at)
    needed = approvers_needed(cfg, state)
    names = ', '.join(_name(a) for a in approvers)
    if click.approver in approvers:
        return Outcome('already', 'Already approved by %s (%d of %d); nothing was written.' % (
            names, len(approvers), needed))
    if len(approvers) >= needed:
        return Outcome('already', 'Already approved by %s; nothing was written. Deleted by '
                       'the next run%s.' % (names, when_due(marker, now)))
    value = markers.approvals_value(given + [markers.ApprovalValue(now, click.approver)])
    full = _room_for(state.tags, a_tag, value)
    if full:
        return full
    if len(approvers) + 1 < needed:
        message = 'Approved by <@%s> (%d of %d approvers); it needs %d more.' % (
            click.clicker, len(approvers) + 1, needed, needed - len(approvers) - 1)
    else:
        message = 'Approved by <@%s>%s; deleted by the next run%s.' % (
            click.clicker, ' and %s' % names if names else '', when_due(marker, now))
    return Outcome('approved', message, {a_tag: value})


def when_due(marker: markers.MarkerValue, now: datetime) -> str:
    """', on or after <date>' while the key waits its grace; nothing once it is due."""
    if marker.delete_on is None or marker.delete_on <= now:
        return ''
    return ', on or after %s' % markers.format_time(marker.delete_on)


def _name(approver: str) -> str:
    """An approver as Slack shows them (a mention), or as the tag holds them."""
    if approver.startswith('slack:'):
        return '<@%s>' % approver[len('slack:'):]
    return approver or 'an unnamed approver'


def keep_until(cfg: ApprovalsConfig, now: datetime) -> str:
    return (now + timedelta(days=cfg.keep_days)).date().isoformat()


def judge_keep(cfg: ApprovalsConfig, click: Click, state: UserState, now: datetime) -> Outcome:
    refusal, _ = _check(cfg, click, state, now)
    if refusal:
        return refusal
    until = keep_until(cfg, now)
    raw = state.tags.get(cfg.exempt_tag)
    if raw is None:
        value = '%s until=%s' % (click.key_id, until)
    else:
        ex = decide.parse_exemption(raw)
        if ex.until is not None and now.date() >= ex.until:
            # Ended: what it named is no longer exempt, and this key alone is now.
            value = '%s until=%s' % (click.key_id, until)
        elif ex.until is not None and ex.until.isoformat() == until:
            value = '%s %s' % (raw, click.key_id)
        else:
            # Adding the key would give it, or the keys already there, another end date.
            return _refused('Cannot keep: the exempt tag %s=%r already exempts other keys '
                            'until another date; ask an administrator to add %s.' % (
                                cfg.exempt_tag, raw, click.key_id))
    full = _room_for(state.tags, cfg.exempt_tag, value)
    if full:
        return full
    return Outcome('kept', 'Kept by <@%s>: %s of %s is exempt until %s and will not be '
                   'deleted. Its owner can reactivate it with `aws iam update-access-key '
                   '--user-name %s --access-key-id %s --status Active`.' % (
                       click.clicker, click.key_id, click.user, until, click.user,
                       click.key_id), {cfg.exempt_tag: value})
