"""Wall-clock timing shared by the benchmark scripts (run as `python benchmarks/<name>.py`, which
puts this folder on the import path)."""

import statistics
import time


def median_ms(fn, runs: int, warmup: int = 2) -> float:
    """Median wall time of `fn()` in milliseconds over `runs` calls, after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)
