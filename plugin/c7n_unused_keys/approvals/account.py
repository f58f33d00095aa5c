"""The account's side of a click: assume the account's approval role, read the user's
tags and keys, and write the one tag a click decided. The only AWS calls of the app."""
import logging
from typing import Mapping

import boto3

from .clicks import UserState
from .config import ApprovalsConfig

log = logging.getLogger('c7n_unused_keys.approvals')

SESSION_NAME = 'c7n-unused-keys-approvals'


class AccountUnreachable(Exception):
    """The account's role could not be assumed."""


def iam_client(cfg: ApprovalsConfig, account: str, session=None):
    """An IAM client in `account`, through its approval role."""
    session = session or boto3.Session()
    role = cfg.role_of(account)
    try:
        creds = session.client('sts').assume_role(
            RoleArn=role, RoleSessionName=SESSION_NAME)['Credentials']
    except Exception as e:
        raise AccountUnreachable('the role %s cannot be assumed: %s' % (role, e))
    return boto3.Session(
        aws_access_key_id=creds['AccessKeyId'], aws_secret_access_key=creds['SecretAccessKey'],
        aws_session_token=creds['SessionToken']).client('iam', region_name='us-east-1')


def read_user(client, user: str) -> UserState:
    """The user's tags and its keys' statuses; a user that is gone has neither."""
    try:
        tags = client.get_user(UserName=user)['User'].get('Tags', [])
    except client.exceptions.NoSuchEntityException:
        return UserState(tags={}, keys={})
    keys = {}
    for page in client.get_paginator('list_access_keys').paginate(UserName=user):
        keys.update((k['AccessKeyId'], k['Status']) for k in page['AccessKeyMetadata'])
    return UserState(tags={t['Key']: t['Value'] for t in tags}, keys=keys)


def write_tags(client, user: str, tags: Mapping[str, str]):
    client.tag_user(UserName=user, Tags=[{'Key': k, 'Value': v} for k, v in tags.items()])
