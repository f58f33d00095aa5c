"""The `unused-access-keys` filter on aws.iam-user: the c7n shell around sources and decide."""
import logging
from datetime import datetime, timedelta, timezone
from typing import Optional

from c7n.exceptions import PolicyExecutionError, PolicyValidationError
from c7n.filters import Filter, ValueFilter
from c7n.manager import iter_filters
from c7n.resources.iam import User
from c7n.tags import TagActionFilter
from c7n.utils import local_session, type_schema

from . import decide, facts, lifecycle, markers
from .credential_report import ReportUnavailable, fetch_report
from .model import (SOURCE_API, Exemption, KeyFacts, Reads, RunFindings, Thresholds,
                    Verdict)
from .names import EXEMPT_ANNOTATION, EXEMPT_TAG, MARKER_PREFIX, UNUSED_ANNOTATION
from .schema_check import check_max_days, check_schema
from .pace import paced
from .sources import SOURCE_NAMES, WORKERS, Gathered, Sources
from .user_source import (LIST_ONLY, listed_without_tags,
                          refuse_without_tags)

log = logging.getLogger('custodian.unused-access-keys')

# IAM tag keys: letters, digits, spaces and _.:/=+-@ ; room is left for ':<AccessKeyId>'.
MARKER_PREFIX_SCHEMA = {'type': 'string', 'pattern': r'^[\w.:/=+@-]{1,80}$'}

# What each source of key data calls: every source lists keys and asks for last uses...
KEY_PERMISSIONS = ('iam:ListAccessKeys', 'iam:GetAccessKeyLastUsed')
# ...and all but `api` read the credential report.
REPORT_PERMISSIONS = ('iam:GenerateCredentialReport', 'iam:GetCredentialReport')
# Under `source: list-users`, the tags of the users matched.
TAG_PERMISSIONS = ('iam:ListUserTags',)


@User.filter_registry.register('unused-access-keys')
class UnusedAccessKeys(Filter):
    """IAM users with access keys that have not been used for `days` days.

    :example:

    .. code-block:: yaml

      policies:
        - name: iam-unused-access-keys
          resource: aws.iam-user
          filters:
            - type: unused-access-keys
              days: 45
              never-used-days: 30
              status: Active

    A key counts as unused when its last use (GetAccessKeyLastUsed) is at
    least `days` days ago, or, if it was never used, when it was created at
    least `never-used-days` days ago (default: `days`). With `max-days` the
    whole idle days must also be at most `max-days`, for warning windows.

    A user matches when at least one of its keys matches. Each matched key is
    annotated under `c7n:unused-access-keys` with AccessKeyId, Status,
    CreateDate, LastUsedDate, LastUsedService, LastUsedRegion, NeverUsed,
    IdleDays, Source and Reason.

    `source` chooses where last-use dates come from: `api` asks
    GetAccessKeyLastUsed for every key; `credential-report` decides on the IAM
    credential report; `hybrid` (default) lets the report rule out the users
    and keys that cannot match and confirms every remaining key with
    GetAccessKeyLastUsed. All three match the same keys.

    Keys named by the user's exempt tag (default `c7n-unused-keys-exempt`;
    value `*` or space-separated key ids, optionally `until=YYYY-MM-DD`) do not
    match; they are listed under `c7n:exempt-access-keys`.

    With the policy's `source: list-users`, users come without tags; the filter
    reads the tags (ListUserTags) of the users with unused keys, and only theirs,
    and sets them as the users' `Tags`.
    """

    schema = type_schema(
        'unused-access-keys',
        required=['days'],
        **{
            'days': {'type': 'integer', 'minimum': 1},
            'never-used-days': {'type': 'integer', 'minimum': 0},
            'max-days': {'type': 'integer', 'minimum': 2},
            'status': {'enum': ['Active', 'Inactive', 'any']},
            'source': {'enum': list(SOURCE_NAMES)},
            'report-max-age-hours': {'type': 'number', 'minimum': 0},
            # Renamed, as c7n's own report_max_age is in seconds: the schema refuses the old
            # name with a message that names the new one.
            'report-max-age': {'not': {'description': 'renamed: use report-max-age-hours'}},
            'report-timeout': {'type': 'number', 'minimum': 1},
            'exempt-tag': {'type': 'string', 'minLength': 1},
        })
    schema_alias = False
    permissions = KEY_PERMISSIONS + REPORT_PERMISSIONS

    def validate(self):
        # Also catches {type: ...} without days, which c7n's schema lets pass as `valuekv`.
        check_schema(self)
        check_max_days('unused-access-keys', self.data, self._policy_name())
        max_days = self.data.get('max-days')
        if listed_without_tags(self.manager):
            self._validate_listed_only()
        never = self.data.get('never-used-days')
        if max_days is not None and never is not None and never > max_days:
            raise PolicyValidationError(
                'unused-access-keys: never-used-days (%s) is above max-days (%s), so no '
                'never-used key could match, on %s' % (never, max_days, self._policy_name()))
        return self

    def _validate_listed_only(self):
        # Under list-users, only users that reach this filter get their tags.
        if self.get_block_parent() is not self.manager:
            raise PolicyValidationError(
                'unused-access-keys: with source: %s it must be a top-level filter, '
                'not nested in and/or/not, on %s' % (LIST_ONLY, self._policy_name()))
        top = list(self.manager.filters)
        here = next(i for i, f in enumerate(top) if f is self)
        for f in iter_filters(top[:here]):
            if reads_tags(f):
                raise PolicyValidationError(
                    'unused-access-keys: with source: %s users are listed without tags, '
                    'so the filter %s placed before unused-access-keys would see none; '
                    'move it after, or use source: describe-parallel, on %s' % (
                        LIST_ONLY, f.data, self._policy_name()))

    def _policy_name(self):
        return self.manager.data.get('name', 'this policy') if self.manager else 'this policy'

    def get_permissions(self):
        perms = KEY_PERMISSIONS
        if self.data.get('source', SOURCE_NAMES[0]) != SOURCE_API:
            perms += REPORT_PERMISSIONS
        if listed_without_tags(self.manager):
            perms += TAG_PERMISSIONS
        return perms

    def thresholds(self) -> Thresholds:
        return decide.thresholds_from(self.data)

    def process(self, resources, event=None):
        if not resources:
            return []
        now = datetime.now(timezone.utc)
        th = self.thresholds()
        gathered = self.gather([r['UserName'] for r in resources], th, now)
        if listed_without_tags(self.manager):
            self.read_tags(resources, gathered, th, now)
        matched = []
        found_now = self._this_run()
        found_now.keys_seen += gathered.keys_seen
        for user, (at, keys) in gathered.listings.items():
            found_now.reads[user] = Reads(at, keys, {
                f.key_id: f for f in gathered.facts.get(user, ()) if f.source == SOURCE_API})
        for r in resources:
            # Set or cleared on every user looked at: with c7n's in-memory cache, user
            # objects (and what earlier policies annotated) are shared.
            r.pop(UNUSED_ANNOTATION, None)
            r.pop(EXEMPT_ANNOTATION, None)
            found = gathered.facts.get(r['UserName'], ())
            unused, exempt = decide.split_exempt(found, th, self.exemption(r), now)
            if exempt:
                self.log_exemptions(r, exempt)
                r[EXEMPT_ANNOTATION] = [exempt_annotation(f, v, ex) for f, v, ex in exempt]
            if unused:
                r[UNUSED_ANNOTATION] = [annotation(f, v) for f, v in unused]
                found_now.matches[r['UserName']] = [f.key_id for f, _ in unused]
                matched.append(r)
        log.info('unused-access-keys: %d of %d users have unused keys (%d keys)',
                 len(matched), len(resources), sum(len(r[UNUSED_ANNOTATION]) for r in matched))
        return matched

    def __init__(self, data, manager=None):
        super().__init__(data, manager)
        # Kept per execution: c7n reuses a policy's filter objects across runs of it
        # (Lambda's warm starts, c7n-org's accounts in one process).
        self._run, self._found = object(), RunFindings()

    def _this_run(self) -> RunFindings:
        """The findings of the current policy execution."""
        run = getattr(getattr(self.manager, 'ctx', None), 'execution_id', None)
        if self._run != run:
            self._run, self._found = run, RunFindings()
        return self._found

    def run_findings(self, run) -> RunFindings:
        """What this filter found in execution `run` (a copy; empty for another run):
        the key ids it matched, the keys it looked at, and each user's key listing and
        the keys' last uses (GetAccessKeyLastUsed), with when they were read."""
        if self._run != run:
            return RunFindings()
        return RunFindings(dict(self._found.matches), self._found.keys_seen,
                           dict(self._found.reads))

    def gather(self, users, th: Thresholds, now: datetime, listed=None) -> Gathered:
        client = local_session(self.manager.session_factory).client('iam')
        retry = paced(self.manager)
        sources = Sources(client, retry, th, now,
                          executor_factory=self.executor_factory, listed=listed)
        source = self.data.get('source', SOURCE_NAMES[0])

        def report():
            return fetch_report(
                client, retry, now,
                max_age=timedelta(hours=self.data.get('report-max-age-hours', 4)),
                timeout=self.data.get('report-timeout', 300))
        try:
            return sources.gather(source, users, report)
        except ReportUnavailable as e:
            raise PolicyExecutionError(
                'unused-access-keys: no credential report for source: '
                'credential-report: %s' % e)

    def read_tags(self, resources, gathered: Gathered, th: Thresholds, now: datetime):
        """Tags for the users that have unused keys before exemptions, which need them."""
        wanted = [r for r in resources if decide.split_exempt(
            gathered.facts.get(r['UserName'], ()), th, None, now)[0]]
        client = local_session(self.manager.session_factory).client('iam')
        found = Sources(client, paced(self.manager), th, now,
                        executor_factory=self.executor_factory).tags(
            [r['UserName'] for r in wanted])
        for r in wanted:
            if found[r['UserName']]:
                r['Tags'] = found[r['UserName']]

    def exemption(self, resource) -> Optional[Exemption]:
        return exemption_of(resource, self.data.get('exempt-tag', EXEMPT_TAG),
                            'unused-access-keys')

    def log_exemptions(self, resource, exempt):
        # One line per key an exemption keeps, for audits: who is exempt, by what, how long.
        tag = self.data.get('exempt-tag', EXEMPT_TAG)
        for f, _, ex in exempt:
            log.info('unused-access-keys: exemption honoured: user=%s key=%s tag=%s value=%r '
                     'until=%s', resource['UserName'], f.key_id, tag, ex.raw,
                     ex.until.isoformat() if ex.until else 'none')


def exemption_of(resource, tag: str, element: str) -> Optional[Exemption]:
    """The user's exempt tag `tag`, parsed; None when absent or malformed (a warning
    from `element` says which)."""
    value = next((t['Value'] for t in resource.get('Tags', ()) if t['Key'] == tag), None)
    if value is None:
        return None
    try:
        return decide.parse_exemption(value)
    except ValueError as e:
        log.warning('%s: user %s: ignoring malformed %s tag %r: %s',
                    element, resource['UserName'], tag, value, e)
        return None


def reads_tags(f) -> bool:
    """Whether a filter looks at the resource's tags."""
    if isinstance(f, (TagActionFilter, MarkedAccessKeys)):
        return True
    if not isinstance(f, ValueFilter):
        return False
    # The short form {"tag:Team": "present"} has the key as its only entry.
    key = next(iter(f.data)) if len(f.data) == 1 else f.data.get('key', '')
    return isinstance(key, str) and (key.startswith('tag:') or key.startswith('Tags'))


def annotation(f: KeyFacts, v: Verdict) -> dict:
    return {
        'AccessKeyId': f.key_id,
        'Status': f.status,
        'CreateDate': f.created.isoformat(),
        'LastUsedDate': f.last_used.isoformat() if f.last_used else None,
        'LastUsedService': f.last_service,
        'LastUsedRegion': f.last_region,
        'NeverUsed': v.never_used,
        'IdleDays': v.idle_days,
        'Source': f.source,
        'Reason': v.reason,
    }


def exempt_annotation(f: KeyFacts, v: Verdict, ex: Exemption) -> dict:
    """A key that would match but is exempt: its facts, and the exemption that spared it."""
    return dict(annotation(f, v), Exemption=ex.raw,
                ExemptUntil=ex.until.isoformat() if ex.until else None)


@User.filter_registry.register('marked-access-keys')
class MarkedAccessKeys(Filter):
    """IAM users whose `retire-access-keys` markers still need work.

    :example:

    .. code-block:: yaml

      policies:
        - name: iam-keys-pending-retirement
          resource: aws.iam-user
          filters:
            - type: marked-access-keys

    In a retire policy it stands beside `unused-access-keys` in an `or`, so that
    users whose only marker belongs to a key deleted or put back in use meanwhile
    reach the action, which removes the marker.

    A user matches when it carries a deactivation marker (its key waits out its
    grace, is due, was reactivated or is gone), or a reactivation tag whose key is
    gone or whose grace has passed: the `days` of the policy's
    `unused-access-keys` filter (without one, only a gone key counts). So a marker
    that has done its job does not keep its user matched. Markers are read from
    the user's tags; ListAccessKeys is called only for users whose reactivation
    tags are within their grace.
    """

    schema = type_schema('marked-access-keys', **{'marker-tag-prefix': MARKER_PREFIX_SCHEMA})
    schema_alias = False
    permissions = ('iam:ListAccessKeys',)

    def validate(self):
        check_schema(self)
        refuse_without_tags(self.manager, 'marked-access-keys reads every user\'s tags')
        return self

    def prefix(self):
        return self.data.get('marker-tag-prefix', MARKER_PREFIX)

    def approval(self) -> Optional[str]:
        """The `approval-tag` of this policy's retire-access-keys: an approval left on a
        key gone or reactivated needs work too."""
        actions = (getattr(self.manager, 'actions', None) or ()) if self.manager else ()
        return next((a.data.get('approval-tag') for a in actions
                     if isinstance(a.data, dict) and a.data.get('type') == 'retire-access-keys'),
                    None)

    def grace(self) -> Optional[timedelta]:
        unused = next((f for f in iter_filters(self.manager.filters)
                       if isinstance(f, UnusedAccessKeys)), None) if self.manager else None
        return timedelta(days=unused.thresholds().days) if unused else None

    def process(self, resources, event=None):
        now = datetime.now(timezone.utc)
        grace = self.grace()
        marked = [(r, markers.markers_of(r.get('Tags'), self.prefix(), self.approval()))
                  for r in resources]
        marked = [(r, m) for r, m in marked if m.key_ids()]
        wanted = {r['UserName'] for r, m in marked
                  if lifecycle.keys_needing_work(m, None, now, grace)}
        # Reactivation tags within their grace need work only once their key is gone.
        unsure = [(r, m) for r, m in marked if r['UserName'] not in wanted]
        if unsure:
            client = local_session(self.manager.session_factory).client('iam')
            retry = paced(self.manager)

            def key_gone(item):
                r, m = item
                present = {k.key_id for k in facts.list_keys(client, retry, r['UserName'])}
                return bool(lifecycle.keys_needing_work(m, present, now, grace))
            with self.executor_factory(max_workers=WORKERS) as pool:
                wanted |= {r['UserName'] for (r, _), gone in
                           zip(unsure, pool.map(key_gone, unsure)) if gone}
        log.info('marked-access-keys: %d of %d users carry markers, %d of them need work',
                 len(marked), len(resources), len(wanted))
        return [r for r in resources if r['UserName'] in wanted]
