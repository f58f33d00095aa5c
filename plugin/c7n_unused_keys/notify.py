"""`notify-unused-keys`: c7n's `notify`, sent only when the digest has something to say."""
import copy
import logging
from datetime import datetime, timedelta, timezone

from c7n.actions.notify import Notify
from c7n.resources.iam import AccessKey, User
from c7n.utils import local_session

from . import markers
from .password_lifecycle import PASSWORD_SUFFIX
from .names import MARKER_PREFIX
from .news import news, records_of, says_something
from .pace import paced
from .schema_check import check_schema

log = logging.getLogger('custodian.notify-unused-keys')

DEFAULT_NOTICE_DAYS = 7


def _schema():
    schema = copy.deepcopy(Notify.schema)
    schema['properties']['type'] = {'enum': ['notify-unused-keys']}
    schema['properties']['deletion_notice_days'] = {'type': 'integer', 'minimum': 0}
    schema['properties']['slack_template'] = {'type': 'string'}
    # The Slack template gives each key awaiting approval an "Approve delete" and a
    # "Keep" button, answered by the approval app (docs/approvals.md).
    schema['properties']['approval_buttons'] = {'type': 'boolean'}
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
    templates in mailer/templates read too, and `approval_buttons` (default false): the
    Slack digest then gives each key awaiting approval the buttons of the approval app
    (docs/approvals.md). A resource has news when one of its keys
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

    # A retire-access-keys action before this one whose run failed on a key hands its
    # error here (fail_after_sending): c7n runs no later action once one raises.
    deferred_error = None

    def fail_after_sending(self, error: Exception):
        """Send this run's notice, failed keys included, then raise `error`."""
        self.deferred_error = error

    def get_permissions(self):
        # After delivery, the stages told are written to the keys' markers (told=).
        return tuple(super().get_permissions()) + ('iam:TagUser', 'iam:UntagUser')

    def process(self, resources, event=None):
        days = self.data.get('deletion_notice_days', DEFAULT_NOTICE_DAYS)
        now = datetime.now(timezone.utc)
        soon = (now + timedelta(days=days)).date()
        # The templates list what this run decided, not what the mailer's clock says later.
        self.data['deletion_notice_until'] = soon.isoformat()
        for r in resources:
            for rec in records_of(r):
                # The stage each template lists the key under: news not yet delivered.
                rec['News'] = news(rec, soon, now)
        told = [r for r in resources if says_something(r, soon, now)]
        try:
            if not told:
                log.info('notify-unused-keys: nothing to say about %d resources; nothing sent',
                         len(resources))
                return None
            log.info('notify-unused-keys: %d of %d resources have news',
                     len(told), len(resources))
            sent = super().process(told, event)
            self.remember_told(told, now)
            return sent
        finally:
            error, self.deferred_error = self.deferred_error, None
            if error is not None:
                raise error

    def remember_told(self, resources, now):
        """Once the message is queued: each key's marker says the stage told (told=), and
        the marker of a key told deleted is removed. A run that could not queue it leaves
        the markers as they were, so that the next run tells the same news."""
        writes = told_markers([rec for r in resources for rec in records_of(r)],
                              self.prefix(), now, self.prefix('retire-passwords'))
        if not writes:
            return
        client = local_session(self.manager.session_factory).client('iam')
        retry = paced(self.manager)
        for user, (tags, gone) in sorted(writes.items()):
            try:
                if tags:
                    retry(client.tag_user, UserName=user,
                          Tags=[{'Key': k, 'Value': v} for k, v in sorted(tags.items())])
                if gone:
                    retry(client.untag_user, UserName=user, TagKeys=sorted(gone))
            except Exception as e:  # told again next run: at least once, not lost
                log.warning('notify-unused-keys: %s: the notice was queued, but its markers '
                            'could not say so (%s); the next run tells it again', user, e)

    def prefix(self, action: str = 'retire-access-keys'):
        """The marker-tag-prefix of the policy's retire action `action`."""
        retire = next((a for a in self.manager.actions if a.type == action), None)
        return retire.data.get('marker-tag-prefix', MARKER_PREFIX) if retire is not None \
            else MARKER_PREFIX


def told_markers(records, prefix: str, now, password_prefix: str = MARKER_PREFIX) -> dict:
    """{user: ({marker tag: value with told=}, {marker tags to remove})} for the records
    whose news a delivered notice told (keys' markers under `prefix`, passwords' under
    `password_prefix`). Pure."""
    writes = {}
    for rec in records:
        stage, value = rec.get('News'), rec.get('Marker')
        if stage not in markers.TOLD or not value:
            continue
        tags, gone = writes.setdefault(rec['UserName'], ({}, set()))
        # A password's record has no key id: its marker is the user's password marker.
        tag = markers.deactivated_tag(prefix, rec['AccessKeyId']) if rec.get('AccessKeyId') \
            else password_prefix + PASSWORD_SUFFIX
        if stage == markers.TOLD[-1]:
            gone.add(tag)
            continue
        told = markers.with_told(value, stage, now)
        if told is not None:
            tags[tag] = told
    return writes


User.action_registry.register('notify-unused-keys', NotifyUnusedKeys)
AccessKey.action_registry.register('notify-unused-keys', NotifyUnusedKeys)
