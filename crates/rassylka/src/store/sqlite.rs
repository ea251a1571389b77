use std::path::Path;
use std::str::FromStr;
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
    Delivery, DeliveryResult, DeliveryStatus, MailingRecord, MailingState, NewDelivery,
    NewOccurrence, OccurrenceRecord, OccurrenceStart, OccurrenceState, StatusCounts, Store,
};
use crate::DispatchError;

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
    delivery_key TEXT NOT NULL UNIQUE,
    recipient_id TEXT NOT NULL,
    channel TEXT,
    address TEXT,
    booking_id TEXT,
    group_key TEXT NOT NULL,
    rank INTEGER NOT NULL,
    status TEXT NOT NULL,
    not_before INTEGER,
    subject TEXT,
    text TEXT,
    html TEXT,
    image TEXT,
    units INTEGER NOT NULL,
    cost TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    provider_id TEXT,
    error_class TEXT,
    error TEXT,
    updated_at INTEGER NOT NULL,
    sent_at INTEGER
);
CREATE INDEX IF NOT EXISTS deliveries_queue ON deliveries (occurrence_id, status, id);
-- Only standby rows are ever looked up by group (priority fallback), so only they are indexed.
CREATE INDEX IF NOT EXISTS deliveries_standby ON deliveries (occurrence_id, group_key, rank) WHERE status = 'standby';
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
);
"#;

/// The embedded journal: one SQLite file in WAL mode, or an in-memory database.
///
/// Several processes may open the same file: SQLite serialises writers (with a busy
/// timeout), claims are single statements, and occurrence and delivery keys are unique, so
/// no delivery is claimed twice. Recovery, though, takes every `sending` row of an occurrence
/// for one left by a dead process: while two dispatchers send the same occurrence, one
/// starting up can mark the other's in-flight rows «unknown» (the other's result still
/// overwrites it). Run one dispatcher per journal file; several workers need leases, which is
/// what a PostgreSQL store is for.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
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
            .pragma("temp_store", "memory")
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
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        Ok(SqliteStore { pool })
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
        evaluation_date: NaiveDate::from_str(&date)
            .map_err(|e| DispatchError::Store(Box::new(e)))?,
        state: OccurrenceState::from_str(row.try_get("state")?)?,
    })
}

fn channel_from(text: Option<String>) -> Result<Option<ChannelKind>, DispatchError> {
    text.map(|t| ChannelKind::from_str(&t).map_err(|e| DispatchError::Store(Box::new(e))))
        .transpose()
}

/// A whole journal row: the columns of a claim, plus the result columns.
fn delivery_from_row(row: &SqliteRow) -> Result<Delivery, DispatchError> {
    let mut delivery = claimed_from_row(row, from_millis(row.try_get("updated_at")?))?;
    let cost: Option<String> = row.try_get("cost")?;
    let planned = &mut delivery.planned;
    planned.status = DeliveryStatus::from_str(row.try_get("status")?)?;
    planned.not_before = row
        .try_get::<Option<i64>, _>("not_before")?
        .map(from_millis);
    planned.cost = cost.and_then(|c| Decimal::from_str(&c).ok());
    planned.error = row.try_get("error")?;
    delivery.provider_id = row.try_get("provider_id")?;
    delivery.error_class = row.try_get("error_class")?;
    delivery.sent_at = row.try_get::<Option<i64>, _>("sent_at")?.map(from_millis);
    Ok(delivery)
}

/// The columns a claim returns: what sending needs.
fn claimed_from_row(row: &SqliteRow, claimed_at: DateTime<Utc>) -> Result<Delivery, DispatchError> {
    Ok(Delivery {
        id: row.try_get("id")?,
        occurrence_id: row.try_get("occurrence_id")?,
        planned: NewDelivery {
            delivery_key: row.try_get("delivery_key")?,
            recipient_id: row.try_get("recipient_id")?,
            channel: channel_from(row.try_get("channel")?)?,
            address: row.try_get("address")?,
            booking_id: row.try_get("booking_id")?,
            group_key: row.try_get("group_key")?,
            rank: u32::try_from(row.try_get::<i64, _>("rank")?).unwrap_or_default(),
            status: DeliveryStatus::Sending,
            not_before: None,
            subject: row.try_get("subject")?,
            text: row.try_get("text")?,
            html: row.try_get("html")?,
            image: row.try_get("image")?,
            units: u32::try_from(row.try_get::<i64, _>("units")?).unwrap_or_default(),
            cost: None,
            error: None,
        },
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or_default(),
        provider_id: None,
        error_class: None,
        updated_at: claimed_at,
        sent_at: None,
    })
}

/// Rows per INSERT: 21 parameters a row stays under SQLite's 32 766.
const INSERT_CHUNK: usize = 1000;

/// Marks up to `limit` queued deliveries as sending, inside the caller's transaction.
async fn claim_in(
    conn: &mut SqliteConnection,
    occurrence_id: i64,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<Delivery>, DispatchError> {
    let rows = sqlx::query(
        "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, updated_at = ?1
         WHERE id IN (SELECT id FROM deliveries WHERE occurrence_id = ?2 AND status = 'queued'
                      AND (not_before IS NULL OR not_before <= ?1) ORDER BY id LIMIT ?3)
         RETURNING id, occurrence_id, delivery_key, recipient_id, channel, address, booking_id, group_key, rank,
                   subject, text, html, image, units, attempts",
    )
    .bind(millis(now))
    .bind(occurrence_id)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(&mut *conn)
    .await?;
    // Only what sending needs comes back: decoding every column of a big batch costs.
    let claimed_at = from_millis(millis(now));
    let mut claimed: Vec<Delivery> = rows
        .iter()
        .map(|row| claimed_from_row(row, claimed_at))
        .collect::<Result<_, _>>()?;
    claimed.sort_by_key(|d| d.id);
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
        let mut query: QueryBuilder<Sqlite> =
            QueryBuilder::new("WITH v (id, provider_id, cost) AS (");
        query.push_values(chunk, |mut b, (id, provider_id, cost)| {
            b.push_bind(*id)
                .push_bind(*provider_id)
                .push_bind(cost.clone());
        });
        query.push(
            ") UPDATE deliveries SET status = 'sent', provider_id = v.provider_id, cost = COALESCE(v.cost, deliveries.cost),
             error = NULL, error_class = NULL, updated_at = ",
        );
        query.push_bind(now).push(", sent_at = ").push_bind(now);
        query.push(" FROM v WHERE deliveries.id = v.id");
        query.build().execute(&mut *conn).await?;
        // The other channels of a priority group are not needed any more.
        // `sent` is this chunk's rows, found by id: looking the sending channel up among
        // them keeps the statement linear in the chunk, whatever the occurrence's size.
        let mut skip: QueryBuilder<Sqlite> = QueryBuilder::new(
            "WITH sent AS (SELECT group_key, channel FROM deliveries WHERE id IN (",
        );
        let mut ids = skip.separated(", ");
        for (id, _, _) in chunk {
            ids.push_bind(*id);
        }
        skip.push(")) UPDATE deliveries SET status = 'skipped', updated_at = ");
        skip.push_bind(now);
        skip.push(
            ", error = 'delivered through ' || (SELECT sent.channel FROM sent WHERE sent.group_key = deliveries.group_key LIMIT 1)
             WHERE occurrence_id = ",
        );
        skip.push_bind(occurrence_id);
        skip.push(" AND status = 'standby' AND group_key IN (SELECT group_key FROM sent)");
        skip.build().execute(&mut *conn).await?;
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
        sqlx::query("UPDATE occurrences SET state = ? WHERE id = ?")
            .bind(state.as_str())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn reset_occurrence(&self, id: i64) -> Result<(), DispatchError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM deliveries WHERE occurrence_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE occurrences SET state = 'freezing' WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
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

    async fn insert_deliveries(
        &self,
        occurrence_id: i64,
        deliveries: &[NewDelivery],
    ) -> Result<(), DispatchError> {
        let now = millis(Utc::now());
        let mut tx = self.pool.begin().await?;
        for chunk in deliveries.chunks(INSERT_CHUNK) {
            let mut query: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO deliveries (occurrence_id, delivery_key, recipient_id, channel, address, booking_id, group_key, rank,
                 status, not_before, subject, text, html, image, units, cost, error, updated_at) ",
            );
            query.push_values(chunk, |mut b, d| {
                b.push_bind(occurrence_id)
                    .push_bind(&d.delivery_key)
                    .push_bind(&d.recipient_id)
                    .push_bind(d.channel.map(ChannelKind::as_str))
                    .push_bind(&d.address)
                    .push_bind(&d.booking_id)
                    .push_bind(&d.group_key)
                    .push_bind(i64::from(d.rank))
                    .push_bind(d.status.as_str())
                    .push_bind(d.not_before.map(millis))
                    .push_bind(&d.subject)
                    .push_bind(&d.text)
                    .push_bind(&d.html)
                    .push_bind(&d.image)
                    .push_bind(i64::from(d.units))
                    .push_bind(d.cost.map(|c| c.to_string()))
                    .push_bind(&d.error)
                    .push_bind(now);
            });
            query.push(" ON CONFLICT (delivery_key) DO NOTHING");
            query.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim(
        &self,
        occurrence_id: i64,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>, DispatchError> {
        let mut tx = self.pool.begin().await?;
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
        // One transaction: the pages the results touch are mostly those the next batch
        // touches, so the WAL gets them once.
        let mut tx = self.pool.begin().await?;
        record_in(&mut tx, occurrence_id, results, now).await?;
        let claimed = claim_in(&mut tx, occurrence_id, now, limit).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    async fn recover(
        &self,
        occurrence_id: i64,
        idempotent: &[ChannelKind],
    ) -> Result<u64, DispatchError> {
        let now = millis(Utc::now());
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
            "UPDATE deliveries SET status = 'skipped', error = 'not sent: the delivery through a higher-priority channel is unknown',
             updated_at = ?1 WHERE occurrence_id = ?2 AND status = 'standby'
             AND group_key IN (SELECT group_key FROM deliveries WHERE occurrence_id = ?2 AND status = 'unknown')",
        )
        .bind(now)
        .bind(occurrence_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(unknown)
    }

    async fn requeue_unknown(&self, occurrence_id: i64) -> Result<u64, DispatchError> {
        Ok(sqlx::query("UPDATE deliveries SET status = 'queued', updated_at = ? WHERE occurrence_id = ? AND status = 'unknown'")
            .bind(millis(Utc::now()))
            .bind(occurrence_id)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    async fn next_due(&self, occurrence_id: i64) -> Result<Option<DateTime<Utc>>, DispatchError> {
        let row = sqlx::query(
            "SELECT MIN(COALESCE(not_before, 0)) AS due, COUNT(*) AS n FROM deliveries WHERE occurrence_id = ? AND status = 'queued'",
        )
        .bind(occurrence_id)
        .fetch_one(&self.pool)
        .await?;
        let n: i64 = row.try_get("n")?;
        Ok(if n == 0 {
            None
        } else {
            row.try_get::<Option<i64>, _>("due")?.map(from_millis)
        })
    }

    async fn counts(&self, occurrence_id: i64) -> Result<StatusCounts, DispatchError> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM deliveries WHERE occurrence_id = ? GROUP BY status",
        )
        .bind(occurrence_id)
        .fetch_all(&self.pool)
        .await?;
        let mut counts = StatusCounts::default();
        for row in rows {
            let status = DeliveryStatus::from_str(row.try_get("status")?)?;
            counts.add(
                status,
                u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or_default(),
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
        sqlx::query(
            "SELECT * FROM deliveries WHERE occurrence_id = ? AND id > ? ORDER BY id LIMIT ?",
        )
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
                let channel = channel_from(row.try_get("channel")?)?.ok_or_else(|| {
                    DispatchError::Store("an unreachable row without a channel".into())
                })?;
                Ok((row.try_get("recipient_id")?, channel))
            })
            .collect()
    }

    async fn accrued(
        &self,
        occurrence_id: i64,
        recipient_ids: &[String],
    ) -> Result<Vec<String>, DispatchError> {
        let mut done = Vec::new();
        for chunk in recipient_ids.chunks(INSERT_CHUNK) {
            let mut query: QueryBuilder<Sqlite> =
                QueryBuilder::new("SELECT recipient_id FROM accruals WHERE occurrence_id = ");
            query
                .push_bind(occurrence_id)
                .push(" AND recipient_id IN (");
            let mut ids = query.separated(", ");
            for id in chunk {
                ids.push_bind(id);
            }
            query.push(")");
            for row in query.build().fetch_all(&self.pool).await? {
                done.push(row.try_get("recipient_id")?);
            }
        }
        Ok(done)
    }

    async fn finish_accruals(
        &self,
        occurrence_id: i64,
        recipient_ids: &[String],
    ) -> Result<(), DispatchError> {
        let mut tx = self.pool.begin().await?;
        for chunk in recipient_ids.chunks(INSERT_CHUNK) {
            let mut query: QueryBuilder<Sqlite> =
                QueryBuilder::new("INSERT INTO accruals (occurrence_id, recipient_id) ");
            query.push_values(chunk, |mut b, id| {
                b.push_bind(occurrence_id).push_bind(id);
            });
            query.push(" ON CONFLICT DO NOTHING");
            query.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn pending_accruals(
        &self,
        occurrence_id: i64,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, DispatchError> {
        // Keyset paging along the queue index: each page costs its own rows only.
        let rows = sqlx::query(
            "SELECT d.id, d.recipient_id FROM deliveries d WHERE d.occurrence_id = ?1 AND d.status = 'sent' AND d.id > ?2
             AND NOT EXISTS (SELECT 1 FROM accruals a WHERE a.occurrence_id = ?1 AND a.recipient_id = d.recipient_id)
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
