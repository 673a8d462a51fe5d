"""`optout-desk sandbox` as a user runs it: in the foreground, then connection add, fetch and
reconcile its demo CRM export against it, then Ctrl-C (SIGTERM here) stops it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from optout_desk.cli import main


def start_sandbox(*args: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "optout_desk", "sandbox", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    printed: dict[str, str] = {}
    assert process.stdout is not None
    for line in process.stdout:
        name, _, value = line.partition(":")
        printed[name.strip()] = value.strip()
        if line.startswith("Press Ctrl-C"):
            break
    return process, printed


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    rest, errors = process.communicate(timeout=30)
    return process.returncode, rest + errors


def test_sandbox_then_connection_fetch_and_reconcile_its_crm_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    crm = tmp_path / "crm.xlsx"
    process, printed = start_sandbox("--records", "300", "--seed", "3", "--crm-export", str(crm))
    try:
        base_url = printed["Base URL"]
        assert base_url.startswith("http://127.0.0.1:")
        assert crm.is_file() and str(crm) in printed["CRM export"]
        monkeypatch.setenv("OPTOUT_DESK_SECRET_LOCAL_MASTER_KEY", printed["Master key"])
        monkeypatch.setenv("OPTOUT_DESK_SECRET_LOCAL_KEY", printed["Key"])
        monkeypatch.setattr("sys.stdin", open(os.devnull))  # not a terminal: keys from env
        assert main(["connection", "add", "local", "--system", "checkmarket",
                     "--base-url", base_url]) == 0
        assert main(["fetch", "local"]) == 0
        assert "300 new" in capsys.readouterr().out
        result = tmp_path / "result.jsonl"
        assert main(["reconcile", str(crm), "--against", "local", "--region", "BE",
                     "--output", str(result)]) == 0
        printed_counts = capsys.readouterr().out
        for bucket in ("To submit", "Missing from CRM", "Already in sync", "Invalid",
                       "Duplicates"):
            line = next(x for x in printed_counts.splitlines() if x.strip().startswith(bucket))
            assert int(line.split()[-1].replace(",", "")) > 0, line
    finally:
        code, output = stop(process)
        sys.stdin.close()
    assert code == 0
    assert "Sandbox stopped." in output


def test_a_port_out_of_range_is_bad_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "--port", "70000"]) == 2
    assert "--port 0-65535" in capsys.readouterr().err


def test_sandbox_demo_adds_a_connection_per_system(
    tmp_path: Path, isolated_home: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """`sandbox --demo` makes demo, demo-mykaarma and demo-dy; without a keyring the keys are
    printed as environment variables, with which every connection then works."""
    process, printed = start_sandbox("--records", "30", "--demo")
    try:
        assert "Demo connections" in printed
        # Without a Secret Service the keys are printed as `export NAME=value` lines (they
        # hold no ":", so start_sandbox keeps each whole line as a key); with one they are in
        # the keyring and no line is printed.
        for line in printed:
            if line.startswith("export "):
                variable, value = line.removeprefix("export ").split("=", 1)
                os.environ[variable] = value
        for name in ("demo", "demo-mykaarma", "demo-dy"):
            assert main(["connection", "test", name]) == 0, capsys.readouterr()
        out = capsys.readouterr().out
        assert "myKaarma" in out and "Dynamic Yield" in out
    finally:
        for variable in list(os.environ):
            if variable.startswith("OPTOUT_DESK_SECRET_DEMO"):
                del os.environ[variable]
        code, _ = stop(process)
    assert code == 0


def test_misbehaviour_flags_reach_the_simulator() -> None:
    import httpx

    process, printed = start_sandbox("--records", "120", "--page-cap", "50",
                                     "--limit-echoes-top", "--posted-optouts", "contact-zero")
    try:
        headers = {"X-Master-Key": printed["Master key"], "X-Key": printed["Key"]}
        with httpx.Client(base_url=printed["Base URL"], headers=headers, timeout=10) as c:
            page = c.get("3/contacts/optouts", params={"$top": 100}).json()
            c.post("3/contacts/optouts", json={"EmailAddresses": ["a@example.com"]})
            last = c.get("3/contacts/optouts", params={"$top": 1, "$skip": 120}).json()
    finally:
        code, _ = stop(process)
    assert code == 0
    assert (len(page["Data"]), page["Meta"]["Limit"]) == (50, 100)
    assert last["Data"][0]["ContactId"] == 0


@pytest.mark.parametrize("flags", [["--page-cap", "0"], ["--drip-s", "-1"],
                                   ["--arrivals", "-2"], ["--short-page-at", "-1"]])
def test_bad_misbehaviour_flags_are_bad_usage(
    flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sandbox", *flags]) == 2
    assert "--page-cap must be at least 1" in capsys.readouterr().err
