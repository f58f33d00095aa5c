"""Security Hub findings per access key, which resolve themselves.

Three elements, registered on c7n's resources under names of their own (c7n's
`post-finding` stays as it is, for every policy):

- `post-unused-key-finding` on aws.iam-access-key: c7n's `post-finding` (its finding
  ids, fields and options), with an `AwsIamAccessKey` resource. A key that carries
  `c7n:unused-access-keys` gets an ACTIVE, FAILED finding that says why; any other key
  that reaches it (see `active-finding`) gets its finding ARCHIVED and PASSED.
- `active-finding` on aws.iam-access-key: keys that have an ACTIVE finding posted by this
  policy. Beside `unused-access-keys` in an `or`, it brings the keys that are fine again
  (used, exempted, deactivated under `status: Active`) to `post-unused-key-finding`,
  which resolves
  them; it also hands the finding's id to the action, so a key keeps one finding.
- `resolve-access-key-findings` on aws.account: archives the ACTIVE findings of a
  key-level policy whose key no longer exists. c7n calls no action when a policy matched
  nothing, and no filter when it listed nothing; an account is always one resource, so
  this policy's action runs on every run (but not under --dryrun).

GetFindings is asked for the policy's findings (GeneratorId is the policy name) and the
answer is checked again here, field by field: the AWS emulator ignores the filters.
When Security Hub refuses findings (BatchImportFindings' FailedCount), both actions
post the rest, then fail the run naming each refused finding and Security Hub's reason.
"""
import copy
import logging
from datetime import datetime

from dateutil.tz import tzutc

from c7n.actions import Action
from c7n.exceptions import PolicyExecutionError, PolicyValidationError
from c7n.filters import Filter
from c7n.manager import iter_filters
from c7n.resources.account import Account
from c7n.resources.iam import AccessKey
from c7n.resources.securityhub import PostFinding
from c7n.utils import chunks, get_partition, local_session, type_schema

from . import facts
from .decide import where_used
from .names import EXEMPT_ANNOTATION, UNUSED_ANNOTATION
from .pace import paced
from .schema_check import check_schema
from .key_level import FreshKeyListing

log = logging.getLogger('custodian.c7n_unused_keys.findings')

RESOURCE_TYPE = 'AwsIamAccessKey'
POST = 'post-unused-key-finding'
# On a key that has an ACTIVE finding of this policy: {'Id': ..., 'CreatedAt': ...}.
FINDING_ANNOTATION = 'c7n:access-key-finding'
# BatchImportFindings takes at most 100 findings per call.
IMPORT_BATCH = 100
# What a provider sends back when it updates a finding it read (GetFindings adds fields
# that BatchImportFindings does not take from a provider, such as Workflow or Note).
PROVIDER_FIELDS = (
    'SchemaVersion', 'Id', 'ProductArn', 'GeneratorId', 'AwsAccountId', 'Types', 'CreatedAt',
    'Severity', 'Title', 'Description', 'Remediation', 'ProductFields', 'Resources')


def finding_filters(generator: str, account_id: str, region: str) -> dict:
    return {
        'GeneratorId': [{'Value': generator, 'Comparison': 'EQUALS'}],
        'AwsAccountId': [{'Value': account_id, 'Comparison': 'EQUALS'}],
        'RecordState': [{'Value': 'ACTIVE', 'Comparison': 'EQUALS'}],
        'ResourceType': [{'Value': RESOURCE_TYPE, 'Comparison': 'EQUALS'}],
        'ResourceRegion': [{'Value': region, 'Comparison': 'EQUALS'}],
    }


def _is_ours(f: dict, generator: str, account_id: str, region: str) -> bool:
    res = (f.get('Resources') or [{}])[0]
    return (f.get('GeneratorId') == generator and f.get('AwsAccountId') == account_id
            and f.get('RecordState', 'ACTIVE') == 'ACTIVE'
            and res.get('Type') == RESOURCE_TYPE and res.get('Region') == region)


def active_findings(client, retry, generator: str, account_id: str, region: str) -> dict:
    """{key id: finding}: the ACTIVE AwsIamAccessKey findings of `generator`."""
    found, token = {}, None
    query = finding_filters(generator, account_id, region)
    while True:
        page = retry(client.get_findings, Filters=query, MaxResults=100,
                     **({'NextToken': token} if token else {}))
        for f in page.get('Findings', ()):
            if _is_ours(f, generator, account_id, region):
                found[f['Resources'][0]['Id']] = f
        token = page.get('NextToken')
        if not token:
            return found


def resolved(finding: dict, why: str, now: str) -> dict:
    """The update that archives `finding`, saying why it passes now."""
    update = {k: finding[k] for k in PROVIDER_FIELDS if k in finding}
    # Security Hub writes the aws/ product fields itself; a provider sends its own only.
    if 'ProductFields' in update:
        update['ProductFields'] = {k: v for k, v in update['ProductFields'].items()
                                   if not k.startswith('aws/')}
    update.update(UpdatedAt=now, RecordState='ARCHIVED', Compliance={'Status': 'PASSED'},
                  Description=why[:1024])
    return update


def refusals(answer: dict, sent: list) -> list:
    """What Security Hub refused of `sent`, from a BatchImportFindings answer: one line
    per finding, with its key and Security Hub's reason."""
    if not answer.get('FailedCount'):
        return []
    key_of = {f['Id']: f['Resources'][0]['Id'] for f in sent}
    listed = answer.get('FailedFindings') or []
    lines = ['%s (key %s): %s: %s' % (f.get('Id'), key_of.get(f.get('Id'), 'unknown'),
                                      f.get('ErrorCode'), f.get('ErrorMessage'))
             for f in listed]
    # A count without the list still fails the run.
    lines += ['a finding not named by Security Hub'] * (answer['FailedCount'] - len(listed))
    return lines


def refused_error(action: str, policy: str, refused: list, sent: int) -> PolicyExecutionError:
    return PolicyExecutionError(
        '%s: Security Hub refused %d of %d findings of %s: %s' % (
            action, len(refused), sent, policy, '; '.join(refused)))


def principal(finding: dict):
    return finding['Resources'][0].get('Details', {}).get(RESOURCE_TYPE, {}).get(
        'PrincipalName')


def hub_region(manager, data: dict) -> str:
    # c7n's post-finding posts to `region` (cross-region aggregation) or the run's region;
    # post-unused-key-finding and resolve-access-key-findings do as it does.
    return data.get('region') or manager.config.region


def _iso(value) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


@AccessKey.filter_registry.register('active-finding')
class ActiveFinding(FreshKeyListing, Filter):
    """Access keys with an ACTIVE Security Hub finding that this policy posted.

    :example:

    .. code-block:: yaml

      policies:
        - name: unused-access-keys-findings-resolved
          resource: aws.iam-access-key
          filters:
            - or:
                - type: unused-access-keys
                  days: 45
                - type: active-finding
          actions:
            - type: post-unused-key-finding
              severity_label: MEDIUM
              types: [Software and Configuration Checks/AWS Security Best Practices]

    Beside `unused-access-keys` in an `or`, it brings the keys reported before to the
    policy's `post-unused-key-finding`, which archives the findings of those that are
    no longer unused. A key with such a finding is annotated `c7n:access-key-finding`
    (its Id and CreatedAt): `post-unused-key-finding` updates that finding rather than
    opening another one. Findings are those whose GeneratorId is the policy name, of
    AwsIamAccessKey resources of this account and region, in the hub that the policy's
    `post-unused-key-finding` posts to. Reads only (GetFindings).
    """

    schema = type_schema('active-finding')
    schema_alias = False
    permissions = ('securityhub:GetFindings',)

    def validate(self):
        check_schema(self)
        return self

    def _hub(self) -> str:
        post = next((a for a in getattr(self.manager, 'actions', ())
                     if isinstance(a, AccessKeyFinding)), None)
        return hub_region(self.manager, post.data if post else {})

    def process(self, resources, event=None):
        client = local_session(self.manager.session_factory).client(
            'securityhub', region_name=self._hub())
        found = active_findings(client, self.manager.retry, self.manager.ctx.policy.name,
                                self.manager.config.account_id, self.manager.config.region)
        matched = []
        for r in resources:
            # Set or cleared on every key: c7n's cache shares resource objects.
            r.pop(FINDING_ANNOTATION, None)
            f = found.get(r['AccessKeyId'])
            if f is not None:
                r[FINDING_ANNOTATION] = {'Id': f['Id'], 'CreatedAt': f['CreatedAt']}
                matched.append(r)
        log.info('active-finding: %d of %d keys have an active finding of %s',
                 len(matched), len(resources), self.manager.ctx.policy.name)
        return matched


# Options of c7n's post-finding that this action decides per key.
FIXED_BY_KEY = ('compliance_status', 'record_state')


def _post_schema():
    schema = copy.deepcopy(PostFinding.schema)
    schema['properties']['type'] = {'enum': [POST]}
    for option in FIXED_BY_KEY:
        del schema['properties'][option]
    return schema


@AccessKey.action_registry.register(POST)
class AccessKeyFinding(PostFinding):
    """One Security Hub finding per access key, in the ASFF of AwsIamAccessKey.

    :example:

    .. code-block:: yaml

      policies:
        - name: unused-access-keys-findings
          resource: aws.iam-access-key
          filters:
            - or:
                - type: unused-access-keys
                  days: 45
                - type: active-finding
          actions:
            - type: post-unused-key-finding
              severity_label: MEDIUM
              types: [Software and Configuration Checks/AWS Security Best Practices]

    c7n's `post-finding` (the same options and finding ids), with the key as the
    finding's subject: `Type` AwsIamAccessKey, `Id` the key id, `Details.AwsIamAccessKey`
    with AccessKeyId, PrincipalName (the user), PrincipalType (IAMUser), Status,
    CreatedAt and AccountId. A key annotated `c7n:unused-access-keys` gets an ACTIVE
    finding, Compliance FAILED, whose title and description give the last use, the
    idle days and the threshold. Any other key (one that `active-finding` brought
    here) gets its finding ARCHIVED, Compliance PASSED: the key is in use again,
    exempt, or no longer in scope. The state is therefore set per key: the options
    `compliance_status` and `record_state` of `post-finding` are refused. A key
    annotated `c7n:access-key-finding` updates that finding. When Security Hub refuses
    findings, the others are posted and the run fails, naming each refused finding,
    its key and Security Hub's reason.
    """

    resource_type = RESOURCE_TYPE
    schema = _post_schema()
    schema_alias = False

    def validate(self):
        for option in FIXED_BY_KEY:
            if option in self.data:
                raise PolicyValidationError(
                    '%s sets %s per key (FAILED and ACTIVE for an unused key, PASSED and '
                    'ARCHIVED once it is not): remove it from %s' % (
                        POST, option, self.manager.data.get('name', 'this policy')))
        check_schema(self)
        super().validate()
        return self

    def process(self, resources, event=None):
        # c7n's post-finding, without its tagging (keys take no tags; the finding's id
        # comes from active-finding) and with Security Hub's answer checked.
        client = local_session(self.manager.session_factory).client(
            'securityhub', region_name=hub_region(self.manager, self.data))
        now = datetime.now(tzutc()).isoformat()
        refused, sent = [], 0
        for resource_set in chunks(resources, self.data.get('batch_size', 1)):
            findings = []
            for r in resource_set:
                tag = self.get_finding_tag(r)
                finding_id, created_at = tag.split(':', 1) if tag else (None, now)
                findings.append(self.get_finding([r], finding_id, created_at, now))
            answer = self.manager.retry(client.batch_import_findings, Findings=findings)
            sent += len(findings)
            refused += refusals(answer, findings)
        log.info('%s: %d findings of %s posted, %d refused', POST, sent,
                 self.manager.ctx.policy.name, len(refused))
        if refused:
            raise refused_error(POST, self.manager.ctx.policy.name, refused, sent)

    def get_finding_tag(self, resource):
        # Keys take no tags: the id of the key's open finding comes from active-finding.
        f = resource.get(FINDING_ANNOTATION)
        return '%s:%s' % (f['Id'], f['CreatedAt']) if f else None

    def format_resource(self, r):
        region = self.manager.config.region
        details = {
            'AccessKeyId': r['AccessKeyId'],
            'PrincipalName': r['UserName'],
            'PrincipalType': 'IAMUser',
            'Status': r['Status'],
            'CreatedAt': _iso(r['CreateDate']),
            'AccountId': self.manager.config.account_id,
        }
        return {
            'Type': RESOURCE_TYPE,
            'Id': r['AccessKeyId'],
            'Partition': get_partition(region),
            'Region': region,
            'Details': {RESOURCE_TYPE: details},
        }

    def get_finding(self, resources, existing_finding_id, created_at, updated_at):
        finding = super().get_finding(resources, existing_finding_id, created_at, updated_at)
        (r,) = resources
        title, why = self.explain(r)
        unused = bool(r.get(UNUSED_ANNOTATION))
        finding['Title'] = title[:256]
        finding['Description'] = why[:1024]
        finding['Compliance'] = {'Status': 'FAILED' if unused else 'PASSED'}
        finding['RecordState'] = 'ACTIVE' if unused else 'ARCHIVED'
        return finding

    def explain(self, r):
        """(title, description) of the finding of key `r`."""
        key, user = r['AccessKeyId'], r['UserName']
        base = self.data.get('title')
        unused = r.get(UNUSED_ANNOTATION)
        if unused:
            (a,) = unused
            title = 'IAM access key %s of user %s is unused' % (key, user)
            last = 'never used' if a.get('NeverUsed') else 'last used %s%s' % (
                a.get('LastUsedDate'), where_used(a.get('LastUsedService'),
                                                  a.get('LastUsedRegion')))
            why = ('Access key %s of IAM user %s (%s): %s, %d days idle; threshold %s. '
                   'Filter: %s.' % (key, user, r['Status'], last, a.get('IdleDays') or 0,
                                    self.threshold(a), a.get('Reason')))
        else:
            title = 'IAM access key %s of user %s is no longer unused' % (key, user)
            exempt = r.get(EXEMPT_ANNOTATION)
            if exempt:
                now = 'exempt by tag (%s, until %s)' % (
                    exempt[0].get('Exemption'), exempt[0].get('ExemptUntil') or 'no end')
            else:
                now = 'in use again, or out of the policy\'s scope (status %s)' % r['Status']
            why = 'Access key %s of IAM user %s no longer matches unused-access-keys: %s.' % (
                key, user, now)
        if base:
            title = '%s: %s' % (base, title)
        description = self.data.get('description', self.manager.data.get('description'))
        if description:
            why = '%s %s' % (why, description.strip())
        return title, why

    def threshold(self, annotation) -> str:
        f = next((f for f in iter_filters(self.manager.filters)
                  if f.type == 'unused-access-keys'), None)
        if f is None:
            return 'unknown'
        if annotation.get('NeverUsed'):
            days = f.data.get('never-used-days', f.data.get('days'))
            return '%s days for never-used keys (never-used-days)' % days
        return '%s days (days)' % f.data.get('days')


@Account.action_registry.register('resolve-access-key-findings')
class ResolveAccessKeyFindings(Action):
    """Archive the findings of access keys that no longer exist.

    :example:

    .. code-block:: yaml

      policies:
        - name: unused-access-keys-findings-gone
          resource: aws.account
          actions:
            - type: resolve-access-key-findings
              policy: unused-access-keys-findings

    Reads the ACTIVE AwsIamAccessKey findings that the key-level policy named by
    `policy` posted in this account and region (GetFindings), lists the keys of their
    users (ListAccessKeys, once per user) and archives, PASSED, the findings whose key
    or user is gone (BatchImportFindings). Keys that still exist are left to that
    policy: its `active-finding` filter brings them to its `post-unused-key-finding`.
    It runs on aws.account because c7n runs a policy's actions only when a resource
    matched, and an account is always one resource. `region` is the hub, as on
    `post-unused-key-finding`. When Security Hub refuses findings, the run fails after
    the others are archived, naming each refused finding and Security Hub's reason.
    """

    schema = type_schema(
        'resolve-access-key-findings', required=['policy'],
        policy={'type': 'string', 'minLength': 1},
        region={'type': 'string'})
    schema_alias = False
    permissions = ('securityhub:GetFindings', 'securityhub:BatchImportFindings',
                   'iam:ListAccessKeys')

    def validate(self):
        check_schema(self)
        return self

    def process(self, resources, event=None):
        session = local_session(self.manager.session_factory)
        hub = session.client('securityhub', region_name=hub_region(self.manager, self.data))
        found = active_findings(hub, self.manager.retry, self.data['policy'],
                                self.manager.config.account_id, self.manager.config.region)
        iam = session.client('iam')
        owner = {key: principal(f) for key, f in found.items()}
        existing = {u: self.keys_of(iam, u) for u in sorted(set(owner.values())) if u}
        now = datetime.now(tzutc()).isoformat()
        gone = []
        for key, f in sorted(found.items()):
            user = owner[key]
            if user and key in existing[user]:
                continue
            gone.append(resolved(f, 'Access key %s of IAM user %s no longer exists.' % (
                key, user), now))
        refused = []
        for batch in chunks(gone, IMPORT_BATCH):
            answer = self.manager.retry(hub.batch_import_findings, Findings=batch)
            refused += refusals(answer, batch)
        log.info('resolve-access-key-findings: %d active findings of %s, %d archived '
                 '(key gone), %d refused', len(found), self.data['policy'], len(gone),
                 len(refused))
        if refused:
            raise refused_error('resolve-access-key-findings', self.data['policy'],
                                refused, len(gone))
        return [{'Id': f['Id'], 'AccessKeyId': f['Resources'][0]['Id']} for f in gone]

    def keys_of(self, iam, user: str) -> set:
        """The key ids of `user` (none when it is gone), through the run's pace."""
        return {k.key_id for k in facts.list_keys(iam, paced(self.manager), user)}
