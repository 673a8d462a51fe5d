"""The submit workflow in-process against the sandbox: send, stop on refusal, cancel, resume,
retry failed, receipts and history."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest

from optout_desk.connectors.checkmarket import CheckMarketClient, CheckMarketSettings
from optout_desk.core.identifiers import normalise_email, normalise_phone
from optout_desk.core.plan import PlanInput
from optout_desk.core.progress import CancelToken, Progress
from optout_desk.sandbox.server import Sandbox
from optout_desk.store import history, journal
from optout_desk.store.db import connect
from optout_desk.workflows import submit
from tests.fixtures.sandbox import SandboxFactory, add_profile

ClientFactory = Callable[[str], CheckMarketClient]


def client_for(box: Sandbox, *, key: str | None = None, retries: int = 3) -> ClientFactory:
    def make(_: str) -> CheckMarketClient:
        settings = CheckMarketSettings(base_url=box.base_url, max_retries=retries,
                                       max_retry_wait_s=1.0, timeout_s=5.0)
        return CheckMarketClient(settings, box.master_key, key or box.key)
    return make


def inputs(n: int) -> list[PlanInput]:
    result = []
    for i in range(n):
        if i % 4 == 3:
            result.append(PlanInput(normalise_phone(f"+3247{i:07d}", "BE"), "crm.xlsx", i + 2))
        else:
            result.append(PlanInput(normalise_email(f"new{i}@example.com"), "crm.xlsx", i + 2))
    return result


def submitted_values(box: Sandbox) -> list[str]:
    return [v for body in box.state.submitted
            for v in [*body.get("EmailAddresses", []), *body.get("PhoneNumbers", [])]]


def test_sends_exactly_the_plan_and_records_it(sandbox_factory: SandboxFactory,
                                                tmp_path: Path) -> None:
    box = sandbox_factory(records=20, seed=3)
    add_profile(box)
    plan = submit.prepare_plan("acme", [*inputs(35), PlanInput(normalise_email("nope"))])
    assert (plan.total, len(plan.batches), plan.left_out_counts) == (35, 4, {"invalid": 1})
    plan_id = submit.save_plan(plan, source_file="crm.xlsx", source_sha256="f" * 64)
    reports: list[Progress] = []
    outcome = submit.execute_plan(plan_id, progress=reports.append, verify=False,
                                  receipt=tmp_path / "r.csv", open_client=client_for(box))
    assert outcome.status == "completed" and outcome.error == ""
    assert (outcome.acknowledged, outcome.submitted, outcome.resent_after_interruption) == (
        4, 35, 0)
    assert box.state.submitted == [b.payload.body for b in plan.batches]
    assert reports[-1].done == 4 and reports[-1].total == 4 and reports[-1].records == 35
    with (tmp_path / "r.csv").open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 36
    assert rows[0]["Identifier"] == "new0@example.com" and rows[0]["Row"] == "2"
    assert rows[0]["Outcome"] == "submitted" and rows[0]["Request"] == "1"
    assert rows[3]["Sent as"].lstrip("'") == "+32470000003"  # export quotes a leading '+'
    assert rows[-1]["Outcome"] == "left out: invalid"
    db = connect()
    try:
        run = history.list_runs(db)[0]
    finally:
        db.close()
    assert (run.kind, run.connection, run.outcome, run.source_file) == (
        "submit", "acme", "ok", "crm.xlsx")
    assert run.counts["submitted"] == 35 and run.receipt_path == str(tmp_path / "r.csv")
    assert submit.find_unfinished() == []
    with pytest.raises(submit.SubmitError, match="completed"):
        submit.execute_plan(plan_id, verify=False, open_client=client_for(box))


def test_refused_key_stops_the_run_and_resume_finishes(sandbox_factory: SandboxFactory) -> None:
    box = sandbox_factory(records=5)
    box.state.add_key(box.master_key, "read-only", {"contacts:read"})
    add_profile(box)
    plan_id = submit.save_plan(submit.prepare_plan("acme", inputs(30)))
    outcome = submit.execute_plan(plan_id, verify=False,
                                  open_client=client_for(box, key="read-only"))
    assert outcome.status == "failed" and outcome.resumable
    assert "batch 1 was refused" in outcome.error and "Contacts (write)" in outcome.error
    assert box.state.submitted == []
    db = connect()
    try:
        states = [b.state for b in journal.batches(db, plan_id)]
        assert history.list_runs(db)[0].outcome == "failed"
    finally:
        db.close()
    assert states == ["failed", "pending", "pending"]
    [unfinished] = submit.find_unfinished("acme")
    assert unfinished.id == plan_id and unfinished.failed == 1
    again = submit.execute_plan(plan_id, verify=False, open_client=client_for(box))
    assert again.status == "completed" and again.sent_this_run == 3
    assert again.resent_after_interruption == 0
    assert len(submitted_values(box)) == 30


def test_cancel_stops_after_the_batch_in_flight(sandbox_factory: SandboxFactory) -> None:
    box = sandbox_factory(records=5)
    add_profile(box)
    plan_id = submit.save_plan(submit.prepare_plan("acme", inputs(50)))
    cancel = CancelToken()

    def progress(p: Progress) -> None:
        if p.done == 2:
            cancel.cancel()

    outcome = submit.execute_plan(plan_id, progress=progress, cancel=cancel, verify=False,
                                  open_client=client_for(box))
    assert outcome.cancelled and outcome.status == "pending"
    assert (outcome.acknowledged, outcome.remaining) == (2, 3)
    assert len(box.state.submitted) == 2
    done = submit.execute_plan(plan_id, verify=False, open_client=client_for(box))
    assert done.status == "completed" and done.sent_this_run == 3
    assert sorted(submitted_values(box)) == sorted(
        i.identifier.key for i in inputs(50) if i.identifier.key)


def test_transient_faults_are_retried_without_repeats(sandbox_factory: SandboxFactory) -> None:
    box = sandbox_factory(records=5)
    add_profile(box)
    plan_id = submit.save_plan(submit.prepare_plan("acme", inputs(40)))
    box.state.inject_faults("429", 1, "3/contacts/optouts", retry_after_s=0.05)
    box.state.inject_faults("500", 1, "3/contacts/optouts")
    box.state.inject_faults("drop", 1, "3/contacts/optouts")
    outcome = submit.execute_plan(plan_id, verify=False, open_client=client_for(box))
    assert outcome.status == "completed"
    assert len(box.state.submitted) == 4  # no batch reached the platform twice
    db = connect()
    try:
        batches = journal.batches(db, plan_id)
    finally:
        db.close()
    assert [b.sent_count for b in batches] == [1, 1, 1, 1]
    assert sum(b.attempts for b in batches) == 4 + 3


def test_faults_beyond_retries_stop_and_retry_failed_replans(
        sandbox_factory: SandboxFactory) -> None:
    box = sandbox_factory(records=5)
    add_profile(box)
    plan_id = submit.save_plan(submit.prepare_plan("acme", inputs(25)))
    box.state.inject_faults("503", 10, "3/contacts/optouts")
    outcome = submit.execute_plan(plan_id, verify=False,
                                  open_client=client_for(box, retries=1))
    assert outcome.status == "failed" and "failed after retries" in outcome.error
    retry = submit.retry_failed_plan(plan_id)
    assert retry.total == 10 and retry.destination.connection == "acme"
    assert [i.value for _, i in retry.items()] == [
        i.identifier.key for i in inputs(25)[:10]]
    submit.discard_plan(plan_id)
    assert submit.find_unfinished() == []


def test_export_run_receipt_and_empty_plan(sandbox_factory: SandboxFactory,
                                           tmp_path: Path) -> None:
    box = sandbox_factory(records=5)
    add_profile(box)
    plan_id = submit.save_plan(submit.prepare_plan("acme", inputs(5)))
    outcome = submit.execute_plan(plan_id, verify=False, open_client=client_for(box))
    assert outcome.run_id is not None
    assert submit.export_run_receipt(outcome.run_id, tmp_path / "again.csv") == 5
    with pytest.raises(submit.BadInputError, match="no run"):
        submit.export_run_receipt(999, tmp_path / "x.csv")
    with pytest.raises(submit.BadInputError, match="left out"):
        submit.save_plan(submit.prepare_plan("acme", [PlanInput(normalise_email("bad"))]))
