"""Console passwords, decided: the rules of `unused-passwords` at their boundaries, the
credential report's password columns, and hybrid's pre-screen. Pure: no AWS."""
from datetime import datetime, timedelta, timezone

import pytest

from c7n_unused_keys import decide, passwords
from c7n_unused_keys.credential_report import parse_report
from c7n_unused_keys.model import PasswordFacts, PasswordRow, Thresholds

NOW = datetime(2026, 12, 4, 12, 0, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
TH = Thresholds(days=45, never_used_days=30)


def facts(created_days, used_days=None):
    return PasswordFacts(user='u', created=NOW - created_days * DAY,
                         last_used=None if used_days is None else NOW - used_days * DAY,
                         source='api')


class TestUnusedPassword:
    @pytest.mark.parametrize('used,matches', [(44.99, False), (45, True), (400, True)])
    def test_last_use_against_days(self, used, matches):
        v = passwords.unused_password(facts(500, used), TH, NOW)
        assert (v is not None) == matches
        if v:
            assert v.reason == 'password last used %d days ago (days: 45)' % used
            assert not v.never_used

    @pytest.mark.parametrize('created,matches', [(29.99, False), (30, True)])
    def test_never_used_is_judged_from_the_login_profile_s_creation(self, created, matches):
        v = passwords.unused_password(facts(created), TH, NOW)
        assert (v is not None) == matches
        if v:
            assert v.never_used and v.reason == (
                'password never used; login profile created 30 days ago (never-used-days: 30)')

    def test_max_days_bounds_the_window(self):
        th = Thresholds(days=45, never_used_days=30, max_days=90)
        assert passwords.unused_password(facts(500, 90), th, NOW).reason.endswith(
            'within max-days: 90')
        assert passwords.unused_password(facts(500, 91), th, NOW) is None


class TestReport:
    CSV = ('user,arn,user_creation_time,password_enabled,password_last_used,'
           'password_last_changed,password_next_rotation,mfa_active,access_key_1_active,'
           'access_key_1_last_rotated\n'
           '<root_account>,arn,N/A,not_supported,2026-11-01T00:00:00+00:00,N/A,N/A,true,'
           'false,N/A\n'
           'used,arn,N/A,true,2026-10-01T00:00:00+00:00,N/A,N/A,false,false,N/A\n'
           'never,arn,N/A,true,no_information,N/A,N/A,false,false,N/A\n'
           'none,arn,N/A,false,N/A,N/A,N/A,false,false,N/A\n')

    def test_password_columns_are_read_with_their_placeholders(self):
        report = parse_report(self.CSV, NOW)
        assert report.passwords == {
            'used': PasswordRow('used', True, datetime(2026, 10, 1, tzinfo=timezone.utc)),
            'never': PasswordRow('never', True, None),
            'none': PasswordRow('none', False, None)}


class TestPreScreen:
    GENERATED = NOW - 2 * 3600 * timedelta(seconds=1)

    @pytest.mark.parametrize('row,may', [
        # Used within days of now: it cannot match, whatever happened since.
        (PasswordRow('u', True, NOW - 10 * DAY), False),
        (PasswordRow('u', True, NOW - 45 * DAY), True),
        # No date in the report: its login profile's creation decides.
        (PasswordRow('u', True, None), True),
        # No password at report time, or not in the report: one set since is younger
        # than the report, too young for these thresholds.
        (PasswordRow('u', False, None), False),
        (None, False),
    ])
    def test_the_report_rules_out_only_what_cannot_match(self, row, may):
        assert passwords.password_may_match(row, TH, NOW, self.GENERATED) is may

    def test_a_report_older_than_the_thresholds_rules_out_no_user_without_a_password(self):
        th = Thresholds(days=45, never_used_days=0)
        assert passwords.password_may_match(None, th, NOW, self.GENERATED)
        assert passwords.password_may_match(PasswordRow('u', False, None), th, NOW,
                                            self.GENERATED)


class TestExemption:
    @pytest.mark.parametrize('value,exempt', [
        ('password', True), ('*', True), ('AKIAAAAAAAAAAAAAAAAA', False),
        ('AKIAAAAAAAAAAAAAAAAA password until=2026-12-05', True),
        ('password until=2026-12-04', False),
    ])
    def test_the_exempt_tag_spares_a_password_by_its_token(self, value, exempt):
        ex = decide.parse_exemption(value)
        assert passwords.password_exempt(ex, NOW) is exempt

    def test_the_password_token_exempts_no_key(self):
        ex = decide.parse_exemption('password')
        assert not decide.exemption_in_force(ex, 'AKIAAAAAAAAAAAAAAAAA', NOW)


class TestDormant:
    def key(self, status, used_days):
        from c7n_unused_keys.model import KeyFacts
        return KeyFacts(user='u', key_id='AKIAAAAAAAAAAAAAAAAA', status=status,
                        created=NOW - 500 * DAY,
                        last_used=None if used_days is None else NOW - used_days * DAY,
                        last_service=None, last_region=None, source='api')

    def test_no_active_key_no_password_and_no_use_for_the_days(self):
        made = NOW - 400 * DAY
        v = passwords.dormant(made, [self.key('Inactive', 100)], None, None, 45, NOW)
        assert v.idle_days == 100 and not v.never_used
        assert passwords.dormant(made, [], None, None, 45, NOW).reason == (
            'no active key and no console password; never used; made 400 days ago (days: 45)')

    def test_an_active_key_or_a_password_is_not_dormant(self):
        made = NOW - 400 * DAY
        assert passwords.dormant(made, [self.key('Active', 100)], None, None, 45, NOW) is None
        assert passwords.dormant(made, [], facts(300, 100), None, 45, NOW) is None

    def test_a_removed_password_s_last_use_counts(self):
        # PasswordLastUsed outlives the login profile.
        made = NOW - 400 * DAY
        assert passwords.dormant(made, [], None, NOW - 10 * DAY, 45, NOW) is None
        assert passwords.dormant(made, [], None, NOW - 45 * DAY, 45, NOW).idle_days == 45

    def test_the_report_rules_out_a_use_within_the_days(self):
        assert not passwords.may_be_dormant([NOW - 10 * DAY, None], 45, NOW)
        assert passwords.may_be_dormant([NOW - 50 * DAY, None], 45, NOW)
        assert passwords.may_be_dormant([], 45, NOW)
