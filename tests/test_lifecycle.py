"""The retirement step of each key, and the marker tags: pure functions, no emulator."""
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from c7n_unused_keys import lifecycle as lc
from c7n_unused_keys import markers
from c7n_unused_keys.model import ListedKey
from c7n_unused_keys.names import EXEMPT_TAG, MARKER_PREFIX

NOW = datetime(2026, 11, 27, 17, 0, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
KEY = 'AKIAAAAAAAAAAAAAAAAA'
OPTS = lc.Options(delete_after=30 * DAY, prefix=MARKER_PREFIX, reactivation_grace=45 * DAY)
# The tags as accounts hold them, spelled out: another shape would orphan their markers.
D_TAG, R_TAG = MARKER_PREFIX + ':' + KEY, MARKER_PREFIX + '-reactivated:' + KEY


def listed(status):
    return ListedKey(user='alice', key_id=KEY, status=status, created=NOW - 400 * DAY)


def tags(deactivated=None, reactivated=None):
    t = []
    if deactivated is not None:
        t.append({'Key': D_TAG, 'Value': deactivated})
    if reactivated is not None:
        t.append({'Key': R_TAG, 'Value': reactivated})
    t.append({'Key': 'team', 'Value': 'data'})
    return markers.markers_of(t, MARKER_PREFIX)


def plan(status, deactivated=None, reactivated=None, is_self=False):
    key = listed(status) if status else None
    return lc.plan_matched('alice', KEY, key, tags(deactivated, reactivated), NOW, OPTS, is_self)


def iso(dt):
    return markers.format_time(dt)


# The marker a run writes now: the deactivation time and the date it announces.
STAMP = '2026-11-27T17:00:00Z delete-on=2026-12-27T17:00:00Z'


class TestMarkers:
    def test_format_is_utc_iso_with_z(self):
        assert iso(NOW) == '2026-11-27T17:00:00Z'
        assert markers.parse_time('2026-11-27T17:00:00Z', NOW) == NOW

    @pytest.mark.parametrize('value', ['', 'yesterday', '2026-11-27', '2026-11-27T17:00:00',
                                       '2026-11-27T17:00:00+00:00', '2026-13-01T00:00:00Z',
                                       '2026-11-31T00:00:00Z', '2027-01-01T00:00:00Z', None])
    def test_malformed_or_future_values(self, value):
        assert markers.parse_time(value, NOW) is None

    def test_markers_of_reads_only_this_prefix(self):
        m = markers.markers_of([
            {'Key': D_TAG, 'Value': 'x'}, {'Key': R_TAG, 'Value': 'y'},
            {'Key': 'other:' + KEY, 'Value': 'z'}, {'Key': MARKER_PREFIX + ':', 'Value': ''},
            {'Key': EXEMPT_TAG, 'Value': '*'}], MARKER_PREFIX)
        assert m.deactivated == {KEY: 'x'} and m.reactivated == {KEY: 'y'}


class TestPlanMatched:
    def test_active_without_marker_is_deactivated_then_marked(self):
        p = plan('Active')
        assert (p.step, p.deactivate, p.delete) == (lc.DEACTIVATED, True, False)
        assert p.tag == {D_TAG: '2026-11-27T17:00:00Z delete-on=2026-12-27T17:00:00Z'}
        assert p.delete_on == NOW + 30 * DAY

    def test_inactive_without_marker_is_marked_not_deleted(self):
        p = plan('Inactive')
        assert (p.step, p.deactivate, p.delete) == (lc.MARKED, False, False)
        assert p.tag == {D_TAG: STAMP} and p.warning is None

    def test_a_lowered_grace_never_deletes_before_the_announced_date(self):
        """Day 10 of a 30-day grace lowered to 7: the key waits for day 30."""
        value = markers.marker_value(NOW - 10 * DAY, NOW + 20 * DAY)
        seven = replace(OPTS, delete_after=7 * DAY)
        p = lc.plan_matched('alice', KEY, listed('Inactive'), tags(value), NOW, seven, False)
        assert (p.step, p.delete, p.delete_on, p.tag) == (lc.WAITING, False, NOW + 20 * DAY, {})
        # On the announced date, it is deleted.
        later = NOW + 20 * DAY
        p = lc.plan_matched('alice', KEY, listed('Inactive'), tags(value), later, seven, False)
        assert (p.step, p.delete) == (lc.DELETED, True)

    def test_a_raised_grace_lengthens_the_wait_and_the_marker_keeps_the_new_date(self):
        value = markers.marker_value(NOW - 10 * DAY, NOW + 20 * DAY)
        sixty = replace(OPTS, delete_after=60 * DAY)
        p = lc.plan_matched('alice', KEY, listed('Inactive'), tags(value), NOW, sixty, False)
        assert (p.step, p.delete_on) == (lc.WAITING, NOW + 50 * DAY)
        assert p.tag == {D_TAG: markers.marker_value(NOW - 10 * DAY, NOW + 50 * DAY)}
        # Lowered again: the later date was announced, and stands.
        lowered = markers.marker_value(NOW - 10 * DAY, NOW + 50 * DAY)
        p = lc.plan_matched('alice', KEY, listed('Inactive'), tags(lowered), NOW + 30 * DAY,
                            OPTS, False)
        assert (p.step, p.delete_on, p.tag) == (lc.WAITING, NOW + 50 * DAY, {})

    def test_a_marker_of_an_earlier_version_keeps_todays_meaning(self):
        p = plan('Inactive', deactivated=iso(NOW - 29 * DAY))
        assert (p.step, p.delete_on) == (lc.WAITING, NOW + DAY)
        # The first run of this version pins that date in the marker, told deactivated
        # (the earlier version's notice told it), so that a later lowering keeps it.
        assert p.tag == {D_TAG: markers.marker_value(NOW - 29 * DAY, NOW + DAY,
                                                     told='deactivated')}
        assert p.marker == p.tag[D_TAG]
        assert plan('Inactive', deactivated=iso(NOW - 30 * DAY)).step == lc.DELETED

    def test_a_moved_date_is_news_again(self):
        """Told 'soon' for day 20, the grace is raised: the date moves, and the marker
        says only the deactivation was told, so the new date's soon notice comes."""
        value = markers.marker_value(NOW - 10 * DAY, NOW + 20 * DAY, told='soon')
        sixty = replace(OPTS, delete_after=60 * DAY)
        p = lc.plan_matched('alice', KEY, listed('Inactive'), tags(value), NOW, sixty, False)
        assert markers.parse_marker(p.tag[D_TAG], NOW).told == 'deactivated'

    @pytest.mark.parametrize('value', [
        '2026-11-01T00:00:00Z delete-on=', '2026-11-01T00:00:00Z delete-on=soon',
        '2026-11-01T00:00:00Z until=2026-12-01T00:00:00Z',
        '2026-11-01T00:00:00Z delete-on=2026-10-01T00:00:00Z',   # before its deactivation
        '2026-11-01T00:00:00Z  delete-on=2026-12-01T00:00:00Z'])
    def test_a_marker_malformed_in_any_part_is_rewritten_as_now(self, value):
        assert markers.parse_marker(value, NOW) is None
        p = plan('Inactive', deactivated=value)
        assert (p.step, p.delete, p.tag) == (lc.MARKED, False, {D_TAG: STAMP})

    def test_young_marker_waits(self):
        at = NOW - 30 * DAY + timedelta(seconds=1)
        p = plan('Inactive', deactivated=markers.marker_value(at, at + 30 * DAY))
        assert p.step == lc.WAITING and not p.delete and not p.tag
        assert p.delete_on == NOW + timedelta(seconds=1)

    def test_old_enough_marker_deletes_after_a_recheck(self):
        p = plan('Inactive', deactivated=iso(NOW - 30 * DAY))
        assert (p.step, p.delete, p.marker_at) == (lc.DELETED, True, NOW - 30 * DAY)
        assert p.untag == (D_TAG,) and not p.deactivate

    def test_reactivated_key_loses_its_marker_and_keeps_living(self):
        p = plan('Active', deactivated=iso(NOW - 40 * DAY))
        assert (p.step, p.deactivate, p.delete) == (lc.REACTIVATED, False, False)
        assert p.untag == (D_TAG,) and p.tag == {R_TAG: iso(NOW)}

    def test_reactivation_counts_as_use_for_the_filter_days(self):
        p = plan('Active', reactivated=iso(NOW - 45 * DAY + timedelta(seconds=1)))
        assert p.step == lc.REACTIVATED and not p.deactivate and not p.tag and not p.untag
        p = plan('Active', reactivated=iso(NOW - 45 * DAY))
        assert p.step == lc.DEACTIVATED and p.untag == (R_TAG,)

    def test_malformed_marker_counts_as_now_and_never_deletes(self):
        p = plan('Inactive', deactivated='last tuesday')
        assert (p.step, p.delete) == (lc.MARKED, False)
        assert p.tag == {D_TAG: STAMP} and 'cannot be parsed' in p.warning

    def test_future_marker_is_rewritten(self):
        p = plan('Inactive', deactivated=iso(NOW + 300 * DAY))
        assert (p.step, p.delete) == (lc.MARKED, False) and p.tag == {D_TAG: STAMP}

    @pytest.mark.parametrize('status,marker', [('Active', None), ('Inactive', None),
                                               ('Inactive', 'old'), ('Active', 'old')])
    def test_self_key_is_never_touched(self, status, marker):
        p = plan(status, deactivated=iso(NOW - 90 * DAY) if marker else None, is_self=True)
        assert p.step == lc.SKIPPED_SELF
        assert not (p.deactivate or p.delete or p.tag or p.untag)

    def test_gone_key_drops_its_tags(self):
        p = plan(None, deactivated=iso(NOW - 3 * DAY), reactivated=iso(NOW))
        assert p.step == lc.GONE and set(p.untag) == {D_TAG, R_TAG}


class TestExpired:
    """IAM's third key status: an Expired key signs nothing, so it counts as deactivated."""

    def test_without_a_marker_it_is_marked_not_deactivated(self):
        p = plan('Expired')
        assert (p.step, p.deactivate, p.delete, p.tag) == (lc.MARKED, False, False,
                                                           {D_TAG: STAMP})

    def test_it_waits_then_is_deleted_after_the_recheck(self):
        assert plan('Expired', deactivated=iso(NOW - 10 * DAY)).step == lc.WAITING
        due = plan('Expired', deactivated=iso(NOW - 31 * DAY))
        assert due.step == lc.DELETED and due.delete
        p = lc.confirm_delete(due, listed('Expired'), None, NOW, OPTS)
        assert p.step == lc.DELETED and p.delete

    def test_unmatched_with_a_marker_it_is_unmarked_not_reactivated(self):
        p = lc.plan_unmatched('alice', KEY, listed('Expired'), tags(iso(NOW - DAY)), NOW, OPTS)
        assert p.step == lc.UNMARKED


class TestConfirmDelete:
    BASE = plan('Inactive', deactivated=iso(NOW - 31 * DAY))

    def test_still_inactive_and_unused_is_deleted(self):
        p = lc.confirm_delete(self.BASE, listed('Inactive'), NOW - 200 * DAY, NOW, OPTS)
        assert p.step == lc.DELETED and p.delete

    def test_never_used_is_deleted(self):
        assert lc.confirm_delete(self.BASE, listed('Inactive'), None, NOW, OPTS).delete

    def test_vanished_key_is_gone(self):
        p = lc.confirm_delete(self.BASE, None, None, NOW, OPTS)
        assert p.step == lc.GONE and not p.delete

    def test_reactivated_meanwhile_is_not_deleted(self):
        p = lc.confirm_delete(self.BASE, listed('Active'), None, NOW, OPTS)
        assert p.step == lc.REACTIVATED and not p.delete and p.untag == (D_TAG,)

    def test_used_after_the_marker_is_marked_again(self):
        p = lc.confirm_delete(self.BASE, listed('Inactive'), NOW - 31 * DAY, NOW, OPTS)
        assert p.step == lc.MARKED and not p.delete and p.tag == {D_TAG: STAMP}


class TestPlanUnmatched:
    def test_marker_of_a_deleted_key_is_removed(self):
        p = lc.plan_unmatched('alice', KEY, None, tags(deactivated=iso(NOW)), NOW, OPTS)
        assert p.step == lc.GONE and p.untag == (D_TAG,)

    def test_active_key_in_use_again_loses_its_marker(self):
        p = lc.plan_unmatched('alice', KEY, listed('Active'), tags(deactivated=iso(NOW)),
                              NOW, OPTS)
        assert p.step == lc.REACTIVATED and p.untag == (D_TAG,)

    def test_inactive_key_no_longer_matched_loses_its_marker(self):
        # Exempt meanwhile: should it match again, it waits the whole grace afresh.
        p = lc.plan_unmatched('alice', KEY, listed('Inactive'),
                              tags(deactivated=iso(NOW - 90 * DAY)), NOW, OPTS)
        assert p.step == lc.UNMARKED and p.untag == (D_TAG,)
        assert not (p.deactivate or p.delete or p.tag)

    def test_reactivation_tag_within_its_grace_is_left_alone(self):
        assert lc.plan_unmatched('alice', KEY, listed('Active'),
                                 tags(reactivated=iso(NOW - 44 * DAY)), NOW, OPTS) is None

    @pytest.mark.parametrize('value', [iso(NOW - 45 * DAY), iso(NOW - 400 * DAY), 'garbage'])
    def test_reactivation_tag_past_its_grace_is_removed(self, value):
        p = lc.plan_unmatched('alice', KEY, listed('Active'), tags(reactivated=value), NOW,
                              OPTS)
        assert p.step == lc.UNMARKED and p.untag == (R_TAG,)

    def test_reactivation_tag_of_a_deleted_key_is_removed(self):
        p = lc.plan_unmatched('alice', KEY, None, tags(reactivated=iso(NOW)), NOW, OPTS)
        assert p.step == lc.GONE and p.untag == (R_TAG,)


class TestNeedingWork:
    def test_a_deactivation_marker_always_needs_work(self):
        assert lc.keys_needing_work(tags(deactivated=iso(NOW)), None, NOW, 45 * DAY) == {KEY}

    def test_a_reactivation_tag_in_its_grace_needs_none_while_its_key_lives(self):
        m = tags(reactivated=iso(NOW - DAY))
        assert lc.keys_needing_work(m, None, NOW, 45 * DAY) == set()
        assert lc.keys_needing_work(m, {KEY}, NOW, 45 * DAY) == set()
        assert lc.keys_needing_work(m, {KEY}, NOW, None) == set()

    def test_a_reactivation_tag_needs_work_once_its_key_is_gone(self):
        m = tags(reactivated=iso(NOW - DAY))
        assert lc.keys_needing_work(m, set(), NOW, 45 * DAY) == {KEY}
        assert lc.keys_needing_work(m, set(), NOW, None) == {KEY}

    def test_a_reactivation_tag_past_its_grace_needs_work(self):
        m = tags(reactivated=iso(NOW - 45 * DAY))
        assert lc.keys_needing_work(m, None, NOW, 45 * DAY) == {KEY}
        assert lc.keys_needing_work(m, None, NOW, None) == set()


class TestBreaker:
    @pytest.mark.parametrize('breaker,planned,seen,tripped', [
        (lc.Breaker(amount=20), 20, 100, False),
        (lc.Breaker(amount=20), 21, 100, True),
        (lc.Breaker(percent=25), 25, 100, False),
        (lc.Breaker(percent=25), 26, 100, True),
        (lc.Breaker(amount=20, percent=25), 21, 1000, True),
        (lc.Breaker(amount=20, percent=25, op='and'), 21, 1000, False),
        (lc.Breaker(amount=20, percent=25, op='and'), 21, 80, True),
        (lc.Breaker(amount=20, percent=25, op='and'), 10, 20, False),
        (lc.Breaker(amount=0), 1, 1, True),
        (lc.Breaker(amount=0), 0, 0, False),
        (lc.Breaker(percent=0), 0, 0, False),
    ])
    def test_limits(self, breaker, planned, seen, tripped):
        assert breaker.tripped(planned, seen) is tripped

    def test_describe_names_the_limit(self):
        assert lc.Breaker(amount=20, percent=25, op='and').describe() == \
            'amount 20 and percent 25'


APPROVAL = 'c7n-unused-keys-approved'
A_TAG = APPROVAL + ':' + KEY
A_OPTS = lc.Options(delete_after=30 * DAY, prefix=MARKER_PREFIX, reactivation_grace=45 * DAY,
                    approval=APPROVAL)


def approval_markers(deactivated=None, reactivated=None, approved=None):
    t = [{'Key': k, 'Value': v} for k, v in ((D_TAG, deactivated), (R_TAG, reactivated),
                                             (A_TAG, approved)) if v is not None]
    return markers.markers_of(t, MARKER_PREFIX, APPROVAL)


def approval_plan(status, deactivated=None, reactivated=None, approved=None):
    key = listed(status) if status else None
    return lc.plan_matched('alice', KEY, key,
                           approval_markers(deactivated, reactivated, approved),
                           NOW, A_OPTS, False)


class TestApproval:
    """`approval-tag`: a due key is deleted only with an approval later than its marker."""

    def test_markers_read_approvals_only_with_their_head(self):
        t = [{'Key': A_TAG, 'Value': 'x'}, {'Key': D_TAG, 'Value': 'y'}]
        assert markers.markers_of(t, MARKER_PREFIX, APPROVAL).approved == {KEY: 'x'}
        assert markers.markers_of(t, MARKER_PREFIX).approved == {}
        assert markers.markers_of(t, MARKER_PREFIX, APPROVAL).deactivated == {KEY: 'y'}

    @pytest.mark.parametrize('approval,overlap', [
        (APPROVAL, False), (MARKER_PREFIX, True), (MARKER_PREFIX + '-reactivated', True),
        (MARKER_PREFIX + ':x', True), ('c7n', False), (MARKER_PREFIX + '-reactivated:y', True)])
    def test_heads_that_could_be_read_as_markers(self, approval, overlap):
        assert markers.heads_overlap(MARKER_PREFIX, approval) is overlap

    def test_due_without_approval_awaits_and_writes_nothing(self):
        at = NOW - 31 * DAY
        p = approval_plan('Inactive', deactivated=markers.marker_value(at, at + 30 * DAY))
        assert p.step == lc.AWAITING_APPROVAL
        assert (p.delete, p.deactivate, p.tag, p.untag) == (False, False, {}, ())
        assert p.delete_on == NOW - DAY
        assert p.approval_tag == A_TAG and p.warning is None

    def test_approval_before_the_deactivation_does_not_count(self):
        p = approval_plan('Inactive', deactivated=iso(NOW - 31 * DAY),
                          approved=iso(NOW - 32 * DAY))
        assert p.step == lc.AWAITING_APPROVAL and not p.delete and p.untag == ()
        assert A_TAG in p.warning

    @pytest.mark.parametrize('value', ['2026-11-27T16:00:00Z+', 'yes', '2026-11-28T17:00:00Z'])
    def test_unreadable_or_future_approval_does_not_count(self, value):
        p = approval_plan('Inactive', deactivated=iso(NOW - 31 * DAY), approved=value)
        assert p.step == lc.AWAITING_APPROVAL and not p.delete

    def test_approval_at_the_marker_time_does_not_count(self):
        p = approval_plan('Inactive', deactivated=iso(NOW - 31 * DAY),
                          approved=iso(NOW - 31 * DAY))
        assert p.step == lc.AWAITING_APPROVAL

    def test_approved_after_the_deactivation_deletes_and_drops_the_approval(self):
        p = approval_plan('Inactive', deactivated=iso(NOW - 31 * DAY),
                          approved=iso(NOW - 2 * DAY))
        assert p.step == lc.DELETED and p.delete
        assert set(p.untag) == {D_TAG, A_TAG} and p.approval_tag is None

    def test_an_approval_names_its_approver_and_the_delete_keeps_it(self):
        at = NOW - 2 * DAY
        value = markers.approval_value(at, 'slack:U0123ABC')
        assert value == iso(at) + ' by slack:U0123ABC'
        assert markers.parse_approvals(value, NOW) == (markers.ApprovalValue(at, 'slack:U0123ABC'),)
        p = approval_plan('Inactive', deactivated=iso(NOW - 31 * DAY), approved=value)
        assert p.step == lc.DELETED and p.delete and p.approved_by == 'slack:U0123ABC'
        confirmed = lc.confirm_delete(p, listed('Inactive'), None, NOW, A_OPTS)
        assert confirmed.step == lc.DELETED and confirmed.approved_by == 'slack:U0123ABC'

    def test_an_approval_of_the_time_alone_names_no_one(self):
        assert markers.parse_approvals(iso(NOW - 2 * DAY), NOW) == (
            markers.ApprovalValue(NOW - 2 * DAY, None),)
        p = approval_plan('Inactive', deactivated=iso(NOW - 31 * DAY),
                          approved=iso(NOW - 2 * DAY))
        assert p.step == lc.DELETED and p.approved_by is None

    @pytest.mark.parametrize('by', ['', ' ', 'two words', 'a,b', 'x\n'])
    def test_an_approver_that_is_not_one_tag_word_does_not_count(self, by):
        value = iso(NOW - 2 * DAY) + ' by ' + by
        assert markers.parse_approvals(value, NOW) is None
        p = approval_plan('Inactive', deactivated=iso(NOW - 31 * DAY), approved=value)
        assert p.step == lc.AWAITING_APPROVAL and not p.delete and A_TAG in p.warning

    def test_approvals_follow_one_another_in_one_value(self):
        first, second = NOW - 2 * DAY, NOW - DAY
        value = markers.approvals_value([markers.ApprovalValue(first, 'slack:U1'),
                                         markers.ApprovalValue(second, 'slack:U2')])
        assert value == '%s by slack:U1 %s by slack:U2' % (iso(first), iso(second))
        assert markers.parse_approvals(value, NOW) == (
            markers.ApprovalValue(first, 'slack:U1'), markers.ApprovalValue(second, 'slack:U2'))
        for broken in (value + ' ', value + ' by', value.replace('by slack:U2', 'from slack:U2'),
                       value.replace('slack:U2', 'slack:U2,U3'),
                       value + ' ' + iso(NOW + DAY) + ' by slack:U3'):
            assert markers.parse_approvals(broken, NOW) is None, broken

    def test_two_person_rule_needs_two_distinct_approvers(self):
        opts = replace(A_OPTS, required_approvers=2)
        marked = iso(NOW - 31 * DAY)

        def step(*approvals):
            value = markers.approvals_value([markers.ApprovalValue(at, by)
                                             for at, by in approvals])
            return lc.plan_matched('alice', KEY, listed('Inactive'),
                                   approval_markers(marked, None, value), NOW, opts, False)
        one = step((NOW - 2 * DAY, 'slack:U1'))
        assert one.step == lc.AWAITING_APPROVAL and not one.delete and one.untag == ()
        same_twice = step((NOW - 2 * DAY, 'slack:U1'), (NOW - DAY, 'slack:U1'))
        assert same_twice.step == lc.AWAITING_APPROVAL and not same_twice.delete
        # An approval older than the deactivation is not one of the two.
        one_stale = step((NOW - 40 * DAY, 'slack:U2'), (NOW - DAY, 'slack:U1'))
        assert one_stale.step == lc.AWAITING_APPROVAL
        two = step((NOW - 2 * DAY, 'slack:U1'), (NOW - DAY, 'slack:U2'))
        assert two.step == lc.DELETED and two.delete and two.approved_by == 'slack:U1, slack:U2'

    def test_an_approval_of_the_time_alone_is_one_unnamed_approver(self):
        opts = replace(A_OPTS, required_approvers=2)
        # An approval of an earlier version (the time alone), then one through the app.
        value = markers.approvals_value([markers.ApprovalValue(NOW - 2 * DAY),
                                         markers.ApprovalValue(NOW - DAY, 'slack:U1')])
        assert value == '%s %s by slack:U1' % (iso(NOW - 2 * DAY), iso(NOW - DAY))
        assert markers.parse_approvals(value, NOW) == (
            markers.ApprovalValue(NOW - 2 * DAY), markers.ApprovalValue(NOW - DAY, 'slack:U1'))

        def plan(approved):
            return lc.plan_matched('alice', KEY, listed('Inactive'), approval_markers(
                iso(NOW - 31 * DAY), None, approved), NOW, opts, False)
        assert plan(iso(NOW - DAY)).step == lc.AWAITING_APPROVAL
        two = plan(value)
        assert two.step == lc.DELETED and two.approved_by == 'slack:U1'

    def test_two_person_rule_for_users_with_the_tag_only(self):
        opts = replace(A_OPTS, required_approvers=2, required_approvers_tag='privileged')
        value = markers.approval_value(NOW - DAY, 'slack:U1')
        t = [{'Key': D_TAG, 'Value': iso(NOW - 31 * DAY)}, {'Key': A_TAG, 'Value': value}]
        plain = markers.markers_of(t, MARKER_PREFIX, APPROVAL, 'privileged')
        admin = markers.markers_of(t + [{'Key': 'privileged', 'Value': ''}], MARKER_PREFIX,
                                   APPROVAL, 'privileged')
        assert (plain.privileged, admin.privileged) == (False, True)
        assert lc.plan_matched('alice', KEY, listed('Inactive'), plain, NOW, opts,
                               False).step == lc.DELETED
        assert lc.plan_matched('root', KEY, listed('Inactive'), admin, NOW, opts,
                               False).step == lc.AWAITING_APPROVAL

    def test_approval_given_while_waiting_counts_once_due(self):
        waiting = approval_plan('Inactive', deactivated=iso(NOW - 10 * DAY),
                                approved=iso(NOW - 9 * DAY))
        assert waiting.step == lc.WAITING and waiting.untag == ()
        assert waiting.approval_tag == A_TAG
        later = lc.plan_matched('alice', KEY, listed('Inactive'),
                                approval_markers(iso(NOW - 10 * DAY), None, iso(NOW - 9 * DAY)),
                                NOW + 21 * DAY, A_OPTS, False)
        assert later.step == lc.DELETED

    def test_without_the_option_an_approval_is_ignored(self):
        p = lc.plan_matched('alice', KEY, listed('Inactive'),
                            approval_markers(iso(NOW - 31 * DAY), None, None), NOW, OPTS, False)
        assert p.step == lc.DELETED and p.approval_tag is None

    def test_recheck_still_runs_and_used_key_loses_its_approval(self):
        p = approval_plan('Inactive', deactivated=iso(NOW - 31 * DAY),
                          approved=iso(NOW - 2 * DAY))
        used = lc.confirm_delete(p, listed('Inactive'), NOW - 3 * DAY, NOW, A_OPTS)
        assert used.step == lc.MARKED and not used.delete
        assert used.untag == (A_TAG,) and set(used.tag) == {D_TAG}
        assert 'after its marker' in used.warning and used.approval_tag == A_TAG
        back = lc.confirm_delete(p, listed('Active'), None, NOW, A_OPTS)
        assert back.step == lc.REACTIVATED and set(back.untag) == {D_TAG, A_TAG}
        gone = lc.confirm_delete(p, None, None, NOW, A_OPTS)
        assert gone.step == lc.GONE and A_TAG in gone.untag

    def test_reactivated_or_gone_key_drops_its_approval(self):
        back = approval_plan('Active', deactivated=iso(NOW - 31 * DAY), approved=iso(NOW - DAY))
        assert back.step == lc.REACTIVATED and set(back.untag) == {D_TAG, A_TAG}
        gone = approval_plan(None, deactivated=iso(NOW - 31 * DAY), approved=iso(NOW - DAY))
        assert gone.step == lc.GONE and set(gone.untag) == {D_TAG, A_TAG}

    def test_a_fresh_deactivation_drops_an_earlier_approval(self):
        p = approval_plan('Active', approved=iso(NOW - DAY))
        assert p.step == lc.DEACTIVATED and p.untag == (A_TAG,) and p.approval_tag == A_TAG
        m = approval_plan('Inactive', approved=iso(NOW - DAY))
        assert m.step == lc.MARKED and m.untag == (A_TAG,)

    @pytest.mark.parametrize('status,deactivated,step,untag', [
        (None, True, lc.GONE, {D_TAG, A_TAG}),
        (None, False, lc.GONE, {A_TAG}),
        ('Active', True, lc.REACTIVATED, {D_TAG, A_TAG}),
        ('Inactive', True, lc.UNMARKED, {D_TAG, A_TAG}),
        ('Active', False, lc.UNMARKED, {A_TAG}),
        ('Inactive', False, lc.UNMARKED, {A_TAG}),
    ])
    def test_unmatched_keys_lose_their_approval(self, status, deactivated, step, untag):
        m = approval_markers(iso(NOW - 31 * DAY) if deactivated else None, None,
                             iso(NOW - DAY))
        p = lc.plan_unmatched('alice', KEY, listed(status) if status else None, m, NOW, A_OPTS)
        assert p.step == step and set(p.untag) == untag and not p.delete

    def test_a_lone_approval_needs_work(self):
        m = approval_markers(approved=iso(NOW - DAY))
        assert lc.keys_needing_work(m, None, NOW, 45 * DAY) == {KEY}
        assert lc.plan_unmatched('alice', KEY, listed('Active'),
                                 approval_markers(), NOW, A_OPTS) is None


class TestKeptUntilTold:
    """With a notice after the action, a deleted key's marker stays until it is told."""
    TELLS = replace(OPTS, keeps_deleted=True)

    def test_the_delete_keeps_the_marker_saying_deleted(self):
        value = markers.marker_value(NOW - 31 * DAY, NOW - DAY, told='soon')
        p = lc.plan_matched('alice', KEY, listed('Inactive'), tags(value), NOW, self.TELLS,
                            False)
        assert (p.step, p.delete) == (lc.DELETED, True) and D_TAG not in p.untag
        kept = markers.parse_marker(p.retag[D_TAG], NOW)
        assert (kept.deleted, kept.told) == (NOW, 'soon') and p.marker == p.retag[D_TAG]
        # Without a notice, the marker goes with the key.
        plain = lc.plan_matched('alice', KEY, listed('Inactive'), tags(value), NOW, OPTS, False)
        assert D_TAG in plain.untag and not plain.retag

    def test_a_deleted_key_not_yet_told_is_told_again_and_then_its_marker_goes(self):
        value = markers.marker_value(NOW - 31 * DAY, NOW - DAY, deleted=NOW - DAY, told='soon')
        p = lc.plan_unmatched('alice', KEY, None, tags(value), NOW, self.TELLS)
        assert (p.step, p.at, p.marker, p.untag) == (lc.DELETED, NOW - DAY, value, ())
        told = markers.with_told(value, 'deleted', NOW)
        p = lc.plan_unmatched('alice', KEY, None, tags(told), NOW, self.TELLS)
        assert (p.step, p.untag) == (lc.GONE, (D_TAG,))
        assert lc.plan_unmatched('alice', KEY, None, tags(value), NOW, OPTS).step == lc.GONE

    def test_a_recheck_that_spares_the_key_keeps_no_deleted_marker(self):
        value = markers.marker_value(NOW - 31 * DAY, NOW - DAY)
        p = lc.plan_matched('alice', KEY, listed('Inactive'), tags(value), NOW, self.TELLS,
                            False)
        for fresh in (listed('Active'), None):
            q = lc.confirm_delete(p, fresh, None, NOW, self.TELLS)
            assert not q.retag and q.marker is None and D_TAG in q.untag
