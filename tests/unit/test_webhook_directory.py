"""Which source a hook token belongs to: found by its hash, compared in constant time, and
re-read from a real database at most once a second (a source added or removed elsewhere is
seen without a restart)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from optout_desk.store import inbox
from optout_desk.store.db import connect
from optout_desk.webhooks import directory as directory_module
from optout_desk.webhooks.directory import SourceDirectory


def test_tokens_find_their_own_source_and_nothing_else(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "desk.sqlite3"
    conn = connect(path)
    inbox.add_source(conn, "lox", "lox24", inbox.hash_token("token-lox"))
    inbox.add_source(conn, "cm", "checkmarket", inbox.hash_token("token-cm"))
    compared: list[tuple[str, str]] = []
    real = directory_module.hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(directory_module.hmac, "compare_digest", spy)
    found = SourceDirectory(path)
    try:
        assert found.lookup("token-lox").name == "lox"  # type: ignore[union-attr]
        assert found.lookup("token-cm").name == "cm"  # type: ignore[union-attr]
        assert found.lookup("token-lo") is None
        assert found.lookup("") is None
        # Every look-up, hit or miss, ends in one constant-time comparison of two hashes.
        assert len(compared) == 4 and all(len(a) == len(b) == 64 for a, b in compared)

        inbox.add_source(conn, "late", "lox24", inbox.hash_token("token-late"))
        inbox.remove_source(conn, "cm")
        assert found.lookup("token-late") is None  # not re-read within the second
        time.sleep(directory_module.DIRECTORY_TTL_S + 0.1)
        assert found.lookup("token-late").name == "late"  # type: ignore[union-attr]
        assert found.lookup("token-cm") is None
    finally:
        found.close()
        conn.close()
