"""`retire-passwords` and `marked-passwords` on aws.iam-user: the c7n shell around
`password_lifecycle`, its only writes (TagUser, UntagUser, DeleteLoginProfile)."""
import logging
from datetime import datetime, timezone
from typing import Dict, List, Optional

from botocore.exceptions import ClientError
from c7n.actions import BaseAction
from c7n.exceptions import PolicyExecutionError, PolicyValidationError
from c7n.filters import Filter
from c7n.manager import iter_filters
from c7n.resources.iam import User
from c7n import utils
from c7n.utils import local_session, type_schema

from . import c7n_reach, facts, lifecycle, markers
from . import password_lifecycle as pl
from .errors import describe, is_gone
from .filters import MARKER_PREFIX_SCHEMA
from .model import PasswordFacts
from .names import MARKER_PREFIX, PASSWORD_RESULTS, UNUSED_PASSWORD_ANNOTATION
from .pace import paced
from .password_filter import PASSWORD_PERMISSIONS, UnusedPasswords
from .schema_check import BREAKER_SCHEMA, check_approvers, check_breaker, check_schema
from .sources import WORKERS
from .user_source import refuse_without_tags

log = logging.getLogger('custodian.retire-passwords')


@User.filter_registry.register('marked-passwords')
class MarkedPasswords(Filter):
    """IAM users carrying the password marker of `retire-passwords`.

    :example:

    .. code-block:: yaml

      policies:
        - name: iam-passwords-pending-removal
          resource: aws.iam-user
          filters:
            - type: marked-passwords

    In a retire policy it stands beside `unused-passwords` in an `or`, so that a user
    whose password was used, exempted or removed since it was marked reaches the
    action, which takes the mark off. Read from the user's tags only.
    """

    schema = type_schema('marked-passwords', **{'marker-tag-prefix': MARKER_PREFIX_SCHEMA})
    schema_alias = False
    permissions = ('iam:ListUsers',)

    def validate(self):
        check_schema(self)
        refuse_without_tags(self.manager, 'marked-passwords reads every user\'s tags')
        return self

    def process(self, resources, event=None):
        tag = self.data.get('marker-tag-prefix', MARKER_PREFIX) + pl.PASSWORD_SUFFIX
        return [r for r in resources if any(t['Key'] == tag for t in r.get('Tags', ()))]


@User.action_registry.register('retire-passwords')
class RetirePasswords(BaseAction):
    """Removes the console passwords that `unused-passwords` matched, after a notice and
    a grace: a password cannot be deactivated, so it is marked, then removed.

    :example:

    .. code-block:: yaml

      policies:
        - name: iam-retire-unused-console-passwords
          resource: aws.iam-user
          filters:
            - or:
              - type: unused-passwords
                days: 45
                never-used-days: 30
              - type: marked-passwords
          actions:
            - type: retire-passwords
              remove-after-days: 30
              max-removals:
                amount: 20

    The first run that matches a password tags its user `<marker-tag-prefix>-password`
    with the time and the removal date. Once `remove-after-days` have passed, a run
    that finds it still unused, read afresh (GetLoginProfile, GetUser), removes the
    login profile (DeleteLoginProfile) and the tag. A use after the mark, or a login
    profile made since, starts the grace again; a user no longer matched (used, or
    exempt) loses the mark; one whose login profile is gone loses it too. MFA devices
    and access keys are never touched.

    `approval-tag`, `required-approvers` and `required-approvers-tag` work as on
    `retire-access-keys`, with the tag `<approval-tag>-password`. `max-removals`
    (`amount`, `percent` of the users matched, `op`) fails the run before any write
    when more removals are planned. One record per user (UserName, Credential,
    Step, At, RemoveOn, Error, ApprovalTag, ApprovedBy, Marker, ExecutionId) goes to
    the action's output file and to the `c7n:retire-passwords` annotation.
    """

    schema = type_schema(
        'retire-passwords',
        **{
            'remove-after-days': {'type': 'integer', 'minimum': 1},
            'marker-tag-prefix': MARKER_PREFIX_SCHEMA,
            'approval-tag': MARKER_PREFIX_SCHEMA,
            'required-approvers': {'type': 'integer', 'minimum': 1,
                                   'maximum': markers.MAX_APPROVALS},
            'required-approvers-tag': {'type': 'string', 'minLength': 1, 'maxLength': 128},
            'max-removals': BREAKER_SCHEMA,
        })
    schema_alias = False
    permissions = PASSWORD_PERMISSIONS + ('iam:DeleteLoginProfile', 'iam:TagUser',
                                          'iam:UntagUser')

    def __init__(self, data=None, manager=None, log_dir=None):
        super().__init__(data, manager, log_dir)
        if manager is not None:
            # Marks and exemptions are read fresh, never from c7n's 15-minute cache.
            c7n_reach.without_cache(manager)

    @property
    def name(self):
        return 'retire-passwords'

    def validate(self):
        check_schema(self)
        name = self.manager.data.get('name')
        check_breaker('retire-passwords', 'max-removals', self.data, name)
        check_approvers('retire-passwords', self.data, 'removals', name)
        refuse_without_tags(self.manager, 'retire-passwords keeps its marks in user tags')
        if not [f for f in iter_filters(self.manager.filters)
                if isinstance(f, UnusedPasswords)]:
            raise PolicyValidationError(
                'retire-passwords acts on the passwords that an unused-passwords filter '
                'matched; add one to the filters of %s' % name)
        return self

    def process(self, resources):
        now = datetime.now(timezone.utc)
        opts = pl.options_from(self.data)
        client = local_session(self.manager.session_factory).client('iam')
        retry = paced(self.manager)

        marks_by_user = {r['UserName']: pl.marks_of(r.get('Tags'), opts) for r in resources}

        def plan(r) -> Optional[pl.PasswordPlan]:
            marks = marks_by_user[r['UserName']]
            ann = r.get(UNUSED_PASSWORD_ANNOTATION)
            if ann is not None:
                found: Optional[PasswordFacts] = facts_of(r['UserName'], ann)
            elif marks.marker is not None:
                # Marked, not matched: read afresh whether the password is still there.
                found = facts.password(client, retry, r['UserName'])
            else:
                return None
            return pl.plan_password(r['UserName'], found, ann is not None, marks, now, opts)

        with self.executor_factory(max_workers=WORKERS) as pool:
            plans = [p for p in pool.map(plan, resources) if p is not None]
        self.check_breaker(plans, sum(1 for r in resources
                                      if UNUSED_PASSWORD_ANNOTATION in r))
        with self.executor_factory(max_workers=WORKERS) as pool:
            records = list(pool.map(
                lambda p: self.execute(client, retry, p, now, opts, marks_by_user[p.user]),
                plans))
        run = getattr(self.manager.ctx, 'execution_id', None)
        by_user: Dict[str, List[dict]] = {}
        for rec in records:
            rec['ExecutionId'] = run
            by_user.setdefault(rec['UserName'], []).append(rec)
        for r in resources:
            r[PASSWORD_RESULTS] = by_user.get(r['UserName'], [])
        return self.conclude(records)

    def execute(self, client, retry, plan: pl.PasswordPlan, now: datetime,
                opts: pl.PasswordOptions, marks: pl.PasswordMarks) -> dict:
        try:
            if plan.warning:
                log.warning('retire-passwords: %s: %s', plan.user, plan.warning)
            if plan.remove:
                plan = pl.confirm_removal(plan, facts.password(client, retry, plan.user),
                                          now, opts, marks)
                if plan.warning:
                    log.warning('retire-passwords: %s: %s', plan.user, plan.warning)
            if plan.tag:
                retry(client.tag_user, UserName=plan.user,
                      Tags=[{'Key': k, 'Value': v} for k, v in plan.tag.items()])
            if plan.remove and not remove(client, retry, plan.user):
                plan = pl.PasswordPlan(user=plan.user, step=pl.GONE, at=now,
                                       untag=plan.untag)
            if plan.untag:
                retry(client.untag_user, UserName=plan.user, TagKeys=list(plan.untag))
        except ClientError as e:
            return record(plan, describe(e))
        except Exception as e:  # this user's failure (a lost connection), not the run's
            return record(plan, '%s: %s' % (type(e).__name__, e))
        return record(plan)

    def check_breaker(self, plans, seen: int):
        breaker = lifecycle.Breaker.of(self.data.get('max-removals'))
        if breaker is None:
            return
        planned = sum(1 for p in plans if p.remove)
        if breaker.tripped(planned, seen):
            message = ('retire-passwords: circuit breaker: %d removals planned of %d '
                       'passwords matched, above max-removals (%s); nothing was changed' % (
                           planned, seen, breaker.describe()))
            log.error(message)
            raise PolicyExecutionError(message)

    def conclude(self, records):
        counts: Dict[str, int] = {}
        for rec in records:
            counts[rec['Step']] = counts.get(rec['Step'], 0) + 1
        log.info('retire-passwords: %s', ', '.join(
            '%s %d' % (s, counts[s]) for s in pl.STEPS if s in counts) or 'no passwords')
        failed = [rec for rec in records if rec['Step'] == pl.FAILED]
        if failed:
            self.manager.ctx.output.write_file('action-%s' % self.name, utils.dumps(records))
            raise PolicyExecutionError('retire-passwords: %d of %d users failed: %s' % (
                len(failed), len(records), '; '.join(
                    '%s: %s' % (f['UserName'], f['Error']) for f in failed[:10])))
        return records


def remove(client, retry, user: str) -> bool:
    """DeleteLoginProfile of a login profile the recheck saw just before: True when
    this run removed it, False when someone else had."""
    try:
        retry(client.delete_login_profile, UserName=user)
    except ClientError as e:
        if not is_gone(e):
            raise
        # NoSuchEntity on a retried call: an earlier attempt of ours was applied and its
        # answer lost.
        if e.response.get('ResponseMetadata', {}).get('RetryAttempts', 0) > 0:
            log.warning('retire-passwords: %s: DeleteLoginProfile was retried and found the '
                        'login profile gone: an earlier attempt removed it', user)
            return True
        return False
    except Exception as e:  # no answer at all: the removal may have been applied
        try:
            still = facts.password(client, retry, user) is not None
        except Exception:  # unknown: report the removal's own error
            raise e
        if still:
            raise
        log.warning('retire-passwords: %s: DeleteLoginProfile got no answer, and the login '
                    'profile is gone: it was removed', user)
    return True


def facts_of(user: str, ann: dict) -> PasswordFacts:
    """The facts the filter read this run, from its annotation."""
    used = ann['PasswordLastUsed']
    return PasswordFacts(user=user, created=datetime.fromisoformat(ann['LoginProfileCreated']),
                         last_used=datetime.fromisoformat(used) if used else None,
                         source=ann['Source'])


def record(plan: pl.PasswordPlan, error: Optional[str] = None) -> dict:
    return {
        'UserName': plan.user,
        'Credential': 'password',
        'Step': pl.FAILED if error else plan.step,
        'At': plan.at.isoformat(),
        'RemoveOn': plan.remove_on.isoformat() if plan.remove_on and not error else None,
        'Error': error,
        'ApprovalTag': plan.approval_tag if not error else None,
        'ApprovedBy': plan.approved_by if plan.step == pl.REMOVED and not error else None,
        'Marker': plan.marker if not error else None,
    }
