"""The `retire-access-keys` action on aws.iam-user and aws.iam-access-key: the c7n shell
around lifecycle and act."""
import logging
from datetime import datetime, timezone
from typing import Optional

import boto3
from c7n import utils
from c7n.actions import BaseAction
from c7n.exceptions import PolicyExecutionError, PolicyValidationError
from c7n.manager import iter_filters
from c7n.resources.iam import User
from c7n.utils import local_session, type_schema

from . import act, c7n_reach, lifecycle, markers
from .filters import (MARKER_PREFIX_SCHEMA, MarkedAccessKeys,
                      UnusedAccessKeys)
from .names import MARKER_PREFIX, RESULTS_ANNOTATION, RUN_RECORDS, RUN_STAMP
from .schema_check import BREAKER_SCHEMA, check_approvers, check_breaker, check_schema
from .pace import paced
from .sources import WORKERS
from .user_source import refuse_without_tags

log = logging.getLogger('custodian.retire-access-keys')

# Seconds for which the filter's reads of a user stand in for fresh ones (see the docstring),
# and the most a policy may set: beyond a few minutes they are no recheck at all.
RECHECK_MAX_AGE = 60
RECHECK_MAX_AGE_LIMIT = 300


@User.action_registry.register('retire-access-keys')
class RetireAccessKeys(BaseAction):
    """Deactivates the keys that `unused-access-keys` matched; deletes them later.

    :example:

    .. code-block:: yaml

      policies:
        - name: iam-retire-unused-access-keys
          resource: aws.iam-user
          filters:
            - or:
              - type: unused-access-keys
                days: 45
                never-used-days: 30
              - type: marked-access-keys
          actions:
            - type: retire-access-keys
              delete-after-days: 30
              max-deactivations:
                amount: 20
                percent: 25
                op: and

    Each matched key takes one step a run. An Active key is deactivated and
    its user tagged `<marker-tag-prefix>:<AccessKeyId>` with the time. An
    Inactive key without a marker is marked. Once `delete-after-days` have
    passed since the marker, the key is rechecked (it exists, is still
    Inactive, was not used after the marker) and deleted. A key its
    owner reactivated keeps living: its marker is removed, and reactivation
    counts as use for the filter's `days`. The key of the credentials the
    policy runs with is never touched (`skipped-self`).

    With `approval-tag` (for example `c7n-unused-keys-approved`), a key due for
    deletion is deleted only when its user carries the tag
    `<approval-tag>:<AccessKeyId>` whose value is a UTC time (`2026-11-27T17:00:00Z`)
    later than the key's marker, optionally followed by who approved
    (`2026-11-27T17:00:00Z by slack:U0123ABC`); otherwise its step is
    `awaiting-approval` and nothing changes. The recheck still runs before the
    delete. An approval goes with its key's markers (deleted, reactivated, marked
    again). With `required-approvers: 2` a delete needs two distinct approvers,
    their approvals one after another in the tag's value
    (`<time> by slack:U1 <time> by slack:U2`); with `required-approvers-tag` too,
    only for users that carry that tag (privileged users), others needing one.

    Steps are planned, and deletes rechecked, on what the `unused-access-keys`
    filter read of the user in this run (ListAccessKeys, GetAccessKeyLastUsed)
    while those reads are at most `recheck-max-age-seconds` old (default 60), and
    on fresh calls once they are older or missing. `0` makes the calls again for
    every user and every delete.

    One record per key (UserName, AccessKeyId, Step, At, DeleteOn, Error,
    ApprovalTag: the tag that approves its deletion, with `approval-tag`, while the
    key stays deactivated; ApprovedBy: on a delete, who approved it, as the approval
    names them; Marker: the key's deactivation marker as the run left it;
    ExecutionId: c7n's execution id, as in metadata.json) goes
    to the action's output file and to the `c7n:retire-access-keys`
    annotation. When any key fails, the others go on and the run fails after.
    `marked-access-keys` lets a run see users whose only marker belongs to a
    key deleted meanwhile, so that the marker is removed.

    `max-deactivations` is a circuit breaker on what the run would change: every
    key is planned first, and when the planned deactivations exceed `amount`
    and/or `percent` of the keys the filter saw (`op`, as in c7n's
    `max-resources`), the run makes no write at all and fails. Deletes are not
    counted: they only follow earlier deactivations.

    The policy never reads c7n's resource cache: markers, exemptions and owners'
    reactivations are read fresh on every run, also within the cache period.
    """

    schema = type_schema(
        'retire-access-keys',
        **{
            'delete-after-days': {'type': 'integer', 'minimum': 1},
            'marker-tag-prefix': MARKER_PREFIX_SCHEMA,
            'approval-tag': MARKER_PREFIX_SCHEMA,
            'required-approvers': {'type': 'integer', 'minimum': 1,
                                   'maximum': markers.MAX_APPROVALS},
            'required-approvers-tag': {'type': 'string', 'minLength': 1, 'maxLength': 128},
            'recheck-max-age-seconds': {'type': 'number', 'minimum': 0,
                                        'maximum': RECHECK_MAX_AGE_LIMIT},
            'max-deactivations': BREAKER_SCHEMA,
        })
    schema_alias = False
    # GetUser reads a marker back after a TagUser whose answer was lost.
    permissions = ('iam:ListAccessKeys', 'iam:GetAccessKeyLastUsed', 'iam:UpdateAccessKey',
                   'iam:DeleteAccessKey', 'iam:TagUser', 'iam:UntagUser', 'iam:GetUser')

    def __init__(self, data=None, manager=None, log_dir=None):
        super().__init__(data, manager, log_dir)
        if manager is not None:
            # Decisions that write are made on fresh data: c7n's cache would hold users'
            # tags (markers, exemptions) for 15 minutes, and share user objects between
            # the policies of one process.
            c7n_reach.without_cache(manager)

    @property
    def name(self):
        # The output file is `action-<name>`; c7n's default is the class name in lower case.
        return 'retire-access-keys'

    def validate(self):
        check_schema(self)
        policy = self.manager.data.get('name')
        check_breaker('retire-access-keys', 'max-deactivations', self.data, policy)
        check_approvers('retire-access-keys', self.data, 'deletes', policy)
        approval = self.data.get('approval-tag')
        if approval and markers.heads_overlap(self.prefix(), approval):
            # Its tags would be read as markers (or the markers as approvals).
            raise PolicyValidationError(
                'retire-access-keys: approval-tag %r overlaps the marker tags of '
                'marker-tag-prefix %r; pick a name that neither starts nor extends '
                '"%s:" or "%s-reactivated:", on %s' % (
                    approval, self.prefix(), self.prefix(), self.prefix(),
                    self.manager.data.get('name')))
        refuse_without_tags(self.manager, 'retire-access-keys keeps its markers in user tags '
                            'and needs every user\'s')
        found = self.unused_filters()
        if not found:
            raise PolicyValidationError(
                'retire-access-keys acts on the keys that an unused-access-keys filter '
                'matched; add one to the filters of %s' % self.manager.data.get('name'))
        for f in found:
            parent = f.get_block_parent()
            if not (parent is self.manager or (
                    getattr(parent, 'type', None) == 'or'
                    and parent.get_block_parent() is self.manager)):
                # In an and/not, a user it matched may be dropped there and still reach
                # the action by another branch (marked-access-keys), with those matches.
                raise PolicyValidationError(
                    'retire-access-keys: its unused-access-keys filter must be a top-level '
                    'filter or sit directly in a top-level or, not in an and/not block, on '
                    '%s' % self.manager.data.get('name'))
            if f.data.get('status', 'any') != 'any' or 'max-days' in f.data:
                raise PolicyValidationError(
                    'retire-access-keys: its unused-access-keys filter must keep matching '
                    'deactivated keys, or they are never deleted: use status any (the '
                    'default) and no max-days, on %s' % self.manager.data.get('name'))
        for f in iter_filters(self.manager.filters):
            if isinstance(f, MarkedAccessKeys) and f.prefix() != self.prefix():
                raise PolicyValidationError(
                    'retire-access-keys: marker-tag-prefix %r differs from that of the '
                    'marked-access-keys filter (%r) on %s' % (
                        self.prefix(), f.prefix(), self.manager.data.get('name')))
        return self

    def prefix(self):
        return self.data.get('marker-tag-prefix', MARKER_PREFIX)

    def options(self) -> lifecycle.Options:
        return lifecycle.options_from(self.data, self.unused_filters()[0].thresholds().days,
                                      keeps_deleted=self.notice_after() is not None)

    def breaker(self) -> Optional[lifecycle.Breaker]:
        return lifecycle.Breaker.of(self.data.get('max-deactivations'))

    def unused_filters(self):
        return [f for f in iter_filters(self.manager.filters) if isinstance(f, UnusedAccessKeys)]

    def process(self, resources):
        records = self.retire(resources)
        per_user = {}
        for rec in records:
            per_user.setdefault(rec['UserName'], []).append(rec)
        for r in resources:
            r[RESULTS_ANNOTATION] = per_user.get(r['UserName'], [])
        return self.conclude(records)

    def retire(self, users, scope=None):
        """Plan every user (dicts with UserName and Tags), check the breaker, then act;
        the records, with this run's ExecutionId. `scope` ({user: key ids}) limits a
        key-level run to the keys among its resources (and the markers of keys gone)."""
        now = datetime.now(timezone.utc)
        opts = self.options()
        session = local_session(self.manager.session_factory)
        client = session.client('iam')
        own = own_key_ids(session, getattr(self.manager.session_factory, 'profile', None))
        # This policy's own matches from this run, never what a resource carries.
        run = self.manager.ctx.execution_id
        matches, seen, reads = {}, 0, {}
        max_age = self.data.get('recheck-max-age-seconds', RECHECK_MAX_AGE)
        for f in self.unused_filters():
            findings = f.run_findings(run)
            reads.update(findings.reads)
            # Two filters in an `or` look at the same keys: count them once.
            seen = max(seen, findings.keys_seen)
            for user, key_ids in findings.matches.items():
                known = matches.setdefault(user, [])
                known.extend(k for k in key_ids if k not in known and (
                    scope is None or k in scope.get(user, ())))

        retry = paced(self.manager)

        def plan(r):
            m = opts.markers_of(r.get('Tags'))
            return act.plan_user(client, retry, r['UserName'],
                                 matches.get(r['UserName'], []), m, now, opts,
                                 is_self=own.__contains__,
                                 scope=None if scope is None else scope[r['UserName']],
                                 reads=act.fresh(reads.get(r['UserName']), max_age),
                                 tags=r.get('Tags'))

        log.info('retire-access-keys: planning %d users, delete after %s days; the filter '
                 'read %d of them in this run (used while at most %gs old)',
                 len(users), opts.delete_after.days,
                 sum(1 for r in users if r['UserName'] in reads), max_age)
        with self.executor_factory(max_workers=WORKERS) as pool:
            planned = list(pool.map(plan, users))
        self.check_breaker([p for ps, _ in planned for p in ps], seen)

        def execute(user_plans):
            # One user's steps one after another: IAM may refuse concurrent writes to
            # one user (ConcurrentModification). Freshness is judged as the user starts,
            # and a delete always sees the key's status read just before.
            user = user_plans[0].user
            user_reads = act.fresh(reads.get(user), max_age)
            if any(p.delete for p in user_plans):
                user_reads = act.status_read_again(client, retry, user, user_reads)
            return [act.execute(client, retry, p, now, opts,
                                reads=act.fresh(user_reads, max_age))
                    for p in user_plans]
        with self.executor_factory(max_workers=WORKERS) as pool:
            records = [rec for _, failed in planned for rec in failed] + [
                rec for recs in pool.map(execute, [ps for ps, _ in planned if ps])
                for rec in recs]
        for rec in records:
            # The report reads only the records of the run metadata.json describes.
            rec['ExecutionId'] = run
        return records

    def conclude(self, records):
        """Log the counts; fail the run, after writing the records, when a key failed."""
        counts = {}
        for rec in records:
            counts[rec['Step']] = counts.get(rec['Step'], 0) + 1
        log.info('retire-access-keys: %s', ', '.join(
            '%s %d' % (s, counts[s]) for s in lifecycle.STEPS if s in counts) or 'no keys')
        self.write_run_records(records)
        failed = [rec for rec in records if rec['Step'] == lifecycle.FAILED]
        if failed:
            error = PolicyExecutionError(
                'retire-access-keys: %d of %d keys failed: %s' % (
                    len(failed), len(records), '; '.join(
                        '%s %s: %s' % (f['UserName'], f['AccessKeyId'], f['Error'])
                        for f in failed[:10])))
            # c7n runs no later action once one raises: a notice that follows hands the
            # failure on after it has told the owners (the failed keys included).
            notice = self.notice_after()
            if notice is not None:
                notice.fail_after_sending(error)
                return records
            # c7n writes the results only when process() returns; a failed run needs them too.
            self.manager.ctx.output.write_file('action-%s' % self.name, utils.dumps(records))
            raise error
        return records

    def notice_after(self):
        """The policy's `notify-unused-keys` action that runs after this one, if any."""
        actions = list(self.manager.actions)
        later = actions[actions.index(self) + 1:] if self in actions else []
        return next((a for a in later if a.type == 'notify-unused-keys'), None)

    def check_breaker(self, plans, seen: int):
        """Before any write: fail the run when the planned deactivations exceed the limit."""
        breaker = self.breaker()
        # A key found Inactive without a marker is marked: that starts its deletion
        # clock as a deactivation does (keys switched off by hand, exemptions ending).
        planned = sum(1 for p in plans if p.deactivate or p.step == lifecycle.MARKED)
        if breaker is None or not breaker.tripped(planned, seen):
            return
        message = ('retire-access-keys: circuit breaker: %d deactivations planned of %d keys '
                   'seen, above max-deactivations (%s); nothing was changed' % (
                       planned, seen, breaker.describe()))
        log.error(message)
        self.write_run_records([], error=message)
        raise PolicyExecutionError(message)

    def write_run_records(self, records, error=None):
        """This run's records (and what failed the run as a whole) in a file named by
        the run: a retry into the same folder (Lambda's, or a reused `-s`) overwrites
        `action-retire-access-keys`, not this. c7n gzips and uploads it with the other
        files of an s3:// output."""
        ctx = self.manager.ctx
        if ctx.output is None:
            return  # called outside a policy run (c7n opens the output for one)
        start = ctx.start_time or datetime.now(timezone.utc).timestamp()
        name = RUN_RECORDS % (datetime.fromtimestamp(start, timezone.utc).strftime(RUN_STAMP),
                              ctx.execution_id)
        ctx.output.write_file(name, utils.dumps({
            'ExecutionId': ctx.execution_id, 'Start': start,
            'Policy': self.manager.data.get('name'), 'Error': error, 'Records': records}))


def own_key_ids(session, profile=None) -> set:
    """Access key ids of the credentials this run uses, and of those it started from
    (the profile, or the environment's): the role it assumes depends on them."""
    found = set()
    for s in (session, boto3.Session(profile_name=profile) if profile else boto3.Session()):
        try:
            creds = s.get_credentials()
        except Exception:  # no credentials configured is not our concern here
            creds = None
        if creds is not None:
            found.add(creds.get_frozen_credentials().access_key)
    return found
