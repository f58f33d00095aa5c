"""The IAM credential report: fetching it (with polling) and parsing it into key slots
and password rows."""
import csv
import io
import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Callable, Dict, List, Optional

from botocore.exceptions import ClientError

from .errors import describe
from .model import CredentialReport, PasswordRow, ReportSlot

log = logging.getLogger('custodian.unused-access-keys')

_NONE = ('N/A', 'no_information', 'not_supported', '')
# GetCredentialReport errors that mean "generate one", not "give up".
_REGENERATE = ('ReportNotPresent', 'ReportExpired', 'ReportInProgress')


class ReportUnavailable(Exception):
    """The credential report could not be had; the message says why."""


def as_utc(dt: datetime) -> datetime:
    """Timezone-aware UTC; a naive datetime is taken to be UTC already."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def _date(value: str) -> Optional[datetime]:
    if value in _NONE:
        return None
    return as_utc(datetime.fromisoformat(value.replace('Z', '+00:00')))


def _text(value: str) -> Optional[str]:
    return None if value in _NONE else value


def parse_report(content, generated: datetime) -> CredentialReport:
    """Parse the CSV body of GetCredentialReport. A slot exists where a key was created."""
    if isinstance(content, bytes):
        content = content.decode('utf-8')
    slots: Dict[str, List[ReportSlot]] = {}
    passwords: Dict[str, PasswordRow] = {}
    for row in csv.DictReader(io.StringIO(content)):
        user = row['user']
        if user == '<root_account>':
            continue
        passwords[user] = PasswordRow(user=user, enabled=row.get('password_enabled') == 'true',
                                      last_used=_date(row.get('password_last_used', 'N/A')))
        slots[user] = []
        for n in (1, 2):
            prefix = 'access_key_%d_' % n
            rotated = _date(row.get(prefix + 'last_rotated', 'N/A'))
            if rotated is None:
                continue
            slots[user].append(ReportSlot(
                user=user, slot=n,
                active=row.get(prefix + 'active') == 'true',
                last_rotated=rotated,
                last_used=_date(row.get(prefix + 'last_used_date', 'N/A')),
                last_service=_text(row.get(prefix + 'last_used_service', 'N/A')),
                last_region=_text(row.get(prefix + 'last_used_region', 'N/A'))))
    return CredentialReport(
        generated=as_utc(generated), slots={u: tuple(s) for u, s in slots.items()},
        passwords=passwords)


def fetch_report(client, retry, now: datetime, max_age: timedelta, timeout: float,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 first_delay: float = 0.5, max_delay: float = 16.0) -> CredentialReport:
    """The account's credential report, generated if missing or older than max_age.

    After GenerateCredentialReport, GetCredentialReport is polled with
    exponential backoff until a newer report appears or `timeout` seconds have
    passed. When generation answers COMPLETE, the stored report is the newest
    AWS will make (it regenerates at most every four hours), so it is used.
    Raises ReportUnavailable with the reason when no report can be had.
    """
    try:
        old = _get(client, retry)
        if old is not None and now - old.generated <= max_age:
            log.info('unused-access-keys: using the credential report of %s',
                     old.generated.isoformat())
            return old
        log.info('unused-access-keys: generating a credential report')
        complete = retry(client.generate_credential_report).get('State') == 'COMPLETE'
        deadline, delay = clock() + timeout, first_delay
        while True:
            if not complete:
                left = deadline - clock()
                if left <= 0:
                    raise ReportUnavailable(
                        'the credential report was still being generated after %ss'
                        % timeout)
                sleep(min(delay, left))
                delay = min(delay * 2, max_delay)
            report = _get(client, retry)
            if report is not None and (
                    complete or old is None or report.generated > old.generated):
                log.info('unused-access-keys: credential report of %s ready',
                         report.generated.isoformat())
                return report
            complete = False
    except ClientError as e:
        raise ReportUnavailable(describe(e))
    except (ValueError, KeyError, csv.Error) as e:
        raise ReportUnavailable('the credential report could not be read: %r' % e)


def _get(client, retry) -> Optional[CredentialReport]:
    """The stored report, or None where one has to be generated first."""
    try:
        resp = retry(client.get_credential_report)
    except ClientError as e:
        if e.response['Error']['Code'] in _REGENERATE:
            return None
        raise
    return parse_report(resp['Content'], resp['GeneratedTime'])


def report_for(element: str, data, client, retry, now: datetime
               ) -> Optional[CredentialReport]:
    """The report for a filter whose options are `data` (`report-max-age-hours`,
    `report-timeout`); None, with a warning, when it cannot be had: the filter then
    confirms every user from the API."""
    try:
        return fetch_report(client, retry, now,
                            max_age=timedelta(hours=data.get('report-max-age-hours', 4)),
                            timeout=data.get('report-timeout', 300))
    except ReportUnavailable as e:
        log.warning('%s: no credential report (%s); confirming every user from the API',
                    element, e)
        return None
