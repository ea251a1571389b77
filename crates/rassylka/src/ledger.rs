use std::collections::HashSet;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::NaiveDate;
use rassylka_model::Money;

/// One accrual the dispatcher asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accrual {
    /// `occurrence key/recipient id`: the same for a retry of the same accrual, so a ledger
    /// can refuse a second one.
    pub key: String,
    /// The mailing.
    pub mailing_id: String,
    /// The recipient.
    pub recipient_id: String,
    /// How many bonuses.
    pub amount: Money,
    /// When they burn.
    pub expires_on: Option<NaiveDate>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The loyalty system's bonus accounts. The dispatcher calls it once per (occurrence,
/// recipient) it reached; after a crash between the call and its record it calls again with
/// the same [`Accrual::key`], which an implementation must treat as the same accrual.
#[async_trait]
pub trait BonusLedger: Send + Sync {
    /// Credits the bonuses.
    ///
    /// # Errors
    /// Whatever the ledger fails with; the accrual is tried again on the next run.
    async fn accrue(&self, accrual: &Accrual) -> Result<(), BoxError>;

    /// Credits several accruals; the default calls [`BonusLedger::accrue`] for each, a ledger
    /// with a batch call overrides it.
    ///
    /// # Errors
    /// The first failure; the accruals after it are tried again on the next run.
    async fn accrue_batch(&self, accruals: &[Accrual]) -> Result<(), BoxError> {
        for accrual in accruals {
            self.accrue(accrual).await?;
        }
        Ok(())
    }
}

/// Keeps accruals in memory, once per key: for tests and dry runs.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    accruals: Mutex<(Vec<Accrual>, HashSet<String>)>,
}

impl MemoryLedger {
    /// Everything accrued so far.
    pub fn accruals(&self) -> Vec<Accrual> {
        self.accruals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }
}

#[async_trait]
impl BonusLedger for MemoryLedger {
    async fn accrue(&self, accrual: &Accrual) -> Result<(), BoxError> {
        let mut accruals = self.accruals.lock().unwrap_or_else(|e| e.into_inner());
        if accruals.1.insert(accrual.key.clone()) {
            accruals.0.push(accrual.clone());
        }
        Ok(())
    }
}
