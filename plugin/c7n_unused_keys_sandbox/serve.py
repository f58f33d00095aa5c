"""`c7n-unused-keys sandbox`: the emulator, seeded from the organisation file, served
until stopped, for a shell or for teams that try the policies by hand."""
import signal
import threading

from c7n_unused_keys.accounts import load_accounts

from .emulator import Emulator
from .functions import FUNCTION_ROLE, OUTPUT_BUCKET, prepare_account, prepare_bucket
from .seed import seed_organisation


def serve(port: int, config_path: str, extra_users: int) -> int:
    """Start, seed, print the environment, and serve until SIGINT or SIGTERM."""
    accounts = load_accounts(config_path)
    emu = Emulator(port=port).start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        print('# c7n-unused-keys sandbox: AWS emulator on %s' % emu.url, flush=True)
        seeded = seed_organisation(emu, accounts, extra=extra_users)
        for account, users in seeded.items():
            prepare_account(emu, account)
            print('# seeded %s (%s): %d users, %d keys; role %s for Lambda functions' % (
                account, accounts[account], len(users), sum(len(u.keys) for u in users),
                FUNCTION_ROLE), flush=True)
        if accounts:
            prepare_bucket(emu, next(iter(accounts)))
            print('# output bucket s3://%s (in %s)' % (OUTPUT_BUCKET, next(iter(accounts))),
                  flush=True)
        for k, v in emu.env().items():
            print('export %s=%s' % (k, v))
        print('# ready; stop with Ctrl-C or SIGTERM', flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        emu.stop()
    print('# stopped', flush=True)
    return 0
