"""How many IAM calls of a policy run are in flight at once: more while IAM answers, fewer
once it throttles.

IAM limits each account to a request rate it does not publish. A fixed number of calls
at once is either too few while IAM keeps up or, beyond its rate, spends the run in
retry backoff. `Pace` adapts as TCP does (additive increase, multiplicative decrease): it
starts at `start` calls at once, halves on an attempt that was throttled (or otherwise
retried by botocore), and adds one after as many attempts in a row went through
untouched, up to `most`. It paces each attempt that c7n's retry makes, not the whole
retried call: a throttle that c7n's retry absorbs still halves, and a call waiting out
c7n's backoff holds no slot.
Calls that started before a halving do not halve again: one burst of throttling is one
signal.

`C7N_UNUSED_KEYS_CALLS=N` (1 to `MOST`) fixes it at N calls at once instead, for a role
that must leave most of its account's IAM rate to others.
"""
import functools
import logging
import os
import threading
from typing import Callable, Mapping, Tuple

from botocore.exceptions import ClientError

log = logging.getLogger('custodian.unused-access-keys')

START = 8
MOST = 16
THROTTLED = ('Throttling', 'ThrottlingException', 'RequestLimitExceeded',
             'TooManyRequestsException')


class Pace:
    def __init__(self, start: int = START, most: int = MOST, least: int = 1):
        self.limit, self.most, self.least = start, most, least
        self._cond = threading.Condition()
        self._running = 0
        self._clean = 0
        self._epoch = 0
        self.halvings = 0

    def wrap(self, retry: Callable) -> Callable:
        """`retry` (c7n's retry wrapper: `retry(call, *args, **kw)`), each of its attempts
        paced: a throttle that c7n's retry absorbs still counts, and no slot is held
        while it sleeps before its next attempt."""
        def paced(call, *args, **kw):
            return retry(functools.partial(self._attempt, call), *args, **kw)
        return paced

    def _attempt(self, call, *args, **kw):
        """One attempt of `call` (botocore's own retries inside it), in a slot."""
        with self._cond:
            while self._running >= self.limit:
                self._cond.wait()
            self._running += 1
            epoch = self._epoch
        retried = False
        try:
            resp = call(*args, **kw)
            retried = bool(resp) and resp.get('ResponseMetadata', {}).get(
                'RetryAttempts', 0) > 0
            return resp
        except ClientError as e:
            retried = (e.response.get('Error', {}).get('Code') in THROTTLED or
                       e.response.get('ResponseMetadata', {}).get('RetryAttempts', 0) > 0)
            raise
        except BaseException:
            # A connection error or timeout says nothing of the rate: no change.
            retried = None
            raise
        finally:
            self._done(epoch, retried)

    def _done(self, epoch: int, retried):
        with self._cond:
            self._running -= 1
            if retried is None:
                pass
            elif retried:
                if epoch == self._epoch and self.limit > self.least:
                    self.limit = max(self.least, self.limit // 2)
                    self._epoch += 1
                    self.halvings += 1
                    log.debug('unused-access-keys: throttled; %d calls at once', self.limit)
                self._clean = 0
            else:
                self._clean += 1
                if self._clean >= self.limit and self.limit < self.most:
                    self.limit += 1
                    self._clean = 0
            self._cond.notify_all()


ENV = 'C7N_UNUSED_KEYS_CALLS'


def settings(environ: Mapping[str, str] = os.environ) -> Tuple[int, int, int]:
    """(start, most, least) calls at once: adaptive, or fixed by C7N_UNUSED_KEYS_CALLS."""
    value = environ.get(ENV, '').strip()
    if not value:
        return START, MOST, 1
    if not value.isdigit() or not 1 <= int(value) <= MOST:
        raise ValueError('%s=%r: must be a whole number of IAM calls at once from 1 to %d '
                         '(unset: adaptive, %d to %d)' % (ENV, value, MOST, START, MOST))
    n = int(value)
    return n, n, n


_MADE = threading.Lock()


def pace_of(manager) -> Pace:
    """The one Pace of a policy's run: its filters and action share the account's rate."""
    with _MADE:  # the first call may come from several workers at once
        pace = getattr(manager, '_c7n_unused_keys_pace', None)
        if pace is None:
            start, most, least = settings()
            pace = manager._c7n_unused_keys_pace = Pace(start, most, least)
    return pace


def paced(manager) -> Callable:
    """The manager's retry wrapper, paced by its run's Pace: for every IAM call."""
    return pace_of(manager).wrap(manager.retry)
