"""How many IAM calls are in flight at once: halved on throttling, grown back by one after
as many untouched calls, fixed by C7N_UNUSED_KEYS_CALLS."""
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from c7n_unused_keys.pace import ENV, MOST, START, Pace, settings
from conftest import DEFAULT_ACCOUNT, ROOT, custodian_run
from helpers import account_state, seeded


def answer(retries=0):
    return {'ResponseMetadata': {'RetryAttempts': retries}}


def retry(call, *args, **kw):
    return call(*args, **kw)


def test_halves_on_a_retried_call_and_grows_back_one_at_a_time():
    pace = Pace(start=8, most=16)
    call = pace.wrap(retry)
    call(lambda: answer(retries=1))
    assert pace.limit == 4
    for _ in range(3):
        call(lambda: answer())
    assert pace.limit == 4
    call(lambda: answer())
    assert pace.limit == 5
    for _ in range(200):
        call(lambda: answer())
    assert pace.limit == 16


def test_a_throttling_error_halves_and_is_raised():
    pace = Pace(start=8, most=16)

    def throttled():
        raise ClientError({'Error': {'Code': 'Throttling', 'Message': 'Rate exceeded'}},
                          'ListAccessKeys')
    with pytest.raises(ClientError):
        pace.wrap(retry)(throttled)
    assert pace.limit == 4


def test_calls_started_before_a_halving_do_not_halve_again():
    pace = Pace(start=8, most=16)
    call = pace.wrap(retry)
    started, release = threading.Barrier(4), threading.Event()

    def slow_throttled():
        started.wait()
        release.wait()
        return answer(retries=1)
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(call, slow_throttled) for _ in range(3)]
        started.wait()
        release.set()
        [f.result() for f in futures]
    assert pace.limit == 4 and pace.halvings == 1


def test_never_more_calls_in_flight_than_the_limit():
    pace = Pace(start=3, most=3)
    lock, now, most = threading.Lock(), [0], [0]

    def counted():
        with lock:
            now[0] += 1
            most[0] = max(most[0], now[0])
        with lock:
            now[0] -= 1
        return answer()
    with ThreadPoolExecutor(12) as pool:
        list(pool.map(lambda _: pace.wrap(retry)(counted), range(300)))
    assert 1 <= most[0] <= 3


def test_a_connection_error_changes_nothing():
    pace = Pace(start=2, most=16)
    call = pace.wrap(retry)

    def broken():
        raise ConnectionError('reset by peer')
    for _ in range(4):
        with pytest.raises(ConnectionError):
            call(broken)
    assert pace.limit == 2 and pace.halvings == 0


def test_one_pace_per_manager_when_workers_ask_at_once():
    from c7n_unused_keys.pace import pace_of

    class Manager:
        pass
    manager, start = Manager(), threading.Barrier(16)

    def first():
        start.wait()
        return pace_of(manager)
    with ThreadPoolExecutor(16) as pool:
        found = list(pool.map(lambda _: first(), range(16)))
    assert len({id(p) for p in found}) == 1


def test_the_floor_holds():
    pace = Pace(start=2, most=16, least=1)
    call = pace.wrap(retry)
    for _ in range(5):
        call(lambda: answer(retries=2))
    assert pace.limit == 1


def test_settings_from_the_environment():
    assert settings({}) == (START, MOST, 1)
    assert settings({ENV: '8'}) == (8, 8, 8)
    assert settings({ENV: ' 1 '}) == (1, 1, 1)
    for bad in ('0', str(MOST + 1), 'fast', '-2', '2.5'):
        with pytest.raises(ValueError, match=ENV):
            settings({ENV: bad})


def test_a_bad_setting_fails_the_run_and_changes_nothing(sandbox, tmp_path):
    seeded(sandbox)
    before = account_state(sandbox, DEFAULT_ACCOUNT)
    run = custodian_run(sandbox, tmp_path, ROOT / 'policies' / 'unused-access-keys-retire.yml',
                        env={ENV: 'lots'})
    assert run.returncode != 0
    assert ENV in run.stderr
    assert account_state(sandbox, DEFAULT_ACCOUNT) == before


def c7n_retry(monkeypatch, during_sleep):
    """c7n's own retry wrapper (as a resource manager's `retry`), whose backoff sleeps
    call `during_sleep(seconds)` instead of sleeping."""
    from c7n import utils
    monkeypatch.setattr(utils.time, 'sleep', during_sleep)
    return utils.get_retry(('Throttling',))


def throttled_once():
    """A call that is throttled on its first attempt (botocore gave up) and then goes
    through untouched."""
    tries = []

    def call():
        tries.append(1)
        if len(tries) == 1:
            raise ClientError({'Error': {'Code': 'Throttling', 'Message': 'Rate exceeded'},
                               'ResponseMetadata': {'RetryAttempts': 4}}, 'ListAccessKeys')
        return answer()
    return call, tries


def test_a_throttle_that_c7n_s_retry_absorbs_halves(monkeypatch):
    pace = Pace(start=8, most=16)
    call, tries = throttled_once()
    resp = pace.wrap(c7n_retry(monkeypatch, lambda seconds: None))(call)
    assert resp == answer() and len(tries) == 2
    assert pace.limit == 4 and pace.halvings == 1


def test_no_slot_is_held_through_c7n_s_backoff(monkeypatch):
    pace = Pace(start=1, most=1)
    held = []
    call, tries = throttled_once()
    paced = pace.wrap(c7n_retry(monkeypatch, lambda seconds: held.append(pace._running)))
    paced(call)
    assert len(tries) == 2 and held == [0]
