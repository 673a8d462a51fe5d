"""Submission reliability: SIGKILL the `optout-desk submit` process at random moments, resume,
and check that the sandbox ends up with exactly the intended set, that no acknowledged batch was
sent twice, and that the journal and the receipt agree with the server. Then the same with
injected faults (429 with RetryAfter, 500, dropped connections) instead of kills.

    python -m bench.reliability_submit            # 2,000 identifiers, 6 kill points
    python -m bench.reliability_submit --full     # 10,000 identifiers, 20 kill points

The harness functions are shared with tests/integration/test_submit_reliability.py (CI size).
"""

from __future__ import annotations

import argparse
import csv
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

from optout_desk.sandbox.server import Sandbox, SandboxConfig

POST_PATH = "3/contacts/optouts"
CONNECTION = "reliability"


@dataclass
class Scenario:
    """One reliability run: a data folder, a sandbox, an input file and its intended set."""

    home: Path
    box: Sandbox
    input_file: Path
    intended: set[str]
    batch_size: int
    env: dict[str, str]
    kills: list[dict[str, int]] = field(default_factory=list)
    runs: int = 0


def identifiers(count: int, seed: int) -> list[str]:
    """Distinct emails and Belgian mobile numbers, plus a few duplicates and invalid lines."""
    rng = random.Random(seed)
    lines = []
    for i in range(count):
        if i % 5 == 4:
            lines.append(f"+32 47{i:07d}"[:16])
        else:
            lines.append(f"Person.{i}.{rng.randrange(10**6)}@Example.org")
    lines += [lines[0].upper(), "not an address", lines[3]]
    return lines


def prepare(home: Path, *, count: int, batch_size: int, latency_ms: float,
            seed: int = 1) -> Scenario:
    """Start a sandbox, add the connection in `home`'s database, write the input file."""
    from optout_desk import paths
    from optout_desk.core.plan import inputs_from_lines
    from optout_desk.store import connections
    from optout_desk.store.connections import ConnectionProfile, env_name_part
    from optout_desk.store.db import connect

    home.mkdir(parents=True, exist_ok=True)
    box = Sandbox(SandboxConfig(records=200, seed=seed, latency_ms=latency_ms)).start()
    db = connect(home / paths.database_path().name)
    try:
        connections.add(db, ConnectionProfile(CONNECTION, "checkmarket", box.base_url, "",
                                              settings={"batch_size": batch_size,
                                                        "max_retry_wait_s": 2.0}))
    finally:
        db.close()
    lines = identifiers(count, seed)
    input_file = home / "to-submit.txt"
    input_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    intended = {i.identifier.key for i in inputs_from_lines(lines, region="BE")
                if i.identifier.key}
    env = dict(os.environ)
    env["OPTOUT_DESK_HOME"] = str(home)
    part = env_name_part(CONNECTION)
    env[f"OPTOUT_DESK_SECRET_{part}_MASTER_KEY"] = box.master_key
    env[f"OPTOUT_DESK_SECRET_{part}_KEY"] = box.key
    return Scenario(home, box, input_file, intended, batch_size, env)


def command(sc: Scenario, *, resume: bool, verify: bool = False) -> list[str]:
    argv = [sys.executable, "-m", "optout_desk", "submit", CONNECTION, "--yes", "--region", "BE",
            "--receipt", str(sc.home / "receipt.csv")]
    argv += ["--resume"] if resume else ["--from", str(sc.input_file)]
    if not verify:
        argv.append("--no-verify")
    return argv


def posts(box: Sandbox) -> int:
    return len(box.state.requests_to(POST_PATH))


def run_and_kill(sc: Scenario, *, resume: bool, after_posts: int, rng: random.Random,
                 timeout_s: float = 120.0) -> bool:
    """Start the command, SIGKILL it once `after_posts` more POSTs reached the sandbox (plus a
    random slice of one request's latency, so kills land mid-request too). Returns whether it
    was killed (False when it finished first)."""
    start_posts = posts(sc.box)
    proc = subprocess.Popen(command(sc, resume=resume), env=sc.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    sc.runs += 1
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None and posts(sc.box) - start_posts < after_posts:
        if time.monotonic() > deadline:
            proc.kill()
            raise TimeoutError("the submit process made no progress")
        time.sleep(0.002)
    if proc.poll() is not None:
        proc.communicate()
        return False
    time.sleep(rng.uniform(0, 1.5 * sc.box.state.latency_ms / 1000))
    acknowledged = _acknowledged(sc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    sc.kills.append({"posts_seen": posts(sc.box), "submitted_len": len(sc.box.state.submitted),
                     "acknowledged_before": len(acknowledged)})
    # Remember which batches were acknowledged at the kill: none may reach the server again.
    _ACK_AT_KILL.append((len(sc.box.state.submitted), acknowledged))
    return True


_ACK_AT_KILL: list[tuple[int, list[str]]] = []


def _acknowledged(sc: Scenario) -> list[str]:
    """Payload texts of the batches acknowledged in the journal right now."""
    from optout_desk.store.db import connect

    db = connect(sc.home / "optout-desk.sqlite3")
    try:
        return [row[0] for row in db.execute(
            "SELECT payload_json FROM batches WHERE state = 'acknowledged'")]
    finally:
        db.close()


def finish(sc: Scenario, *, verify: bool = True,
           attempts: int = 6) -> subprocess.CompletedProcess[str]:
    """Resume until the plan completes (faults may stop a run; each resume continues)."""
    last: subprocess.CompletedProcess[str] | None = None
    for _ in range(attempts):
        last = subprocess.run(command(sc, resume=True, verify=verify), env=sc.env,
                              capture_output=True, text=True, timeout=300,
                              stdin=subprocess.DEVNULL)
        sc.runs += 1
        if last.returncode == 0:
            return last
    assert last is not None
    raise AssertionError(f"resume did not finish: {last.returncode}\n{last.stdout}\n"
                         f"{last.stderr}")


@dataclass
class Check:
    batches: int
    sent_total: int
    repeats: int
    acknowledged_resent: int
    server_set_ok: bool
    journal_ok: bool
    receipt_ok: bool
    problems: list[str]


def check(sc: Scenario, *, verified: bool = True) -> Check:
    """Compare the sandbox, the journal and the receipt."""
    import json

    from optout_desk.store.db import connect

    problems: list[str] = []
    state = sc.box.state
    submitted = list(state.submitted)
    server_values = [v for body in submitted
                     for v in [*body.get("EmailAddresses", []), *body.get("PhoneNumbers", [])]]
    server_set_ok = set(server_values) == sc.intended
    if not server_set_ok:
        problems.append(f"server set differs: {len(set(server_values) - sc.intended)} extra, "
                        f"{len(sc.intended - set(server_values))} missing")
    listed = {(o.get("Email") or o.get("Phone") or "").lower() for o in state.optouts()}
    if not sc.intended <= listed:
        problems.append("the sandbox's list lacks some intended opt-outs")

    db = connect(sc.home / "optout-desk.sqlite3")
    try:
        rows = db.execute("SELECT seq, payload_json, state, sent_count, "
                          "resent_after_interruption FROM batches").fetchall()
        plan_status = [r[0] for r in db.execute("SELECT status FROM plans")]
    finally:
        db.close()
    seen = Counter(json.dumps(body, sort_keys=True) for body in submitted)
    journal_ok = plan_status == ["completed"]
    if not journal_ok:
        problems.append(f"plan status {plan_status}")
    repeats = 0
    for seq, payload, batch_state, sent_count, resent in rows:
        times = seen[json.dumps(json.loads(payload)["body"], sort_keys=True)]
        if batch_state != "acknowledged" or times < 1:
            journal_ok = False
            problems.append(f"batch {seq}: {batch_state}, on the server {times}×")
        if times > sent_count:
            journal_ok = False
            problems.append(f"batch {seq}: on the server {times}× but sent {sent_count}×")
        if times > 1 + resent:
            journal_ok = False
            problems.append(f"batch {seq}: repeated without an interruption")
        repeats += times - 1
    # No batch acknowledged at a kill reached the server afterwards.
    acknowledged_resent = 0
    for position, acknowledged in _ACK_AT_KILL:
        later = Counter(json.dumps(body, sort_keys=True) for body in submitted[position:])
        for payload in acknowledged:
            if later[json.dumps(json.loads(payload)["body"], sort_keys=True)]:
                acknowledged_resent += 1
    if acknowledged_resent:
        problems.append(f"{acknowledged_resent} acknowledged batches were sent again")
    if repeats > len(sc.kills):
        problems.append(f"{repeats} repeats for {len(sc.kills)} kills")

    with (sc.home / "receipt.csv").open(encoding="utf-8-sig") as handle:
        receipt = list(csv.DictReader(handle))
    sent_rows = [r for r in receipt if r["Outcome"] == "submitted"]
    receipt_values = {r["Sent as"].lstrip("'") for r in sent_rows}
    receipt_ok = receipt_values == set(server_values) and len(sent_rows) == len(sc.intended)
    if verified:
        receipt_ok = receipt_ok and all(r["Confirmed"] == "yes" for r in sent_rows)
    if not receipt_ok:
        problems.append("the receipt disagrees with the server")
    return Check(len(rows), len(submitted), repeats, acknowledged_resent, server_set_ok,
                 journal_ok, receipt_ok, problems)


def kill_scenario(home: Path, *, count: int, batch_size: int, kills: int, latency_ms: float,
                  seed: int) -> tuple[Scenario, Check]:
    _ACK_AT_KILL.clear()
    rng = random.Random(seed)
    sc = prepare(home, count=count, batch_size=batch_size, latency_ms=latency_ms, seed=seed)
    try:
        batches = -(-len(sc.intended) // batch_size)
        # Kill points spread over the whole run: each run sends a random slice of the rest.
        per_kill = max(1, batches // (kills + 1))
        started = False
        for _ in range(kills):
            killed = run_and_kill(sc, resume=started, after_posts=rng.randint(1, per_kill),
                                  rng=rng)
            started = True
            if not killed:
                break
        finish(sc)
        return sc, check(sc)
    finally:
        sc.box.stop()


def fault_scenario(home: Path, *, count: int, batch_size: int, faults: int, latency_ms: float,
                   seed: int) -> tuple[Scenario, Check]:
    """Inject 429/500/drop faults at random moments of one run (then resume if one stops it)."""
    _ACK_AT_KILL.clear()
    rng = random.Random(seed)
    sc = prepare(home, count=count, batch_size=batch_size, latency_ms=latency_ms, seed=seed)
    stop = threading.Event()

    def injector() -> None:
        kinds = ["429", "500", "drop"]
        batches = -(-len(sc.intended) // batch_size)
        for _ in range(faults):
            target = posts(sc.box) + rng.randint(1, max(1, batches // faults))
            while posts(sc.box) < target and not stop.is_set():
                time.sleep(0.002)
            if stop.is_set():
                return
            sc.box.state.inject_faults(rng.choice(kinds), rng.randint(1, 2), POST_PATH,
                                       retry_after_s=0.05)

    thread = threading.Thread(target=injector, daemon=True)
    try:
        thread.start()
        first = subprocess.run(command(sc, resume=False, verify=True), env=sc.env,
                               capture_output=True, text=True, timeout=600,
                               stdin=subprocess.DEVNULL)
        sc.runs += 1
        stop.set()
        if first.returncode != 0:
            finish(sc)
        result = check(sc)
        injected = sum(1 for e in sc.box.state.request_log
                       if e.path == POST_PATH and e.status in (0, 429, 500))
        sc.kills.append({"faults_answered": injected})
        return sc, result
    finally:
        stop.set()
        sc.box.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="10k identifiers, 20 kill points")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    count, kills, batch = (10_000, 20, 100) if args.full else (2_000, 6, 50)
    latency = 20.0
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        sc, result = kill_scenario(Path(tmp) / "kills", count=count, batch_size=batch,
                                   kills=kills, latency_ms=latency, seed=args.seed)
        seconds = time.monotonic() - started
        print(f"kills: {count:,} identifiers → {len(sc.intended):,} intended, "
              f"{result.batches} batches of {batch}, {len(sc.kills)} SIGKILLs, "
              f"{sc.runs} processes, {seconds:.1f} s")
        print(f"  POSTs accepted {result.sent_total} for {result.batches} batches "
              f"(repeats {result.repeats}, all after an interruption; bound {len(sc.kills)}); "
              f"acknowledged batches re-sent: {result.acknowledged_resent}")
        print(f"  server holds exactly the intended set: {result.server_set_ok}; "
              f"journal agrees: {result.journal_ok}; receipt agrees: {result.receipt_ok}")
        ok &= not result.problems
        for problem in result.problems:
            print("  PROBLEM:", problem)
        started = time.monotonic()
        sc, result = fault_scenario(Path(tmp) / "faults", count=count, batch_size=batch,
                                    faults=kills, latency_ms=latency, seed=args.seed + 1)
        seconds = time.monotonic() - started
        print(f"faults: {len(sc.intended):,} intended, {result.batches} batches, "
              f"{sc.kills[-1]['faults_answered']} faulty answers (429/500/drop), "
              f"{sc.runs} processes, {seconds:.1f} s")
        print(f"  POSTs accepted {result.sent_total} for {result.batches} batches "
              f"(repeats {result.repeats}); server set exact: {result.server_set_ok}; "
              f"journal agrees: {result.journal_ok}; receipt agrees: {result.receipt_ok}")
        ok &= not result.problems and result.repeats == 0
        for problem in result.problems:
            print("  PROBLEM:", problem)
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
