//! The journal: the store contract of `rassylka-store` (re-exported whole) and the backends
//! behind this crate's features, and [`connect`] to open whichever a location names.

use std::sync::Arc;

pub use rassylka_store::*;

#[cfg(feature = "postgres")]
pub use rassylka_postgres::{PgConfig, PgStore};
#[cfg(feature = "sqlite")]
pub use rassylka_sqlite::SqliteStore;

/// Whether `location` names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// Opens the journal that `location` names for reading only (history, journal views,
/// export): a SQLite file is opened read-only (a read-only file works, nothing is created); a
/// `postgres://` URL as by [`connect`].
///
/// # Errors
/// When the journal cannot be opened, or names a backend this build lacks.
pub async fn connect_read_only(location: &str) -> Result<Arc<dyn Store>, StoreError> {
    if is_postgres_url(location) {
        return connect(location).await;
    }
    #[cfg(feature = "sqlite")]
    return Ok(Arc::new(SqliteStore::open_read_only(location).await?));
    #[cfg(not(feature = "sqlite"))]
    Err(StoreError::backend(
        "this build has no SQLite journal: enable rassylka's `sqlite` feature",
    ))
}

/// Opens the journal that `location` names: a `postgres://` URL (feature `postgres`) or the
/// path of a SQLite file (feature `sqlite`), created if missing.
///
/// # Errors
/// When the journal cannot be opened, or names a backend this build lacks.
pub async fn connect(location: &str) -> Result<Arc<dyn Store>, StoreError> {
    if is_postgres_url(location) {
        #[cfg(feature = "postgres")]
        return Ok(Arc::new(
            PgStore::connect(location, PgConfig::default()).await?,
        ));
        #[cfg(not(feature = "postgres"))]
        return Err(StoreError::backend(
            "this build has no PostgreSQL journal: enable rassylka's `postgres` feature",
        ));
    }
    #[cfg(feature = "sqlite")]
    return Ok(Arc::new(SqliteStore::open(location).await?));
    #[cfg(not(feature = "sqlite"))]
    Err(StoreError::backend(
        "this build has no SQLite journal: enable rassylka's `sqlite` feature",
    ))
}
