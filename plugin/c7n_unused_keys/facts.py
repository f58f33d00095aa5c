"""Reads from IAM: the key list and the tags of a user, the last use of a key, and a
user's console password."""
from typing import List, Optional

from botocore.exceptions import ClientError

from .credential_report import as_utc
from .errors import is_gone
from .model import SOURCE_API, KeyFacts, ListedKey, PasswordFacts


def list_keys(client, retry, user: str) -> List[ListedKey]:
    """ListAccessKeys, every page. A user deleted since it was listed has no keys."""
    return [ListedKey(user=user, key_id=k['AccessKeyId'], status=k['Status'],
                      created=as_utc(k['CreateDate']))
            for k in _user_pages(client.list_access_keys, retry, user, 'AccessKeyMetadata')]


def last_used(client, retry, key: ListedKey) -> Optional[KeyFacts]:
    """GetAccessKeyLastUsed for one key; None when the key was deleted meanwhile."""
    try:
        resp = retry(client.get_access_key_last_used, AccessKeyId=key.key_id)
    except ClientError as e:
        if is_gone(e):
            return None
        raise
    info = resp.get('AccessKeyLastUsed', {})
    when = info.get('LastUsedDate')
    return KeyFacts(
        user=key.user, key_id=key.key_id, status=key.status, created=key.created,
        last_used=as_utc(when) if when else None,
        last_service=_known(info.get('ServiceName')),
        last_region=_known(info.get('Region')),
        source=SOURCE_API)


def password(client, retry, user: str) -> Optional[PasswordFacts]:
    """GetLoginProfile, then GetUser for PasswordLastUsed; None when the user has no
    console password (or is gone). The login profile is read first: a password
    removed between the two reads is then seen as the password it was."""
    try:
        profile = retry(client.get_login_profile, UserName=user)['LoginProfile']
        used = retry(client.get_user, UserName=user)['User'].get('PasswordLastUsed')
    except ClientError as e:
        if is_gone(e):
            return None
        raise
    return PasswordFacts(user=user, created=as_utc(profile['CreateDate']),
                         last_used=as_utc(used) if used else None, source=SOURCE_API)


def has_password(client, retry, user: str) -> bool:
    """Whether the user has a login profile (GetLoginProfile)."""
    try:
        retry(client.get_login_profile, UserName=user)
    except ClientError as e:
        if is_gone(e):
            return False
        raise
    return True


def _known(value: Optional[str]) -> Optional[str]:
    return None if value in (None, 'N/A', '') else value


def user_tags(client, retry, user: str) -> List[dict]:
    """ListUserTags, every page. A user deleted since it was listed has no tags."""
    return _user_pages(client.list_user_tags, retry, user, 'Tags')


def _user_pages(call, retry, user: str, field: str) -> list:
    """Every item of a Marker-paged per-user IAM list; none when the user is gone."""
    # IAM's largest page (MaxItems): one call for nearly every user.
    items, kw = [], {'UserName': user, 'MaxItems': 1000}
    while True:
        try:
            resp = retry(call, **kw)
        except ClientError as e:
            if is_gone(e):
                return []
            raise
        items.extend(resp.get(field, ()))
        if not resp.get('IsTruncated'):
            return items
        kw['Marker'] = resp['Marker']
