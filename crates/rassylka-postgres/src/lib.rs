//! The journal of rassylka on PostgreSQL: the store contract of `rassylka-store` for several
//! workers on several machines sharing one queue. The `rassylka` facade re-exports it as
//! `PgStore` behind its feature `postgres`; no sqlx type appears in its public API.
//!
//! ```no_run
//! use rassylka_postgres::{PgConfig, PgStore};
//! use rassylka_store::prelude::*;
//!
//! # async fn example() -> Result<(), rassylka_store::StoreError> {
//! let store = PgStore::connect("postgres://rassylka@127.0.0.1/journal", PgConfig::default()).await?;
//! for mailing in store.mailings().await? {
//!     println!("{} is {}", mailing.id, mailing.state);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Several workers
//! A delivery frozen due at once is claimed by batch: a claim takes the occurrence's next fresh
//! rows in id order and writes one batch row (worker, lease) for them instead of writing each
//! row, under the occurrence's row lock (taken before the claim's statement, held to its
//! commit); each row is written once, with its result, in place: the queue's indexes name
//! their rows by a generated `lane`, NULL for a fresh row and a settled one alike, and pages
//! are left half empty, so PostgreSQL keeps the new version on its page without an index
//! entry. A claim finds fresh rows by id, between the occurrence's `claimed_to` and its last fresh row, a few
//! batches' worth of ids per statement whatever the planner guesses. Rows queued otherwise (a
//! later send window, a retry, a fallback) are claimed one by one with `FOR UPDATE SKIP
//! LOCKED`, skipping rows another worker is locking. A lease is a deadline on the **server's**
//! clock, so workers on several machines agree. Results are fenced by holder and attempt;
//! expired leases are recovered by any worker; a freeze holds its occurrence's row lock until
//! it commits, so the others wait and then find it frozen. Sessions commit synchronously
//! whatever the server's default, so a claim survives a server crash before its message is
//! sent. The schema is created by the first worker (an advisory lock makes the others wait) and
//! versioned in `rassylka_schema`; a newer version is refused.
//!
//! # Features
//! None.

mod batches;
mod consent;
mod contacts;
mod freeze;
mod history;
mod notices;
mod queue;
mod rows;
mod schema;
mod store;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use queue::ClaimCursors;
use rassylka_store::StoreError;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// How a [`PgStore`] connects.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// Connections in the pool (default 8): a worker uses a few at once (a freeze, a claim, a
    /// renewal, reads).
    pub pool_size: u32,
    /// How long to wait for a connection, or for the server at start (default 30 s).
    pub connect_timeout: Duration,
    /// A schema to keep the journal in, created if missing (default: the `search_path`'s).
    pub schema: Option<String>,
}

impl Default for PgConfig {
    fn default() -> Self {
        PgConfig {
            pool_size: 8,
            connect_timeout: Duration::from_secs(30),
            schema: None,
        }
    }
}

/// The journal on PostgreSQL: a pool of connections to one database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    cursors: Arc<ClaimCursors>,
    /// Renewals of this process take turns: two at once (the background one, and a worker's
    /// own after a stall) would each skip the rows the other is locking and count too few.
    renewing: Arc<tokio::sync::Mutex<()>>,
}

/// A sqlx failure as the contract's error, its cause in the message (never the URL).
pub(crate) fn db(e: sqlx::Error) -> StoreError {
    let unavailable = match &e {
        sqlx::Error::Database(d) => matches!(
            d.code().as_deref(),
            // Shutdown, crash, too many connections, cannot connect now, a lock not had in time.
            Some("57P01" | "57P02" | "57P03" | "53300" | "08000" | "08003" | "08006" | "55P03")
        ),
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_) => true,
        _ => false,
    };
    let conflict = matches!(&e, sqlx::Error::Database(d)
        if matches!(d.code().as_deref(), Some("40001" | "40P01")));
    let message = format!("postgres: {e}");
    let error = if unavailable {
        StoreError::unavailable(message)
    } else if conflict {
        StoreError::conflict(message)
    } else {
        StoreError::backend(message)
    };
    error.with_source(e)
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`) and
    /// creates or checks the journal's tables.
    ///
    /// # Errors
    /// When the URL is not one, the server cannot be reached, or the journal has a newer
    /// schema version.
    pub async fn connect(url: &str, config: PgConfig) -> Result<PgStore, StoreError> {
        let not_a_url = || StoreError::backend("postgres: the --db URL is not a postgres:// URL");
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(not_a_url());
        }
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| not_a_url())?
            .application_name("rassylka");
        let schema = config.schema.clone();
        if let Some(name) = &schema
            && !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(StoreError::backend(format!(
                "postgres: schema `{name}` must be letters, digits and `_`"
            )));
        }
        // A claim must be on disk before its message goes out: with the server's commits
        // asynchronous, a server crash could forget a claim whose message was sent, and the
        // next run would send it again. So this store's sessions always commit synchronously.
        let options = options.options([("synchronous_commit", "on")]);
        let options = match &schema {
            Some(name) => options.options([("search_path", name.as_str())]),
            None => options,
        };
        let pool = PgPoolOptions::new()
            .max_connections(config.pool_size.max(2))
            .acquire_timeout(config.connect_timeout)
            .connect_with(options)
            .await
            .map_err(db)?;
        let mut tx = pool.begin().await.map_err(db)?;
        // Workers starting at once take turns creating the schema and its tables.
        schema::lock(&mut tx).await?;
        if let Some(name) = &schema {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS \"{name}\""
            )))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        schema::migrate(&mut tx).await?;
        tx.commit().await.map_err(db)?;
        Ok(PgStore {
            pool,
            cursors: Arc::default(),
            renewing: Arc::default(),
        })
    }

    /// Runs one statement of the operator's (a migration by hand, a repair) on the journal's
    /// connection, in its schema.
    ///
    /// # Errors
    /// What the server says of it.
    pub async fn raw_execute(&self, statement: &str) -> Result<u64, StoreError> {
        Ok(sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(&self.pool)
            .await
            .map_err(db)?
            .rows_affected())
    }

    /// Closes the pool's connections.
    ///
    /// # Errors
    /// Never; the signature matches the other stores.
    pub async fn close(&self) -> Result<(), StoreError> {
        self.pool.close().await;
        Ok(())
    }
}
