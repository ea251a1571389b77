//! The [`Dispatcher`] trait and its implementation, [`Rassylka`]: a cheap, cloneable handle
//! over the parts a run needs. What it does lives in rooms of its own: the lifecycle
//! (`lifecycle.rs`), firing occurrences (`firing.rs`), planning audiences (`plan/`), freezing
//! (`freeze.rs`), sending (`send/`), recovery (`recovery.rs`) and bonuses (`bonus.rs`).

mod builder;
mod report;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use rassylka_channels::Channel;
use rassylka_model::ChannelKind;

pub use builder::{Config, RassylkaBuilder};
pub use report::{ChannelCost, CostReport, Preview, Progress, ProgressHook, RunReport};

use crate::mailing::Mailing;
use crate::store::{Delivery, Lease, MailingRecord, OccurrenceRecord, Store};
use crate::{BonusLedger, Clock, DispatchError, Problem, RecipientSource};

/// What an application asks of its mailings. [`Rassylka`] implements it.
#[async_trait]
pub trait Dispatcher: Send + Sync {
    /// Saves a mailing as a draft, or updates a saved one's definition (its state is left
    /// alone). A changed schedule gets a new schedule version, so occurrences already sent are
    /// not repeated under new keys.
    ///
    /// # Errors
    /// [`DispatchError::Store`] when the journal fails or keeps changing under the save.
    async fn save(&self, mailing: &Mailing) -> Result<(), DispatchError>;
    /// Counts who a mailing would reach on `today` (default: its next occurrence's date).
    ///
    /// # Errors
    /// An invalid mailing, malformed recipients, or a failing source or journal.
    async fn preview(
        &self,
        mailing: &Mailing,
        today: Option<NaiveDate>,
    ) -> Result<Preview, DispatchError>;
    /// What it would cost by the tariffs.
    ///
    /// # Errors
    /// As [`Dispatcher::preview`].
    async fn cost(
        &self,
        mailing: &Mailing,
        today: Option<NaiveDate>,
    ) -> Result<CostReport, DispatchError>;
    /// Confirms a saved mailing: it is queued and fires when due.
    ///
    /// # Errors
    /// [`DispatchError::WrongState`] unless it is a draft.
    async fn confirm(&self, mailing_id: &str) -> Result<(), DispatchError>;
    /// Pauses a mailing: nothing more is sent until [`Dispatcher::resume`].
    ///
    /// # Errors
    /// [`DispatchError::WrongState`] unless it is queued.
    async fn pause(&self, mailing_id: &str) -> Result<(), DispatchError>;
    /// Resumes a paused or stopped mailing.
    ///
    /// # Errors
    /// [`DispatchError::WrongState`] unless it is paused or stopped.
    async fn resume(&self, mailing_id: &str) -> Result<(), DispatchError>;
    /// Cancels a mailing for good.
    ///
    /// # Errors
    /// [`DispatchError::WrongState`] when it is done or cancelled already.
    async fn cancel(&self, mailing_id: &str) -> Result<(), DispatchError>;
    /// Runs every due occurrence of every queued mailing, and finishes started ones. A
    /// mailing that fails is listed in [`RunReport::failures`] and the others still run.
    ///
    /// # Errors
    /// When the journal or the source is unavailable.
    async fn run_due(&self) -> Result<RunReport, DispatchError>;
    /// Occurrences of a mailing.
    ///
    /// # Errors
    /// When the journal cannot be read.
    async fn occurrences(&self, mailing_id: &str) -> Result<Vec<OccurrenceRecord>, DispatchError>;

    /// Sends a service notice for `event` on behalf of `sender` (SPEC §7g), once per event
    /// id: the same event again answers with its earlier result.
    ///
    /// # Errors
    /// [`DispatchError::Refused`] when the sender may not send it (kept in the journal), and
    /// the errors of a run.
    async fn notify(
        &self,
        event: &crate::NoticeEvent,
        sender: &crate::Sender,
    ) -> Result<crate::NoticeResult, DispatchError>;
}

pub(crate) struct Inner {
    pub(crate) source: Arc<dyn RecipientSource>,
    pub(crate) channels: BTreeMap<ChannelKind, Arc<dyn Channel>>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) ledger: Option<Arc<dyn BonusLedger>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: Config,
    pub(crate) progress: Option<ProgressHook>,
    /// The unsubscribe keys, read or made once.
    pub(crate) keys: tokio::sync::OnceCell<Arc<crate::UnsubscribeKeys>>,
}

/// The dispatcher: a cheap, cloneable handle. Build it with [`Rassylka::builder`].
///
/// Every handle built is one worker: several processes (or several dispatchers in one) may
/// run the same mailings on one journal, and none sends what another claimed.
#[derive(Clone)]
pub struct Rassylka {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Rassylka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rassylka")
            .field("channels", &self.inner.channels.keys().collect::<Vec<_>>())
            .field("concurrency", &self.inner.config.concurrency)
            .field("worker", &self.inner.config.worker_id)
            .finish_non_exhaustive()
    }
}

impl Rassylka {
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// The same dispatcher reading recipients from `source`.
    pub(crate) fn with_source(&self, source: Arc<dyn RecipientSource>) -> Rassylka {
        let inner = &self.inner;
        Rassylka {
            inner: Arc::new(Inner {
                source,
                channels: inner.channels.clone(),
                store: Arc::clone(&inner.store),
                ledger: inner.ledger.clone(),
                clock: Arc::clone(&inner.clock),
                config: inner.config.clone(),
                progress: inner.progress.clone(),
                keys: inner.keys.clone(),
            }),
        }
    }

    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// A lease for one pass of sending: the worker id with a number of its own, so rows an
    /// earlier pass of this process left behind (its journal failed mid-batch) are not renewed
    /// by this one and expire for recovery like a dead worker's.
    pub(crate) fn lease(&self) -> Lease {
        static PASS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let pass = PASS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Lease {
            worker: format!("{}/{pass}", self.inner.config.worker_id),
            length: self.inner.config.lease,
        }
    }

    /// This worker's id in the journal.
    pub fn worker_id(&self) -> &str {
        &self.inner.config.worker_id
    }

    pub(crate) async fn record(&self, id: &str) -> Result<MailingRecord, DispatchError> {
        self.store()
            .mailing(id)
            .await?
            .ok_or_else(|| DispatchError::UnknownMailing(id.to_owned()))
    }

    /// The journal of one occurrence, `limit` rows after row `after_id`.
    ///
    /// # Errors
    /// [`DispatchError::Store`] when the journal cannot be read.
    pub async fn journal(
        &self,
        occurrence_id: i64,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, DispatchError> {
        Ok(self
            .store()
            .deliveries(occurrence_id, after_id, limit)
            .await?)
    }
}

/// An invalid mailing, with where.
pub(crate) fn invalid(path: &str, e: impl std::fmt::Display) -> DispatchError {
    DispatchError::InvalidMailing(vec![Problem {
        path: path.into(),
        message: e.to_string(),
    }])
}
