//! The embedded journal of rassylka: the store contract of `rassylka-store` on one SQLite
//! file in WAL mode. The `rassylka` facade re-exports it as `SqliteStore` behind its default
//! feature `sqlite`; no sqlx type appears in its public API.
//!
//! ```
//! use rassylka_sqlite::SqliteStore;
//! use rassylka_store::{MailingRecord, MailingState, MailingStore};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! runtime.block_on(async {
//!     let store = SqliteStore::temporary().await?;
//!     let draft = MailingRecord {
//!         id: "m-1".into(), json: "{}".into(), state: MailingState::Draft, version: 1,
//!         checked_at: None, paused_until: None, reason: None,
//!     };
//!     assert!(store.create_mailing(&draft).await?);
//!     assert_eq!(store.mailing("m-1").await?.map(|m| m.state), Some(MailingState::Draft));
//!     store.close().await?;
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! # Ok(())
//! # }
//! ```
//!
//! # Several processes on one file
//! Several dispatcher processes may share one journal file, under the same lease rules as on
//! PostgreSQL: SQLite serialises writers (a busy timeout of 60 s), a claim reads and marks its
//! rows in one write transaction under the worker's lease, results are fenced by holder and
//! attempt, and only rows whose lease ran out on the wall clock are recovered. An audience is
//! frozen in one write transaction, so other processes wait for it (about 3 s per million
//! recipients here) and then find the occurrence frozen.
//!
//! # Features
//! None.

mod consent;
mod contacts;
mod freeze;
mod history;
mod notices;
mod queue;
mod rows;
mod schema;
mod store;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rassylka_store::StoreError;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::schema::{CONSENT_VERSION, READABLE_VERSIONS, SCHEMA, SCHEMA_VERSION};

/// An existing journal file of zero bytes is not a journal: SQLite would quietly start a new
/// one in it, and a run would then send everything again. Another process may have created it
/// this very moment and be writing its first page, so it gets a short while to grow.
async fn refuse_an_empty_file(path: &Path) -> Result<(), StoreError> {
    let empty = || std::fs::metadata(path).is_ok_and(|m| m.len() == 0);
    let started = std::time::Instant::now();
    while empty() {
        if started.elapsed() > Duration::from_secs(2) {
            return Err(StoreError::invalid(format!(
                "{}: the journal file is empty (0 bytes), not a journal; remove it to start a new journal",
                path.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// The embedded journal: one SQLite file in WAL mode (its `-wal` file belongs to it).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The one connection this process writes through: SQLite drops a connection's page cache
    /// whenever another connection wrote, so writes taking turns over several connections
    /// would read the queue's pages again for every batch.
    writer: SqlitePool,
    /// Writers of this process take turns here: SQLite would make them poll its lock,
    /// sleeping up to tens of milliseconds each time they collide.
    writing: Arc<tokio::sync::Mutex<()>>,
    /// Worker names and their numbers in the journal, as looked up.
    workers: Arc<std::sync::Mutex<std::collections::HashMap<String, i64>>>,
    /// The folder of a temporary journal, removed with the last handle.
    _temporary: Option<Arc<TempDirGuard>>,
    /// Opened for reading only: closing moves nothing.
    read_only: bool,
    /// The journal has the consent tables (false only for an older journal read read-only).
    consent_tables: bool,
}

/// Removes a temporary journal's folder when dropped.
#[derive(Debug)]
struct TempDirGuard(std::path::PathBuf);

impl Drop for TempDirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A sqlx failure as the contract's error, its cause in the message.
pub(crate) fn db(e: sqlx::Error) -> StoreError {
    let busy = match &e {
        sqlx::Error::Database(d) => matches!(d.code().as_deref(), Some("5" | "6" | "517")),
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        _ => false,
    };
    let message = format!("sqlite: {e}");
    let error = if busy {
        StoreError::unavailable(message)
    } else {
        StoreError::backend(message)
    };
    error.with_source(e)
}

impl SqliteStore {
    /// Opens (creating if needed) the journal file at `path`.
    ///
    /// # Errors
    /// When the file cannot be opened, is not a journal, or has another schema version.
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        refuse_an_empty_file(path.as_ref()).await?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL with NORMAL is durable against process crashes (kill -9), which is the
            // failure the journal must survive; FULL would add an fsync per commit.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(60))
            // 16 MB of page cache per connection keeps the queue index and recent rows in
            // memory without letting memory grow with the journal.
            .pragma("cache_size", "-16384")
            .page_size(8192)
            // Fewer, larger checkpoints while a big audience is written.
            .pragma("wal_autocheckpoint", "8192")
            // Statement and savepoint journals (every multi-row update writes one) stay in
            // memory instead of spilling to a temporary file through system calls.
            .pragma("temp_store", "memory");
        SqliteStore::connect(options, None).await
    }

    /// Opens the journal file at `path` for reading only (history, journal views, export):
    /// works on a read-only file, creates nothing, and refuses what is not a journal.
    ///
    /// # Errors
    /// When the file is missing, empty, not a journal, or has another schema version.
    pub async fn open_read_only(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(StoreError::invalid(format!(
                "{}: no such journal file",
                path.display()
            )));
        }
        refuse_an_empty_file(path).await?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .busy_timeout(Duration::from_secs(60));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .map_err(db)?;
        let writer = pool.clone();
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&pool)
            .await
            .map_err(db)?;
        if version != SCHEMA_VERSION && !READABLE_VERSIONS.contains(&version) {
            return Err(StoreError::invalid(format!(
                "the journal has schema version {version}, this version of rassylka reads {SCHEMA_VERSION}"
            )));
        }
        Ok(SqliteStore {
            pool,
            writer,
            writing: Arc::default(),
            workers: Arc::default(),
            _temporary: None,
            read_only: true,
            consent_tables: version >= CONSENT_VERSION,
        })
    }

    /// A private journal in a temporary folder, removed when the last handle is dropped: for
    /// tests and previews. (A file rather than `:memory:`, so that reads can go on beside a
    /// freeze as they do on a real journal.)
    ///
    /// # Errors
    /// When the temporary folder or SQLite cannot be set up.
    pub async fn temporary() -> Result<SqliteStore, StoreError> {
        let dir =
            std::env::temp_dir().join(format!("rassylka-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| StoreError::backend(format!("{}: {e}", dir.display())).with_source(e))?;
        let guard = Arc::new(TempDirGuard(dir.clone()));
        let mut store = SqliteStore::open(dir.join("journal.db")).await?;
        store._temporary = Some(guard);
        Ok(store)
    }

    /// Connects and checks the schema, waiting while another process is doing the same: the
    /// switch to WAL and the schema's creation take locks SQLite does not wait for.
    async fn connect(
        options: SqliteConnectOptions,
        temporary: Option<Arc<TempDirGuard>>,
    ) -> Result<SqliteStore, StoreError> {
        let started = std::time::Instant::now();
        loop {
            match SqliteStore::connect_once(options.clone(), temporary.clone()).await {
                Err(e) if e.is_transient() && started.elapsed() < OPEN_PATIENCE => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => return other,
            }
        }
    }

    async fn connect_once(
        options: SqliteConnectOptions,
        temporary: Option<Arc<TempDirGuard>>,
    ) -> Result<SqliteStore, StoreError> {
        // A connection to a file in this process cannot be dropped by a server: the ping a
        // pool sends before lending one (a round trip to its thread) checks nothing here.
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(db)?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .test_before_acquire(false)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(db)?;
        let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        let tables: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'deliveries'",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        if version != SCHEMA_VERSION
            && !READABLE_VERSIONS.contains(&version)
            && (version != 0 || tables != 0)
        {
            return Err(StoreError::invalid(format!(
                "the journal has schema version {version}, this version of rassylka reads {SCHEMA_VERSION}"
            )));
        }
        sqlx::raw_sql(SCHEMA).execute(&mut *tx).await.map_err(db)?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "PRAGMA user_version = {SCHEMA_VERSION}"
        )))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(SqliteStore {
            pool,
            writer,
            writing: Arc::default(),
            workers: Arc::default(),
            _temporary: temporary,
            read_only: false,
            consent_tables: true,
        })
    }

    /// Moves everything from the `-wal` file into the journal file and closes the
    /// connections, so a copy of the journal file alone is whole. Other handles of this store
    /// cannot be used afterwards.
    ///
    /// # Errors
    /// When the checkpoint fails.
    pub async fn close(&self) -> Result<(), StoreError> {
        if !self.read_only {
            let _writing = self.writing.lock().await;
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.writer)
                .await
                .map_err(db)?;
        }
        self.pool.close().await;
        self.writer.close().await;
        Ok(())
    }
}

/// How long opening waits for other processes opening the same journal.
const OPEN_PATIENCE: Duration = Duration::from_secs(30);

/// A suffix that differs between calls in one process and between processes.
fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{nanos:x}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}
