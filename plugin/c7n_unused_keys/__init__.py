"""c7n-unused-keys: find unused IAM access keys and retire them safely.

Importing this package registers, on aws.iam-user, the `unused-access-keys` and
`marked-access-keys` filters, the `retire-access-keys` action and the
`describe-parallel` and `list-users` sources. Stock
`custodian` and `c7n-org` import it through the start-up hook in
`c7n_unused_keys_hook`, installed by the package's `.pth` file.
"""
from . import filters, actions, user_source  # noqa: F401  (they register on import)

__version__ = '0.1.0'
