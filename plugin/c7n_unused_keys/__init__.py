"""c7n-unused-keys: find unused IAM access keys and retire them safely.

Importing this package registers the `unused-access-keys` filter on aws.iam-user.
Stock `custodian` and `c7n-org` import it through the start-up hook in
`c7n_unused_keys_hook`, installed by the package's `.pth` file.
"""
from . import filters  # noqa: F401  (registers on import)

__version__ = '0.1.0'
