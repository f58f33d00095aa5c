"""The suite's own guard rails: a test that hangs fails instead of hanging the suite."""
import os
import re
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


def test_a_forked_command_answers_as_a_fresh_interpreter_does(tmp_path):
    """tests/command_fork.py: the same argv and environment give the same exit status,
    output and errors forked as executed; the plugin is loaded either way; a command
    that outlives its timeout is killed."""
    import command_fork
    from conftest import COMMANDS, faults, run_command
    bad = tmp_path / 'bad.yml'
    bad.write_text('policies:\n- name: p\n  resource: aws.iam-user\n  filters:\n'
                   '  - {type: unused-access-keys, days: -1}\n')
    commands = [['custodian', 'schema', 'aws.iam-user.filters.unused-access-keys'],
                # Every element registered on the types the server loaded before forking.
                ['custodian', 'schema', 'aws.iam-user'],
                ['custodian', 'schema', 'aws.iam-access-key'],
                ['custodian', 'validate', bad],
                ['c7n-unused-keys', 'report', tmp_path / 'nothing-here'],
                ['c7n-org', 'run', '--help']]

    def answer(run):
        # Log lines differ in their time only.
        return run.returncode, run.stdout, re.sub(r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}', 'T',
                                                  run.stderr)
    for args in commands:
        forked = run_command(args, None)
        fresh = run_command(args, None, extra_env={'C7N_TEST_EXEC': '1'})
        assert answer(forked) == answer(fresh), args
    assert 'never-used-days' in run_command(commands[0], None).stdout
    assert 'retire-access-keys' in run_command(commands[1], None).stdout
    assert run_command(commands[3], None).returncode != 0
    assert command_fork.needs_exec(dict(command_fork.server_env(), PYTHONPATH=str(tmp_path)))
    assert command_fork.needs_exec(dict(command_fork.server_env(), C7N_UNUSED_KEYS_DISABLE='1'))
    assert not command_fork.needs_exec(command_fork.server_env())
    assert not command_fork.needs_exec(dict(command_fork.server_env(), **faults('')))
    assert not command_fork.needs_exec(dict(command_fork.server_env(), PYTHONPATH=str(
        ROOT / 'tests' / 'failing_action')))
    # A policy file nothing ever writes: the command blocks on it until it is killed.
    fifo = tmp_path / 'never-written.yml'
    os.mkfifo(fifo)
    try:
        COMMANDS.run('custodian', ['validate', str(fifo)], ROOT, command_fork.server_env(), 2)
    except subprocess.TimeoutExpired:
        pass
    else:
        raise AssertionError('the command was not stopped at its timeout')


def test_a_forked_run_finds_what_a_fresh_one_finds(sandbox, tmp_path):
    """A run against the emulator, whose sessions load botocore's endpoints and models
    (handed out by the server, see the next test), forked and executed."""
    from conftest import custodian_run, read_json
    from helpers import RETIRE, RETIRE_NAME, seed
    seed(sandbox)
    found = {}
    for name, env in (('forked', None), ('fresh', {'C7N_TEST_EXEC': '1'})):
        run = custodian_run(sandbox, tmp_path / name, RETIRE, '--dryrun', env=env)
        assert run.returncode == 0, run.stderr
        found[name] = sorted(read_json(tmp_path / name / RETIRE_NAME / 'resources.json'),
                             key=lambda r: r['UserName'])
    assert found['forked'] == found['fresh']
    assert [r['UserName'] for r in found['fresh']] == ['keeper', 'never-used', 'stale']


def test_each_session_gets_botocore_data_as_a_fresh_parse_gives_it():
    """command_fork.SharedData: a file's first load is the server's parsed data (the fork's
    own copy), every later one a copy of it as parsed, whatever an earlier session wrote
    into its own; the services listed are those botocore lists."""
    import botocore.session
    import command_fork
    from botocore import loaders
    original = loaders.JSONFileLoader.load_file, loaders.Loader.list_available_services
    shared = command_fork.SharedData(services=('sts',))
    shared.load()
    (path,) = [p for p in shared.pickles if p.endswith(os.path.join('sts', '2011-06-15',
                                                                    'service-2'))]
    fresh = loaders.JSONFileLoader().load_file(path)
    parsed = shared.parsed[path]
    listed = original[1](loaders.create_loader(), 'service-2')
    shared.install()
    try:
        sessions = [botocore.session.Session().get_component('data_loader') for _ in range(2)]
        first = sessions[0].load_service_model('sts', 'service-2')
        assert first is parsed and first == fresh
        first['metadata']['serviceId'] = 'written by an earlier session'
        second = sessions[1].load_service_model('sts', 'service-2')
        assert second == fresh and second is not first and type(second) is type(fresh)
        assert (tuple(sessions[1].search_paths), 'service-2') in shared.listings
        assert sessions[1].list_available_services('service-2') == listed
        assert 'sts' in listed and 'iam' in listed
    finally:
        shared.uninstall()
    assert (loaders.JSONFileLoader.load_file, loaders.Loader.list_available_services) == \
        original


def test_a_command_server_stops_when_its_test_process_ends(tmp_path):
    """A test process that is killed (no session teardown) leaves no server behind: the
    server reads the end of its stdin, which the test process held."""
    code = ('import os, signal, sys; sys.path.insert(0, %r)\n'
            'import command_fork\n'
            'servers = command_fork.Servers()\n'
            'code, out, err = servers.run("c7n-unused-keys", ["report", %r], %r, '
            'command_fork.server_env(), 60)\n'
            'assert code == 2, (code, err)\n'
            '(server,) = servers.servers.values()\n'
            'print(server.proc.pid, server.folder, flush=True)\n'
            'os.kill(os.getpid(), signal.SIGKILL)\n'
            % (str(ROOT / 'tests'), str(tmp_path / 'nothing'), str(ROOT)))
    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == -9, run.stderr
    pid, folder = run.stdout.split()
    # The server is not this test's child: its end is awaited through a pidfd.
    try:
        fd = os.pidfd_open(int(pid))
    except ProcessLookupError:
        fd = None  # gone already
    if fd is not None:
        import select
        try:
            assert select.select([fd], [], [], 60)[0], 'the server is still running'
        finally:
            os.close(fd)
    assert not os.path.exists(folder)
