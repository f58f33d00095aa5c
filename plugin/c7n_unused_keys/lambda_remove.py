"""`c7n-unused-keys remove-functions`: remove the functions that `c7n-org run` deployed.

c7n-org deploys a Lambda-mode policy into every account, but has no command to take it
out again (c7n's `mugc` is not installed with it). This walks the same accounts file
with c7n-org's own sessions, and removes each policy's function with c7n's own
`LambdaManager.remove`, which also deletes its schedule rule and targets.
"""
import logging
import sys
from typing import List

from .permissions import policy_files, refuse_missing

log = logging.getLogger('c7n_unused_keys.remove')


def _functions(paths):
    """PolicyLambda of every Lambda-mode policy in `paths`, without building a zip."""
    import c7n_unused_keys.register  # noqa: F401
    import yaml
    from c7n.config import Config
    from c7n.mu import PolicyLambda
    from c7n.policy import PolicyCollection
    from c7n.resources import load_resources

    from .lambda_mode import runs_in_lambda

    class Deployed(PolicyLambda):
        def __init__(self, policy):
            self.policy = policy   # only named and removed: no archive

    found = []
    for path in policy_files(paths):
        data = yaml.safe_load(path.read_text()) or {}
        load_resources(tuple({p['resource'] for p in data.get('policies', ())}))
        for p in PolicyCollection.from_data(data, Config.empty()):
            if runs_in_lambda(p.data.get('mode', {}).get('type', 'pull')):
                found.append(Deployed(p))
    return found


def run_remove(config_path: str, paths: List[str], names: List[str], dryrun: bool,
               regions: List[str] = ()) -> int:
    import yaml
    from c7n.mu import LambdaManager
    from c7n_org.cli import accounts_iterator, filter_accounts, get_session, resolve_regions

    if refuse_missing('remove-functions', paths + [config_path]):
        return 1
    functions = _functions(paths)
    if not functions:
        print('c7n-unused-keys remove-functions: no Lambda-mode policy in %s' % ' '.join(paths),
              file=sys.stderr)
        return 1
    with open(config_path) as fh:
        accounts_config = {'accounts': list(accounts_iterator(yaml.safe_load(fh) or {}))}
    filter_accounts(accounts_config, [], names)
    if not accounts_config['accounts']:
        print('c7n-unused-keys remove-functions: no account of %s is named %s' % (
            config_path, ', '.join(names)), file=sys.stderr)
        return 1
    done = 0
    for account in accounts_config['accounts']:
        # As c7n-org: -r overrides the file's regions, and no regions at all means its
        # defaults (us-east-1 and us-west-2).
        for region in resolve_regions(list(regions) or account.get('regions') or (), account):
            session = get_session(account, 'c7n-unused-keys-remove', region)
            manager = LambdaManager(lambda *a, **k: session)
            for func in functions:
                if not manager.get(func.name):
                    continue
                print('%s %s %s %s' % ('would remove' if dryrun else 'removing',
                                       account['name'], region, func.name), flush=True)
                if not dryrun:
                    manager.remove(func)
                done += 1
    print('%s %d function(s)' % ('would remove' if dryrun else 'removed', done))
    return 0
