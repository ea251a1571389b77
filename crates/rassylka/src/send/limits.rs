//! Provider limits that survive restarts (SPEC §7c): before a pass sends, and every few
//! seconds while it does, each channel with daily or monthly limits is told what the journal
//! says was sent (or is being sent, or may have been) in the provider's day and month, so
//! separate processes share the limits.

use chrono::Datelike;
use rassylka_schedule::local_day_start;

use crate::DispatchError;
use crate::dispatcher::Rassylka;

impl Rassylka {
    /// Starts the counters of every channel that has account limits at the journal's count.
    pub(crate) async fn start_account_usage(&self) -> Result<(), DispatchError> {
        let now = self.now();
        for (kind, channel) in &self.inner.channels {
            let Some(limits) = channel.account_limits() else {
                continue;
            };
            let today = now.with_timezone(&limits.zone).date_naive();
            let first = today.with_day(1).unwrap_or(today);
            let (Some(day_start), Some(month_start)) = (
                local_day_start(today, limits.zone),
                local_day_start(first, limits.zone),
            ) else {
                continue;
            };
            let store = self.store();
            let (sent_today, sent_this_month) = store
                .sends_since_both(*kind, day_start, month_start)
                .await?;
            channel.start_usage(sent_today, sent_this_month);
        }
        Ok(())
    }
}
