"""`notify-unused-keys`: c7n's `notify`, sent only when the digest has something to say."""
import copy
import logging
from datetime import datetime, timedelta, timezone

from c7n.actions.notify import Notify
from c7n.resources.iam import AccessKey, User

from .news import says_something
from .schema_check import check_schema

log = logging.getLogger('custodian.notify-unused-keys')

DEFAULT_NOTICE_DAYS = 7


def _schema():
    schema = copy.deepcopy(Notify.schema)
    schema['properties']['type'] = {'enum': ['notify-unused-keys']}
    schema['properties']['deletion_notice_days'] = {'type': 'integer', 'minimum': 0}
    schema['properties']['slack_template'] = {'type': 'string'}
    # Set by the action itself, for the templates: the last delete-on date it lists.
    schema['properties']['deletion_notice_until'] = {'type': 'string'}
    # What c7n-mailer and its templates read beyond notify's own schema.
    for name in ('violation_desc', 'action_desc', 'template_format'):
        schema['properties'][name] = {'type': 'string'}
    schema['properties']['priority_header'] = {'type': ['string', 'integer']}
    # A misspelt option (`deletion_notice_dayz`) is refused, not silently defaulted.
    schema['additionalProperties'] = False
    return schema


class NotifyUnusedKeys(Notify):
    """c7n's `notify` for unused-key digests: only resources with news are sent.

    :example:

    .. code-block:: yaml

      policies:
        - name: unused-access-keys-retire-notify
          resource: aws.iam-user
          filters:
            - type: unused-access-keys
              days: 45
          actions:
            - type: retire-access-keys
            - type: notify-unused-keys
              template: unused-access-keys.html
              slack_template: unused-access-keys.slack
              deletion_notice_days: 7
              to: [resource-owner]
              transport:
                type: sqs
                queue: https://sqs.us-east-1.amazonaws.com/123456789012/c7n-mailer

    The same options as `notify`, plus `deletion_notice_days` (default 7), which the
    templates in mailer/templates read too. A resource has news when one of its keys
    was deactivated, deleted, failed or awaits approval in this run, or will be
    deleted within `deletion_notice_days`; without the retire action, when it has an
    unused key. Resources without news are left out, and nothing is queued when none
    has any: c7n-mailer would otherwise send an empty message. The window's last day
    goes to the templates as `deletion_notice_until`, so that they list exactly what
    was decided here, whatever the mailer's clock. When the retire action before it
    failed on a key, this action still sends the notice, then fails the run.
    """

    schema = _schema()
    schema_alias = False

    def validate(self):
        check_schema(self)
        return super().validate()

    # Set by a retire-access-keys action before this one whose run failed on a key.
    deferred_error = None

    def process(self, resources, event=None):
        days = self.data.get('deletion_notice_days', DEFAULT_NOTICE_DAYS)
        soon = (datetime.now(timezone.utc) + timedelta(days=days)).date()
        # The templates list what this run decided, not what the mailer's clock says later.
        self.data['deletion_notice_until'] = soon.isoformat()
        told = [r for r in resources if says_something(r, soon)]
        try:
            if not told:
                log.info('notify-unused-keys: nothing to say about %d resources; nothing sent',
                         len(resources))
                return None
            log.info('notify-unused-keys: %d of %d resources have news',
                     len(told), len(resources))
            return super().process(told, event)
        finally:
            error, self.deferred_error = self.deferred_error, None
            if error is not None:
                raise error


User.action_registry.register('notify-unused-keys', NotifyUnusedKeys)
AccessKey.action_registry.register('notify-unused-keys', NotifyUnusedKeys)
