"""Fixes to stock moto, so that the emulator answers as AWS does, and fast.

Fidelity fixes:
- GetCredentialReport returns the real generation time (moto always says
  2015-02-02) and a snapshot taken at generation, as AWS does, with last-used
  service and region filled in; GenerateCredentialReport makes a new snapshot
  only when the stored one is older than four hours, as AWS does.
- ListUsers answers in pages of MaxItems (default 100) with a Marker, as AWS does;
  moto returns every user at once.
- GetAccountAuthorizationDetails with Filter=['User'] answers in pages of MaxItems
  (1-1000, default 100) with a Marker, as AWS does; moto returns every user at once
  (IsTruncated always false).
- Users can have a permissions boundary (PutUserPermissionsBoundary), which GetUser and
  GetAccountAuthorizationDetails return and ListUsers does not, as AWS does; moto has
  none for users.
- TagUser beyond IAM's 50 tags a user is refused (LimitExceeded, 409); moto takes any
  number.
- A login profile has its own CreateDate (moto answers the user's), and the credential
  report has the password columns (password_enabled, password_last_used with its
  `no_information`, password_last_changed), which the fix above had left out. moto
  itself returns PasswordLastUsed from GetUser and ListUsers once it is set.

Speed fixes, so that time measured here is round trips rather than emulator work:
- moto finds the service of each request by listing its own package folder (about
  175 stat calls) under a global lock; `dispatcher` remembers the answer per host.
- moto's GetAccessKeyLastUsed scans every key of every account (O(keys) a call);
  the fix looks the key id up in each account's index of keys.
- moto lists the methods of a service's response class (inspect.getmembers, a twentieth
  of a request's time) for every request; `_patch_method_names` keeps each class's list.

`apply()` applies them all, once per process; the emulator calls it as it starts.
"""
import csv
import io
from datetime import datetime, timedelta, timezone
from typing import Optional

REPORT_REFRESH = timedelta(hours=4)


_REPORT_HEADER = (
    'user,arn,user_creation_time,password_enabled,password_last_used,'
    'password_last_changed,password_next_rotation,mfa_active,'
    'access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,'
    'access_key_1_last_used_region,access_key_1_last_used_service,'
    'access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,'
    'access_key_2_last_used_region,access_key_2_last_used_service,'
    'cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated').split(',')


def utcnow_naive() -> datetime:
    """moto keeps naive UTC datetimes."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _iso(dt: Optional[datetime]) -> str:
    return dt.strftime('%Y-%m-%dT%H:%M:%S+00:00') if dt else 'N/A'


def report_csv(backend) -> str:
    """The credential report of one moto IAM backend, as AWS writes it."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator='\n')
    w.writerow(_REPORT_HEADER)
    for user in backend.users.values():
        if user.password:
            # As AWS: never used (or before October 2014) reads no_information.
            used = user.password_last_used
            password = ['true', _iso(used) if used else 'no_information',
                        _iso(login_profile_created(user))]
        else:
            password = ['false', 'N/A', 'N/A']
        row = [user.name, user.arn, _iso(user.create_date)] + password + [
               'N/A', 'true' if user.mfa_devices else 'false']
        keys = sorted(user.access_keys, key=lambda k: k.create_date)[:2]
        for n in range(2):
            if n < len(keys):
                k, used = keys[n], keys[n].last_used
                row += ['true' if k.status == 'Active' else 'false', _iso(k.create_date),
                        _iso(used.timestamp if used else None),
                        used.region if used else 'N/A', used.service if used else 'N/A']
            else:
                row += ['false', 'N/A', 'N/A', 'N/A', 'N/A']
        row += ['false', 'N/A', 'false', 'N/A']
        w.writerow(row)
    return out.getvalue()


def login_profile_created(user) -> datetime:
    """When the user's login profile was made: moto keeps no such time (its
    GetLoginProfile answers the user's CreateDate), `_patch_login_profiles` does."""
    return getattr(user, 'login_profile_created', None) or user.create_date


def _patch_login_profiles():
    """A login profile's own CreateDate, kept from CreateLoginProfile and answered by
    GetLoginProfile, as AWS does."""
    from moto.core.responses import ActionResult
    from moto.iam import models, responses

    if getattr(models.IAMBackend, '_c7n_unused_keys_profiles', False):
        return
    create, delete = models.IAMBackend.create_login_profile, models.IAMBackend.delete_login_profile

    def create_login_profile(self, user_name, password):
        user = create(self, user_name, password)
        user.login_profile_created = utcnow_naive()
        return user

    def delete_login_profile(self, user_name):
        delete(self, user_name)
        self.get_user(user_name).login_profile_created = None

    def get_login_profile(self):
        user = self.backend.get_login_profile(self._get_param('UserName'))
        return ActionResult({'LoginProfile': {
            'UserName': user.name, 'CreateDate': login_profile_created(user),
            'PasswordResetRequired': user.password_reset_required}})

    models.IAMBackend.create_login_profile = create_login_profile
    models.IAMBackend.delete_login_profile = delete_login_profile
    responses.IamResponse.get_login_profile = get_login_profile
    models.IAMBackend._c7n_unused_keys_profiles = True


def _patch_credential_report():
    from moto.iam import models, responses
    from moto.core.responses import ActionResult

    if getattr(models.IAMBackend, '_c7n_unused_keys_patched', False):
        return

    def report_generated(self):
        made = getattr(self, 'report_snapshot', None)
        return made is not None and utcnow_naive() - made[0] < REPORT_REFRESH

    def generate_report(self):
        if not report_generated(self):
            self.report_snapshot = (utcnow_naive(), report_csv(self))
        self.credential_report = True

    def get_credential_report(self):
        made = getattr(self.backend, 'report_snapshot', None)
        if made is None:
            from moto.iam.exceptions import ReportNotPresentException
            raise ReportNotPresentException('Credential report not present')
        return ActionResult({
            'Content': made[1], 'ReportFormat': 'text/csv',
            'GeneratedTime': made[0].strftime('%Y-%m-%dT%H:%M:%SZ')})

    models.IAMBackend.report_generated = report_generated
    models.IAMBackend.generate_report = generate_report
    responses.IamResponse.get_credential_report = get_credential_report
    models.IAMBackend._c7n_unused_keys_patched = True


def _patch_list_users_paging():
    """ListUsers in pages of MaxItems (default 100) with a Marker, as AWS answers."""
    from moto.core.responses import ActionResult
    from moto.iam import responses

    if getattr(responses.IamResponse, '_c7n_unused_keys_paged', False):
        return

    def list_users(self):
        users = list(self.backend.list_users(self._get_param('PathPrefix'), None, None))
        start = int(self._get_param('Marker') or 0)
        size = int(self._get_param('MaxItems') or 100)
        page = users[start:start + size]
        result = {'Users': page, 'IsTruncated': start + size < len(users)}
        if result['IsTruncated']:
            result['Marker'] = str(start + size)
        return ActionResult(result)

    responses.IamResponse.list_users = list_users
    responses.IamResponse._c7n_unused_keys_paged = True


def _patch_authorization_details_paging():
    """GetAccountAuthorizationDetails(Filter=['User']) in pages of MaxItems (1-1000,
    default 100) with a Marker, as AWS answers; and users' permissions boundaries."""
    from moto.core.responses import ActionResult, EmptyResult
    from moto.core.serialize import never_return
    from moto.iam import models, responses
    from moto.iam.exceptions import ValidationError

    if getattr(responses.IamResponse, '_c7n_unused_keys_details_paged', False):
        return
    unpaged = responses.IamResponse.get_account_authorization_details

    def get_account_authorization_details(self):
        if self._get_param('Filter', []) != ['User']:
            return unpaged(self)
        size = int(self._get_param('MaxItems') or 100)
        if not 1 <= size <= 1000:
            raise ValidationError('1 validation error detected: Value \'%d\' at '
                                  '\'maxItems\' failed to satisfy constraint: Member must '
                                  'have value less than or equal to 1000' % size)
        users = list(self.backend.users.values())
        start = int(self._get_param('Marker') or 0)
        result = {'UserDetailList': users[start:start + size], 'GroupDetailList': [],
                  'RoleDetailList': [], 'Policies': [],
                  'IsTruncated': start + size < len(users)}
        if result['IsTruncated']:
            result['Marker'] = str(start + size)
        return ActionResult(result)

    def put_user_permissions_boundary(self):
        user = self.backend.get_user(self._get_param('UserName'))
        user.permissions_boundary_arn = self._get_param('PermissionsBoundary')
        return EmptyResult()

    def permissions_boundary(user):
        arn = getattr(user, 'permissions_boundary_arn', None)
        return {'PermissionsBoundaryType': 'PermissionsBoundaryPolicy',
                'PermissionsBoundaryArn': arn} if arn else None

    models.User.permissions_boundary = property(permissions_boundary)
    responses.IamResponse.RESPONSE_KEY_PATH_TO_TRANSFORMER = dict(
        responses.IamResponse.RESPONSE_KEY_PATH_TO_TRANSFORMER,
        **{'ListUsersResponse.Users.User.PermissionsBoundary': never_return})
    responses.IamResponse.get_account_authorization_details = \
        get_account_authorization_details
    responses.IamResponse.put_user_permissions_boundary = put_user_permissions_boundary
    responses.IamResponse._c7n_unused_keys_details_paged = True


def _patch_last_used_lookup():
    """GetAccessKeyLastUsed by key id: one dict lookup an account, not a scan of every key."""
    from moto.iam import models

    if getattr(models.IAMBackend, '_c7n_unused_keys_indexed', False):
        return

    def get_access_key_last_used(self, access_key_id):
        for account in list(models.iam_backends.values()):
            backend = account[self.partition]
            key = backend.access_keys.get(access_key_id)
            # As moto's scan: only keys that a user still holds (the index keeps
            # session keys, and keys of users deleted without deleting them).
            user = backend.users.get(key.user_name) if key is not None else None
            if user is not None and key in user.access_keys:
                return {'user_name': key.user_name, 'last_used': key.last_used}
        raise models.NotFoundException(
            f'The Access Key with id {access_key_id} cannot be found')

    models.IAMBackend.get_access_key_last_used = get_access_key_last_used
    models.IAMBackend._c7n_unused_keys_indexed = True


def _patch_method_names():
    """A response class's methods, listed once: moto looks the action up among them for
    every request, and no class gains or loses one while the emulator serves."""
    from moto.core import responses

    if getattr(responses, '_c7n_unused_keys_method_names', False):
        return
    list_methods = responses.method_names_from_class
    listed = {}

    def method_names_from_class(clazz):
        if clazz not in listed:
            listed[clazz] = list_methods(clazz)
        return listed[clazz]

    responses.method_names_from_class = method_names_from_class
    responses._c7n_unused_keys_method_names = True


TAGS_PER_USER = 50


def _patch_tag_limit():
    """TagUser refused with LimitExceeded (409) when the user would hold more than
    IAM's 50 tags, as IAM refuses it; moto takes any number."""
    from moto.iam import models
    from moto.iam.exceptions import LimitExceededException

    if getattr(models.IAMBackend, '_c7n_unused_keys_tag_limit', False):
        return
    tag_user = models.IAMBackend.tag_user

    def limited(self, name, tags):
        have = {t['Key'] for t in self.list_user_tags(name)}
        if len(have | {t['Key'] for t in tags}) > TAGS_PER_USER:
            raise LimitExceededException(
                'Cannot exceed quota for TagsPerUser: %d' % TAGS_PER_USER)
        return tag_user(self, name, tags)

    models.IAMBackend.tag_user = limited
    models.IAMBackend._c7n_unused_keys_tag_limit = True


def dispatcher(create_app):
    """moto's request dispatcher, remembering which service answers each host."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    class Dispatcher(DomainDispatcherApplication):
        def __init__(self, create_app):
            super().__init__(create_app)
            self._backend_by_host = {}

        def get_backend_for_host(self, host):
            if host not in self._backend_by_host:
                self._backend_by_host[host] = super().get_backend_for_host(host)
            return self._backend_by_host[host]

    return Dispatcher(create_app)


def apply():
    """Every fix above, once per process (each one checks)."""
    _patch_credential_report()
    _patch_login_profiles()
    _patch_list_users_paging()
    _patch_authorization_details_paging()
    _patch_last_used_lookup()
    _patch_method_names()
    _patch_tag_limit()
