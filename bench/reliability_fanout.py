"""Fan-out reliability: a three-destination `optout-desk submit --to … --to … --to …` (the
CheckMarket, myKaarma and Dynamic Yield simulators, each with latency and injected 429 / 500 /
dropped connections) SIGKILLed at random moments and resumed, again and again. Afterwards every
destination holds exactly the identifiers its plan routed to it, no payload acknowledged in the
journal reached a platform again, and a payload sent twice was always one a crash left without
an answer on a destination where repeats are harmless.

    python -m bench.reliability_fanout            # 600 identifiers, 20 kills
    python -m bench.reliability_fanout --full     # 3,000 identifiers, 40 kills

The harness is shared with tests/integration/test_fanout_reliability.py (CI size).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DESTINATIONS = ("cm", "mk", "dy")


@dataclass
class FanScenario:
    home: Path
    suite: Any  # sandbox.suite.SandboxSuite
    input_file: Path
    intended: dict[str, set[str]]  # destination -> the values its plan routes to it
    env: dict[str, str]
    kills: int = 0
    runs: int = 0
    acknowledged_at_kill: list[tuple[dict[str, int], list[tuple[str, str]]]] = field(
        default_factory=list)


def identifiers(count: int, seed: int) -> list[str]:
    """Distinct emails and Belgian mobiles, half each, plus a duplicate and an invalid line."""
    rng = random.Random(seed)
    lines = []
    for i in range(count):
        if i % 2:
            lines.append(f"+3247{i:07d}")
        else:
            lines.append(f"fan.{i}.{rng.randrange(10**6)}@example.org")
    return [*lines, lines[0].upper(), "not an address"]


def prepare(home: Path, *, count: int, latency_ms: float, seed: int) -> FanScenario:
    from optout_desk.core.identifiers import IdKind
    from optout_desk.core.plan import inputs_from_lines
    from optout_desk.sandbox.server import Sandbox, SandboxConfig
    from optout_desk.sandbox.suite import SandboxSuite
    from optout_desk.store import connections
    from optout_desk.store.connections import ConnectionProfile, env_name_part
    from optout_desk.store.db import connect

    home.mkdir(parents=True, exist_ok=True)
    suite = SandboxSuite(checkmarket=Sandbox(SandboxConfig(records=20, seed=seed,
                                                           latency_ms=latency_ms)),
                         seed=seed, latency_ms=latency_ms, shared_with_mykaarma=0).start()
    cm, mk, dy = suite.checkmarket, suite.mykaarma, suite.dynamic_yield
    retries = {"max_retries": 3, "max_retry_wait_s": 2.0}
    db = connect(home / "optout-desk.sqlite3")
    try:
        connections.add(db, ConnectionProfile("cm", "checkmarket", cm.base_url, "",
                                              settings={"batch_size": 20, **retries}))
        connections.add(db, ConnectionProfile("mk", "mykaarma", mk.base_url, "", settings={
            "department_uuid": mk.department_uuid, "entries_per_request": 5, **retries}))
        connections.add(db, ConnectionProfile("dy", "dynamic-yield", dy.eu_url, "",
                                              settings={"concurrency": 4, **retries}))
    finally:
        db.close()
    lines = identifiers(count, seed)
    input_file = home / "to-submit.txt"
    input_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    inputs = [i for i in inputs_from_lines(lines, region="BE") if i.identifier.key]
    keys = {i.identifier.key for i in inputs if i.identifier.key}
    emails = {i.identifier.key for i in inputs
              if i.identifier.key and i.identifier.kind is IdKind.EMAIL}
    intended = {"cm": keys, "mk": keys, "dy": emails}
    env = dict(os.environ)
    env["OPTOUT_DESK_HOME"] = str(home)
    secrets = {"cm": {"MASTER_KEY": cm.master_key, "KEY": cm.key},
               "mk": {"USERNAME": mk.username, "PASSWORD": mk.password},
               "dy": {"API_KEY": dy.eu_key}}
    for name, fields in secrets.items():
        for secret_field, value in fields.items():
            env[f"OPTOUT_DESK_SECRET_{env_name_part(name)}_{secret_field}"] = value
    return FanScenario(home, suite, input_file, intended, env)


def command(sc: FanScenario, *, resume: bool) -> list[str]:
    argv = [sys.executable, "-m", "optout_desk", "submit", "--yes", "--no-verify",
            "--region", "BE"]
    if resume:
        return [*argv, "--resume"]
    return [*argv, *(a for name in DESTINATIONS for a in ("--to", name)),
            "--from", str(sc.input_file), "--receipt", str(sc.home / "receipt.xlsx")]


def requests_seen(sc: FanScenario) -> int:
    s = sc.suite
    return (len(s.checkmarket.state.request_log) + len(s.mykaarma.state.request_log)
            + len(s.dynamic_yield.state.request_log))


def journal_payloads(sc: FanScenario, acknowledged_only: bool = False
                     ) -> list[tuple[str, int, str, int, int, str]]:
    """(connection, seq, body as sorted JSON, sent_count, resent, state) of every batch."""
    from optout_desk.store.db import connect

    db = connect(sc.home / "optout-desk.sqlite3")
    try:
        rows = db.execute(
            "SELECT p.connection, b.seq, b.payload_json, b.sent_count, "
            "b.resent_after_interruption, b.state FROM batches b JOIN plans p "
            "ON p.id = b.plan_id" + (" WHERE b.state = 'acknowledged'"
                                     if acknowledged_only else "")).fetchall()
    finally:
        db.close()
    return [(c, seq, _key(json.loads(payload)["body"]), sent, resent, state)
            for c, seq, payload, sent, resent, state in rows]


def _key(body: object) -> str:
    return json.dumps(body, sort_keys=True)


def received(sc: FanScenario) -> dict[str, list[str]]:
    """Every request body each platform applied, in arrival order (as sorted JSON)."""
    s = sc.suite
    return {
        "cm": [_key(body) for body in s.checkmarket.state.submitted],
        "mk": [_key(body) for body in s.mykaarma.state.submitted],
        "dy": [_key(body) for _, _, body in s.dynamic_yield.state.accepted],
    }


def run_and_kill(sc: FanScenario, *, resume: bool, after: int, rng: random.Random,
                 timeout_s: float = 120.0) -> bool:
    """Start the command; SIGKILL it once `after` more requests reached the simulators (plus
    a random slice of a request's latency, so kills land mid-request). False when it finished
    first."""
    start = requests_seen(sc)
    proc = subprocess.Popen(command(sc, resume=resume), env=sc.env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    sc.runs += 1
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None and requests_seen(sc) - start < after:
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise TimeoutError("the submit process made no progress")
        time.sleep(0.002)
    if proc.poll() is not None:
        return False
    time.sleep(rng.uniform(0, 0.03))
    acknowledged = [(c, body) for c, _, body, _, _, _ in journal_payloads(sc, True)]
    counts = {name: len(bodies) for name, bodies in received(sc).items()}
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    sc.kills += 1
    sc.acknowledged_at_kill.append((counts, acknowledged))
    return True


def inject_faults(sc: FanScenario, stop: threading.Event, rng: random.Random) -> None:
    """Now and then a 429 (with Retry-After), a 500 or a dropped connection on a platform —
    one at a time per platform, only once it has answered a few requests since the last, so
    faults never pile up while no submit is running."""
    targets = [(sc.suite.checkmarket.state, "3/contacts/optouts"),
               (sc.suite.mykaarma.state, "communications/"),
               (sc.suite.dynamic_yield.state, "eu/")]
    last = [len(state.request_log) for state, _ in targets]
    while not stop.wait(0.02):
        for index, (state, prefix) in enumerate(targets):
            seen = len(state.request_log)
            if seen - last[index] >= rng.randint(3, 12):
                state.inject_faults(rng.choice(["429", "500", "drop"]), 1, prefix,
                                    retry_after_s=0.05)
                last[index] = seen + 1  # the fault itself is the next request


def finish(sc: FanScenario, attempts: int = 8) -> None:
    for _ in range(attempts):
        done = subprocess.run(command(sc, resume=True), env=sc.env, capture_output=True,
                              text=True, timeout=300, stdin=subprocess.DEVNULL)
        sc.runs += 1
        if done.returncode == 0:
            return
    raise AssertionError(f"resume did not finish: {done.returncode}\n{done.stdout}\n"
                         f"{done.stderr}")


@dataclass
class FanCheck:
    problems: list[str]
    requests: dict[str, int]
    repeats: dict[str, int]


def check(sc: FanScenario) -> FanCheck:
    """Each destination exact; no acknowledged payload sent again; repeats only after a kill."""
    from optout_desk.core.identifiers import normalise_email

    problems: list[str] = []
    got = received(sc)
    s = sc.suite
    holding = {
        "cm": {(o.get("Email") or o.get("Phone") or "").lower()
               for o in s.checkmarket.state.optouts()},
        "mk": {value for _, value in s.mykaarma.state.opted_out(s.mykaarma.department_uuid)},
        "dy": s.dynamic_yield.state.opted_out_emails("eu"),
    }
    sent_values = {
        "cm": {v for body in s.checkmarket.state.submitted
               for v in [*body.get("EmailAddresses", []), *body.get("PhoneNumbers", [])]},
        "mk": {e["communicationValue"] for body in s.mykaarma.state.submitted
               for e in body["communicationAttributesList"]},
        "dy": {normalise_email(body["identifier"]["value"]).key or ""
               for _, _, body in s.dynamic_yield.state.accepted if "identifier" in body},
    }
    for name in DESTINATIONS:
        if sent_values[name] != sc.intended[name]:
            problems.append(f"{name}: sent {len(sent_values[name])} values, intended "
                            f"{len(sc.intended[name])}")
        if not sc.intended[name] <= holding[name]:
            problems.append(f"{name}: the platform lacks some intended opt-outs")
    repeats: Counter[str] = Counter()
    seen = {name: Counter(bodies) for name, bodies in got.items()}
    for connection, seq, body, sent_count, resent, state in journal_payloads(sc):
        times = seen[connection][body]
        if state != "acknowledged" or times < 1:
            problems.append(f"{connection} batch {seq}: {state}, on the platform {times}x")
        if times > sent_count:
            problems.append(f"{connection} batch {seq}: on the platform {times}x, sent "
                            f"{sent_count}x")
        if times > 1 + resent:
            problems.append(f"{connection} batch {seq}: repeated without an interruption")
        repeats[connection] += max(0, times - 1)
    for counts, acknowledged in sc.acknowledged_at_kill:
        later = {name: Counter(bodies[counts[name]:]) for name, bodies in got.items()}
        again = sum(1 for connection, body in acknowledged if later[connection][body])
        if again:
            problems.append(f"{again} payloads acknowledged at a kill were sent again")
    # A kill can leave at most the requests in flight without an answer: CheckMarket sends
    # one at a time, myKaarma and Dynamic Yield four (their concurrency setting).
    in_flight = 1 + 4 + 4
    if sum(repeats.values()) > in_flight * sc.kills:
        problems.append(f"{sum(repeats.values())} repeats for {sc.kills} kills (at most "
                        f"{in_flight} requests are in flight at a kill)")
    return FanCheck(problems, {name: len(bodies) for name, bodies in got.items()},
                    dict(repeats))


def kill_scenario(home: Path, *, count: int, kills: int, latency_ms: float,
                  seed: int) -> tuple[FanScenario, FanCheck]:
    rng = random.Random(seed)
    sc = prepare(home, count=count, latency_ms=latency_ms, seed=seed)
    stop = threading.Event()
    faults = threading.Thread(target=inject_faults, args=(sc, stop, random.Random(seed + 1)),
                              daemon=True)
    try:
        faults.start()
        # Requests one full run makes (DY one per email dominates), spread over the kills.
        total = count // 20 + count // 5 + count // 2
        per_kill = max(2, total // (kills + 1))
        started = False
        for _ in range(kills):
            if not run_and_kill(sc, resume=started, after=rng.randint(1, per_kill), rng=rng):
                break
            # Killed before the plans were journaled: the next run starts afresh.
            started = bool(journal_payloads(sc))
        stop.set()
        faults.join()
        finish(sc)
        return sc, check(sc)
    finally:
        stop.set()
        sc.suite.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="3,000 identifiers, 40 kills")
    parser.add_argument("--seed", type=int, default=21)
    args = parser.parse_args()
    count, kills = (3000, 40) if args.full else (600, 20)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        sc, result = kill_scenario(Path(tmp) / "fan", count=count, kills=kills,
                                   latency_ms=20, seed=args.seed)
        seconds = time.monotonic() - started
    print(f"fan-out: {count:,} identifiers to 3 destinations, {sc.kills} SIGKILLs, "
          f"{sc.runs} processes, {seconds:.1f} s")
    for name in DESTINATIONS:
        print(f"  {name}: {len(sc.intended[name]):,} intended, {result.requests[name]:,} "
              f"requests applied, {result.repeats.get(name, 0)} repeats after a kill")
    for problem in result.problems:
        print("  PROBLEM:", problem)
    print("OK" if not result.problems else "FAILED")
    return 0 if not result.problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
