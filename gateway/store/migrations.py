"""Schema migrations for the SQLite store, applied in order; `PRAGMA user_version` says how far."""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[str] = [
    """
    CREATE TABLE bundles (
        id TEXT PRIMARY KEY,
        spec TEXT NOT NULL,
        name TEXT NOT NULL,
        client_id TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE dossiers (
        id TEXT PRIMARY KEY,
        code TEXT NOT NULL UNIQUE,
        procedure_code TEXT NOT NULL,
        procedure_name TEXT NOT NULL,
        receiving_unit TEXT NOT NULL,
        client_id TEXT NOT NULL,
        agency TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        status INTEGER NOT NULL,
        received_at TEXT NOT NULL,
        due_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        finished_at TEXT,
        agency_ref TEXT,
        submission TEXT NOT NULL,
        results TEXT NOT NULL DEFAULT '[]',
        bundle_id TEXT REFERENCES bundles (id),
        bundle_step TEXT,
        step_index INTEGER
    );
    CREATE INDEX dossiers_bundle ON dossiers (bundle_id, step_index);
    CREATE INDEX dossiers_client ON dossiers (client_id, received_at);
    CREATE INDEX dossiers_status ON dossiers (status);
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        dossier_id TEXT NOT NULL REFERENCES dossiers (id),
        status INTEGER NOT NULL,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        note TEXT NOT NULL,
        data TEXT NOT NULL,
        source_event_id TEXT
    );
    CREATE INDEX events_dossier ON events (dossier_id, seq);
    CREATE UNIQUE INDEX events_source ON events (dossier_id, source_event_id) WHERE source_event_id IS NOT NULL;
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        dossier_id TEXT NOT NULL REFERENCES dossiers (id),
        step TEXT NOT NULL,
        agency TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        idempotency_key TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL CHECK (state IN ('waiting', 'pending', 'leased', 'done', 'dead', 'cancelled')),
        inputs TEXT NOT NULL DEFAULT '{}',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at REAL NOT NULL,
        lease_until REAL,
        lease_owner TEXT,
        last_error TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX jobs_ready ON jobs (agency, state, next_at);
    CREATE TABLE idempotency_keys (
        client_id TEXT NOT NULL,
        key TEXT NOT NULL,
        body_hash TEXT NOT NULL,
        dossier_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (client_id, key)
    );
    CREATE TABLE code_sequences (
        unit TEXT NOT NULL,
        day TEXT NOT NULL,
        last INTEGER NOT NULL,
        PRIMARY KEY (unit, day)
    );
    """,
    # Supplement requests of a dossier (what, by when, answered when, how the due date moved), oldest first.
    """
    ALTER TABLE dossiers ADD COLUMN supplements TEXT NOT NULL DEFAULT '[]';
    """,
    # 3. A dossier's latest job (every dossier read, the dispatcher's included) without scanning the outbox.
    """
    CREATE INDEX jobs_dossier ON jobs (dossier_id, id);
    """,
    # 4. The audit log of accesses to dossiers (audit.py): append-only, each record chained to the last.
    # The insert trigger keeps a row from being written anywhere but after the last record: no gap, no
    # fork, and no INSERT OR REPLACE over an old row (whose implicit delete fires no delete trigger).
    """
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        client_id TEXT NOT NULL,
        action TEXT NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('allowed', 'denied')),
        basis TEXT NOT NULL,
        dossier_id TEXT,
        detail TEXT NOT NULL DEFAULT '{}',
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX audit_dossier ON audit (dossier_id, seq) WHERE dossier_id IS NOT NULL;
    CREATE INDEX audit_denied ON audit (seq) WHERE outcome = 'denied';
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN
        SELECT RAISE(ABORT, 'the audit log is append-only');
    END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN
        SELECT RAISE(ABORT, 'the audit log is append-only');
    END;
    CREATE TRIGGER audit_follows_last BEFORE INSERT ON audit
    WHEN NEW.seq IS NOT (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit)
        OR NEW.prev_hash IS NOT COALESCE(
            (SELECT hash FROM audit ORDER BY seq DESC LIMIT 1),
            '0000000000000000000000000000000000000000000000000000000000000000'
        )
    BEGIN
        SELECT RAISE(ABORT, 'an audit record must follow the last one');
    END;
    """,
    # 5. How far a consumer of the status feed has been acknowledged (the portal pusher: "portal-push").
    """
    CREATE TABLE feed_cursors (
        name TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        updated_at TEXT NOT NULL
    );
    """,
    # 6. Small values a connector keeps across restarts (connector_state.py): a polling cursor, a token.
    """
    CREATE TABLE connector_state (
        agency TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (agency, endpoint, key)
    );
    """,
    # 7. Proof of the audit log (seals.py, checkpoints.py): the writer's seal on the last record of each
    # batch, and the signed checkpoints of the log's head (also exported to a folder), append-only.
    """
    ALTER TABLE audit ADD COLUMN sealed_from INTEGER;
    ALTER TABLE audit ADD COLUMN seal TEXT;
    CREATE TABLE audit_checkpoints (
        number INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        seq INTEGER NOT NULL,
        head TEXT NOT NULL,
        body TEXT NOT NULL,
        signature TEXT NOT NULL
    );
    CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
    BEGIN
        SELECT RAISE(ABORT, 'audit checkpoints are append-only');
    END;
    CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
    BEGIN
        SELECT RAISE(ABORT, 'audit checkpoints are append-only');
    END;
    """,
    # 8. Replay keys of signed agency callbacks (replay.py), kept for [callbacks] replay_window seconds;
    # expired leases found without scanning the outbox (outbox.reclaim_expired); the row the readiness
    # probe rewrites (a commit through the writer, like any other write).
    """
    CREATE TABLE replay_keys (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        seen_at REAL NOT NULL,
        PRIMARY KEY (scope, key)
    );
    CREATE INDEX replay_keys_seen ON replay_keys (seen_at);
    CREATE INDEX jobs_leased ON jobs (lease_until) WHERE state = 'leased';
    CREATE TABLE store_probe (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        payload TEXT NOT NULL
    );
    """,
    # 9. The national portal's last refusal of a dossier's record (JSON: at, service, error_code, message,
    # field), for an operator to see on the dossier; NULL once the portal takes the dossier again.
    """
    ALTER TABLE dossiers ADD COLUMN portal_refusal TEXT;
    """,
    # 10. Agency outages. Each job's retry budget: its first transient failure, and the seconds it has
    # waited since past its due time (held by an open breaker, a window, a pause: not spent). Pending jobs
    # by endpoint, for claims that skip an endpoint and for the operators' counts. Operators' pauses
    # (endpoint '' for the whole agency: a key column cannot be NULL everywhere).
    """
    ALTER TABLE jobs ADD COLUMN failing_since REAL;
    ALTER TABLE jobs ADD COLUMN held REAL NOT NULL DEFAULT 0;
    CREATE INDEX jobs_endpoint_pending ON jobs (agency, endpoint, next_at) WHERE state = 'pending';
    CREATE TABLE pauses (
        agency TEXT NOT NULL,
        endpoint TEXT NOT NULL DEFAULT '',
        until_at REAL NOT NULL,
        reason TEXT NOT NULL,
        paused_by TEXT NOT NULL,
        paused_at REAL NOT NULL,
        PRIMARY KEY (agency, endpoint)
    );
    """,
    # 11. Documents: their bytes are in the document store (gateway/documents), named by sha256. Uploads wait
    # there for a dossier to name them until expires_at; each dossier's documents (its submission's, and
    # each supplement's: `part`) keep theirs. A sha256 named by neither is swept from the store. Small
    # documents sent inline are kept in `documents` instead, written in the transaction of the dossier that
    # brings them (so a burst of submissions shares one fsync); larger ones go to the folder.
    """
    CREATE TABLE documents (
        sha256 TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        content BLOB NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE uploads (
        id TEXT PRIMARY KEY,
        client_id TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        media_type TEXT NOT NULL,
        name TEXT,
        created_at TEXT NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE INDEX uploads_expiry ON uploads (expires_at);
    CREATE INDEX uploads_sha256 ON uploads (sha256);
    CREATE TABLE dossier_documents (
        dossier_id TEXT NOT NULL REFERENCES dossiers (id),
        part TEXT NOT NULL,
        position INTEGER NOT NULL,
        component_code TEXT NOT NULL,
        name TEXT NOT NULL,
        media_type TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        origin TEXT NOT NULL CHECK (origin IN ('inline', 'upload', 'url')),
        url TEXT,
        PRIMARY KEY (dossier_id, part, position)
    );
    CREATE INDEX dossier_documents_sha256 ON dossier_documents (sha256);
    """,
]


def migrate(conn: sqlite3.Connection) -> int:
    """Apply pending migrations, each in its own transaction; returns the schema version."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    return len(MIGRATIONS)
