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
    ({'days': 30, 'max-days': 44, 'never-used-days': 60},
     'never-used-days (60) is above max-days (44)'),
    ({'days': 45, 'never-used-days': -1}, "On instance['never-used-days']"),
    ({'days': 45, 'never-used-days': 'soon'}, "On instance['never-used-days']"),
    ({'days': 45, 'source': 'cloudtrail'}, "On instance['source']"),
    ({'days': 45, 'status': 'active'}, "On instance['status']"),
    ({'days': 45, 'report-max-age': -1}, "On instance['report-max-age']"),
    ({'days': 45, 'report-max-age': 'old'}, "On instance['report-max-age']"),
    ({'days': 45, 'report-timeout': 0}, "On instance['report-timeout']"),
    ({'days': 45, 'exempt-tag': ''}, "On instance['exempt-tag']"),
    ({'days': 45, 'exempt-tag': 7}, "On instance['exempt-tag']"),
    ({'days': 45, 'colour': 'red'}, "'colour' was unexpected"),
    ({'days': 45, 'never_used_days': 30}, "'never_used_days' was unexpected"),
]


def write_policy(path, options):
    return write_policies(path, unused_keys_policy('bad-input', options))


@pytest.mark.parametrize('options,names', BAD, ids=[repr(o) for o, _ in BAD])
def test_validate_rejects_and_names_the_field(tmp_path, options, names):
    run = run_command(['custodian', 'validate', write_policy(tmp_path / 'p.yml', options)], None)
    assert run.returncode != 0
    assert names in run.stderr, run.stderr


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
