"""A submission fanned out to several destinations, in-process against simulators: a plan per
destination, side by side, one destination's failure not stopping the others, one receipt
workbook, the identifier × destination matrix and one history run."""

from __future__ import annotations

import threading
from collections import defaultdict
from pathlib import Path

import openpyxl

from optout_desk.core.identifiers import normalise_email, normalise_phone, normalise_token
from optout_desk.core.plan import PlanInput
from optout_desk.core.progress import Progress
from optout_desk.store import connections, history
from optout_desk.store.connections import ConnectionProfile
from optout_desk.store.db import connect
from optout_desk.workflows import submission, submit
from tests.fixtures.sandbox import SandboxFactory


def add(name: str, base_url: str, master: str, key: str, batch_size: int = 10) -> None:
    from optout_desk import secrets

    db = connect()
    try:
        connections.add(db, ConnectionProfile(name, "checkmarket", base_url, "",
                                              settings={"batch_size": batch_size}))
    finally:
        db.close()
    secrets.store_secret(name, "MASTER_KEY", master, session_only=True)
    secrets.store_secret(name, "KEY", key, session_only=True)


def inputs(n: int) -> list[PlanInput]:
    found = []
    for i in range(n):
        ident = (normalise_phone(f"+3247{i:07d}", "BE") if i % 3 == 2
                 else normalise_email(f"fan{i}@example.com"))
        found.append(PlanInput(ident, "crm.xlsx", i + 2))
    found.append(PlanInput(normalise_token("push-token-1")))
    return found


def test_two_destinations_side_by_side_one_receipt(sandbox_factory: SandboxFactory,
                                                   tmp_path: Path) -> None:
    a = sandbox_factory(records=5, seed=1, latency_ms=30)
    b = sandbox_factory(records=5, seed=2, latency_ms=30)
    add("eu", a.base_url, a.master_key, a.key)
    add("us", b.base_url, b.master_key, b.key)
    preview = submission.prepare_submission(["eu", "us"], inputs(60),
                                            source_file="crm.xlsx", source_sha256="a" * 64)
    assert [d.connection for d in preview.destinations] == ["eu", "us"]
    for d in preview.destinations:
        assert d.plan.counts == {"email": 40, "phone": 20} and d.requests == 6
        assert "1 push token it does not take" in (
            submission.left_out_summary(d))
    assert preview.confirmation() == "Send 60 to eu and 60 to us?"
    saved = submission.save_submission(preview)
    seen: dict[str, list[Progress]] = defaultdict(list)
    threads: set[str] = set()

    def progress(name: str, report: Progress) -> None:
        seen[name].append(report)
        threads.add(threading.current_thread().name)

    outcome = submission.execute_submission(saved.plan_ids, submission_id=saved.id,
                                            progress=progress, verify=False,
                                            receipt=tmp_path / "receipt.xlsx")
    assert outcome.all_finished and [r.status for r in outcome.runs] == ["completed"] * 2
    assert len(a.state.submitted) == len(b.state.submitted) == 6
    assert seen["eu"][-1].done == 6 and seen["us"][-1].done == 6
    assert len(threads) == 2  # each destination on its own thread, side by side
    names, matrix = submission.status_matrix(saved.id)
    assert names == ["eu", "us"] and len(matrix) == 61
    assert matrix[0] == ["fan0@example.com", "email", "sent", "sent"]
    assert matrix[-1][2].startswith("left out: unsupported")
    book = openpyxl.load_workbook(tmp_path / "receipt.xlsx", read_only=True)
    assert book.sheetnames == ["Summary", "Outcomes", "eu", "us"]
    summary = [row for row in book["Summary"].iter_rows(values_only=True)]
    assert ("Source SHA-256", "a" * 64) in [tuple(r[:2]) for r in summary]
    header = next(book["eu"].iter_rows(values_only=True))
    assert header[:3] == ("Identifier", "Kind", "Sent as")
    book.close()
    db = connect()
    try:
        runs = history.list_runs(db)
    finally:
        db.close()
    assert len(runs) == 1 and runs[0].outcome == "ok" and runs[0].connection == "eu, us"
    assert runs[0].counts["eu: submitted"] == 60


def test_one_destination_failing_does_not_stop_the_others(sandbox_factory: SandboxFactory,
                                                          tmp_path: Path) -> None:
    from optout_desk import secrets

    a = sandbox_factory(records=5, seed=1, latency_ms=10)
    b = sandbox_factory(records=5, seed=2, latency_ms=10)
    b.state.add_key(b.master_key, "read-only", {"contacts:read"})
    add("good", a.base_url, a.master_key, a.key)
    add("revoked", b.base_url, b.master_key, "read-only")
    saved = submission.save_submission(
        submission.prepare_submission(["good", "revoked"], inputs(30)))
    outcome = submission.execute_submission(saved.plan_ids, submission_id=saved.id,
                                            verify=False, receipt=tmp_path / "r.xlsx")
    status = {run.connection: run for run in outcome.runs}
    assert status["good"].status == "completed"
    assert status["revoked"].status == "failed"
    assert status["revoked"].outcome is not None
    assert "Contacts (write)" in status["revoked"].outcome.error
    assert len(a.state.submitted) == 3 and b.state.submitted == []
    names, matrix = submission.status_matrix(saved.id)
    assert matrix[0][names.index("revoked") + 2].startswith("failed: ")
    # The key is fixed: the failed destination resumes on its own and finishes.
    secrets.store_secret("revoked", "KEY", b.key, session_only=True)
    [unfinished] = submit.find_unfinished()
    assert unfinished.connection == "revoked" and unfinished.submission_id == saved.id
    again = submit.execute_plan(unfinished.id, verify=False)
    assert again.status == "completed" and len(b.state.submitted) == 3
