//! A mailing's life: save, confirm, pause, resume, cancel, each a compare-and-set on its
//! state, so two workers (or an operator and a worker) never lose each other's change.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use crate::DispatchError;
use crate::dispatcher::{CostReport, Dispatcher, Preview, Rassylka, RunReport};
use crate::mailing::Mailing;
use crate::store::{MailingRecord, MailingState, MailingTransition, OccurrenceRecord};

/// How often a save retries when another writer changed the mailing under it.
const SAVE_TRIES: usize = 5;

impl Rassylka {
    /// Moves a mailing to `to` if it is in one of `from`; else says in which state it is.
    pub(crate) async fn transition(
        &self,
        id: &str,
        from: &[MailingState],
        to: MailingTransition,
        action: &'static str,
    ) -> Result<(), DispatchError> {
        if self.store().transition_mailing(id, from, &to).await? {
            return Ok(());
        }
        let state = self.record(id).await?.state;
        Err(DispatchError::WrongState {
            id: id.into(),
            state: state.to_string(),
            action,
        })
    }

    /// What a preview plans for: the instant the frequency cap counts back from and the date
    /// the rules evaluate on. By default the next occurrence's (else now and today in the
    /// mailing's zone); for an asked date, that date, with the occurrence that fires on it
    /// (else the date's first instant), as the run on that day would count.
    pub(crate) fn preview_moment(
        &self,
        mailing: &Mailing,
        on: Option<NaiveDate>,
    ) -> (DateTime<Utc>, NaiveDate) {
        let zone = mailing.zone();
        let from = on
            .and_then(|date| rassylka_schedule::local_day_start(date, zone))
            .unwrap_or_else(|| self.now());
        let next = mailing
            .schedule
            .as_ref()
            .and_then(|s| s.next_after(from - TimeDelta::seconds(1)));
        match (on, next) {
            (Some(date), Some(o)) if o.evaluation_date() == date => (o.utc(), date),
            (Some(date), _) => (from, date),
            (None, Some(o)) => (o.utc(), o.evaluation_date()),
            (None, None) => (from, from.with_timezone(&zone).date_naive()),
        }
    }
}

#[async_trait]
impl Dispatcher for Rassylka {
    async fn save(&self, mailing: &Mailing) -> Result<(), DispatchError> {
        let store = self.store();
        let json = mailing.to_json();
        for _ in 0..SAVE_TRIES {
            let saved = match store.mailing(&mailing.id).await? {
                None => {
                    store
                        .create_mailing(&MailingRecord {
                            id: mailing.id.clone(),
                            json: json.clone(),
                            state: MailingState::Draft,
                            version: 1,
                            checked_at: None,
                            paused_until: None,
                            reason: None,
                        })
                        .await?
                }
                Some(old) => {
                    let old_schedule = Mailing::from_json(&old.json).ok().and_then(|m| m.schedule);
                    let version = if old_schedule == mailing.schedule {
                        old.version
                    } else {
                        old.version + 1
                    };
                    old.json == json
                        || store
                            .redefine_mailing(&mailing.id, &json, old.version, version)
                            .await?
                }
            };
            if saved {
                return Ok(());
            }
        }
        Err(crate::store::StoreError::conflict(format!(
            "mailing `{}` kept changing while it was saved",
            mailing.id
        ))
        .into())
    }

    async fn preview(
        &self,
        mailing: &Mailing,
        today: Option<NaiveDate>,
    ) -> Result<Preview, DispatchError> {
        let (matched, totals) = self.plan_counts(mailing, today).await?;
        Ok(Preview {
            matched,
            per_channel: totals
                .per_channel
                .into_iter()
                .map(|(k, c)| (k, c.messages))
                .collect(),
            held_out: totals.held_out,
        })
    }

    async fn cost(
        &self,
        mailing: &Mailing,
        today: Option<NaiveDate>,
    ) -> Result<CostReport, DispatchError> {
        Ok(self.plan_counts(mailing, today).await?.1)
    }

    async fn confirm(&self, mailing_id: &str) -> Result<(), DispatchError> {
        let record = self.record(mailing_id).await?;
        let mailing = Mailing::from_json(&record.json)?;
        let now = self.now();
        let checked_at: DateTime<Utc> = match &mailing.schedule {
            // «Send now»: the run creates the one occurrence at this instant.
            None => now,
            // Confirmed before its start, a schedule counts from its start.
            Some(schedule) => schedule
                .next_after(DateTime::<Utc>::MIN_UTC)
                .map(|o| o.utc() - TimeDelta::milliseconds(1))
                .map_or(now, |start| start.min(now)),
        };
        let queued = MailingTransition {
            checked_at: Some(checked_at),
            ..MailingTransition::to(MailingState::Queued)
        };
        self.transition(mailing_id, &[MailingState::Draft], queued, "confirm")
            .await
    }

    async fn pause(&self, mailing_id: &str) -> Result<(), DispatchError> {
        let paused = MailingTransition::to(MailingState::Paused).because("paused by the operator");
        self.transition(mailing_id, &[MailingState::Queued], paused, "pause")
            .await
    }

    async fn resume(&self, mailing_id: &str) -> Result<(), DispatchError> {
        self.transition(
            mailing_id,
            &[MailingState::Paused, MailingState::Stopped],
            MailingTransition::to(MailingState::Queued),
            "resume",
        )
        .await
    }

    async fn cancel(&self, mailing_id: &str) -> Result<(), DispatchError> {
        let open = [
            MailingState::Draft,
            MailingState::Queued,
            MailingState::Paused,
            MailingState::Stopped,
        ];
        let cancelled =
            MailingTransition::to(MailingState::Cancelled).because("cancelled by the operator");
        self.transition(mailing_id, &open, cancelled, "cancel")
            .await
    }

    async fn run_due(&self) -> Result<RunReport, DispatchError> {
        let mut report = RunReport::default();
        for record in self.store().mailings().await? {
            match self.run_mailing_into(&record.id, &mut report).await {
                Ok(()) => {}
                // The journal or the source failed: nothing else can run either.
                Err(e @ (DispatchError::Store(_) | DispatchError::Source(_))) => return Err(e),
                // One mailing's problem does not hold up the others.
                Err(e) => report.failures.push((record.id.clone(), e.to_string())),
            }
        }
        Ok(report)
    }

    async fn notify(
        &self,
        event: &crate::NoticeEvent,
        sender: &crate::Sender,
    ) -> Result<crate::NoticeResult, DispatchError> {
        self.send_notice(event, sender).await
    }

    async fn occurrences(&self, mailing_id: &str) -> Result<Vec<OccurrenceRecord>, DispatchError> {
        Ok(self.store().occurrences(Some(mailing_id)).await?)
    }
}
