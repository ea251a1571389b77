//! The journal's contract: what a store of rassylka's journal holds (mailings, occurrences,
//! one row per delivery, unreachable contacts, bonus accruals) and the small traits a backend
//! implements, tied together by [`Store`]. No SQL lives here, and a backend holds no business
//! rule: priority fallback, recovery and suppression are decided by the dispatcher and handed
//! to the store as explicit values ([`Outcome`], [`GroupEffect`], [`Fence`]).
//!
//! Backends: `rassylka-sqlite` (the embedded default) and `rassylka-postgres`; the `rassylka`
//! facade re-exports them behind its `sqlite` and `postgres` features.
//!
//! # Several workers on one queue
//! Every dispatcher process is a worker with its own id. A claim is a **lease**: the claimed
//! rows carry the worker and a deadline on the store's own wall clock, renewed while the worker
//! sends ([`QueueStore::renew`]). Rows whose lease expired belong to a dead or stalled worker:
//! any worker lists them ([`QueueStore::expired`]) and settles them under [`Fence::Expired`].
//! A result is written only while its row is held as its [`Fence`] says, at the attempt it was
//! claimed for, so a late result of a worker that lost its lease is refused and reported
//! ([`Recorded::refused`]), never written over another's. Mailing and occurrence states change
//! by compare-and-set, and an occurrence is frozen by one caller while others wait for it.
//!
//! ```
//! use rassylka_store::{MailingState, MailingTransition, StoreError};
//!
//! # fn main() -> Result<(), StoreError> {
//! let pause = MailingTransition::to(MailingState::Paused).because("paused by the operator");
//! assert_eq!(pause.reason.as_deref(), Some("paused by the operator"));
//! let state: MailingState = "queued".parse()?;
//! assert_eq!(state, MailingState::Queued);
//! assert!("sleeping".parse::<MailingState>().is_err());
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//! - `testing`: the `conformance` suite, generic over `Arc<dyn Store>`, that every backend
//!   runs unchanged (through `conformance_tests!`).

#[cfg(feature = "testing")]
pub mod conformance;
mod consent;
mod contract;
mod error;
mod history;
mod keys;
mod notices;
mod records;

pub use consent::{ReachedAddress, Unsubscribe};
pub use contract::{
    AccrualStore, ConsentStore, ContactStore, Freeze, HistoryStore, MailingStore, NoticeStore,
    OccurrenceStore, QueueStore, Store,
};
pub use error::{StoreError, StoreErrorKind};

/// Every role trait, to call a store's methods on a concrete type: `use
/// rassylka_store::prelude::*;`.
pub mod prelude {
    pub use crate::{
        AccrualStore, ConsentStore, ContactStore, HistoryStore, MailingStore, NoticeStore,
        OccurrenceStore, QueueStore, Store,
    };
}
pub use history::{JournalFilter, OutcomeRow, Tally, TallyRow};
pub use keys::KeyOrder;
pub use notices::NoticeRefusal;
pub use records::{
    Delivery, DeliveryStatus, Fence, GroupEffect, Lease, MailingRecord, MailingState,
    MailingTransition, NewDelivery, NewOccurrence, OccurrenceRecord, OccurrenceStart,
    OccurrenceState, Outcome, Recorded, Settle, StatusCounts,
};
