//! What the dispatcher reports: previews, cost estimates, runs and progress.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rassylka_model::ChannelKind;
use rust_decimal::Decimal;

use crate::store::StatusCounts;

/// Counts of a preview: what a run on the same data would target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preview {
    /// Recipients the audience rule matches.
    pub matched: u64,
    /// Deliveries per channel (in priority mode each recipient once, on the channel it gets).
    pub per_channel: BTreeMap<ChannelKind, u64>,
    /// Recipients the mailing's holdout leaves out (they would have got a message).
    pub held_out: u64,
}

/// One channel's part of a cost estimate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelCost {
    /// Messages.
    pub messages: u64,
    /// Billing units: SMS segments, one per message elsewhere.
    pub units: u64,
    /// Units × tariff.
    pub cost: Decimal,
}

/// What a mailing would cost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CostReport {
    /// Per selected channel.
    pub per_channel: BTreeMap<ChannelKind, ChannelCost>,
    /// Sum.
    pub total: Decimal,
    /// Recipients the mailing's holdout leaves out (nothing is spent on them).
    pub held_out: u64,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Occurrences that fired or resumed.
    pub occurrences: Vec<String>,
    /// Occurrences the misfire policy gave up.
    pub missed: Vec<String>,
    /// Deliveries of those occurrences by status, at the end of the run.
    pub counts: StatusCounts,
    /// Deliveries whose worker's lease ran out while they were sending (a worker that died or
    /// stalled), marked unknown by this run.
    pub recovered_unknown: u64,
    /// Results this run could not record because its lease on the delivery had run out and
    /// another worker had taken it over (this worker stalled): refused, never written over
    /// the other worker's.
    pub lease_lost: u64,
    /// Deliveries skipped because the source listed their recipient again.
    pub listed_again: u64,
    /// The earliest instant a queued delivery waits for (send window, retry, quota pause).
    pub next_due: Option<DateTime<Utc>>,
    /// Mailings [`Dispatcher::run_due`](crate::Dispatcher::run_due) could not run, with why
    /// (invalid input, a stopped mailing's configuration error); the others ran.
    pub failures: Vec<(String, String)>,
    /// Time spent freezing audiences (planning and writing them, or waiting for another
    /// worker's freeze), summed over the occurrences.
    pub freezing: std::time::Duration,
    /// Time spent sending (claims, sends, results, waits for retries), summed.
    pub sending: std::time::Duration,
}

/// How far an occurrence has got, for progress bars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The occurrence key.
    pub occurrence: String,
    /// Deliveries that have ended (sent, failed, skipped, unknown).
    pub done: u64,
    /// All deliveries of the occurrence.
    pub total: u64,
}

/// Called after each batch of sends.
pub type ProgressHook = Arc<dyn Fn(&Progress) + Send + Sync>;
