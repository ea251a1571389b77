//! The SQLite journal against the store contract's conformance suite.

use std::sync::Arc;

use rassylka_sqlite::SqliteStore;
use rassylka_store::Store;
use rassylka_store::prelude::*;

async fn fresh() -> Option<Arc<dyn Store>> {
    Some(Arc::new(SqliteStore::temporary().await.unwrap()))
}

mod conformance {
    rassylka_store::conformance_tests!(super::fresh);
}

#[tokio::test]
async fn a_journal_of_version_4_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    SqliteStore::open(&path)
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    let pool =
        sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&path))
            .await
            .unwrap();
    sqlx::raw_sql("DROP TABLE notice_refusals; PRAGMA user_version = 4;")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let migrated = SqliteStore::open(&path).await.unwrap();
    let refusal = rassylka_store::NoticeRefusal {
        event_id: "ev-1".into(),
        event: "personal".into(),
        recipient_id: "c-1".into(),
        user: "u-7".into(),
        role: "seller".into(),
        department: Some("salon-1".into()),
        reason: "the role seller may not send bonus_accrued".into(),
        at: chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap(),
    };
    migrated.record_refusal(&refusal).await.unwrap();
    assert_eq!(migrated.refusals(None).await.unwrap(), vec![refusal]);
}

#[tokio::test]
async fn a_journal_of_another_schema_version_is_refused_and_ours_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .create_mailing(&rassylka_store::MailingRecord {
            id: "m-1".into(),
            json: "{}".into(),
            state: rassylka_store::MailingState::Draft,
            version: 1,
            checked_at: None,
            paused_until: None,
            reason: None,
        })
        .await
        .unwrap();
    drop(store);
    let reopened = SqliteStore::open(&path).await.unwrap();
    assert!(reopened.mailing("m-1").await.unwrap().is_some());
    drop(reopened);

    let old = dir.path().join("old.db");
    let pool = sqlx::SqlitePool::connect_with(
        sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&old)
            .create_if_missing(true),
    )
    .await
    .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE deliveries (id INTEGER PRIMARY KEY, status TEXT); PRAGMA user_version = 1;",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let refused = SqliteStore::open(&old).await.unwrap_err();
    let mut refused_chain = refused.to_string();
    let mut source = std::error::Error::source(&refused);
    while let Some(cause) = source {
        refused_chain.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    let refused = refused_chain;
    assert!(
        refused.contains("schema version 1") && refused.contains("reads 5"),
        "{refused}"
    );
}
