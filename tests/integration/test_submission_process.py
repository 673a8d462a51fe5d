"""The window's submission sent by a child process (workflows/submission_process.py), against
simulators on 127.0.0.1: keys held for this session only reach it, progress comes back, Cancel
of one destination stops only that one, and a sender killed mid-way is reported in a sentence
and its plans resume without sending anything acknowledged again."""

from __future__ import annotations

import io
import pickle
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import pytest

from optout_desk import frames, secrets
from optout_desk.core.errors import DeskError
from optout_desk.core.identifiers import normalise_email
from optout_desk.core.plan import PlanInput
from optout_desk.core.progress import CancelToken, Progress
from optout_desk.sandbox.server import Sandbox
from optout_desk.workflows import submission, submission_process
from optout_desk.workflows.submission_process import execute_submission_isolated
from tests.fixtures.sandbox import SandboxFactory, add_profile


def add(name: str, box: Sandbox, batch_size: int) -> None:
    add_profile(box, name, batch_size)
    # Held for this session only: the child cannot read them from a keyring or the environment.
    secrets.store_secret(name, "MASTER_KEY", box.master_key, session_only=True)
    secrets.store_secret(name, "KEY", box.key, session_only=True)


def plan(names: list[str], count: int) -> submission.SavedSubmission:
    found = [PlanInput(normalise_email(f"child{i}@example.com"), "crm.xlsx", i + 2)
             for i in range(count)]
    return submission.save_submission(submission.prepare_submission(names, found))


def sent_emails(box: Any) -> Counter[str]:
    return Counter(email for payload in box.state.submitted
                   for email in payload.get("EmailAddresses", []))


@pytest.fixture(autouse=True)
def _session_keys_forgotten() -> Any:
    yield
    secrets.clear_session()


def test_the_child_sends_with_this_sessions_keys_and_reports_progress(
        sandbox_factory: SandboxFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    east, west = sandbox_factory(records=3, seed=1), sandbox_factory(records=3, seed=2)
    add("east", east, batch_size=4)
    add("west", west, batch_size=4)
    saved = plan(["east", "west"], 20)

    def not_here(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("sent in the window's process")

    # Were the submission sent in this process, this would fail it.
    monkeypatch.setattr(submission, "execute_submission", not_here)
    seen: dict[str, list[Progress]] = {}
    outcome = execute_submission_isolated(
        saved.plan_ids, submission_id=saved.id,
        progress=lambda name, report: seen.setdefault(name, []).append(report))
    assert outcome.all_finished, [(r.connection, r.status, r.error) for r in outcome.runs]
    assert [r.outcome.submitted for r in outcome.runs if r.outcome] == [20, 20]
    assert sent_emails(east) == sent_emails(west) == Counter(
        {f"child{i}@example.com": 1 for i in range(20)})
    assert outcome.receipt_path and Path(outcome.receipt_path).is_file()
    assert outcome.run_id is not None
    assert set(seen) == {"east", "west"}
    assert all(reports[-1].done == reports[-1].total == 5 for reports in seen.values())
    # The sender logs to a file of its own (two processes must not rotate one file).
    from optout_desk import paths
    from optout_desk.log import LOG_FILE_NAME, SENDER_LOG_FILE_NAME

    assert "east" in (paths.log_dir() / SENDER_LOG_FILE_NAME).read_text(encoding="utf-8")
    main_log = paths.log_dir() / LOG_FILE_NAME
    assert not main_log.exists() or "east" not in main_log.read_text(encoding="utf-8")


def test_cancel_of_one_destination_stops_only_that_one(
        sandbox_factory: SandboxFactory) -> None:
    slow, fast = sandbox_factory(records=3, seed=1, latency_ms=150), \
        sandbox_factory(records=3, seed=2)
    add("slow", slow, batch_size=1)
    add("fast", fast, batch_size=5)
    saved = plan(["slow", "fast"], 40)
    each = {"slow": CancelToken(), "fast": CancelToken()}

    def progress(name: str, report: Progress) -> None:
        if name == "slow" and report.done >= 2:
            each["slow"].cancel()

    outcome = execute_submission_isolated(saved.plan_ids, submission_id=saved.id,
                                          progress=progress, cancel_each=each)
    by_name = {run.connection: run for run in outcome.runs}
    assert by_name["fast"].status == "completed"
    assert by_name["slow"].status == "cancelled"
    assert 2 <= len(slow.state.submitted) < 40
    # Resumed in this process: only what was not acknowledged goes, each identifier once.
    again = submission.execute_submission({"slow": saved.plan_ids["slow"]},
                                          submission_id=saved.id, verify=False)
    assert again.all_finished
    assert sent_emails(slow) == Counter({f"child{i}@example.com": 1 for i in range(40)})


def test_a_killed_sender_is_reported_and_its_plans_resume(
        sandbox_factory: SandboxFactory) -> None:
    box = sandbox_factory(records=3, seed=1, latency_ms=100)
    add("east", box, batch_size=1)
    saved = plan(["east"], 60)
    killed = threading.Event()

    def kill_the_sender(_name: str, report: Progress) -> None:
        if report.done >= 3 and not killed.is_set():
            killed.set()
            for child in psutil.Process().children():
                if submission_process.SENDER_FLAG in child.cmdline() or \
                        "submission_process" in " ".join(child.cmdline()):
                    child.kill()

    with pytest.raises(DeskError, match="stopped unexpectedly") as raised:
        execute_submission_isolated(saved.plan_ids, submission_id=saved.id,
                                    progress=kill_the_sender)
    assert "nothing acknowledged is sent again" in raised.value.message
    assert killed.is_set()
    before = len(box.state.submitted)
    assert 3 <= before < 60
    again = submission.execute_submission(saved.plan_ids, submission_id=saved.id,
                                          verify=False, resend_unknown=True)
    assert again.all_finished
    sent = sent_emails(box)
    assert set(sent) == {f"child{i}@example.com" for i in range(60)}
    # At most the one request in flight at the kill goes twice (CheckMarket's opt-out POST is
    # safe to repeat); every acknowledged one, never.
    assert sum(sent.values()) - 60 <= 1


def test_the_child_cancels_everything_when_the_window_goes_away() -> None:
    everything, each = CancelToken(), {"a": CancelToken(), "b": CancelToken()}
    stream = io.BytesIO(pickle.dumps(("cancel", "a")) + pickle.dumps(("other", "b")))
    submission_process._take_cancels(stream, everything, each)
    assert each["a"].cancelled and not each["b"].cancelled
    assert everything.cancelled  # the end of stdin: the window closed or died


def test_progress_is_throttled_but_never_loses_a_phase_or_the_end() -> None:
    sent: list[tuple[str, Any]] = []

    class Writer:
        def send(self, kind: str, payload: Any) -> None:
            sent.append(payload)

    throttled = submission_process._Throttled(Writer())  # type: ignore[arg-type]
    for done in range(100):
        throttled("a", Progress(done, 100, message="Sending"))
    throttled("a", Progress(100, 100, message="Sending"))
    throttled("a", Progress(0, 10, message="Verifying"))
    time.sleep(0.01)
    assert len(sent) == 3
    assert [report.done for _name, report in sent] == [0, 100, 0]
    assert sent[-1][1].message == "Verifying"


def test_a_sender_that_cannot_start_is_one_sentence_and_sends_nothing(
        sandbox_factory: SandboxFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    box = sandbox_factory(records=3, seed=1)
    add("east", box, batch_size=4)
    saved = plan(["east"], 5)
    monkeypatch.setattr(frames, "child_command",
                        lambda _flag, _module: ["/nonexistent/optout-desk-sender"])
    with pytest.raises(DeskError, match=r"could not start.*nothing was sent"):
        execute_submission_isolated(saved.plan_ids, submission_id=saved.id)
    assert box.state.submitted == []
