"""Policies in a Lambda mode must carry the plugin into their function.

c7n's default handler (`custodian_policy.run`) never imports a plugin, and the zip c7n
builds holds only `c7n`: without two options of the policy's `mode` the function is
deployed and then fails on every invocation with "Invalid filter type". So every element
of the plugin (filters, action, sources) refuses such a policy at validation, before
anything is deployed, and names the fix.
"""
from c7n.exceptions import PolicyValidationError

PACKAGE = 'c7n_unused_keys'
HANDLER = 'c7n_unused_keys.handler.run'
STOCK_HANDLER = 'custodian_policy.run'


def runs_in_lambda(mode_type: str) -> bool:
    from c7n.policy import LambdaMode, execution
    mode = execution.get(mode_type)
    return mode is not None and issubclass(mode, LambdaMode)


def missing_options(mode: dict) -> list:
    """The options a Lambda-mode policy lacks to load the plugin in its function."""
    missing = []
    packages = mode.get('packages') or ()
    if PACKAGE not in packages:
        missing.append('packages')
    handler = mode.get('handler', STOCK_HANDLER)
    if handler == STOCK_HANDLER:
        missing.append('handler')
    elif handler == HANDLER:
        pass
    elif handler.startswith(PACKAGE + '.'):
        missing.append('handler (the plugin has no handler %s)' % handler)
    elif handler.split('.')[0] not in packages:
        # A handler of the user's own (that imports c7n_unused_keys.register) is fine,
        # if its module travels in the zip too.
        missing.append('handler (%s: its module is not in packages)' % handler)
    return missing


def check_lambda_mode(policy: dict):
    """Raise PolicyValidationError when `policy` runs in Lambda without the plugin."""
    mode = policy.get('mode') or {}
    mode_type = mode.get('type', 'pull')
    if not runs_in_lambda(mode_type):
        return
    missing = missing_options(mode)
    if missing:
        raise PolicyValidationError(
            'policy %s: mode %s runs in AWS Lambda, where c7n loads no plugin by itself: '
            'add `packages: [%s]` and `handler: %s` to its mode (missing: %s)' % (
                policy.get('name', 'unknown'), mode_type, PACKAGE, HANDLER,
                ', '.join(missing)))
