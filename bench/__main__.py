"""Run every benchmark, one after another, each in its own process (`make bench`).

    python -m bench            # quick sizes (a few minutes)
    python -m bench --full     # the issues' sizes (1M rows, 100k fetch/submit; about 10 minutes)

Each benchmark prints its figures beside a baseline measured in the same run. Run them on a
quiet machine: on 2 cores another busy process changes the figures by tens of percent.
"""

from __future__ import annotations

import subprocess
import sys
import time

BENCHMARKS = (
    "bench_normalise",
    "bench_import",
    "bench_reconcile",
    "bench_cache",
    "bench_fetch",
    "bench_submit",
    "bench_destinations",
    "bench_fanout",
    "bench_table",
    "bench_gui_stall",
    "bench_receiver",
)


def main(argv: list[str]) -> int:
    failed = []
    for name in BENCHMARKS:
        print(f"\n=== {name} {' '.join(argv)}", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", f"bench.{name}", *argv])
        print(f"=== {name}: {'ok' if code == 0 else f'exit {code}'} in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
