"""Every shipped policy file passes `custodian validate`, and a misspelt `resource` in any
of them is refused, naming it."""
import pytest
import yaml

from conftest import ROOT, run_command

# Each folder is validated on its own: folders ship policies of the same names.
FOLDERS = [f for f in ('policies', 'lambda', 'mailer', 'securityhub') if (ROOT / f).is_dir()]
MISSPELT = {'aws.iam-access-key': 'aws.iam-acess-key', 'aws.iam-user': 'aws.iam-usr'}


def shipped(folder):
    files = sorted((ROOT / folder).glob('*.yml'))
    assert files, folder
    return files


def test_the_shipped_folders_are_all_there():
    assert {'policies', 'lambda', 'mailer'} <= set(FOLDERS)


@pytest.mark.parametrize('folder', FOLDERS)
def test_every_shipped_policy_file_validates(folder):
    files = shipped(folder)
    run = run_command(['custodian', 'validate'] + files, None)
    assert run.returncode == 0, run.stderr
    for path in files:
        assert 'Configuration valid: %s' % path in run.stderr


@pytest.mark.parametrize('folder', FOLDERS)
def test_a_misspelt_resource_in_a_shipped_file_is_refused(tmp_path, folder):
    """One copy per shipped policy, with only that policy's resource misspelt."""
    copies = {}
    for path in shipped(folder):
        policies = yaml.safe_load(path.read_text())['policies']
        for i, policy in enumerate(policies):
            wrong = MISSPELT.get(policy['resource'], policy['resource'] + 's')
            bad = [dict(p, resource=wrong) if j == i else p for j, p in enumerate(policies)]
            copy = tmp_path / ('%s-%d.yml' % (path.stem, i))
            copy.write_text(yaml.safe_dump({'policies': bad}))
            copies[copy] = (policy['name'], wrong)
    run = run_command(['custodian', 'validate'] + list(copies), None)
    assert run.returncode != 0
    for copy, (name, wrong) in copies.items():
        assert 'Configuration invalid: %s' % copy in run.stderr
        assert 'Error on policy:%s resource:%s' % (name, wrong) in run.stderr
    assert 'Configuration valid' not in run.stderr
