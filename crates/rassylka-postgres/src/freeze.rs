//! Freezing an occurrence's audience: one transaction holding the occurrence's row lock,
//! multi-row inserts from arrays, repeated keys skipped at commit.

use async_trait::async_trait;
use rassylka_model::ChannelKind;
use rassylka_store::{Freeze, KeyOrder, NewDelivery, StoreError};
use sqlx::{Postgres, Transaction};

use crate::db;

/// Rows per INSERT: each column goes in as one array.
const INSERT_CHUNK: usize = 5_000;

/// Why a delivery whose key was frozen twice in one occurrence is skipped.
const LISTED_AGAIN: &str =
    "the source lists this recipient again: the delivery for its first entry is kept";

pub(crate) struct PgFreeze {
    pub(crate) tx: Transaction<'static, Postgres>,
    pub(crate) occurrence_id: i64,
    pub(crate) now: i64,
    pub(crate) keys: KeyOrder,
    /// The first and last id of the fresh rows written so far (ids grow chunk by chunk).
    pub(crate) fresh: Option<(i64, i64)>,
}

/// One column per field, for `UNNEST`.
#[derive(Default)]
struct Columns {
    key: Vec<String>,
    recipient: Vec<String>,
    channel: Vec<Option<&'static str>>,
    group: Vec<String>,
    rank: Vec<i32>,
    status: Vec<&'static str>,
    not_before: Vec<i64>,
    address: Vec<Option<String>>,
    booking: Vec<Option<String>>,
    units: Vec<i32>,
    subject: Vec<Option<String>>,
    text: Vec<Option<String>>,
    html: Vec<Option<String>>,
    image: Vec<Option<String>>,
    cost: Vec<Option<String>>,
    error: Vec<Option<String>>,
}

impl Columns {
    fn push(&mut self, d: NewDelivery) {
        self.key.push(d.delivery_key);
        self.recipient.push(d.recipient_id);
        self.channel.push(d.channel.map(ChannelKind::as_str));
        self.group.push(d.group_key);
        self.rank.push(i32::try_from(d.rank).unwrap_or(i32::MAX));
        self.status.push(d.status.as_str());
        self.not_before
            .push(d.not_before.map_or(0, crate::rows::millis));
        self.address.push(d.address);
        self.booking.push(d.booking_id);
        self.units.push(i32::try_from(d.units).unwrap_or(i32::MAX));
        self.subject.push(d.subject);
        self.text.push(d.text);
        self.html.push(d.html);
        self.image.push(d.image);
        self.cost.push(d.cost.map(|c| c.to_string()));
        self.error.push(d.error);
    }
}

#[async_trait]
impl Freeze for PgFreeze {
    async fn write(&mut self, deliveries: Vec<NewDelivery>) -> Result<(), StoreError> {
        for d in &deliveries {
            self.keys.observe(d);
        }
        let mut rest = deliveries.into_iter().peekable();
        while rest.peek().is_some() {
            let mut c = Columns::default();
            for d in rest.by_ref().take(INSERT_CHUNK) {
                c.push(d);
            }
            // One statement per chunk: ids come from the sequence in the chunk's order, and a
            // delivery and its message share one.
            let (first, last): (Option<i64>, Option<i64>) = sqlx::query_as(
                "WITH src AS MATERIALIZED (
                     SELECT nextval('delivery_ids') AS id, u.* FROM (
                         SELECT * FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::int[],
                             $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
                             $14::int[], $15::text[], $16::bigint[], $17::text[], $18::text[])
                         WITH ORDINALITY AS u(delivery_key, recipient_id, address, booking_id, units,
                             subject, text, html, image, channel, group_key, rank, status, not_before,
                             cost, error, n)
                         ORDER BY n) u),
                 written AS (
                     INSERT INTO messages (id, delivery_key, recipient_id, address, booking_id, units, subject, text, html, image)
                     SELECT id, delivery_key, recipient_id, address, booking_id, units, subject, text, html, image FROM src),
                 stored AS (
                     INSERT INTO deliveries (occurrence_id, updated_at, id, channel, group_key, rank, status, not_before, cost, error)
                     SELECT $1, $2, id, channel, group_key, rank,
                         CASE WHEN status = 'queued' AND not_before = 0 THEN 'fresh' ELSE status END,
                         not_before, cost, error FROM src
                     RETURNING id, status)
                 SELECT min(id) FILTER (WHERE status = 'fresh'), max(id) FILTER (WHERE status = 'fresh') FROM stored",
            )
            .bind(self.occurrence_id)
            .bind(self.now)
            .bind(c.key)
            .bind(c.recipient)
            .bind(c.address)
            .bind(c.booking)
            .bind(c.units)
            .bind(c.subject)
            .bind(c.text)
            .bind(c.html)
            .bind(c.image)
            .bind(c.channel)
            .bind(c.group)
            .bind(c.rank)
            .bind(c.status)
            .bind(c.not_before)
            .bind(c.cost)
            .bind(c.error)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(db)?;
            if let (Some(first), Some(last)) = (first, last) {
                self.fresh = Some((self.fresh.map_or(first, |(before, _)| before), last));
            }
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<u64, StoreError> {
        let repeated = if self.keys.unique() {
            0
        } else {
            // A later entry is dropped by key, and, for a priority group (whose every entry
            // starts at rank 0), whole: its other channels must not stand in for the first's.
            sqlx::query(
                "UPDATE deliveries SET status = 'skipped', error = $2, updated_at = $3 WHERE id IN (
                     SELECT id FROM (
                         SELECT m.id, row_number() OVER (PARTITION BY m.delivery_key ORDER BY m.id) AS nth
                         FROM deliveries d JOIN messages m ON m.id = d.id WHERE d.occurrence_id = $1) k WHERE nth > 1
                     UNION
                     SELECT id FROM (
                         SELECT id, sum((rank = 0)::int) OVER (PARTITION BY group_key ORDER BY id) AS entry
                         FROM deliveries WHERE occurrence_id = $1) g WHERE entry > 1)",
            )
            .bind(self.occurrence_id)
            .bind(LISTED_AGAIN)
            .bind(self.now)
            .execute(&mut *self.tx)
            .await
            .map_err(db)?
            .rows_affected()
        };
        // Claims look for fresh rows from the first one's id on, up to the last one's.
        let (first, last) = self.fresh.unwrap_or((1, 0));
        sqlx::query(
            "UPDATE occurrences SET state = 'frozen', claimed_to = $2 - 1, fresh_to = $3 WHERE id = $1",
        )
        .bind(self.occurrence_id)
        .bind(first)
        .bind(last)
            .execute(&mut *self.tx)
            .await
            .map_err(db)?;
        self.tx.commit().await.map_err(db)?;
        Ok(repeated)
    }
}
