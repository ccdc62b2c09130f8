"""Schema migrations of the store, applied in order: one list for both databases (PostgreSQL's DDL is
translated from it by dialect.py). SQLite's `PRAGMA user_version` says how far, PostgreSQL's table
schema_version; a store whose schema is newer than this list is refused (SchemaTooNew), never written."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from gateway.errors import LienthongError

if TYPE_CHECKING:
    from gateway.store.dialect import PgConnection


class SchemaTooNew(LienthongError):
    """The store was written by a newer Lienthong: opening it with this one could corrupt it."""

    def __init__(self, where: str, version: int) -> None:
        super().__init__(
            f"the store {where} has schema version {version}, newer than this Lienthong knows "
            f"({len(MIGRATIONS)}): run the Lienthong release that wrote it, or a newer one"
        )
        self.version = version


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
    # 12. Appointments with an agency's officer for referred dossiers (appointments.py): one per centre and
    # Idempotency-Key; their events (booked, moved, cancelled, reminder), read by the centres in order.
    """
    CREATE TABLE appointments (
        id TEXT PRIMARY KEY,
        client_id TEXT NOT NULL,
        idem_key TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        dossier_id TEXT NOT NULL REFERENCES dossiers (id),
        agency TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('booking', 'booked', 'cancelled')),
        mode TEXT NOT NULL,
        slot TEXT,
        agency_ref TEXT,
        meeting_url TEXT,
        remind_at REAL,
        reminded INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (client_id, idem_key)
    );
    CREATE INDEX appointments_client ON appointments (client_id, created_at);
    CREATE INDEX appointments_dossier ON appointments (dossier_id);
    CREATE INDEX appointments_reminders ON appointments (state, reminded, remind_at);
    CREATE TABLE appointment_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        appointment_id TEXT NOT NULL REFERENCES appointments (id),
        client_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        at TEXT NOT NULL,
        data TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX appointment_events_client ON appointment_events (client_id, seq);
    """,
    # 13. Online payments through the national payment platform (payments.py): one per centre and
    # Idempotency-Key; the platform's transaction, and its receipt kept once paid.
    """
    CREATE TABLE payments (
        id TEXT PRIMARY KEY,
        client_id TEXT NOT NULL,
        idem_key TEXT NOT NULL,
        dossier_id TEXT NOT NULL REFERENCES dossiers (id),
        agency TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('created', 'pending', 'paid', 'failed')),
        amount_vnd INTEGER NOT NULL,
        bills TEXT NOT NULL,
        pay_url TEXT,
        qr_data TEXT,
        transaction_id TEXT,
        paid_at TEXT,
        bank_ref TEXT,
        receipt_number TEXT,
        receipt_media_type TEXT,
        receipt_sha256 TEXT,
        receipt BLOB,
        created_at TEXT NOT NULL,
        created_epoch REAL NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (client_id, idem_key)
    );
    CREATE INDEX payments_open ON payments (state, created_epoch);
    CREATE INDEX payments_dossier ON payments (dossier_id);
    """,
    # 14. Centre performance (kpis.py): counters per dimension (centre, agency, procedure, province) and local
    # day, and how many finished that day in how many working days; the dossiers still open, with their
    # dimensions and due date. Written in the transactions that receive dossiers and append their events.
    """
    CREATE TABLE kpi_daily (
        dim TEXT NOT NULL,
        item TEXT NOT NULL,
        day TEXT NOT NULL,
        received INTEGER NOT NULL DEFAULT 0,
        finished INTEGER NOT NULL DEFAULT 0,
        on_time INTEGER NOT NULL DEFAULT 0,
        late INTEGER NOT NULL DEFAULT 0,
        days_sum INTEGER NOT NULL DEFAULT 0,
        supplements INTEGER NOT NULL DEFAULT 0,
        returned INTEGER NOT NULL DEFAULT 0,
        returned_elsewhere INTEGER NOT NULL DEFAULT 0,
        with_fees INTEGER NOT NULL DEFAULT 0,
        paid_online INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (dim, day, item)
    );
    CREATE TABLE kpi_days (
        dim TEXT NOT NULL,
        item TEXT NOT NULL,
        day TEXT NOT NULL,
        working_days INTEGER NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (dim, day, item, working_days)
    );
    CREATE TABLE kpi_open (
        dossier_id TEXT PRIMARY KEY,
        centre TEXT NOT NULL,
        agency TEXT NOT NULL,
        procedure TEXT NOT NULL,
        province TEXT NOT NULL,
        due_at TEXT NOT NULL
    );
    """,
    # 15. Every delivery attempt (attempts.py), written in the transaction that records the job's outcome:
    # when, where, how long, what came of it, the agency's reference, and (optionally, masked, for a
    # retention period) what was sent and answered.
    """
    CREATE TABLE attempts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id INTEGER NOT NULL,
        dossier_id TEXT NOT NULL,
        agency TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        step TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        started_at REAL NOT NULL,
        duration_ms REAL NOT NULL,
        outcome TEXT NOT NULL,
        error TEXT,
        agency_ref TEXT,
        request_body TEXT,
        response_body TEXT
    );
    CREATE INDEX attempts_dossier ON attempts (dossier_id, id);
    CREATE INDEX attempts_job ON attempts (job_id, id);
    CREATE INDEX attempts_agency ON attempts (agency, started_at);
    CREATE INDEX attempts_started ON attempts (started_at);
    """,
]


def migrate(conn: sqlite3.Connection) -> int:
    """Apply pending migrations, each in its own transaction; returns the schema version."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise SchemaTooNew("file", version)
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    return len(MIGRATIONS)


# Held while one process migrates, so that processes starting together apply each migration once.
_MIGRATION_LOCK = 0x4C54_0002


def migrate_postgres(conn: PgConnection) -> int:
    """Apply pending migrations to a PostgreSQL database, each in its own transaction."""
    from gateway.store.dialect import EXTRAS, ddl

    raw = conn.raw
    raw.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
    try:
        raw.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        row = raw.execute("SELECT version FROM schema_version").fetchone()
        version = int(row[0]) if row is not None else 0
        if version > len(MIGRATIONS):
            raise SchemaTooNew("database", version)
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with raw.transaction():
                raw.execute(ddl(script) + "\n" + EXTRAS.get(number, ""))
                raw.execute("DELETE FROM schema_version")
                raw.execute("INSERT INTO schema_version (version) VALUES (%s)", (number,))
    finally:
        raw.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
    return len(MIGRATIONS)
