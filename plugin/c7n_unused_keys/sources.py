"""The three ways to gather key facts: api, credential-report and hybrid.

Each returns {user name: [KeyFacts]} for the users it had to look at; a user left
out has no key that can match. Which users and keys need a call is decided by
the pure functions in `decide`; the calls themselves are in `facts`.
"""
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from . import decide, facts
from .pace import MOST
from .credential_report import ReportUnavailable
from .model import SOURCE_API, SOURCE_REPORT, CredentialReport, KeyFacts, ListedKey, Thresholds

log = logging.getLogger('custodian.unused-access-keys')

# Threads of each pool; how many of their calls are in flight at once is up to `pace`.
WORKERS = MOST
PROGRESS_EVERY = 1000
HYBRID = 'hybrid'
# The filter's `source` values; the first is the default.
SOURCE_NAMES = (HYBRID, SOURCE_API, SOURCE_REPORT)


@dataclass
class Gathered:
    facts: Dict[str, List[KeyFacts]] = field(default_factory=dict)
    fallback_users: int = 0
    # Keys listed, plus the report slots of users the report ruled out.
    keys_seen: int = 0
    # The ListAccessKeys answer of each user this gathering listed, and the
    # time.monotonic() just before it (its facts were read after): what a retire
    # action may reuse while fresh. Empty when the keys came listed (`listed`).
    listings: Dict[str, Tuple[float, List[ListedKey]]] = field(default_factory=dict)


class Sources:
    """Gathers facts with one IAM client, a retry wrapper and bounded concurrency.

    `executor_factory` makes the thread pools: the filter passes c7n's (which c7n's own
    tests swap for one that runs on the main thread); without c7n, concurrent.futures'.

    `listed` holds keys already listed ({user: [ListedKey]}, as c7n lists
    aws.iam-access-key): then no ListAccessKeys call is made.
    """

    def __init__(self, client, retry, th: Thresholds, now: datetime, workers: int = WORKERS,
                 executor_factory: Callable = ThreadPoolExecutor,
                 listed: Optional[Dict[str, List[ListedKey]]] = None):
        self.client, self.retry, self.th, self.now = client, retry, th, now
        self.workers, self.executor_factory = workers, executor_factory
        self.listed = listed
        self._listings: Dict[str, Tuple[float, List[ListedKey]]] = {}

    def _keys(self, user: str) -> List[ListedKey]:
        if self.listed is not None:
            return self.listed.get(user, [])
        at = time.monotonic()
        keys = facts.list_keys(self.client, self.retry, user)
        # One worker per user: no two threads write the same entry.
        self._listings[user] = (at, keys)
        return keys

    def gather(self, source: str, users: Sequence[str],
               fetch_report: Callable[[], CredentialReport]) -> Gathered:
        """Facts for `users` from the source named `source`.

        `fetch_report` returns the credential report or raises ReportUnavailable. Without
        a report, `hybrid` falls back to `api` with a warning; `credential-report` lets
        ReportUnavailable through, as it has nothing to fall back on.
        """
        if source not in SOURCE_NAMES:
            raise ValueError('unknown source %r, not one of %s' % (source, SOURCE_NAMES))
        log.info('unused-access-keys: checking %d users with source: %s', len(users), source)
        if source == SOURCE_API:
            return self.api(users)
        try:
            report = fetch_report()
        except ReportUnavailable as e:
            if source == SOURCE_REPORT:
                raise
            log.warning('unused-access-keys: no credential report (%s); '
                        'falling back to source: api', e)
            return self.api(users)
        if source == SOURCE_REPORT:
            return self.credential_report(users, report)
        return self.hybrid(users, report)

    # -- the three sources -------------------------------------------------
    def api(self, users: Sequence[str]) -> Gathered:
        return self._run(users, self._api_user)

    def hybrid(self, users: Sequence[str], report: CredentialReport) -> Gathered:
        picked = [u for u in users if u not in report.slots or decide.user_may_match(
            report.slots[u], self.th, self.now, report.generated)]
        log.info('unused-access-keys: the credential report of %s leaves %d of %d users'
                 ' to check', report.generated.isoformat(), len(picked), len(users))
        out = self._run(picked, lambda u: self._hybrid_user(u, report))
        out.keys_seen += _slots_of(report, set(users) - set(picked))
        return out

    def credential_report(self, users: Sequence[str], report: CredentialReport) -> Gathered:
        everyone = decide.report_may_miss_keys(self.th, self.now, report.generated)
        picked = [u for u in users if everyone or u not in report.slots
                  or decide.report_candidates(report.slots[u], self.th, self.now)]
        log.info('unused-access-keys: the credential report of %s names %d of %d users'
                 ' as candidates', report.generated.isoformat(), len(picked), len(users))
        out = self._run(picked, lambda u: self._report_user(u, report))
        out.keys_seen += _slots_of(report, set(users) - set(picked))
        return out

    def tags(self, users: Sequence[str]) -> Dict[str, List[dict]]:
        """The tags of each user (for users listed without them)."""
        with self.executor_factory(max_workers=self.workers) as pool:
            found = dict(zip(users, pool.map(
                lambda u: facts.user_tags(self.client, self.retry, u), users)))
        log.info('unused-access-keys: read the tags of %d users', len(users))
        return found

    # -- per user ----------------------------------------------------------
    def _api_user(self, user: str, keys: Optional[List[ListedKey]] = None
                  ) -> Tuple[List[KeyFacts], bool, int]:
        if keys is None:
            keys = self._keys(user)
        wanted = [k for k in keys if self.th.status in ('any', k.status)]
        return self._last_used(wanted), False, len(keys)

    def _hybrid_user(self, user: str, report: CredentialReport):
        if user not in report.slots:
            return self._api_user(user)
        keys = self._keys(user)
        wanted = decide.keys_to_confirm(
            report.slots[user], keys, self.th, self.now, report.generated)
        return self._last_used(wanted), False, len(keys)

    def _report_user(self, user: str, report: CredentialReport):
        keys = self._keys(user)
        if user not in report.slots:
            return self._api_user(user, keys)
        mapping = decide.map_slots(report.slots[user], keys)
        if mapping is None:
            log.info('unused-access-keys: %s: report slots do not map to keys one to one;'
                     ' asking the API', user)
            return self._api_user(user, keys)[0], True, len(keys)
        wanted = [k for k in keys if self.th.status in ('any', k.status)]
        from_report = [decide.slot_facts(mapping[k.key_id], k)
                       for k in wanted if k.key_id in mapping]
        # Keys created after the report have no slot: only the API knows them.
        return from_report + self._last_used(
            [k for k in wanted if k.key_id not in mapping]), False, len(keys)

    def _last_used(self, keys: Sequence[ListedKey]) -> List[KeyFacts]:
        found = (facts.last_used(self.client, self.retry, k) for k in keys)
        return [f for f in found if f is not None]

    # -- running -----------------------------------------------------------
    def _run(self, users: Sequence[str], per_user: Callable) -> Gathered:
        out = Gathered()
        start = time.monotonic()
        with self.executor_factory(max_workers=self.workers) as pool:
            for n, (user, result) in enumerate(
                    zip(users, pool.map(per_user, users)), 1):
                user_facts, fell_back, seen = result
                out.facts[user] = user_facts
                out.fallback_users += fell_back
                out.keys_seen += seen
                if n % PROGRESS_EVERY == 0:
                    log.info('unused-access-keys: checked %d of %d users', n, len(users))
        out.listings = {u: self._listings[u] for u in users if u in self._listings}
        log.info('unused-access-keys: checked %d users (%d keys) in %.1fs;'
                 ' %d asked the API as the report could not be mapped',
                 len(users), sum(len(v) for v in out.facts.values()),
                 time.monotonic() - start, out.fallback_users)
        return out


def _slots_of(report: CredentialReport, users) -> int:
    return sum(len(report.slots.get(u, ())) for u in users)
