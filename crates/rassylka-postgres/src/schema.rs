//! The tables of the journal, their version, and the migration that creates them.

use rassylka_store::StoreError;
use sqlx::PgConnection;

use crate::db;

/// Bumped whenever the tables change; a journal of a newer version is refused.
pub(crate) const SCHEMA_VERSION: i32 = 5;

/// Times are milliseconds since the epoch (`BIGINT`), as the dispatcher's clock gives them;
/// lease deadlines alone come from the server's clock ([`NOW_MS`]).
const SCHEMA: &str = r#"
CREATE TABLE mailings (
    id TEXT PRIMARY KEY,
    json TEXT NOT NULL,
    state TEXT NOT NULL,
    version INTEGER NOT NULL,
    checked_at BIGINT,
    paused_until BIGINT,
    reason TEXT
);
CREATE TABLE occurrences (
    id BIGSERIAL PRIMARY KEY,
    mailing_id TEXT NOT NULL,
    key TEXT NOT NULL UNIQUE,
    fired_at BIGINT NOT NULL,
    evaluation_date TEXT NOT NULL,
    state TEXT NOT NULL
);
CREATE INDEX occurrences_mailing ON occurrences (mailing_id);
-- A delivery is two rows with one id. `deliveries` holds what changes as it is sent and stays
-- narrow, because PostgreSQL writes a whole new row version for every update and each delivery
-- is updated twice (claimed, then recorded); `messages` holds what was frozen and is written
-- once.
CREATE TABLE deliveries (
    id BIGINT PRIMARY KEY,
    occurrence_id BIGINT NOT NULL,
    channel TEXT,
    group_key TEXT NOT NULL,
    rank INTEGER NOT NULL,
    status TEXT NOT NULL,
    not_before BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    cost TEXT,
    provider_id TEXT,
    error_class TEXT,
    error TEXT,
    updated_at BIGINT NOT NULL,
    sent_at BIGINT,
    worker TEXT,
    lease_until BIGINT,
    held_by BIGINT
);
CREATE SEQUENCE delivery_ids;
CREATE TABLE messages (
    id BIGINT PRIMARY KEY,
    delivery_key TEXT NOT NULL,
    recipient_id TEXT NOT NULL,
    address TEXT,
    booking_id TEXT,
    units INTEGER NOT NULL,
    subject TEXT,
    text TEXT,
    html TEXT,
    image TEXT
);
-- Each update of a delivery writes a new row version and, since its status (in the partial
-- indexes' conditions) changes, an entry in every B-tree index: occurrences are found through a
-- BRIN index instead (ids of one occurrence are one range), which costs next to nothing to keep.
CREATE INDEX deliveries_occurrence ON deliveries USING brin (occurrence_id);
CREATE INDEX deliveries_queue ON deliveries (occurrence_id, not_before, id) WHERE status = 'queued';
CREATE INDEX deliveries_sending ON deliveries (occurrence_id, lease_until) WHERE status = 'sending';
CREATE INDEX deliveries_standby ON deliveries (occurrence_id, group_key, rank) WHERE status = 'standby';
CREATE TABLE unreachable (
    recipient_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (recipient_id, channel)
);
CREATE TABLE accruals (
    occurrence_id BIGINT NOT NULL,
    recipient_id TEXT NOT NULL,
    PRIMARY KEY (occurrence_id, recipient_id)
);
"#;

/// What each version added, applied in turn to a journal of an older version.
const MIGRATIONS: [(i32, &str); 4] = [
    (
        2,
        r#"
CREATE TABLE notice_refusals (
    id BIGSERIAL PRIMARY KEY,
    event_id TEXT NOT NULL,
    event TEXT NOT NULL,
    recipient_id TEXT NOT NULL,
    "user" TEXT NOT NULL,
    role TEXT NOT NULL,
    department TEXT,
    reason TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX notice_refusals_at ON notice_refusals (at);
"#,
    ),
    (
        3,
        r#"
CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
-- One row per recipient unsubscribed now: a resubscribe deletes it.
CREATE TABLE unsubscribes (
    recipient_id TEXT PRIMARY KEY,
    mailing_id TEXT NOT NULL,
    channel TEXT,
    at BIGINT NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX unsubscribes_at ON unsubscribes (at);
-- Frequency caps count a recipient's earlier occurrences; unsubscribe pages find its address.
CREATE INDEX messages_recipient ON messages (recipient_id);
"#,
    ),
    (
        4,
        r#"
-- Claims by batch. A delivery frozen due at once is stored `fresh`, and a claim takes the
-- occurrence's next fresh rows in id order by writing one `claim_batches` row for them and
-- moving the occurrence's `claimed_to` past them: the rows themselves are not written until
-- their results are, which halves what PostgreSQL writes per delivery. A fresh row at or
-- below `claimed_to` is `sending` under the batch whose range holds it, above it `queued`.
-- Rows queued any other way (a later send window, a retry, a fallback) are claimed one by
-- one as before.
ALTER TABLE occurrences ADD COLUMN claimed_to BIGINT NOT NULL DEFAULT 0;
CREATE TABLE claim_batches (
    id BIGSERIAL PRIMARY KEY,
    occurrence_id BIGINT NOT NULL,
    first_id BIGINT NOT NULL,
    last_id BIGINT NOT NULL,
    worker TEXT NOT NULL,
    lease_until BIGINT NOT NULL,
    claimed_at BIGINT NOT NULL
);
CREATE INDEX claim_batches_range ON claim_batches (occurrence_id, last_id);
CREATE INDEX deliveries_fresh ON deliveries (occurrence_id, id) WHERE status = 'fresh';
-- Deliveries as the contract sees them: a fresh row reads as queued or as sending under its
-- batch, every other row as stored.
CREATE VIEW delivery_rows AS
SELECT d.id, d.occurrence_id, d.channel, d.group_key, d.rank,
    CASE WHEN d.status <> 'fresh' THEN d.status WHEN d.id <= o.claimed_to THEN 'sending' ELSE 'queued' END AS status,
    d.not_before,
    CASE WHEN d.status = 'fresh' AND d.id <= o.claimed_to THEN d.attempts + 1 ELSE d.attempts END AS attempts,
    d.cost, d.provider_id, d.error_class, d.error,
    CASE WHEN d.status = 'fresh' AND d.id <= o.claimed_to THEN (
        SELECT b.claimed_at FROM claim_batches b WHERE b.occurrence_id = d.occurrence_id AND b.last_id >= d.id
        ORDER BY b.last_id LIMIT 1) ELSE d.updated_at END AS updated_at,
    d.sent_at,
    CASE WHEN d.status = 'fresh' AND d.id <= o.claimed_to THEN (
        SELECT b.worker FROM claim_batches b WHERE b.occurrence_id = d.occurrence_id AND b.last_id >= d.id
        ORDER BY b.last_id LIMIT 1) ELSE d.worker END AS worker,
    CASE WHEN d.status = 'fresh' AND d.id <= o.claimed_to THEN (
        SELECT b.lease_until FROM claim_batches b WHERE b.occurrence_id = d.occurrence_id AND b.last_id >= d.id
        ORDER BY b.last_id LIMIT 1) ELSE d.lease_until END AS lease_until,
    d.held_by
FROM deliveries d JOIN occurrences o ON o.id = d.occurrence_id;
"#,
    ),
    (
        5,
        r#"
-- A result writes a fresh row in place. PostgreSQL can keep a new row version on its page
-- without touching any index (a heap-only update) when no indexed column changes and the page
-- has room: the queue's indexes now name their rows by `lane`, which is NULL for a fresh row
-- and for a row with its result alike, and pages are filled half, leaving room for the
-- result's version of each row. Fresh rows are claimed by id from the occurrence's first
-- unclaimed one (`claimed_to`) to its last (`fresh_to`), through the primary key.
ALTER TABLE deliveries SET (fillfactor = 50);
ALTER TABLE deliveries ADD COLUMN lane TEXT GENERATED ALWAYS AS (
    CASE WHEN status IN ('queued', 'sending', 'standby') THEN status END) STORED;
DROP INDEX deliveries_queue;
DROP INDEX deliveries_sending;
DROP INDEX deliveries_standby;
CREATE INDEX deliveries_queue ON deliveries (occurrence_id, not_before, id) WHERE lane = 'queued';
CREATE INDEX deliveries_sending ON deliveries (occurrence_id, lease_until) WHERE lane = 'sending';
CREATE INDEX deliveries_standby ON deliveries (occurrence_id, group_key, rank) WHERE lane = 'standby';
ALTER TABLE occurrences ADD COLUMN fresh_to BIGINT NOT NULL DEFAULT 0;
UPDATE occurrences o SET fresh_to = f.last, claimed_to = GREATEST(o.claimed_to, f.next - 1)
FROM (SELECT d.occurrence_id, max(d.id) AS last, min(d.id) FILTER (WHERE d.id > c.claimed_to) AS next
      FROM deliveries d JOIN occurrences c ON c.id = d.occurrence_id
      WHERE d.status = 'fresh' GROUP BY d.occurrence_id) f
WHERE f.occurrence_id = o.id;
DROP INDEX deliveries_fresh;
"#,
    ),
];

/// The server's wall clock in milliseconds: every worker, on every machine, reads the same.
pub(crate) const NOW_MS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

/// Takes the transaction-long advisory lock that serialises workers setting up the journal.
pub(crate) async fn lock(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(7265720)")
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

/// Creates the tables on an empty database, migrates an older version, accepts its own, and
/// refuses a newer one; under [`lock`].
pub(crate) async fn migrate(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS rassylka_schema (version INTEGER NOT NULL)")
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    let version: Option<i32> = sqlx::query_scalar("SELECT max(version) FROM rassylka_schema")
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    let from = match version {
        Some(SCHEMA_VERSION) => return Ok(()),
        Some(older) if (1..SCHEMA_VERSION).contains(&older) => older,
        Some(other) => {
            return Err(StoreError::invalid(format!(
                "the journal has schema version {other}, this version of rassylka reads {SCHEMA_VERSION}"
            )));
        }
        None => {
            sqlx::raw_sql(SCHEMA)
                .execute(&mut *conn)
                .await
                .map_err(db)?;
            1
        }
    };
    for (version, step) in MIGRATIONS {
        if version > from {
            sqlx::raw_sql(step).execute(&mut *conn).await.map_err(db)?;
        }
    }
    sqlx::query("INSERT INTO rassylka_schema (version) VALUES ($1)")
        .bind(SCHEMA_VERSION)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}
