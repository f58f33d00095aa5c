"""Boundary tests of the pure decisions: no emulator, no c7n."""
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest

from c7n_unused_keys import decide
from c7n_unused_keys.model import KeyFacts, ListedKey, ReportSlot, Thresholds

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
SEC = timedelta(seconds=1)


def key(used_ago=None, created_ago=400 * DAY, status='Active', key_id='AKIAAAAAAAAAAAAAAAAA'):
    return KeyFacts(
        user='alice', key_id=key_id, status=status, created=NOW - created_ago,
        last_used=None if used_ago is None else NOW - used_ago,
        last_service='s3' if used_ago is not None else None,
        last_region='us-east-1' if used_ago is not None else None, source='api')


TH = Thresholds(days=45, never_used_days=30)


class TestUnused:
    def test_exactly_days_is_unused(self):
        v = decide.unused(key(used_ago=45 * DAY), TH, NOW)
        assert v is not None and v.idle_days == 45 and not v.never_used
        assert 'last used 45 days ago via s3 in us-east-1' in v.reason

    def test_a_use_without_a_region_names_the_service_alone(self):
        v = decide.unused(replace(key(used_ago=50 * DAY), last_region=None), TH, NOW)
        assert 'last used 50 days ago via s3 (days: 45)' in v.reason
        assert decide.where_used(None, 'us-east-1') == ''

    def test_one_second_under_days_is_used(self):
        assert decide.unused(key(used_ago=45 * DAY - SEC), TH, NOW) is None

    def test_never_used_at_the_boundary(self):
        v = decide.unused(key(created_ago=30 * DAY), TH, NOW)
        assert v is not None and v.never_used and v.idle_days == 30
        assert decide.unused(key(created_ago=30 * DAY - SEC), TH, NOW) is None

    def test_never_used_days_zero_matches_a_new_key(self):
        th = Thresholds(days=45, never_used_days=0)
        assert decide.unused(key(created_ago=SEC), th, NOW).idle_days == 0

    def test_idle_days_counts_from_last_use_not_creation(self):
        v = decide.unused(key(used_ago=50 * DAY + 5 * SEC, created_ago=900 * DAY), TH, NOW)
        assert v.idle_days == 50

    def test_max_days_window_is_inclusive_in_whole_days(self):
        th = Thresholds(days=30, never_used_days=30, max_days=44)
        assert decide.unused(key(used_ago=30 * DAY), th, NOW).idle_days == 30
        assert decide.unused(key(used_ago=45 * DAY - SEC), th, NOW).idle_days == 44
        assert decide.unused(key(used_ago=45 * DAY), th, NOW) is None
        assert decide.unused(key(used_ago=30 * DAY - SEC), th, NOW) is None

    def test_max_days_bounds_never_used_keys_too(self):
        th = Thresholds(days=30, never_used_days=30, max_days=44)
        assert decide.unused(key(created_ago=40 * DAY), th, NOW) is not None
        assert decide.unused(key(created_ago=60 * DAY), th, NOW) is None

    @pytest.mark.parametrize('status,wanted,match', [
        ('Active', 'Active', True), ('Inactive', 'Active', False),
        ('Inactive', 'Inactive', True), ('Active', 'Inactive', False),
        ('Inactive', 'any', True)])
    def test_status(self, status, wanted, match):
        th = Thresholds(days=45, never_used_days=30, status=wanted)
        assert (decide.unused(key(used_ago=90 * DAY, status=status), th, NOW) is not None) \
            is match


KEY_A = 'AKIAAAAAAAAAAAAAAAAA'
KEY_B = 'AKIABBBBBBBBBBBBBBBB'


class TestExemptions:
    def test_star_exempts_every_key(self):
        ex = decide.parse_exemption('*')
        assert decide.exemption_in_force(ex, KEY_A, NOW)
        assert decide.exemption_in_force(ex, KEY_B, NOW)

    def test_named_keys_only(self):
        ex = decide.parse_exemption('%s  %s' % (KEY_A, 'AKIACCCCCCCCCCCCCCCC'))
        assert decide.exemption_in_force(ex, KEY_A, NOW)
        assert not decide.exemption_in_force(ex, KEY_B, NOW)

    def test_until_ends_at_the_start_of_that_date(self):
        ex = decide.parse_exemption('* until=2026-11-28')
        assert ex.until == date(2026, 11, 28)
        assert decide.exemption_in_force(ex, KEY_A, NOW)
        assert not decide.exemption_in_force(ex, KEY_A, datetime(2026, 11, 28, tzinfo=timezone.utc))
        assert decide.exemption_in_force(
            ex, KEY_A, datetime(2026, 11, 27, 23, 59, 59, tzinfo=timezone.utc))

    def test_expired_exemption(self):
        ex = decide.parse_exemption('%s until=2026-11-01' % KEY_A)
        assert not decide.exemption_in_force(ex, KEY_A, NOW)

    @pytest.mark.parametrize('value', [
        '', '   ', 'until=2026-12-01', 'alice', '* until=2026-13-01', '* until=tomorrow',
        '* until=2026-12-01 until=2027-01-01', 'akiaaaaaaaaaaaaaaaaa', '*,AKIAAAAAAAAAAAAAAAAA'])
    def test_malformed_values_raise(self, value):
        with pytest.raises(ValueError):
            decide.parse_exemption(value)

    def test_split_exempt(self):
        stale_a, stale_b = key(used_ago=90 * DAY), key(used_ago=90 * DAY, key_id=KEY_B)
        fresh = key(used_ago=DAY, key_id='AKIACCCCCCCCCCCCCCCC')
        ex = decide.parse_exemption(KEY_A)
        matched, exempt = decide.split_exempt([stale_a, stale_b, fresh], TH, ex, NOW)
        assert [f.key_id for f, _ in matched] == [KEY_B]
        assert [(f.key_id, e.raw) for f, _, e in exempt] == [(KEY_A, KEY_A)]
        matched, exempt = decide.split_exempt([stale_a, stale_b], TH, None, NOW)
        assert len(matched) == 2 and exempt == []


def slot(n, rotated_ago, used_ago=None, user='alice'):
    return ReportSlot(user=user, slot=n, active=True,
                      last_rotated=(NOW - rotated_ago).replace(microsecond=0),
                      last_used=None if used_ago is None else NOW - used_ago,
                      last_service=None, last_region=None)


def listed(key_id, created_ago, status='Active'):
    return ListedKey(user='alice', key_id=key_id, status=status,
                     created=NOW - created_ago + timedelta(microseconds=250))


class TestSlotMapping:
    def test_one_to_one(self):
        m = decide.map_slots([slot(1, 100 * DAY), slot(2, 10 * DAY)],
                             [listed(KEY_B, 10 * DAY), listed(KEY_A, 100 * DAY)])
        assert {k: s.slot for k, s in m.items()} == {KEY_A: 1, KEY_B: 2}

    def test_two_keys_in_the_same_second_are_ambiguous(self):
        assert decide.map_slots([slot(1, 100 * DAY), slot(2, 100 * DAY)],
                                [listed(KEY_A, 100 * DAY), listed(KEY_B, 100 * DAY)]) is None

    def test_deleted_key_and_new_key_are_ambiguous(self):
        assert decide.map_slots([slot(1, 100 * DAY)], [listed(KEY_A, 3 * DAY)]) is None

    def test_key_created_since_the_report_stays_unmapped(self):
        m = decide.map_slots([slot(1, 100 * DAY)],
                             [listed(KEY_A, 100 * DAY), listed(KEY_B, 3 * SEC)])
        assert list(m) == [KEY_A]

    def test_key_deleted_since_the_report(self):
        m = decide.map_slots([slot(1, 100 * DAY), slot(2, 5 * DAY)], [listed(KEY_B, 5 * DAY)])
        assert {k: s.slot for k, s in m.items()} == {KEY_B: 2}


class TestPrescreen:
    GEN = NOW - timedelta(hours=1)

    def test_recent_use_is_dropped_and_boundary_kept(self):
        assert not decide.slot_may_match(
            slot(1, 400 * DAY, used_ago=45 * DAY - SEC), TH, NOW, self.GEN)
        assert decide.slot_may_match(slot(1, 400 * DAY, used_ago=45 * DAY), TH, NOW, self.GEN)

    def test_young_never_used_key_dropped_only_while_report_is_young(self):
        young = slot(1, 29 * DAY)
        assert not decide.slot_may_match(young, TH, NOW, self.GEN)
        assert decide.slot_may_match(young, TH, NOW, NOW - 45 * DAY)
        assert decide.slot_may_match(slot(1, 30 * DAY), TH, NOW, self.GEN)

    def test_max_days_never_drops(self):
        th = Thresholds(days=30, never_used_days=30, max_days=44)
        assert decide.slot_may_match(slot(1, 400 * DAY, used_ago=100 * DAY), th, NOW, self.GEN)

    def test_user_kept_when_report_older_than_never_used_days(self):
        fresh = [slot(1, 400 * DAY, used_ago=DAY)]
        assert not decide.user_may_match(fresh, TH, NOW, self.GEN)
        assert decide.user_may_match(fresh, TH, NOW, NOW - 30 * DAY)
        assert decide.user_may_match(fresh, Thresholds(days=45, never_used_days=0), NOW, self.GEN)

    def test_keys_to_confirm(self):
        slots = [slot(1, 400 * DAY, used_ago=DAY), slot(2, 300 * DAY, used_ago=90 * DAY)]
        keys = [listed(KEY_A, 400 * DAY), listed(KEY_B, 300 * DAY),
                listed('AKIACCCCCCCCCCCCCCCC', 2 * SEC)]
        got = decide.keys_to_confirm(slots, keys, TH, NOW, self.GEN)
        assert [k.key_id for k in got] == [KEY_B, 'AKIACCCCCCCCCCCCCCCC']
        inactive_only = Thresholds(days=45, never_used_days=30, status='Inactive')
        assert decide.keys_to_confirm(slots, keys, inactive_only, NOW, self.GEN) == []

    def test_ambiguous_user_confirms_every_key(self):
        slots = [slot(1, 100 * DAY, used_ago=DAY)]
        keys = [listed(KEY_A, 3 * DAY)]
        assert decide.keys_to_confirm(slots, keys, TH, NOW, self.GEN) == keys
