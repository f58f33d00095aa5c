"""`c7n-unused-keys permissions`: the IAM policy document that policy files need.

Taken from c7n's own permission data: each policy's resource manager, filters and
actions declare theirs (`get_permissions`). c7n's `Policy.get_permissions` skips
filters nested in `and`/`or`/`not` blocks (the retire policy nests its filter in an
`or`), so the filters are walked here with `iter_filters`.
"""
import json
import sys
from pathlib import Path
from typing import Iterable, List, Set

import yaml


def policy_files(paths: Iterable[str]) -> List[Path]:
    files = []
    for p in map(Path, paths):
        files += sorted(f for f in p.rglob('*') if f.suffix in ('.yml', '.yaml', '.json')) \
            if p.is_dir() else [p]
    return files


def needed(paths: Iterable[str]) -> Set[str]:
    import c7n_unused_keys.register  # noqa: F401
    from c7n.config import Config
    from c7n.manager import iter_filters
    from c7n.policy import Policy
    from c7n.resources import load_resources
    actions: Set[str] = set()
    for f in policy_files(paths):
        data = yaml.safe_load(f.read_text()) or {}
        policies = data.get('policies', ())
        load_resources(tuple({p['resource'] for p in policies}))
        for p in policies:
            manager = Policy(p, Config.empty()).resource_manager
            for element in [manager] + list(iter_filters(manager.filters)) + manager.actions:
                actions |= set(element.get_permissions())
            actions |= parent_listing(manager)
    return actions


def parent_listing(manager) -> Set[str]:
    """A child resource (aws.iam-access-key) is listed per parent, and c7n lists the
    parents (ListUsers) without augmenting them; its manager declares only its own call."""
    from c7n.query import ChildResourceManager, _napi
    if not isinstance(manager, ChildResourceManager):
        return set()
    m = manager.get_parent_manager().get_model()
    return {'%s:%s' % (m.permission_prefix or m.service, _napi(m.enum_spec[0]))}


def document(actions: Set[str]) -> dict:
    return {'Version': '2012-10-17', 'Statement': [{
        'Sid': 'C7nUnusedKeys', 'Effect': 'Allow', 'Action': sorted(actions),
        'Resource': '*'}]}


def refuse_missing(command: str, paths: Iterable[str]) -> bool:
    """Say which of `paths` do not exist, on behalf of `command`; True when any."""
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        print('c7n-unused-keys %s: no such file or folder: %s' % (command, ' '.join(missing)),
              file=sys.stderr)
    return bool(missing)


def run_permissions(paths: List[str]) -> int:
    if refuse_missing('permissions', paths):
        return 1
    files = policy_files(paths)
    if not files:
        print('c7n-unused-keys permissions: no policy files under %s' % ' '.join(paths),
              file=sys.stderr)
        return 1
    print(json.dumps(document(needed(paths)), indent=2))
    return 0
