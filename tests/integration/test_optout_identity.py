"""Issue 9, "two people are never one record", as an operator meets it: a platform that lists
every POSTed opt-out with ContactId 0 and the batch's one timestamp. Submit 100 people, then
the cache, the verification, a second submit and a scrub must all see 100 people."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from optout_desk.cli import main
from optout_desk.store import cache, connections
from optout_desk.store.db import connect
from tests.fixtures.sandbox import SandboxFactory


def cached_count(name: str) -> int:
    db = connect()
    try:
        profile = connections.get(db, name)
        assert profile.id is not None
        return cache.sync_state(db, profile.id).count
    finally:
        db.close()


@pytest.mark.parametrize("mode", ["contact-zero", "contact-none", "contact-huge"])
def test_one_batch_of_100_people_stays_100_people(
    sandbox_factory: SandboxFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], mode: str,
) -> None:
    box = sandbox_factory(records=10, seed=5, posted_optouts=mode)
    monkeypatch.setenv("OPTOUT_DESK_SECRET_ACME_MASTER_KEY", box.master_key)
    monkeypatch.setenv("OPTOUT_DESK_SECRET_ACME_KEY", box.key)
    assert main(["connection", "add", "acme", "--system", "checkmarket",
                 "--base-url", box.base_url]) == 0
    assert main(["fetch", "acme"]) == 0
    people = [f"person{i}@example.com" for i in range(100)]
    source = tmp_path / "people.txt"
    source.write_text("\n".join(people) + "\n", encoding="utf-8")
    capsys.readouterr()

    assert main(["submit", "acme", "--from", str(source), "--yes"]) == 0
    printed = capsys.readouterr().out
    assert len(box.state.submitted) == 1  # one batch: one timestamp, ContactId 0 for all
    assert "Verified by re-fetching: 100 confirmed, 0 not yet visible." in printed
    assert cached_count("acme") == 110

    # Nothing is sent again: every one of them is on the cached list.
    assert main(["submit", "acme", "--from", str(source), "--yes"]) == 0
    again = capsys.readouterr().out
    assert "100 already on the destination's opt-out list" in again
    assert "Nothing to submit." in again and len(box.state.submitted) == 1

    send_list = tmp_path / "send.csv"
    with send_list.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Name", "Email"])
        writer.writerows([[f"P{i}", email] for i, email in enumerate(people)])
        writer.writerows([[f"New{i}", f"fresh{i}@example.com"] for i in range(5)])
    scrubbed = tmp_path / "clean.csv"
    assert main(["reconcile", str(send_list), "--against", "acme", "--scrub",
                 "--output", str(scrubbed)]) == 0
    with scrubbed.open(newline="", encoding="utf-8-sig") as handle:
        kept = [row["Email"] for row in csv.DictReader(handle)]
    assert kept == [f"fresh{i}@example.com" for i in range(5)]
