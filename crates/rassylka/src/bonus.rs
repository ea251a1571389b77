//! Bonus accruals: once per (occurrence, recipient) reached, through the [`BonusLedger`](crate::BonusLedger),
//! a batch at a time beside the send loop; a crash in between repeats the ledger call with
//! the same key rather than losing the accrual.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Days;

use crate::dispatcher::Rassylka;
use crate::mailing::Mailing;
use crate::store::OccurrenceRecord;
use crate::{Accrual, DispatchError, Problem};

/// Recipients whose bonuses go to the ledger in one call (several send batches).
pub(crate) const ACCRUAL_BATCH: usize = 4096;

/// Bonus accruals of one occurrence, one call to the ledger at a time running beside the
/// send loop.
pub(crate) struct Accruals {
    dispatcher: Rassylka,
    /// Set when the mailing accrues bonuses.
    context: Option<Arc<(Mailing, OccurrenceRecord)>>,
    running: Option<tokio::task::JoinHandle<Result<(), DispatchError>>>,
}

impl Drop for Accruals {
    /// A run that ends with an error does not leave a ledger call running unobserved; what
    /// it had not recorded is accrued by the next run, under the same keys.
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.abort();
        }
    }
}

impl Accruals {
    pub(crate) fn new(
        dispatcher: &Rassylka,
        mailing: &Mailing,
        occurrence: &OccurrenceRecord,
    ) -> Self {
        Accruals {
            dispatcher: dispatcher.clone(),
            context: mailing
                .bonus
                .is_some()
                .then(|| Arc::new((mailing.clone(), occurrence.clone()))),
            running: None,
        }
    }

    /// The error of a finished background accrual, if it failed.
    pub(crate) fn check(&mut self) -> Result<(), DispatchError> {
        if !self.running.as_ref().is_some_and(|r| r.is_finished()) {
            return Ok(());
        }
        match self
            .running
            .take()
            .and_then(futures_util::FutureExt::now_or_never)
        {
            Some(Ok(result)) => result,
            Some(Err(e)) => Err(DispatchError::Ledger(e.into())),
            None => Ok(()),
        }
    }

    /// Waits for the running accrual.
    pub(crate) async fn wait(&mut self) -> Result<(), DispatchError> {
        match self.running.take() {
            Some(running) => running.await.map_err(|e| DispatchError::Ledger(e.into()))?,
            None => Ok(()),
        }
    }

    /// Starts accruing to `recipients` once the previous accrual has ended.
    pub(crate) async fn start(&mut self, recipients: Vec<String>) -> Result<(), DispatchError> {
        self.wait().await?;
        let Some(context) = self.context.clone() else {
            return Ok(());
        };
        let dispatcher = self.dispatcher.clone();
        self.running = Some(tokio::spawn(async move {
            let (mailing, occurrence) = &*context;
            dispatcher.accrue_for(mailing, occurrence, recipients).await
        }));
        Ok(())
    }

    /// Accrues to `recipients` after the running accrual, and waits for both.
    pub(crate) async fn finish(&mut self, recipients: Vec<String>) -> Result<(), DispatchError> {
        self.wait().await?;
        let Some(context) = self.context.clone() else {
            return Ok(());
        };
        let (mailing, occurrence) = &*context;
        self.dispatcher
            .accrue_for(mailing, occurrence, recipients)
            .await
    }
}

impl Rassylka {
    /// Accrues the mailing's bonus to `recipients` reached by `occurrence`, skipping those
    /// already accrued: the ledger first, then the journal, so a crash in between repeats the
    /// ledger call with the same key rather than losing the accrual.
    pub(crate) async fn accrue_for(
        &self,
        mailing: &Mailing,
        occurrence: &OccurrenceRecord,
        mut recipients: Vec<String>,
    ) -> Result<(), DispatchError> {
        let Some(bonus) = &mailing.bonus else {
            return Ok(());
        };
        let ledger = self.inner.ledger.as_ref().ok_or_else(|| {
            DispatchError::InvalidMailing(vec![Problem {
                path: "bonus".into(),
                message: "the mailing accrues bonuses but the dispatcher has no bonus ledger"
                    .into(),
            }])
        })?;
        // A recipient reached on two channels appears twice; accrue once.
        recipients.sort_unstable();
        recipients.dedup();
        let done: HashSet<String> = self
            .store()
            .accrued(occurrence.id, &recipients)
            .await?
            .into_iter()
            .collect();
        recipients.retain(|id| !done.contains(id));
        if recipients.is_empty() {
            return Ok(());
        }
        let expires_on = bonus
            .expires_in_days
            .map(|d| occurrence.evaluation_date + Days::new(u64::from(d)));
        let accruals: Vec<Accrual> = recipients
            .iter()
            .map(|recipient_id| Accrual {
                key: format!("{}/{recipient_id}", occurrence.key),
                mailing_id: mailing.id.clone(),
                recipient_id: recipient_id.clone(),
                amount: bonus.amount,
                expires_on,
            })
            .collect();
        ledger
            .accrue_batch(&accruals)
            .await
            .map_err(DispatchError::Ledger)?;
        Ok(self
            .store()
            .finish_accruals(occurrence.id, &recipients)
            .await?)
    }

    /// Accruals a crashed run sent for but did not record; paged, so memory stays flat.
    pub(crate) async fn accrue_pending(
        &self,
        mailing: &Mailing,
        occurrence: &OccurrenceRecord,
    ) -> Result<(), DispatchError> {
        if mailing.bonus.is_none() {
            return Ok(());
        }
        let mut after = 0;
        loop {
            let page = self
                .store()
                .pending_accruals(occurrence.id, after, 1000)
                .await?;
            let Some((last, _)) = page.last() else {
                return Ok(());
            };
            after = *last;
            self.accrue_for(
                mailing,
                occurrence,
                page.into_iter().map(|(_, id)| id).collect(),
            )
            .await?;
        }
    }
}
