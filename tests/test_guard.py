"""The example guard (guard/): what can be proven without an IAM condition evaluator.

The emulator does not evaluate IAM conditions, so no test here shows the guard denies a
request. These show that both documents are well formed, deny only real IAM actions
with valid condition operators, cover every tag key the plugin writes or reads, and
spare the role the policies run as.
"""
import json
from fnmatch import fnmatchcase

import pytest
import yaml

from c7n_unused_keys import markers
from c7n_unused_keys.approvals import config
from c7n_unused_keys.names import EXEMPT_TAG, MARKER_PREFIX
from conftest import ROOT

FILES = [ROOT / 'guard' / 'scp.json', ROOT / 'guard' / 'iam-policy.json']
KEY = 'AKIAIOSFODNN7EXAMPLE'
# Every tag key the plugin's decisions rest on, built by the plugin's own code.
PLUGIN_TAGS = [EXEMPT_TAG, markers.deactivated_tag(MARKER_PREFIX, KEY),
               markers.reactivated_tag(MARKER_PREFIX, KEY)]
BASE_OPERATORS = {
    'StringEquals', 'StringNotEquals', 'StringEqualsIgnoreCase', 'StringNotEqualsIgnoreCase',
    'StringLike', 'StringNotLike', 'NumericEquals', 'NumericNotEquals', 'NumericLessThan',
    'NumericLessThanEquals', 'NumericGreaterThan', 'NumericGreaterThanEquals', 'DateEquals',
    'DateNotEquals', 'DateLessThan', 'DateLessThanEquals', 'DateGreaterThan',
    'DateGreaterThanEquals', 'Bool', 'BinaryEquals', 'IpAddress', 'NotIpAddress',
    'ArnEquals', 'ArnLike', 'ArnNotEquals', 'ArnNotLike', 'Null'}


def valid_operator(op):
    """IAM's condition operators, with an optional set qualifier and IfExists suffix."""
    qualifier, _, base = op.rpartition(':')
    if qualifier not in ('', 'ForAnyValue', 'ForAllValues'):
        return False
    return base in BASE_OPERATORS or (base.endswith('IfExists') and
                                      base[:-len('IfExists')] in BASE_OPERATORS - {'Null'})


def statement(path):
    doc = json.loads(path.read_text())
    assert doc['Version'] == '2012-10-17'
    [st] = doc['Statement']
    return st


def iam_operations():
    import botocore.session
    return set(botocore.session.get_session().get_service_model('iam').operation_names)


@pytest.mark.parametrize('path', FILES, ids=[p.name for p in FILES])
def test_denies_real_tag_actions_with_valid_operators(path):
    st = statement(path)
    assert st['Effect'] == 'Deny' and st['Resource'] == '*'
    assert st['Action'] == ['iam:TagUser', 'iam:UntagUser']
    assert {a.split(':', 1)[1] for a in st['Action']} <= iam_operations()
    assert all(valid_operator(op) for op in st['Condition']), st['Condition']
    # aws:TagKeys holds several values: a bare StringLike would need every key to match.
    assert set(st['Condition']) == {'ForAnyValue:StringLike', 'ArnNotLike'}
    assert set(st['Condition']['ForAnyValue:StringLike']) == {'aws:TagKeys'}
    assert set(st['Condition']['ArnNotLike']) == {'aws:PrincipalArn'}


def test_the_operator_check_is_not_vacuous():
    assert valid_operator('ForAnyValue:StringLike') and valid_operator('ArnNotLikeIfExists')
    assert not valid_operator('ForAnyValue:StringStartsWith')
    assert not valid_operator('AnyValue:StringLike') and not valid_operator('NullIfExists')


@pytest.mark.parametrize('path', FILES, ids=[p.name for p in FILES])
def test_covers_every_tag_the_plugin_decides_by_and_no_other(path):
    patterns = statement(path)['Condition']['ForAnyValue:StringLike']['aws:TagKeys']
    for tag in PLUGIN_TAGS:
        assert any(fnmatchcase(tag, p) for p in patterns), tag
    for tag in ('Team', 'owner', 'maid_status', 'c7n_status', 'custodian-cleanup'):
        assert not any(fnmatchcase(tag, p) for p in patterns), tag


@pytest.mark.parametrize('path', FILES, ids=[p.name for p in FILES])
def test_spares_the_policies_role_the_approvals_role_and_an_admin_role_only(path):
    spared = statement(path)['Condition']['ArnNotLike']['aws:PrincipalArn']
    roles = [a['role'] for a in yaml.safe_load((ROOT / 'custodian.yml').read_text())
             ['accounts']]
    assert roles
    approvals = config.ACCOUNT_ROLE.replace('{account_id}', '111111111111')
    for arn in roles + [approvals, 'arn:aws:iam::999999999999:role/IdentityAdmin']:
        assert any(fnmatchcase(arn, p) for p in spared), arn
    for arn in ('arn:aws:iam::111111111111:user/mallory',
                'arn:aws:iam::111111111111:role/Developer',
                'arn:aws:iam::111111111111:role/c7n-unused-keys-copy',
                'arn:aws:iam::111111111111:role/c7n-unused-keys-approvals-app'):
        assert not any(fnmatchcase(arn, p) for p in spared), arn


def test_the_scp_and_the_iam_policy_carry_the_same_statement():
    assert statement(FILES[0]) == statement(FILES[1])
