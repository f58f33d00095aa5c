"""The `unused-passwords` filter on aws.iam-user: the c7n shell around `passwords`."""
import logging
from datetime import datetime, timezone

from c7n.filters import Filter
from c7n.resources.iam import User
from c7n.utils import local_session, type_schema

from . import decide, facts, passwords
from .credential_report import report_for
from .filters import REPORT_PERMISSIONS, exemption_of
from .names import EXEMPT_PASSWORD_ANNOTATION, EXEMPT_TAG, UNUSED_PASSWORD_ANNOTATION
from .pace import paced
from .schema_check import check_max_days, check_schema
from .sources import WORKERS
from .user_source import refuse_without_tags

log = logging.getLogger('custodian.unused-passwords')

PASSWORD_PERMISSIONS = ('iam:GetLoginProfile', 'iam:GetUser')


@User.filter_registry.register('unused-passwords')
class UnusedPasswords(Filter):
    """IAM users whose console password has not been used for `days` days.

    :example:

    .. code-block:: yaml

      policies:
        - name: iam-unused-console-passwords
          resource: aws.iam-user
          filters:
            - type: unused-passwords
              days: 45
              never-used-days: 30

    A user matches when it has a console password (a login profile) whose last use
    (PasswordLastUsed) is at least `days` days ago, or, never used, whose login
    profile was created at least `never-used-days` days ago (default: `days`). With
    `max-days` the whole idle days must also be at most `max-days`.

    The IAM credential report rules out the users that cannot match (no password,
    or one used within `days`); every other user is confirmed with GetLoginProfile
    and GetUser, so the answer is exact. Without a report (it cannot be had), every
    user is confirmed, with a warning.

    The matched user is annotated under `c7n:unused-passwords` with
    LoginProfileCreated, PasswordLastUsed, NeverUsed, IdleDays, Source and Reason.
    A user whose exempt tag (default `c7n-unused-keys-exempt`) holds `password` or
    `*` does not match, and is annotated under `c7n:exempt-passwords`.
    """

    schema = type_schema(
        'unused-passwords',
        required=['days'],
        **{
            'days': {'type': 'integer', 'minimum': 1},
            'never-used-days': {'type': 'integer', 'minimum': 0},
            'max-days': {'type': 'integer', 'minimum': 2},
            'report-max-age-hours': {'type': 'number', 'minimum': 0},
            'report-timeout': {'type': 'number', 'minimum': 1},
            'exempt-tag': {'type': 'string', 'minLength': 1},
        })
    schema_alias = False
    permissions = PASSWORD_PERMISSIONS + REPORT_PERMISSIONS

    def validate(self):
        check_schema(self)
        check_max_days('unused-passwords', self.data,
                       self.manager.data.get('name') if self.manager else 'this policy')
        refuse_without_tags(self.manager, 'unused-passwords reads each user\'s exempt tag')
        return self

    def process(self, resources, event=None):
        if not resources:
            return []
        now = datetime.now(timezone.utc)
        th = decide.thresholds_from(self.data)
        client = local_session(self.manager.session_factory).client('iam')
        retry = paced(self.manager)
        users = [r['UserName'] for r in resources]
        report = report_for('unused-passwords', self.data, client, retry, now)
        picked = users if report is None else [
            u for u in users if passwords.password_may_match(
                report.passwords.get(u), th, now, report.generated)]
        log.info('unused-passwords: %d of %d users to confirm', len(picked), len(users))
        with self.executor_factory(max_workers=WORKERS) as pool:
            found = dict(zip(picked, pool.map(
                lambda u: facts.password(client, retry, u), picked)))
        tag = self.data.get('exempt-tag', EXEMPT_TAG)
        matched = []
        for r in resources:
            # Set or cleared on every user: c7n's cache shares user objects.
            r.pop(UNUSED_PASSWORD_ANNOTATION, None)
            r.pop(EXEMPT_PASSWORD_ANNOTATION, None)
            f = found.get(r['UserName'])
            verdict = passwords.unused_password(f, th, now) if f else None
            if verdict is None:
                continue
            ex = exemption_of(r, tag, 'unused-passwords')
            if passwords.password_exempt(ex, now):
                log.info('unused-passwords: exemption honoured: user=%s tag=%s value=%r '
                         'until=%s', r['UserName'], tag, ex.raw,
                         ex.until.isoformat() if ex.until else 'none')
                r[EXEMPT_PASSWORD_ANNOTATION] = dict(
                    annotation(f, verdict), Exemption=ex.raw,
                    ExemptUntil=ex.until.isoformat() if ex.until else None)
                continue
            r[UNUSED_PASSWORD_ANNOTATION] = annotation(f, verdict)
            matched.append(r)
        log.info('unused-passwords: %d of %d users have an unused password',
                 len(matched), len(resources))
        return matched


def annotation(f, v) -> dict:
    return {
        'LoginProfileCreated': f.created.isoformat(),
        'PasswordLastUsed': f.last_used.isoformat() if f.last_used else None,
        'NeverUsed': v.never_used,
        'IdleDays': v.idle_days,
        'Source': f.source,
        'Reason': v.reason,
    }
