"""`c7n-unused-keys approvals serve`: the app on a local port, served as Bolt's own
development server serves it (http.server calling `App.dispatch`), each request screened
first and its body never read past the size allowed."""
import json
import logging
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from slack_bolt.request import BoltRequest

from . import config as approvals_config
from .app import MAX_BODY, RequestScreen, build_app
from .secrets import read_secret

log = logging.getLogger('c7n_unused_keys.approvals')
PATH = '/slack/events'
# An oversized body is read off up to this many bytes before it is refused.
DRAIN_LIMIT = 16 * 1024 * 1024


def make_server(app, screen: RequestScreen, host: str = '127.0.0.1', port: int = 0
                ) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):
            log.debug('approvals: %s', format % args)

        def _answer(self, status: int, body: str, headers=None):
            data = body.encode()
            self.send_response(status)
            for k, v in (headers or {'Content-Type': 'text/plain; charset=utf-8'}).items():
                self.send_header(k, v)
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            if self.path.partition('?')[0] != PATH:
                return self._answer(404, 'not found: the app answers POST %s\n' % PATH)
            try:
                length = int(self.headers.get('Content-Length') or 0)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY:
                self.close_connection = True
                # Read off (never kept) up to a bound, so that the client hears the answer
                # rather than a reset; beyond it, the connection is cut.
                left = length if 0 < length <= DRAIN_LIMIT else 0
                while left > 0:
                    left -= len(self.rfile.read(min(left, 65536)) or b'x' * left)
                why = 'request body over %d bytes (%s)' % (MAX_BODY, length)
                log.warning('approvals: refused a request: %s', why)
                return self._answer(413, 'refused: %s\n' % why)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            refused = screen.check(headers, body)
            if refused:
                log.warning('approvals: refused a request: %s', refused[1])
                return self._answer(refused[0], 'refused: %s\n' % refused[1])
            resp = app.dispatch(BoltRequest(body=body.decode('utf-8'),
                                            query=self.path.partition('?')[2],
                                            headers={k: [v] for k, v in headers.items()}))
            self._answer(resp.status, resp.body if isinstance(resp.body, str)
                         else json.dumps(resp.body),
                         {k: v[0] for k, v in resp.headers.items()})

    return ThreadingHTTPServer((host, port), Handler)


def run_serve(path: str, host: str, port: int) -> int:
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(message)s')
    try:
        cfg = approvals_config.load(path)
        secret = read_secret(cfg.signing_secret, 'signing-secret')
        token = read_secret(cfg.bot_token, 'bot-token')
    except approvals_config.ConfigError as e:
        print('c7n-unused-keys approvals serve: %s' % e, file=sys.stderr)
        return 2
    server = make_server(build_app(cfg, secret, token), RequestScreen(secret), host, port)
    print('approvals: serving %d accounts on http://%s:%d%s' % (
        len(cfg.accounts), host, server.server_address[1], PATH), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
