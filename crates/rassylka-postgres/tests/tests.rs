//! The PostgreSQL journal against the store contract's conformance suite, on a real server:
//! `RASSYLKA_TEST_PG` names a database (`postgres://user@127.0.0.1:5432/db`); each check gets
//! a schema of its own. Without it the checks are skipped with one line saying how to run
//! them (`.ci/run` starts a throwaway cluster and sets it).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rassylka_postgres::{PgConfig, PgStore};
use rassylka_store::Store;
use rassylka_store::prelude::*;

/// A schema name no other check (or earlier run) uses.
fn fresh_schema() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "t_{}_{nanos}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn url() -> Option<String> {
    match std::env::var("RASSYLKA_TEST_PG") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            say_skipped();
            None
        }
    }
}

async fn connect(schema: Option<String>) -> Option<PgStore> {
    let config = PgConfig {
        schema,
        ..PgConfig::default()
    };
    Some(PgStore::connect(&url()?, config).await.unwrap())
}

async fn fresh() -> Option<Arc<dyn Store>> {
    Some(Arc::new(connect(Some(fresh_schema())).await?))
}

mod conformance {
    rassylka_store::conformance_tests!(super::fresh);
}

#[tokio::test]
async fn a_journal_of_a_newer_schema_version_is_refused_and_ours_reopens() {
    let schema = fresh_schema();
    let Some(store) = connect(Some(schema.clone())).await else {
        return;
    };
    assert!(store.mailings().await.unwrap().is_empty());
    store.close().await.unwrap();
    let reopened = connect(Some(schema.clone())).await.unwrap();
    assert!(reopened.mailings().await.unwrap().is_empty());
    reopened.close().await.unwrap();
    let admin = sqlx_free_admin(&schema).await;
    admin.close().await.unwrap();
    let refused = PgStore::connect(
        &url().unwrap(),
        PgConfig {
            schema: Some(schema),
            ..PgConfig::default()
        },
    )
    .await
    .unwrap_err();
    assert!(
        refused.to_string().contains("schema version 99")
            && refused.to_string().contains("reads 5"),
        "{refused}"
    );
}

/// Takes a journal of the current version back to version 4, as version 4 created it: the
/// queue's indexes on `status` and the index of fresh rows, no `lane`, no `fresh_to`.
const BACK_TO_V4: &str = "
    ALTER TABLE deliveries DROP COLUMN lane; ALTER TABLE occurrences DROP COLUMN fresh_to;
    ALTER TABLE deliveries RESET (fillfactor);
    CREATE INDEX deliveries_queue ON deliveries (occurrence_id, not_before, id) WHERE status = 'queued';
    CREATE INDEX deliveries_sending ON deliveries (occurrence_id, lease_until) WHERE status = 'sending';
    CREATE INDEX deliveries_standby ON deliveries (occurrence_id, group_key, rank) WHERE status = 'standby';
    CREATE INDEX deliveries_fresh ON deliveries (occurrence_id, id) WHERE status = 'fresh';
    DELETE FROM rassylka_schema; INSERT INTO rassylka_schema (version) VALUES (4);";

#[tokio::test]
async fn a_journal_of_version_1_is_migrated() {
    let schema = fresh_schema();
    let Some(store) = connect(Some(schema.clone())).await else {
        return;
    };
    store
        .raw_execute(&format!(
            "{BACK_TO_V4}
             DROP VIEW delivery_rows; DROP TABLE claim_batches; DROP INDEX deliveries_fresh; ALTER TABLE occurrences DROP COLUMN claimed_to;
             DROP TABLE notice_refusals; DROP TABLE secrets; DROP TABLE unsubscribes; DROP INDEX messages_recipient;
             DELETE FROM rassylka_schema; INSERT INTO rassylka_schema (version) VALUES (1)",
        ))
        .await
        .unwrap();
    store.close().await.unwrap();
    let migrated = connect(Some(schema)).await.unwrap();
    let refusal = rassylka_store::NoticeRefusal {
        event_id: "ev-1".into(),
        event: "personal".into(),
        recipient_id: "c-1".into(),
        user: "u-7".into(),
        role: "seller".into(),
        department: None,
        reason: "the role seller may not send bonus_accrued".into(),
        at: chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap(),
    };
    migrated.record_refusal(&refusal).await.unwrap();
    assert_eq!(migrated.refusals(None).await.unwrap(), vec![refusal]);
    migrated.close().await.unwrap();
}

/// Occurrence `key` of mailing `m-1` (created with it if missing), about to be frozen.
async fn occurrence(store: &PgStore, key: &str) -> rassylka_store::OccurrenceRecord {
    use rassylka_store::conformance::now;
    use rassylka_store::{
        MailingRecord, MailingState, NewOccurrence, OccurrenceStart, OccurrenceState,
    };
    let record = MailingRecord {
        id: "m-1".into(),
        json: "{}".into(),
        state: MailingState::Draft,
        version: 1,
        checked_at: None,
        paused_until: None,
        reason: None,
    };
    let _ = store.create_mailing(&record).await.unwrap();
    let start = store
        .start_occurrence(&NewOccurrence {
            mailing_id: "m-1".into(),
            key: key.into(),
            fired_at: now(),
            evaluation_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 18).unwrap(),
            state: OccurrenceState::Freezing,
        })
        .await
        .unwrap();
    let (OccurrenceStart::Created(o) | OccurrenceStart::Existing(o)) = start;
    o
}

/// An occurrence of mailing `m-1` frozen with `n` telegram deliveries (due at once: fresh).
async fn frozen_occurrence(store: &PgStore, n: usize) -> rassylka_store::OccurrenceRecord {
    use rassylka_store::conformance::{delivery, now};
    let o = occurrence(store, "m-1/o").await;
    let mut freeze = store.begin_freeze(o.id, now()).await.unwrap().unwrap();
    freeze
        .write(
            (0..n)
                .map(|i| delivery("m-1/o", &format!("c-{i}")))
                .collect(),
        )
        .await
        .unwrap();
    freeze.commit().await.unwrap();
    o
}

/// Results of the rows `old` claimed before a migration: refused from another worker, written
/// from `old`; then all `total` rows of the occurrence are sent and it finishes.
async fn old_claims_stay_fenced(
    migrated: &Arc<dyn Store>,
    occurrence_id: i64,
    late: &[rassylka_store::Settle],
    total: u64,
) {
    use rassylka_store::Fence;
    use rassylka_store::conformance::now;
    let refused = migrated
        .record(occurrence_id, Fence::Holder("new"), late, now())
        .await
        .unwrap();
    assert_eq!(refused.refused.len(), late.len());
    let written = migrated
        .record(occurrence_id, Fence::Holder("old"), late, now())
        .await
        .unwrap();
    assert!(written.refused.is_empty());
    assert_eq!(migrated.counts(occurrence_id).await.unwrap().sent, total);
    assert!(migrated.finish_occurrence(occurrence_id).await.unwrap());
}

/// Every batch of up to `limit` rows `lease` claims of the occurrence until a claim is empty.
async fn claim_all(
    store: &dyn Store,
    occurrence_id: i64,
    lease: &rassylka_store::Lease,
    limit: usize,
) -> Vec<rassylka_store::Delivery> {
    let mut claimed = Vec::new();
    loop {
        let batch = store
            .claim(
                occurrence_id,
                lease,
                rassylka_store::conformance::now(),
                limit,
            )
            .await
            .unwrap();
        assert!(batch.len() <= limit);
        if batch.is_empty() {
            return claimed;
        }
        claimed.extend(batch);
    }
}

/// A result saying `d` was sent, at the attempt it was claimed for.
fn sent(d: &rassylka_store::Delivery) -> rassylka_store::Settle {
    rassylka_store::Settle {
        id: d.id,
        attempt: d.attempts,
        outcome: rassylka_store::Outcome::Sent {
            provider_id: None,
            cost: None,
        },
        then: rassylka_store::GroupEffect::Nothing,
    }
}

/// A version 3 journal mid-send (rows queued and rows sending, claimed one by one as version 3
/// did) is migrated, and its rows are claimed, fenced and finished as before.
#[tokio::test]
async fn a_version_3_journal_mid_send_is_migrated_and_finished() {
    use rassylka_store::conformance::now;
    use rassylka_store::{Delivery, DeliveryStatus, Fence, Lease, Settle};
    let schema = fresh_schema();
    let Some(store) = connect(Some(schema.clone())).await else {
        return;
    };
    let o = frozen_occurrence(&store, 5).await;
    // As version 3 wrote them: two rows sending under worker `old`, three queued.
    store
        .raw_execute(&format!(
            "{BACK_TO_V4}
             UPDATE deliveries SET status = 'queued' WHERE occurrence_id = {id};
             UPDATE deliveries SET status = 'sending', attempts = 1, worker = 'old',
                 lease_until = (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT + 600000
             WHERE id IN (SELECT id FROM deliveries WHERE occurrence_id = {id} ORDER BY id LIMIT 2);
             DROP VIEW delivery_rows; DROP TABLE claim_batches; DROP INDEX deliveries_fresh;
             ALTER TABLE occurrences DROP COLUMN claimed_to;
             DELETE FROM rassylka_schema; INSERT INTO rassylka_schema (version) VALUES (3)",
            id = o.id
        ))
        .await
        .unwrap();
    store.close().await.unwrap();
    let migrated: Arc<dyn Store> = Arc::new(connect(Some(schema)).await.unwrap());
    let counts = migrated.counts(o.id).await.unwrap();
    assert_eq!((counts.sending, counts.queued), (2, 3));
    let lease = Lease {
        worker: "new".into(),
        length: std::time::Duration::from_secs(60),
    };
    let claimed = migrated.claim(o.id, &lease, now(), 10).await.unwrap();
    assert_eq!(claimed.len(), 3, "the queued rows, not the old worker's");
    let results: Vec<Settle> = claimed.iter().map(sent).collect();
    let recorded = migrated
        .record(o.id, Fence::Holder("new"), &results, now())
        .await
        .unwrap();
    assert!(recorded.refused.is_empty());
    // The old worker's rows are still its own: its results are written, another's refused.
    let old: Vec<Delivery> = migrated
        .deliveries(o.id, 0, 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.planned.status == DeliveryStatus::Sending)
        .collect();
    assert_eq!(old.len(), 2);
    let late: Vec<Settle> = old.iter().map(sent).collect();
    old_claims_stay_fenced(&migrated, o.id, &late, 5).await;
}

/// A version 4 journal mid-send (one batch of fresh rows claimed, the others not yet) is
/// migrated: the claimed batch stays its worker's, and the rest is claimed by id as version 5
/// claims.
#[tokio::test]
async fn a_version_4_journal_mid_send_is_migrated_and_finished() {
    use rassylka_store::conformance::now;
    use rassylka_store::{Fence, Lease, Settle};
    let schema = fresh_schema();
    let Some(store) = connect(Some(schema.clone())).await else {
        return;
    };
    let o = frozen_occurrence(&store, 7).await;
    let old = Lease {
        worker: "old".into(),
        length: std::time::Duration::from_secs(600),
    };
    let held = store.claim(o.id, &old, now(), 2).await.unwrap();
    assert_eq!(held.len(), 2);
    store.raw_execute(BACK_TO_V4).await.unwrap();
    store.close().await.unwrap();
    let migrated: Arc<dyn Store> = Arc::new(connect(Some(schema)).await.unwrap());
    let counts = migrated.counts(o.id).await.unwrap();
    assert_eq!((counts.sending, counts.queued), (2, 5));
    assert_eq!(migrated.sending(o.id).await.unwrap(), 2);
    let lease = Lease {
        worker: "new".into(),
        length: std::time::Duration::from_secs(60),
    };
    let claimed = claim_all(migrated.as_ref(), o.id, &lease, 2).await;
    assert_eq!(
        claimed.len(),
        5,
        "the fresh rows not claimed before, not the old worker's"
    );
    assert!(claimed.iter().all(|d| !held.iter().any(|h| h.id == d.id)));
    let results: Vec<Settle> = claimed.iter().map(sent).collect();
    let recorded = migrated
        .record(o.id, Fence::Holder("new"), &results, now())
        .await
        .unwrap();
    assert!(recorded.refused.is_empty());
    assert!(
        !migrated.finish_occurrence(o.id).await.unwrap(),
        "two rows are still sending"
    );
    let late: Vec<Settle> = held.iter().map(sent).collect();
    old_claims_stay_fenced(&migrated, o.id, &late, 7).await;
}

/// Two occurrences frozen at the same time draw their ids from one sequence in turns, and one
/// of them has fallback rows between its fresh ones: claims of each, however small, take all of
/// its fresh rows in id order and none of the other's, also past a stretch of ids with no fresh
/// row of its own.
#[tokio::test]
async fn claims_find_fresh_rows_among_the_ids_of_another_freeze() {
    use rassylka_store::conformance::{delivery, now};
    use rassylka_store::{DeliveryStatus, Lease};
    let Some(store) = connect(Some(fresh_schema())).await else {
        return;
    };
    let occurrences = [
        occurrence(&store, "m-1/a").await,
        occurrence(&store, "m-1/b").await,
    ];
    let (a, b) = (&occurrences[0], &occurrences[1]);
    let mut freeze_a = store.begin_freeze(a.id, now()).await.unwrap().unwrap();
    let mut freeze_b = store.begin_freeze(b.id, now()).await.unwrap().unwrap();
    // `a`: three fresh rows, then five of `b`, then two fresh rows of `a` each with a
    // fallback row behind it, then five of `b` again.
    let entries = |key: &str, from: usize, n: usize| -> Vec<_> {
        (from..from + n)
            .map(|i| delivery(key, &format!("c-{i}")))
            .collect()
    };
    freeze_a.write(entries("m-1/a", 0, 3)).await.unwrap();
    freeze_b.write(entries("m-1/b", 0, 5)).await.unwrap();
    let mut grouped = Vec::new();
    for i in 3..5 {
        let first = delivery("m-1/a", &format!("c-{i}"));
        let mut fallback = delivery("m-1/a", &format!("c-{i}"));
        fallback.delivery_key = format!("m-1/a/c-{i}/sms");
        fallback.rank = 1;
        fallback.status = DeliveryStatus::Standby;
        grouped.extend([first, fallback]);
    }
    freeze_a.write(grouped).await.unwrap();
    freeze_b.write(entries("m-1/b", 5, 5)).await.unwrap();
    freeze_a.commit().await.unwrap();
    freeze_b.commit().await.unwrap();
    let lease = Lease {
        worker: "w".into(),
        length: std::time::Duration::from_secs(60),
    };
    for (o, limit, expected) in [(a, 1, 5), (b, 2, 10)] {
        let claimed = claim_all(&store, o.id, &lease, limit).await;
        assert_eq!(claimed.len(), expected);
        assert!(
            claimed
                .iter()
                .all(|d| d.occurrence_id == o.id && d.planned.rank == 0)
        );
        assert!(claimed.windows(2).all(|w| w[0].id < w[1].id));
        assert_eq!(store.sending(o.id).await.unwrap(), expected as u64);
        assert_eq!(store.counts(o.id).await.unwrap().queued, 0);
    }
}

/// A claim that waits for a freeze of its occurrence to commit (it holds the occurrence's row
/// lock) sees the rows the freeze wrote: it claims them rather than moving past them.
#[tokio::test]
async fn a_claim_waiting_for_a_freeze_claims_what_the_freeze_wrote() {
    use rassylka_store::Lease;
    use rassylka_store::conformance::{delivery, now};
    let Some(store) = connect(Some(fresh_schema())).await else {
        return;
    };
    let store = Arc::new(store);
    let o = occurrence(&store, "m-1/o").await;
    let mut freeze = store.begin_freeze(o.id, now()).await.unwrap().unwrap();
    freeze
        .write(
            (0..6)
                .map(|i| delivery("m-1/o", &format!("c-{i}")))
                .collect(),
        )
        .await
        .unwrap();
    let lease = Lease {
        worker: "w".into(),
        length: std::time::Duration::from_secs(60),
    };
    let waiting = {
        let (store, lease) = (Arc::clone(&store), lease.clone());
        tokio::spawn(async move { store.claim(o.id, &lease, now(), 2).await.unwrap() })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    freeze.commit().await.unwrap();
    let waited = waiting.await.unwrap();
    assert_eq!(
        waited.len(),
        2,
        "the claim waited for the freeze and took its first rows"
    );
    assert_eq!(claim_all(store.as_ref(), o.id, &lease, 2).await.len(), 4);
    assert_eq!(store.counts(o.id).await.unwrap().queued, 0);
}

/// A worker that wakes from a stall while another worker is settling its expired batch (the
/// server made slow by a trigger, so the recovery's transaction is open) does not count the
/// batch's rows as its own: it puts them back rather than sending them, and its results for
/// them are refused once recovery has written its own.
#[tokio::test]
async fn a_holder_waking_during_the_recovery_of_its_batch_does_not_count_its_rows() {
    use rassylka_store::conformance::now;
    use rassylka_store::{Fence, GroupEffect, Lease, Outcome, Settle};
    let Some(pg) = connect(Some(fresh_schema())).await else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    let o = frozen_occurrence(&pg, 4).await;
    let stalled = Lease {
        worker: "stalled".into(),
        length: std::time::Duration::from_millis(200),
    };
    let claimed = store.claim(o.id, &stalled, now(), 10).await.unwrap();
    assert_eq!(claimed.len(), 4);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    pg.raw_execute(
        "CREATE FUNCTION slow_write() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN PERFORM pg_sleep(0.15); RETURN NEW; END $$;
         CREATE TRIGGER slow_write BEFORE UPDATE ON deliveries FOR EACH ROW EXECUTE FUNCTION slow_write()",
    )
    .await
    .unwrap();
    let recoverer = store.clone();
    let recovery = tokio::spawn(async move {
        let expired = recoverer.expired(o.id, 100).await.unwrap();
        assert_eq!(expired.len(), 4);
        let unknown: Vec<Settle> = expired
            .iter()
            .map(|d| Settle {
                id: d.id,
                attempt: d.attempts,
                outcome: Outcome::Unknown {
                    error: "its worker's lease ran out".into(),
                },
                then: GroupEffect::Nothing,
            })
            .collect();
        recoverer
            .record(o.id, Fence::Expired, &unknown, now())
            .await
            .unwrap()
    });
    // The recovery's transaction is open (four slow writes, 0.6 s): the stalled worker wakes.
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    assert_eq!(
        store.renew(o.id, &stalled).await.unwrap(),
        0,
        "rows being recovered are not the stalled worker's any more"
    );
    assert!(recovery.await.unwrap().refused.is_empty());
    pg.raw_execute("DROP TRIGGER slow_write ON deliveries")
        .await
        .unwrap();
    let late: Vec<Settle> = claimed.iter().map(sent).collect();
    let recorded = store
        .record(o.id, Fence::Holder("stalled"), &late, now())
        .await
        .unwrap();
    assert_eq!(recorded.refused.len(), 4);
    assert_eq!(store.counts(o.id).await.unwrap().unknown, 4);
}

/// Marks the schema as written by a future version, through the store's own connection.
async fn sqlx_free_admin(schema: &str) -> PgStore {
    let store = connect(Some(schema.to_owned())).await.unwrap();
    store
        .raw_execute("INSERT INTO rassylka_schema (version) VALUES (99)")
        .await
        .unwrap();
    store
}

#[tokio::test]
async fn a_bad_url_or_an_absent_server_is_a_clear_error() {
    let refused = PgStore::connect("mysql://nope", PgConfig::default())
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("not a postgres:// URL"),
        "{refused}"
    );
    let config = PgConfig {
        connect_timeout: std::time::Duration::from_secs(2),
        ..PgConfig::default()
    };
    // A port nothing listens on.
    let absent = PgStore::connect("postgres://rassylka@127.0.0.1:9/journal", config)
        .await
        .unwrap_err();
    assert!(absent.is_transient(), "{absent}");
    assert!(absent.to_string().starts_with("postgres: "), "{absent}");
}

/// Says once, past the test harness's capture, that the PostgreSQL tests did not run.
fn say_skipped() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "PostgreSQL tests skipped: set RASSYLKA_TEST_PG=postgres://user@host:port/db (or run .ci/run, which starts a server) to run them"
        );
    });
}
