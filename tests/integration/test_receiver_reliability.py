"""Reliability of `optout-desk receive` as a process, in CI: 10,000 LOX24 events, each
delivered 1-4 times by 32 concurrent senders, the receiver killed with SIGKILL twice mid-way
and restarted. Every event acknowledged before a kill is in the inbox exactly once right after
it; in the end every event is there exactly once (bench/reliability_receiver.py, --full for
50,000 events and 5 kills)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench.reliability_receiver import kill_scenario

pytestmark = [pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX"),
              pytest.mark.slow]


def test_sigkill_twice_while_32_senders_deliver_10000_events(isolated_home: Path) -> None:
    result = kill_scenario(isolated_home, count=10_000, senders=32, kills=2, seed=3,
                           timeout_s=150)
    assert result.problems == []
    assert len(result.kills) == 2
    assert all(0 < k["acknowledged_events"] < 10_000 for k in result.kills)  # mid-way
    assert result.acknowledged == 10_000
    assert result.requests >= result.deliveries_planned
