"""The Lambda handler for policies that use the plugin.

c7n's default handler (`custodian_policy.run`) never imports a plugin, and Lambda runs no
`.pth` file, so a Lambda-mode policy names this one and ships the package in its zip:

    mode:
      type: periodic
      schedule: rate(1 day)
      role: arn:aws:iam::{account_id}:role/c7n-unused-keys
      packages: [c7n_unused_keys]
      handler: c7n_unused_keys.handler.run
"""
from c7n import handler

from . import register  # noqa: F401  (registers the plugin before the policy is built)


def run(event, context):
    return handler.dispatch_event(event, context)
