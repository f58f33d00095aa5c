"""Shared fixtures: the emulator server on 127.0.0.1 and a way to run the real commands."""
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import yaml
import pytest

# Registered here, before a test module imports a single plugin module by hand (which
# the start-up hook then leaves alone, as it would meet that module half-made).
import c7n_unused_keys.register  # noqa: F401
import command_fork
from c7n_unused_keys_sandbox.emulator import DEFAULT_ACCOUNT, Emulator

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
COMMAND_TIMEOUT = 240


# The servers that fork the commands (tests/command_fork.py) of this test process.
COMMANDS = command_fork.Servers()


@pytest.fixture(scope='session', autouse=True)
def command_server():
    yield COMMANDS
    COMMANDS.stop()


@pytest.fixture(scope='session')
def emulator():
    with Emulator() as emu:
        yield emu


@pytest.fixture
def sandbox(emulator):
    """The emulator with empty state before and after the test."""
    emulator.reset()
    yield emulator
    emulator.reset()


def iam_client(emu: Emulator, account: str = DEFAULT_ACCOUNT):
    return emu.iam_client(account)


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def run_command(args, emu: Optional[Emulator], cwd=ROOT, extra_env=None,
                timeout=COMMAND_TIMEOUT) -> Run:
    """Run an installed console script (custodian, c7n-org) in a process of its own:
    forked from the command server, or a fresh interpreter where a fork cannot stand in
    for one (tests/command_fork.py)."""
    env = command_fork.server_env()
    env['HOME'] = os.environ.get('HOME', '/tmp')
    if emu is not None:
        env.update(emu.env())
    env.update(extra_env or {})
    if args[0] in command_fork.COMMANDS and not command_fork.needs_exec(env):
        return Run(*COMMANDS.run(args[0], [str(a) for a in args[1:]], cwd, env, timeout))
    exe = str(BIN / args[0]) if (BIN / args[0]).exists() else args[0]
    proc = subprocess.run([exe] + [str(a) for a in args[1:]], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def unused_keys_policy(name: str, options: dict) -> dict:
    """A policy with one `unused-access-keys` filter and no action."""
    return {'name': name, 'resource': 'aws.iam-user',
            'filters': [dict({'type': 'unused-access-keys'}, **options)]}


def write_policies(path: Path, *policies: dict) -> Path:
    path.write_text(yaml.safe_dump({'policies': list(policies)}))
    return path


def custodian_run(emu, out, policy, *extra, env=None) -> Run:
    """`custodian run` with the resource cache off, so runs never see stale users."""
    return run_command(['custodian', 'run', '-s', out, '--cache-period', '0'] + list(extra) +
                       [policy], emu, extra_env=env)


def faults(spec: str) -> dict:
    """Environment that loads tests/faults into a subprocess (see its docstring)."""
    return {'PYTHONPATH': str(ROOT / 'tests' / 'faults'), 'C7N_TEST_FAULTS': spec,
            'C7N_TEST_SLEEP_SCALE': '0.05'}
