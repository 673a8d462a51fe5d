"""Reliability of `optout-desk submit` as a process: SIGKILL at random moments then resume, and
injected faults (429 with RetryAfter, 500, dropped connections). CI-sized; the larger run is
bench/reliability_submit.py (--full: 10k identifiers, 20 kill points).

Afterwards the sandbox holds exactly the intended set, no acknowledged batch was sent again,
and the journal and the receipt agree with the server.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench.reliability_submit import fault_scenario, kill_scenario

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def test_sigkill_at_random_moments_then_resume(isolated_home: Path) -> None:
    sc, result = kill_scenario(isolated_home, count=600, batch_size=50, kills=5,
                               latency_ms=30, seed=5)
    assert result.problems == []
    assert len(sc.kills) >= 3  # most kill points landed before the plan finished
    assert result.server_set_ok and result.journal_ok and result.receipt_ok
    assert result.acknowledged_resent == 0
    assert result.repeats <= len(sc.kills)


def test_injected_faults_then_resume(isolated_home: Path) -> None:
    sc, result = fault_scenario(isolated_home, count=600, batch_size=50, faults=5,
                                latency_ms=10, seed=6)
    assert result.problems == []
    assert result.repeats == 0  # faults answer before the platform applies anything
    assert sc.kills[-1]["faults_answered"] >= 5
