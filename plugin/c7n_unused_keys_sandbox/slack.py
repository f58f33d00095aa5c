"""Slack's side of the approval app, on loopback: a stand-in for Slack's Web API and
for the `response_url` a click carries, and clicks signed as Slack signs them.

`FakeSlack` records every message posted to a response URL, and answers
`usergroups.users.list` from the groups it was given. `signed_click` builds the request
Slack sends when a button is clicked (a form-encoded `payload`), signed with slack_sdk's
own `SignatureVerifier`, never with the app's code.
"""
import json
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Sequence, Tuple

from slack_sdk.signature import SignatureVerifier

from .loopback import Served


class FakeSlack(Served):
    def __init__(self, groups: Optional[Dict[str, Sequence[str]]] = None):
        self.groups = dict(groups or {})
        # (response URL path, the JSON posted), in order.
        self.responses: List[Tuple[str, dict]] = []
        self.api_calls: List[str] = []
        self._lock = threading.Lock()
        self._posted = threading.Condition(self._lock)
        self._next = 0

    def response_url(self) -> str:
        with self._lock:
            self._next += 1
            return '%s/response/%d' % (self.url, self._next)

    @property
    def api_url(self) -> str:
        return self.url + '/api/'

    def posted_to(self, url: str, wait: float = 0) -> List[dict]:
        """What was posted to a response URL; with `wait`, waits that many seconds at
        most for a first post (the app posts after it acknowledged the click)."""
        path = urllib.parse.urlparse(url).path
        with self._posted:
            self._posted.wait_for(lambda: any(p == path for p, _ in self.responses),
                                  timeout=wait)
            return [body for p, body in self.responses if p == path]

    def start(self) -> 'FakeSlack':
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
                path = self.path.partition('?')[0]
                if path.startswith('/response/'):
                    with fake._posted:
                        fake.responses.append((path, json.loads(body or b'{}')))
                        fake._posted.notify_all()
                    return self._json(200, {'ok': True})
                method = path[len('/api/'):]
                with fake._lock:
                    fake.api_calls.append(method)
                if method == 'usergroups.users.list':
                    form = dict(urllib.parse.parse_qsl(body.decode()))
                    group = form.get('usergroup')
                    if group not in fake.groups:
                        return self._json(200, {'ok': False, 'error': 'no_such_subteam'})
                    return self._json(200, {'ok': True, 'users': list(fake.groups[group])})
                self._json(200, {'ok': False, 'error': 'unknown_method'})

        self._serve(ThreadingHTTPServer(('127.0.0.1', 0), Handler), 'fake-slack')
        return self


def click_payload(action_id: str, value: str, clicker: str, response_url: str,
                  message: Optional[dict] = None) -> dict:
    """A block_actions payload as Slack sends it for a button of `message`."""
    return {
        'type': 'block_actions', 'team': {'id': 'T0SANDBOX'}, 'api_app_id': 'A0SANDBOX',
        'user': {'id': clicker, 'team_id': 'T0SANDBOX'}, 'response_url': response_url,
        'container': {'type': 'message'}, 'message': message or {'text': '', 'blocks': []},
        'actions': [{'type': 'button', 'action_id': action_id, 'value': value,
                     'block_id': 'c7n-unused-keys:' + (value.split(' ')[2]
                                                       if len(value.split(' ')) == 4 else ''),
                     'action_ts': '%.6f' % time.time()}]}


def signed(body: bytes, secret: str, timestamp: Optional[int] = None) -> Dict[str, str]:
    """The headers Slack adds to `body`: its timestamp and signature."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    sig = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {'X-Slack-Request-Timestamp': ts, 'X-Slack-Signature': sig,
            'Content-Type': 'application/x-www-form-urlencoded'}


def form_body(payload: dict) -> bytes:
    return urllib.parse.urlencode({'payload': json.dumps(payload)}).encode()


def post(url: str, body: bytes, headers: Dict[str, str], timeout: float = 20
         ) -> Tuple[int, str]:
    """(status, body) of a POST; an HTTP error is an answer too."""
    req = urllib.request.Request(url, data=body, headers=headers, method='POST')
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def click(url: str, secret: str, action_id: str, value: str, clicker: str,
          response_url: str, message: Optional[dict] = None,
          timestamp: Optional[int] = None) -> Tuple[int, str]:
    """Click a button: the signed request to the app at `url`."""
    body = form_body(click_payload(action_id, value, clicker, response_url, message))
    return post(url, body, signed(body, secret, timestamp))
