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
        refused.contains("schema version 1") && refused.contains("reads 4"),
        "{refused}"
    );
}
