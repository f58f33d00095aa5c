"""The approval app: Slack's Bolt for Python answering the digest's buttons.

Each request is first screened (`RequestScreen`): its size, Slack's signature headers,
their age (5 minutes, as Slack says) and a replay of a request already answered. Bolt
then verifies the signature again, as it always does, and calls the listener, which
acknowledges, authorises the clicker, reads the user in its account, decides
(`clicks`), writes at most one tag, and updates the message through `response_url`:
served, after the acknowledgement; in a function, before it.
"""
import hashlib
import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Dict, Mapping, Optional, Tuple

from slack_bolt import App
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

from . import account, clicks
from .config import ApprovalsConfig

log = logging.getLogger('c7n_unused_keys.approvals')

# Slack's request timestamps are refused beyond this age (and as far ahead).
WINDOW_SECONDS = 300
# A click's request holds the digest message it came from: a few tens of KB at most.
MAX_BODY = 512 * 1024
# How long a user group's members are reused before asking Slack again.
GROUP_TTL_SECONDS = 60
BLOCK_PREFIX = 'c7n-unused-keys:'


class RequestScreen:
    """The checks a request passes before Bolt sees it; `check` returns (HTTP status,
    why) for a request to refuse, None for one to serve."""

    def __init__(self, signing_secret: str, clock: Callable[[], float] = time.time):
        self._verifier = SignatureVerifier(signing_secret, clock=_Clock(clock))
        self._clock = clock
        self._seen: Dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, headers: Mapping[str, str], body: bytes) -> Optional[Tuple[int, str]]:
        if len(body) > MAX_BODY:
            return 413, 'request body over %d bytes (%d)' % (MAX_BODY, len(body))
        timestamp = headers.get('x-slack-request-timestamp')
        signature = headers.get('x-slack-signature')
        if not timestamp or not signature:
            return 401, 'missing header: %s' % ' and '.join(
                h for h, v in (('X-Slack-Request-Timestamp', timestamp),
                               ('X-Slack-Signature', signature)) if not v)
        try:
            age = self._clock() - int(timestamp)
        except ValueError:
            return 401, 'X-Slack-Request-Timestamp is not a number: %r' % timestamp[:40]
        if abs(age) > WINDOW_SECONDS:
            return 401, 'stale request: signed %d s ago, over the %d s allowed' % (
                age, WINDOW_SECONDS)
        if not self._verifier.is_valid(body, timestamp, signature):
            return 401, 'bad signature: X-Slack-Signature does not match the signing secret'
        seen = hashlib.sha256(signature.encode()).hexdigest()
        with self._lock:
            now = self._clock()
            for s, at in list(self._seen.items()):
                if now - at > 2 * WINDOW_SECONDS:
                    del self._seen[s]
            if seen in self._seen:
                return 401, 'replayed request: this signed body was already answered'
            self._seen[seen] = now
        return None


class _Clock:
    """slack_sdk's verifier asks its clock for `now()`."""

    def __init__(self, clock: Callable[[], float]):
        self._clock = clock

    def now(self) -> float:
        return self._clock()


class _Locks:
    """One lock per user of an account: two clicks on one user are decided one after
    the other, each on what the other wrote."""

    def __init__(self):
        self._locks: Dict[Tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()

    def of(self, account_id: str, user: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault((account_id, user), threading.Lock())


@dataclass(frozen=True)
class Answer:
    """What a click is told, a word for it (approved, already, kept, refused), and the
    key whose buttons it answers in the message (None: told to the clicker alone)."""
    kind: str
    message: str
    key_id: Optional[str] = None


def _refused(message: str) -> Answer:
    return Answer('refused', message)


class Approvals:
    """The listener's work for one click, outside Bolt: testable and reused by both
    buttons."""

    def __init__(self, cfg: ApprovalsConfig, slack: WebClient, session=None,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.cfg = cfg
        self.slack = slack
        self.session = session
        self.now = now
        self._locks = _Locks()
        self._groups: Dict[str, Tuple[float, frozenset]] = {}

    def members(self, group: str) -> frozenset:
        cached = self._groups.get(group)
        if cached and time.monotonic() - cached[0] < GROUP_TTL_SECONDS:
            return cached[1]
        users = frozenset(self.slack.usergroups_users_list(usergroup=group)['users'])
        self._groups[group] = (time.monotonic(), users)
        return users

    def authorised(self, clicker: str, account_id: str) -> bool:
        allowed = self.cfg.approvers_of(account_id)
        if clicker in allowed.users:
            return True
        return any(clicker in self.members(g) for g in sorted(allowed.usergroups))

    def answer(self, action_id: str, value: object, clicker: object) -> Answer:
        now = self.now()
        try:
            click = clicks.parse_click(action_id, value, clicker, now)
        except clicks.BadClick as e:
            log.warning('approvals: refused a click by %s: %s', clicker, e)
            return _refused('Not done: %s.' % e)
        where = '%s %s %s (%s) by slack:%s' % (click.account, click.user, click.key_id,
                                              action_id, click.clicker)
        if click.account not in self.cfg.accounts:
            log.warning('approvals: refused %s: account not in the organisation file', where)
            return _refused('Not done: account %s is not in the organisation file.'
                            % click.account)
        try:
            allowed = self.authorised(click.clicker, click.account)
        except Exception as e:
            log.error('approvals: refused %s: user groups unreadable: %s', where, e)
            return _refused('Not done: who may approve could not be checked.')
        if not allowed:
            log.warning('approvals: refused %s: not an approver of the account', where)
            return _refused('Not done: <@%s> is not an approver for account %s.' % (
                click.clicker, self.cfg.accounts[click.account]))
        judge = clicks.judge_approve if click.action == clicks.APPROVE else clicks.judge_keep
        with self._locks.of(click.account, click.user):
            try:
                iam = account.iam_client(self.cfg, click.account, self.session)
                state = account.read_user(iam, click.user)
                outcome = judge(self.cfg, click, state, now)
                if outcome.write:
                    account.write_tags(iam, click.user, outcome.write)
            except account.AccountUnreachable as e:
                log.error('approvals: refused %s: %s', where, e)
                return _refused('Not done: account %s could not be reached (%s).' % (
                    self.cfg.accounts[click.account], e))
            except Exception as e:
                log.error('approvals: failed %s: %s', where, e)
                return _refused('Not done: the account answered %s.' % e)
        log.info('approvals: %s %s: %s%s', outcome.kind, where, outcome.message,
                 ' wrote %s' % dict(outcome.write) if outcome.write else '')
        return Answer(outcome.kind, outcome.message, click.key_id)


def answered_blocks(blocks, key_id: str, message: str):
    """The message's blocks with the buttons of `key_id` replaced by the answer; None
    when the message has no buttons for it."""
    block_id = BLOCK_PREFIX + key_id
    if not any(b.get('block_id') == block_id for b in blocks or ()):
        return None
    return [{'type': 'context', 'block_id': block_id,
             'elements': [{'type': 'mrkdwn', 'text': message}]}
            if b.get('block_id') == block_id else b for b in blocks]


def build_app(cfg: ApprovalsConfig, signing_secret: str, bot_token: str, session=None,
              now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
              in_function: bool = False) -> App:
    """The app. A server acknowledges a click at once and does its work after; a
    function (`in_function`) does its work before it answers, as Lambda stops it then."""
    slack = WebClient(token=bot_token, base_url=cfg.slack_api_url)
    work = Approvals(cfg, slack, session, now)

    def authorize(**_):
        # One workspace, one bot token: no auth.test call on each cold start.
        return AuthorizeResult(enterprise_id=None, team_id=None, bot_token=bot_token)

    # Bolt's own client takes its token from `authorize`, per request.
    app = App(signing_secret=signing_secret, authorize=authorize,
              client=WebClient(base_url=cfg.slack_api_url),
              process_before_response=in_function, logger=log)

    def on_click(ack, body, respond):
        ack()
        action = (body.get('actions') or [{}])[0]
        answer = work.answer(action.get('action_id'), action.get('value'),
                             (body.get('user') or {}).get('id'))
        original = body.get('message') or {}
        blocks = answered_blocks(original.get('blocks'), answer.key_id, answer.message) \
            if answer.key_id else None
        if blocks is not None:
            respond(replace_original=True, text=original.get('text', ''), blocks=blocks)
        else:
            respond(response_type='ephemeral', replace_original=False, text=answer.message)

    app.action(clicks.APPROVE)(on_click)
    app.action(clicks.KEEP)(on_click)
    # Any other button: answered as unknown, not left to Bolt's 404.
    app.action(re.compile('.*'))(on_click)
    return app
