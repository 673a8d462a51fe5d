"""`optout-desk sandbox`: run the CheckMarket, myKaarma and Dynamic Yield simulators in the
foreground until Ctrl-C, printing each base URL and its demo credentials."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from typing import Any

from optout_desk.core.errors import BadInputError
from optout_desk.sandbox.checkmarket import POSTED_MODES
from optout_desk.sandbox.server import Sandbox, SandboxConfig
from optout_desk.sandbox.suite import SandboxSuite


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sandbox",
        help="run simulated CheckMarket, myKaarma and Dynamic Yield APIs on this computer "
        "(for demos and trials)",
        description="Run simulated CheckMarket (API v3), myKaarma and Dynamic Yield APIs on "
        "127.0.0.1 with generated opt-outs, until Ctrl-C. Prints each base URL and its demo "
        "credentials; --demo also adds a demo connection for each.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free)")
    parser.add_argument("--records", type=int, default=500, help="generated opt-outs (500)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated data (1)")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="added delay per request, in milliseconds (0)")
    parser.add_argument("--max-page-size", type=int, default=1000,
                        help="largest $top accepted; larger gets HTTP 400 (1000)")
    parser.add_argument("--throttle-per-minute", type=int, default=None,
                        help="requests per key per minute before HTTP 429 (no limit)")
    worse = parser.add_argument_group(
        "platform misbehaviour", "make the simulator behave worse than documented, to see how "
        "the desk copes (all off by default)")
    worse.add_argument("--page-cap", type=int, default=None, metavar="N",
                       help="serve at most N rows per page whatever $top asks, silently")
    worse.add_argument("--limit-echoes-top", action="store_true",
                       help="with --page-cap: Meta.Limit echoes the $top asked instead of N")
    worse.add_argument("--short-page-at", type=int, default=None, metavar="SKIP",
                       help="the page at this $skip returns fewer rows, its Meta unchanged")
    worse.add_argument("--short-page-rows", type=int, default=0, metavar="N",
                       help="how many rows that short page holds (0)")
    worse.add_argument("--drip-s", type=float, default=0.0, metavar="SECONDS",
                       help="write every answer one byte at a time, SECONDS apart (0: off)")
    worse.add_argument("--arrivals", type=int, default=0, metavar="N",
                       help="N new opt-outs arrive while a client pages, one per page asked")
    worse.add_argument("--posted-optouts", choices=POSTED_MODES, default="distinct",
                       help="how POSTed opt-outs are listed: their own ContactId and time "
                       "(distinct), or ContactId 0 / none / 2**64-1 and one time per batch")
    parser.add_argument("--master-key", default=None, help="demo master key (random)")
    parser.add_argument("--key", default=None, help="demo key (random)")
    parser.add_argument("--crm-export", metavar="FILE.xlsx", type=Path, default=None,
                        help="also write a demo CRM spreadsheet to reconcile against this "
                        "sandbox (some contacts opted out, some new, some invalid)")
    parser.add_argument("--demo", action="store_true",
                        help="also add (or re-point) the connections demo, demo-mykaarma and "
                        "demo-dy to these simulators, keys in the keyring (or printed as "
                        "environment variables when there is no keyring)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.records < 0 or not 0 <= args.port <= 65535 or args.max_page_size < 1:
        raise BadInputError("--records must be 0 or more, --port 0-65535 and "
                            "--max-page-size at least 1.")
    if ((args.page_cap is not None and args.page_cap < 1) or args.short_page_rows < 0
            or (args.short_page_at is not None and args.short_page_at < 0)
            or args.drip_s < 0 or args.arrivals < 0):
        raise BadInputError("--page-cap must be at least 1; --short-page-at, "
                            "--short-page-rows, --drip-s and --arrivals 0 or more.")
    box = Sandbox(SandboxConfig(
        records=args.records, seed=args.seed, latency_ms=args.latency_ms, port=args.port,
        max_page_size=args.max_page_size, throttle_per_minute=args.throttle_per_minute,
        master_key=args.master_key, key=args.key, page_cap=args.page_cap,
        limit_echoes_top=args.limit_echoes_top, short_page_at=args.short_page_at,
        short_page_rows=args.short_page_rows, drip_s=args.drip_s, arrivals=args.arrivals,
        posted_optouts=args.posted_optouts,
    ))
    suite = SandboxSuite(checkmarket=box, seed=args.seed, latency_ms=args.latency_ms)
    try:
        suite.start()
    except OSError as exc:
        raise BadInputError(f"Cannot listen on port {args.port}: {exc.strerror}. "
                            "Choose another --port (0 picks a free one).") from None
    stop = threading.Event()
    # Ctrl-C and SIGTERM (a benchmark, a service manager) both stop cleanly with exit 0.
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    print(f"CheckMarket sandbox listening on {box.base_url}", flush=True)
    print(f"Base URL:   {box.base_url}", flush=True)
    print(f"Master key: {box.master_key}", flush=True)
    print(f"Key:        {box.key}", flush=True)
    print(f"Opt-outs:   {args.records:,} (seed {args.seed}); surveys "
          f"{', '.join(map(str, box.state.survey_ids))}", flush=True)
    if args.crm_export is not None:
        from optout_desk.sandbox.crm import write_demo_crm

        try:
            written = write_demo_crm(args.crm_export, box.state.optouts())
        except OSError as exc:
            suite.stop()
            raise BadInputError(f"Cannot write {args.crm_export}: {exc.strerror}.") from None
        print(f"CRM export: {written} (try: optout-desk reconcile {written} --against demo "
              "--output result.xlsx)", flush=True)
    print("Add it as a connection with:", flush=True)
    print(f"  optout-desk connection add demo --system checkmarket --base-url {box.base_url}",
          flush=True)
    _print_other_systems(suite)
    if args.demo:
        _add_demo_connections(suite)
    print("Press Ctrl-C to stop.", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        suite.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("Sandbox stopped.", flush=True)
    return 0


def _print_other_systems(suite: SandboxSuite) -> None:
    """The myKaarma and Dynamic Yield blocks. Every label names its system: callers read the
    "Label: value" lines into one mapping, where CheckMarket's "Base URL" must stay its own."""
    mk, dy = suite.mykaarma, suite.dynamic_yield
    lines = [
        "",
        f"myKaarma sandbox listening on {mk.base_url}",
        f"myKaarma base URL:        {mk.base_url}",
        f"myKaarma username:        {mk.username}",
        f"myKaarma password:        {mk.password}",
        f"myKaarma department UUID: {mk.department_uuid}",
        f"myKaarma opt-outs:        {len(mk.state.opted_out(mk.department_uuid)):,} values "
        f"({suite.shared_with_mykaarma:,} people shared with CheckMarket)",
        f"myKaarma unprovisioned department UUID: {mk.unprovisioned_department_uuid}",
        "Add it as a connection with:",
        f"  optout-desk connection add demo-mykaarma --system mykaarma --base-url "
        f"{mk.base_url} --department-uuid {mk.department_uuid}",
        "",
        f"Dynamic Yield sandbox listening on {dy.us_url} and {dy.eu_url}",
        f"Dynamic Yield US base URL: {dy.us_url}",
        f"Dynamic Yield US API key:  {dy.us_key}",
        f"Dynamic Yield EU base URL: {dy.eu_url}",
        f"Dynamic Yield EU API key:  {dy.eu_key}",
        "Add it as a connection with:",
        f"  optout-desk connection add demo-dy-us --system dynamic-yield --base-url {dy.us_url}",
        f"  optout-desk connection add demo-dy-eu --system dynamic-yield --base-url {dy.eu_url}",
        "",
    ]
    for line in lines:
        print(line, flush=True)


def _add_demo_connections(suite: SandboxSuite) -> None:
    """demo (CheckMarket), demo-mykaarma and demo-dy, pointed at this run's ports."""
    from optout_desk import secrets
    from optout_desk.workflows.demo import DemoConnection, ensure_connection, environment_lines

    cm, mk, dy = suite.checkmarket, suite.mykaarma, suite.dynamic_yield
    demos = [
        DemoConnection("demo", "checkmarket", cm.base_url,
                       {"MASTER_KEY": cm.master_key, "KEY": cm.key}),
        DemoConnection("demo-mykaarma", "mykaarma", mk.base_url,
                       {"USERNAME": mk.username, "PASSWORD": mk.password},
                       {"department_uuid": mk.department_uuid}),
        DemoConnection("demo-dy", "dynamic-yield", dy.eu_url, {"API_KEY": dy.eu_key}),
    ]
    keyring = secrets.backend_status().state == "ok"
    for demo in demos:
        # Without a keyring the keys cannot outlive this process: other commands read them
        # from the environment variables printed below.
        ensure_connection(demo, session_only=not keyring)
    print(f"Demo connections: {', '.join(d.name for d in demos)} "
          + ("(keys in the keyring)." if keyring else
             "(no keyring here: set these in the shell that runs other commands)"), flush=True)
    if not keyring:
        for line in environment_lines(demos):
            print(f"  {line}", flush=True)
