"""Three opt-in `source`s for aws.iam-user that cut the cost of c7n's user listing.

Stock c7n lists aws.iam-user with ListUsers, then one GetUser per user, one after
another (`DescribeUser.augment`).

- `describe-parallel` returns the same user data (GetUser, with tags) but makes the
  GetUser calls 8 to 16 at a time (`pace`). Nothing else changes.
- `list-users` makes no GetUser call: users carry what ListUsers returns, without
  `Tags` or `PermissionsBoundary`. `unused-access-keys` then reads the tags
  (ListUserTags) of the users it matches, and only theirs. Filters placed before it
  see no tags, so validation refuses tag filters there, and policies that need every
  user's tags (`marked-access-keys`, `retire-access-keys`) refuse this source.
- `authorization-details` returns the same user data as `describe` (tags and permissions
  boundary included) in about U/1000 calls: GetAccountAuthorizationDetails
  (Filter=['User']) pages of up to 1,000 users with their tags, merged with ListUsers
  pages of up to 1,000 (for PasswordLastUsed, which that call lacks). Every filter and
  action works as under `describe`. Its permission also reads every inline policy
  document of the account's users.
"""
from c7n.exceptions import PolicyValidationError
from c7n.query import RetryPageIterator, sources
from c7n.resources.iam import DescribeUser, User
from c7n.utils import local_session

from .lambda_mode import check_lambda_mode
from .pace import paced
from .sources import WORKERS

PARALLEL = 'describe-parallel'
LIST_ONLY = 'list-users'
AUTH_DETAILS = 'authorization-details'
# The most IAM returns in a page of either call (it may return fewer).
PAGE = 1000


class _UsersOnly(DescribeUser):
    name = None

    def __init__(self, manager):
        # The registry feeds every resource's `source` enum; only iam-user has users.
        if not isinstance(manager, User):
            raise PolicyValidationError(
                'source: %s is for aws.iam-user only, not %s' % (self.name, manager.type))
        check_lambda_mode(manager.data)
        super().__init__(manager)

    def resources(self, query):
        # IAM's largest page: a tenth of the ListUsers calls of botocore's default 100.
        return super().resources(dict(query or {}, PaginationConfig={'PageSize': PAGE}))


@sources.register(PARALLEL)
class ParallelDescribeUser(_UsersOnly):
    name = PARALLEL

    def augment(self, resources):
        client = local_session(self.manager.session_factory).client('iam')
        retry = paced(self.manager)

        def get_user(r):
            # Deleted since ListUsers: dropped, as stock c7n does.
            found = retry(client.get_user, UserName=r['UserName'],
                          ignore_err_codes=('NoSuchEntity',))
            return found['User'] if found else None

        with self.manager.executor_factory(max_workers=WORKERS) as pool:
            return [u for u in pool.map(get_user, resources) if u]


@sources.register(LIST_ONLY)
class ListedUser(_UsersOnly):
    name = LIST_ONLY

    def get_permissions(self):
        return ['iam:ListUsers']

    def augment(self, resources):
        return resources


@sources.register(AUTH_DETAILS)
class AuthorizationDetailsUser(_UsersOnly):
    """Users as GetUser returns them, from pages of 1,000 rather than one call a user.

    .. code-block:: yaml

      policies:
        - name: unused-access-keys
          resource: aws.iam-user
          source: authorization-details
          filters:
            - type: unused-access-keys
              days: 90
    """
    name = AUTH_DETAILS

    def get_permissions(self):
        return ['iam:GetAccountAuthorizationDetails', 'iam:ListUsers']

    def _pages(self, client, operation, key, **params):
        paginator = client.get_paginator(operation)
        paginator.PAGE_ITERATOR_CLS = RetryPageIterator
        for page in paginator.paginate(PaginationConfig={'PageSize': PAGE}, **params):
            yield from page.get(key, ())

    def resources(self, query):
        client = local_session(self.manager.session_factory).client('iam')
        return list(self._pages(client, 'list_users', 'Users'))

    def get_resources(self, resource_ids, cache=True):
        # By name (event modes): from ListUsers, which the manager then augments, not from
        # the GetUser calls of c7n's describe, which this source's permissions leave out.
        wanted = set(resource_ids)
        client = local_session(self.manager.session_factory).client('iam')
        return [u for u in self._pages(client, 'list_users', 'Users') if u['UserName'] in wanted]

    def augment(self, resources):
        if not resources:
            return []
        client = local_session(self.manager.session_factory).client('iam')
        details = {u['UserName']: u for u in self._pages(
            client, 'get_account_authorization_details', 'UserDetailList', Filter=['User'])}
        users = []
        for r in resources:
            detail = details.get(r['UserName'])
            # Deleted since ListUsers: dropped, as stock c7n drops it (GetUser NoSuchEntity).
            # A same-named user made since is another user.
            if detail is None or detail['UserId'] != r['UserId']:
                continue
            # GetUser's fields: ListUsers' (with PasswordLastUsed), plus these when set.
            user = dict(r)
            for field in ('PermissionsBoundary', 'Tags'):
                if detail.get(field):
                    user[field] = detail[field]
            users.append(user)
        return users


def listed_without_tags(manager) -> bool:
    """True when the policy's users come from `source: list-users` (no tags)."""
    return bool(manager) and manager.data.get('source') == LIST_ONLY


def refuse_without_tags(manager, why: str):
    """Fail validation of an element that needs every user's tags under `list-users`."""
    if listed_without_tags(manager):
        raise PolicyValidationError(
            '%s; source: %s lists users without them: use source: describe-parallel '
            '(or describe) on %s' % (why, LIST_ONLY, manager.data.get('name')))


User.source_mapping = dict(User.source_mapping, **{
    PARALLEL: ParallelDescribeUser, LIST_ONLY: ListedUser,
    AUTH_DETAILS: AuthorizationDetailsUser})
