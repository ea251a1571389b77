//! Journals the benches read: one occurrence of `n` rows frozen and settled through the
//! store itself, so preparing a million rows takes seconds, not a whole mailing's run.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use rassylka::SqliteStore;
use rassylka::store::prelude::*;
use rassylka::store::{
    Delivery, Fence, GroupEffect, Lease, MailingRecord, MailingState, NewDelivery, NewOccurrence,
    OccurrenceStart, OccurrenceState, Outcome, Settle,
};

/// Writes a fresh SQLite journal at `path`: mailing `mailing_id` (`mailing_json`) with one
/// occurrence fired at `fired_at`, its `n` deliveries made by `delivery`, every queued one
/// claimed and settled as `outcome` says.
///
/// # Panics
/// When the journal cannot be written: a bench has nothing to measure then.
pub async fn prepare_journal(
    path: &Path,
    mailing_id: &str,
    mailing_json: &str,
    fired_at: DateTime<Utc>,
    n: usize,
    delivery: impl Fn(usize) -> NewDelivery,
    outcome: impl Fn(&Delivery) -> Outcome,
) {
    let _ = std::fs::remove_file(path);
    let store = SqliteStore::open(path).await.unwrap();
    store
        .create_mailing(&MailingRecord {
            id: mailing_id.into(),
            json: mailing_json.into(),
            state: MailingState::Queued,
            version: 1,
            checked_at: None,
            paused_until: None,
            reason: None,
        })
        .await
        .unwrap();
    let start = store
        .start_occurrence(&NewOccurrence {
            mailing_id: mailing_id.into(),
            key: format!("{mailing_id}/v1/2026-11-22T10:00"),
            fired_at,
            evaluation_date: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
            state: OccurrenceState::Freezing,
        })
        .await
        .unwrap();
    let (OccurrenceStart::Created(o) | OccurrenceStart::Existing(o)) = start;
    let mut freeze = store.begin_freeze(o.id, fired_at).await.unwrap().unwrap();
    for first in (0..n).step_by(10_000) {
        freeze
            .write((first..n.min(first + 10_000)).map(&delivery).collect())
            .await
            .unwrap();
    }
    freeze.commit().await.unwrap();
    let lease = Lease {
        worker: "bench".into(),
        length: Duration::from_secs(600),
    };
    loop {
        let claimed = store.claim(o.id, &lease, fired_at, 10_000).await.unwrap();
        if claimed.is_empty() {
            break;
        }
        let results: Vec<Settle> = claimed
            .iter()
            .map(|d| Settle {
                id: d.id,
                attempt: d.attempts,
                outcome: outcome(d),
                then: GroupEffect::Nothing,
            })
            .collect();
        store
            .record(o.id, Fence::Holder("bench"), &results, fired_at)
            .await
            .unwrap();
    }
    store.close().await.unwrap();
}
