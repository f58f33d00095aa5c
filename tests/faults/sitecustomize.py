"""Fault injection for the `custodian` and `c7n-org` subprocesses of the tests.

Put this folder on PYTHONPATH and set C7N_TEST_FAULTS to a comma-separated list
of `Operation=ErrorCode[@N][~P][/UserName][%AccountName]`, e.g.
`GetCredentialReport=AccessDenied,GetAccessKeyLastUsed=Throttling@2`, or `*=Throttling~0.2`
for every operation. Calls of that IAM operation then fail with that error code
without reaching the emulator: all of them, or only the first N in this process, a
share P of them (seeded, so runs repeat), those for that user, or those made while
c7n-org runs that account (it sets AccountName in the environment). Short-circuited
calls skip botocore's own retries, so any retry seen is the caller's.

`C7N_TEST_SLEEP_SCALE` shortens every wait (retry backoff) by that factor.

Two codes model a write that is applied but whose response is lost: the request
reaches the emulator, then the connection closes before the answer. `Lost` lets
botocore's own retries through (the retry of a delete then meets NoSuchEntity);
`Lost500` answers every later attempt of that operation with a 500 ServiceFailure,
not applied.
"""
import os
import random
import threading
import time

import botocore.session

# Read at first use, not at import: a command forked from a server that imported this
# module (tests/command_fork.py) has its own environment.
_settings = {}


def settings() -> dict:
    if _settings.get('pid') != os.getpid():
        _settings.clear()
        _settings.update(
            pid=os.getpid(),
            scale=float(os.environ.get('C7N_TEST_SLEEP_SCALE', '1')),
            faults=dict(item.split('=', 1) for item in
                        os.environ.get('C7N_TEST_FAULTS', '').split(',') if '=' in item),
            kill_after=int(os.environ.get('C7N_TEST_KILL_AFTER', '0')),
            rng=random.Random(int(os.environ.get('C7N_TEST_FAULTS_SEED', '1'))),
            seen={})
    return _settings


# Waits (c7n's and botocore's retry backoff) are cut by this factor: what a fault test
# checks is the final state, and the time a retry waits plays no part in it.
_sleep = time.sleep


def _scaled_sleep(seconds):
    _sleep(seconds * settings()['scale'])


time.sleep = _scaled_sleep

_create_client = botocore.session.Session.create_client
_lock = threading.Lock()


def _fail(op, spec):
    spec, _, account = spec.partition('%')
    code, _, user = spec.partition('/')
    code, _, share = code.partition('~')
    code, _, limit = code.partition('@')

    def handler(params=None, **kwargs):
        from botocore.awsrequest import AWSResponse
        if user and (params or {}).get('body', {}).get('UserName') != user:
            return None
        if account and os.environ.get('AccountName') != account:
            return None
        with _lock:
            seen = settings()['seen']
            seen[op] = seen.get(op, 0) + 1
            if limit and seen[op] > int(limit):
                return None
            if share and settings()['rng'].random() >= float(share):
                return None
        if code == 'EndpointConnectionError':
            from botocore.exceptions import EndpointConnectionError
            raise EndpointConnectionError(endpoint_url='injected-by-the-tests')
        # IAM answers these two with 409 Conflict.
        status = 409 if code in ('ConcurrentModification', 'LimitExceeded') else (
            400 if code.startswith('Throttl') else 403)
        return AWSResponse(None, status, {}, None), {
            'Error': {'Code': code, 'Message': 'injected by the tests'},
            'ResponseMetadata': {'HTTPStatusCode': status}}
    return handler


_ERROR_500 = (b'<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceFailure</Code>'
              b'<Message>injected by the tests</Message></Error></ErrorResponse>')


class _Raw:
    def __init__(self, body):
        self.body = body

    def stream(self, **kwargs):
        yield self.body


def _lose(op, spec):
    spec, _, account = spec.partition('%')
    code, _, user = spec.partition('/')
    state = {'lost': False}

    def handler(request, **kwargs):
        from urllib.parse import parse_qs
        from botocore.awsrequest import AWSResponse
        from botocore.exceptions import ConnectionClosedError
        from botocore.httpsession import URLLib3Session
        body = request.body or b''
        params = parse_qs(body.decode() if isinstance(body, bytes) else body)
        if user and params.get('UserName', [''])[0] != user:
            return None
        if account and os.environ.get('AccountName') != account:
            return None
        with _lock:
            first, state['lost'] = not state['lost'], True
        if first:
            URLLib3Session().send(request)
            raise ConnectionClosedError(endpoint_url=request.url)
        if code == 'Lost500':
            return AWSResponse(request.url, 500, {}, _Raw(_ERROR_500))
        return None
    return handler


def _kill_after(**kwargs):
    with _lock:
        seen = settings()['seen']
        seen['*answered'] = seen.get('*answered', 0) + 1
        if seen['*answered'] == settings()['kill_after']:
            import signal
            os.kill(os.getpid(), signal.SIGKILL)


def create_client(self, service_name, *args, **kwargs):
    client = _create_client(self, service_name, *args, **kwargs)
    if service_name == 'iam' and settings()['kill_after']:
        client.meta.events.register('after-call.iam', _kill_after)
    if service_name == 'iam':
        for op, spec in settings()['faults'].items():
            if spec.startswith('Lost'):
                client.meta.events.register('before-send.iam.%s' % op, _lose(op, spec))
                continue
            event = 'before-call.iam' if op == '*' else 'before-call.iam.%s' % op
            client.meta.events.register(event, _fail(op, spec))
    return client


botocore.session.Session.create_client = create_client
