"""Hybrid stays exact when IAM changed after the credential report was made."""
from c7n_unused_keys.names import UNUSED_ANNOTATION
from conftest import (DEFAULT_ACCOUNT, custodian_run, iam_client, read_json,
                      unused_keys_policy, write_policies)

SOURCES = ('api', 'hybrid', 'credential-report')


def policies(path):
    return write_policies(path, *[unused_keys_policy('unused-%s' % source, {
        'days': 45, 'never-used-days': 30, 'source': source, 'report-max-age-hours': 24 * 365})
        for source in SOURCES])


def run_all(emu, tmp_path):
    run = custodian_run(emu, tmp_path / 'out', policies(tmp_path / 'p.yml'))
    assert run.returncode == 0, run.stderr
    found = {}
    for source in SOURCES:
        resources = read_json(tmp_path / 'out' / ('unused-' + source) / 'resources.json')
        found[source] = {k['AccessKeyId'] for r in resources
                         for k in r[UNUSED_ANNOTATION]}
    return found, run


def make_key(client, emu, user, created, used=None):
    key_id = client.create_access_key(UserName=user)['AccessKey']['AccessKeyId']
    emu.backdate_key(DEFAULT_ACCOUNT, key_id, created_days=created, used_days=used,
                     never_used=used is None)
    return key_id


def test_changes_after_a_young_report(sandbox, tmp_path):
    c = iam_client(sandbox)
    for user in ('used-since', 'deleted-since', 'replaced-since', 'stays-stale'):
        c.create_user(UserName=user)
    used_since = make_key(c, sandbox, 'used-since', 300, used=100)
    deleted = make_key(c, sandbox, 'deleted-since', 300, used=100)
    replaced = make_key(c, sandbox, 'replaced-since', 300, used=100)
    stale = make_key(c, sandbox, 'stays-stale', 300, used=100)
    c.generate_credential_report()
    # After the report: one stale key is used, one deleted, one replaced by a new key.
    sandbox.backdate_key(DEFAULT_ACCOUNT, used_since, used_days=0.5)
    c.delete_access_key(UserName='deleted-since', AccessKeyId=deleted)
    c.delete_access_key(UserName='replaced-since', AccessKeyId=replaced)
    new = make_key(c, sandbox, 'replaced-since', 0.01)
    found, run = run_all(sandbox, tmp_path)
    assert found['api'] == found['hybrid'] == {stale}
    assert new not in found['hybrid']
    # The report source decides on report data: the key used since still looks stale.
    assert found['credential-report'] == {stale, used_since}
    assert 'using the credential report of' in run.stderr


def test_key_created_after_an_old_report(sandbox, tmp_path):
    """A report older than never-used-days cannot rule out a user: a key made after it
    may already be old enough to count as never used."""
    c = iam_client(sandbox)
    c.create_user(UserName='busy')
    make_key(c, sandbox, 'busy', 300, used=1)
    c.generate_credential_report()
    sandbox.backdate_report(DEFAULT_ACCOUNT, days=40)
    late = make_key(c, sandbox, 'busy', 35)
    found, _ = run_all(sandbox, tmp_path)
    assert found['api'] == found['hybrid'] == found['credential-report'] == {late}


def test_young_report_rules_out_users_with_recent_keys(sandbox, tmp_path):
    """The other side: with a young report, a user whose keys were all used recently
    costs no per-user call at all."""
    c = iam_client(sandbox)
    for n in range(5):
        c.create_user(UserName='busy-%d' % n)
        make_key(c, sandbox, 'busy-%d' % n, 300, used=1)
    c.create_user(UserName='idle')
    idle = make_key(c, sandbox, 'idle', 300, used=60)
    found, _ = run_all(sandbox, tmp_path)
    assert found['api'] == found['hybrid'] == found['credential-report'] == {idle}
    stats = read_json(tmp_path / 'out' / 'unused-hybrid' / 'metadata.json')['api-stats']
    assert stats['iam.ListAccessKeys'] == 1 and stats['iam.GetAccessKeyLastUsed'] == 1
