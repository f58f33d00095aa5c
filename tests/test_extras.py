"""The local tooling needs the `[sandbox]` extra, and says so when it is missing."""
import sys

import pytest

from conftest import ROOT, run_command

HINT = "pip install 'c7n-unused-keys[sandbox]'"
# moto as if not installed: a None in sys.modules makes its import fail.
WITHOUT_MOTO = ("import sys; sys.modules['moto'] = None\n"
                "from c7n_unused_keys.cli import main\n"
                "sys.exit(main(sys.argv[1:]))\n")


@pytest.mark.parametrize('command', [
    ['sandbox', '-c', ROOT / 'custodian.yml'],
    ['demo', '-c', ROOT / 'custodian.yml', '--policies', ROOT / 'policies'],
    ['demo-lambda', '-c', ROOT / 'custodian.yml', '--policies', ROOT / 'lambda'],
])
def test_without_the_sandbox_extra_the_command_names_it(command, tmp_path):
    args = [sys.executable, '-c', WITHOUT_MOTO] + command
    if command[0].startswith('demo'):
        args += ['-s', tmp_path / 'demo']
    run = run_command(args, None, timeout=60)
    assert run.returncode == 1, run.stdout + run.stderr
    assert 'Traceback' not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith('c7n-unused-keys %s: ' % command[0])
    assert HINT in lines[0]
    assert 'moto' in lines[0]
    # The demo stops before it starts anything.
    assert not (tmp_path / 'demo').exists()


def test_the_plugin_never_imports_the_local_tooling():
    """The subpackage travels in a Lambda zip; registering the plugin leaves it alone."""
    code = ('import sys, c7n_unused_keys.register\n'
            'from c7n.resources.iam import User\n'
            'assert User.action_registry.get("retire-access-keys")\n'
            'found = sorted(m for m in sys.modules if m.startswith("c7n_unused_keys_sandbox")'
            ' or m.split(".")[0] == "moto")\n'
            'assert not found, found\n')
    run = run_command([sys.executable, '-c', code], None)
    assert run.returncode == 0, run.stderr
