"""The names module is pure: any module, the report included, can take names from it."""
import sys

from conftest import run_command


def test_names_import_neither_c7n_nor_boto3():
    code = ('import sys, c7n_unused_keys.names\n'
            'found = sorted(m for m in sys.modules if m.split(".")[0] in '
            '("c7n", "boto3", "botocore"))\n'
            'assert not found, found\n')
    run = run_command([sys.executable, '-c', code], None)
    assert run.returncode == 0, run.stderr
