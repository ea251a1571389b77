use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use rassylka_model::ChannelKind;
use rust_decimal::Decimal;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};

use super::{
    Delivery, DeliveryResult, DeliveryStatus, Freeze, MailingRecord, MailingState, NewDelivery,
    NewOccurrence, OccurrenceRecord, OccurrenceStart, OccurrenceState, StatusCounts, Store,
};
use crate::DispatchError;

/// Bumped whenever the tables change: a file written by another layout is refused rather
/// than misread.
const SCHEMA_VERSION: i64 = 3;

// The journal is split in two. `deliveries` holds what changes as a delivery is sent (status,
// attempts, results) and stays narrow, because every delivery is rewritten twice (claimed,
// then recorded) and SQLite rewrites whole rows; `messages` holds what was frozen (key,
// recipient, and the address and rendered texts as one JSON value) and is written once. The queue index holds queued rows
// only, so sending and recording a delivery touch no index at all.
const SCHEMA: &str = r#"
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
    sent_at INTEGER
);
CREATE INDEX IF NOT EXISTS deliveries_occurrence ON deliveries (occurrence_id);
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
"#;

/// The embedded journal: one SQLite file in WAL mode, or an in-memory database.
///
/// Several processes may open the same file: SQLite serialises writers (with a busy
/// timeout), a claim reads and marks its rows in one write transaction, occurrence keys are
/// unique and an audience is frozen once, in one transaction, so no delivery is claimed
/// twice. Recovery, though, takes every `sending` row of an occurrence
/// for one left by a dead process: while two dispatchers send the same occurrence, one
/// starting up can mark the other's in-flight rows «unknown» (the other's result still
/// overwrites it). Run one dispatcher per journal file; several workers need leases, which is
/// what a PostgreSQL store is for.
///
/// An audience is frozen in one transaction, so the write lock is held while the source is
/// read, about 3 s per million recipients here: other writers of the process (another
/// mailing's send loop, a pause) wait for it, and other processes wait up to the 30 s busy
/// timeout.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Writers of this process take turns here: SQLite would make them poll its lock,
    /// sleeping up to tens of milliseconds each time they collide.
    writing: Arc<tokio::sync::Mutex<()>>,
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`.
    ///
    /// # Errors
    /// [`DispatchError::Store`] when the file cannot be opened or the schema created.
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore, DispatchError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL with NORMAL is durable against process crashes (kill -9), which is the
            // failure the journal must survive; FULL would add an fsync per commit.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            // 16 MB of page cache per connection keeps the queue index and recent rows in
            // memory without letting memory grow with the journal.
            .pragma("cache_size", "-16384")
            .page_size(8192)
            // Fewer, larger checkpoints while a big audience is written.
            .pragma("wal_autocheckpoint", "8192");
        SqliteStore::connect(options, 4).await
    }

    /// A private in-memory database (for tests and previews).
    ///
    /// # Errors
    /// [`DispatchError::Store`] when SQLite cannot start.
    pub async fn in_memory() -> Result<SqliteStore, DispatchError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?;
        // One connection: every connection to `:memory:` is a different database.
        SqliteStore::connect(options, 1).await
    }

    async fn connect(
        options: SqliteConnectOptions,
        connections: u32,
    ) -> Result<SqliteStore, DispatchError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(connections)
            .connect_with(options)
            .await?;
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *tx)
            .await?;
        let tables: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'deliveries'",
        )
        .fetch_one(&mut *tx)
        .await?;
        if version != SCHEMA_VERSION && (version != 0 || tables != 0) {
            return Err(DispatchError::store(format!(
                "the journal has schema version {version}, this version of rassylka reads {SCHEMA_VERSION}"
            )));
        }
        sqlx::raw_sql(SCHEMA).execute(&mut *tx).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "PRAGMA user_version = {SCHEMA_VERSION}"
        )))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(SqliteStore {
            pool,
            writing: Arc::default(),
        })
    }
}

fn mailing_from_row(row: &SqliteRow) -> Result<MailingRecord, DispatchError> {
    Ok(MailingRecord {
        id: row.try_get("id")?,
        json: row.try_get("json")?,
        state: MailingState::from_str(row.try_get("state")?)?,
        version: u32::try_from(row.try_get::<i64, _>("version")?).unwrap_or(1),
        checked_at: row
            .try_get::<Option<i64>, _>("checked_at")?
            .map(from_millis),
        paused_until: row
            .try_get::<Option<i64>, _>("paused_until")?
            .map(from_millis),
        reason: row.try_get("reason")?,
    })
}

fn occurrence_from_row(row: &SqliteRow) -> Result<OccurrenceRecord, DispatchError> {
    let date: String = row.try_get("evaluation_date")?;
    Ok(OccurrenceRecord {
        id: row.try_get("id")?,
        mailing_id: row.try_get("mailing_id")?,
        key: row.try_get("key")?,
        fired_at: from_millis(row.try_get("fired_at")?),
        evaluation_date: NaiveDate::from_str(&date).map_err(DispatchError::store)?,
        state: OccurrenceState::from_str(row.try_get("state")?)?,
    })
}

fn channel_from(text: Option<String>) -> Result<Option<ChannelKind>, DispatchError> {
    text.map(|t| ChannelKind::from_str(&t).map_err(DispatchError::store))
        .transpose()
}

/// Every column of a journal row, both tables joined (`d` deliveries, `m` messages).
const DELIVERY_COLUMNS: &str = "d.id, d.occurrence_id, d.channel, d.group_key, d.rank, d.status, d.not_before, d.attempts,
     d.cost, d.provider_id, d.error_class, d.error, d.updated_at, d.sent_at, m.delivery_key, m.recipient_id, m.message";

/// A value as JSON text for SQLite's JSON functions.
fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, DispatchError> {
    serde_json::to_string(value).map_err(DispatchError::store)
}

/// JSON text that SQLite put together.
fn from_json<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, DispatchError> {
    serde_json::from_str(json).map_err(DispatchError::store)
}

/// The `message` column as written.
#[derive(serde::Serialize)]
struct MessageRef<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    booking_id: Option<&'a str>,
    units: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    html: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
}

impl<'a> MessageRef<'a> {
    fn of(d: &'a NewDelivery) -> Self {
        MessageRef {
            address: d.address.as_deref(),
            booking_id: d.booking_id.as_deref(),
            units: d.units,
            subject: d.subject.as_deref(),
            text: d.text.as_deref(),
            html: d.html.as_deref(),
            image: d.image.as_deref(),
        }
    }
}

/// The `message` column as read.
#[derive(serde::Deserialize)]
struct MessageColumn {
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    booking_id: Option<String>,
    #[serde(default)]
    units: u32,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    html: Option<String>,
    #[serde(default)]
    image: Option<String>,
}

impl MessageColumn {
    /// The planned delivery this message is of, with what its `deliveries` row says; the
    /// wait, cost and error are left empty.
    fn planned(
        self,
        delivery_key: String,
        recipient_id: String,
        channel: Option<String>,
        group_key: String,
        rank: i64,
        status: DeliveryStatus,
    ) -> Result<NewDelivery, DispatchError> {
        Ok(NewDelivery {
            delivery_key,
            recipient_id,
            channel: channel_from(channel)?,
            address: self.address,
            booking_id: self.booking_id,
            group_key,
            rank: u32::try_from(rank).unwrap_or_default(),
            status,
            not_before: None,
            subject: self.subject,
            text: self.text,
            html: self.html,
            image: self.image,
            units: self.units,
            cost: None,
            error: None,
        })
    }
}

/// A whole journal row, read with [`DELIVERY_COLUMNS`].
fn delivery_from_row(row: &SqliteRow) -> Result<Delivery, DispatchError> {
    let cost: Option<String> = row.try_get("cost")?;
    let not_before: i64 = row.try_get("not_before")?;
    let message: MessageColumn = from_json(row.try_get("message")?)?;
    Ok(Delivery {
        id: row.try_get("id")?,
        occurrence_id: row.try_get("occurrence_id")?,
        planned: NewDelivery {
            not_before: (not_before != 0).then(|| from_millis(not_before)),
            cost: cost.and_then(|c| Decimal::from_str(&c).ok()),
            error: row.try_get("error")?,
            ..message.planned(
                row.try_get("delivery_key")?,
                row.try_get("recipient_id")?,
                row.try_get("channel")?,
                row.try_get("group_key")?,
                row.try_get("rank")?,
                DeliveryStatus::from_str(row.try_get("status")?)?,
            )?
        },
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or_default(),
        provider_id: row.try_get("provider_id")?,
        error_class: row.try_get("error_class")?,
        updated_at: from_millis(row.try_get("updated_at")?),
        sent_at: row.try_get::<Option<i64>, _>("sent_at")?.map(from_millis),
    })
}

/// Why a standby delivery was closed by recovery; `requeue_unknown` reopens exactly these.
const BEHIND_UNKNOWN: &str = "not sent: the delivery through a higher-priority channel is unknown";

/// Rows per INSERT: the wider table binds 10 parameters a row, well under SQLite's 32 766.
const INSERT_CHUNK: usize = 1000;

/// An occurrence's audience being written: one transaction holding the write lock.
struct SqliteFreeze {
    tx: sqlx::Transaction<'static, Sqlite>,
    _writing: tokio::sync::OwnedMutexGuard<()>,
    occurrence_id: i64,
    first_id: i64,
    next_id: i64,
    now: i64,
}

#[async_trait]
impl Freeze for SqliteFreeze {
    async fn write(&mut self, deliveries: Vec<NewDelivery>) -> Result<(), DispatchError> {
        let (occurrence_id, now, first_id) = (self.occurrence_id, self.now, self.next_id);
        self.next_id += i64::try_from(deliveries.len()).unwrap_or(i64::MAX);
        // The statements are built on another thread, a chunk or two ahead of SQLite running
        // them, so that SQLite does not wait for them.
        let (built, mut chunks) = tokio::sync::mpsc::channel(2);
        let builder = tokio::task::spawn_blocking(move || {
            let mut rest = deliveries.into_iter();
            let mut first = first_id;
            loop {
                let chunk: Vec<NewDelivery> = rest.by_ref().take(INSERT_CHUNK).collect();
                if chunk.is_empty() {
                    return;
                }
                let next = first + i64::try_from(chunk.len()).unwrap_or(i64::MAX);
                // A closed channel means the writer failed and gave up.
                if built
                    .blocking_send(InsertChunk::build(occurrence_id, first, chunk, now))
                    .is_err()
                {
                    return;
                }
                first = next;
            }
        });
        while let Some(chunk) = chunks.recv().await {
            let mut chunk = chunk?;
            chunk.messages.build().execute(&mut *self.tx).await?;
            chunk.deliveries.build().execute(&mut *self.tx).await?;
        }
        builder.await.map_err(DispatchError::store)
    }

    async fn commit(mut self: Box<Self>, keys_unique: bool) -> Result<u64, DispatchError> {
        let duplicates = if keys_unique {
            0
        } else {
            self.skip_repeated_keys().await?
        };
        sqlx::query("UPDATE occurrences SET state = 'frozen' WHERE id = ?")
            .bind(self.occurrence_id)
            .execute(&mut *self.tx)
            .await?;
        self.tx.commit().await?;
        Ok(duplicates)
    }
}

impl SqliteFreeze {
    /// Journals as skipped every delivery whose key was written before in this freeze; returns
    /// how many. Keys are checked once, by sorting this occurrence's on what follows the
    /// occurrence key they all share: a unique index would be updated at random places for
    /// every delivery when recipient ids do not come in order, which costs far more.
    async fn skip_repeated_keys(&mut self) -> Result<u64, DispatchError> {
        let occurrence_key: String = sqlx::query_scalar("SELECT key FROM occurrences WHERE id = ?")
            .bind(self.occurrence_id)
            .fetch_one(&mut *self.tx)
            .await?;
        // One statement: the repeated ids never leave SQLite, whose sort spills to disk. A
        // later entry is dropped by key, and, for a priority group (whose every entry starts
        // at rank 0), whole: its other channels must not stand in for the first entry's.
        Ok(sqlx::query(
            "UPDATE deliveries SET status = 'skipped', error = ?4, updated_at = ?5 WHERE id IN (
                 SELECT id FROM (
                     SELECT id, row_number() OVER (PARTITION BY substr(delivery_key, length(?3) + 1) ORDER BY id) AS nth
                     FROM messages WHERE id BETWEEN ?1 AND ?2)
                 WHERE nth > 1)
             OR id IN (
                 SELECT id FROM (
                     SELECT id, sum(rank = 0) OVER (PARTITION BY group_key ORDER BY id) AS entry
                     FROM deliveries WHERE id BETWEEN ?1 AND ?2)
                 WHERE entry > 1)",
        )
        .bind(self.first_id)
        .bind(self.next_id - 1)
        .bind(occurrence_key)
        .bind(LISTED_AGAIN)
        .bind(self.now)
        .execute(&mut *self.tx)
        .await?
        .rows_affected())
    }
}

/// Why a delivery whose key was frozen twice in one occurrence is skipped.
const LISTED_AGAIN: &str =
    "the source lists this recipient again: the delivery for its first entry is kept";

/// The two statements that write one chunk of deliveries.
struct InsertChunk {
    messages: QueryBuilder<Sqlite>,
    deliveries: QueryBuilder<Sqlite>,
}

impl InsertChunk {
    /// Ids run from `first_id` in chunk order.
    fn build(
        occurrence_id: i64,
        first_id: i64,
        chunk: Vec<NewDelivery>,
        now: i64,
    ) -> Result<InsertChunk, DispatchError> {
        let mut messages: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO messages (id, delivery_key, recipient_id, message) ");
        let mut deliveries: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO deliveries (id, occurrence_id, channel, group_key, rank, status, not_before, cost, error, updated_at) ",
        );
        let mut ids = Vec::with_capacity(chunk.len());
        let mut rest = Vec::with_capacity(chunk.len());
        for (id, d) in (first_id..).zip(chunk) {
            let message = to_json(&MessageRef::of(&d))?;
            ids.push((id, d.delivery_key, d.recipient_id, message));
            rest.push((
                id,
                d.channel,
                d.group_key,
                d.rank,
                d.status,
                d.not_before,
                d.cost,
                d.error,
            ));
        }
        messages.push_values(ids, |mut b, (id, key, recipient, message)| {
            b.push_bind(id)
                .push_bind(key)
                .push_bind(recipient)
                .push_bind(message);
        });
        deliveries.push_values(
            rest,
            |mut b, (id, channel, group_key, rank, status, not_before, cost, error)| {
                b.push_bind(id)
                    .push_bind(occurrence_id)
                    .push_bind(channel.map(ChannelKind::as_str))
                    .push_bind(group_key)
                    .push_bind(i64::from(rank))
                    .push_bind(status.as_str())
                    .push_bind(not_before.map_or(0, millis))
                    .push_bind(cost.map(|c| c.to_string()))
                    .push_bind(error)
                    .push_bind(now);
            },
        );
        Ok(InsertChunk {
            messages,
            deliveries,
        })
    }
}

/// A claimed delivery as the claim query encodes it: id, attempts, channel, group key, rank,
/// delivery key, recipient, message.
type ClaimedRow = (
    i64,
    i64,
    Option<String>,
    String,
    i64,
    String,
    String,
    MessageColumn,
);

/// The queued deliveries due at `?1` of occurrence `?2`, at most `?3`, oldest due first. The
/// queue index is ordered by due time, so deliveries waiting for a later send window are
/// never scanned while due ones are claimed.
const DUE: &str =
    "SELECT id FROM deliveries WHERE occurrence_id = ?2 AND status = 'queued' AND not_before <= ?1
     ORDER BY not_before, id LIMIT ?3";

/// Marks up to `limit` queued deliveries as sending, inside the caller's transaction (which
/// must hold the write lock from its start, so the rows read are the rows marked), and returns
/// them with what sending needs.
async fn claim_in(
    conn: &mut SqliteConnection,
    occurrence_id: i64,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<Delivery>, DispatchError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // The whole batch comes back as one JSON value, put together from the stored message
    // JSON by concatenation: rows cross from SQLite's thread one at a time otherwise, and
    // that hand-off costs more than the query.
    let batch: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT '[' || COALESCE(group_concat('[' || d.id || ',' || (d.attempts + 1) || ',' || json_quote(d.channel) || ','
                || json_quote(d.group_key) || ',' || d.rank || ',' || json_quote(m.delivery_key) || ','
                || json_quote(m.recipient_id) || ',' || m.message || ']', ','), '') || ']'
         FROM ({DUE}) q JOIN deliveries d ON d.id = q.id JOIN messages m ON m.id = q.id"
    )))
    .bind(millis(now))
    .bind(occurrence_id)
    .bind(limit)
    .fetch_one(&mut *conn)
    .await?;
    if batch == "[]" {
        return Ok(Vec::new());
    }
    // SQLite marks the rows while this thread reads the batch.
    let mark = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, updated_at = ?1 WHERE id IN ({DUE})"
    )))
    .bind(millis(now))
    .bind(occurrence_id)
    .bind(limit)
    .execute(&mut *conn);
    let (marked, rows) = tokio::join!(mark, async { from_json::<Vec<ClaimedRow>>(&batch) });
    let rows = rows?;
    if marked?.rows_affected() != u64::try_from(rows.len()).unwrap_or(u64::MAX) {
        return Err(DispatchError::store(
            "the queue changed while a batch was claimed",
        ));
    }
    let claimed_at = from_millis(millis(now));
    let mut claimed = rows
        .into_iter()
        .map(
            |(id, attempts, channel, group_key, rank, delivery_key, recipient_id, message)| {
                Ok(Delivery {
                    id,
                    occurrence_id,
                    planned: message.planned(
                        delivery_key,
                        recipient_id,
                        channel,
                        group_key,
                        rank,
                        DeliveryStatus::Sending,
                    )?,
                    attempts: u32::try_from(attempts).unwrap_or_default(),
                    provider_id: None,
                    error_class: None,
                    updated_at: claimed_at,
                    sent_at: None,
                })
            },
        )
        .collect::<Result<Vec<_>, DispatchError>>()?;
    claimed.sort_unstable_by_key(|d| d.id);
    Ok(claimed)
}

/// Records results, inside the caller's transaction.
async fn record_in(
    conn: &mut SqliteConnection,
    occurrence_id: i64,
    results: &[DeliveryResult],
    now: DateTime<Utc>,
) -> Result<(), DispatchError> {
    let now = millis(now);
    // Sends are the bulk: one statement per chunk rather than one per delivery.
    let sent: Vec<(i64, Option<&String>, Option<String>)> = results
        .iter()
        .filter_map(|r| match r {
            DeliveryResult::Sent {
                id,
                provider_id,
                cost,
            } => Some((*id, provider_id.as_ref(), cost.map(|c| c.to_string()))),
            _ => None,
        })
        .collect();
    for chunk in sent.chunks(INSERT_CHUNK) {
        // One JSON value for the chunk: cheaper than three bound values a row.
        let rows = to_json(chunk)?;
        sqlx::query(
            "UPDATE deliveries SET status = 'sent', provider_id = v.value ->> 1, cost = COALESCE(v.value ->> 2, deliveries.cost),
             error = NULL, error_class = NULL, updated_at = ?2, sent_at = ?2
             FROM json_each(?1) v WHERE deliveries.id = v.value ->> 0",
        )
        .bind(&rows)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        // The other channels of a priority group are not needed any more. Standby rows exist
        // only in priority mode with several channels: the first condition, which does not
        // depend on the row, ends the statement at once for every other occurrence.
        sqlx::query(
            "UPDATE deliveries SET status = 'skipped', updated_at = ?2,
             error = 'delivered through ' || (SELECT s.channel FROM json_each(?1) v JOIN deliveries s ON s.id = v.value ->> 0
                                               WHERE s.group_key = deliveries.group_key LIMIT 1)
             WHERE EXISTS (SELECT 1 FROM deliveries WHERE occurrence_id = ?3 AND status = 'standby')
             AND occurrence_id = ?3 AND status = 'standby'
             AND group_key IN (SELECT s.group_key FROM json_each(?1) v JOIN deliveries s ON s.id = v.value ->> 0)",
        )
        .bind(&rows)
        .bind(now)
        .bind(occurrence_id)
        .execute(&mut *conn)
        .await?;
    }
    for result in results {
        match result {
            DeliveryResult::Sent { .. } => {}
            DeliveryResult::Retry {
                id,
                not_before,
                class,
                error,
            } => {
                sqlx::query(
                    "UPDATE deliveries SET status = 'queued', not_before = ?, error_class = ?, error = ?, updated_at = ? WHERE id = ?",
                )
                .bind(millis(*not_before))
                .bind(class)
                .bind(error)
                .bind(now)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            }
            DeliveryResult::Failed { id, class, error } => {
                sqlx::query("UPDATE deliveries SET status = 'failed', error_class = ?, error = ?, updated_at = ? WHERE id = ?")
                    .bind(class)
                    .bind(error)
                    .bind(now)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                // Priority mode: the next channel of the group takes over.
                sqlx::query(
                    "UPDATE deliveries SET status = 'queued', updated_at = ?2 WHERE id = (
                         SELECT id FROM deliveries WHERE occurrence_id = ?3 AND status = 'standby'
                           AND group_key = (SELECT group_key FROM deliveries WHERE id = ?1)
                         ORDER BY rank LIMIT 1)",
                )
                .bind(id)
                .bind(now)
                .bind(occurrence_id)
                .execute(&mut *conn)
                .await?;
            }
            DeliveryResult::Requeue { id } => {
                sqlx::query("UPDATE deliveries SET status = 'queued', attempts = MAX(attempts - 1, 0), updated_at = ? WHERE id = ?")
                    .bind(now)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
            }
        }
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn save_mailing(&self, m: &MailingRecord) -> Result<(), DispatchError> {
        let _writing = self.writing.lock().await;
        sqlx::query(
            "INSERT INTO mailings (id, json, state, version, checked_at, paused_until, reason) VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET json = excluded.json, state = excluded.state, version = excluded.version,
             checked_at = excluded.checked_at, paused_until = excluded.paused_until, reason = excluded.reason",
        )
        .bind(&m.id)
        .bind(&m.json)
        .bind(m.state.as_str())
        .bind(i64::from(m.version))
        .bind(m.checked_at.map(millis))
        .bind(m.paused_until.map(millis))
        .bind(&m.reason)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn mailing(&self, id: &str) -> Result<Option<MailingRecord>, DispatchError> {
        sqlx::query("SELECT * FROM mailings WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(mailing_from_row)
            .transpose()
    }

    async fn mailings(&self) -> Result<Vec<MailingRecord>, DispatchError> {
        sqlx::query("SELECT * FROM mailings ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(mailing_from_row)
            .collect()
    }

    async fn start_occurrence(&self, o: &NewOccurrence) -> Result<OccurrenceStart, DispatchError> {
        let _writing = self.writing.lock().await;
        let inserted = sqlx::query(
            "INSERT INTO occurrences (mailing_id, key, fired_at, evaluation_date, state) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(&o.mailing_id)
        .bind(&o.key)
        .bind(millis(o.fired_at))
        .bind(o.evaluation_date.to_string())
        .bind(o.state.as_str())
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        let row = sqlx::query("SELECT * FROM occurrences WHERE key = ?")
            .bind(&o.key)
            .fetch_one(&self.pool)
            .await?;
        let record = occurrence_from_row(&row)?;
        Ok(if inserted {
            OccurrenceStart::Created(record)
        } else {
            OccurrenceStart::Existing(record)
        })
    }

    async fn set_occurrence_state(
        &self,
        id: i64,
        state: OccurrenceState,
    ) -> Result<(), DispatchError> {
        let _writing = self.writing.lock().await;
        sqlx::query("UPDATE occurrences SET state = ? WHERE id = ?")
            .bind(state.as_str())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn occurrences(
        &self,
        mailing_id: Option<&str>,
    ) -> Result<Vec<OccurrenceRecord>, DispatchError> {
        sqlx::query(
            "SELECT * FROM occurrences WHERE ?1 IS NULL OR mailing_id = ?1 ORDER BY fired_at, id",
        )
        .bind(mailing_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(occurrence_from_row)
        .collect()
    }

    async fn begin_freeze(
        &self,
        occurrence_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<Box<dyn Freeze>>, DispatchError> {
        let writing = Arc::clone(&self.writing).lock_owned().await;
        // The write lock is held from here to the commit: ids are given here, so that a
        // delivery and its message share one, and no other writer can take them meanwhile.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM occurrences WHERE id = ?")
                .bind(occurrence_id)
                .fetch_optional(&mut *tx)
                .await?;
        if state.as_deref() != Some(OccurrenceState::Freezing.as_str()) {
            return Ok(None);
        }
        let first_id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM messages")
            .fetch_one(&mut *tx)
            .await?;
        Ok(Some(Box::new(SqliteFreeze {
            tx,
            _writing: writing,
            occurrence_id,
            first_id,
            next_id: first_id,
            now: millis(now),
        })))
    }

    async fn claim(
        &self,
        occurrence_id: i64,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>, DispatchError> {
        let _writing = self.writing.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let claimed = claim_in(&mut tx, occurrence_id, now, limit).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    async fn record(
        &self,
        occurrence_id: i64,
        results: &[DeliveryResult],
        now: DateTime<Utc>,
    ) -> Result<(), DispatchError> {
        let _writing = self.writing.lock().await;
        let mut tx = self.pool.begin().await?;
        record_in(&mut tx, occurrence_id, results, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_and_claim(
        &self,
        occurrence_id: i64,
        results: &[DeliveryResult],
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>, DispatchError> {
        let _writing = self.writing.lock().await;
        // One transaction: the pages the results touch are mostly those the next batch
        // touches, so the WAL gets them once.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        record_in(&mut tx, occurrence_id, results, now).await?;
        let claimed = claim_in(&mut tx, occurrence_id, now, limit).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    async fn recover(
        &self,
        occurrence_id: i64,
        idempotent: &[ChannelKind],
        now: DateTime<Utc>,
    ) -> Result<u64, DispatchError> {
        let _writing = self.writing.lock().await;
        let now = millis(now);
        let mut tx = self.pool.begin().await?;
        for channel in idempotent {
            sqlx::query("UPDATE deliveries SET status = 'queued', updated_at = ? WHERE occurrence_id = ? AND status = 'sending' AND channel = ?")
                .bind(now)
                .bind(occurrence_id)
                .bind(channel.as_str())
                .execute(&mut *tx)
                .await?;
        }
        let unknown = sqlx::query(
            "UPDATE deliveries SET status = 'unknown', error = 'the process stopped while the provider held the request',
             updated_at = ? WHERE occurrence_id = ? AND status = 'sending'",
        )
        .bind(now)
        .bind(occurrence_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // A priority group whose delivery is unknown may have reached the recipient: its
        // lower-priority channels must not go out, nor keep the occurrence open.
        sqlx::query(
            "UPDATE deliveries SET status = 'skipped', error = ?3, updated_at = ?1 WHERE occurrence_id = ?2 AND status = 'standby'
             AND group_key IN (SELECT group_key FROM deliveries WHERE occurrence_id = ?2 AND status = 'unknown')",
        )
        .bind(now)
        .bind(occurrence_id)
        .bind(BEHIND_UNKNOWN)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(unknown)
    }

    async fn requeue_unknown(
        &self,
        occurrence_id: i64,
        now: DateTime<Utc>,
    ) -> Result<u64, DispatchError> {
        let _writing = self.writing.lock().await;
        let mut tx = self.pool.begin().await?;
        // The standby channels recovery closed stand by again: if the resend fails for good,
        // the next channel takes over as it would have.
        sqlx::query(
            "UPDATE deliveries SET status = 'standby', error = NULL, updated_at = ?1
             WHERE occurrence_id = ?2 AND status = 'skipped' AND error = ?3
             AND group_key IN (SELECT group_key FROM deliveries WHERE occurrence_id = ?2 AND status = 'unknown')",
        )
        .bind(millis(now))
        .bind(occurrence_id)
        .bind(BEHIND_UNKNOWN)
        .execute(&mut *tx)
        .await?;
        let requeued = sqlx::query(
            "UPDATE deliveries SET status = 'queued', error = NULL, updated_at = ? WHERE occurrence_id = ? AND status = 'unknown'",
        )
        .bind(millis(now))
        .bind(occurrence_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(requeued)
    }

    async fn next_due(&self, occurrence_id: i64) -> Result<Option<DateTime<Utc>>, DispatchError> {
        let row = sqlx::query(
            "SELECT not_before FROM deliveries WHERE occurrence_id = ? AND status = 'queued' ORDER BY not_before LIMIT 1",
        )
        .bind(occurrence_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok(from_millis(row.try_get(0)?))).transpose()
    }

    async fn counts(&self, occurrence_id: i64) -> Result<StatusCounts, DispatchError> {
        // One pass with a sum per status: GROUP BY would sort every row of the occurrence
        // first, in memory as large as the occurrence.
        let sums: Vec<String> = DeliveryStatus::ALL
            .iter()
            .map(|s| format!("COALESCE(SUM(status = '{}'), 0)", s.as_str()))
            .collect();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM deliveries WHERE occurrence_id = ?",
            sums.join(", ")
        )))
        .bind(occurrence_id)
        .fetch_one(&self.pool)
        .await?;
        let mut counts = StatusCounts::default();
        for (i, status) in DeliveryStatus::ALL.iter().enumerate() {
            counts.add(
                *status,
                u64::try_from(row.try_get::<i64, _>(i)?).unwrap_or_default(),
            );
        }
        Ok(counts)
    }

    async fn deliveries(
        &self,
        occurrence_id: i64,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, DispatchError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN messages m ON m.id = d.id
             WHERE d.occurrence_id = ? AND d.id > ? ORDER BY d.id LIMIT ?"
        )))
        .bind(occurrence_id)
        .bind(after_id)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(delivery_from_row)
        .collect()
    }

    async fn mark_unreachable(
        &self,
        recipient_id: &str,
        channel: ChannelKind,
        reason: &str,
    ) -> Result<(), DispatchError> {
        let _writing = self.writing.lock().await;
        sqlx::query("INSERT INTO unreachable (recipient_id, channel, reason) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET reason = excluded.reason")
            .bind(recipient_id)
            .bind(channel.as_str())
            .bind(reason)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn unreachable(&self) -> Result<Vec<(String, ChannelKind)>, DispatchError> {
        let rows = sqlx::query("SELECT recipient_id, channel FROM unreachable")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let channel = channel_from(row.try_get("channel")?)?
                    .ok_or_else(|| DispatchError::store("an unreachable row without a channel"))?;
                Ok((row.try_get("recipient_id")?, channel))
            })
            .collect()
    }

    async fn accrued(
        &self,
        occurrence_id: i64,
        recipient_ids: &[String],
    ) -> Result<Vec<String>, DispatchError> {
        if recipient_ids.is_empty() {
            return Ok(Vec::new());
        }
        // The ids go in as one JSON array: binding thousands of values one by one costs more
        // than the look-ups.
        let ids = to_json(recipient_ids)?;
        Ok(sqlx::query_scalar(
            "SELECT value FROM json_each(?2)
             WHERE EXISTS (SELECT 1 FROM accruals a WHERE a.occurrence_id = ?1 AND a.recipient_id = value)",
        )
        .bind(occurrence_id)
        .bind(ids)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn finish_accruals(
        &self,
        occurrence_id: i64,
        recipient_ids: &[String],
    ) -> Result<(), DispatchError> {
        let _writing = self.writing.lock().await;
        if recipient_ids.is_empty() {
            return Ok(());
        }
        let ids = to_json(recipient_ids)?;
        sqlx::query(
            "INSERT INTO accruals (occurrence_id, recipient_id) SELECT ?1, value FROM json_each(?2)
             WHERE true ON CONFLICT DO NOTHING",
        )
        .bind(occurrence_id)
        .bind(ids)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn pending_accruals(
        &self,
        occurrence_id: i64,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, DispatchError> {
        // Keyset paging along the occurrence index: each page costs the rows it passes.
        let rows = sqlx::query(
            "SELECT d.id, m.recipient_id FROM deliveries d JOIN messages m ON m.id = d.id
             WHERE d.occurrence_id = ?1 AND d.status = 'sent' AND d.id > ?2
             AND NOT EXISTS (SELECT 1 FROM accruals a WHERE a.occurrence_id = ?1 AND a.recipient_id = m.recipient_id)
             ORDER BY d.id LIMIT ?3",
        )
        .bind(occurrence_id)
        .bind(after_id)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("id")?, row.try_get("recipient_id")?)))
            .collect()
    }
}
