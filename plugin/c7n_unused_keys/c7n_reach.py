"""Where the plugin reaches into c7n past its public interface, each reach in one place,
with why. c7n offers no hook for these; `tests/test_c7n_reach.py` fails when c7n moves
what they rely on.
"""
from c7n import cache


def without_cache(manager):
    """Make `manager` list its resources without c7n's resource cache.

    Why: decisions that write are made on fresh data. c7n's cache (15 minutes by
    default, and shared between the policies of one process) would hold users' tags
    (markers, exemptions) and keys' status that long. c7n has no per-policy switch:
    `--cache-period 0` is the operator's, for every policy of the run. The manager
    reads its cache as `self._cache` (c7n.manager.ResourceManager.__init__,
    c7n.query.QueryResourceManager.resources).
    """
    manager._cache = cache.NullCache(manager.config)


def parents_without_cache(manager):
    """Make a child manager (aws.iam-access-key) list its parents (the users) without
    the cache too.

    Why: c7n lists the keys of the users that its iam-user manager lists, and gets that
    manager from `manager.get_resource_manager` (c7n.query.ChildResourceQuery.filter),
    which reads the cache: another policy's users, up to 15 minutes old. A user made
    since would be missed, and one deleted since fails the whole listing (ListAccessKeys
    NoSuchEntity). Wrapping that method is the only way to reach the parent manager.
    """
    without_cache(manager)
    parent = manager.get_resource_manager
    if getattr(parent, 'uncached', False):
        return

    def fresh_parent(resource_type, data=None):
        found = parent(resource_type, data)
        without_cache(found)
        return found
    fresh_parent.uncached = True
    manager.get_resource_manager = fresh_parent
