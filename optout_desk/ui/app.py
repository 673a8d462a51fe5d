"""The desktop app's entry point (built by the desktop-app work)."""

from __future__ import annotations


def run_app(demo: bool, crash_dialog: bool) -> int:
    raise SystemExit("The desktop app is not built yet.")
