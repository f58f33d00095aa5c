"""Which resources a digest has news about (pure; mirrors the templates' stages)."""
from datetime import date, datetime, timedelta, timezone

import pytest

from c7n_unused_keys import markers
from c7n_unused_keys.names import RESULTS_ANNOTATION, UNUSED_ANNOTATION
from c7n_unused_keys.news import news, says_something
from c7n_unused_keys.notify import told_markers

SOON = date(2026, 12, 5)


def user(*records, unused=('K1',)):
    return {'UserName': 'u', UNUSED_ANNOTATION: [{'AccessKeyId': k} for k in unused],
            RESULTS_ANNOTATION: [dict({'UserName': 'u', 'AccessKeyId': 'K1'}, **r)
                                 for r in records]}


@pytest.mark.parametrize('step,delete_on,news', [
    ('deactivated', '2026-12-28T00:00:00+00:00', True),
    ('deleted', None, True),
    ('awaiting-approval', '2026-11-01T00:00:00+00:00', True),
    ('failed', None, True),
    ('waiting', '2026-12-05T10:00:00+00:00', True),     # within the window, to the day
    ('waiting', '2026-12-06T00:00:00+00:00', False),
    ('marked', '2026-12-01T00:00:00+00:00', True),
    ('reactivated', None, False),
    ('unmarked', None, False),
    ('gone', None, False),
    ('waiting', None, False),
])
def test_steps(step, delete_on, news):
    assert says_something(user({'Step': step, 'DeleteOn': delete_on}), SOON) is news


def test_without_the_retire_action_an_unused_key_is_news():
    assert says_something({'UserName': 'u', UNUSED_ANNOTATION: [{'AccessKeyId': 'K1'}]}, SOON)
    assert not says_something({'UserName': 'u'}, SOON)


def test_a_key_resource_reads_its_own_records_only():
    key = user({'Step': 'waiting', 'DeleteOn': '2027-01-01'},
               {'Step': 'deleted', 'AccessKeyId': 'K2'})
    key['AccessKeyId'] = 'K1'
    assert not says_something(key, SOON)
    key['AccessKeyId'] = 'K2'
    assert says_something(key, SOON)


# -- stages told (the marker's told=) ----------------------------------------------------

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
AT = NOW - timedelta(days=10)
DUE = NOW + timedelta(days=20)


def marker(told=None, deleted=None):
    return markers.marker_value(AT, DUE, deleted=deleted, told=told)


@pytest.mark.parametrize('step,delete_on,value,wanted', [
    # A key deactivated this run, or whose deactivation no notice has delivered yet.
    ('deactivated', '2026-12-18', marker(), 'deactivated'),
    ('waiting', '2026-12-18', marker(), 'deactivated'),
    ('waiting', '2026-12-18', marker('deactivated'), None),
    # Within the window: soon, once.
    ('waiting', '2026-12-04', marker('deactivated'), 'soon'),
    ('waiting', '2026-12-04', marker('soon'), None),
    ('awaiting-approval', '2026-11-20', marker('soon'), 'approval'),
    ('awaiting-approval', '2026-11-20', marker('approval'), None),
    ('deleted', None, marker('soon', deleted=NOW), 'deleted'),
    ('deleted', None, None, 'deleted'),      # without a notice after retire: no marker kept
    ('failed', None, None, 'failed'),        # always news
    ('reactivated', None, None, None),
    # A marker of an earlier version (the time alone): its deactivation was told.
    ('waiting', '2026-12-18', markers.format_time(AT), None),
    ('waiting', '2026-12-04', markers.format_time(AT), 'soon'),
])
def test_news_is_a_stage_after_the_last_one_told(step, delete_on, value, wanted):
    assert news({'Step': step, 'DeleteOn': delete_on, 'Marker': value}, SOON, NOW) == wanted


def test_the_marker_holds_what_was_told_and_what_was_deleted():
    value = marker('soon', deleted=NOW)
    assert value == ('2026-11-18T12:00:00Z delete-on=2026-12-18T12:00:00Z '
                     'deleted=2026-11-28T12:00:00Z told=soon')
    m = markers.parse_marker(value, NOW)
    assert (m.at, m.delete_on, m.deleted, m.told) == (AT, DUE, NOW, 'soon')
    assert markers.with_told(marker(), 'deactivated', NOW) == marker('deactivated')
    for bad in (marker() + ' told=later', marker() + ' told=soon told=soon',
                marker() + ' deleted=yesterday', marker() + ' colour=red'):
        assert markers.parse_marker(bad, NOW) is None


def test_a_delivered_notice_writes_told_and_removes_the_markers_of_deleted_keys():
    recs = [{'UserName': 'u', 'AccessKeyId': 'K1', 'News': 'deactivated', 'Marker': marker()},
            {'UserName': 'u', 'AccessKeyId': 'K2', 'News': 'deleted',
             'Marker': marker('soon', deleted=NOW)},
            {'UserName': 'u', 'AccessKeyId': 'K3', 'News': None, 'Marker': marker('soon')},
            {'UserName': 'v', 'AccessKeyId': 'K4', 'News': 'failed', 'Marker': None}]
    assert told_markers(recs, 'p', NOW) == {
        'u': ({'p:K1': marker('deactivated')}, {'p:K2'})}


def test_a_key_resource_tells_the_records_it_carries():
    """A key-level run hands the record of a key that is no resource (deleted, say) to
    another key of its owner: that key's notice tells it."""
    key = user({'Step': 'waiting', 'DeleteOn': '2027-01-01'},
               {'Step': 'deleted', 'AccessKeyId': 'K2', 'CarriedBy': 'K1'})
    key['AccessKeyId'] = 'K1'
    assert says_something(key, SOON)
