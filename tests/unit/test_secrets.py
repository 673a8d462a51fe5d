"""secrets.py without a real keyring: names, precedence, no backend, errors, timeouts.

The real Secret Service round trips (and a really locked keyring) are in
tests/integration/test_keyring_secrets.py. Here the only stand-ins are tiny keyring backends for
failures that cannot be produced on demand: a hung D-Bus call and library exceptions.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import keyring
import keyring.backend
import keyring.errors
import pytest

from optout_desk import secrets
from optout_desk.core.errors import BadInputError
from optout_desk.secrets import (
    KeyringLockedError,
    KeyringTimeoutError,
    MissingSecretError,
    NoKeyringError,
    SecretOrigin,
    SecretsError,
)

SECRET = "s3cr3t-VALUE-that-must-not-leak"


class RaisingKeyring(keyring.backend.KeyringBackend):
    """Raises a given exception from every call. priority -1: keyring must not wrap it in a
    ChainerBackend (shared/notes-headless.md)."""

    priority = -1  # type: ignore[assignment]

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    def get_password(self, service: str, username: str) -> str | None:
        raise self.error

    def set_password(self, service: str, username: str, password: str) -> None:
        raise self.error

    def delete_password(self, service: str, username: str) -> None:
        raise self.error


class HangingKeyring(keyring.backend.KeyringBackend):
    """Blocks like a D-Bus call waiting for a prompt nobody answers (until released)."""

    priority = -1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def get_password(self, service: str, username: str) -> str | None:
        self.release.wait(30)
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        self.release.wait(30)

    def delete_password(self, service: str, username: str) -> None:
        self.release.wait(30)


@pytest.fixture
def use_backend() -> Iterator[object]:
    previous = keyring.get_keyring()

    def install(backend: keyring.backend.KeyringBackend) -> None:
        keyring.set_keyring(backend)

    yield install
    keyring.set_keyring(previous)


def test_env_var_names() -> None:
    assert secrets.env_var_name("acme-eu", "MASTER_KEY") == "OPTOUT_DESK_SECRET_ACME_EU_MASTER_KEY"
    assert secrets.env_var_name("Zürich 2", "KEY") == "OPTOUT_DESK_SECRET_Z_RICH_2_KEY"


def test_session_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTOUT_DESK_SECRET_ACME_KEY", "from-env")
    assert secrets.read_secret("acme", "KEY") == "from-env"
    location = secrets.describe_location("acme", "KEY")
    assert location == "environment variable OPTOUT_DESK_SECRET_ACME_KEY"
    assert secrets.store_secret("acme", "KEY", "from-session", session_only=True) is (
        SecretOrigin.SESSION
    )
    assert secrets.read_secret_with_origin("acme", "KEY") == ("from-session", SecretOrigin.SESSION)
    assert secrets.describe_location("acme", "KEY") == "held for this session only"
    secrets.clear_session()
    assert secrets.read_secret("acme", "KEY") == "from-env"


def test_read_secrets_reads_each_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTOUT_DESK_SECRET_ACME_MASTER_KEY", "m")
    secrets.store_secret("acme", "KEY", "k", session_only=True)
    assert secrets.read_secrets("acme", ["MASTER_KEY", "KEY"]) == {"MASTER_KEY": "m", "KEY": "k"}


def test_empty_value_is_bad_input() -> None:
    with pytest.raises(BadInputError, match="master key is empty"):
        secrets.store_secret("acme", "MASTER_KEY", "  ", session_only=True)


def test_blank_environment_variable_does_not_count(
    monkeypatch: pytest.MonkeyPatch, no_keyring_backend: object
) -> None:
    monkeypatch.setenv("OPTOUT_DESK_SECRET_ACME_KEY", "   ")
    with pytest.raises(NoKeyringError):
        secrets.read_secret("acme", "KEY")


def test_no_backend_read_names_the_choices(no_keyring_backend: object) -> None:
    with pytest.raises(NoKeyringError) as caught:
        secrets.read_secret("acme", "MASTER_KEY")
    message = caught.value.message
    assert message.startswith("No system keyring is available")
    assert "for this session only" in message
    assert "OPTOUT_DESK_SECRET_ACME_MASTER_KEY" in message
    assert caught.value.exit_code == 1


def test_no_backend_write_is_refused_not_written_to_a_file(no_keyring_backend: object) -> None:
    with pytest.raises(NoKeyringError, match="No system keyring is available"):
        secrets.store_secret("acme", "KEY", SECRET)
    # Session-only still works without a keyring.
    assert secrets.store_secret("acme", "KEY", SECRET, session_only=True) is SecretOrigin.SESSION
    assert secrets.read_secret("acme", "KEY") == SECRET


def test_no_backend_status_and_location(no_keyring_backend: object) -> None:
    status = secrets.backend_status()
    assert status.state == "none"
    assert "No system keyring" in status.message
    assert secrets.describe_location("acme", "KEY") == "not stored (no system keyring)"
    secrets.delete_secrets("acme", ["MASTER_KEY", "KEY"])  # nothing to delete: no error


@pytest.mark.parametrize(
    "error",
    [
        keyring.errors.KeyringLocked("Failed to unlock the collection!"),
        keyring.errors.InitError("Failed to create the collection: Prompt dismissed."),
    ],
)
def test_locked_keyring_is_its_own_error(use_backend: object, error: Exception) -> None:
    use_backend(RaisingKeyring(error))  # type: ignore[operator]
    with pytest.raises(KeyringLockedError) as caught:
        secrets.read_secret("acme", "KEY")
    assert "is locked; unlock it (log in to your desktop keyring) and retry" in caught.value.message
    assert not isinstance(caught.value, NoKeyringError)
    assert secrets.backend_status().state == "locked"
    assert secrets.describe_location("acme", "KEY").endswith("is locked")


def test_secretstorage_locked_exception_maps_to_locked(use_backend: object) -> None:
    from secretstorage.exceptions import LockedException

    use_backend(RaisingKeyring(LockedException("locked")))  # type: ignore[operator]
    with pytest.raises(KeyringLockedError):
        secrets.store_secret("acme", "KEY", SECRET)


def test_other_init_error_means_no_keyring(use_backend: object) -> None:
    use_backend(RaisingKeyring(keyring.errors.InitError("Unable to initialize SecretService")))  # type: ignore[operator]
    with pytest.raises(NoKeyringError, match="Unable to initialize"):
        secrets.read_secret("acme", "KEY")


def test_unexpected_backend_error_never_carries_the_secret(use_backend: object) -> None:
    use_backend(RaisingKeyring(ValueError(f"cannot store {SECRET}")))  # type: ignore[operator]
    with pytest.raises(SecretsError) as caught:
        secrets.store_secret("acme", "KEY", SECRET)
    assert SECRET not in caught.value.message
    assert SECRET not in repr(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert "ValueError" in caught.value.message


def test_hung_keyring_times_out(use_backend: object) -> None:
    hanging = HangingKeyring()
    use_backend(hanging)  # type: ignore[operator]
    previous = secrets.set_timeout(0.2)
    try:
        with pytest.raises(KeyringTimeoutError, match=r"did not answer within 0.2 s"):
            secrets.read_secret("acme", "KEY")
        with pytest.raises(KeyringTimeoutError):
            secrets.store_secret("acme", "KEY", SECRET)
        status = secrets.backend_status()
        assert status.state == "locked"
        assert "did not answer" in status.message
    finally:
        secrets.set_timeout(previous)
        hanging.release.set()


def test_missing_secret_names_the_variable(use_backend: object) -> None:
    class Empty(RaisingKeyring):
        def get_password(self, service: str, username: str) -> str | None:
            return None

    use_backend(Empty(RuntimeError()))  # type: ignore[operator]
    with pytest.raises(MissingSecretError) as caught:
        secrets.read_secret("acme", "MASTER_KEY")
    assert "No master key is stored for the connection 'acme'" in caught.value.message
    assert "OPTOUT_DESK_SECRET_ACME_MASTER_KEY" in caught.value.message
    assert caught.value.exit_code == 2
    assert secrets.describe_location("acme", "MASTER_KEY") == "not stored"


def test_backend_names_as_the_os_calls_them() -> None:
    from keyring.backends import SecretService, Windows, libsecret, macOS

    assert secrets.backend_name(SecretService.Keyring()) == "Secret Service"
    assert secrets.backend_name(libsecret.Keyring()) == "Secret Service"
    assert secrets.backend_name(Windows.WinVaultKeyring()) == "Windows Credential Manager"
    assert secrets.backend_name(macOS.Keyring()) == "macOS Keychain"
