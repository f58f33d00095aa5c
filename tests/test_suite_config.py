"""The suite's own guard rails: a test that hangs fails instead of hanging the suite."""
import subprocess
import sys

from conftest import ROOT

HANGS = '''
import os


def test_hangs():
    r, w = os.pipe()
    os.read(r, 1)   # nothing ever writes: blocks until the timeout fires
'''


def pytest_run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, '-m', 'pytest', '-p', 'no:cacheprovider'] +
                          list(args), cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_project_config_sets_a_per_test_timeout():
    run = pytest_run('--collect-only', str(ROOT / 'tests' / 'test_suite_config.py'))
    assert run.returncode == 0, run.stdout + run.stderr
    assert 'timeout: 300.0s' in run.stdout, run.stdout


def test_a_hanging_test_fails_on_its_timeout(tmp_path):
    (tmp_path / 'test_hang.py').write_text(HANGS)
    # The project's config, with a short timeout for this one run.
    run = pytest_run('-c', str(ROOT / 'setup.cfg'), '--rootdir', str(tmp_path),
                     '-o', 'timeout=2', str(tmp_path / 'test_hang.py'), cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert 'Timeout' in run.stdout and '1 failed' in run.stdout, run.stdout


def test_no_test_module_imports_another():
    """Shared helpers live in conftest.py, helpers.py and notices.py."""
    import ast
    for path in sorted((ROOT / 'tests').glob('test_*.py')):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ''] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.startswith('test_') for n in names), (path.name, names)
