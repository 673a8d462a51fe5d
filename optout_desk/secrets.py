"""API keys: the OS keyring, environment variables for automation, or this session only.

Where a key is read from, first match wins:
1. the session store: keys the operator entered "for this session only" (and demo keys), held
   in memory and never written anywhere;
2. an environment variable OPTOUT_DESK_SECRET_<CONNECTION>_<FIELD> (headless automation);
3. the OS keyring (Secret Service, Windows Credential Manager, macOS Keychain) under the service
   "optout-desk" and the username "<connection>:<field>".

"No keyring" and "keyring locked" are different problems with different fixes, so they are
different errors. Every keyring call runs in a daemon thread with a timeout, because a keyring
can block on D-Bus for a long time or forever (an unlock prompt nobody sees); a hung call must
neither freeze the caller nor keep the process from exiting. There is no plaintext fallback.

Key values never appear in logs, exception messages or reprs.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

import keyring
import keyring.backend
import keyring.errors

from optout_desk.core.errors import EXIT_BAD_INPUT, BadInputError, DeskError
from optout_desk.store.connections import env_name_part

log = logging.getLogger(__name__)

KEYRING_SERVICE = "optout-desk"
ENV_PREFIX = "OPTOUT_DESK_SECRET_"
DEFAULT_TIMEOUT_S = 10.0

_T = TypeVar("_T")


class SecretOrigin(StrEnum):
    KEYRING = "keyring"
    ENVIRONMENT = "environment"
    SESSION = "session"


class SecretsError(DeskError):
    """A key could not be stored or read."""


class NoKeyringError(SecretsError):
    """This machine has no usable system keyring."""


class KeyringLockedError(SecretsError):
    """The keyring exists but is locked (or its unlock prompt was dismissed)."""


class KeyringTimeoutError(SecretsError):
    """The keyring did not answer in time."""


class MissingSecretError(SecretsError):
    """No key is stored for this connection and field, anywhere."""

    exit_code = EXIT_BAD_INPUT


@dataclass(frozen=True)
class BackendStatus:
    """The system keyring as the operator should see it. state: "ok" | "none" | "locked"."""

    state: str
    name: str
    message: str


# Keys held for this session only: {(connection, field): value}. Never persisted.
_session: dict[tuple[str, str], str] = {}
_session_lock = threading.Lock()
_timeout_s = DEFAULT_TIMEOUT_S


def set_timeout(seconds: float) -> float:
    """Change how long a keyring call may take; returns the previous value (for tests)."""
    global _timeout_s
    previous, _timeout_s = _timeout_s, seconds
    return previous


def env_var_name(connection: str, field: str) -> str:
    """OPTOUT_DESK_SECRET_<CONNECTION>_<FIELD>: upper case, anything not A-Z/0-9 as "_"."""
    return f"{ENV_PREFIX}{env_name_part(connection)}_{env_name_part(field)}"


def store_secret(
    connection: str, field: str, value: str, *, session_only: bool = False
) -> SecretOrigin:
    """Keep a key in the keyring, or in memory for this session only."""
    if not value or not value.strip():
        raise BadInputError(f"The {_label(field)} is empty; paste the key again.")
    if session_only:
        with _session_lock:
            _session[(connection, field)] = value
        return SecretOrigin.SESSION
    _call(keyring.set_password, KEYRING_SERVICE, _username(connection, field), value,
          secret=value)
    # A key stored for good replaces one held for the session, or the session copy would win.
    with _session_lock:
        _session.pop((connection, field), None)
    log.info("stored %s for a connection in the keyring", field)
    return SecretOrigin.KEYRING


def read_secret(connection: str, field: str) -> str:
    """The key from the session, the environment or the keyring, in that order."""
    value, _origin = read_secret_with_origin(connection, field)
    return value


def read_secret_with_origin(connection: str, field: str) -> tuple[str, SecretOrigin]:
    with _session_lock:
        held = _session.get((connection, field))
    if held:
        return held, SecretOrigin.SESSION
    from_env = os.environ.get(env_var_name(connection, field), "").strip()
    if from_env:
        return from_env, SecretOrigin.ENVIRONMENT
    try:
        stored = _call(keyring.get_password, KEYRING_SERVICE, _username(connection, field))
    except NoKeyringError as exc:
        raise NoKeyringError(
            f"{exc.message} No {_label(field)} is held for this session or set as "
            f"{env_var_name(connection, field)}."
        ) from None
    if not stored:
        raise MissingSecretError(
            f"No {_label(field)} is stored for the connection {connection!r}. Enter it again "
            f"(edit the connection) or set the environment variable "
            f"{env_var_name(connection, field)}."
        )
    return stored, SecretOrigin.KEYRING


def read_secrets(connection: str, fields: Sequence[str]) -> dict[str, str]:
    return {field: read_secret(connection, field) for field in fields}


def delete_secrets(connection: str, fields: Sequence[str]) -> None:
    """Forget the keys wherever the desk put them (session and keyring). Environment variables
    belong to whoever set them and are left alone. Keys that were never stored are fine."""
    with _session_lock:
        for field in fields:
            _session.pop((connection, field), None)
    for field in fields:
        try:
            _call(_delete_password, KEYRING_SERVICE, _username(connection, field))
        except NoKeyringError:
            return  # nothing can be in a keyring that does not exist


def describe_location(connection: str, field: str) -> str:
    """Where the key that `read_secret` would use lives, in words for the operator."""
    with _session_lock:
        if _session.get((connection, field)):
            return "held for this session only"
    name = env_var_name(connection, field)
    if os.environ.get(name, "").strip():
        return f"environment variable {name}"
    try:
        stored = _call(keyring.get_password, KEYRING_SERVICE, _username(connection, field))
    except NoKeyringError:
        return "not stored (no system keyring)"
    except KeyringLockedError:
        return f"unknown: {backend_name()} is locked"
    except KeyringTimeoutError:
        return f"unknown: {backend_name()} did not answer"
    except SecretsError:
        return f"unknown: {backend_name()} failed"
    return f"stored in {backend_name()}" if stored else "not stored"


def backend_status() -> BackendStatus:
    """Is there a keyring, is it unlocked? Probes with one read (bounded by the timeout)."""
    try:
        backend = _call(keyring.get_keyring)
    except SecretsError as exc:
        return BackendStatus("none", "", exc.message)
    name = backend_name(backend)
    if _is_unusable(backend):
        return BackendStatus("none", "", _no_keyring_message())
    try:
        _call(keyring.get_password, KEYRING_SERVICE, "status-probe")
    except NoKeyringError as exc:
        return BackendStatus("none", "", exc.message)
    except (KeyringLockedError, KeyringTimeoutError) as exc:
        return BackendStatus("locked", name, exc.message)
    except SecretsError as exc:
        return BackendStatus("none", name, exc.message)
    return BackendStatus("ok", name, f"Keys are stored in {name}.")


def backend_name(backend: keyring.backend.KeyringBackend | None = None) -> str:
    """The keyring as the operating system calls it."""
    if backend is None:
        try:
            backend = _call(keyring.get_keyring)
        except SecretsError:
            return "the system keyring"
    module = type(backend).__module__
    if module.endswith(("SecretService", "libsecret")):
        return "Secret Service"
    if module.endswith("Windows"):
        return "Windows Credential Manager"
    if ".macOS" in module or module.endswith("OS_X"):
        return "macOS Keychain"
    if module.endswith("kwallet"):
        return "KWallet"
    if module.endswith("chainer"):
        backends = getattr(backend, "backends", [])
        return backend_name(backends[0]) if backends else "the system keyring"
    return str(getattr(backend, "name", type(backend).__name__))


def clear_session() -> None:
    """Forget every key held for this session."""
    with _session_lock:
        _session.clear()


def session_secrets(connections: Sequence[str]) -> list[tuple[tuple[str, str], str]]:
    """The keys these connections hold for this session only, ((connection, field), key):
    for the desk's own child process (the sender), which cannot read this process's memory."""
    wanted = set(connections)
    with _session_lock:
        return [(key, value) for key, value in _session.items() if key[0] in wanted]


def has_session_secret(connection: str, field: str) -> bool:
    with _session_lock:
        return bool(_session.get((connection, field)))


def _username(connection: str, field: str) -> str:
    return f"{connection}:{field}"


def _label(field: str) -> str:
    return {"MASTER_KEY": "master key", "KEY": "key"}.get(field, field.lower().replace("_", " "))


def _delete_password(service: str, username: str) -> None:
    try:
        keyring.delete_password(service, username)
    except keyring.errors.PasswordDeleteError:
        pass  # not stored: already what we want


def _is_unusable(backend: keyring.backend.KeyringBackend) -> bool:
    module = type(backend).__module__
    return module.endswith((".fail", ".null"))


def _no_keyring_message() -> str:
    return (
        "No system keyring is available on this computer, so keys cannot be saved. Enter the "
        f"keys for this session only, or set the environment variables {ENV_PREFIX}"
        "<CONNECTION>_MASTER_KEY and _KEY."
    )


def _locked_message() -> str:
    return (
        f"The keyring ({backend_name()}) is locked; unlock it (log in to your desktop keyring) "
        "and retry, or enter the keys for this session only."
    )


def _call(function: Callable[..., _T], *args: str, secret: str | None = None) -> _T:
    """Run one keyring call in a daemon thread; typed errors, a timeout, no secret in errors."""
    outcome: list[_T] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            outcome.append(function(*args))
        except BaseException as exc:  # handed to the caller's thread below
            failure.append(exc)

    worker = threading.Thread(target=work, name="keyring-call", daemon=True)
    worker.start()
    worker.join(_timeout_s)
    if worker.is_alive():
        raise KeyringTimeoutError(
            f"The keyring did not answer within {_timeout_s:g} s; it may be waiting for an "
            "unlock prompt. Unlock it and retry, or enter the keys for this session only."
        )
    if failure:
        error = failure.pop()
        translated = _translate(error, secret)
        _release(error)
        raise translated from None
    return outcome[0]


def _release(error: BaseException) -> None:
    """Free the failed call's frames now. keyring's SecretService backend leaks its D-Bus
    connection when the collection is locked (it raises before closing it), inside reference
    cycles: dropping the traceback and collecting closes the socket here and now, instead of
    at some random later moment; its ResourceWarning is that library's, not ours. Failure
    paths only, so the collection's cost (milliseconds) does not matter."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        error.__traceback__ = None
        del error
        gc.collect()


def _translate(exc: BaseException, secret: str | None) -> BaseException:
    """Map keyring/secretstorage exceptions to the desk's typed errors (chains dropped so no
    library message carrying a value can leak through a traceback)."""
    if isinstance(exc, keyring.errors.NoKeyringError):
        return NoKeyringError(_no_keyring_message())
    if isinstance(exc, keyring.errors.KeyringLocked) or _type_named(exc, "LockedException"):
        return KeyringLockedError(_locked_message())
    text = str(exc)
    if secret:
        text = text.replace(secret, "***")
    if isinstance(exc, keyring.errors.InitError):
        if "dismissed" in text.lower():
            return KeyringLockedError(_locked_message())
        return NoKeyringError(f"{_no_keyring_message()} ({text})")
    if _type_named(exc, "SecretServiceNotAvailableException"):
        return NoKeyringError(_no_keyring_message())
    if isinstance(exc, Exception):
        log.warning("keyring call failed: %s", type(exc).__name__)
        return SecretsError(
            f"The keyring ({backend_name()}) failed: {type(exc).__name__}: {text}. "
            "Retry, or enter the keys for this session only."
        )
    return exc  # KeyboardInterrupt, SystemExit: not ours to translate


def _type_named(exc: BaseException, name: str) -> bool:
    return any(cls.__name__ == name for cls in type(exc).__mro__)
