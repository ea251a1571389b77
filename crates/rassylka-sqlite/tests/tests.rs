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
    sqlx::raw_sql(
        "DROP TABLE notice_refusals; DROP TABLE secrets; DROP TABLE unsubscribes;
         DROP INDEX messages_recipient; PRAGMA user_version = 4;",
    )
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
    assert_eq!(migrated.keep_secret("s", b"kept").await.unwrap(), b"kept");
    assert!(migrated.unsubscribes(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_version_5_journal_read_read_only_has_no_unsubscribes_and_is_left_alone() {
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
    sqlx::raw_sql(
        "DROP TABLE secrets; DROP TABLE unsubscribes; DROP INDEX messages_recipient;
         PRAGMA user_version = 5;",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let read = SqliteStore::open_read_only(&path).await.unwrap();
    assert!(read.unsubscribes(None).await.unwrap().is_empty());
    assert!(read.unsubscribed_among(&["c-1"]).await.unwrap().is_empty());
    assert!(read.reached_in(&[1], &["c-1"]).await.unwrap().is_empty());
    assert!(read.addresses("m-1", "c-1").await.unwrap().is_empty());
    assert_eq!(read.kept_secret("s").await.unwrap(), None);
    assert_eq!(read.keep_secret("s", b"passing").await.unwrap(), b"passing");
    drop(read);
    let pool =
        sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&path))
            .await
            .unwrap();
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(version, 5, "a read migrates nothing");
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
        refused.contains("schema version 1") && refused.contains("reads 6"),
        "{refused}"
    );
}

#[tokio::test]
async fn an_empty_or_damaged_file_is_refused_with_the_cause_never_taken_for_a_new_journal() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let refused = SqliteStore::open(&empty).await.unwrap_err().to_string();
    assert!(refused.contains("the journal file is empty"), "{refused}");
    assert_eq!(
        std::fs::metadata(&empty).unwrap().len(),
        0,
        "nothing written"
    );
    let read = SqliteStore::open_read_only(&empty)
        .await
        .unwrap_err()
        .to_string();
    assert!(read.contains("the journal file is empty"), "{read}");

    let damaged = dir.path().join("damaged.db");
    std::fs::write(&damaged, vec![0x5a_u8; 64 * 1024]).unwrap();
    let refused = SqliteStore::open(&damaged).await.unwrap_err().to_string();
    assert!(refused.contains("file is not a database"), "{refused}");
    let read = SqliteStore::open_read_only(&damaged)
        .await
        .unwrap_err()
        .to_string();
    assert!(read.contains("file is not a database"), "{read}");

    let missing = SqliteStore::open_read_only(dir.path().join("missing.db"))
        .await
        .unwrap_err();
    assert!(
        missing.to_string().contains("no such journal file"),
        "{missing}"
    );
    assert!(
        !dir.path().join("missing.db").exists(),
        "a read creates nothing"
    );
}

#[tokio::test]
async fn a_closed_journal_reads_through_a_read_only_handle_that_writes_nothing() {
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
    store.close().await.unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let reader = SqliteStore::open_read_only(&path).await.unwrap();
    assert!(reader.mailing("m-1").await.unwrap().is_some());
    let write = reader
        .mark_unreachable("c-1", rassylka_model::ChannelKind::Sms, "gone")
        .await
        .unwrap_err();
    assert!(write.to_string().contains("readonly"), "{write}");
    reader.close().await.unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the file is as it was"
    );
}
