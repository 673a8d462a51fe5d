"""One submission to three destinations at once: do they overlap or queue? And does the GUI
thread stay responsive while they send?

Targets (issue 11): 100,000 identifiers (half emails, half phones) to the CheckMarket,
myKaarma and Dynamic Yield simulators at 20 ms latency: the whole fan-out within 1.3× of the
slowest destination alone (baseline measured in the same run), and the GUI thread never stalls
more than 50 ms meanwhile (a 5 ms QTimer measures the longest event-loop gap while the Submit
page sends the same submission).

    python -m bench.bench_fanout            # 10,000 identifiers
    python -m bench.bench_fanout --full     # 100,000 identifiers

The simulators run in their own process (`optout-desk sandbox`), as real platforms would.
Settings: CheckMarket batches of 500 one at a time; myKaarma 100 values per request, 4 at a
time; Dynamic Yield one email per request, 16 at a time (phones are not Dynamic Yield's).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from bench.simulators import simulators_process
from optout_desk import paths, secrets
from optout_desk.core.identifiers import normalise_email, normalise_phone
from optout_desk.core.plan import PlanInput
from optout_desk.store import connections
from optout_desk.store.connections import ConnectionProfile
from optout_desk.store.db import connect
from optout_desk.workflows import submission

LATENCY_MS = 20.0


def add_connections(printed: dict[str, str], suffix: str) -> list[str]:
    """cm, mk and dy (each name + suffix) to the simulators; returns the names."""
    names = [f"cm{suffix}", f"mk{suffix}", f"dy{suffix}"]
    db = connect()
    try:
        connections.add(db, ConnectionProfile(names[0], "checkmarket", printed["Base URL"], "",
                                              settings={"batch_size": 500}))
        connections.add(db, ConnectionProfile(names[1], "mykaarma", printed["myKaarma base URL"],
                                              "", settings={
            "department_uuid": printed["myKaarma department UUID"],
            "entries_per_request": 100, "concurrency": 4}))
        connections.add(db, ConnectionProfile(names[2], "dynamic-yield",
                                              printed["Dynamic Yield EU base URL"], "",
                                              settings={"concurrency": 16}))
    finally:
        db.close()
    keys = {names[0]: {"MASTER_KEY": printed["Master key"], "KEY": printed["Key"]},
            names[1]: {"USERNAME": printed["myKaarma username"],
                       "PASSWORD": printed["myKaarma password"]},
            names[2]: {"API_KEY": printed["Dynamic Yield EU API key"]}}
    for name, fields in keys.items():
        for field, value in fields.items():
            secrets.store_secret(name, field, value, session_only=True)
    return names


def make_inputs(count: int, tag: str) -> list[PlanInput]:
    return [PlanInput(normalise_phone(f"+3247{i:07d}", "BE")) if i % 2
            else PlanInput(normalise_email(f"fan.{tag}.{i}@example.org"))
            for i in range(count)]


def timed(names: list[str], inputs: list[PlanInput]) -> tuple[float, Any]:
    preview = submission.prepare_submission(names, inputs)
    saved = submission.save_submission(preview)
    started = time.perf_counter()
    outcome = submission.execute_submission(saved.plan_ids, submission_id=saved.id,
                                            verify=False)
    seconds = time.perf_counter() - started
    assert outcome.all_finished, [r.status for r in outcome.runs]
    return seconds, outcome


def gui_fanout(names: list[str], inputs: list[PlanInput]) -> tuple[float, float, float]:
    """The Submit page sends the submission; (seconds, longest gap, idle gap)."""
    from PySide6.QtWidgets import QApplication

    from bench.bench_table import GapMeter
    from optout_desk.ui.app import ensure_application, install_gc_policy
    from optout_desk.ui.main_window import AppContext, MainWindow
    from optout_desk.ui.pages.submit import SubmitPage

    app = ensure_application()
    assert isinstance(app, QApplication)
    install_gc_policy(app)
    window = MainWindow(AppContext())
    window.show()
    page = window.show_page("submit")
    assert isinstance(page, SubmitPage)
    preview = submission.prepare_submission(names, inputs)
    saved = submission.save_submission(preview)
    meter = GapMeter()
    meter.start()
    idle_until = time.perf_counter() + 1.0
    while time.perf_counter() < idle_until:
        app.processEvents()
        time.sleep(0.001)
    idle = meter.stop()
    meter.start()
    started = time.perf_counter()
    page.start_sending(saved.plan_ids, saved.id)
    while page.outcome is None:
        app.processEvents()
        time.sleep(0.001)
    seconds = time.perf_counter() - started
    gap = meter.stop()
    assert page.outcome.all_finished
    window.close()
    return seconds, gap, idle


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="100,000 identifiers")
    parser.add_argument("--gui-only", action="store_true",
                        help="only the Submit page's run (its idle baseline is still measured)")
    args = parser.parse_args()
    count = 100_000 if args.full else 10_000
    with tempfile.TemporaryDirectory() as tmp, simulators_process(LATENCY_MS) as printed:
        paths.set_data_dir(Path(tmp))
        if args.gui_only:
            print_gui(printed, count)
            return 0
        alone: dict[str, float] = {}
        for index, system in enumerate(("cm", "mk", "dy")):
            names = add_connections(printed, f"-alone{index}")
            alone[system], _ = timed([names[index]], make_inputs(count, f"a{index}"))
        names = add_connections(printed, "-all")
        together, outcome = timed(names, make_inputs(count, "all"))
        slowest = max(alone.values())
        print(f"fan-out of {count:,} identifiers (half emails, half phones), "
              f"{LATENCY_MS:g} ms latency:")
        for system, seconds in alone.items():
            requests = next(r.outcome.batches for r in outcome.runs
                            if r.connection.startswith(system))
            print(f"  {system} alone (baseline)      {seconds:7.2f} s   {requests:,} requests")
        print(f"  all three at once           {together:7.2f} s   {together / slowest:.2f}× "
              f"the slowest alone (target ≤ 1.3×; queued would be "
              f"{sum(alone.values()) / slowest:.2f}×)")
        print_gui(printed, count)
    return 0


def print_gui(printed: dict[str, str], count: int) -> None:
    gui_names = add_connections(printed, "-gui")
    seconds, gap, idle = gui_fanout(gui_names, make_inputs(count, "gui"))
    print(f"  from the Submit page        {seconds:7.2f} s   longest GUI-thread gap "
          f"{gap * 1000:.0f} ms (target ≤ 50 ms; idle baseline {idle * 1000:.0f} ms)")


if __name__ == "__main__":
    raise SystemExit(main())
