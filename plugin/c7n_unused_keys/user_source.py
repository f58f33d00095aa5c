"""`source: describe-parallel` for aws.iam-user: c7n's user listing with bounded concurrency.

Stock c7n lists aws.iam-user with ListUsers, then one GetUser per user, one after
another (`DescribeUser.augment`). This source returns the same user data (GetUser,
with tags) but makes the GetUser calls `WORKERS` at a time. A policy opts in with
`source: describe-parallel`; nothing else changes.
"""
from concurrent.futures import ThreadPoolExecutor

from c7n.exceptions import PolicyValidationError
from c7n.query import sources
from c7n.resources.iam import DescribeUser, User
from c7n.utils import local_session

from .sources import WORKERS

NAME = 'describe-parallel'


@sources.register(NAME)
class ParallelDescribeUser(DescribeUser):

    def __init__(self, manager):
        # The registry feeds every resource's `source` enum; only iam-user has users.
        if not isinstance(manager, User):
            raise PolicyValidationError(
                'source: %s is for aws.iam-user only, not %s' % (NAME, manager.type))
        super().__init__(manager)

    def augment(self, resources):
        client = local_session(self.manager.session_factory).client('iam')

        def get_user(r):
            # Deleted since ListUsers: dropped, as stock c7n does.
            found = self.manager.retry(client.get_user, UserName=r['UserName'],
                                       ignore_err_codes=('NoSuchEntity',))
            return found['User'] if found else None

        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            return [u for u in pool.map(get_user, resources) if u]


User.source_mapping = dict(User.source_mapping, **{NAME: ParallelDescribeUser})
