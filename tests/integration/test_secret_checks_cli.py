"""Keys and base URLs that can never work are refused with one sentence, through the CLI:
where they are entered (`connection add`) and before they are used (`connection test`,
`fetch`), without ever echoing the key or the password."""

from __future__ import annotations

import pytest

from optout_desk import cli
from optout_desk.connectors.errors import ConfigurationError
from optout_desk.connectors.http import validate_base_url
from optout_desk.sandbox.server import Sandbox

MASTER = "OPTOUT_DESK_SECRET_ACME_MASTER_KEY"
KEY = "OPTOUT_DESK_SECRET_ACME_KEY"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("bad_key", "kind"),
    [
        ("abc\u00e9def", "a character outside plain ASCII"),  # an accented letter
        ("abc\u201cdef", "a character outside plain ASCII"),  # a typographic quote
        ("abc\u00a0def", "a character outside plain ASCII"),  # a non-breaking space
        ("abc\x07def", "control character"),
        ("abc\ndef", "control character"),
    ],
)
def test_a_key_no_key_can_hold_is_refused_when_entered(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox,
    bad_key: str, kind: str,
) -> None:
    monkeypatch.setenv(MASTER, sandbox.master_key)
    monkeypatch.setenv(KEY, bad_key)
    code, _, err = run(capsys, "connection", "add", "acme", "--base-url", sandbox.base_url)
    assert code == 2, err
    assert "The key holds characters no key can hold" in err
    assert kind in err
    assert "paste it again from CheckMarket" in err
    assert bad_key not in err and "abc" not in err and "Traceback" not in err
    assert run(capsys, "connection", "list")[1].startswith("No connections yet")


@pytest.mark.parametrize(
    ("bad_key", "kind"),
    [("k\u00e9y", "outside plain ASCII"), ("k\x01ey", "control character")],
)
def test_a_key_no_key_can_hold_is_refused_before_use(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox,
    bad_key: str, kind: str,
) -> None:
    """Set outside the desk after the connection was added: checked again before any request
    (this was "an unexpected error", or "Could not reach … check the network")."""
    monkeypatch.setenv(MASTER, sandbox.master_key)
    monkeypatch.setenv(KEY, sandbox.key)
    assert run(capsys, "connection", "add", "acme", "--base-url", sandbox.base_url)[0] == 0
    monkeypatch.setenv(KEY, bad_key)
    code, out, err = run(capsys, "connection", "test", "acme")
    assert code != 0
    assert "The key holds characters no key can hold" in out + err and kind in out + err
    assert "network" not in out + err and "unexpected" not in out + err
    code, _, err = run(capsys, "fetch", "acme")
    assert code == 2, err
    assert "no key can hold" in err and bad_key not in err


def test_a_base_url_with_a_password_is_refused_and_not_stored(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MASTER, "m")
    monkeypatch.setenv(KEY, "k")
    code, _, err = run(capsys, "connection", "add", "acme", "--base-url",
                       "https://operator:Hunter2secret@api.example.com/api/")
    assert code == 2
    assert "must not hold a user name or password" in err
    assert "https://api.example.com/" in err  # the URL to give instead
    assert "Hunter2secret" not in err and "operator" not in err
    assert run(capsys, "connection", "list")[1].startswith("No connections yet")


@pytest.mark.parametrize(
    "url",
    ["https://user:pw-secret@api.example.com/", "https://pw-secret@api.example.com/",
     "http://user:pw-secret@127.0.0.1:8080/", "ftp://user:pw-secret@host/?a#b"],
)
def test_validate_base_url_never_echoes_credentials(url: str) -> None:
    with pytest.raises(ConfigurationError, match="user name or password") as caught:
        validate_base_url(url)
    assert "pw-secret" not in caught.value.message


def test_validate_base_url_still_accepts_a_plain_url() -> None:
    assert validate_base_url("https://api.example.com/v3") == "https://api.example.com/v3/"
