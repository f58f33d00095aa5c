"""Security Hub findings per access key, which resolve themselves (securityhub/).

End to end: the shipped policy file runs through `custodian run` against the emulator,
whose Security Hub keeps the findings; the test reads them back with GetFindings.
"""
import json

import boto3
import pytest

from c7n_unused_keys.findings import FINDING_ANNOTATION, RESOURCE_TYPE
from c7n_unused_keys.names import EXEMPT_TAG, UNUSED_ANNOTATION
from conftest import (DEFAULT_ACCOUNT, ROOT, custodian_run, read_json, run_command,
                      write_policies)

SHIPPED = ROOT / 'securityhub' / 'unused-access-keys-findings.yml'
POLICY = 'unused-access-keys-findings'
GONE_POLICY = 'unused-access-keys-findings-gone'


@pytest.fixture
def hub(sandbox):
    """The sandbox, with an empty Security Hub before and after the test."""
    from moto.securityhub.models import securityhub_backends
    securityhub_backends.reset()
    yield sandbox
    securityhub_backends.reset()


def findings(emu):
    """Every finding of the account's us-east-1 hub, {key id: finding}, through the API."""
    env = emu.env()
    client = boto3.client('securityhub', endpoint_url=env['AWS_ENDPOINT_URL'],
                          region_name='us-east-1', aws_access_key_id='testing',
                          aws_secret_access_key='testing')
    found, token = [], None
    while True:
        page = client.get_findings(MaxResults=100, **({'NextToken': token} if token else {}))
        found += page['Findings']
        token = page.get('NextToken')
        if not token:
            break
    by_key = {}
    for f in found:
        (res,) = f['Resources']
        assert res['Id'] not in by_key, 'two findings for key %s' % res['Id']
        by_key[res['Id']] = f
    return by_key


def make_key(emu, user, created_days, used_days=None):
    c = emu.iam_client()
    try:
        c.create_user(UserName=user)
    except c.exceptions.EntityAlreadyExistsException:
        pass
    key = c.create_access_key(UserName=user)['AccessKey']['AccessKeyId']
    emu.backdate_key(DEFAULT_ACCOUNT, key, created_days=created_days, used_days=used_days,
                     never_used=used_days is None)
    return key


def account(emu):
    """alice: unused 100 days; bob: one unused 60 days, one used yesterday; carol: never
    used, 40 days old; dave: unused 50 days; erin: used 3 days ago; frank: never used,
    made 5 days ago."""
    return {
        'alice': make_key(emu, 'alice', 200, 100),
        'bob': make_key(emu, 'bob', 200, 60),
        'bob-used': make_key(emu, 'bob', 200, 1),
        'carol': make_key(emu, 'carol', 40),
        'dave': make_key(emu, 'dave', 300, 50),
        'erin': make_key(emu, 'erin', 300, 3),
        'frank': make_key(emu, 'frank', 5),
    }


def run(emu, out, *extra):
    r = custodian_run(emu, out, SHIPPED, *extra)
    assert r.returncode == 0, r.stderr
    return r


def state(f):
    return f['RecordState'], f['Compliance']['Status']


def test_findings_per_key_then_resolved_when_used_deleted_exempted_or_gone(hub, tmp_path):
    keys = account(hub)
    unused = {keys[n] for n in ('alice', 'bob', 'carol', 'dave')}

    # 1-3. One ACTIVE, FAILED finding per unused key, on the key.
    run(hub, tmp_path / 'run1')
    first = findings(hub)
    assert set(first) == unused
    assert all(state(f) == ('ACTIVE', 'FAILED') for f in first.values())
    matched = read_json(tmp_path / 'run1' / POLICY / 'resources.json')
    assert {r['AccessKeyId'] for r in matched} == unused
    for r in matched:
        f = first[r['AccessKeyId']]
        (res,) = f['Resources']
        assert res['Type'] == RESOURCE_TYPE and res['Id'] == r['AccessKeyId']
        assert res['Details'][RESOURCE_TYPE] == {
            'AccessKeyId': r['AccessKeyId'], 'PrincipalName': r['UserName'],
            'PrincipalType': 'IAMUser', 'Status': 'Active', 'CreatedAt': r['CreateDate'],
            'AccountId': DEFAULT_ACCOUNT}
        assert f['GeneratorId'] == POLICY and f['AwsAccountId'] == DEFAULT_ACCOUNT
        (ann,) = r[UNUSED_ANNOTATION]
        assert r['AccessKeyId'] in f['Title'] and r['UserName'] in f['Title']
        assert '%d days idle' % ann['IdleDays'] in f['Description']
        assert ann['Reason'] in f['Description']
    alice = next(r for r in matched if r['AccessKeyId'] == keys['alice'])
    assert 'last used %s via s3 in us-east-1' % alice[UNUSED_ANNOTATION][0][
        'LastUsedDate'] in first[keys['alice']]['Description']
    assert 'threshold 45 days (days)' in first[keys['alice']]['Description']
    assert 'threshold 30 days for never-used keys' in first[keys['carol']]['Description']
    assert 'never used' in first[keys['carol']]['Description']

    # 4. alice uses her key again, bob's unused key is deleted, carol is exempted.
    hub.backdate_key(DEFAULT_ACCOUNT, keys['alice'], used_days=0)
    c = hub.iam_client()
    c.delete_access_key(UserName='bob', AccessKeyId=keys['bob'])
    c.tag_user(UserName='carol', Tags=[{'Key': EXEMPT_TAG, 'Value': keys['carol']}])

    # --dryrun reads and changes no finding.
    run(hub, tmp_path / 'dry', '--dryrun')
    assert findings(hub) == first

    # 5-6. Those three are ARCHIVED and PASSED, saying why; dave's is unchanged.
    run(hub, tmp_path / 'run2')
    second = findings(hub)
    assert set(second) == unused
    for name in ('alice', 'bob', 'carol'):
        assert state(second[keys[name]]) == ('ARCHIVED', 'PASSED'), name
        assert second[keys[name]]['Id'] == first[keys[name]]['Id']
        assert second[keys[name]]['CreatedAt'] == first[keys[name]]['CreatedAt']
    assert 'no longer exists' in second[keys['bob']]['Description']
    assert 'exempt by tag' in second[keys['carol']]['Description']
    assert 'in use again' in second[keys['alice']]['Description']
    d1, d2 = first[keys['dave']], second[keys['dave']]
    assert state(d2) == ('ACTIVE', 'FAILED')
    assert {k: d2[k] for k in ('Id', 'CreatedAt', 'Title', 'Resources')} == \
        {k: d1[k] for k in ('Id', 'CreatedAt', 'Title', 'Resources')}
    # alice's key reached post-unused-key-finding through active-finding only; bob's through none.
    kept = read_json(tmp_path / 'run2' / POLICY / 'resources.json')
    assert {r['AccessKeyId'] for r in kept} == {keys['alice'], keys['carol'], keys['dave']}
    gone = json.loads((tmp_path / 'run2' / GONE_POLICY /
                       'action-resolveaccesskeyfindings').read_text())
    assert [g['AccessKeyId'] for g in gone] == [keys['bob']]

    # A run where no key matches any more: dave's key is deleted, nothing is unused.
    c.delete_access_key(UserName='dave', AccessKeyId=keys['dave'])
    run(hub, tmp_path / 'run3')
    assert read_json(tmp_path / 'run3' / POLICY / 'resources.json') == []
    third = findings(hub)
    assert state(third[keys['dave']]) == ('ARCHIVED', 'PASSED')
    assert all(state(f) == ('ARCHIVED', 'PASSED') for f in third.values())
    assert {k: third[k] for k in third if k != keys['dave']} == \
        {k: second[k] for k in second if k != keys['dave']}


def test_a_key_unused_again_reopens_its_finding(hub, tmp_path):
    key = make_key(hub, 'alice', 200, 100)
    run(hub, tmp_path / 'run1')
    first = findings(hub)[key]
    hub.backdate_key(DEFAULT_ACCOUNT, key, used_days=0)
    run(hub, tmp_path / 'run2')
    assert state(findings(hub)[key]) == ('ARCHIVED', 'PASSED')
    hub.backdate_key(DEFAULT_ACCOUNT, key, used_days=90)
    run(hub, tmp_path / 'run3')
    again = findings(hub)[key]
    assert state(again) == ('ACTIVE', 'FAILED') and again['Id'] == first['Id']


def test_an_account_with_no_key_left_archives_the_rest(hub, tmp_path):
    """c7n calls no filter when it lists nothing: the aws.account policy still runs."""
    keys = [make_key(hub, 'alice', 200, 100), make_key(hub, 'bob', 200, 100)]
    run(hub, tmp_path / 'run1')
    assert all(state(f) == ('ACTIVE', 'FAILED') for f in findings(hub).values())
    c = hub.iam_client()
    c.delete_access_key(UserName='alice', AccessKeyId=keys[0])
    c.delete_access_key(UserName='bob', AccessKeyId=keys[1])
    c.delete_user(UserName='bob')   # a user gone with its key
    run(hub, tmp_path / 'run2')
    after = findings(hub)
    assert set(after) == set(keys)
    assert all(state(f) == ('ARCHIVED', 'PASSED') for f in after.values())


def test_findings_of_other_policies_are_left_alone(hub, tmp_path):
    """Only findings whose GeneratorId is the policy's name are resolved."""
    key = make_key(hub, 'alice', 200, 100)
    other = {'name': 'someone-else', 'resource': 'aws.iam-access-key',
             'filters': [{'type': 'unused-access-keys', 'days': 45}],
             'actions': [{'type': 'post-unused-key-finding', 'types': [
                 'Software and Configuration Checks/AWS Security Best Practices']}]}
    r = custodian_run(hub, tmp_path / 'other', write_policies(tmp_path / 'o.yml', other))
    assert r.returncode == 0, r.stderr
    hub.iam_client().delete_access_key(UserName='alice', AccessKeyId=key)
    run(hub, tmp_path / 'run')
    (f,) = findings(hub).values()
    assert f['GeneratorId'] == 'someone-else' and state(f) == ('ACTIVE', 'FAILED')


# -- validation and permissions ------------------------------------------------------------

@pytest.mark.parametrize('option', ['compliance_status', 'record_state'])
def test_post_finding_refuses_a_fixed_state(tmp_path, option):
    value = {'compliance_status': 'FAILED', 'record_state': 'ACTIVE'}[option]
    policy = {'name': 'p', 'resource': 'aws.iam-access-key',
              'filters': [{'type': 'unused-access-keys', 'days': 45}],
              'actions': [{'type': 'post-unused-key-finding', option: value, 'types': [
                  'Software and Configuration Checks/AWS Security Best Practices']}]}
    r = run_command(['custodian', 'validate', write_policies(tmp_path / 'p.yml', policy)],
                    None)
    assert r.returncode != 0 and option in r.stderr


def test_the_resolver_needs_the_policy_name(tmp_path):
    policy = {'name': 'p', 'resource': 'aws.account',
              'actions': [{'type': 'resolve-access-key-findings'}]}
    r = run_command(['custodian', 'validate', write_policies(tmp_path / 'p.yml', policy)],
                    None)
    assert r.returncode != 0 and "'policy' is a required property" in r.stderr


def test_permissions_cover_the_security_hub_calls():
    r = run_command(['c7n-unused-keys', 'permissions', 'securityhub'], None)
    assert r.returncode == 0, r.stderr
    (statement,) = json.loads(r.stdout)['Statement']
    # iam:ListUsers: c7n lists the keys' parents, which its child manager does not declare.
    assert {'securityhub:GetFindings', 'securityhub:BatchImportFindings',
            'iam:ListUsers', 'iam:ListAccessKeys', 'iam:GetAccessKeyLastUsed',
            'iam:ListUserTags'} <= set(statement['Action'])


# -- the formatter and the resolver, on hand-made keys -------------------------------------

def _manager(policy_data):
    import c7n_unused_keys.register  # noqa: F401
    from c7n.config import Config
    from c7n.policy import Policy
    from c7n.resources import load_resources
    load_resources(('aws.iam-access-key',))
    return Policy(policy_data, Config.empty(region='us-east-1', account_id=DEFAULT_ACCOUNT)
                  ).resource_manager


def _key(**extra):
    from datetime import datetime, timezone
    return dict({'UserName': 'alice', 'AccessKeyId': 'AKIAEXAMPLE0000000001',
                 'Status': 'Active', 'c7n:parent-id': 'alice',
                 'CreateDate': datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)}, **extra)


POLICY_DATA = {'name': POLICY, 'resource': 'aws.iam-access-key',
               'filters': [{'or': [{'type': 'unused-access-keys', 'days': 45,
                                    'never-used-days': 30}, {'type': 'active-finding'}]}],
               'actions': [{'type': 'post-unused-key-finding', 'types': [
                   'Software and Configuration Checks/AWS Security Best Practices']}]}


def test_an_unused_key_makes_a_failed_finding_on_the_key():
    manager = _manager(POLICY_DATA)
    (action,) = manager.actions
    ann = {'AccessKeyId': 'AKIAEXAMPLE0000000001', 'NeverUsed': False, 'IdleDays': 120,
           'LastUsedDate': '2024-05-01T00:00:00+00:00', 'LastUsedService': 'ec2',
           'LastUsedRegion': 'eu-west-1', 'Reason': 'last used 120 days ago (days: 45)'}
    f = action.get_finding([_key(**{UNUSED_ANNOTATION: [ann]})], None, 'now', 'now')
    assert state(f) == ('ACTIVE', 'FAILED')
    assert f['Resources'] == [{
        'Type': 'AwsIamAccessKey', 'Id': 'AKIAEXAMPLE0000000001', 'Partition': 'aws',
        'Region': 'us-east-1', 'Details': {'AwsIamAccessKey': {
            'AccessKeyId': 'AKIAEXAMPLE0000000001', 'PrincipalName': 'alice',
            'PrincipalType': 'IAMUser', 'Status': 'Active',
            'CreatedAt': '2024-01-02T03:04:05+00:00', 'AccountId': DEFAULT_ACCOUNT}}}]
    assert 'last used 2024-05-01T00:00:00+00:00 via ec2 in eu-west-1' in f['Description']
    # AWS records some uses with region N/A: the service alone, no 'None'.
    s3 = action.get_finding([_key(**{UNUSED_ANNOTATION: [dict(
        ann, LastUsedService='s3', LastUsedRegion=None)]})], None, 'now', 'now')
    assert 'last used 2024-05-01T00:00:00+00:00 via s3, 120 days idle' in s3['Description']
    assert 'None' not in s3['Description']
    assert '120 days idle; threshold 45 days (days)' in f['Description']
    # The id ends with a hash of the key id alone: one finding per key.
    other = action.get_finding([_key(AccessKeyId='AKIAEXAMPLE0000000002', **{
        UNUSED_ANNOTATION: [ann]})], None, 'now', 'now')
    assert other['Id'] != f['Id'] and other['Id'].rsplit('/', 1)[0] == f['Id'].rsplit('/', 1)[0]


def test_a_key_with_an_open_finding_keeps_its_id_and_passes():
    manager = _manager(POLICY_DATA)
    (action,) = manager.actions
    r = _key(**{FINDING_ANNOTATION: {'Id': 'us-east-1/x/y/z', 'CreatedAt': '2024-01-01T00:00Z'}})
    assert action.get_finding_tag(r) == 'us-east-1/x/y/z:2024-01-01T00:00Z'
    f = action.get_finding([r], 'us-east-1/x/y/z', '2024-01-01T00:00Z', 'now')
    assert f['Id'] == 'us-east-1/x/y/z' and f['CreatedAt'] == '2024-01-01T00:00Z'
    assert state(f) == ('ARCHIVED', 'PASSED')
    assert action.get_finding_tag(_key()) is None


def test_the_finding_query_is_checked_again_locally():
    """The emulator ignores GetFindings filters: the answer is re-checked field by field."""
    from c7n_unused_keys.findings import active_findings

    def finding(key, **extra):
        return dict({'Id': key, 'GeneratorId': POLICY, 'AwsAccountId': DEFAULT_ACCOUNT,
                     'RecordState': 'ACTIVE', 'CreatedAt': 'x', 'Resources': [
                         {'Type': RESOURCE_TYPE, 'Id': key, 'Region': 'us-east-1'}]}, **extra)

    pages = [{'Findings': [finding('k1'), finding('k2', GeneratorId='other'),
                           finding('k3', RecordState='ARCHIVED')], 'NextToken': 't'},
             {'Findings': [finding('k4', AwsAccountId='999999999999'), finding('k5')]}]
    calls = []

    class Client:
        def get_findings(self, **kw):
            calls.append(kw)
            return pages[len(calls) - 1]

    found = active_findings(Client(), lambda f, **kw: f(**kw), POLICY, DEFAULT_ACCOUNT,
                            'us-east-1')
    assert sorted(found) == ['k1', 'k5']
    assert calls[0]['Filters']['GeneratorId'] == [{'Value': POLICY, 'Comparison': 'EQUALS'}]
    assert calls[1]['NextToken'] == 't'


def test_the_printed_document_is_enough(hub, tmp_path):
    """A user holding exactly `c7n-unused-keys permissions securityhub` runs the file while
    the emulator enforces IAM. (The emulator enforces the IAM calls; it lets Security Hub
    calls through whatever the policy says, so those are shown by the lint instead.)"""
    keys = account(hub)
    r = run_command(['c7n-unused-keys', 'permissions', 'securityhub'], None)
    assert r.returncode == 0, r.stderr
    c = hub.iam_client()
    c.create_user(UserName='runner')
    c.put_user_policy(UserName='runner', PolicyName='c7n-unused-keys', PolicyDocument=r.stdout)
    key = c.create_access_key(UserName='runner')['AccessKey']
    env = {'AWS_ACCESS_KEY_ID': key['AccessKeyId'],
           'AWS_SECRET_ACCESS_KEY': key['SecretAccessKey']}
    with hub.enforcing_iam():
        first = custodian_run(hub, tmp_path / 'run1', SHIPPED, env=env)
    c.delete_access_key(UserName='bob', AccessKeyId=keys['bob'])
    with hub.enforcing_iam():
        second = custodian_run(hub, tmp_path / 'run2', SHIPPED, env=env)
    for run in (first, second):
        assert run.returncode == 0, run.stderr
        assert 'AccessDenied' not in run.stderr and 'not authorized' not in run.stderr
    assert state(findings(hub)[keys['bob']]) == ('ARCHIVED', 'PASSED')
    assert state(findings(hub)[keys['dave']]) == ('ACTIVE', 'FAILED')


# -- Security Hub refusals -----------------------------------------------------------------

@pytest.fixture
def refusing(hub, monkeypatch):
    """The hub, whose BatchImportFindings refuses the findings of the keys in the
    returned set (FailedCount, FailedFindings), as Security Hub does with an invalid or
    throttled finding; it imports the others."""
    from moto.securityhub.models import SecurityHubBackend
    refused = set()
    real = SecurityHubBackend.batch_import_findings

    def batch_import_findings(self, findings):
        kept = [f for f in findings if f['Resources'][0]['Id'] not in refused]
        failed, ok, failures = real(self, kept)
        failures = failures + [{'Id': f['Id'], 'ErrorCode': 'InvalidInput',
                                'ErrorMessage': 'refused by the test for %s' %
                                f['Resources'][0]['Id']}
                               for f in findings if f['Resources'][0]['Id'] in refused]
        return failed + len(findings) - len(kept), ok, failures

    monkeypatch.setattr(SecurityHubBackend, 'batch_import_findings', batch_import_findings)
    return refused


def test_a_refused_finding_fails_the_run_naming_it(hub, refusing, tmp_path):
    keys = account(hub)
    report = ['c7n-unused-keys', 'report', '--fail-on', 'errors']

    # The key-level policy: bob's finding is refused, the others are posted.
    refusing.add(keys['bob'])
    r = custodian_run(hub, tmp_path / 'run1', SHIPPED)
    assert r.returncode != 0
    posted = findings(hub)
    assert set(posted) == {keys[n] for n in ('alice', 'carol', 'dave')}
    assert all(state(f) == ('ACTIVE', 'FAILED') for f in posted.values())
    assert 'post-unused-key-finding: Security Hub refused 1 of 4 findings of %s' % POLICY \
        in r.stderr
    assert '(key %s): InvalidInput: refused by the test for %s' % (keys['bob'], keys['bob']) \
        in r.stderr
    assert run_command(report + [tmp_path / 'run1'], None).returncode == 2

    # The account policy: dave's key is gone and the archive of its finding is refused.
    refusing.clear()
    refusing.add(keys['dave'])
    hub.iam_client().delete_access_key(UserName='dave', AccessKeyId=keys['dave'])
    r = custodian_run(hub, tmp_path / 'run2', SHIPPED)
    assert r.returncode != 0
    after = findings(hub)
    assert state(after[keys['dave']]) == ('ACTIVE', 'FAILED')
    assert state(after[keys['bob']]) == ('ACTIVE', 'FAILED')
    assert ('resolve-access-key-findings: Security Hub refused 1 of 1 findings of %s: %s '
            '(key %s): InvalidInput' % (POLICY, posted[keys['dave']]['Id'], keys['dave'])) \
        in r.stderr
    assert run_command(report + [tmp_path / 'run2'], None).returncode == 2

    # Nothing refused: the same output folder reports no error.
    refusing.clear()
    r = run(hub, tmp_path / 'run2')
    assert state(findings(hub)[keys['dave']]) == ('ARCHIVED', 'PASSED')
    assert run_command(report + [tmp_path / 'run2'], None).returncode == 0
