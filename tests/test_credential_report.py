"""Parsing and fetching the credential report, with a stub client and a fake clock."""
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from c7n_unused_keys.credential_report import (
    ReportUnavailable, fetch_report, parse_report)

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=timezone.utc)
HEADER = ('user,arn,user_creation_time,password_enabled,password_last_used,'
          'password_last_changed,password_next_rotation,mfa_active,'
          'access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,'
          'access_key_1_last_used_region,access_key_1_last_used_service,'
          'access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,'
          'access_key_2_last_used_region,access_key_2_last_used_service,'
          'cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated\n')
ROWS = (
    '<root_account>,arn:aws:iam::111111111111:root,2020-01-01T00:00:00+00:00,not_supported,'
    'N/A,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,'
    'false,N/A,false,N/A\n'
    'alice,arn:aws:iam::111111111111:user/alice,2020-01-01T00:00:00+00:00,false,N/A,N/A,N/A,'
    'false,true,2020-01-02T03:04:05+00:00,2026-10-01T10:00:00+00:00,eu-west-1,s3,'
    'false,2021-01-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,false,N/A\n'
    'bob,arn:aws:iam::111111111111:user/bob,2020-01-01T00:00:00+00:00,false,N/A,N/A,N/A,'
    'false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n')


def test_parse_report_slots():
    report = parse_report((HEADER + ROWS).encode(), NOW.replace(tzinfo=None))
    assert report.generated == NOW and report.generated.tzinfo is not None
    assert set(report.slots) == {'alice', 'bob'}
    assert report.slots['bob'] == ()
    one, two = report.slots['alice']
    assert (one.slot, one.active, one.last_service, one.last_region) == (1, True, 's3', 'eu-west-1')
    assert one.last_rotated == datetime(2020, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert one.last_used == datetime(2026, 10, 1, 10, tzinfo=timezone.utc)
    assert (two.slot, two.active, two.last_used, two.last_service) == (2, False, None, None)


def error(code):
    return ClientError({'Error': {'Code': code, 'Message': code + ' said'}}, 'Op')


class StubIAM:
    """Answers GetCredentialReport/GenerateCredentialReport from scripted lists."""

    def __init__(self, gets, generates=()):
        self.gets, self.generates = list(gets), list(generates)
        self.calls = []
        self.content = HEADER + ROWS

    def get_credential_report(self):
        self.calls.append('get')
        answer = self.gets.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return {'Content': self.content.encode(), 'GeneratedTime': answer}

    def generate_credential_report(self):
        self.calls.append('generate')
        answer = self.generates.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return {'State': answer}


class FakeClock:
    def __init__(self):
        self.t, self.slept = 0.0, []

    def sleep(self, s):
        self.slept.append(s)
        self.t += s

    def __call__(self):
        return self.t


def direct(fn, **kw):
    return fn(**kw)


def fetch(client, clock, timeout=60):
    return fetch_report(client, direct, NOW, timedelta(hours=4), timeout,
                        sleep=clock.sleep, clock=clock)


def test_fresh_report_is_used_without_generating():
    client, clock = StubIAM([NOW - timedelta(hours=3)]), FakeClock()
    assert fetch(client, clock).generated == NOW - timedelta(hours=3)
    assert client.calls == ['get'] and clock.slept == []


def test_stale_report_is_regenerated_and_polled_with_backoff():
    stale = NOW - timedelta(hours=5)
    client = StubIAM([stale, stale, error('ReportInProgress'), stale, NOW], ['STARTED'])
    clock = FakeClock()
    assert fetch(client, clock).generated == NOW
    assert client.calls == ['get', 'generate', 'get', 'get', 'get', 'get']
    assert clock.slept == [0.5, 1.0, 2.0, 4.0]


def test_missing_report_costs_three_calls():
    client, clock = StubIAM([error('ReportNotPresent'), NOW], ['STARTED']), FakeClock()
    assert fetch(client, clock).generated == NOW
    assert client.calls == ['get', 'generate', 'get']


def test_complete_means_the_stored_report_is_the_newest():
    stale = NOW - timedelta(hours=5)
    client, clock = StubIAM([stale, stale], ['COMPLETE']), FakeClock()
    assert fetch(client, clock).generated == stale
    assert client.calls == ['get', 'generate', 'get'] and clock.slept == []


@pytest.mark.parametrize('code', ['ReportNotPresent', 'ReportExpired', 'ReportInProgress'])
def test_missing_report_is_generated(code):
    client, clock = StubIAM([error(code), error('ReportInProgress'), NOW], ['STARTED']), \
        FakeClock()
    assert fetch(client, clock).generated == NOW
    assert clock.slept == [0.5, 1.0]


def test_timeout_while_in_progress():
    client = StubIAM([error('ReportNotPresent')] + [error('ReportInProgress')] * 50, ['STARTED'])
    clock = FakeClock()
    with pytest.raises(ReportUnavailable, match='still being generated after 60s'):
        fetch(client, clock, timeout=60)
    # The whole timeout is used: the last wait is cut to what is left of it.
    assert sum(clock.slept) == 60 and max(clock.slept) == 16.0


@pytest.mark.parametrize('where', ['get', 'generate'])
def test_access_denied_is_unavailable(where):
    if where == 'get':
        client = StubIAM([error('AccessDenied')])
    else:
        client = StubIAM([error('ReportNotPresent')], [error('AccessDenied')])
    with pytest.raises(ReportUnavailable, match='AccessDenied'):
        fetch(client, FakeClock())


def test_unreadable_report_is_unavailable():
    client = StubIAM([error('ReportNotPresent'), NOW], ['COMPLETE'])
    client.content = 'user,access_key_1_last_rotated\nalice,not-a-date\n'
    with pytest.raises(ReportUnavailable, match='could not be read'):
        fetch(client, FakeClock())
