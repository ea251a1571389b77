//! The tables of the journal and their version.

/// Bumped whenever the tables change: a file written by another layout is refused rather
/// than misread.
pub(crate) const SCHEMA_VERSION: i64 = 6;

/// Older versions this one opens: their tables are a subset of these (version 5 added
/// `notice_refusals`, version 6 `secrets`, `unsubscribes` and the recipient index of
/// `messages`), so creating the missing ones migrates them.
pub(crate) const READABLE_VERSIONS: [i64; 2] = [4, 5];

/// The first version with the consent tables: a read-only journal older than it has no
/// unsubscribes to read.
pub(crate) const CONSENT_VERSION: i64 = 6;

// The journal is split in two. `deliveries` holds what changes as a delivery is sent (status,
// attempts, results) and stays narrow, because every delivery is rewritten twice (claimed,
// then recorded) and SQLite rewrites whole rows; `messages` holds what was frozen (key,
// recipient, and the address and rendered texts as one JSON value) and is written once. The queue
// index holds queued rows only and the lease index sending rows only, so each delivery passes
// through them once and a settled row sits in neither.
pub(crate) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS mailings (
    id TEXT PRIMARY KEY,
    json TEXT NOT NULL,
    state TEXT NOT NULL,
    version INTEGER NOT NULL,
    checked_at INTEGER,
    paused_until INTEGER,
    reason TEXT
);
CREATE TABLE IF NOT EXISTS occurrences (
    id INTEGER PRIMARY KEY,
    mailing_id TEXT NOT NULL,
    key TEXT NOT NULL UNIQUE,
    fired_at INTEGER NOT NULL,
    evaluation_date TEXT NOT NULL,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    occurrence_id INTEGER NOT NULL,
    channel TEXT,
    group_key TEXT NOT NULL,
    rank INTEGER NOT NULL,
    status TEXT NOT NULL,
    -- 0 when the delivery waits for nothing.
    not_before INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    cost TEXT,
    provider_id TEXT,
    error_class TEXT,
    error TEXT,
    updated_at INTEGER NOT NULL,
    sent_at INTEGER,
    -- While sending: the worker holding the row (a `workers` id: an integer keeps the row as
    -- narrow as it was) and its lease deadline (wall-clock ms).
    worker INTEGER,
    lease_until INTEGER,
    -- A standby row skipped because this delivery's fate is unknown: reopened with it.
    held_by INTEGER
);
CREATE INDEX IF NOT EXISTS deliveries_occurrence ON deliveries (occurrence_id);
CREATE INDEX IF NOT EXISTS deliveries_sending ON deliveries (occurrence_id, lease_until) WHERE status = 'sending';
CREATE INDEX IF NOT EXISTS deliveries_queue ON deliveries (occurrence_id, not_before, id) WHERE status = 'queued';
-- Only standby rows are ever looked up by group (priority fallback), so only they are indexed.
CREATE INDEX IF NOT EXISTS deliveries_standby ON deliveries (occurrence_id, group_key, rank) WHERE status = 'standby';
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    delivery_key TEXT NOT NULL,
    recipient_id TEXT NOT NULL,
    -- A JSON object: address, booking_id, units, subject, text, html, image (absent when
    -- empty). One value keeps writing and claiming a delivery cheap; json_extract reads it.
    message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS workers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS unreachable (
    recipient_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (recipient_id, channel)
);
CREATE TABLE IF NOT EXISTS accruals (
    occurrence_id INTEGER NOT NULL,
    recipient_id TEXT NOT NULL,
    PRIMARY KEY (occurrence_id, recipient_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notice_refusals (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    event TEXT NOT NULL,
    recipient_id TEXT NOT NULL,
    user TEXT NOT NULL,
    role TEXT NOT NULL,
    department TEXT,
    reason TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS notice_refusals_at ON notice_refusals (at);
CREATE TABLE IF NOT EXISTS secrets (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
-- One row per recipient unsubscribed now: a resubscribe deletes it.
CREATE TABLE IF NOT EXISTS unsubscribes (
    recipient_id TEXT PRIMARY KEY,
    mailing_id TEXT NOT NULL,
    channel TEXT,
    at INTEGER NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS unsubscribes_at ON unsubscribes (at);
-- Frequency caps count a recipient's earlier occurrences; unsubscribe pages find its address.
CREATE INDEX IF NOT EXISTS messages_recipient ON messages (recipient_id);
"#;
