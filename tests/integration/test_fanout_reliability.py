"""Fan-out reliability in CI (issue 11): a three-destination submit SIGKILLed at 20 random
moments, with latency and injected 429/500/drops on every platform, then resumed. Each
destination ends holding exactly what its plan routed to it; no acknowledged payload is sent
again; repeats happen only after a kill. The larger run is bench/reliability_fanout.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench.reliability_fanout import kill_scenario

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def test_sigkill_a_three_destination_submit_twenty_times_then_resume(
        isolated_home: Path) -> None:
    sc, result = kill_scenario(isolated_home / "fan", count=300, kills=20, latency_ms=15,
                               seed=31)
    assert result.problems == []
    assert sc.kills >= 10  # most kill points landed before everything was sent
    assert result.requests["dy"] >= len(sc.intended["dy"])
