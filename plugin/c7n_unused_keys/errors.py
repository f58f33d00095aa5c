"""Reading botocore ClientErrors the same way everywhere."""
from botocore.exceptions import ClientError


def is_gone(e: ClientError) -> bool:
    """NoSuchEntity: the user or key was deleted meanwhile."""
    return e.response.get('Error', {}).get('Code') in ('NoSuchEntity', 'NoSuchEntityException')


def describe(e: ClientError) -> str:
    err = e.response.get('Error', {})
    return '%s: %s' % (err.get('Code'), err.get('Message', ''))
