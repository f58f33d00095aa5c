"""The installed commands (`custodian`, `c7n-org`, `c7n-unused-keys`), each run in a
process of its own, forked from one that has already imported them.

Importing c7n costs a command about 0.9 s of CPU before it does anything, and the suite
runs several hundred commands. The server here is an interpreter of the test venv,
started as every command is (the start-up hook of c7n_unused_keys.pth on, so the plugin
loads as it does in a user's install), that imports the commands' modules once. For each
command it forks: the child takes the command's stdout and stderr, its environment, its
folder and its argv, calls the console script's own entry point (the function that
`bin/custodian` calls) and exits with its status, after the interpreter's exit steps (its
threads joined, its atexit functions run).

A command whose environment changes what an interpreter loads at start gets a server
started with that environment (the PYTHONPATH of the tests' own start-up folders), or,
for any other such change (the spawn tests' PYTHONPATH, the plugin's off switch), a fresh
interpreter, as does every command under C7N_TEST_EXEC=1 in the suite's environment (the
suite passes either way).

Before it forks, the server also loads the resource types of the plugin's elements (and
so the plugin), and parses botocore's data files once (`SharedData`): a command would
parse botocore's endpoints and its service models again for every session it makes,
which was two thirds of a forked `custodian run`'s CPU.
"""
import array
import gc
import json
import os
import pickle
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from importlib.metadata import entry_points
from pathlib import Path

# The console scripts served (their entry points are found by name).
COMMANDS = ('custodian', 'c7n-org', 'c7n-unused-keys')
# The tests' own start-up folders, each a sitecustomize put on PYTHONPATH: the fault
# injection (which reads its settings when first used) and the failing action.
START_FOLDERS = ('faults', 'failing_action')
# Environment variables that change what an interpreter does at start or at import.
AT_START = ('PYTHON', 'C7N_UNUSED_KEYS_DISABLE', 'C7N_USE_STS_REGIONAL',
            # read when c7n.resources.aws is imported (its X-Ray tracer)
            'LAMBDA_TASK_ROOT', 'AWS_XRAY_DAEMON_ADDRESS')
READY_TIMEOUT = 60


def at_start(env) -> dict:
    return {k: v for k, v in env.items() if k.startswith(AT_START)}


def server_env() -> dict:
    """The test process's environment, as the commands get it (no AWS_ settings of its
    own): what the plain server starts with, and what each command's starts from."""
    return {k: v for k, v in os.environ.items() if not k.startswith('AWS_')}


def start_env(env):
    """The environment a server for the command environment `env` starts with, or None
    when no server stands in for a fresh interpreter: only the suite's own and those
    with one of START_FOLDERS on PYTHONPATH are served."""
    if env.get('C7N_TEST_EXEC', '') not in ('', '0'):
        return None
    base = server_env()
    wanted = at_start(env)
    for name in START_FOLDERS:
        folder = str(Path(__file__).resolve().parent / name)
        if dict(at_start(base), PYTHONPATH=folder) == wanted:
            return dict(base, PYTHONPATH=folder)
    return base if wanted == at_start(base) else None


def needs_exec(env) -> bool:
    """The command's environment `env` needs a fresh interpreter."""
    return start_env(env) is None


def entry_point(command):
    (ep,) = [e for e in entry_points(group='console_scripts') if e.name == command]
    return ep


# The resource types a server loads before it forks: those of the plugin's elements.
PRELOADED = ('aws.iam-user', 'aws.iam-access-key')


# -- botocore's data, parsed once -------------------------------------------------------

# The services whose files the suite's commands load; any other's are parsed by the
# command, as they would be anyway.
SERVICES = ('iam', 'sts', 's3', 'sqs', 'lambda', 'logs', 'securityhub', 'events',
            # Read when c7n's resource modules are imported (schemas from their shapes).
            'keyspaces', 'apigatewayv2', 'es', 'eks', 'bedrock')
# The kinds of a service's files that a client loads.
KINDS = ('service-2', 'service-2.sdk-extras', 'endpoint-rule-set-1', 'paginators-1',
         'paginators-1.sdk-extras', 'waiters-2')
# botocore's files that are not a service's.
TOP_LEVEL = ('endpoints', 'partitions', 'sdk-default-configuration', '_retry')


class SharedData:
    """botocore's data files, parsed by the server before it forks.

    Each botocore session has a loader of its own, and a command makes several (c7n
    makes one per account and region), each parsing the 0.5 MB endpoints file and every
    service model it uses again, and listing every service's folder: two thirds of a
    forked `custodian run`'s CPU. Here a command is handed, for each file, the server's
    parsed data the first time (untouched: the fork has its own copy of it) and a copy
    unpickled from it every later time, since botocore writes into what it loaded (the
    endpoints it resolves, S3's Expires shape). Either way a session gets data as a fresh
    parse gives it."""

    def __init__(self, services=SERVICES, kinds=KINDS, top_level=TOP_LEVEL):
        self.services = services
        self.kinds = kinds
        self.top_level = top_level
        self.parsed = {}      # a file's path less its extension -> its data, until handed
        self.pickles = {}     # the same path -> its data pickled
        self.listings = {}    # (search paths, type name) -> the services listed
        self.restore = []

    def load(self):
        import boto3
        from botocore import loaders
        file_loader = loaders.JSONFileLoader()
        # boto3's sessions search its own folder of resource models too.
        listers = [loaders.create_loader(), boto3.Session()._loader]
        data = listers[0].search_paths[-1]
        paths = [os.path.join(data, name) for name in self.top_level]
        for service in self.services:
            for version in os.listdir(os.path.join(data, service)):
                paths += [os.path.join(data, service, version, kind) for kind in self.kinds]
        for path in paths:
            parsed = file_loader.load_file(path)
            if parsed is not None:
                self.parsed[path] = parsed
                self.pickles[path] = pickle.dumps(parsed, protocol=pickle.HIGHEST_PROTOCOL)
        # botocore lists services only for a model it loads, never for its extras.
        models = [kind for kind in self.kinds if not kind.endswith('.sdk-extras')]
        for lister in listers:
            for kind in models:
                self.listings[(tuple(lister.search_paths), kind)] = \
                    lister.list_available_services(kind)

    def install(self):
        from botocore import loaders
        shared = self
        load_file = loaders.JSONFileLoader.load_file
        list_services = loaders.Loader.list_available_services

        def shared_load_file(file_loader, file_path):
            pickled = shared.pickles.get(file_path)
            if pickled is None:
                return load_file(file_loader, file_path)
            first = shared.parsed.pop(file_path, None)
            return pickle.loads(pickled) if first is None else first

        def shared_list_services(loader, type_name):
            found = shared.listings.get((tuple(loader.search_paths), type_name))
            return list_services(loader, type_name) if found is None else list(found)

        loaders.JSONFileLoader.load_file = shared_load_file
        loaders.Loader.list_available_services = shared_list_services
        self.restore = [(loaders.JSONFileLoader, 'load_file', load_file),
                        (loaders.Loader, 'list_available_services', list_services)]

    def uninstall(self):
        for owner, name, original in self.restore:
            setattr(owner, name, original)
        self.restore = []


# -- the server (its own process) -------------------------------------------------------

def serve(path: str):
    # The path a console script starts with: its own folder first, not this one's.
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [str(Path(sys.executable).parent)] + [
        p for p in sys.path if p not in ('', here)]
    mains = {name: entry_point(name).load() for name in COMMANDS}
    # The resource types nearly every command loads (and the plugin with them, through
    # its start-up hook): a command that uses them finds them loaded, as it would have
    # loaded them itself.
    from c7n.resources import load_resources
    load_resources(PRELOADED)
    shared = SharedData()
    shared.load()
    shared.install()
    # What the server made lives as long as it does: a command's collections need not
    # walk it (nor copy its pages by touching it).
    gc.freeze()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    # Children are reaped by the kernel; their status reaches the client through a pipe.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    print('ready', flush=True)
    # The test process holds this server's stdin: at its end, even a killed one's, the
    # server reads EOF there and stops.
    watch = selectors.DefaultSelector()
    watch.register(listener, selectors.EVENT_READ)
    watch.register(sys.stdin.fileno(), selectors.EVENT_READ)
    while True:
        ready = {key.fd for key, _ in watch.select()}
        if sys.stdin.fileno() in ready and not os.read(sys.stdin.fileno(), 1 << 10):
            os.unlink(path)
            os.rmdir(os.path.dirname(path))
            return
        if listener.fileno() not in ready:
            continue
        conn, _ = listener.accept()
        with conn:
            message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
            request = json.loads(message)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                watch.close()
                listener.close()
                conn.close()
                run_child(mains[request['command']], request, *fds)
            for fd in fds:
                os.close(fd)
            conn.sendall(b'%d' % pid)


def run_child(main, request, out_fd, err_fd, status_fd):
    """The command, as the console script runs it: `sys.exit(main())`."""
    # No input, as the suite gives none: a command that reads it meets its end.
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    os.close(out_fd)
    os.close(err_fd)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.chdir(request['cwd'])
    os.environ.clear()
    os.environ.update(request['env'])
    time.tzset()
    sys.argv = [request['argv0']] + request['args']
    code = 0
    try:
        code = main()
    except SystemExit as e:
        code = e.code
    except BaseException:  # noqa: BLE001 - reported as the interpreter reports it
        import traceback
        traceback.print_exc()
        code = 1
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    try:
        threading._shutdown()  # what the interpreter does first at exit
        import atexit
        atexit._run_exitfuncs()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        # What a process's exit status keeps of sys.exit's number.
        code &= 0xFF
        os.write(status_fd, b'%d' % code)
        os._exit(code)


# -- the client (the test process) ------------------------------------------------------

class Servers:
    """The servers of one test process (one per start environment: see `start_env`),
    each started on first use; all stopped at the session's end."""

    def __init__(self):
        self.servers = {}
        self.lock = threading.Lock()

    def run(self, command, args, cwd, env, timeout):
        start = start_env(env)
        key = tuple(sorted(at_start(start).items()))
        with self.lock:
            if key not in self.servers:
                self.servers[key] = Server(start)
        return self.servers[key].run(command, args, cwd, env, timeout)

    def stop(self):
        for server in self.servers.values():
            server.stop()
        self.servers.clear()


class Server:
    def __init__(self, env):
        self.env = env
        self.proc = None
        self.folder = None
        self.lock = threading.Lock()

    def start(self):
        self.folder = tempfile.mkdtemp(prefix='c7n-unused-keys-fork-')
        self.path = os.path.join(self.folder, 'socket')
        self.proc = subprocess.Popen(
            [sys.executable, '-c', 'import sys; sys.path.insert(0, %r); import command_fork; '
             'command_fork.serve(%r)' % (str(Path(__file__).resolve().parent), self.path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=self.env)
        line = read_line(self.proc.stdout, READY_TIMEOUT)
        if line != 'ready':
            self.stop()
            raise RuntimeError('the command server did not start: %r' % line)

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        if self.folder and os.path.isdir(self.folder):
            for name in os.listdir(self.folder):
                os.unlink(os.path.join(self.folder, name))
            os.rmdir(self.folder)
        self.folder = None

    def run(self, command, args, cwd, env, timeout):
        """(returncode, stdout, stderr) of `command args`; subprocess.TimeoutExpired when it
        runs longer than `timeout` (it is killed, as subprocess.run kills it)."""
        with self.lock:
            if self.proc is None:
                self.start()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        status_r, status_w = os.pipe()
        request = {'command': command, 'args': args, 'cwd': str(cwd), 'env': env,
                   'argv0': str(Path(sys.executable).parent / command)}
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.connect(self.path)
                socket.send_fds(conn, [json.dumps(request).encode()], [out_w, err_w, status_w])
                pid = int(conn.recv(32))
        finally:
            for fd in (out_w, err_w, status_w):
                os.close(fd)
        try:
            out, err = drain(out_r, err_r, timeout, pid, command, args)
            status = os.read(status_r, 32)
        finally:
            for fd in (out_r, err_r, status_r):
                os.close(fd)
        # No status written: the child was killed.
        return (int(status) if status else -signal.SIGKILL), out, err


def drain(out_r, err_r, timeout, pid, command, args):
    """Both pipes read to their end, as subprocess.run(capture_output=True) reads them."""
    chunks = {out_r: array.array('b'), err_r: array.array('b')}
    sel = selectors.DefaultSelector()
    for fd in chunks:
        sel.register(fd, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    with sel:
        while sel.get_map():
            left = deadline - time.monotonic()
            ready = sel.select(left) if left > 0 else []
            if not ready:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                raise subprocess.TimeoutExpired([command] + args, timeout)
            for key, _ in ready:
                data = os.read(key.fd, 1 << 16)
                if data:
                    chunks[key.fd].frombytes(data)
                else:
                    sel.unregister(key.fd)
    # Decoded as subprocess.run(text=True) decodes: universal newlines.
    return tuple(chunks[fd].tobytes().decode('utf-8', errors='replace')
                 .replace('\r\n', '\n').replace('\r', '\n') for fd in (out_r, err_r))


def read_line(stream, timeout) -> str:
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    with sel:
        if not sel.select(timeout):
            return ''
    return stream.readline().strip()
