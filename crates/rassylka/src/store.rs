//! The journal: the store contract of `rassylka-store` (re-exported whole) and the backends
//! behind this crate's features.

pub use rassylka_store::*;

#[cfg(feature = "sqlite")]
pub use rassylka_sqlite::SqliteStore;
