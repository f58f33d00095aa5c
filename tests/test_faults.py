"""Faults injected into the real `custodian` subprocess (tests/faults): the final state
equals that of a run without faults, and the safety invariants hold."""
import json
from datetime import datetime, timezone

from c7n_unused_keys.seed import organisation, seed_account
from conftest import DEFAULT_ACCOUNT, ROOT, custodian_run, faults, run_command

RETIRE = ROOT / 'policies' / 'unused-access-keys-retire.yml'
NAME = 'unused-access-keys-retire'


def shape(emu):
    """Per user: its keys (by age) as (status, has marker), and its other tag keys."""
    b = emu.backend(DEFAULT_ACCOUNT)
    out = {}
    for u in b.users.values():
        tags = {t['Key'] for t in b.list_user_tags(u.name)}
        keys = sorted(u.access_keys, key=lambda k: k.create_date)
        out[u.name] = ([(k.status, 'c7n-unused-keys:' + k.access_key_id in tags)
                        for k in keys],
                       sorted(t.split(':')[0] for t in tags))
    return out


def steps(out):
    run = run_command(['c7n-unused-keys', 'report', out, '--format', 'json'], None)
    return sorted((r['user'], r['step']) for r in json.loads(run.stdout)['rows'])


def seeded(emu):
    emu.reset()
    seed_account(emu, DEFAULT_ACCOUNT, organisation('dev', datetime.now(timezone.utc)))


def test_twenty_percent_throttling_changes_nothing(sandbox, tmp_path):
    seeded(sandbox)
    clean = custodian_run(sandbox, tmp_path / 'clean', RETIRE)
    assert clean.returncode == 0, clean.stderr
    expected = shape(sandbox), steps(tmp_path / 'clean')

    seeded(sandbox)
    throttled = custodian_run(sandbox, tmp_path / 'throttled', RETIRE,
                              env=faults('*=Throttling~0.2'))
    assert throttled.returncode == 0, throttled.stderr
    assert (shape(sandbox), steps(tmp_path / 'throttled')) == expected
    assert expected[1] and 'deleted' in {s for _, s in expected[1]}
