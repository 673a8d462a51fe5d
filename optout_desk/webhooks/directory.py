"""Which source a hook URL's token belongs to, and the pull API's token: read from the database
at most once a second (so `inbox add` or `inbox api-token` in another process works without a
restart), looked up per request without touching it.

Only hashes are kept. A presented token is hashed, the hash finds its candidate in a dict, and
the candidate's stored hash is compared with it in constant time (hmac.compare_digest). The
dict's probing depends only on the SHA-256 of what was presented, which tells a prober nothing
about any stored token (it would take a preimage); the constant-time comparison is kept as the
final word all the same. A miss is compared against a dummy hash of the same length, so a hit
and a miss do the same work.
"""

from __future__ import annotations

import hmac
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from optout_desk.store import inbox
from optout_desk.store.db import connect

DIRECTORY_TTL_S = 1.0
_NO_HASH = "0" * 64  # what a miss is compared against


@dataclass
class ReceiverStats:
    stored: int = 0
    duplicates: int = 0
    refused: int = 0


class SourceDirectory:
    """The sources and the API token hash. Used on the event loop's thread only."""

    def __init__(self, db_path: Path | None) -> None:
        self._db_path = db_path
        self._conn: sqlite3.Connection | None = None
        self._by_hash: dict[str, inbox.Source] = {}
        self._api_hash: str | None = None
        self._read_at = -1e9

    def _refresh(self) -> None:
        if time.monotonic() - self._read_at < DIRECTORY_TTL_S:
            return
        if self._conn is None:
            self._conn = connect(self._db_path)
        self._by_hash = {source.token_hash: source for source in inbox.list_sources(self._conn)}
        self._api_hash = inbox.get_setting(self._conn, inbox.API_TOKEN_HASH)
        self._read_at = time.monotonic()

    def lookup(self, token: str) -> inbox.Source | None:
        self._refresh()
        presented = inbox.hash_token(token)
        source = self._by_hash.get(presented)
        expected = source.token_hash if source is not None else _NO_HASH
        if not hmac.compare_digest(expected, presented) or source is None:
            return None
        return source

    def api_token_ok(self, token: str) -> bool:
        self._refresh()
        expected = self._api_hash or ""
        return bool(expected) and hmac.compare_digest(expected, inbox.hash_token(token))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
