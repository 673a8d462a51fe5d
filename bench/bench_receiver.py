"""Webhook receiver throughput: deliveries per second and time to acknowledge, with every event
committed (synchronous=FULL, group commit) before its 2xx — beside a bare uvicorn app that
answers 200 without reading or storing anything, in the same run, on the same uvicorn settings.

    python -m bench.bench_receiver            # 32 concurrent senders, 6,000 deliveries each run
    python -m bench.bench_receiver --full     # 32 concurrent senders, 30,000 deliveries
    python -m bench.bench_receiver --rounds 3 # the three servers three times; median verdict

Targets (issue 12): at least half the bare rate, p99 time to acknowledge <= 100 ms, at 32
concurrent senders. Each server runs in its own process; the load comes from one asyncio
process over 32 keep-alive connections with a minimal HTTP/1.1 client (an httpx client would
be the bottleneck, not the servers). Beside each rate: the CPU time per delivery of the server
(with its event store child) and of the sender, and how much of the machine's cores stayed
idle: the servers and the sender share the cores, so a rate is bounded by their sum.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import psutil

from bench.reliability_receiver import free_port
from optout_desk.sandbox.lox24 import generate_events

SENDERS = 32


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The baseline: answers every request 200 with a small JSON body, stores nothing."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b'{"status":"stored","deliveries":1}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _starlette_hook(request: Any) -> Any:
    from starlette.responses import JSONResponse

    await request.body()
    return JSONResponse({"status": "stored", "deliveries": 1})


def _starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.routing import Route

    return Starlette(routes=[Route("/hooks/{token}", _starlette_hook, methods=["POST"])])


# A second reference: the same framework (a Starlette route that reads the body and answers
# 200), storing nothing. Between it and the receiver lies what validating and committing cost.
starlette_app = _starlette_app()


def start(command: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with __import__("socket").create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"server did not start: {command}")


async def _sender(port: int, path: str, bodies: list[bytes], latencies: list[float],
                  statuses: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for body in bodies:
            request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                       f"application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
            started = time.perf_counter()
            writer.write(request + body)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses.append(status)
    finally:
        writer.close()


def _cpu_seconds(process: psutil.Process) -> float:
    """CPU time of a server and its children (the receiver's event store)."""
    total = 0.0
    for each in (process, *process.children(recursive=True)):
        try:
            times = each.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def load_measured(server: subprocess.Popen[bytes], port: int, path: str,
                  bodies: list[bytes]) -> dict[str, float]:
    """load() plus where the CPU went: microseconds per delivery in the server (with its
    children), in this load generator, and the share of both cores left idle. Servers and
    sender share the machine's cores, so these say what bounds a rate."""
    process = psutil.Process(server.pid)
    server_before, own_before = _cpu_seconds(process), os.times()
    machine_before = psutil.cpu_times()
    figures = load(port, path, bodies)
    machine_after = psutil.cpu_times()
    own_after = os.times()
    count = len(bodies)
    figures["server_us"] = 1e6 * (_cpu_seconds(process) - server_before) / count
    figures["sender_us"] = 1e6 * ((own_after.user - own_before.user)
                                  + (own_after.system - own_before.system)) / count
    spent = sum(machine_after) - sum(machine_before)
    figures["idle"] = (machine_after.idle - machine_before.idle) / spent if spent else 0.0
    return figures


def load(port: int, path: str, bodies: list[bytes]) -> dict[str, float]:
    latencies: list[float] = []
    statuses: list[int] = []
    shares = [bodies[i::SENDERS] for i in range(SENDERS)]

    async def run() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(_sender(port, path, share, latencies, statuses)
                               for share in shares))
        return time.perf_counter() - started

    seconds = asyncio.run(run())
    bad = sum(1 for s in statuses if s != 200)
    if bad:
        raise RuntimeError(f"{bad} deliveries were not answered 200")
    latencies.sort()
    return {"rate": len(bodies) / seconds, "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))]}


def _commits(home: Path) -> tuple[int, int]:
    """(events, commits) of the last receiver run, from its event store's closing line."""
    found = (0, 0)
    for log_file in (home / "logs").glob("*.log*"):
        for line in log_file.read_text(encoding="utf-8", errors="replace").splitlines():
            match = re.search(r"inbox event store: (\d+) events in (\d+) commits", line)
            if match:
                found = (int(match[1]), int(match[2]))
    return found


def _one_round(home: Path, env: dict[str, str], token: str, warm: list[bytes],
               measured: list[bytes]) -> dict[str, dict[str, float]]:
    results = {}
    for name, command, path in (
        (BARE, [sys.executable, "-m", "uvicorn", "bench.bench_receiver:bare_app",
                "--no-access-log", "--log-level", "warning"], "/hooks/x"),
        (FRAMEWORK, [sys.executable, "-m", "uvicorn", "bench.bench_receiver:starlette_app",
                     "--no-access-log", "--log-level", "warning"], "/hooks/x"),
        (OURS, [sys.executable, "-m", "optout_desk", "receive"], f"/hooks/{token}"),
    ):
        port = free_port()
        process = start([*command, "--port", str(port)], port, env)
        try:
            load(port, path, warm)
            results[name] = load_measured(process, port, path, measured)
        finally:
            process.terminate()
            process.wait(20)
    operations, commits = _commits(home)
    results[OURS]["per_commit"] = operations / commits if commits else 0.0
    return results


BARE = "bare uvicorn (200, nothing stored)"
FRAMEWORK = "Starlette route (body read, 200, nothing stored)"
OURS = "optout-desk receive (stored, synchronous=FULL)"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the three servers this many times, one after another "
                        "(the figures of a shared machine move between runs: the verdict "
                        "takes the median round)")
    args = parser.parse_args(argv)
    count = 30_000 if args.full else 6_000
    rounds = max(1, args.rounds)
    events = generate_events(rounds * count + 1000, seed=5, resubscribe_share=0.0)
    bodies = [orjson.dumps({**e, "attempt_number": 1, "attempts_total": 4}) for e in events]
    warm = bodies[:1000]
    print(f"{count:,} LOX24 deliveries per run, {SENDERS} concurrent senders "
          f"(after {len(warm):,} warm-up deliveries)")
    verdicts = []
    with tempfile.TemporaryDirectory(prefix="optout-desk-bench-receiver-") as folder:
        home = Path(folder)
        env = {**os.environ, "OPTOUT_DESK_HOME": str(home)}
        os.environ["OPTOUT_DESK_HOME"] = str(home)
        from optout_desk.workflows import inbox

        _source, token = inbox.add_source("bench", "lox24", keep_token=False)
        for number in range(rounds):
            measured = bodies[1000 + number * count:1000 + (number + 1) * count]
            results = _one_round(home, env, token, warm, measured)
            if rounds > 1:
                print(f" round {number + 1}:")
            for name, figures in results.items():
                print(f"  {name:50s} {figures['rate']:8,.0f} deliveries/s   p50 "
                      f"{figures['p50_ms']:6.1f} ms   p99 {figures['p99_ms']:6.1f} ms   "
                      f"CPU/delivery: server {figures['server_us']:4.0f} us, sender "
                      f"{figures['sender_us']:3.0f} us; cores idle {figures['idle']:4.0%}")
            bare, framework, ours = results[BARE], results[FRAMEWORK], results[OURS]
            ratio = ours["rate"] / bare["rate"]
            print(f"  ratio to bare: {ratio:.2f} (target >= 0.50); to the Starlette route: "
                  f"{ours['rate'] / framework['rate']:.2f}; p99 {ours['p99_ms']:.1f} ms "
                  f"(target <= 100 ms); {ours['per_commit']:.1f} events per commit")
            verdicts.append((ratio, ours["p99_ms"]))
        conn = sqlite3.connect(home / "optout-desk.sqlite3")
        stored = conn.execute("SELECT COUNT(*) FROM inbox_events").fetchone()[0]
        conn.close()
    expected = 1000 + rounds * count
    verdicts.sort()
    ratio, p99 = verdicts[(len(verdicts) - 1) // 2]  # the lower median of an even count
    if rounds > 1:
        print(f"  median round: ratio {ratio:.2f}, p99 {p99:.1f} ms")
    print(f"  events stored: {stored:,} of {expected:,} sent")
    ok = ratio >= 0.5 and p99 <= 100 and stored == expected
    print("targets: " + ("met" if ok else "NOT met"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
