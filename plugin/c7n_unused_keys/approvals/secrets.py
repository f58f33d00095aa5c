"""The signing secret and the bot token, read where approvals.yml says they are kept."""
import os

import boto3

from .config import ConfigError, Secret


def read_secret(secret: Secret, field: str, session=None) -> str:
    """The secret's value; ConfigError names `field` when it cannot be read."""
    session = session or boto3.Session()
    try:
        if secret.kind == 'env':
            value = os.environ[secret.name]
        elif secret.kind == 'ssm':
            value = session.client('ssm').get_parameter(
                Name=secret.name, WithDecryption=True)['Parameter']['Value']
        else:
            value = session.client('secretsmanager').get_secret_value(
                SecretId=secret.name)['SecretString']
    except Exception as e:
        raise ConfigError('%s: %s %r cannot be read: %s' % (
            field, secret.kind, secret.name, e.__class__.__name__ if secret.kind == 'env'
            else e))
    if not value:
        raise ConfigError('%s: %s %r is empty' % (field, secret.kind, secret.name))
    return value
