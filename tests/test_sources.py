"""Choosing a key-data source, and falling back from hybrid to api, without c7n."""
import logging
import sys
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from c7n_unused_keys.credential_report import ReportUnavailable, fetch_report
from c7n_unused_keys.model import CredentialReport, Thresholds
from c7n_unused_keys.sources import SOURCE_NAMES, Gathered, Sources
from conftest import run_command

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=timezone.utc)
TH = Thresholds(days=45, never_used_days=45, max_days=None, status='any')
REPORT = CredentialReport(generated=NOW - timedelta(hours=1), slots={})


def direct(fn, **kw):
    return fn(**kw)


class Recording(Sources):
    """Sources that record which source ran, and with what report."""

    def __init__(self):
        super().__init__(client=None, retry=direct, th=TH, now=NOW)
        self.ran = []

    def api(self, users):
        self.ran.append(('api', None))
        return Gathered()

    def hybrid(self, users, report):
        self.ran.append(('hybrid', report))
        return Gathered()

    def credential_report(self, users, report):
        self.ran.append(('credential-report', report))
        return Gathered()


class Fetches:
    def __init__(self, outcome):
        self.outcome, self.calls = outcome, 0

    def __call__(self):
        self.calls += 1
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


@pytest.mark.parametrize('source, ran, fetched', [
    ('api', ('api', None), 0),
    ('hybrid', ('hybrid', REPORT), 1),
    ('credential-report', ('credential-report', REPORT), 1),
])
def test_each_source_runs_its_own_way(source, ran, fetched):
    sources, fetch = Recording(), Fetches(REPORT)
    sources.gather(source, ['alice'], fetch)
    assert sources.ran == [ran]
    assert fetch.calls == fetched


def test_the_choices_are_the_three_sources_hybrid_first():
    assert SOURCE_NAMES == ('hybrid', 'api', 'credential-report')


def test_an_unknown_source_is_refused():
    with pytest.raises(ValueError, match="unknown source 'cloudtrail'"):
        Recording().gather('cloudtrail', ['alice'], Fetches(REPORT))


def test_hybrid_falls_back_to_api_with_a_warning(caplog):
    sources = Recording()
    with caplog.at_level(logging.WARNING, logger='custodian.unused-access-keys'):
        sources.gather('hybrid', ['alice'], Fetches(ReportUnavailable('it is late')))
    assert sources.ran == [('api', None)]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        'unused-access-keys: no credential report (it is late); falling back to source: api']


def test_credential_report_has_no_fallback(caplog):
    sources = Recording()
    with pytest.raises(ReportUnavailable, match='it is late'):
        sources.gather('credential-report', ['alice'], Fetches(ReportUnavailable('it is late')))
    assert sources.ran == []


class DeniedReportIAM:
    """IAM that denies the credential report and holds one key, last used 100 days ago."""

    def __init__(self):
        self.calls = []

    def _denied(self, op):
        self.calls.append(op)
        raise ClientError({'Error': {'Code': 'AccessDenied', 'Message': 'no'}}, op)

    def get_credential_report(self):
        self._denied('GetCredentialReport')

    def generate_credential_report(self):
        self._denied('GenerateCredentialReport')

    def list_access_keys(self, UserName, MaxItems=100):
        self.calls.append('ListAccessKeys')
        return {'AccessKeyMetadata': [{'AccessKeyId': 'AKIAALICE', 'Status': 'Active',
                                       'CreateDate': NOW - timedelta(days=300)}]}

    def get_access_key_last_used(self, AccessKeyId):
        self.calls.append('GetAccessKeyLastUsed')
        return {'AccessKeyLastUsed': {'LastUsedDate': NOW - timedelta(days=100),
                                      'ServiceName': 's3', 'Region': 'us-east-1'}}


def test_a_denied_credential_report_leaves_hybrid_to_the_api(caplog):
    client = DeniedReportIAM()
    sources = Sources(client, direct, TH, NOW, workers=1)
    with caplog.at_level(logging.WARNING, logger='custodian.unused-access-keys'):
        out = sources.gather('hybrid', ['alice'], lambda: fetch_report(
            client, direct, NOW, max_age=timedelta(hours=4), timeout=10))
    [found] = out.facts['alice']
    assert (found.key_id, found.source, found.last_service) == ('AKIAALICE', 'api', 's3')
    assert client.calls == ['GetCredentialReport', 'ListAccessKeys', 'GetAccessKeyLastUsed']
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert 'no credential report (AccessDenied' in warning
    assert warning.endswith('falling back to source: api')


def test_sources_import_without_c7n():
    code = ('import sys, c7n_unused_keys.sources\n'
            'found = sorted(m for m in sys.modules if m.split(".")[0] == "c7n")\n'
            'assert not found, found\n')
    run = run_command([sys.executable, '-c', code], None)
    assert run.returncode == 0, run.stderr
