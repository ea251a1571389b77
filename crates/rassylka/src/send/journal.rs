//! The journal's half of the send loop: ended sends' results recorded and the next rows
//! claimed in one write, run as a task of its own so that SQLite's thread or PostgreSQL's
//! server writes while the worker goes on sending and judging the rest of its window.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::suppress::unsubscribed_among;
use crate::DispatchError;
use crate::store::{Delivery, Fence, Lease, Recorded, Settle, Store, StoreError};

/// Rows claimed under this worker's lease.
pub(crate) struct Claimed {
    pub(crate) rows: Vec<Delivery>,
    /// When the claiming write started: the lease ran from some moment after it.
    pub(crate) at: Instant,
    /// Recipients among them who unsubscribed since the freeze (advertising only), or why
    /// that could not be read.
    pub(crate) unsubscribed: Result<HashSet<String>, StoreError>,
}

/// What one write did.
pub(crate) struct Written {
    /// Which results were refused (rows no longer this worker's).
    pub(crate) recorded: Recorded,
    /// The results, handed back for what follows them (progress).
    pub(crate) results: Vec<Settle>,
    /// The rows claimed, when the write was asked to claim.
    pub(crate) claimed: Option<Claimed>,
}

/// A write in flight. Dropping it cancels the write (its transaction rolls back), as dropping
/// the send loop's own await of it would.
pub(crate) struct Writing(tokio::task::JoinHandle<Result<Written, StoreError>>);

/// What a write is asked to do.
pub(crate) struct WriteOrder {
    pub(crate) occurrence_id: i64,
    pub(crate) lease: Lease,
    pub(crate) results: Vec<Settle>,
    pub(crate) now: DateTime<Utc>,
    /// How many rows to claim with the results (none: record only).
    pub(crate) claim: usize,
    /// Whether claimed rows are checked for unsubscribes (advertising).
    pub(crate) advertising: bool,
}

impl Writing {
    /// Starts the write on the runtime.
    pub(crate) fn start(store: Arc<dyn Store>, order: WriteOrder) -> Writing {
        let at = Instant::now();
        Writing(tokio::spawn(async move {
            let WriteOrder {
                occurrence_id,
                lease,
                results,
                now,
                claim,
                advertising,
            } = order;
            let holder = Fence::Holder(&lease.worker);
            if claim == 0 {
                let recorded = store.record(occurrence_id, holder, &results, now).await?;
                return Ok(Written {
                    recorded,
                    results,
                    claimed: None,
                });
            }
            match store
                .record_and_claim(occurrence_id, &lease, &results, now, claim)
                .await
            {
                Ok((recorded, rows)) => {
                    let unsubscribed = unsubscribed_among(store.as_ref(), advertising, &rows).await;
                    Ok(Written {
                        recorded,
                        results,
                        claimed: Some(Claimed {
                            rows,
                            at,
                            unsubscribed,
                        }),
                    })
                }
                Err(e) => {
                    // The claim may be what failed: the results of sends already made are
                    // kept if they can be, so they do not come back as unknown.
                    let _ = store
                        .record(occurrence_id, Fence::Holder(&lease.worker), &results, now)
                        .await;
                    Err(e)
                }
            }
        }))
    }

    /// Waits for the write to end.
    ///
    /// # Errors
    /// When the journal could not be written; then nothing was claimed.
    pub(crate) async fn wait(&mut self) -> Result<Written, DispatchError> {
        match (&mut self.0).await {
            Ok(written) => Ok(written?),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(StoreError::unavailable("the journal's write was cancelled").into()),
        }
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        self.0.abort();
    }
}
