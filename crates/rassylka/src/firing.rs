//! Which occurrences fire: due ones by the schedule's misfire policy, a catch-up of every
//! missed run date for date-rule mailings, «send now» at confirmation; and what a run of one
//! mailing does with them.

use chrono::TimeDelta;
use rassylka_schedule::{Every, Occurrence, Schedule};

use crate::DispatchError;
use crate::dispatcher::{Rassylka, RunReport, invalid};
use crate::mailing::{Mailing, MailingKind};
use crate::send::Verdict;
use crate::store::{
    MailingState, MailingTransition, NewOccurrence, OccurrenceRecord, OccurrenceStart,
    OccurrenceState,
};

/// How many missed run dates a date-rule mailing catches up at most (a month of daily runs).
const CATCH_UP_LIMIT: usize = 31;

/// Runs a catch-up looks back over: those beyond [`CATCH_UP_LIMIT`] are journaled as missed.
const CATCH_UP_SEEN: usize = 10_000;

impl Rassylka {
    /// Runs what is due for one mailing.
    ///
    /// # Errors
    /// An invalid mailing, a channel it needs that is not configured, a configuration stop,
    /// malformed recipients, or a failing journal, source or ledger.
    pub async fn run_mailing(&self, mailing_id: &str) -> Result<RunReport, DispatchError> {
        let mut report = RunReport::default();
        self.run_mailing_into(mailing_id, &mut report).await?;
        Ok(report)
    }

    /// Inserts an occurrence unless its key is there; the record either way.
    async fn start(
        &self,
        mailing: &Mailing,
        version: u32,
        occurrence: &Occurrence,
        state: OccurrenceState,
    ) -> Result<OccurrenceStart, DispatchError> {
        let key = occurrence
            .key(&mailing.id, version)
            .map_err(|e| invalid("schedule", e))?;
        Ok(self
            .store()
            .start_occurrence(&NewOccurrence {
                mailing_id: mailing.id.clone(),
                key: key.to_string(),
                fired_at: occurrence.utc(),
                evaluation_date: occurrence.evaluation_date(),
                state,
            })
            .await?)
    }

    pub(crate) async fn run_mailing_into(
        &self,
        mailing_id: &str,
        report: &mut RunReport,
    ) -> Result<(), DispatchError> {
        let store = self.store();
        let record = self.record(mailing_id).await?;
        let now = self.now();
        match record.state {
            MailingState::Queued => {}
            MailingState::Paused if record.paused_until.is_some_and(|until| until <= now) => {
                // Another worker may resume it at the same time: either way it is queued.
                // An outage's reason stays while the mailing tries again, so that the next
                // pause of the same outage is longer (SPEC §7b).
                let mut resume = MailingTransition::to(MailingState::Queued);
                resume.reason = record
                    .reason
                    .clone()
                    .filter(|r| crate::send::is_outage_reason(r));
                store
                    .transition_mailing(mailing_id, &[MailingState::Paused], &resume)
                    .await?;
            }
            _ => return Ok(()),
        }
        let mailing = Mailing::from_json(&record.json)?;
        if !mailing.active {
            return Ok(());
        }
        for channel in &mailing.channels {
            if !self.inner.channels.contains_key(channel) {
                return Err(DispatchError::ChannelMissing(*channel));
            }
        }
        if mailing.bonus.is_some() && self.inner.ledger.is_none() {
            return Err(invalid(
                "bonus",
                "the mailing accrues bonuses but the dispatcher has no bonus ledger",
            ));
        }
        let mut history = store.occurrences(Some(mailing_id)).await?;
        // «Send now» fires at the instant confirmation recorded, so a repeated run (or another
        // worker) finds the same key however late it comes.
        if mailing.schedule.is_none()
            && history.is_empty()
            && let Some(confirmed) = record.checked_at
        {
            let schedule = Schedule::send_now(confirmed, mailing.zone())
                .map_err(|e| invalid("schedule", e))?;
            if let Some(occurrence) = schedule.next_after(confirmed - TimeDelta::minutes(1)) {
                self.start(
                    &mailing,
                    record.version,
                    &occurrence,
                    OccurrenceState::Freezing,
                )
                .await?;
                history = store.occurrences(Some(mailing_id)).await?;
            }
        }
        // Occurrences already started are always finished, however late.
        let mut pending: Vec<OccurrenceRecord> = history
            .iter()
            .filter(|o| matches!(o.state, OccurrenceState::Freezing | OccurrenceState::Frozen))
            .cloned()
            .collect();
        if let Some(schedule) = &mailing.schedule {
            for (occurrence, state) in self.decide(&mailing, schedule, &record, &history) {
                match (
                    self.start(&mailing, record.version, &occurrence, state)
                        .await?,
                    state,
                ) {
                    (OccurrenceStart::Created(o), OccurrenceState::Freezing) => pending.push(o),
                    (OccurrenceStart::Created(o), _) => report.missed.push(o.key),
                    // Another worker started it a moment ago: help it finish.
                    (OccurrenceStart::Existing(o), _)
                        if matches!(
                            o.state,
                            OccurrenceState::Freezing | OccurrenceState::Frozen
                        ) =>
                    {
                        pending.push(o);
                    }
                    (OccurrenceStart::Existing(_), _) => {}
                }
            }
            store.advance_checked_at(mailing_id, now).await?;
        }
        pending.sort_by_key(|o| (o.fired_at, o.id));
        pending.dedup_by_key(|o| o.id);
        for occurrence in pending {
            match self.run_occurrence(&mailing, occurrence, report).await? {
                Verdict::Continue => {}
                Verdict::Pause { until, reason } => {
                    let pause = MailingTransition {
                        paused_until: Some(until),
                        ..MailingTransition::to(MailingState::Paused).because(reason)
                    };
                    store
                        .transition_mailing(mailing_id, &[MailingState::Queued], &pause)
                        .await?;
                    report.next_due = Some(report.next_due.map_or(until, |d| d.min(until)));
                    return Ok(());
                }
                Verdict::Stop { channel, reason } => {
                    let stop = MailingTransition::to(MailingState::Stopped).because(reason.clone());
                    store
                        .transition_mailing(
                            mailing_id,
                            &[MailingState::Queued, MailingState::Paused],
                            &stop,
                        )
                        .await?;
                    return Err(DispatchError::Configuration {
                        mailing: mailing_id.to_owned(),
                        channel,
                        reason,
                    });
                }
            }
        }
        // A one-time mailing is done once its occurrences are; the store checks that none is
        // open in the same step, so an occurrence reopened meanwhile keeps it queued.
        let started = !store.occurrences(Some(mailing_id)).await?.is_empty();
        let repeats = mailing
            .schedule
            .as_ref()
            .is_some_and(|s| s.next_after(now).is_some() && s.every() != Every::Once);
        if started && !repeats {
            store.finish_mailing(mailing_id).await?;
        }
        Ok(())
    }

    /// The occurrences the schedule decides on now, each to fire or to be journaled missed.
    fn decide(
        &self,
        mailing: &Mailing,
        schedule: &Schedule,
        record: &crate::store::MailingRecord,
        history: &[OccurrenceRecord],
    ) -> Vec<(Occurrence, OccurrenceState)> {
        let now = self.now();
        // A periodic mailing with date rules catches up every missed run date, each evaluated
        // with its own «today», so a downtime skips nobody; delivery keys make the re-runs
        // safe. Others follow the schedule's misfire policy.
        let last_run = history
            .iter()
            .filter(|o| o.state != OccurrenceState::Missed)
            .map(|o| o.evaluation_date)
            .max();
        match last_run {
            Some(last)
                if mailing.kind == MailingKind::Periodic && mailing.audience.has_date_leaf() =>
            {
                // The newest runs are caught up; older ones are journaled as missed, so a
                // long downtime is reported rather than silently dropped.
                let runs = schedule.catch_up(last, now, CATCH_UP_SEEN).runs;
                let dropped = runs.len().saturating_sub(CATCH_UP_LIMIT);
                runs.into_iter()
                    .enumerate()
                    .map(|(i, run)| {
                        let state = if i < dropped {
                            OccurrenceState::Missed
                        } else {
                            OccurrenceState::Freezing
                        };
                        (run.occurrence, state)
                    })
                    .collect()
            }
            _ => {
                let due = schedule.due(record.checked_at, now);
                due.missed
                    .into_iter()
                    .map(|o| (o, OccurrenceState::Missed))
                    .chain(due.fire.into_iter().map(|o| (o, OccurrenceState::Freezing)))
                    .collect()
            }
        }
    }
}
