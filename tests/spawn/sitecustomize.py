"""Put on PYTHONPATH by the tests to make c7n-org's worker pool use the spawn start method,
as it does on macOS and on Linux from Python 3.14."""
import multiprocessing

multiprocessing.set_start_method('spawn', force=True)
