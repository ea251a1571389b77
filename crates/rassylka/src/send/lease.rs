//! Keeping a worker's claims alive while it sends.

use std::sync::Arc;

use crate::store::{Lease, Store};

/// Renews the worker's lease on an occurrence's rows every third of its length, in the
/// background, until dropped. A process that stops (killed, or stalled with SIGSTOP) stops
/// renewing, and its rows expire for the other workers to recover.
pub(crate) struct Renewal(tokio::task::JoinHandle<()>);

impl Renewal {
    pub(crate) fn start(store: Arc<dyn Store>, occurrence_id: i64, lease: Lease) -> Renewal {
        Renewal(tokio::spawn(async move {
            let every = lease.length / 3;
            loop {
                tokio::time::sleep(every).await;
                // A failed renewal is tried again next time; if the journal stays away, the
                // rows expire and the results are refused, which loses nothing.
                let _ = store.renew(occurrence_id, &lease).await;
            }
        }))
    }
}

impl Drop for Renewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}
