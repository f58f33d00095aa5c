"""Which resources a digest has news about (pure; mirrors the templates' stages)."""
from datetime import date

import pytest

from c7n_unused_keys.names import RESULTS_ANNOTATION, UNUSED_ANNOTATION
from c7n_unused_keys.news import says_something

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
