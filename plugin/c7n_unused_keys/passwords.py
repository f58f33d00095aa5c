"""Pure decisions on console passwords: functions of password facts, thresholds and `now`.

A password is unused when its last use (PasswordLastUsed) is `days` or more ago, or,
never used, when its login profile was created `never-used-days` or more ago. The rules
of `days`, `never-used-days` and `max-days` are those of keys (`decide`). A user left
with no active key and no password, unused for `days`, is dormant.
"""
from datetime import datetime
from typing import Optional, Sequence

from .decide import DAY, exemption_current, idle_days
from .model import Exemption, KeyFacts, PasswordFacts, PasswordRow, Thresholds, Verdict


def unused_password(facts: PasswordFacts, th: Thresholds, now: datetime) -> Optional[Verdict]:
    """The verdict for one user's password, or None when it does not count as unused."""
    never = facts.last_used is None
    days = idle_days(now - (facts.created if never else facts.last_used), never, th)
    if days is None:
        return None
    if never:
        reason = 'password never used; login profile created %d days ago ' \
                 '(never-used-days: %d)' % (days, th.never_used_days)
    else:
        reason = 'password last used %d days ago (days: %d)' % (days, th.days)
    if th.max_days is not None:
        reason += ', within max-days: %d' % th.max_days
    return Verdict(idle_days=days, never_used=never, reason=reason)


def report_may_miss_passwords(th: Thresholds, now: datetime, generated: datetime) -> bool:
    """Whether a password set after the report could already match: it is younger than
    the report, so never used it matches once never-used-days have passed, and used
    it is idle for less than the report's age."""
    return now - generated >= min(th.days, th.never_used_days) * DAY


def password_may_match(row: Optional[PasswordRow], th: Thresholds, now: datetime,
                       generated: datetime) -> bool:
    """False only for a user whose password cannot match, whatever happened since the
    report (hybrid's pre-screen; a match is always confirmed from the API).

    A use only moves forward, so a password used within `days` of now stays below the
    threshold. A user without a password in the report (or not in it at all) may have
    set one since. A password the report has no date for (`no_information`) is judged
    from its login profile's creation, which the report does not hold.
    """
    if row is None or not row.enabled:
        return report_may_miss_passwords(th, now, generated)
    if row.last_used is not None:
        return now - row.last_used >= th.days * DAY
    return True


def password_exempt(ex: Optional[Exemption], now: datetime) -> bool:
    """Whether the exempt tag (`password` or `*`) spares the password now; an exemption
    ends at the start (UTC) of its until date."""
    return ex is not None and ex.password and exemption_current(ex, now)


def dormant(created: datetime, keys: Sequence[KeyFacts], password: Optional[PasswordFacts],
            password_used: Optional[datetime], days: int, now: datetime) -> Optional[Verdict]:
    """A user left with nothing: no Active key, no console password, and no use of any
    credential (nor creation) within `days`. None when it is not dormant."""
    if password is not None or any(k.status == 'Active' for k in keys):
        return None
    uses = [k.last_used for k in keys if k.last_used] + ([password_used] if password_used
                                                          else [])
    since = max(uses) if uses else created
    idle = now - since
    if idle < days * DAY:
        return None
    what = 'last used %d days ago' % (idle // DAY) if uses else \
        'never used; made %d days ago' % (idle // DAY)
    return Verdict(idle_days=idle // DAY, never_used=not uses,
                   reason='no active key and no console password; %s (days: %d)' % (
                       what, days))


def may_be_dormant(report_uses: Sequence[Optional[datetime]], days: int,
                   now: datetime) -> bool:
    """False only for a user with a use within `days` in the report: uses only move
    forward, so it cannot be dormant now. Keys and passwords may have gone since."""
    return not any(u is not None and now - u < days * DAY for u in report_uses)
