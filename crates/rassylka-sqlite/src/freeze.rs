//! Freezing an occurrence's audience: one write transaction, multi-row inserts built on a
//! blocking thread ahead of SQLite, repeated keys skipped at commit.

use async_trait::async_trait;
use rassylka_model::ChannelKind;
use rassylka_store::{Freeze, KeyOrder, NewDelivery, StoreError};
use sqlx::{QueryBuilder, Sqlite};

use crate::rows::{MessageRef, db, invalid, millis, to_json};

/// Rows per INSERT: the wider table binds 10 parameters a row, well under SQLite's 32 766.
pub(crate) const INSERT_CHUNK: usize = 1000;

/// An occurrence's audience being written: one transaction holding the write lock.
pub(crate) struct SqliteFreeze {
    pub(crate) tx: sqlx::Transaction<'static, Sqlite>,
    pub(crate) _writing: tokio::sync::OwnedMutexGuard<()>,
    pub(crate) occurrence_id: i64,
    pub(crate) first_id: i64,
    pub(crate) next_id: i64,
    pub(crate) now: i64,
    /// Whether a look for repeated keys can be skipped.
    pub(crate) keys: KeyOrder,
}

#[async_trait]
impl Freeze for SqliteFreeze {
    async fn write(&mut self, deliveries: Vec<NewDelivery>) -> Result<(), StoreError> {
        for d in &deliveries {
            self.keys.observe(d);
        }
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
            chunk
                .messages
                .build()
                .execute(&mut *self.tx)
                .await
                .map_err(db)?;
            chunk
                .deliveries
                .build()
                .execute(&mut *self.tx)
                .await
                .map_err(db)?;
        }
        builder.await.map_err(invalid)
    }

    async fn commit(mut self: Box<Self>) -> Result<u64, StoreError> {
        let duplicates = if self.keys.unique() {
            0
        } else {
            self.skip_repeated_keys().await?
        };
        sqlx::query("UPDATE occurrences SET state = 'frozen' WHERE id = ?")
            .bind(self.occurrence_id)
            .execute(&mut *self.tx)
            .await
            .map_err(db)?;
        self.tx.commit().await.map_err(db)?;
        Ok(duplicates)
    }
}

impl SqliteFreeze {
    /// Journals as skipped every delivery whose key was written before in this freeze; returns
    /// how many. Keys are checked once, by sorting this occurrence's on what follows the
    /// occurrence key they all share: a unique index would be updated at random places for
    /// every delivery when recipient ids do not come in order, which costs far more.
    async fn skip_repeated_keys(&mut self) -> Result<u64, StoreError> {
        let occurrence_key: String = sqlx::query_scalar("SELECT key FROM occurrences WHERE id = ?")
            .bind(self.occurrence_id)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(db)?;
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
        .await.map_err(db)?
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
    ) -> Result<InsertChunk, StoreError> {
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
