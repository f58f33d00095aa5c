"""The emulator's request rate per account: a token bucket that answers Throttling, as IAM."""
import contextlib

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from c7n_unused_keys.names import UNUSED_ANNOTATION
from c7n_unused_keys_sandbox.emulator import TokenBucket, account_client
from conftest import DEFAULT_ACCOUNT, ROOT, custodian_run, faults, read_json
from helpers import seeded

OTHER_ACCOUNT = '222222222222'
# So slow that no token comes back while a test runs: what passes is the burst alone.
TRICKLE = 0.001
NO_RETRIES = Config(retries={'total_max_attempts': 1})


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@contextlib.contextmanager
def limited(emu, rate, burst=None):
    """The emulator at that rate, with fresh counts; no limit again afterwards."""
    emu.throttled.clear()
    emu.rate, emu.burst = rate, burst
    try:
        yield emu
    finally:
        emu.rate, emu.burst = 0, None


def client(emu, account=DEFAULT_ACCOUNT, service='iam'):
    return account_client(emu.env(), account, service, config=NO_RETRIES)


def outcomes(call, n):
    """The error code of each of `n` calls (None for a success), checking each error is
    IAM's throttle: HTTP 400 with 'Rate exceeded'."""
    codes = []
    for _ in range(n):
        try:
            call()
            codes.append(None)
        except ClientError as e:
            assert e.response['ResponseMetadata']['HTTPStatusCode'] == 400
            assert e.response['Error']['Message'] == 'Rate exceeded'
            codes.append(e.response['Error']['Code'])
    return codes


# -- the bucket ----------------------------------------------------------------------
def test_bucket_spends_its_burst_then_refills_at_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=3.0, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.25           # half a token
    assert bucket.take() is False
    clock.now += 0.25           # the other half: one whole token
    assert bucket.take() is True
    assert bucket.take() is False
    clock.now += 1.0            # two tokens
    assert [bucket.take() for _ in range(3)] == [True, True, False]


def test_bucket_keeps_fractions_of_a_token():
    clock = FakeClock()
    bucket = TokenBucket(rate=0.4, burst=1.0, clock=clock)
    assert bucket.take() is True
    for _ in range(2):
        clock.now += 1.0        # 0.4, then 0.8 of a token
        assert bucket.take() is False
    clock.now += 1.0            # 1.2, capped at the burst
    assert bucket.take() is True
    assert bucket.tokens == pytest.approx(0.0)


def test_bucket_holds_no_more_than_its_burst():
    clock = FakeClock()
    bucket = TokenBucket(rate=10.0, burst=2.0, clock=clock)
    clock.now += 3600.0         # an hour idle fills it to the burst, not beyond
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    assert bucket.tokens < 1


def test_rate_and_burst_are_checked(emulator):
    with pytest.raises(ValueError):
        emulator.rate = -1
    with pytest.raises(ValueError):
        emulator.burst = 0.5
    assert (emulator.rate, emulator.burst) == (0.0, None)


# -- the emulator --------------------------------------------------------------------
def test_beyond_the_burst_iam_answers_throttling(sandbox):
    iam = client(sandbox)
    sandbox.operations.clear()
    sandbox.count_operations = True
    try:
        with limited(sandbox, TRICKLE, burst=2):
            codes = outcomes(iam.list_users, 10)
            created = outcomes(lambda: iam.create_user(UserName='throttled-user'), 1)
            throttled = dict(sandbox.throttled)
    finally:
        sandbox.count_operations = False
    assert codes == [None, None] + ['Throttling'] * 8
    assert created == ['Throttling']
    assert throttled == {'ListUsers': 8, 'CreateUser': 1}
    # Throttled requests never reached moto: not counted there, nothing created.
    assert sandbox.operations.get('ListUsers') == 2
    assert 'CreateUser' not in sandbox.operations
    assert 'throttled-user' not in sandbox.backend(DEFAULT_ACCOUNT).users
    # And without a limit again, the same client goes through.
    assert outcomes(iam.list_users, 5) == [None] * 5


@pytest.mark.parametrize('mode', ['legacy', 'standard'])
def test_botocore_retries_the_throttle(sandbox, mode):
    # botocore's retry handlers take the answer for a throttle: each call is tried three
    # times (two retries, a few seconds of backoff at most), and each try is counted.
    iam = account_client(sandbox.env(), config=Config(
        retries={'mode': mode, 'total_max_attempts': 3}))
    with limited(sandbox, TRICKLE, burst=1):
        assert iam.list_users()['Users'] == []
        with pytest.raises(ClientError) as e:
            iam.list_users()
        throttled = dict(sandbox.throttled)
    assert e.value.response['Error']['Code'] == 'Throttling'
    assert e.value.response['ResponseMetadata']['RetryAttempts'] == 2
    assert throttled == {'ListUsers': 3}


def test_latency_applies_to_throttled_answers(sandbox):
    import time
    iam = client(sandbox)
    sandbox.latency = 0.05
    try:
        with limited(sandbox, TRICKLE, burst=1):
            assert outcomes(iam.list_users, 1) == [None]
            start = time.monotonic()
            assert outcomes(iam.list_users, 6) == ['Throttling'] * 6
            elapsed = time.monotonic() - start
    finally:
        sandbox.latency = 0.0
    # A lower bound that sleeping guarantees: each throttled answer waited its round trip.
    assert elapsed >= 6 * 0.05


def test_buckets_are_per_account_and_sts_is_never_limited(sandbox):
    with limited(sandbox, TRICKLE, burst=2):
        a = client(sandbox)
        assert outcomes(a.list_users, 3) == [None, None, 'Throttling']
        # Account A is out of tokens; AssumeRole (STS) into B still goes through, and so
        # does STS as often as asked.
        b = client(sandbox, OTHER_ACCOUNT)
        sts = client(sandbox, service='sts')
        assert outcomes(sts.get_caller_identity, 5) == [None] * 5
        assert outcomes(b.list_users, 3) == [None, None, 'Throttling']
        assert outcomes(a.list_users, 1) == ['Throttling']
        throttled = dict(sandbox.throttled)
    assert throttled == {'ListUsers': 3}


def test_setting_the_rate_again_starts_full_buckets(sandbox):
    iam = client(sandbox)
    with limited(sandbox, TRICKLE, burst=2):
        assert outcomes(iam.list_users, 3) == [None, None, 'Throttling']
        sandbox.rate = TRICKLE
        assert outcomes(iam.list_users, 3) == [None, None, 'Throttling']


def test_default_burst_is_one_seconds_worth(sandbox):
    iam = client(sandbox)
    with limited(sandbox, TRICKLE):
        # Below one request a second, the bucket still holds one whole request.
        assert outcomes(iam.list_users, 2) == [None, 'Throttling']


# -- a real run under the limit ------------------------------------------------------
def matched_keys(out):
    resources = read_json(out / 'unused-access-keys-report' / 'resources.json')
    return {k['AccessKeyId'] for r in resources for k in r[UNUSED_ANNOTATION]}


def test_the_report_policy_gives_the_same_answer_under_a_rate(sandbox, tmp_path):
    policy = ROOT / 'policies' / 'unused-access-keys-report.yml'
    seeded(sandbox)
    free = custodian_run(sandbox, tmp_path / 'free', policy)
    assert free.returncode == 0, free.stderr
    expected = matched_keys(tmp_path / 'free')
    assert expected
    # The report changes nothing, so the same account serves the limited run. About 30
    # IAM calls, 8 at once, at 10 a second: many are throttled and retried. Backoff waits
    # are cut (faults('') injects nothing): the bucket alone sets the pace.
    with limited(sandbox, 10.0, burst=2):
        run = custodian_run(sandbox, tmp_path / 'limited', policy, env=faults(''))
        throttled = sum(sandbox.throttled.values())
    assert run.returncode == 0, run.stderr
    assert matched_keys(tmp_path / 'limited') == expected
    assert throttled > 0
