"""The action's use of the filter's reads: while fresh they stand in for its
ListAccessKeys and the recheck's calls; once older, or missing, the calls are made."""
from datetime import datetime, timedelta, timezone

from c7n_unused_keys import act, lifecycle as lc, markers
from c7n_unused_keys.model import SOURCE_API, KeyFacts, ListedKey, Reads
from c7n_unused_keys.names import MARKER_PREFIX

NOW = datetime(2026, 11, 27, 17, 0, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
KEY = 'AKIAAAAAAAAAAAAAAAAA'
OPTS = lc.Options(delete_after=30 * DAY, prefix=MARKER_PREFIX, reactivation_grace=45 * DAY)
MARKER = markers.format_time(NOW - 40 * DAY)


class Client:
    """An IAM client whose one key has `status` and was last used at `used`; it records
    every call."""

    def __init__(self, status='Inactive', used=None):
        self.calls = []
        self.status, self.used = status, used

    def list_access_keys(self, **kw):
        self.calls.append('ListAccessKeys')
        return {'AccessKeyMetadata': [{'AccessKeyId': KEY, 'Status': self.status,
                                       'CreateDate': NOW - 400 * DAY}]}

    def get_access_key_last_used(self, **kw):
        self.calls.append('GetAccessKeyLastUsed')
        return {'AccessKeyLastUsed': {'LastUsedDate': self.used} if self.used else {}}


def retry(call, **kw):
    return call(**kw)


def reads(status='Inactive', used=NOW - 100 * DAY, at=100.0, with_last_use=True):
    key = ListedKey(user='ivan', key_id=KEY, status=status, created=NOW - 400 * DAY)
    facts = KeyFacts(user='ivan', key_id=KEY, status=status, created=key.created,
                     last_used=used, last_service='s3', last_region='us-east-1',
                     source=SOURCE_API)
    return Reads(at=at, keys=[key], last_used={KEY: facts} if with_last_use else {})


def due():
    return markers.markers_of([{'Key': markers.deactivated_tag(MARKER_PREFIX, KEY),
                                'Value': MARKER}], MARKER_PREFIX)


def test_fresh_up_to_the_max_age_and_not_after():
    r = reads(at=100.0)
    assert act.fresh(r, 60, clock=lambda: 160.0) is r
    assert act.fresh(r, 60, clock=lambda: 160.5) is None
    assert act.fresh(None, 60, clock=lambda: 100.0) is None


def test_zero_or_no_number_never_uses_the_reads():
    # 0 always calls again, even within the same clock tick; NaN and infinity fail closed.
    r = reads(at=100.0)
    for max_age in (0, -1, float('nan'), float('inf')):
        assert act.fresh(r, max_age, clock=lambda: 100.0) is None, max_age


def test_planning_on_reads_makes_no_call():
    client = Client()
    plans, failed = act.plan_user(client, retry, 'ivan', [KEY], due(), NOW, OPTS,
                                  is_self=lambda k: False, reads=reads())
    assert client.calls == [] and failed == []
    assert [p.step for p in plans] == [lc.DELETED]


def test_planning_without_reads_lists_the_keys():
    client = Client()
    plans, _ = act.plan_user(client, retry, 'ivan', [KEY], due(), NOW, OPTS,
                             is_self=lambda k: False)
    assert client.calls == ['ListAccessKeys']
    assert [p.step for p in plans] == [lc.DELETED]


def planned_delete():
    plans, _ = act.plan_user(Client(), retry, 'ivan', [KEY], due(), NOW, OPTS,
                             is_self=lambda k: False, reads=reads())
    return plans[0]


def test_recheck_on_reads_makes_no_call_and_decides_as_fresh_calls_would():
    for status, used, step in (('Inactive', NOW - 100 * DAY, lc.DELETED),
                               ('Active', NOW - 100 * DAY, lc.REACTIVATED),
                               ('Inactive', NOW - DAY, lc.MARKED)):
        on_reads, on_calls = Client(), Client(status=status, used=used)
        from_reads = act._recheck(on_reads, retry, planned_delete(), NOW, OPTS,
                                  reads(status=status, used=used))
        from_calls = act._recheck(on_calls, retry, planned_delete(), NOW, OPTS)
        assert on_reads.calls == []
        assert on_calls.calls == ['ListAccessKeys', 'GetAccessKeyLastUsed']
        assert from_reads.step == from_calls.step == step


def test_recheck_calls_when_the_reads_lack_the_keys_last_use():
    # The credential report decided that key: its last use was not asked of the API.
    client = Client(used=NOW - 100 * DAY)
    checked = act._recheck(client, retry, planned_delete(), NOW, OPTS,
                           reads(with_last_use=False))
    assert client.calls == ['ListAccessKeys', 'GetAccessKeyLastUsed']
    assert checked.step == lc.DELETED
