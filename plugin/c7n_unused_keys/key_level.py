"""The plugin's elements on aws.iam-access-key, one resource per key: `unused-access-keys`,
`marked-access-keys` and `retire-access-keys`, as on aws.iam-user and through the same
code, and the cache bypass every key-level element of the plugin shares.
"""
import logging
from datetime import datetime, timezone

from c7n.resources.iam import AccessKey
from c7n.utils import local_session

from . import c7n_reach, decide, facts, lifecycle, markers
from .actions import RetireAccessKeys
from .credential_report import as_utc
from .filters import (REPORT_PERMISSIONS, TAG_PERMISSIONS, MarkedAccessKeys, UnusedAccessKeys,
                      annotation, exempt_annotation)
from .model import SOURCE_API, ListedKey
from .names import EXEMPT_ANNOTATION, RESULTS_ANNOTATION, UNUSED_ANNOTATION
from .pace import paced
from .sources import SOURCE_NAMES, WORKERS, Sources

log = logging.getLogger('custodian.unused-access-keys')
marked_log = logging.getLogger('custodian.marked-access-keys')


class FreshKeyListing:
    """Mixed into every element of the plugin on aws.iam-access-key: the policy's key
    listing, and the user listing under it, never come from c7n's cache
    (`c7n_reach.parents_without_cache`)."""

    def __init__(self, data=None, manager=None, *args):
        super().__init__(data, manager, *args)
        if manager is not None:
            c7n_reach.parents_without_cache(manager)


@AccessKey.filter_registry.register('unused-access-keys')
class UnusedKeyResource(FreshKeyListing, UnusedAccessKeys):
    """IAM access keys that have not been used for `days` days: one resource per key.

    :example:

    .. code-block:: yaml

      policies:
        - name: iam-unused-access-key
          resource: aws.iam-access-key
          filters:
            - type: unused-access-keys
              days: 45
              never-used-days: 30
              status: Active

    The same options and rules as `unused-access-keys` on aws.iam-user, on
    c7n's per-key resource (ListUsers, then ListAccessKeys per user): a key
    matches when it is unused and not exempt. It carries the same annotation,
    `c7n:unused-access-keys`, a list of one entry (AccessKeyId, Status,
    CreateDate, LastUsedDate, LastUsedService, LastUsedRegion, NeverUsed,
    IdleDays, Source, Reason), and `Tags`: the tags of the user that owns it
    (a key has none of its own). Exemptions come from the owner's tags, read
    (ListUserTags) only for owners of keys that are unused before exemptions.

    c7n's listing has already called ListAccessKeys, so the sources only ask
    for last uses: `hybrid` lets the credential report rule out keys first.
    """

    permissions = ('iam:GetAccessKeyLastUsed',) + REPORT_PERMISSIONS + TAG_PERMISSIONS

    def get_permissions(self):
        perms = ('iam:GetAccessKeyLastUsed',)
        if self.data.get('source', SOURCE_NAMES[0]) != SOURCE_API:
            perms += REPORT_PERMISSIONS
        return perms + TAG_PERMISSIONS

    def process(self, resources, event=None):
        if not resources:
            return []
        now = datetime.now(timezone.utc)
        th = self.thresholds()
        listed = {}
        for r in resources:
            listed.setdefault(r['UserName'], []).append(ListedKey(
                user=r['UserName'], key_id=r['AccessKeyId'], status=r['Status'],
                created=as_utc(_datetime(r['CreateDate']))))
        gathered = self.gather(sorted(listed), th, now, listed=listed)
        # Owners of keys that are unused before exemptions: only their tags are read.
        owners = sorted(u for u, found in gathered.facts.items()
                        if decide.split_exempt(found, th, None, now)[0])
        client = local_session(self.manager.session_factory).client('iam')
        tags = Sources(client, paced(self.manager), th, now,
                       executor_factory=self.executor_factory).tags(owners) if owners else {}
        verdicts = {}
        for user in owners:
            owner = {'UserName': user, 'Tags': tags[user]}
            unused, exempt = decide.split_exempt(gathered.facts[user], th,
                                                 self.exemption(owner), now)
            if exempt:
                self.log_exemptions(owner, exempt)
            for f, v in unused:
                verdicts[f.key_id] = (UNUSED_ANNOTATION, annotation(f, v))
            for f, v, ex in exempt:
                verdicts[f.key_id] = (EXEMPT_ANNOTATION, exempt_annotation(f, v, ex))
        matched = []
        found_now = self._this_run()
        found_now.keys_seen += gathered.keys_seen
        for r in resources:
            # Set or cleared on every key looked at: c7n's cache shares resource objects.
            r.pop(UNUSED_ANNOTATION, None)
            r.pop(EXEMPT_ANNOTATION, None)
            verdict = verdicts.get(r['AccessKeyId'])
            if verdict is None:
                continue
            r[verdict[0]] = [verdict[1]]
            r['Tags'] = tags[r['UserName']]
            if verdict[0] == UNUSED_ANNOTATION:
                found_now.matches.setdefault(r['UserName'], []).append(r['AccessKeyId'])
                matched.append(r)
        log.info('unused-access-keys: %d of %d keys are unused', len(matched), len(resources))
        return matched


def _datetime(value) -> datetime:
    # c7n's listing gives datetimes; a resource read back from JSON gives ISO strings.
    return datetime.fromisoformat(value) if isinstance(value, str) else value


@AccessKey.filter_registry.register('marked-access-keys')
class MarkedKeyResource(FreshKeyListing, MarkedAccessKeys):
    """IAM access keys whose `retire-access-keys` markers still need work.

    :example:

    .. code-block:: yaml

      policies:
        - name: iam-access-keys-pending-retirement
          resource: aws.iam-access-key
          filters:
            - type: marked-access-keys

    The per-key counterpart of `marked-access-keys` on aws.iam-user. In a retire
    policy it stands beside `unused-access-keys` in an `or`, so that markers of keys
    put back in use, exempted or deleted meanwhile reach the action, which removes
    them.

    A key matches when its owner's deactivation marker for it is there, or its
    reactivation tag's grace (the `days` of the policy's `unused-access-keys`) has
    passed. When the owner holds markers of keys not listed (deleted), its first
    listed key matches too and carries them to the action. A matched key gets its
    owner's tags as `Tags`.

    Markers are read from the owners' tags: ListUserTags for every owner, except
    those whose tags this policy's `unused-access-keys` read in this run. A user
    whose every key is gone has no key resource, so its markers are out of reach
    here: pair a key-level retire policy with the user-level policy that removes
    them (docs/action.md).
    """

    permissions = TAG_PERMISSIONS

    def process(self, resources, event=None):
        if not resources:
            return []
        now = datetime.now(timezone.utc)
        grace = self.grace()
        keys = {}
        for r in resources:
            keys.setdefault(r['UserName'], []).append(r)
        tags = self.owner_tags(resources)
        missing = sorted(u for u in keys if u not in tags)
        if missing:
            client = local_session(self.manager.session_factory).client('iam')
            retry = paced(self.manager)
            with self.executor_factory(max_workers=WORKERS) as pool:
                tags.update(zip(missing, pool.map(
                    lambda u: facts.user_tags(client, retry, u), missing)))
        matched = []
        for user in sorted(keys):
            m = markers.markers_of(tags[user], self.prefix(), self.approval())
            if not m.key_ids():
                continue
            listed = sorted(keys[user], key=lambda r: r['AccessKeyId'])
            present = {r['AccessKeyId'] for r in listed}
            wanted = lifecycle.keys_needing_work(m, present, now, grace)
            found = [r for r in listed if r['AccessKeyId'] in wanted]
            if wanted - present and listed[0] not in found:
                found.insert(0, listed[0])
            for r in found:
                r['Tags'] = tags[user]
            matched += found
        marked_log.info('marked-access-keys: %d of %d keys carry markers that need work, or the '
                 'markers of their owners\' deleted keys', len(matched), len(resources))
        return matched

    def owner_tags(self, resources) -> dict:
        """The owners' tags that this policy's unused-access-keys read in this run: on
        the keys it gave a verdict, which it sets or clears on every key it looks at."""
        run = getattr(self.manager.ctx, 'execution_id', None)
        ran = any(f.run_findings(run).keys_seen for f in self.manager.iter_filters()
                  if isinstance(f, UnusedAccessKeys)) if run else False
        if not ran:
            return {}
        return {r['UserName']: r['Tags'] for r in resources if 'Tags' in r and (
            UNUSED_ANNOTATION in r or EXEMPT_ANNOTATION in r)}


@AccessKey.action_registry.register('retire-access-keys')
class RetireKeyResource(FreshKeyListing, RetireAccessKeys):
    """Deactivates the keys that `unused-access-keys` matched; deletes them later: the
    same lifecycle as on aws.iam-user, one resource per key.

    :example:

    .. code-block:: yaml

      policies:
        - name: iam-retire-unused-access-key
          resource: aws.iam-access-key
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

    The options, the steps, the markers (on the owner's tags), the guards and the
    records (`action-retire-access-keys`, with ExecutionId) are those of
    `retire-access-keys` on aws.iam-user, so either level carries on what the other
    started. The keys are grouped by owner and each owner is planned once, with all
    its markers: also those of its keys deleted meanwhile. The owner's markers come
    from the keys' `Tags`, which the filters set from the owner's tags; for an owner
    whose keys arrive without them, the action reads them itself (ListUserTags).

    `marked-access-keys` (aws.iam-access-key) brings the keys whose markers need
    work, and one key of each owner holding markers of keys gone, to the action. A
    user whose every key is gone has no key resource, so its markers are removed by a
    user-level policy (see `marked-access-keys`).

    Neither this policy's key listing nor its user listing reads c7n's resource
    cache.
    """

    permissions = RetireAccessKeys.permissions + TAG_PERMISSIONS

    def process(self, resources):
        owners, scope = {}, {}
        for r in resources:
            known = owners.setdefault(r['UserName'], {'UserName': r['UserName']})
            scope.setdefault(r['UserName'], set()).add(r['AccessKeyId'])
            if 'Tags' in r:
                known['Tags'] = r['Tags']
        self.read_missing_tags([u for u in owners.values() if 'Tags' not in u])
        # Only the keys among the resources: a key another filter of the policy dropped
        # is not acted on, even when its owner comes with another key.
        records = self.retire([owners[u] for u in sorted(owners)], scope)
        by_key, first = {}, {}
        for r in resources:
            by_key[(r['UserName'], r['AccessKeyId'])] = r
            first.setdefault(r['UserName'], r)
            r[RESULTS_ANNOTATION] = []
        for rec in records:
            # A key's own record; that of a key not among the resources (gone, or not
            # matched) goes to a key of its owner.
            carrier = by_key.get((rec['UserName'], rec['AccessKeyId']), first[rec['UserName']])
            if carrier['AccessKeyId'] != rec['AccessKeyId']:
                # So that a notice about the carrier tells this record too.
                rec['CarriedBy'] = carrier['AccessKeyId']
            carrier[RESULTS_ANNOTATION].append(rec)
        return self.conclude(records)

    def read_missing_tags(self, owners):
        """ListUserTags for owners whose keys came without the owner's tags."""
        if not owners:
            return
        client = local_session(self.manager.session_factory).client('iam')
        retry = paced(self.manager)
        with self.executor_factory(max_workers=WORKERS) as pool:
            found = list(pool.map(
                lambda u: facts.user_tags(client, retry, u['UserName']), owners))
        for u, tags in zip(owners, found):
            u['Tags'] = tags
