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
        generation    INTEGER NOT NULL DEFAULT 0,  -- the full sync that last saw it (sync_state)
        PRIMARY KEY (connection_id, scope, record_key)
    ) WITHOUT ROWID;

    CREATE TABLE sync_state (
        connection_id  INTEGER NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
        scope          TEXT NOT NULL DEFAULT '',
        watermark      TEXT,          -- newest DateOptOut seen (canonical_timestamp form)
        last_synced_at TEXT,          -- when the last complete fetch finished (UTC ISO-8601)
        record_count   INTEGER NOT NULL DEFAULT 0,  -- rows of this scope in optouts (no COUNT(*))
        generation     INTEGER NOT NULL DEFAULT 0,  -- bumped by each full sync; older rows go
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
    # 3: the submission journal (store/journal.py): plans, their batches and every identifier
    """
    CREATE TABLE plans (
        id          INTEGER PRIMARY KEY,
        hash        TEXT NOT NULL,             -- SHA-256 of destination + every batch payload
        connection  TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        status      TEXT NOT NULL,             -- pending|running|completed|failed|discarded
        plan_json   TEXT NOT NULL,             -- destination, batch size, counts, left-out list
        total       INTEGER NOT NULL,          -- identifiers to send
        batch_count INTEGER NOT NULL,
        runner_pid  INTEGER,                   -- the process sending it while status = running
        message     TEXT NOT NULL DEFAULT ''   -- why it stopped (failed) or how it ended
    );
    CREATE INDEX plans_by_status ON plans (status, connection);

    CREATE TABLE batches (
        plan_id     INTEGER NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
        seq         INTEGER NOT NULL,
        payload_json TEXT NOT NULL,            -- the exact POST body
        size        INTEGER NOT NULL,
        state       TEXT NOT NULL DEFAULT 'pending',  -- pending|sent|acknowledged|failed
        http_status INTEGER,
        body_status INTEGER,
        message     TEXT NOT NULL DEFAULT '',  -- the platform's message or the error text
        attempts    INTEGER NOT NULL DEFAULT 0,       -- HTTP attempts, transient retries included
        sent_count  INTEGER NOT NULL DEFAULT 0,       -- how many times the batch was sent
        resent_after_interruption INTEGER NOT NULL DEFAULT 0,
        sent_at     TEXT,
        finished_at TEXT,
        PRIMARY KEY (plan_id, seq)
    ) WITHOUT ROWID;

    CREATE TABLE items (
        plan_id     INTEGER NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
        position    INTEGER NOT NULL,          -- order in the plan's input
        seq         INTEGER,                   -- its batch; NULL when left out
        kind        TEXT NOT NULL,
        value       TEXT NOT NULL,             -- as sent (or the original text when left out)
        key         TEXT,
        original    TEXT NOT NULL,
        source_file TEXT,
        row_number  INTEGER,
        outcome     TEXT,                      -- left-out reason; NULL = the batch's state says
        message     TEXT NOT NULL DEFAULT '',
        confirmed   INTEGER,                   -- NULL unverified, 1 seen on the platform, 0 not yet
        PRIMARY KEY (plan_id, position)
    ) WITHOUT ROWID;
    CREATE INDEX items_by_batch ON items (plan_id, seq);
    """,
    # 4: the connector contract: submissions (one input list fanned out to several plans, one
    # per destination), the look-up answers of connections that answer per identifier, and
    # items found by key (what an earlier plan already delivered).
    """
    CREATE TABLE submissions (
        id            INTEGER PRIMARY KEY,
        created_at    TEXT NOT NULL,
        os_user       TEXT NOT NULL DEFAULT '',
        origin        TEXT NOT NULL DEFAULT '',   -- 'file' | 'reconcile' | 'inbox' | 'pasted'
        source_file   TEXT,
        source_sha256 TEXT,
        input_count   INTEGER NOT NULL DEFAULT 0
    );
    ALTER TABLE plans ADD COLUMN submission_id INTEGER REFERENCES submissions(id);
    CREATE INDEX plans_by_submission ON plans (submission_id);
    CREATE INDEX items_by_key ON items (key);

    -- What a look-up connection answered for one identifier, and when (a cache: reconcile
    -- and the already-on-destination check reuse answers younger than the connection's limit).
    CREATE TABLE lookup_answers (
        connection_id INTEGER NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
        kind          TEXT NOT NULL,
        value         TEXT NOT NULL,          -- as the platform takes it (E.164, lower-case)
        opted_out     INTEGER NOT NULL,
        state         TEXT NOT NULL DEFAULT '',
        changed_at    TEXT,
        checked_at    TEXT NOT NULL,
        PRIMARY KEY (connection_id, kind, value)
    ) WITHOUT ROWID;
    """,
    # 5: the webhook inbox (store/inbox.py): sources, received events, forwarding, settings
    """
    CREATE TABLE inbox_sources (
        id            INTEGER PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,
        system        TEXT NOT NULL,            -- 'checkmarket' | 'lox24'
        token_hash    TEXT NOT NULL UNIQUE,     -- SHA-256 of the URL token (the token: keyring)
        connection    TEXT,                     -- CheckMarket: the connection owning the hook
        webhook_id    INTEGER,                  -- CheckMarket's WebhookId once registered
        survey_id     INTEGER,
        hook_state    TEXT NOT NULL DEFAULT '', -- '' | registered | active | activation-failed
        hook_message  TEXT NOT NULL DEFAULT '',
        created_at    TEXT NOT NULL,
        last_event_at TEXT                      -- last accepted delivery (UTC ISO-8601)
    );

    -- One row per unique event; a repeated delivery only bumps `deliveries` and `seq`.
    CREATE TABLE inbox_events (
        id               INTEGER PRIMARY KEY,
        seq              INTEGER NOT NULL UNIQUE,  -- change cursor of the pull API
        source           TEXT NOT NULL,            -- the source's name when it arrived
        system           TEXT NOT NULL,
        event_id         TEXT NOT NULL,            -- the platform's id (dedupe key per source)
        event            TEXT NOT NULL,            -- the platform's event name
        kind             TEXT NOT NULL,            -- 'optout' | 'resubscribe'
        id_kind          TEXT NOT NULL,            -- 'email' | 'phone'
        identifier       TEXT NOT NULL,            -- normalised email or E.164 phone
        phone            TEXT NOT NULL DEFAULT '', -- a second identifier (a contact with both)
        occurred_at      TEXT NOT NULL,            -- when it happened on the platform
        received_at      TEXT NOT NULL,            -- first delivery
        last_delivery_at TEXT NOT NULL,
        deliveries       INTEGER NOT NULL DEFAULT 1,
        reason_id        INTEGER,
        reason_label     TEXT NOT NULL DEFAULT '',
        free_text        TEXT NOT NULL DEFAULT '',
        campaign         TEXT NOT NULL DEFAULT '',
        user_id          INTEGER,
        group_id         INTEGER,
        short_link       TEXT NOT NULL DEFAULT '',
        details_json     TEXT NOT NULL DEFAULT '{}', -- other ids (request id, contact id...)
        UNIQUE (source, event_id)
    );
    CREATE INDEX inbox_events_by_identifier ON inbox_events (identifier);

    CREATE TABLE inbox_forwards (
        event_row    INTEGER NOT NULL REFERENCES inbox_events(id) ON DELETE CASCADE,
        destination  TEXT NOT NULL,               -- the connection it was submitted to
        plan_id      INTEGER,
        forwarded_at TEXT NOT NULL,
        PRIMARY KEY (event_row, destination)
    ) WITHOUT ROWID;

    -- Entries handed to the Submit page, settled once a plan tagged with the request completes.
    CREATE TABLE inbox_forward_requests (
        id         INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL,
        event_rows TEXT NOT NULL,                 -- JSON list of inbox_events.id
        settled    INTEGER NOT NULL DEFAULT 0
    );

    CREATE TABLE inbox_settings (
        name  TEXT PRIMARY KEY,                   -- public_url, api_token_hash, cursor:<relay>
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    # 6: opt-outs are one per person (issue 9). The record_key scheme of each cached scope:
    # 1 = ContactId + DateOptOut (what every list cached so far uses; it merged different
    # people whose platform gave them ContactId 0 and one timestamp), 2 = person keys. A scope
    # on 1 is re-keyed by its next fetch and fetched in full (store/cache.py).
    """
    ALTER TABLE sync_state ADD COLUMN record_keys INTEGER NOT NULL DEFAULT 1;
    """,
    # 7: no query reads the inbox's identifier index (the desk filters entries in memory), and
    # each delivery paid for it at its COMMIT: one more page at a random place in the WAL, and
    # again at the checkpoint (measured: the receiver's rate 10,470-10,866/s with it,
    # 12,188-12,450/s without; its store's CPU per event 35-38 us, 29 without).
    """
    DROP INDEX IF EXISTS inbox_events_by_identifier;
    """,
]
