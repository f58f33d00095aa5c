"""The `dormant-users` filter on aws.iam-user: users left with no credential in use."""
import logging
from datetime import datetime, timezone
from typing import Optional, Tuple

from botocore.exceptions import ClientError
from c7n.filters import Filter
from c7n.resources.iam import User
from c7n.utils import local_session, type_schema

from . import facts, passwords
from .credential_report import as_utc, report_for
from .errors import is_gone
from .filters import KEY_PERMISSIONS, REPORT_PERMISSIONS
from .model import Verdict
from .names import DORMANT_ANNOTATION
from .pace import paced
from .password_filter import PASSWORD_PERMISSIONS
from .schema_check import check_schema
from .sources import WORKERS

log = logging.getLogger('custodian.dormant-users')


@User.filter_registry.register('dormant-users')
class DormantUsers(Filter):
    """IAM users with no active access key, no console password, and no use of any
    credential for `days` days: users a person may remove. Nothing removes them.

    :example:

    .. code-block:: yaml

      policies:
        - name: iam-dormant-users
          resource: aws.iam-user
          filters:
            - type: dormant-users
              days: 45

    A user matches when none of its keys is Active, it has no login profile, and the
    last use of any of its keys or of its password (PasswordLastUsed, which outlives
    the password) is `days` or more ago; never used, when it was made that long ago.
    The credential report rules out users with a use within `days`; every other user
    is confirmed with GetUser, GetLoginProfile, ListAccessKeys and GetAccessKeyLastUsed.
    The matched user is annotated under `c7n:dormant-user` with CreateDate, LastUsed,
    IdleDays and Reason; `c7n-unused-keys report` lists it as `dormant`.
    """

    schema = type_schema('dormant-users', required=['days'], **{
        'days': {'type': 'integer', 'minimum': 1},
        'report-max-age-hours': {'type': 'number', 'minimum': 0},
        'report-timeout': {'type': 'number', 'minimum': 1},
    })
    schema_alias = False
    permissions = KEY_PERMISSIONS + PASSWORD_PERMISSIONS + REPORT_PERMISSIONS

    def validate(self):
        check_schema(self)
        return self

    def process(self, resources, event=None):
        if not resources:
            return []
        now = datetime.now(timezone.utc)
        days = self.data['days']
        client = local_session(self.manager.session_factory).client('iam')
        retry = paced(self.manager)
        users = [r['UserName'] for r in resources]
        report = report_for('dormant-users', self.data, client, retry, now)

        def uses(u):
            row = report.passwords.get(u)
            return [s.last_used for s in report.slots.get(u, ())] + [
                row.last_used if row else None]
        picked = users if report is None else [
            u for u in users if passwords.may_be_dormant(uses(u), days, now)]
        log.info('dormant-users: %d of %d users to confirm', len(picked), len(users))
        with self.executor_factory(max_workers=WORKERS) as pool:
            found = dict(zip(picked, pool.map(
                lambda u: self.judge(client, retry, u, days, now), picked)))
        matched = []
        for r in resources:
            r.pop(DORMANT_ANNOTATION, None)
            got = found.get(r['UserName'])
            if got is None:
                continue
            created, last, verdict = got
            r[DORMANT_ANNOTATION] = {
                'CreateDate': created.isoformat(),
                'LastUsed': last.isoformat() if last else None,
                'IdleDays': verdict.idle_days, 'Reason': verdict.reason}
            matched.append(r)
        log.info('dormant-users: %d of %d users are dormant', len(matched), len(resources))
        return matched

    @staticmethod
    def judge(client, retry, user: str, days: int, now: datetime
              ) -> Optional[Tuple[datetime, Optional[datetime], Verdict]]:
        """(made, last use, verdict) of a dormant user; None otherwise. The cheapest
        reads first: an Active key or a login profile ends it."""
        listed = facts.list_keys(client, retry, user)
        if any(k.status == 'Active' for k in listed) or facts.has_password(client, retry, user):
            return None
        try:
            held = retry(client.get_user, UserName=user)['User']
        except ClientError as e:
            if is_gone(e):
                return None
            raise
        keys = [f for f in (facts.last_used(client, retry, k) for k in listed) if f]
        used = as_utc(held['PasswordLastUsed']) if held.get('PasswordLastUsed') else None
        made = as_utc(held['CreateDate'])
        verdict = passwords.dormant(made, keys, None, used, days, now)
        if verdict is None:
            return None
        last = max([k.last_used for k in keys if k.last_used] + ([used] if used else []),
                   default=None)
        return made, last, verdict
