"""Schema migrations, applied in order. Append new ones; never edit one that has shipped.

`PRAGMA user_version` holds how many migrations a database has had.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: connections and the opt-out cache
    """
    CREATE TABLE connections (
        id            INTEGER PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,
        system        TEXT NOT NULL,            -- 'checkmarket', ...
        region        TEXT NOT NULL DEFAULT '', -- 'eu', 'us', 'ca', 'ap' or '' for a custom URL
        base_url      TEXT NOT NULL,
        settings_json TEXT NOT NULL DEFAULT '{}',  -- page size, batch size... never secrets
        created_at    TEXT NOT NULL
    );

    -- One cached list per connection and scope ('' = account-wide, else a survey id).
    CREATE TABLE optouts (
        connection_id INTEGER NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
        scope         TEXT NOT NULL DEFAULT '',
        record_key    TEXT NOT NULL,
        date_opt_out  TEXT NOT NULL,
        email         TEXT NOT NULL DEFAULT '',
        phone         TEXT NOT NULL DEFAULT '',
        first_name    TEXT NOT NULL DEFAULT '',
        last_name     TEXT NOT NULL DEFAULT '',
        lang_code     TEXT NOT NULL DEFAULT '',
        contact_id    INTEGER,
        survey_id     INTEGER,
        source        TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (connection_id, scope, record_key)
    ) WITHOUT ROWID;

    CREATE TABLE sync_state (
        connection_id  INTEGER NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
        scope          TEXT NOT NULL DEFAULT '',
        watermark      TEXT,          -- newest DateOptOut seen, as the platform wrote it
        last_synced_at TEXT,          -- when the last complete fetch finished (UTC ISO-8601)
        PRIMARY KEY (connection_id, scope)
    );
    """,
    # 2: the run history (store/history.py): every fetch, reconcile and submit, as evidence
    """
    CREATE TABLE runs (
        id            INTEGER PRIMARY KEY,
        kind          TEXT NOT NULL,            -- 'fetch' | 'reconcile' | 'submit'
        started_at    TEXT NOT NULL,            -- UTC ISO-8601
        finished_at   TEXT NOT NULL,
        os_user       TEXT NOT NULL,
        connection    TEXT,                     -- the connection's name at the time
        source_file   TEXT,
        source_sha256 TEXT,
        counts_json   TEXT NOT NULL DEFAULT '{}',  -- counts only, never emails or phones
        outcome       TEXT NOT NULL,            -- 'ok' | 'failed' | 'cancelled'
        message       TEXT NOT NULL DEFAULT '',
        receipt_path  TEXT
    );
    CREATE INDEX runs_by_kind ON runs (kind, id);
    """,
]
