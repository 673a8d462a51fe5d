"""Receiver reliability: LOX24 events, each delivered 1-4 times by concurrent senders, while the
`optout-desk receive` process is killed with SIGKILL mid-way and restarted.

Checks, right after each kill (before the restart) and at the end:
- every event acknowledged (2xx) before the kill is in the inbox, exactly once;
- in the end every event is there exactly once, with at least one and at most as many
  deliveries as were sent for it.

A sender keeps retrying an event's delivery until it is acknowledged (through the kills), as
LOX24 retries a non-2xx; attempt_number counts up. The senders are asyncio tasks on keep-alive
connections (threads with httpx would make the client, not the receiver, the bottleneck).

    python -m bench.reliability_receiver            # 10,000 events, 32 senders, 2 kills
    python -m bench.reliability_receiver --full     # 50,000 events, 32 senders, 5 kills

The harness is shared with tests/integration/test_receiver_reliability.py (CI size).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from optout_desk.sandbox.lox24 import MAX_ATTEMPTS, generate_events

SOURCE = "lox-reliability"


@dataclass
class Result:
    events: int
    deliveries_planned: int
    requests: int = 0
    acknowledged: int = 0  # events acknowledged at least once
    kills: list[dict[str, int]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ReceiverProcess:
    """`optout-desk receive` as a separate process over `home`."""

    def __init__(self, home: Path, port: int) -> None:
        self.home, self.port = home, port
        self.env = {**os.environ, "OPTOUT_DESK_HOME": str(home)}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "optout_desk", "receive", "--port", str(self.port)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the receiver exited: " + (
                    self.process.stderr.read().decode(errors="replace")
                    if self.process.stderr else ""))
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).is_success:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the receiver did not start in time")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._close()

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(20)
        self._close()
        return code

    def _close(self) -> None:
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()


def stored(home: Path) -> Counter[str]:
    """event id -> rows in the inbox (opened as a fresh reader: WAL recovery included)."""
    conn = sqlite3.connect(home / "optout-desk.sqlite3", timeout=30)
    try:
        return Counter(row[0] for row in conn.execute(
            "SELECT event_id FROM inbox_events WHERE source = ?", (SOURCE,)))
    finally:
        conn.close()


def kill_scenario(home: Path, *, count: int = 10_000, senders: int = 32, kills: int = 2,
                  seed: int = 1, timeout_s: float = 240.0) -> Result:
    os.environ["OPTOUT_DESK_HOME"] = str(home)
    from optout_desk import paths
    from optout_desk.workflows import inbox

    paths.set_data_dir(home)
    _source, token = inbox.add_source(SOURCE, "lox24", keep_token=False)
    events = generate_events(count, seed=seed, resubscribe_share=0.0)
    rng = random.Random(seed)
    planned = [rng.randint(1, MAX_ATTEMPTS) for _ in events]
    work = [(i, n) for i, k in enumerate(planned) for n in range(k)]
    rng.shuffle(work)
    result = Result(count, len(work))
    receiver = ReceiverProcess(home, free_port())
    receiver.start()
    url = f"http://127.0.0.1:{receiver.port}/hooks/{token}"

    acked_at: dict[int, float] = {}
    sends: Counter[int] = Counter()
    position = 0
    done = 0
    requests = 0
    deadline = time.monotonic() + timeout_s
    path = url.split(str(receiver.port), 1)[1]

    async def post(connection: list[Any], body: bytes) -> int:
        """One POST on the sender's keep-alive connection (re-opened after a failure);
        the status, or 0 when there was no answer."""
        try:
            if not connection:
                connection.extend(await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", receiver.port), 5))
            reader, writer = connection
            writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                         f"application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                         .encode() + body)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            await asyncio.wait_for(reader.readexactly(length), 10)
            return int(head.split(b" ", 2)[1])
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                TimeoutError, ValueError, IndexError):
            if connection:
                connection[1].close()
                connection.clear()
            return 0

    async def sender() -> None:
        nonlocal position, done, requests
        connection: list[Any] = []
        while position < len(work):
            index, _nth = work[position]
            position += 1
            attempt = 0
            while time.monotonic() < deadline:
                attempt += 1
                body = orjson.dumps({**events[index], "attempt_number": attempt,
                                     "attempts_total": MAX_ATTEMPTS})
                sends[index] += 1
                requests += 1
                status = await post(connection, body)
                if 200 <= status < 300:
                    acked_at.setdefault(index, time.monotonic())
                    done += 1
                    break
                await asyncio.sleep(min(0.5, 0.05 * attempt))
        if connection:
            connection[1].close()

    async def killer() -> None:
        for number in range(1, kills + 1):
            target = len(work) * number // (kills + 1)
            while done < target and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            # Nothing else runs on this loop meanwhile: the snapshot is exactly what was
            # acknowledged before the kill.
            receiver.kill()
            acknowledged = {events[i]["id"] for i in acked_at}
            rows = stored(home)
            lost = acknowledged - set(rows)
            doubled = [e for e, n in rows.items() if n > 1]
            if lost:
                result.problems.append(f"kill {number}: {len(lost)} acknowledged events lost")
            if doubled:
                result.problems.append(f"kill {number}: {len(doubled)} events stored twice")
            result.kills.append({"after_deliveries": done,
                                 "acknowledged_events": len(acknowledged),
                                 "stored_events": len(rows)})
            await asyncio.to_thread(receiver.start)

    async def run_all() -> None:
        await asyncio.gather(killer(), *(sender() for _ in range(senders)))

    started = time.monotonic()
    try:
        asyncio.run(run_all())
    finally:
        code = receiver.stop()
    if code != 0:
        result.problems.append(f"the receiver exited {code} on SIGTERM")
    result.seconds = time.monotonic() - started
    result.requests = requests
    result.acknowledged = len(acked_at)
    rows = stored(home)
    ids = [e["id"] for e in events]
    missing = [e for e in ids if rows[e] == 0]
    if missing:
        result.problems.append(f"{len(missing)} events never arrived")
    if any(n > 1 for n in rows.values()):
        result.problems.append("some events are stored more than once")
    if len(acked_at) != count:
        result.problems.append(f"only {len(acked_at)} of {count} events were acknowledged")
    conn = sqlite3.connect(home / "optout-desk.sqlite3")
    try:
        counts = dict(conn.execute("SELECT event_id, deliveries FROM inbox_events"))
    finally:
        conn.close()
    too_many = [i for i, e in enumerate(ids) if counts.get(e, 0) > sends[i]]
    if too_many:
        result.problems.append(f"{len(too_many)} events count more deliveries than were sent")
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args(argv)
    count, kills = (50_000, 5) if args.full else (10_000, 2)
    with tempfile.TemporaryDirectory(prefix="optout-desk-reliability-") as folder:
        result = kill_scenario(Path(folder), count=count, kills=kills,
                               timeout_s=900 if args.full else 240)
    print(f"{result.events:,} events, {result.deliveries_planned:,} planned deliveries, "
          f"{result.requests:,} requests (retries through {len(result.kills)} SIGKILLs) in "
          f"{result.seconds:.1f} s")
    for number, kill in enumerate(result.kills, start=1):
        print(f"  kill {number}: after {kill['after_deliveries']:,} acknowledged deliveries, "
              f"{kill['acknowledged_events']:,} events acknowledged, "
              f"{kill['stored_events']:,} stored")
    print("problems: " + ("; ".join(result.problems) if result.problems else "none"))
    return 1 if result.problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
