"""Fetching a CheckMarket opt-out list: the connector against the sandbox with added latency.

The sandbox runs in a SUBPROCESS (`python -m optout_desk sandbox`), so its CPU does not share
the client's GIL. Figures printed:
- measured: CheckMarketClient.list_optouts with its default settings (page_size, concurrency);
  the first fetch (cold: the sandbox serialises its records on first use) and the best of two
  warm fetches;
- ideal: pages ÷ concurrency × latency (only the added latency, nothing else);
- naive baseline measured in the same run: sequential `$top=25` requests following Links.Next
  (the vendor tutorial's way), timed over the first records and scaled up linearly.

    python -m bench.bench_fetch            # 20k opt-outs
    python -m bench.bench_fetch --full     # 100k opt-outs
    python -m bench.bench_fetch --page-cap 500   # a platform that silently serves 500 a page

Every fetch is checked complete against the platform's count (connectors/paging.py) and must
hold every opt-out: the figures are for complete fetches only.
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import subprocess
import sys
import tempfile
import time

import httpx

from optout_desk.connectors.checkmarket import CheckMarketClient, CheckMarketSettings


def start_sandbox(records: int, latency_ms: float, master: str, key: str,
                  home: str, page_cap: int | None = None) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "optout_desk", "sandbox", "--port", "0", "--records",
               str(records), "--seed", "1", "--latency-ms", str(latency_ms),
               "--master-key", master, "--key", key]
    if page_cap is not None:
        command += ["--page-cap", str(page_cap), "--limit-echoes-top"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "OPTOUT_DESK_HOME": home})
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("Base URL:"):
            return process, line.split(":", 1)[1].strip()
    raise SystemExit("the sandbox did not start")


def naive(base_url: str, master: str, key: str, limit: int) -> tuple[float, int]:
    """Sequential, default page size, following Links.Next: (seconds, records) for `limit`."""
    headers = {"X-Master-Key": master, "X-Key": key, "Accept": "application/json"}
    seen = 0
    started = time.perf_counter()
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        url: str | None = "3/contacts/optouts?$top=25"
        while url and seen < limit:
            body = client.get(url).json()
            seen += len(body["Data"])
            url = (body.get("Links") or {}).get("Next", {}).get("Href")
    return time.perf_counter() - started, seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="100k opt-outs instead of 20k")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--page-size", type=int, default=None, help="default: the connector's")
    parser.add_argument("--concurrency", type=int, default=None, help="default: the connector's")
    parser.add_argument("--page-cap", type=int, default=None,
                        help="the sandbox serves at most this many rows a page, saying nothing")
    args = parser.parse_args()
    count = 100_000 if args.full else 20_000
    master, key = "bench-" + secrets.token_hex(6), "bench-" + secrets.token_hex(6)
    defaults = CheckMarketSettings(base_url="http://127.0.0.1/")
    page_size = args.page_size or defaults.page_size
    concurrency = args.concurrency or defaults.concurrency
    with tempfile.TemporaryDirectory() as home:
        process, base_url = start_sandbox(count, args.latency_ms, master, key, home,
                                          args.page_cap)
        try:
            settings = CheckMarketSettings(base_url=base_url, page_size=page_size,
                                           concurrency=concurrency)
            timings = []
            with CheckMarketClient(settings, master, key) as client:
                for _ in range(3):
                    started = time.perf_counter()
                    records = client.list_optouts()
                    timings.append(time.perf_counter() - started)
                    assert len(records) == count, len(records)
            sample = min(count, 2_000)
            naive_s, naive_n = naive(base_url, master, key, sample)
        finally:
            process.terminate()
            process.wait(timeout=10)
    pages = math.ceil(count / min(page_size, args.page_cap or page_size))
    ideal = math.ceil(pages / concurrency) * args.latency_ms / 1000
    warm = min(timings[1:])
    naive_total = naive_s * count / naive_n
    print(f"fetch {count:,} opt-outs, sandbox in a subprocess, +{args.latency_ms:g} ms per "
          f"request; page_size={page_size}, concurrency={concurrency} ({pages} pages"
          + (f", silently capped at {args.page_cap}" if args.page_cap else "") + ")")
    print(f"  measured (cold, first fetch):  {timings[0]:7.3f} s")
    print(f"  measured (warm, best of 2):    {warm:7.3f} s")
    print(f"  ideal (pages/concurrency x latency): {ideal:7.3f} s   "
          f"ratio warm {warm / ideal:4.2f}x, cold {timings[0] / ideal:4.2f}x (target <= 1.5x)")
    print(f"  naive baseline ($top=25, sequential, Links.Next): {naive_n:,} records in "
          f"{naive_s:.3f} s, scaled to {count:,}: {naive_total:7.1f} s")
    print(f"  speed-up over naive: warm {naive_total / warm:5.0f}x, cold "
          f"{naive_total / timings[0]:5.0f}x (target >= 50x)")


if __name__ == "__main__":
    main()
