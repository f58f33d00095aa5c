"""Registers the plugin with c7n: importing this module is all it takes.

On aws.iam-user: the `unused-access-keys`, `marked-access-keys`, `unused-passwords`,
`marked-passwords` and `dormant-users` filters, the `retire-access-keys` and
`retire-passwords` actions and the `describe-parallel` and `list-users` sources. On
aws.iam-access-key: `unused-access-keys`, `marked-access-keys`, `active-finding`, the
`retire-access-keys` action and `post-unused-key-finding`. On both:
`notify-unused-keys`. On aws.account: `resolve-access-key-findings`.
Stock `custodian` and `c7n-org` import it through the start-up hook
(`c7n_unused_keys_hook`, installed by the package's `.pth` file); a custom Lambda
handler, a notebook or a test imports it by hand. Import this module, not `filters`
or `actions`: a module imported on its own registers only what it defines.
Every name is the plugin's own: no filter or action of c7n is replaced.
"""
from . import actions, filters, findings, key_level, notify  # noqa: F401  (registering)
from . import dormant_filter, password_action, password_filter, user_source  # noqa: F401
