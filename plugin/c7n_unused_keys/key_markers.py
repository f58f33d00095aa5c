"""`marked-access-keys` on aws.iam-access-key: the keys whose retirement markers need work."""
import logging
from datetime import datetime, timezone

from c7n.resources.iam import AccessKey
from c7n.utils import local_session

from . import facts, lifecycle, markers
from .filters import TAG_PERMISSIONS, MarkedAccessKeys, UnusedAccessKeys
from .names import EXEMPT_ANNOTATION, UNUSED_ANNOTATION
from .pace import paced
from .sources import WORKERS
from .user_source import FreshKeyListing

log = logging.getLogger('custodian.marked-access-keys')


@AccessKey.filter_registry.register('marked-access-keys')
class MarkedAccessKey(FreshKeyListing, MarkedAccessKeys):
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
        log.info('marked-access-keys: %d of %d keys carry markers that need work, or the '
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
