"""A local stand-in for AWS: the moto emulator on 127.0.0.1, with ways to move time.

Used by the tests, the bench and the demo. The emulator runs in this process, so key
and report dates can be backdated directly (`advance`, `backdate_key`); `custodian` and
`c7n-org` reach it through AWS_ENDPOINT_URL. moto answers as AWS does with the fixes of
`moto_fixes`, applied on start.

Beyond AWS's answers, for tests and benchmarks:
- an optional request rate per account (`Emulator.rate`), as IAM has: IAM requests
  beyond it are answered `Throttling` without reaching moto;
- request hooks (`on_request`): something happening in the account just before a call;
- stale reads (`serve_tags_stale`): IAM's eventual consistency, counted in reads;
- a latency per request and counts per action (`latency`, `count_operations`).
"""
import contextlib
import io
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Dict, List, Optional

from c7n_unused_keys.markers import MARKER_FORMAT

from . import moto_fixes
from .loopback import Served

# The account that the emulator's default (dummy) credentials land in.
DEFAULT_ACCOUNT = '123456789012'


# IAM's answer beyond its request rate; botocore retries it as a throttle (_retry.json
# `throttling`: code Throttling with HTTP 400, and the standard mode's throttling codes).
_THROTTLING_BODY = (
    b'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error>'
    b'<Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>'
    b'<RequestId>c7n-unused-keys-throttled</RequestId></ErrorResponse>')


class TokenBucket:
    """`rate` tokens a second, held up to `burst`; a request spends one or is refused.

    Starts full. `clock` (seconds, monotonic) is injectable so that tests drive time.
    Not thread-safe: the caller holds a lock.
    """

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self._clock = clock
        self._at = clock()

    def take(self) -> bool:
        """Spend one token if there is a whole one."""
        now = self._clock()
        self.tokens = min(self.burst, self.tokens + (now - self._at) * self.rate)
        self._at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def _iam_access_key(environ) -> Optional[str]:
    """The access key id of a SigV4-signed IAM request (credential scope service `iam`),
    else None."""
    auth = environ.get('HTTP_AUTHORIZATION', '')
    start = auth.find('Credential=')
    if start < 0:
        return None
    scope = auth[start + len('Credential='):].split(',', 1)[0].strip().split('/')
    return scope[0] if len(scope) == 5 and scope[3] == 'iam' else None


def _account_of(environ, access_key: str) -> str:
    """The account moto lands a request in (as moto's BaseResponse.get_current_account)."""
    from moto.iam.models import get_account_id_from
    return (os.environ.get('MOTO_ACCOUNT_ID') or environ.get('HTTP_X_MOTO_ACCOUNT_ID')
            or get_account_id_from(access_key) or access_key)


def account_client(env: Dict[str, str], account: str = DEFAULT_ACCOUNT, service: str = 'iam',
                   region: Optional[str] = None, config=None):
    """A client of `service` on the emulator that `env` points at, landing in `account`
    (through the account's role, as c7n-org reaches it); `config`, a botocore Config,
    for that client only."""
    import boto3
    kw = dict(endpoint_url=env['AWS_ENDPOINT_URL'],
              region_name=region or env['AWS_DEFAULT_REGION'],
              aws_access_key_id=env['AWS_ACCESS_KEY_ID'],
              aws_secret_access_key=env['AWS_SECRET_ACCESS_KEY'])
    if account != DEFAULT_ACCOUNT:
        creds = boto3.client('sts', **kw).assume_role(
            RoleArn='arn:aws:iam::%s:role/c7n-unused-keys' % account,
            RoleSessionName='c7n-unused-keys-sandbox')['Credentials']
        kw.update(aws_access_key_id=creds['AccessKeyId'],
                  aws_secret_access_key=creds['SecretAccessKey'],
                  aws_session_token=creds['SessionToken'])
    return boto3.client(service, config=config, **kw)


_TAGS_XML = re.compile(rb'<Tags>.*?</Tags>|<Tags\s*/>', re.S)


def _tags_xml(tags) -> bytes:
    from xml.sax.saxutils import escape
    return b'<Tags>' + b''.join(
        ('<member><Key>%s</Key><Value>%s</Value></member>' % (
            escape(t['Key']), escape(t['Value']))).encode() for t in tags) + b'</Tags>'


def _with_tags(app, environ, start_response, tags):
    """moto's answer with its Tags element replaced by `tags` (a stale read)."""
    answer = {}

    def capture(status, headers, exc_info=None):
        answer['status'], answer['headers'] = status, headers
    body = b''.join(app(environ, capture))
    if answer['status'].startswith('200'):
        xml = _tags_xml(tags)
        if _TAGS_XML.search(body):
            body = _TAGS_XML.sub(lambda m: xml, body, count=1)
        else:
            body = body.replace(b'</User>', xml + b'</User>', 1)
    headers = [(k, v) for k, v in answer['headers'] if k.lower() != 'content-length']
    start_response(answer['status'], headers + [('Content-Length', str(len(body)))])
    return [body]


@dataclass
class RequestHook:
    """`callback()` just before the emulator handles a request of `action` (for `user`,
    or the access key id `key`, when given): after letting `skip` of them pass, for the
    next `times` of them."""
    action: str
    callback: Callable[[], None]
    user: Optional[str] = None
    key: Optional[str] = None
    times: int = 1
    skip: int = 0

    def matches(self, params: Dict[str, str]) -> bool:
        return (params.get('Action') == self.action
                and self.user in (None, params.get('UserName'))
                and self.key in (None, params.get('AccessKeyId')))


class Emulator(Served):
    """The AWS emulator on 127.0.0.1, served from a thread of this process.

    `requests` counts the HTTP requests it has answered; with `count_operations`,
    `operations` counts them per action, and `latency`
    adds that many seconds to each (benchmarks). Use as a context manager.

    `rate` (IAM requests a second per account; 0, the default, for no limit) and `burst`
    (the most at once; default `rate`, at least 1) set a token bucket per account, as IAM
    has. An IAM request beyond it (SigV4 credential scope `iam`; STS, S3, Lambda and the
    rest are never limited) is answered HTTP 400 `Throttling` ("Rate exceeded") without
    reaching moto, after `latency` like any round trip; `throttled` counts those per
    action, whenever `rate` is set. `operations` counts only requests that reached moto;
    `requests` counts both. Setting `rate` or `burst` starts every bucket full again.
    """

    def __init__(self, port: int = 0):
        self.port = port
        self.requests = 0
        self._lock = threading.Lock()
        self._hooks: List[RequestHook] = []
        # User name -> [tags to answer with, reads left] (serve_tags_stale).
        self._stale: Dict[str, list] = {}
        # For benchmarks: seconds added to every request, and requests per IAM action.
        self.latency = 0.0
        self.count_operations = False
        self.operations: Dict[str, int] = {}
        # Request rate per account (see the class docstring); buckets by account.
        self._rate = 0.0
        self._burst: Optional[float] = None
        self._buckets: Dict[str, TokenBucket] = {}
        self.throttled: Dict[str, int] = {}

    @property
    def rate(self) -> float:
        return self._rate

    @rate.setter
    def rate(self, value: float):
        if value is None or value < 0:
            raise ValueError('rate must be 0 (no limit) or more, not %r' % (value,))
        with self._lock:
            self._rate = float(value)
            self._buckets.clear()

    @property
    def burst(self) -> Optional[float]:
        return self._burst

    @burst.setter
    def burst(self, value: Optional[float]):
        if value is not None and value < 1:
            raise ValueError('burst must be 1 or more (or None), not %r' % (value,))
        with self._lock:
            self._burst = None if value is None else float(value)
            self._buckets.clear()

    def _over_rate(self, environ) -> bool:
        """Whether this request is an IAM request beyond its account's rate."""
        key = _iam_access_key(environ)
        if key is None:
            return False
        account = _account_of(environ, key)
        with self._lock:
            bucket = self._buckets.get(account)
            if bucket is None:
                burst = self._burst if self._burst is not None else max(self._rate, 1.0)
                bucket = self._buckets[account] = TokenBucket(self._rate, burst)
            return not bucket.take()

    def _throttle(self, environ, start_response):
        """Answer as IAM does beyond its rate; the body is read off, for the connection's
        next request and for the action's name."""
        from urllib.parse import parse_qs
        length = int(environ.get('CONTENT_LENGTH') or 0)
        body = environ['wsgi.input'].read(length) if length else b''
        action = parse_qs(body.decode('utf-8', 'replace')).get('Action', ['?'])[0]
        with self._lock:
            self.throttled[action] = self.throttled.get(action, 0) + 1
        if self.latency:
            time.sleep(self.latency)
        start_response('400 Bad Request', [('Content-Type', 'text/xml'),
                                           ('Content-Length', str(len(_THROTTLING_BODY))),
                                           ('x-amzn-RequestId', 'c7n-unused-keys-throttled')])
        return [_THROTTLING_BODY]

    def _count(self, app):
        def counted(environ, start_response):
            with self._lock:
                self.requests += 1
                hooks = list(self._hooks)
            # Before the hooks and counts: a throttled request never reaches moto.
            if self._rate and self._over_rate(environ):
                return self._throttle(environ, start_response)
            params = None
            if hooks or self.count_operations or self._stale:
                params = self._inspect(environ, hooks)
            if self.latency:
                # A fixed round trip per request, as a network would add; others overlap.
                time.sleep(self.latency)
            stale = self._stale_tags_for(params) if self._stale else None
            if stale is not None:
                return _with_tags(app, environ, start_response, stale)
            return app(environ, start_response)
        return counted

    def serve_tags_stale(self, account: str, user: str, reads: int = 1):
        """IAM's eventual consistency: the next `reads` GetUser and ListUserTags requests
        for `user` are answered with the tags it holds now, whatever is written after.
        Counted in reads, not seconds, so that a test decides by data."""
        tags = [dict(t) for t in self.backend(account).list_user_tags(user)]
        with self._lock:
            self._stale[user] = [tags, reads]

    def _stale_tags_for(self, params) -> Optional[list]:
        if not params or params.get('Action') not in ('GetUser', 'ListUserTags'):
            return None
        with self._lock:
            user = params.get('UserName')
            stale = self._stale.get(user)
            if stale is None or stale[1] <= 0:
                return None
            stale[1] -= 1
            if stale[1] <= 0:
                # Caught up: later requests are not even inspected for it.
                del self._stale[user]
            return stale[0]

    def on_request(self, action: str, callback, user: Optional[str] = None, times: int = 1,
                   skip: int = 0, key: Optional[str] = None):
        """Run `callback()` just before the emulator handles the next `times` requests
        of that IAM action (for that user, or that access key id), after letting `skip`
        of them pass: something happening meanwhile in the account."""
        with self._lock:
            self._hooks.append(RequestHook(action, callback, user, key, times, skip))

    def _inspect(self, environ, hooks):
        from urllib.parse import parse_qs
        length = int(environ.get('CONTENT_LENGTH') or 0)
        body = environ['wsgi.input'].read(length) if length else b''
        environ['wsgi.input'] = io.BytesIO(body)
        params = {k: v[0] for k, v in parse_qs(body.decode('utf-8', 'replace')).items()}
        if self.count_operations:
            with self._lock:
                action = params.get('Action', '?')
                self.operations[action] = self.operations.get(action, 0) + 1
        for hook in hooks:
            if not hook.matches(params):
                continue
            with self._lock:
                if hook.skip > 0:
                    hook.skip -= 1
                    continue
                if hook.times <= 0:
                    continue
                hook.times -= 1
            hook.callback()
        return params

    def start(self) -> 'Emulator':
        from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server
        moto_fixes.apply()
        logging.getLogger('werkzeug').setLevel(logging.ERROR)
        app = self._count(moto_fixes.dispatcher(create_backend_app))
        server = make_server('127.0.0.1', self.port, app, threaded=True,
                             request_handler=MotoRequestHandler)
        self.port = server.server_address[1]
        self._serve(server, 'emulator')
        return self

    def reset(self):
        with self._lock:
            self._hooks.clear()
            self._stale.clear()
        from moto.awslambda.models import lambda_backends
        from moto.events.models import events_backends
        from moto.iam.models import iam_backends
        from moto.logs.models import logs_backends
        from moto.s3.models import s3_backends
        from moto.securityhub.models import securityhub_backends
        from moto.sts.models import sts_backends
        # What the policies and their Lambda functions touch.
        for backends in (iam_backends, sts_backends, lambda_backends, events_backends,
                         logs_backends, s3_backends, securityhub_backends):
            backends.reset()

    def env(self) -> Dict[str, str]:
        """What a shell needs to point boto3, custodian and c7n-org here."""
        return {
            'AWS_ENDPOINT_URL': self.url,
            'AWS_ACCESS_KEY_ID': 'testing',
            'AWS_SECRET_ACCESS_KEY': 'testing',
            'AWS_DEFAULT_REGION': 'us-east-1',
        }

    def iam_client(self, account: str = DEFAULT_ACCOUNT):
        """An IAM client whose calls land in `account`, through AssumeRole as c7n-org does."""
        return account_client(self.env(), account)

    @contextlib.contextmanager
    def enforcing_iam(self):
        """Within: the emulator checks every request against the caller's IAM policies."""
        from moto import settings
        from moto.core.authorization import ActionAuthenticatorMixin
        before = settings.INITIAL_NO_AUTH_ACTION_COUNT
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        ActionAuthenticatorMixin.request_count = 0
        try:
            yield self
        finally:
            settings.INITIAL_NO_AUTH_ACTION_COUNT = before

    # -- moving time ---------------------------------------------------------
    @staticmethod
    def backend(account: str):
        from moto.iam.models import iam_backends
        return iam_backends[account]['aws']

    def backdate_key(self, account: str, key_id: str, created_days: Optional[float] = None,
                     used_days: Optional[float] = None, service: str = 's3',
                     region: str = 'us-east-1', never_used: bool = False):
        """Set a key's CreateDate and last use to that many days before now."""
        from moto.iam.models import AccessKeyLastUsed
        key = self.backend(account).access_keys[key_id]
        now = moto_fixes.utcnow_naive()
        if created_days is not None:
            # IAM keeps a key's CreateDate to the second (the credential report too).
            key.create_date = (now - timedelta(days=created_days)).replace(microsecond=0)
        if never_used:
            key.last_used = None
        elif used_days is not None:
            key.last_used = AccessKeyLastUsed(now - timedelta(days=used_days), service, region)

    def backdate_password(self, account: str, user: str, created_days: Optional[float] = None,
                          used_days: Optional[float] = None, never_used: bool = False):
        """Set a user's login profile's CreateDate and its password's last use to that
        many days before now."""
        u = self.backend(account).users[user]
        now = moto_fixes.utcnow_naive()
        if created_days is not None:
            u.login_profile_created = (now - timedelta(days=created_days)).replace(microsecond=0)
        if never_used:
            u.password_last_used = None
        elif used_days is not None:
            u.password_last_used = now - timedelta(days=used_days)

    def backdate_report(self, account: str, days: float):
        """Make the stored credential report look that many days older."""
        b = self.backend(account)
        made, content = b.report_snapshot
        b.report_snapshot = (made - timedelta(days=days), content)

    def advance(self, account: str, days: float):
        """Move the account `days` into the future: every key date, marker tag and the
        stored report become that much older. Nothing sleeps."""
        from moto.iam.models import AccessKeyLastUsed
        shift = timedelta(days=days)
        b = self.backend(account)
        for user in b.users.values():
            user.create_date -= shift
            if getattr(user, 'login_profile_created', None):
                user.login_profile_created -= shift
            if user.password_last_used is not None:
                user.password_last_used -= shift
            for key in user.access_keys:
                key.create_date -= shift
                if key.last_used is not None:
                    used = key.last_used
                    key.last_used = AccessKeyLastUsed(used.timestamp - shift, used.service,
                                                      used.region)
            moved = []
            for tag in b.list_user_tags(user.name):
                value = shifted(tag['Value'], shift)
                if value != tag['Value']:
                    moved.append({'Key': tag['Key'], 'Value': value})
            if moved:
                b.tag_user(user.name, moved)
        if getattr(b, 'report_snapshot', None):
            self.backdate_report(account, days)


# A tag value made of times: a lone time, or a time then `name=<time>` or `name=<word>`
# fields (a marker's delete-on, deleted, told), or approvals. A value with anything else
# (an exemption's until=<date>) is not moved.
_TIME = r'\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z'
_TIMES = re.compile(r'^%s( [a-z-]+=(%s|[a-z-]+))*$' % (_TIME, _TIME))
# An approval's value: `<time> by <approver>`, once or more.
_APPROVALS = re.compile(r'^%s by \S+( %s by \S+)*$' % (_TIME, _TIME))


def shifted(value: str, shift: timedelta) -> str:
    """`value` with each of its times `shift` earlier, when it is made of times."""
    if not (_TIMES.match(value) or _APPROVALS.match(value)):
        return value

    def earlier(m):
        try:
            return (datetime.strptime(m.group(0), MARKER_FORMAT) - shift).strftime(
                MARKER_FORMAT)
        except ValueError:
            return m.group(0)
    return re.sub(_TIME, earlier, value)
