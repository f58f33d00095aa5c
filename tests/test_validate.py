"""Bad filter options: `custodian validate` fails and names the field."""
import pytest

from conftest import custodian_run, run_command, unused_keys_policy, write_policies

# (options, text that must appear in the error, naming the field)
BAD = [
    ({'days': 0}, "On instance['days']"),
    ({'days': -5}, "On instance['days']"),
    ({'days': '45'}, "On instance['days']"),
    ({'days': 4.5}, "On instance['days']"),
    ({}, "'days' is a required property"),
    ({'days': 45, 'max-days': 45}, 'max-days (45) must be greater than days (45)'),
    ({'days': 45, 'max-days': 30}, 'max-days (30) must be greater than days (45)'),
    ({'days': 45, 'max-days': 'lots'}, "On instance['max-days']"),
    ({'days': 1, 'max-days': 1}, "On instance['max-days']"),
    ({'days': 30, 'max-days': 44, 'never-used-days': 60},
     'never-used-days (60) is above max-days (44)'),
    ({'days': 45, 'never-used-days': -1}, "On instance['never-used-days']"),
    ({'days': 45, 'never-used-days': 'soon'}, "On instance['never-used-days']"),
    ({'days': 45, 'source': 'cloudtrail'}, "On instance['source']"),
    ({'days': 45, 'status': 'active'}, "On instance['status']"),
    ({'days': 45, 'status': 5}, "On instance['status']"),
    ({'days': 45, 'source': ['api']}, "On instance['source']"),
    ({'days': 45, 'report-max-age': -1}, "On instance['report-max-age']"),
    ({'days': 45, 'report-max-age': 'old'}, "On instance['report-max-age']"),
    ({'days': 45, 'report-timeout': 0}, "On instance['report-timeout']"),
    ({'days': 45, 'report-timeout': 'soon'}, "On instance['report-timeout']"),
    ({'days': 45, 'exempt-tag': ''}, "On instance['exempt-tag']"),
    ({'days': 45, 'exempt-tag': 7}, "On instance['exempt-tag']"),
    ({'days': 45, 'colour': 'red'}, "'colour' was unexpected"),
    ({'days': 45, 'never_used_days': 30}, "'never_used_days' was unexpected"),
]


def write_policy(path, options):
    return write_policies(path, unused_keys_policy('bad-input', options))


def rejected_and_nothing_touched(emu, tmp_path, path, names):
    """`custodian validate` names the field; `custodian run` stops before any request."""
    run = run_command(['custodian', 'validate', path], None)
    assert run.returncode != 0
    assert names in run.stderr, run.stderr
    before = emu.requests
    run = custodian_run(emu, tmp_path / 'out', path)
    assert run.returncode != 0 and emu.requests == before
    assert not list((tmp_path / 'out').glob('*/resources.json'))


@pytest.mark.parametrize('options,names', BAD, ids=[repr(o) for o, _ in BAD])
def test_validate_rejects_and_names_the_field(emulator, tmp_path, options, names):
    rejected_and_nothing_touched(emulator, tmp_path, write_policy(tmp_path / 'p.yml', options),
                                 names)


def test_a_good_policy_validates(tmp_path):
    options = {'days': 30, 'max-days': 44, 'never-used-days': 0, 'status': 'any',
               'source': 'api', 'report-max-age': 0.5, 'report-timeout': 60,
               'exempt-tag': 'keep-my-keys'}
    run = run_command(['custodian', 'validate', write_policy(tmp_path / 'p.yml', options)], None)
    assert run.returncode == 0, run.stderr


def test_a_bad_policy_makes_no_call(sandbox, tmp_path):
    """`custodian run` on a bad policy stops before any request reaches the emulator."""
    policy = write_policy(tmp_path / 'p.yml', {'days': 45, 'max-days': 10})
    before = requests_seen(sandbox)
    run = custodian_run(sandbox, tmp_path / 'out', policy)
    assert run.returncode != 0
    assert 'max-days (10) must be greater than days (45)' in run.stderr
    assert requests_seen(sandbox) == before
    assert not (tmp_path / 'out' / 'bad-input' / 'resources.json').exists()


def requests_seen(emu):
    return emu.requests


def retire_policy(action=None, marked=None, with_filter=True):
    filters = [{'type': 'unused-access-keys', 'days': 45}] if with_filter else []
    if marked is not None:
        filters = [{'or': filters + [dict({'type': 'marked-access-keys'}, **marked)]}]
    return {'name': 'bad-retire', 'resource': 'aws.iam-user', 'filters': filters,
            'actions': [dict({'type': 'retire-access-keys'}, **(action or {}))]}


def marked_top_level(options):
    policy = retire_policy()
    policy['filters'].append(dict({'type': 'marked-access-keys'}, **options))
    return policy


BAD_RETIRE = [
    (retire_policy({'delete-after-days': 0}), "On instance['delete-after-days']"),
    (retire_policy({'delete-after-days': -3}), "On instance['delete-after-days']"),
    (retire_policy({'delete-after-days': '30'}), "On instance['delete-after-days']"),
    (retire_policy({'delete-after-days': 1.5}), "On instance['delete-after-days']"),
    (retire_policy({'marker-tag-prefix': ''}), "On instance['marker-tag-prefix']"),
    (retire_policy({'marker-tag-prefix': 'has spaces!'}), "On instance['marker-tag-prefix']"),
    (retire_policy({'marker-tag-prefix': 7}), "On instance['marker-tag-prefix']"),
    (retire_policy({'delete_after_days': 30}), "'delete_after_days' was unexpected"),
    ({'name': 'bad-retire', 'resource': 'aws.iam-user',
      'filters': [{'type': 'unused-access-keys', 'days': 45, 'status': 'Active'}],
      'actions': [{'type': 'retire-access-keys'}]},
     'its unused-access-keys filter must keep matching deactivated keys'),
    (retire_policy(with_filter=False),
     'retire-access-keys acts on the keys that an unused-access-keys filter matched'),
    (retire_policy({'marker-tag-prefix': 'a'}, marked={'marker-tag-prefix': 'b'}),
     "marker-tag-prefix 'a' differs from that of the marked-access-keys filter ('b')"),
    # Inside an `or`, c7n names no field but shows the offending filter.
    (retire_policy(marked={'prefix': 'x'}), "{'prefix': 'x', 'type': 'marked-access-keys'}"),
    (marked_top_level({'marker-tag-prefix': 'x y'}), "On instance['marker-tag-prefix']"),
    (marked_top_level({'prefix': 'x'}), "'prefix' was unexpected"),
]


@pytest.mark.parametrize('policy,names', BAD_RETIRE, ids=range(len(BAD_RETIRE)))
def test_validate_rejects_bad_action_options(emulator, tmp_path, policy, names):
    rejected_and_nothing_touched(emulator, tmp_path, write_policies(tmp_path / 'p.yml', policy),
                                 names)


def test_a_bad_retire_policy_touches_nothing(sandbox, tmp_path):
    c = sandbox.iam_client()
    c.create_user(UserName='stale')
    key = c.create_access_key(UserName='stale')['AccessKey']['AccessKeyId']
    sandbox.backdate_key('123456789012', key, created_days=300, used_days=200)
    before = requests_seen(sandbox)
    path = write_policies(tmp_path / 'p.yml', retire_policy({'delete-after-days': 0}))
    run = custodian_run(sandbox, tmp_path / 'out', path)
    assert run.returncode != 0 and requests_seen(sandbox) == before
    assert sandbox.backend('123456789012').users['stale'].access_keys[0].status == 'Active'
