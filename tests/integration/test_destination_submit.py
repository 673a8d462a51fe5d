"""Submitting to myKaarma and Dynamic Yield through the workflow, over real HTTP to their
simulators: errors under HTTP 200 fail their payload only, warnings reach the receipt, a
login page and refused credentials say what is wrong, and a resume after a crash resends a
payload whose outcome is unknown only where the connector says that is harmless."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from optout_desk import secrets
from optout_desk.core.identifiers import normalise_email, normalise_phone, normalise_token
from optout_desk.core.plan import PlanInput
from optout_desk.sandbox.dynamic_yield import DynamicYieldSandbox
from optout_desk.sandbox.mykaarma import MyKaarmaSandbox
from optout_desk.store import connections, journal
from optout_desk.store.connections import ConnectionProfile
from optout_desk.store.db import connect
from optout_desk.workflows import submit
from tests.fixtures.simulators import DynamicYieldFactory, MyKaarmaFactory


def add(name: str, system: str, base_url: str, keys: dict[str, str], **settings: object) -> None:
    db = connect()
    try:
        connections.add(db, ConnectionProfile(name, system, base_url, "",
                                              settings={"max_retries": 1, **settings}))
    finally:
        db.close()
    for field, value in keys.items():
        secrets.store_secret(name, field, value, session_only=True)


def emails(n: int, prefix: str = "d") -> list[PlanInput]:
    return [PlanInput(normalise_email(f"{prefix}{i}@example.com"), "crm.xlsx", i + 2)
            for i in range(n)]


def mk_connection(box: MyKaarmaSandbox, **settings: object) -> str:
    add("mk", "mykaarma", box.base_url, {"USERNAME": box.username, "PASSWORD": box.password},
        department_uuid=box.department_uuid, **settings)
    return "mk"


def read_receipt(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def test_mykaarma_errors_under_200_fail_only_their_payload(
        mykaarma_factory: MyKaarmaFactory, tmp_path: Path) -> None:
    box = mykaarma_factory(seed=3, optouts=0, warn_already_opted_out=True)
    box.state.add_optouts(box.department_uuid, [("EMAIL", "d2@example.com")])
    mk_connection(box, entries_per_request=2, concurrency=1)  # the fault hits payload 1
    plan = submit.prepare_plan("mk", [*emails(4), PlanInput(normalise_phone("+32470000001",
                                                                            "BE"))])
    # The first update is answered with errors[] under HTTP 200: that payload fails with the
    # platform's code; the other two go on.
    box.state.inject_faults("errors-under-200", 1, f"communications/department/"
                            f"{box.department_uuid}/optoutstatus")
    plan_id = submit.save_plan(plan)
    outcome = submit.execute_plan(plan_id, verify=True, receipt=tmp_path / "r.csv")
    assert (outcome.acknowledged, outcome.failed, outcome.batches) == (2, 1, 3)
    assert outcome.status == "pending" and outcome.error == ""  # the others went on
    rows = read_receipt(tmp_path / "r.csv")
    failed = [r for r in rows if r["Outcome"] == "failed"]
    assert [r["Identifier"] for r in failed] == ["d0@example.com", "d1@example.com"]
    assert failed[0]["Platform message"].startswith("myKaarma")
    assert "INTERNAL_ERROR" in failed[0]["Platform message"]
    warned = [r for r in rows if "Warnings:" in r["Platform message"]]
    assert warned and "ALREADY_OPTED_OUT" in warned[0]["Platform message"]


def test_mykaarma_login_page_and_wrong_password_say_what_is_wrong(
        mykaarma_factory: MyKaarmaFactory) -> None:
    box = mykaarma_factory(seed=4, optouts=0)
    add("unprov", "mykaarma", box.base_url, {"USERNAME": box.username,
                                             "PASSWORD": box.password},
        department_uuid=box.unprovisioned_department_uuid)
    outcome = submit.execute_plan(submit.save_plan(submit.prepare_plan("unprov", emails(2))),
                                  verify=False)
    assert outcome.status == "failed" and "not provisioned" in outcome.error
    add("wrongpw", "mykaarma", box.base_url, {"USERNAME": box.username, "PASSWORD": "nope"},
        department_uuid=box.department_uuid)
    outcome = submit.execute_plan(submit.save_plan(submit.prepare_plan("wrongpw", emails(2))),
                                  verify=False)
    assert outcome.status == "failed" and "password" in outcome.error.lower()
    assert "nope" not in outcome.error


def dy_connection(box: DynamicYieldSandbox, **settings: object) -> str:
    add("dy", "dynamic-yield", box.eu_url, {"API_KEY": box.eu_key}, **settings)
    return "dy"


def test_dynamic_yield_one_request_each_side_by_side(
        dynamic_yield_factory: DynamicYieldFactory) -> None:
    box = dynamic_yield_factory(latency_ms=30)
    dy_connection(box, concurrency=8)
    inputs = [*emails(40), PlanInput(normalise_token("tok-1")), PlanInput(normalise_token("tok-2"))]
    plan = submit.prepare_plan("dy", inputs)
    assert (len(plan.batches), plan.counts) == (42, {"email": 40, "push_token": 2})
    box.state.reset_in_flight()
    outcome = submit.execute_plan(submit.save_plan(plan), verify=False)
    assert outcome.status == "completed" and outcome.submitted == 42
    assert box.state.opted_out_emails("eu") == {f"d{i}@example.com" for i in range(40)}
    assert box.state.opted_out_push_ids("eu") == {"tok-1", "tok-2"}
    assert box.state.max_in_flight >= 6  # eight at a time, not one by one
    assert "no list or look-up" in outcome.verification_error or not outcome.verified


def crash_after_sending(plan_id: int, seqs: list[int]) -> None:
    """What a crash between "sent" and the answer leaves in the journal."""
    db = connect()
    try:
        for seq in seqs:
            journal.mark_sent(db, plan_id, seq)
        journal.set_status(db, plan_id, journal.FAILED, "Interrupted while sending.")
    finally:
        db.close()


def test_a_lost_answer_is_resent_only_where_that_is_harmless(
        dynamic_yield_factory: DynamicYieldFactory) -> None:
    box = dynamic_yield_factory()
    dy_connection(box)
    plan = submit.prepare_plan("dy", [*emails(2), PlanInput(normalise_token("tok-9"))])
    plan_id = submit.save_plan(plan)
    crash_after_sending(plan_id, [1, 3])  # an email opt-out and the push event
    outcome = submit.execute_plan(plan_id, verify=False)
    assert outcome.resent_after_interruption == 1  # the email: an opt-out state, idempotent
    assert outcome.outcome_unknown == 1  # the push event: not known to be harmless twice
    assert outcome.status == "failed" and outcome.resumable
    assert any("--resend-unknown" in line for line in outcome.summary_lines())
    assert box.state.opted_out_push_ids("eu") == set()
    again = submit.execute_plan(plan_id, verify=False, resend_unknown=True)
    assert again.status == "completed" and box.state.opted_out_push_ids("eu") == {"tok-9"}


@pytest.mark.parametrize("system", ["mykaarma", "checkmarket"])
def test_lost_answers_of_idempotent_destinations_are_resent(
        system: str, mykaarma_factory: MyKaarmaFactory, sandbox_factory: object) -> None:
    if system == "mykaarma":
        box = mykaarma_factory(seed=5, optouts=0)
        name = mk_connection(box)
    else:
        cm = sandbox_factory(records=3)  # type: ignore[operator]
        add("cm", "checkmarket", cm.base_url, {"MASTER_KEY": cm.master_key, "KEY": cm.key})
        name = "cm"
    plan_id = submit.save_plan(submit.prepare_plan(name, emails(3)))
    crash_after_sending(plan_id, [1])
    outcome = submit.execute_plan(plan_id, verify=False)
    assert outcome.status == "completed" and outcome.outcome_unknown == 0
    assert outcome.resent_after_interruption == 1
