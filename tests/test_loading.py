"""How stock commands find the plugin: the .pth hook, its switch, its cost, and both installs."""
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import (DEFAULT_ACCOUNT, ROOT, custodian_run, run_command,
                      unused_keys_policy, write_policies)

PY = sys.executable


def test_schema_shows_the_docstring_with_its_yaml_example():
    run = run_command(['custodian', 'schema', 'aws.iam-user.filters.unused-access-keys'], None)
    assert run.returncode == 0, run.stderr
    assert 'type: unused-access-keys' in run.stdout
    assert 'days: 45' in run.stdout and 'never-used-days: 30' in run.stdout
    for option in ('days', 'never-used-days', 'max-days', 'status', 'source',
                   'report-max-age-hours', 'exempt-tag'):
        assert option in run.stdout


POLICY_FILES = sorted((ROOT / 'policies').glob('*.yml'))
# Shipped outside policies/: they need Security Hub enabled.
SECURITYHUB_FILES = sorted((ROOT / 'securityhub').glob('*.yml'))


def test_custodian_validate_accepts_the_shipped_policies():
    assert POLICY_FILES and SECURITYHUB_FILES
    run = run_command(['custodian', 'validate'] + POLICY_FILES + SECURITYHUB_FILES, None)
    assert run.returncode == 0, run.stderr


def test_disabling_the_hook_unloads_the_plugin(tmp_path):
    off = {'C7N_UNUSED_KEYS_DISABLE': '1'}
    run = run_command(['custodian', 'validate'] + POLICY_FILES, None, extra_env=off)
    assert run.returncode != 0
    # The shipped policies name the plugin's source first, then its filter.
    assert "On instance['source']" in run.stderr and 'authorization-details' in run.stderr
    path = write_policies(tmp_path / 'p.yml', unused_keys_policy('filter-only', {'days': 45}))
    run = run_command(['custodian', 'validate', path], None, extra_env=off)
    assert run.returncode != 0
    assert "{'days': 45, 'type': 'unused-access-keys'}" in run.stderr
    assert 'is not valid under any of the given schemas' in run.stderr
    assert run_command(['custodian', 'validate', path], None).returncode == 0


def test_import_registers_the_plugin_without_the_hook():
    code = ('import c7n_unused_keys.register\n'
            'from c7n.resources.iam import User\n'
            'assert User.filter_registry.get("unused-access-keys") is not None\n'
            'import sys\n'
            'assert not any(type(f).__name__ == "PluginFinder" for f in sys.meta_path)\n')
    run = run_command([PY, '-c', code], None, extra_env={'C7N_UNUSED_KEYS_DISABLE': '1'})
    assert run.returncode == 0, run.stderr


def python_passes(code, env=None):
    """`code` in a fresh interpreter of the test venv (the .pth hook on) exits 0."""
    run = run_command([PY, '-c', code], None, extra_env=env)
    assert run.returncode == 0, run.stderr


def test_the_package_the_pure_modules_and_the_report_need_neither_c7n_nor_boto3(tmp_path):
    """`c7n-unused-keys report` on a local folder keeps its start-up time: of the report
    package, only its s3 module imports boto3, and only for an s3:// output."""
    folder = tmp_path / 'out' / 'unused-keys-report'
    folder.mkdir(parents=True)
    (folder / 'metadata.json').write_text(json.dumps({
        'execution': {'id': 'run-1', 'start': 1764000000.0},
        'policy': {'name': 'unused-keys-report', 'resource': 'iam-user'},
        'metrics': [{'MetricName': 'ResourceCount', 'Value': 1}]}))
    (folder / 'resources.json').write_text(json.dumps([{
        'UserName': 'alice', 'c7n:unused-access-keys': [
            {'AccessKeyId': 'AKIAEXAMPLE0000ALICE', 'Status': 'Active', 'IdleDays': 120}]}]))
    code = ('import sys, c7n_unused_keys, c7n_unused_keys.decide, c7n_unused_keys.lifecycle, '
            'c7n_unused_keys.markers, c7n_unused_keys.model, c7n_unused_keys.report, '
            'c7n_unused_keys.cli\n'
            'code = c7n_unused_keys.cli.main(["report", %r, "--format", "csv"])\n'
            'assert code == 0, code\n'
            'found = sorted(m for m in sys.modules if m.split(".")[0] in '
            '("c7n", "boto3", "botocore"))\n'
            'assert not found, found\n'
            'assert "c7n_unused_keys.report.s3" not in sys.modules\n' % str(tmp_path / 'out'))
    run = run_command([PY, '-c', code], None)
    assert run.returncode == 0, run.stderr
    assert 'AKIAEXAMPLE0000ALICE' in run.stdout and 'alice' in run.stdout, run.stdout


def test_a_module_of_the_plugin_imported_by_hand_meets_no_half_made_plugin():
    """filters imports c7n, which fires the hook while filters is half-made."""
    code = ('import warnings; warnings.simplefilter("error", RuntimeWarning)\n'
            'import c7n_unused_keys.filters, c7n_unused_keys.register\n'
            'from c7n.resources.iam import User\n'
            'assert User.action_registry.get("retire-access-keys")\n')
    python_passes(code)


def test_the_hook_does_not_import_c7n_by_itself():
    code = 'import sys; assert "c7n" not in sys.modules and "boto3" not in sys.modules'
    code += '; assert any(type(f).__name__ == "PluginFinder" for f in sys.meta_path)'
    python_passes(code)


def hook_import_us(env=None):
    """Microseconds of `c7n_unused_keys_hook` in `python -X importtime -c pass`."""
    run = run_command([PY, '-X', 'importtime', '-c', 'pass'], None, extra_env=env)
    found = re.findall(r'import time:\s+\d+ \|\s+(\d+) \|\s+c7n_unused_keys_hook', run.stderr)
    assert found, run.stderr
    return int(found[0])


def test_start_up_cost_of_the_hook_is_under_5_ms():
    # The least of ten runs: other tests run beside this one.
    assert min(hook_import_us() for _ in range(10)) < 5000


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp('wheel')
    proc = subprocess.run([PY, '-m', 'pip', 'wheel', '--quiet', '--no-deps', '-w', out,
                           ROOT], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return next(Path(out).glob('c7n_unused_keys-*.whl'))


def test_the_wheel_ships_the_pth_at_its_root(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert 'c7n_unused_keys.pth' in names and 'c7n_unused_keys_hook.py' in names
    assert zipfile.ZipFile(wheel).read('c7n_unused_keys.pth').strip() == \
        b'import c7n_unused_keys_hook'


def test_a_regular_install_loads_the_plugin_through_its_pth(wheel, tmp_path):
    """`pip install .` as a site directory: its .pth runs and the hook registers the filter."""
    target = tmp_path / 'site'
    proc = subprocess.run([PY, '-m', 'pip', 'install', '--quiet', '--no-deps', '--target',
                           target, wheel], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (target / 'c7n_unused_keys.pth').exists()
    code = ('import site, sys\n'
            'site.addsitedir(%r)\n'
            'import c7n.resources.iam as iam, c7n_unused_keys\n'
            'assert c7n_unused_keys.__file__.startswith(%r), c7n_unused_keys.__file__\n'
            'assert iam.User.filter_registry.get("unused-access-keys")\n') % (
                str(target), str(target))
    # -S: no site-packages .pth of the dev install; c7n comes from the path we add.
    dev_site = [p for p in sys.path if p.endswith('site-packages')][0]
    run = run_command([PY, '-S', '-c', 'import sys; sys.path.append(%r); exec(%r)' % (
        dev_site, code)], None)
    assert run.returncode == 0, run.stderr


def declared(source):
    from c7n.config import Config
    from c7n.policy import Policy
    import c7n_unused_keys.register  # noqa: F401
    return set(Policy(unused_keys_policy('perms', {'days': 45, 'source': source}),
                      Config.empty()).get_permissions())


def calls(emu, tmp_path, source):
    """The IAM actions one `custodian run` of the filter made, seen at the emulator."""
    out = tmp_path / source
    out.mkdir(exist_ok=True)
    policy = write_policies(out / 'p.yml', unused_keys_policy('perms', {
        'days': 45, 'source': source}))
    emu.count_operations, emu.operations = True, {}
    try:
        run = custodian_run(emu, out / str(len(list(out.iterdir()))), policy)
    finally:
        emu.count_operations = False
    assert run.returncode == 0, run.stderr
    # c7n asks STS who it runs as; GetCallerIdentity needs no permission.
    return {'iam:' + op for op in emu.operations if op != 'GetCallerIdentity'}


def add_user(emu, name, **dates):
    c = emu.iam_client()
    c.create_user(UserName=name)
    key = c.create_access_key(UserName=name)['AccessKey']['AccessKeyId']
    emu.backdate_key(DEFAULT_ACCOUNT, key, **dates)


def test_permissions_are_exactly_the_calls_made(sandbox, tmp_path):
    """Each source's declared permissions against the calls a real run makes: every
    declared action is called, and nothing undeclared is."""
    add_user(sandbox, 'idle', created_days=300, used_days=200)
    add_user(sandbox, 'recent', created_days=300, used_days=1)
    add_user(sandbox, 'never', created_days=100, never_used=True)
    assert calls(sandbox, tmp_path, 'api') == declared('api')
    # credential-report asks GetAccessKeyLastUsed only for keys the report cannot know:
    # a second run after a key created since the report was generated.
    first = calls(sandbox, tmp_path, 'credential-report')
    add_user(sandbox, 'late')
    assert first | calls(sandbox, tmp_path, 'credential-report') == \
        declared('credential-report')
    # A report older than four hours is generated afresh.
    sandbox.backdate_report(DEFAULT_ACCOUNT, 1)
    assert calls(sandbox, tmp_path, 'hybrid') == declared('hybrid')


def test_a_broken_plugin_warns_and_leaves_stock_c7n_working(tmp_path):
    shadow = tmp_path / 'c7n_unused_keys'
    shadow.mkdir()
    (shadow / '__init__.py').write_text('raise ImportError("simulated breakage")\n')
    code = ('import c7n.resources.iam as iam\n'
            'assert iam.User.filter_registry.get("unused-access-keys") is None\n'
            'assert iam.User.filter_registry.get("access-key") is not None\n')
    run = run_command([PY, '-c', code], None, extra_env={'PYTHONPATH': str(tmp_path)})
    assert run.returncode == 0, run.stderr
    assert "c7n-unused-keys failed to load: ImportError('simulated breakage')" in run.stderr


def test_the_wrapped_loader_can_be_copied():
    code = ('import copy, c7n.resources.iam as iam\n'
            'loader = iam.__spec__.loader\n'
            'assert type(loader).__name__ == "_RegisteringLoader"\n'
            'copy.copy(loader)\n')
    run = run_command([PY, '-c', code], None)
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize('name', ['UnusedAccessKeys', 'MarkedAccessKeys', 'RetireAccessKeys'])
def test_each_docstring_opens_with_a_valid_policy(tmp_path, name):
    import textwrap
    import c7n_unused_keys.actions as actions
    import c7n_unused_keys.filters as filters
    cls = getattr(filters, name, None) or getattr(actions, name)
    doc = cls.__doc__
    block = doc.split('.. code-block:: yaml', 1)[1].split('\n\n', 2)[1]
    assert doc.index(':example:') < 200
    path = tmp_path / 'example.yml'
    path.write_text(textwrap.dedent(block))
    run = run_command(['custodian', 'validate', path], None)
    assert run.returncode == 0, (block, run.stderr)


def test_no_module_of_either_package_imports_itself_back():
    """No import cycle, counting imports inside functions too."""
    import ast
    graph = {}
    for package in ('c7n_unused_keys', 'c7n_unused_keys_sandbox'):
        for path in (ROOT / 'plugin' / package).glob('*.py'):
            name = '%s.%s' % (package, path.stem)
            found = set()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom):
                    base = node.module or ''
                    if node.level:
                        base = '.'.join([package] + ([base] if base else []))
                    targets = [base] + ['%s.%s' % (base, a.name) for a in node.names]
                elif isinstance(node, ast.Import):
                    targets = [a.name for a in node.names]
                else:
                    continue
                found |= {t for t in targets if t.startswith('c7n_unused_keys')}
            graph[name] = found - {name}
    graph = {k: {t for t in v if t in graph} for k, v in graph.items()}

    def reaches(start, goal, seen):
        return any(t == goal or (t not in seen and reaches(t, goal, seen | {t}))
                   for t in graph[start])
    assert graph['c7n_unused_keys_sandbox.serve'] >= {'c7n_unused_keys_sandbox.emulator'}
    cycles = sorted(m for m in graph if reaches(m, m, {m}))
    assert cycles == [], cycles
