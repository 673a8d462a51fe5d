"""The `optout-desk` command: sub-commands for automation, the GUI when none is given.

Exit codes: 0 success, 1 the operation failed (network, API, keyring), 2 bad usage or bad input.
Errors are printed as one or two plain sentences; a traceback only with --debug.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from optout_desk import __version__, paths
from optout_desk.core.errors import EXIT_BAD_INPUT, EXIT_FAILED, DeskError

log = logging.getLogger(__name__)

# Each module in optout_desk/commands/ adds its own sub-command with `register(subparsers)`.
COMMAND_MODULES: tuple[str, ...] = (
    "sandbox",
    "connection",
    "fetch",
    "reconcile",
    "submit",
    "history",
    "receive",
    "inbox",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optout-desk",
        description="Keep opt-outs in sync across survey, email and SMS platforms and your CRM. "
        "Without a command, opens the desktop app.",
    )
    parser.add_argument("--version", action="version", version=f"Opt-out Desk {__version__}")
    parser.add_argument(
        "--data-dir", type=Path, metavar="DIR",
        help="keep the database, logs and settings here (default: the user data folder; "
        "also OPTOUT_DESK_HOME)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and log more")
    parser.add_argument(
        "--demo", action="store_true",
        help="open the app on the built-in sandbox with generated data (no keys needed)",
    )
    parser.add_argument(
        "--no-crash-dialog", action="store_true",
        help="on an unexpected error, log and exit instead of showing a dialog (for CI)",
    )
    parser.add_argument(
        "--self-test", action="store_true",
        help="check that this installation works (Qt, keyring, file readers, sandbox) and exit",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"optout_desk.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.data_dir is not None:
        paths.set_data_dir(args.data_dir.expanduser().resolve())
    try:
        from optout_desk.log import setup_logging

        setup_logging(debug=args.debug)
        if args.self_test:
            from optout_desk.selftest import run_self_test

            return int(run_self_test())
        if args.command is None:
            from optout_desk.ui.app import run_app

            return int(run_app(demo=args.demo, crash_dialog=not args.no_crash_dialog))
        handler = args.handler
        return int(handler(args))
    except DeskError as exc:
        log.info("command failed: %s", type(exc).__name__)
        if args.debug:
            raise
        print(f"optout-desk: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("optout-desk: interrupted; nothing half-done was kept.", file=sys.stderr)
        return 130
    except OSError as exc:
        if args.debug:
            raise
        # A file that cannot be read or written is the user's input to fix.
        log.exception("OS error")
        print(f"optout-desk: {exc.strerror or exc} ({exc.filename or ''}).", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception:
        log.exception("unexpected error")
        if args.debug:
            raise
        print(
            "optout-desk: an unexpected error occurred; details are in the log file in "
            f"{paths.log_dir()}. Run again with --debug to see them here.",
            file=sys.stderr,
        )
        return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
