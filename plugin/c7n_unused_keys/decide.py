"""Pure decisions: functions of key facts, thresholds and `now`. No AWS, no c7n."""
import re
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from .model import (
    SOURCE_REPORT, Exemption, KeyFacts, ListedKey, ReportSlot, Thresholds, Verdict)

DAY = timedelta(days=1)
_KEY_ID = re.compile(r'^[A-Z0-9]{16,128}$')
_UNTIL = re.compile(r'^until=(\d{4}-\d{2}-\d{2})$')
# The exempt tag's token for the user's console password (`*` covers it too).
PASSWORD_TOKEN = 'password'


def idle_since(facts: KeyFacts) -> datetime:
    """Idle time counts from the last use, or from creation for a key never used."""
    return facts.last_used or facts.created


def thresholds_from(data: Mapping) -> Thresholds:
    """The Thresholds of an unused-access-keys filter's data (never-used-days defaults to
    days, status to any)."""
    days = data['days']
    return Thresholds(days=days, never_used_days=data.get('never-used-days', days),
                      max_days=data.get('max-days'), status=data.get('status', 'any'))


def idle_days(idle: timedelta, never: bool, th: Thresholds) -> Optional[int]:
    """The whole days idle of a credential that counts as unused (`days`, or
    `never-used-days` for one never used, within `max-days`); None for one that does
    not. The rule of keys and passwords alike."""
    if idle < (th.never_used_days if never else th.days) * DAY:
        return None
    days = idle // DAY
    if th.max_days is not None and days > th.max_days:
        return None
    return days


def unused(facts: KeyFacts, th: Thresholds, now: datetime) -> Optional[Verdict]:
    """The verdict for one key, or None when the key does not count as unused."""
    if th.status != 'any' and facts.status != th.status:
        return None
    never = facts.last_used is None
    days = idle_days(now - idle_since(facts), never, th)
    if days is None:
        return None
    if never:
        reason = 'never used; created %d days ago (never-used-days: %d)' % (
            days, th.never_used_days)
    else:
        reason = 'last used %d days ago%s (days: %d)' % (
            days, where_used(facts.last_service, facts.last_region), th.days)
    if th.max_days is not None:
        reason += ', within max-days: %d' % th.max_days
    return Verdict(idle_days=days, never_used=never, reason=reason)


def where_used(service: Optional[str], region: Optional[str]) -> str:
    """' via s3 in eu-west-1', or ' via s3' when AWS records no region (it answers
    N/A for some services), or '' when it records no service."""
    if not service:
        return ''
    return ' via %s in %s' % (service, region) if region else ' via %s' % service


def parse_exemption(value: str) -> Exemption:
    """Parse an exempt tag value; raise ValueError naming what is wrong."""
    all_keys, key_ids, until, password = False, set(), None, False
    for token in value.split():
        m = _UNTIL.match(token)
        if token == '*':
            all_keys = True
        elif token == PASSWORD_TOKEN:
            password = True
        elif m:
            if until is not None:
                raise ValueError('more than one until= token')
            try:
                until = date.fromisoformat(m.group(1))
            except ValueError:
                raise ValueError('until= is not a date: %r' % token)
        elif _KEY_ID.match(token):
            key_ids.add(token)
        else:
            raise ValueError('not an access key id, "*", "%s" or until=YYYY-MM-DD: %r' % (
                PASSWORD_TOKEN, token))
    if not all_keys and not key_ids and not password:
        raise ValueError('names no key: use "*", access key ids or "%s"' % PASSWORD_TOKEN)
    return Exemption(raw=value, all_keys=all_keys, key_ids=frozenset(key_ids), until=until,
                     password=password or all_keys)


def exemption_current(ex: Exemption, now: datetime) -> bool:
    """An exemption ends at the start (UTC) of its until date."""
    return ex.until is None or now.date() < ex.until


def exemption_in_force(ex: Exemption, key_id: str, now: datetime) -> bool:
    """Whether the exemption spares the key `key_id` now."""
    return exemption_current(ex, now) and (ex.all_keys or key_id in ex.key_ids)


def _second(dt: datetime) -> datetime:
    return dt.replace(microsecond=0)


def map_slots(slots: Sequence[ReportSlot], keys: Sequence[ListedKey]
              ) -> Optional[Dict[str, ReportSlot]]:
    """Map report slots to key ids by last_rotated == CreateDate (to the second).

    Returns {key_id: slot} for the keys that map, or None when the mapping is
    ambiguous: a slot or key that matches more than one partner, or a slot and a
    key that both match nothing (the same key with a drifted date, or a delete
    and a create: the report cannot tell which).
    A slot matching nothing beside no unmatched key is a key deleted since the
    report; a key matching nothing beside no unmatched slot was created since.
    """
    by_slot = {s.slot: [k for k in keys if _second(k.created) == s.last_rotated]
               for s in slots}
    if any(len(m) > 1 for m in by_slot.values()):
        return None
    mapping = {m[0].key_id: s for s in slots for m in [by_slot[s.slot]] if m}
    if len(mapping) != sum(1 for m in by_slot.values() if m):
        return None
    orphan_slots = any(not m for m in by_slot.values())
    orphan_keys = any(k.key_id not in mapping for k in keys)
    if orphan_slots and orphan_keys:
        return None
    return mapping


def slot_may_match(slot: ReportSlot, th: Thresholds, now: datetime,
                   generated: datetime) -> bool:
    """False only for a slot that cannot match whatever happened since the report.

    Last-used dates only move forward, so a key used within `days` of now stays
    below the threshold. A key never used by report time was either not used
    since (its age decides) or used after `generated` (then `now - generated`
    bounds its idle time). Status and max-days can change or be escaped by later
    use, so they never drop a slot.
    """
    if slot.last_used is not None:
        return now - slot.last_used >= th.days * DAY
    young = now - slot.last_rotated < th.never_used_days * DAY
    return not (young and now - generated < th.days * DAY)


def report_may_miss_keys(th: Thresholds, now: datetime, generated: datetime) -> bool:
    """Whether a key created after the report could already match.

    Such a key is younger than the report: never used, it matches once its age
    reaches never-used-days; used, it is idle for less than the report's age.
    """
    return now - generated >= min(th.days, th.never_used_days) * DAY


def user_may_match(slots: Iterable[ReportSlot], th: Thresholds, now: datetime,
                   generated: datetime) -> bool:
    """False only when no key of this report user can match now (hybrid source)."""
    if report_may_miss_keys(th, now, generated):
        return True
    return any(slot_may_match(s, th, now, generated) for s in slots)


def keys_to_confirm(slots: Sequence[ReportSlot], keys: Sequence[ListedKey],
                    th: Thresholds, now: datetime, generated: datetime) -> List[ListedKey]:
    """The listed keys whose last use must be asked for (hybrid source).

    Every key whose slot may match, every key created since the report, and
    every key of a user whose slots cannot be mapped. The status filter applies
    to the fresh ListAccessKeys status.
    """
    mapping = map_slots(slots, keys)
    wanted = [k for k in keys
              if mapping is None or k.key_id not in mapping
              or slot_may_match(mapping[k.key_id], th, now, generated)]
    return [k for k in wanted if th.status in ('any', k.status)]


def report_candidates(slots: Iterable[ReportSlot], th: Thresholds, now: datetime
                      ) -> Set[int]:
    """Slots that count as unused on report data alone (credential-report source).

    Status is left to the fresh ListAccessKeys answer: the report's may be stale.
    """
    any_status = replace(th, status='any')
    return {s.slot for s in slots if unused(slot_facts(s, None), any_status, now)}


def slot_facts(slot: ReportSlot, key: Optional[ListedKey]) -> KeyFacts:
    """Key facts from a report slot; the listed key, when known, gives id, status and date."""
    return KeyFacts(
        user=slot.user,
        key_id=key.key_id if key else '',
        status=key.status if key else ('Active' if slot.active else 'Inactive'),
        created=key.created if key else slot.last_rotated,
        last_used=slot.last_used,
        last_service=slot.last_service,
        last_region=slot.last_region,
        source=SOURCE_REPORT)


def split_exempt(found: Iterable[KeyFacts], th: Thresholds, ex: Optional[Exemption],
                 now: datetime) -> Tuple[List[Tuple[KeyFacts, Verdict]],
                                         List[Tuple[KeyFacts, Verdict, Exemption]]]:
    """The unused keys, split into those that match and those an exemption keeps."""
    matched, exempt = [], []
    for f in found:
        v = unused(f, th, now)
        if v is None:
            continue
        if ex is not None and exemption_in_force(ex, f.key_id, now):
            exempt.append((f, v, ex))
        else:
            matched.append((f, v))
    return matched, exempt
