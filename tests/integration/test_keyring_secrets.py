"""secrets.py against a real Secret Service (gnome-keyring in scripts/test.sh's D-Bus session),
including a collection that is really locked and unlocked again."""

from __future__ import annotations

import pytest

from optout_desk import secrets
from optout_desk.secrets import KeyringLockedError, MissingSecretError, SecretOrigin
from tests.fixtures.keyring import RealKeyring

pytestmark = pytest.mark.keyring


def test_store_read_delete_round_trip(real_keyring: RealKeyring) -> None:
    assert secrets.store_secret("acme eu", "MASTER_KEY", "m-ünïcode-1") is SecretOrigin.KEYRING
    assert secrets.store_secret("acme eu", "KEY", "k-2") is SecretOrigin.KEYRING
    assert real_keyring.desk_items() == ["acme eu:KEY", "acme eu:MASTER_KEY"]
    assert secrets.read_secrets("acme eu", ["MASTER_KEY", "KEY"]) == {
        "MASTER_KEY": "m-ünïcode-1", "KEY": "k-2"
    }
    assert secrets.read_secret_with_origin("acme eu", "KEY") == ("k-2", SecretOrigin.KEYRING)
    assert secrets.describe_location("acme eu", "KEY") == "stored in Secret Service"
    secrets.delete_secrets("acme eu", ["MASTER_KEY", "KEY"])
    assert real_keyring.desk_items() == []
    assert secrets.describe_location("acme eu", "KEY") == "not stored"
    with pytest.raises(MissingSecretError):
        secrets.read_secret("acme eu", "KEY")
    secrets.delete_secrets("acme eu", ["MASTER_KEY", "KEY"])  # again: nothing left, no error


def test_overwrite_keeps_one_item(real_keyring: RealKeyring) -> None:
    secrets.store_secret("acme", "KEY", "old")
    secrets.store_secret("acme", "KEY", "new")
    assert real_keyring.desk_items() == ["acme:KEY"]
    assert secrets.read_secret("acme", "KEY") == "new"


def test_precedence_session_then_environment_then_keyring(
    real_keyring: RealKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets.store_secret("acme", "KEY", "from-keyring")
    monkeypatch.setenv(secrets.env_var_name("acme", "KEY"), "from-env")
    secrets.store_secret("acme", "KEY", "from-session", session_only=True)
    assert secrets.read_secret_with_origin("acme", "KEY") == ("from-session", SecretOrigin.SESSION)
    secrets.clear_session()
    assert secrets.read_secret_with_origin("acme", "KEY") == ("from-env", SecretOrigin.ENVIRONMENT)
    monkeypatch.delenv(secrets.env_var_name("acme", "KEY"))
    assert secrets.read_secret_with_origin("acme", "KEY") == ("from-keyring", SecretOrigin.KEYRING)


def test_storing_for_good_replaces_the_session_copy(real_keyring: RealKeyring) -> None:
    secrets.store_secret("acme", "KEY", "typed-for-session", session_only=True)
    secrets.store_secret("acme", "KEY", "saved")
    assert secrets.read_secret_with_origin("acme", "KEY") == ("saved", SecretOrigin.KEYRING)


def test_session_only_never_reaches_the_keyring(real_keyring: RealKeyring) -> None:
    secrets.store_secret("acme", "KEY", "only-now", session_only=True)
    assert real_keyring.desk_items() == []


def test_backend_status_ok(real_keyring: RealKeyring) -> None:
    status = secrets.backend_status()
    assert (status.state, status.name) == ("ok", "Secret Service")
    assert status.message == "Keys are stored in Secret Service."


def test_locked_keyring_is_reported_then_works_after_unlock(
    locked_keyring: RealKeyring,
) -> None:
    with pytest.raises(KeyringLockedError) as caught:
        secrets.read_secret("acme", "KEY")
    assert caught.value.message.startswith("The keyring (Secret Service) is locked; unlock it")
    with pytest.raises(KeyringLockedError):
        secrets.store_secret("acme", "KEY", "value")
    status = secrets.backend_status()
    assert status.state == "locked"
    assert status.name == "Secret Service"
    assert secrets.describe_location("acme", "KEY") == "unknown: Secret Service is locked"

    locked_keyring.unlock()
    secrets.store_secret("acme", "KEY", "after-unlock")
    assert secrets.read_secret("acme", "KEY") == "after-unlock"
    assert secrets.backend_status().state == "ok"
