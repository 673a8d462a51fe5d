"""myKaarma and Dynamic Yield as destinations: sending one request per identifier at a
concurrency, and looking identifiers up in batches — each against the ideal (requests ÷
concurrency × latency) and against bare httpx doing the same requests in the same run.

Targets (issue 10): Dynamic Yield, 10,000 email opt-outs, one request each, 20 ms latency,
concurrency 8, within 1.5× of the ideal, journal overhead ≤ 0.3 ms per request; myKaarma
look-up of 100,000 identifiers in batches of 500 at 20 ms within 1.5× of the ideal.

    python -m bench.bench_destinations            # 2,000 opt-outs, 20,000 look-ups
    python -m bench.bench_destinations --full     # the issue's sizes
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.simulators import simulators_process
from optout_desk import paths, secrets
from optout_desk.connectors.dynamic_yield import DynamicYieldFormat, DynamicYieldSettings
from optout_desk.connectors.mykaarma import (
    Communication,
    MyKaarmaClient,
    MyKaarmaSettings,
)
from optout_desk.core.identifiers import normalise_email
from optout_desk.core.plan import Destination, PlanInput, build_plan
from optout_desk.store import connections, journal
from optout_desk.store.connections import ConnectionProfile
from optout_desk.store.db import connect
from optout_desk.workflows import submit

LATENCY_MS = 20.0


def bare_posts(base_url: str, headers: dict[str, str], requests: list[tuple[str, object]],
               concurrency: int) -> float:
    """Baseline: the same requests with bare httpx on `concurrency` threads, no journal."""
    work = iter(requests)
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
            while True:
                with lock:
                    item = next(work, None)
                if item is None:
                    return
                path, body = item
                client.post(path, json=body).raise_for_status()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def dynamic_yield(printed: dict[str, str], count: int, concurrency: int) -> None:
    base_url, key = printed["Dynamic Yield EU base URL"], printed["Dynamic Yield EU API key"]
    inputs = [PlanInput(normalise_email(f"dy.bench.{i}@example.org")) for i in range(count)]
    plan_format = DynamicYieldFormat(DynamicYieldSettings(base_url=base_url))
    plan = build_plan(inputs, destination=Destination("dy", "dynamic-yield", "h"),
                      payload_format=plan_format)
    requests = [("userdata/channels/email/opt-out", b.payload.body) for b in plan.batches]
    bare = bare_posts(base_url, {"DY-API-Key": key}, requests, concurrency)

    db = connect()
    try:
        connections.add(db, ConnectionProfile("dy", "dynamic-yield", base_url, "",
                                              settings={"concurrency": concurrency}))
    finally:
        db.close()
    secrets.store_secret("dy", "API_KEY", key, session_only=True)
    plan_id = submit.save_plan(submit.prepare_plan("dy", inputs))
    marks: list[float] = []
    started = time.perf_counter()
    outcome = submit.execute_plan(plan_id, verify=False,
                                  progress=lambda _: marks.append(time.perf_counter()))
    desk = time.perf_counter() - started
    assert outcome.status == "completed" and outcome.submitted == count, outcome.error
    ideal = count / concurrency * LATENCY_MS / 1000
    per_request = journal_overhead(plan)
    print(f"Dynamic Yield: {count:,} email opt-outs, one request each, concurrency "
          f"{concurrency}, {LATENCY_MS:g} ms latency; ideal {ideal:.2f} s")
    print(f"  bare httpx (baseline)          {bare:6.2f} s   {bare / ideal:.2f}× ideal")
    print(f"  desk: execute_plan             {desk:6.2f} s   {desk / ideal:.2f}× ideal "
          f"(target ≤ 1.5×), {desk / bare:.2f}× bare")
    print(f"  journal per request            {per_request:6.3f} ms (target ≤ 0.3 ms)")


def journal_overhead(plan: object) -> float:
    """mark_sent + mark_acknowledged per request, without HTTP (ms)."""
    db = connect()
    try:
        plan_id = journal.save_plan(db, plan)  # type: ignore[arg-type]
        batches = journal.batches(db, plan_id)
        started = time.perf_counter()
        for batch in batches:
            journal.mark_sent(db, plan_id, batch.seq)
            journal.mark_acknowledged(db, plan_id, batch.seq, http_status=200, body_status=None,
                                      message="ok", attempts=1)
        return (time.perf_counter() - started) / len(batches) * 1000
    finally:
        db.close()


def mykaarma_lookup(printed: dict[str, str], count: int, batch: int,
                    concurrency: int) -> None:
    base_url = printed["myKaarma base URL"]
    department = printed["myKaarma department UUID"]
    user, password = printed["myKaarma username"], printed["myKaarma password"]
    entries = [Communication("email", f"mk.bench.{i}@example.org") for i in range(count)]
    settings = MyKaarmaSettings.from_mapping(base_url, {
        "department_uuid": department, "lookup_batch_size": batch,
        "concurrency": concurrency})
    bodies = [{"communicationList": [{"communicationType": "EMAIL", "communicationValue":
                                      e.value} for e in entries[i:i + batch]]}
              for i in range(0, count, batch)]
    path = f"department/{department}/communications/optoutstatus/list"
    bare = bare_posts(base_url, {"Authorization": httpx.BasicAuth(user, password)
                                 ._auth_header}, [(path, b) for b in bodies], concurrency)
    with MyKaarmaClient(settings, user, password) as client:
        started = time.perf_counter()
        statuses = client.lookup_statuses(entries)
        desk = time.perf_counter() - started
    assert len(statuses) == count
    ideal = len(bodies) / concurrency * LATENCY_MS / 1000
    print(f"myKaarma look-up: {count:,} identifiers in {len(bodies):,} batches of {batch}, "
          f"concurrency {concurrency}, {LATENCY_MS:g} ms latency; ideal {ideal:.2f} s")
    print(f"  bare httpx (baseline)          {bare:6.2f} s   {bare / ideal:.2f}× ideal")
    print(f"  desk: lookup_statuses          {desk:6.2f} s   {desk / ideal:.2f}× ideal "
          f"(target ≤ 1.5×), {desk / bare:.2f}× bare")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="the issue's sizes")
    args = parser.parse_args()
    opt_outs, lookups = (10_000, 100_000) if args.full else (2_000, 20_000)
    with tempfile.TemporaryDirectory() as tmp, simulators_process(LATENCY_MS) as printed:
        paths.set_data_dir(Path(tmp))
        dynamic_yield(printed, opt_outs, concurrency=8)
        for concurrency in (1, 4):
            mykaarma_lookup(printed, lookups, batch=500, concurrency=concurrency)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
