"""The approval app as a Lambda function behind a function URL:
`c7n_unused_keys.approvals.handler.run`.

Its zip holds the config (`approvals.json`, written by `approvals deploy`: no secret in
it, only where each one is kept). The signing secret and the bot token are read from
Secrets Manager or SSM when the function starts, and kept in memory only.
"""
import base64
import json
import logging
import os

from slack_bolt.adapter.aws_lambda.handler import to_aws_response, to_bolt_request

from . import config as approvals_config
from .config import CONFIG_FILE
from .app import MAX_BODY, RequestScreen, build_app
from .secrets import read_secret

log = logging.getLogger('c7n_unused_keys.approvals')
logging.getLogger().setLevel(logging.INFO)
_started = {}


def _start():
    if not _started:
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        with open(os.path.join(root, CONFIG_FILE)) as f:
            cfg = approvals_config.from_data(json.load(f))
        secret = read_secret(cfg.signing_secret, 'signing-secret')
        token = read_secret(cfg.bot_token, 'bot-token')
        _started.update(screen=RequestScreen(secret), app=build_app(cfg, secret, token,
                                                                in_function=True))
    return _started['screen'], _started['app']


def _refuse(status: int, why: str) -> dict:
    log.warning('approvals: refused a request: %s', why)
    return {'statusCode': status, 'headers': {'Content-Type': 'text/plain; charset=utf-8'},
            'body': 'refused: %s\n' % why}


def run(event, context):
    screen, app = _start()
    method = ((event.get('requestContext') or {}).get('http') or {}).get('method')
    if method != 'POST':
        return _refuse(405, 'the app answers POST requests only, not %s' % method)
    body = event.get('body') or ''
    if len(body) > 2 * MAX_BODY:
        return _refuse(413, 'request body over %d bytes (%d)' % (MAX_BODY, len(body)))
    raw = base64.b64decode(body) if event.get('isBase64Encoded') else body.encode('utf-8')
    headers = {k.lower(): v for k, v in (event.get('headers') or {}).items()}
    refused = screen.check(headers, raw)
    if refused:
        return _refuse(*refused)
    # Bolt's Lambda adapter's own conversions; its handler is not used, as it would set
    # up lazy listeners (another Lambda client) that this app has none of.
    event = dict(event, isBase64Encoded=bool(event.get('isBase64Encoded')))
    return to_aws_response(app.dispatch(to_bolt_request(event)))
