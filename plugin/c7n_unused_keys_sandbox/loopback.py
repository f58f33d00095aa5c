"""A server of this process on 127.0.0.1, served from a thread until it is stopped:
the emulator, Slack's stand-in, and the approval app in the demo and the tests."""
import contextlib
import threading


class Served:
    """Serve with `_serve(server, name)` from `start()`; `stop()` (or leaving the `with`
    block) shuts it down and waits for its thread."""
    _server = None
    _thread = None
    url = None

    def start(self):
        raise NotImplementedError

    def _serve(self, server, name: str):
        self._server = server
        self.url = 'http://127.0.0.1:%d' % server.server_address[1]
        # A short poll: shutdown() waits for it.
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                                        name=name, daemon=True)
        self._thread.start()

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class _Running(Served):
    def __init__(self, server, name):
        self._pending = (server, name)

    def start(self):
        self._serve(*self._pending)
        return self


@contextlib.contextmanager
def serving(server, name: str = 'server'):
    """Serve `server` (bound to 127.0.0.1) while in the block; its base URL."""
    with _Running(server, name) as running:
        yield running.url
