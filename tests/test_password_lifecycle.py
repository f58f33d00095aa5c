"""The password's lifecycle, pure: mark, wait, (approval), recheck, remove; a use, an
exemption or a login profile made anew in between; its tags apart from the keys'."""
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from c7n_unused_keys import lifecycle, markers
from c7n_unused_keys import password_lifecycle as pl
from c7n_unused_keys.model import PasswordFacts
from c7n_unused_keys.names import MARKER_PREFIX

NOW = datetime(2026, 12, 4, 12, 0, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
OPTS = pl.options_from({'remove-after-days': 30})
A_OPTS = pl.options_from({'remove-after-days': 30, 'approval-tag': 'c7n-unused-keys-approved'})
M_TAG, A_TAG = 'c7n-unused-keys-password', 'c7n-unused-keys-approved-password'


def facts(created_days=400, used_days=100):
    return PasswordFacts(user='u', created=NOW - created_days * DAY,
                         last_used=None if used_days is None else NOW - used_days * DAY,
                         source='api')


def marked(days_ago, approval=None, opts=OPTS, extra=()):
    at = NOW - days_ago * DAY
    tags = [{'Key': M_TAG, 'Value': markers.marker_value(at, at + 30 * DAY)}]
    if approval:
        tags.append({'Key': A_TAG, 'Value': approval})
    return pl.marks_of(tags + list(extra), opts)


def test_the_tags_are_apart_from_the_keys_tags():
    assert (OPTS.marker_tag, A_OPTS.approval_tag) == (M_TAG, A_TAG)
    tags = [{'Key': M_TAG, 'Value': 'x'}, {'Key': A_TAG, 'Value': 'y'}]
    # Neither is read as a key's marker or approval...
    m = markers.markers_of(tags, MARKER_PREFIX, 'c7n-unused-keys-approved')
    assert m.key_ids() == set()
    # ...and a key's are not read as the password's.
    keys = [{'Key': MARKER_PREFIX + ':AKIAAAAAAAAAAAAAAAAA', 'Value': 'x'},
            {'Key': 'c7n-unused-keys-approved:AKIAAAAAAAAAAAAAAAAA', 'Value': 'y'}]
    assert pl.marks_of(keys, A_OPTS) == pl.PasswordMarks()


def test_first_run_marks_and_announces_the_removal_date():
    p = pl.plan_password('u', facts(), True, pl.PasswordMarks(), NOW, OPTS)
    assert p.step == pl.MARKED and not p.remove
    assert p.tag == {M_TAG: markers.marker_value(NOW, NOW + 30 * DAY)}
    assert p.remove_on == NOW + 30 * DAY


def test_nothing_to_do_for_a_used_or_absent_password_without_a_mark():
    assert pl.plan_password('u', facts(used_days=1), False, pl.PasswordMarks(), NOW,
                            OPTS) is None
    assert pl.plan_password('u', None, False, pl.PasswordMarks(), NOW, OPTS) is None


def test_waits_its_grace_then_removes_with_a_recheck():
    waiting = pl.plan_password('u', facts(), True, marked(10), NOW, OPTS)
    assert (waiting.step, waiting.remove, waiting.tag) == (pl.WAITING, False, {})
    assert waiting.remove_on == NOW + 20 * DAY
    due = pl.plan_password('u', facts(), True, marked(31), NOW, OPTS)
    assert due.step == pl.REMOVED and due.remove and due.untag == (M_TAG,)
    assert due.marker_at == NOW - 31 * DAY
    assert pl.confirm_removal(due, facts(), NOW, OPTS, marked(31)) == due


def test_a_login_during_the_grace_clears_the_mark():
    # The filter no longer matches it: used within days.
    p = pl.plan_password('u', facts(used_days=2), False, marked(10), NOW, OPTS)
    assert (p.step, p.untag, p.remove) == (pl.UNMARKED, (M_TAG,), False)


def test_an_exemption_clears_the_mark_and_leaves_the_password():
    p = pl.plan_password('u', facts(), False, marked(31, 'x', A_OPTS), NOW, A_OPTS)
    assert (p.step, set(p.untag), p.remove) == (pl.UNMARKED, {M_TAG, A_TAG}, False)


def test_a_login_profile_removed_meanwhile_takes_its_mark_with_it():
    p = pl.plan_password('u', None, False, marked(31), NOW, OPTS)
    assert (p.step, p.untag, p.remove) == (pl.GONE, (M_TAG,), False)
    due = pl.plan_password('u', facts(), True, marked(31), NOW, OPTS)
    gone = pl.confirm_removal(due, None, NOW, OPTS, marked(31))
    assert (gone.step, gone.remove, gone.untag) == (pl.GONE, False, (M_TAG,))


def test_a_use_just_before_the_removal_marks_again():
    due = pl.plan_password('u', facts(), True, marked(31), NOW, OPTS)
    used = pl.confirm_removal(due, facts(used_days=0.01), NOW, OPTS, marked(31))
    assert used.step == pl.MARKED and not used.remove
    assert used.tag == {M_TAG: markers.marker_value(NOW, NOW + 30 * DAY)}
    assert 'after its marker' in used.warning


def test_a_login_profile_made_anew_after_the_mark_is_a_new_password():
    p = pl.plan_password('u', facts(created_days=5, used_days=None), True, marked(31), NOW,
                         OPTS)
    assert p.step == pl.MARKED and not p.remove and 'login profile made' in p.warning
    due = pl.plan_password('u', facts(), True, marked(31), NOW, OPTS)
    anew = pl.confirm_removal(due, facts(created_days=1, used_days=None), NOW, OPTS,
                              marked(31))
    assert anew.step == pl.MARKED and not anew.remove


def test_an_unreadable_marker_is_rewritten_as_now():
    marks = pl.marks_of([{'Key': M_TAG, 'Value': 'soon'}], OPTS)
    p = pl.plan_password('u', facts(), True, marks, NOW, OPTS)
    assert p.step == pl.MARKED and 'cannot be parsed' in p.warning


def test_with_approval_tag_removal_waits_for_an_approval_after_the_mark():
    waits = pl.plan_password('u', facts(), True, marked(31, opts=A_OPTS), NOW, A_OPTS)
    assert (waits.step, waits.remove, waits.approval_tag) == (
        pl.AWAITING_APPROVAL, False, A_TAG)
    early = markers.approval_value(NOW - 40 * DAY, 'slack:U1')
    assert pl.plan_password('u', facts(), True, marked(31, early, A_OPTS), NOW,
                            A_OPTS).step == pl.AWAITING_APPROVAL
    given = markers.approval_value(NOW - DAY, 'slack:U1')
    p = pl.plan_password('u', facts(), True, marked(31, given, A_OPTS), NOW, A_OPTS)
    assert (p.step, p.approved_by, set(p.untag)) == (pl.REMOVED, 'slack:U1', {M_TAG, A_TAG})


def test_two_approvers_for_privileged_users():
    opts = replace(A_OPTS, required_approvers=2, required_approvers_tag='privileged')
    one = markers.approval_value(NOW - DAY, 'slack:U1')
    plain = pl.plan_password('u', facts(), True, marked(31, one, opts), NOW, opts)
    admin = pl.plan_password('u', facts(), True, marked(
        31, one, opts, [{'Key': 'privileged', 'Value': ''}]), NOW, opts)
    assert (plain.step, admin.step) == (pl.REMOVED, pl.AWAITING_APPROVAL)


def test_a_raised_grace_moves_the_announced_date_later_never_earlier():
    raised = replace(OPTS, remove_after=60 * DAY)
    p = pl.plan_password('u', facts(), True, marked(31), NOW, raised)
    assert p.step == pl.WAITING and p.remove_on == NOW + 29 * DAY
    assert p.tag == {M_TAG: markers.marker_value(NOW - 31 * DAY, NOW + 29 * DAY)}
    lowered = replace(OPTS, remove_after=10 * DAY)
    w = pl.plan_password('u', facts(), True, marked(20), NOW, lowered)
    assert w.step == pl.WAITING and w.remove_on == NOW + 10 * DAY


def test_the_approval_rule_is_the_keys_rule():
    given = lifecycle.approvals_given('t', markers.approval_value(NOW - DAY, 'slack:U1'),
                                      NOW - 2 * DAY, 'raw', NOW)
    assert given == lifecycle.ApprovalsGiven(('slack:U1',), None)
