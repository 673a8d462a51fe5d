"""`optout-desk connection …` end to end against the CheckMarket sandbox on 127.0.0.1.

One flow runs the real command in a subprocess (no terminal: keys from the environment); the
others call cli.main in-process. Keys go through the real Secret Service where a test says
`real_keyring`. The only stand-in is the terminal itself (stdin_is_terminal and getpass), which
a test process cannot have.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from optout_desk import cli, secrets
from optout_desk.commands import connection as connection_command
from optout_desk.sandbox.server import Sandbox
from tests.fixtures.keyring import RealKeyring

MASTER = "OPTOUT_DESK_SECRET_ACME_MASTER_KEY"
KEY = "OPTOUT_DESK_SECRET_ACME_KEY"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def keys_in_env(monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox, key: str | None = None) -> None:
    monkeypatch.setenv(MASTER, sandbox.master_key)
    monkeypatch.setenv(KEY, key or sandbox.key)


def as_terminal(monkeypatch: pytest.MonkeyPatch, answers: list[str]) -> list[str]:
    """Pretend stdin is a terminal; getpass answers in order and records its prompts."""
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return answers.pop(0)

    monkeypatch.setattr("optout_desk.commands._terminal.stdin_is_terminal", lambda: True)
    monkeypatch.setattr(connection_command.getpass, "getpass", fake_getpass)
    return prompts


@pytest.mark.keyring
def test_subprocess_flow_with_environment_keys(
    sandbox: Sandbox, real_keyring: RealKeyring, isolated_home: Path
) -> None:
    env = {**os.environ, MASTER: sandbox.master_key, KEY: sandbox.key}

    def desk(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "optout_desk", *argv], env=env, capture_output=True,
            text=True, stdin=subprocess.DEVNULL, timeout=60, check=False,
        )

    added = desk("connection", "add", "acme", "--base-url", sandbox.base_url, "--page-size",
                 "100")
    assert added.returncode == 0, added.stderr
    assert "Added 'acme'" in added.stdout
    assert "keys stay in the environment variables" in added.stderr
    assert real_keyring.desk_items() == []  # not copied without --store-keys

    listed = desk("connection", "list")
    assert listed.returncode == 0
    header, row = listed.stdout.splitlines()
    assert header.split("\t") == [
        "Name", "System", "Region / host", "Keys", "Last sync (UTC)", "Cached"]
    assert row.split("\t") == [
        "acme", "checkmarket", sandbox.base_url.split("://")[1].rstrip("/"),
        "environment variables OPTOUT_DESK_SECRET_ACME_*", "never", "0"]

    tested = desk("connection", "test", "acme")
    assert tested.returncode == 0, tested.stderr
    assert tested.stdout.startswith("OK: The connection 'acme' works: 250 opt-outs")

    removed = desk("connection", "remove", "acme", "--yes")
    assert removed.returncode == 0, removed.stderr
    assert desk("connection", "list").stdout.startswith("No connections yet")
    for output in (added, listed, tested, removed):
        assert sandbox.master_key not in output.stdout + output.stderr
        assert sandbox.key not in output.stdout + output.stderr


def test_missing_environment_keys_without_terminal_is_bad_input(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox
) -> None:
    monkeypatch.setenv(MASTER, sandbox.master_key)
    code, _, err = run(capsys, "connection", "add", "acme", "--base-url", sandbox.base_url)
    assert code == 2
    assert KEY in err and MASTER not in err
    code, out, _ = run(capsys, "connection", "list")
    assert out.startswith("No connections yet")


@pytest.mark.keyring
def test_store_keys_copies_environment_into_keyring(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox,
    real_keyring: RealKeyring,
) -> None:
    keys_in_env(monkeypatch, sandbox)
    code, out, err = run(capsys, "connection", "add", "acme", "--base-url", sandbox.base_url,
                         "--store-keys")
    assert code == 0, err
    assert "keys: environment variable" in out  # the environment still wins while it is set
    assert real_keyring.desk_items() == ["acme:KEY", "acme:MASTER_KEY"]
    monkeypatch.delenv(MASTER)
    monkeypatch.delenv(KEY)
    code, out, _ = run(capsys, "connection", "list")
    assert "stored in Secret Service" in out
    code, out, err = run(capsys, "connection", "test", "acme")
    assert code == 0, err
    assert "250 opt-outs" in out
    code, out, _ = run(capsys, "connection", "remove", "acme", "--yes")
    assert code == 0
    assert "Removed 'acme', its keys and its 0 cached opt-outs." in out
    assert real_keyring.desk_items() == []


@pytest.mark.keyring
def test_terminal_prompt_saves_keys_in_the_keyring(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox,
    real_keyring: RealKeyring,
) -> None:
    prompts = as_terminal(monkeypatch, [sandbox.master_key, sandbox.key])
    code, out, err = run(capsys, "connection", "add", "acme", "--base-url", sandbox.base_url,
                         "--concurrency", "2")
    assert code == 0, err
    assert prompts == ["Master key for acme (hidden): ", "Key for acme (hidden): "]
    assert "keys: stored in Secret Service" in out
    assert secrets.read_secret("acme", "KEY") == sandbox.key
    code, out, _ = run(capsys, "connection", "test", "acme")
    assert code == 0


@pytest.mark.keyring
def test_wrong_key_fails_the_test_with_the_platforms_reason(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox,
    real_keyring: RealKeyring,
) -> None:
    as_terminal(monkeypatch, [sandbox.master_key, "not-the-key"])
    assert run(capsys, "connection", "add", "acme", "--base-url", sandbox.base_url)[0] == 0
    code, out, err = run(capsys, "connection", "test", "acme")
    assert code == 1
    assert out == ""
    assert err.startswith("optout-desk: CheckMarket refused the keys")
    assert "not-the-key" not in err


def test_no_keyring_in_a_terminal_names_the_alternatives(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox,
    no_keyring_backend: object,
) -> None:
    prompts = as_terminal(monkeypatch, ["never", "asked"])
    code, _, err = run(capsys, "connection", "add", "acme", "--base-url", sandbox.base_url)
    assert code == 1
    assert prompts == []  # refused before anyone types a key
    assert "No system keyring is available" in err
    assert MASTER in err and KEY in err
    # The named alternative works: keys from the environment, nothing needs a keyring.
    keys_in_env(monkeypatch, sandbox)
    assert run(capsys, "connection", "add", "acme", "--base-url", sandbox.base_url)[0] == 0
    code, out, _ = run(capsys, "connection", "test", "acme")
    assert code == 0
    assert "250 opt-outs" in out
    # Removing works without a keyring too.
    assert run(capsys, "connection", "remove", "acme", "--yes")[0] == 0


def test_store_keys_without_keyring_saves_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox,
    no_keyring_backend: object,
) -> None:
    keys_in_env(monkeypatch, sandbox)
    code, _, err = run(capsys, "connection", "add", "acme", "--base-url", sandbox.base_url,
                       "--store-keys")
    assert code == 1
    assert "No system keyring is available" in err
    assert run(capsys, "connection", "list")[1].startswith("No connections yet")


@pytest.mark.keyring
def test_locked_keyring_test_fails_with_unlock_advice(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox,
    real_keyring: RealKeyring,
) -> None:
    as_terminal(monkeypatch, [sandbox.master_key, sandbox.key])
    assert run(capsys, "connection", "add", "acme", "--base-url", sandbox.base_url)[0] == 0
    real_keyring.lock()
    code, _, err = run(capsys, "connection", "test", "acme")
    assert code == 1
    assert "is locked; unlock it" in err
    code, out, _ = run(capsys, "connection", "list")
    assert "unknown: Secret Service is locked" in out
    real_keyring.unlock()
    assert run(capsys, "connection", "test", "acme")[0] == 0


def test_remove_needs_confirmation_without_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox,
) -> None:
    keys_in_env(monkeypatch, sandbox)
    assert run(capsys, "connection", "add", "acme", "--base-url", sandbox.base_url)[0] == 0
    code, _, err = run(capsys, "connection", "remove", "acme")
    assert code == 2
    assert "add --yes" in err
    monkeypatch.setattr("optout_desk.commands._terminal.stdin_is_terminal", lambda: True)
    monkeypatch.setattr("builtins.input", lambda _prompt: "n")
    code, out, _ = run(capsys, "connection", "remove", "acme")
    assert (code, out.strip()) == (0, "Nothing was removed.")
    assert "acme" in run(capsys, "connection", "list")[1]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["connection", "test", "ghost"], "No connection named 'ghost'"),
        (["connection", "remove", "ghost", "--yes"], "No connection named 'ghost'"),
        (["connection"], "Say what to do"),
        (["connection", "add", "acme", "--base-url", "http://example.com/"], "http"),
        (["connection", "add", "bad\tname", "--region", "eu"], "control character"),
        (["connection", "add", "acme", "--region", "eu", "--page-size", "0"], "page_size"),
    ],
)
def test_bad_input_exits_2_with_one_sentence(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: list[str],
    expected: str,
) -> None:
    monkeypatch.setenv(MASTER, "m")
    monkeypatch.setenv(KEY, "k")
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert expected in err
    assert "Traceback" not in err


def test_duplicate_name_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox
) -> None:
    keys_in_env(monkeypatch, sandbox)
    assert run(capsys, "connection", "add", "acme", "--region", "eu")[0] == 0
    code, _, err = run(capsys, "connection", "add", "acme", "--region", "us")
    assert code == 2
    assert "already exists" in err
    code, out, _ = run(capsys, "connection", "list")
    assert "eu" in out
