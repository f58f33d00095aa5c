"""The plugin's thread pools come from c7n's `executor_factory`, as c7n's own elements' do.

c7n's tests swap `executor_factory` for `MainThreadExecutor`; every pool of the plugin
must then run on the main thread too.
"""
import json
import sys

import yaml

from c7n_unused_keys.sources import WORKERS
from conftest import ROOT, run_command
from helpers import seeded

# `custodian run` in-process, once for each argv list of its first argument (one
# interpreter for all of them), with c7n's executor swapped for one that records what it
# maps. Prints what each run mapped.
CUSTODIAN = '''
import json, sys
from c7n import element, manager
from c7n.executor import MainThreadExecutor
mapped = []

class Recording(MainThreadExecutor):
    def map(self, func, iterable):
        mapped.append([func.__qualname__, self.kw.get('max_workers')])
        return super().map(func, iterable)

element.Element.executor_factory = Recording
manager.ResourceManager.executor_factory = Recording
from c7n.cli import main
runs = []
for argv in json.loads(sys.argv[1]):
    sys.argv = ['custodian'] + argv
    mapped = []
    try:
        main()
    except SystemExit as e:
        assert not e.code, (argv, e.code)
    runs.append(mapped)
print(json.dumps(runs))
'''
OURS = {
    'ParallelDescribeUser.augment.<locals>.get_user',
    'Sources.hybrid.<locals>.<lambda>',
    'Sources.tags.<locals>.<lambda>',
    'MarkedAccessKeys.process.<locals>.key_gone',
    'RetireAccessKeys.retire.<locals>.plan',
    'RetireAccessKeys.retire.<locals>.execute',
}


def mapped_by(emu, runs):
    """What each run of `runs` ([(output folder, policy file)]) mapped, in order."""
    argvs = [['run', '-s', str(out), '--cache-period', '0', str(policy)] for out, policy in runs]
    run = run_command([sys.executable, '-c', CUSTODIAN, json.dumps(argvs)], emu)
    assert run.returncode == 0, run.stderr
    mapped = json.loads(run.stdout.strip().splitlines()[-1])
    assert len(mapped) == len(runs)
    return [tuple(m) for each in mapped for m in each]


def test_every_pool_of_the_plugin_is_c7ns(sandbox, tmp_path):
    seeded(sandbox)
    runs = [(tmp_path / str(n), ROOT / 'policies' / ('unused-access-keys-%s.yml' % policy))
            for n, policy in enumerate(['report', 'retire', 'retire'])]
    # The user sources with pools of their own, under the report policy.
    report = yaml.safe_load((ROOT / 'policies' / 'unused-access-keys-report.yml').read_text())
    for source in ('list-users', 'describe-parallel'):
        report['policies'][0]['source'] = source
        path = tmp_path / ('report-%s.yml' % source)
        path.write_text(yaml.safe_dump(report))
        runs.append((tmp_path / source, path))
    found = mapped_by(sandbox, runs)
    assert OURS <= {name for name, _ in found}, found
    assert {workers for name, workers in found if name in OURS} == {WORKERS}
