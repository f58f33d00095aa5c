"""What c7n_unused_keys.c7n_reach relies on in c7n, checked on the installed c7n: each of
these fails when c7n moves it, before a policy would quietly read its cache again."""
from unittest import mock

from c7n.config import Config
from c7n.policy import Policy

from c7n_unused_keys import c7n_reach
from conftest import DEFAULT_ACCOUNT


def manager_of(resource, tmp_path):
    policy = Policy({'name': 'reach', 'resource': resource}, Config.empty(
        region='us-east-1', account_id=DEFAULT_ACCOUNT, output_dir=str(tmp_path),
        cache='memory', cache_period=15))
    return policy.resource_manager


class Counting:
    """A cache that records being read, as c7n reads its cache (a context manager with
    get and save)."""

    def __init__(self):
        self.reads = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def get(self, key):
        self.reads += 1
        return [{'UserName': 'cached'}]

    def save(self, key, data):
        return True

    def load(self):
        return True


def test_a_manager_reads_its_cache_as_self_cache(tmp_path):
    """c7n.query.QueryResourceManager.resources reads `self._cache`: what `without_cache`
    replaces. With it in place, the cache is read; after `without_cache`, not."""
    manager = manager_of('aws.iam-user', tmp_path)
    manager._cache = Counting()
    assert manager.resources() == [{'UserName': 'cached'}]
    assert manager._cache.reads == 1
    c7n_reach.without_cache(manager)
    with mock.patch.object(type(manager.source), 'resources', return_value=[]) as listed:
        assert manager.resources() == []
    assert listed.called


def test_a_child_manager_gets_its_parents_through_get_resource_manager(tmp_path):
    """c7n lists the keys of the users its iam-user manager lists, and gets that manager
    from `manager.get_resource_manager`: what `parents_without_cache` wraps."""
    keys = manager_of('aws.iam-access-key', tmp_path)
    asked = []
    real = keys.get_resource_manager

    def spy(resource_type, data=None):
        asked.append(resource_type)
        return real(resource_type, data)
    keys.get_resource_manager = spy
    c7n_reach.parents_without_cache(keys)
    parent = keys.get_resource_manager('iam-user')
    assert asked == ['iam-user']
    assert type(parent._cache).__name__ == 'NullCache'
    assert type(keys._cache).__name__ == 'NullCache'
    # Wrapping twice keeps one wrapper.
    wrapper = keys.get_resource_manager
    c7n_reach.parents_without_cache(keys)
    assert keys.get_resource_manager is wrapper
    # And the child query asks for its parent type through it.
    from c7n.query import ChildResourceQuery
    import inspect
    assert 'self.manager.get_resource_manager(parent_type)' in inspect.getsource(
        ChildResourceQuery.filter)
