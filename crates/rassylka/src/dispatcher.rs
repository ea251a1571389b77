use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use backon::BackoffBuilder;
use chrono::{DateTime, Days, NaiveDate, TimeDelta, Utc};
use futures_util::StreamExt;
use rassylka_channels::{Channel, ChannelError, ErrorClass, Image, Message};
use rassylka_model::{Address, ChannelKind, EmailAddress, PhoneNumber};
use rassylka_schedule::Schedule;
use rassylka_segment::ChannelSet;
use rust_decimal::Decimal;

use crate::mailing::{Mailing, MailingKind};
use crate::plan::{Planned, Planner};
use crate::store::{
    Delivery, DeliveryResult, DeliveryStatus, MailingRecord, MailingState, NewDelivery,
    NewOccurrence, OccurrenceRecord, OccurrenceStart, OccurrenceState, StatusCounts, Store,
};
use crate::{Accrual, BonusLedger, Clock, DispatchError, Problem, RecipientSource, SystemClock};

/// Counts of a preview: what a run on the same data would target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preview {
    /// Recipients the audience rule matches.
    pub matched: u64,
    /// Deliveries per channel (in priority mode each recipient once, on the channel it gets).
    pub per_channel: BTreeMap<ChannelKind, u64>,
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
    /// Deliveries found in `sending` after a crash and marked unknown.
    pub recovered_unknown: u64,
    /// Deliveries skipped because the source listed their recipient again.
    pub listed_again: u64,
    /// The earliest instant a queued delivery waits for (send window, retry, quota pause).
    pub next_due: Option<DateTime<Utc>>,
    /// Mailings [`Dispatcher::run_due`] could not run, with why (invalid input, a stopped
    /// mailing's configuration error); the others ran.
    pub failures: Vec<(String, String)>,
}

/// What an application asks of its mailings. [`Rassylka`] implements it.
#[async_trait]
pub trait Dispatcher: Send + Sync {
    /// Saves a mailing as a draft (or updates one). A changed schedule gets a new schedule
    /// version, so occurrences already sent are not repeated under new keys.
    async fn save(&self, mailing: &Mailing) -> Result<(), DispatchError>;
    /// Counts who a mailing would reach on `today` (default: its next occurrence's date).
    async fn preview(
        &self,
        mailing: &Mailing,
        today: Option<NaiveDate>,
    ) -> Result<Preview, DispatchError>;
    /// What it would cost by the tariffs.
    async fn cost(
        &self,
        mailing: &Mailing,
        today: Option<NaiveDate>,
    ) -> Result<CostReport, DispatchError>;
    /// Confirms a saved mailing: it is queued and fires when due.
    async fn confirm(&self, mailing_id: &str) -> Result<(), DispatchError>;
    /// Pauses a mailing: nothing more is sent until [`Dispatcher::resume`].
    async fn pause(&self, mailing_id: &str) -> Result<(), DispatchError>;
    /// Resumes a paused or stopped mailing.
    async fn resume(&self, mailing_id: &str) -> Result<(), DispatchError>;
    /// Cancels a mailing for good.
    async fn cancel(&self, mailing_id: &str) -> Result<(), DispatchError>;
    /// Runs every due occurrence of every queued mailing, and finishes started ones. A
    /// mailing that fails is listed in [`RunReport::failures`] and the others still run.
    async fn run_due(&self) -> Result<RunReport, DispatchError>;
    /// Occurrences of a mailing.
    async fn occurrences(&self, mailing_id: &str) -> Result<Vec<OccurrenceRecord>, DispatchError>;
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

struct Inner {
    source: Arc<dyn RecipientSource>,
    channels: BTreeMap<ChannelKind, Arc<dyn Channel>>,
    store: Arc<dyn Store>,
    ledger: Option<Arc<dyn BonusLedger>>,
    clock: Arc<dyn Clock>,
    tariffs: BTreeMap<ChannelKind, Decimal>,
    concurrency: usize,
    max_attempts: u32,
    max_wait: Duration,
    skip_malformed: bool,
    /// Deliveries written per journal transaction while freezing: each commit rewrites the
    /// pages it touched, so fewer, larger ones cost less; two batches are in memory at once.
    batch: usize,
    backoff: (Duration, Duration),
    progress: Option<ProgressHook>,
}

/// The dispatcher: a cheap, cloneable handle. Build it with [`Rassylka::builder`].
#[derive(Clone)]
pub struct Rassylka {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Rassylka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rassylka")
            .field("channels", &self.inner.channels.keys().collect::<Vec<_>>())
            .field("concurrency", &self.inner.concurrency)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Rassylka`].
pub struct RassylkaBuilder {
    source: Option<Arc<dyn RecipientSource>>,
    channels: BTreeMap<ChannelKind, Arc<dyn Channel>>,
    store: Option<Arc<dyn Store>>,
    ledger: Option<Arc<dyn BonusLedger>>,
    clock: Arc<dyn Clock>,
    tariffs: BTreeMap<ChannelKind, Decimal>,
    concurrency: usize,
    max_attempts: u32,
    max_wait: Duration,
    skip_malformed: bool,
    backoff: (Duration, Duration),
    progress: Option<ProgressHook>,
}

impl std::fmt::Debug for RassylkaBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RassylkaBuilder").finish_non_exhaustive()
    }
}

impl Rassylka {
    /// A builder with the system clock, 32 sends in flight, 5 attempts and no waiting.
    pub fn builder() -> RassylkaBuilder {
        RassylkaBuilder {
            source: None,
            channels: BTreeMap::new(),
            store: None,
            ledger: None,
            clock: Arc::new(SystemClock),
            tariffs: BTreeMap::new(),
            concurrency: 32,
            max_attempts: 5,
            max_wait: Duration::ZERO,
            skip_malformed: false,
            backoff: (Duration::from_secs(1), Duration::from_secs(600)),
            progress: None,
        }
    }
}

impl RassylkaBuilder {
    /// Where recipients come from (required).
    pub fn recipients(self, source: impl RecipientSource + 'static) -> Self {
        self.recipients_shared(Arc::new(source))
    }

    /// Where recipients come from, shared.
    pub fn recipients_shared(mut self, source: Arc<dyn RecipientSource>) -> Self {
        self.source = Some(source);
        self
    }

    /// Adds a channel; one per kind.
    pub fn channel(mut self, channel: Arc<dyn Channel>) -> Self {
        self.channels.insert(channel.kind(), channel);
        self
    }

    /// The journal store (required).
    pub fn store(self, store: impl Store + 'static) -> Self {
        self.store_shared(Arc::new(store))
    }

    /// The journal store, shared.
    pub fn store_shared(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The bonus ledger, needed by mailings with a bonus.
    pub fn ledger(mut self, ledger: Arc<dyn BonusLedger>) -> Self {
        self.ledger = Some(ledger);
        self
    }

    /// The clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Price per SMS segment, or per message on other channels.
    pub fn tariff(mut self, channel: ChannelKind, price: Decimal) -> Self {
        self.tariffs.insert(channel, price);
        self
    }

    /// Sends in flight at once (at least 1); also the most deliveries a crash can leave
    /// «unknown».
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Attempts per delivery before a transient failure becomes final.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// How long [`Dispatcher::run_due`] waits in-process for retries and short pauses before
    /// returning with deliveries still queued.
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// The first and the longest wait between attempts of a transient failure (default 1 s
    /// and 10 min; doubled each attempt, with jitter, never shorter than a retry-after).
    pub fn retry_backoff(mut self, first: Duration, longest: Duration) -> Self {
        self.backoff = (first, longest.max(first));
        self
    }

    /// Called with each occurrence's progress as batches of sends finish.
    pub fn on_progress(mut self, hook: ProgressHook) -> Self {
        self.progress = Some(hook);
        self
    }

    /// Journal unreadable recipient records as skipped instead of refusing to run.
    pub fn skip_malformed(mut self, skip: bool) -> Self {
        self.skip_malformed = skip;
        self
    }

    /// The dispatcher.
    ///
    /// # Errors
    /// [`DispatchError::InvalidMailing`] naming `recipients` or `store` when one is missing.
    pub fn build(self) -> Result<Rassylka, DispatchError> {
        let missing = |what: &str| {
            DispatchError::InvalidMailing(vec![Problem {
                path: what.into(),
                message: "the dispatcher needs one".into(),
            }])
        };
        Ok(Rassylka {
            inner: Arc::new(Inner {
                source: self.source.ok_or_else(|| missing("recipients"))?,
                channels: self.channels,
                store: self.store.ok_or_else(|| missing("store"))?,
                ledger: self.ledger,
                clock: self.clock,
                tariffs: self.tariffs,
                concurrency: self.concurrency,
                max_attempts: self.max_attempts,
                max_wait: self.max_wait,
                skip_malformed: self.skip_malformed,
                batch: 10000,
                backoff: self.backoff,
                progress: self.progress,
            }),
        })
    }
}

/// Turns a journaled address back into an [`Address`].
fn address_of(channel: ChannelKind, text: &str) -> Result<Address, String> {
    match channel {
        ChannelKind::Email => EmailAddress::parse(text)
            .map(Address::Email)
            .map_err(|e| e.to_string()),
        ChannelKind::Sms => PhoneNumber::parse(text)
            .map(Address::Phone)
            .map_err(|e| e.to_string()),
        ChannelKind::Telegram => text
            .parse()
            .map(Address::TelegramChat)
            .map_err(|_| format!("bad chat id `{text}`")),
        ChannelKind::Vk => text
            .parse()
            .map(Address::VkUser)
            .map_err(|_| format!("bad vk user id `{text}`")),
        ChannelKind::Push => Ok(Address::WalletCard(text.to_owned())),
    }
}

/// What a window of sends told the loop to do next.
enum Verdict {
    Continue,
    Pause {
        until: DateTime<Utc>,
        reason: String,
    },
    Stop {
        channel: ChannelKind,
        reason: String,
    },
}

impl Rassylka {
    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    async fn record(&self, id: &str) -> Result<MailingRecord, DispatchError> {
        self.inner
            .store
            .mailing(id)
            .await?
            .ok_or_else(|| DispatchError::UnknownMailing(id.to_owned()))
    }

    async fn set_state(
        &self,
        id: &str,
        state: MailingState,
        reason: Option<String>,
        paused_until: Option<DateTime<Utc>>,
    ) -> Result<(), DispatchError> {
        let mut record = self.record(id).await?;
        record.state = state;
        record.reason = reason;
        record.paused_until = paused_until;
        self.inner.store.save_mailing(&record).await
    }

    /// Refuses `action` unless the mailing is in one of `allowed`.
    async fn require_state(
        &self,
        id: &str,
        allowed: &[MailingState],
        action: &'static str,
    ) -> Result<(), DispatchError> {
        let state = self.record(id).await?.state;
        if allowed.contains(&state) {
            Ok(())
        } else {
            Err(DispatchError::WrongState {
                id: id.into(),
                state: state.to_string(),
                action,
            })
        }
    }

    /// The date a preview evaluates on: the next occurrence's, else today in the zone.
    fn default_today(&self, mailing: &Mailing) -> NaiveDate {
        let now = self.now();
        mailing
            .schedule
            .as_ref()
            .and_then(|s| s.next_after(now - TimeDelta::seconds(1)))
            .map_or_else(
                || now.with_timezone(&mailing.zone()).date_naive(),
                |o| o.evaluation_date(),
            )
    }

    /// Contacts reported gone, by recipient.
    async fn unreachable_set(&self) -> Result<HashMap<String, ChannelSet>, DispatchError> {
        let mut gone: HashMap<String, ChannelSet> = HashMap::new();
        for (recipient, channel) in self.inner.store.unreachable().await? {
            gone.entry(recipient)
                .or_insert(ChannelSet::EMPTY)
                .insert(channel);
        }
        Ok(gone)
    }

    /// Streams the source through the planner, handing each batch to `sink`.
    async fn stream_plan<F>(
        &self,
        planner: &mut Planner<'_>,
        mut sink: F,
    ) -> Result<(u64, Vec<Problem>), DispatchError>
    where
        F: FnMut(
                Vec<NewDelivery>,
            )
                -> futures_util::future::BoxFuture<'static, Result<(), DispatchError>>
            + Send,
    {
        let mut stream = self
            .inner
            .source
            .scan()
            .await
            .map_err(DispatchError::Source)?;
        let mut batch = Vec::with_capacity(self.inner.batch);
        let mut matched = 0;
        let mut problems = Vec::new();
        let mut in_flight: Option<tokio::task::JoinHandle<Result<(), DispatchError>>> = None;
        let join = |handle: tokio::task::JoinHandle<Result<(), DispatchError>>| async move {
            handle.await.map_err(DispatchError::store)?
        };
        while let Some(item) = stream.next().await {
            match item {
                Ok(r) => {
                    if planner.plan(&r, &mut batch) == Planned::Matched {
                        matched += 1;
                    }
                }
                Err((place, error)) => {
                    if self.inner.skip_malformed {
                        batch.push(planner.unreadable(&place, &error));
                    }
                    problems.push(Problem {
                        path: place,
                        message: error,
                    });
                }
            }
            if batch.len() >= self.inner.batch {
                // The previous batch is written while this one was planned: one write in
                // flight overlaps the store with parsing and rendering.
                if let Some(previous) = in_flight.take() {
                    join(previous).await?;
                }
                let full = std::mem::replace(&mut batch, Vec::with_capacity(self.inner.batch));
                in_flight = Some(tokio::spawn(sink(full)));
            }
        }
        if let Some(previous) = in_flight.take() {
            join(previous).await?;
        }
        if !batch.is_empty() {
            sink(batch).await?;
        }
        Ok((matched, problems))
    }

    /// Plans the mailing for `today` without writing anything: recipients matched, and per
    /// selected channel the deliveries (first rank only in priority mode), units and cost.
    async fn plan_counts(
        &self,
        mailing: &Mailing,
        today: Option<NaiveDate>,
    ) -> Result<(u64, CostReport), DispatchError> {
        let today = today.unwrap_or_else(|| self.default_today(mailing));
        let mut planner = Planner::new(
            mailing,
            today,
            self.now(),
            format!("{}/preview", mailing.id),
            &self.inner.tariffs,
            self.unreachable_set().await?,
        )?;
        let mut totals = CostReport::default();
        for channel in &mailing.channels {
            totals.per_channel.insert(*channel, ChannelCost::default());
        }
        // Each batch is folded into the running totals, so memory stays flat.
        let totals = Arc::new(std::sync::Mutex::new(totals));
        let sink_totals = Arc::clone(&totals);
        let (matched, problems) = self
            .stream_plan(&mut planner, move |batch| {
                let totals = Arc::clone(&sink_totals);
                Box::pin(async move {
                    let mut totals = totals.lock().unwrap_or_else(|e| e.into_inner());
                    for d in batch.iter().filter(|d| d.status == DeliveryStatus::Queued) {
                        if let Some(channel) = d.channel {
                            let entry = totals.per_channel.entry(channel).or_default();
                            entry.messages += 1;
                            entry.units += u64::from(d.units);
                            entry.cost += d.cost.unwrap_or_default();
                        }
                    }
                    Ok(())
                })
            })
            .await?;
        if !problems.is_empty() && !self.inner.skip_malformed {
            return Err(DispatchError::MalformedRecipients(problems));
        }
        let mut totals = std::mem::take(&mut *totals.lock().unwrap_or_else(|e| e.into_inner()));
        totals.total = totals.per_channel.values().map(|c| c.cost).sum();
        Ok((matched, totals))
    }

    /// Sends one claimed delivery. Its texts move into the message: afterwards only its id,
    /// attempts, channel and recipient are needed.
    async fn send_one(
        &self,
        delivery: &mut Delivery,
    ) -> Result<rassylka_channels::Receipt, ChannelError> {
        let planned = &mut delivery.planned;
        let channel_kind = planned
            .channel
            .ok_or_else(|| ChannelError::rejected("a delivery without a channel"))?;
        let channel = self.inner.channels.get(&channel_kind).ok_or_else(|| {
            ChannelError::configuration(format!("channel `{channel_kind}` is not configured"))
        })?;
        let to = address_of(channel_kind, planned.address.as_deref().unwrap_or_default())
            .map_err(ChannelError::rejected)?;
        let mut message = Message::new(
            std::mem::take(&mut planned.delivery_key),
            planned.text.take().unwrap_or_default(),
        );
        if let Some(subject) = planned.subject.take() {
            message = message.with_subject(subject);
        }
        if let Some(html) = planned.html.take() {
            message = message.with_html(html);
        }
        if let Some(image) = &planned.image {
            message = message.with_image(Image::parse(image));
        }
        channel.send(&to, &message).await
    }

    fn retry_delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = backon::ExponentialBuilder::default()
            .with_min_delay(self.inner.backoff.0)
            .with_max_delay(self.inner.backoff.1)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(usize::try_from(attempt).unwrap_or(usize::MAX))
            .build()
            .last()
            .unwrap_or(self.inner.backoff.0);
        retry_after.map_or(backoff, |after| after.max(backoff))
    }

    /// Sends queued deliveries of one occurrence until none is due; returns why it stopped.
    async fn send_occurrence(
        &self,
        mailing: &Mailing,
        occurrence: &OccurrenceRecord,
    ) -> Result<Verdict, DispatchError> {
        let store = &self.inner.store;
        let started = std::time::Instant::now();
        let mut progress = match &self.inner.progress {
            Some(_) => {
                let counts = store.counts(occurrence.id).await?;
                let total = DeliveryStatus::ALL
                    .iter()
                    .map(|s| counts.get(*s))
                    .sum::<u64>();
                Some(Progress {
                    occurrence: occurrence.key.clone(),
                    done: total - counts.queued - counts.standby - counts.sending,
                    total,
                })
            }
            None => None,
        };
        // The next batch, claimed together with the previous batch's results.
        let mut next: Option<Vec<Delivery>> = None;
        // Recipients reached whose bonus is not accrued yet: the ledger is called once per
        // several batches, in the background while sending goes on. A crash before that
        // leaves them to `accrue_pending`.
        let mut owed: Vec<String> = Vec::new();
        let mut accruals = Accruals::new(self, mailing, occurrence);
        // When the mailing was last seen queued.
        let mut checked: Option<std::time::Instant> = None;
        let verdict = loop {
            // The operator may pause or cancel while a big occurrence is being sent; the
            // state is read every so often rather than for every batch.
            if checked.is_none_or(|at| at.elapsed() >= STATE_CHECK) {
                let state = match self.record(&mailing.id).await {
                    Ok(record) => record.state,
                    Err(e) => {
                        self.requeue(occurrence.id, next.take()).await?;
                        return Err(e);
                    }
                };
                if state != MailingState::Queued {
                    self.requeue(occurrence.id, next.take()).await?;
                    break Verdict::Continue;
                }
                checked = Some(std::time::Instant::now());
            }
            // A failed accrual stops the run before more is claimed.
            if let Err(e) = accruals.check() {
                self.requeue(occurrence.id, next.take()).await?;
                return Err(e);
            }
            let now = self.now();
            let claimed = match next.take() {
                Some(claimed) => claimed,
                None => {
                    store
                        .claim(occurrence.id, now, self.inner.concurrency)
                        .await?
                }
            };
            if claimed.is_empty() {
                let Some(due) = store.next_due(occurrence.id).await? else {
                    break Verdict::Continue;
                };
                let wait = (due - now).to_std().unwrap_or_default();
                if started.elapsed() + wait > self.inner.max_wait {
                    break Verdict::Continue;
                }
                accruals.finish(std::mem::take(&mut owed)).await?;
                tokio::time::sleep(wait.max(Duration::from_millis(5))).await;
                continue;
            }
            let this = self.clone();
            let sends = futures_util::stream::iter(claimed.into_iter().map(move |mut d| {
                let this = this.clone();
                async move {
                    let outcome = this.send_one(&mut d).await;
                    (d, outcome)
                }
            }))
            .buffer_unordered(self.inner.concurrency)
            .collect::<Vec<_>>()
            .await;
            let now = self.now();
            let mut results = Vec::with_capacity(sends.len());
            let mut verdict = Verdict::Continue;
            // Contacts reported gone, remembered once the results are safely recorded.
            let mut gone: Vec<(String, ChannelKind, String)> = Vec::new();
            // Who was reached, to accrue bonuses once the results are recorded.
            let mut reached: Vec<String> = Vec::new();
            for (delivery, outcome) in sends {
                let id = delivery.id;
                match outcome {
                    Ok(receipt) => {
                        if mailing.bonus.is_some() {
                            reached.push(delivery.planned.recipient_id);
                        }
                        let cost = receipt.cost.map(|m| m.0);
                        results.push(DeliveryResult::Sent {
                            id,
                            provider_id: Some(receipt.provider_id),
                            cost,
                        });
                    }
                    Err(e) => {
                        let class = e.class();
                        let text = e.to_string();
                        match class {
                            ErrorClass::Transient
                                if delivery.attempts < self.inner.max_attempts =>
                            {
                                let delay = self.retry_delay(delivery.attempts, e.retry_after());
                                results.push(DeliveryResult::Retry {
                                    id,
                                    not_before: now
                                        + TimeDelta::from_std(delay).unwrap_or_default(),
                                    class: class.as_str().into(),
                                    error: text,
                                });
                            }
                            ErrorClass::Quota => {
                                results.push(DeliveryResult::Requeue { id });
                                let until = e
                                    .retry_after()
                                    .and_then(|d| TimeDelta::from_std(d).ok())
                                    .map_or_else(
                                        || next_local_midnight(now, mailing.zone()),
                                        |d| now + d,
                                    );
                                // A configuration stop in the same batch wins over a pause.
                                if matches!(verdict, Verdict::Continue) {
                                    verdict = Verdict::Pause {
                                        until,
                                        reason: text,
                                    };
                                }
                            }
                            ErrorClass::Configuration => {
                                results.push(DeliveryResult::Requeue { id });
                                verdict = Verdict::Stop {
                                    channel: delivery.planned.channel.unwrap_or(ChannelKind::Email),
                                    reason: text,
                                };
                            }
                            _ => {
                                if class == ErrorClass::RecipientGone
                                    && let Some(channel) = delivery.planned.channel
                                {
                                    gone.push((
                                        delivery.planned.recipient_id.clone(),
                                        channel,
                                        text.clone(),
                                    ));
                                }
                                results.push(DeliveryResult::Failed {
                                    id,
                                    class: class.as_str().into(),
                                    error: text,
                                });
                            }
                        }
                    }
                }
            }
            // The next batch is claimed with these results unless the mailing stops here.
            if matches!(verdict, Verdict::Continue) {
                match store
                    .record_and_claim(occurrence.id, &results, now, self.inner.concurrency)
                    .await
                {
                    Ok(claimed) => next = Some(claimed),
                    Err(e) => {
                        // The claim may be what failed: the results of a batch already sent
                        // are kept if they can be, so it does not come back as unknown.
                        let _ = store.record(occurrence.id, &results, now).await;
                        return Err(e);
                    }
                }
            } else {
                store.record(occurrence.id, &results, now).await?;
            }
            // Whatever fails from here on puts the batch just claimed back unsent.
            if let Err(e) = self.remember_gone(gone).await {
                self.requeue(occurrence.id, next.take()).await?;
                return Err(e);
            }
            if mailing.bonus.is_some() {
                owed.append(&mut reached);
                if owed.len() >= ACCRUAL_BATCH
                    && let Err(e) = accruals.start(std::mem::take(&mut owed)).await
                {
                    // A failing ledger stops the run; what was claimed goes back unsent.
                    self.requeue(occurrence.id, next.take()).await?;
                    return Err(e);
                }
            }
            if let (Some(progress), Some(hook)) = (progress.as_mut(), &self.inner.progress) {
                progress.done += results
                    .iter()
                    .filter(|r| {
                        !matches!(
                            r,
                            DeliveryResult::Retry { .. } | DeliveryResult::Requeue { .. }
                        )
                    })
                    .count() as u64;
                hook(progress);
            }
            if !matches!(verdict, Verdict::Continue) {
                break verdict;
            }
        };
        accruals.finish(owed).await?;
        Ok(verdict)
    }

    /// Remembers contacts a channel reported gone, in the journal and at the source.
    async fn remember_gone(
        &self,
        gone: Vec<(String, ChannelKind, String)>,
    ) -> Result<(), DispatchError> {
        for (recipient_id, channel, reason) in gone {
            self.inner
                .store
                .mark_unreachable(&recipient_id, channel, &reason)
                .await?;
            self.inner
                .source
                .mark_unreachable(&recipient_id, channel)
                .await
                .map_err(DispatchError::Source)?;
        }
        Ok(())
    }

    /// Puts claimed deliveries back in the queue unsent, their attempt not counted.
    async fn requeue(
        &self,
        occurrence_id: i64,
        claimed: Option<Vec<Delivery>>,
    ) -> Result<(), DispatchError> {
        let Some(claimed) = claimed else {
            return Ok(());
        };
        let back: Vec<DeliveryResult> = claimed
            .iter()
            .map(|d| DeliveryResult::Requeue { id: d.id })
            .collect();
        self.inner
            .store
            .record(occurrence_id, &back, self.now())
            .await
    }

    /// Accrues the mailing's bonus to `recipients` reached by `occurrence`, skipping those
    /// already accrued: the ledger first, then the journal, so a crash in between repeats the
    /// ledger call with the same key rather than losing the accrual.
    async fn accrue_for(
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
            .inner
            .store
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
        self.inner
            .store
            .finish_accruals(occurrence.id, &recipients)
            .await
    }

    /// Accruals a crashed run sent for but did not record; paged, so memory stays flat.
    async fn accrue_pending(
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
                .inner
                .store
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

    /// Freezes (if not yet) and sends one occurrence.
    async fn run_occurrence(
        &self,
        mailing: &Mailing,
        occurrence: OccurrenceRecord,
        report: &mut RunReport,
    ) -> Result<Verdict, DispatchError> {
        let store = &self.inner.store;
        let mut frozen_now = false;
        if occurrence.state == OccurrenceState::Freezing {
            let mut planner = Planner::new(
                mailing,
                occurrence.evaluation_date,
                occurrence.fired_at,
                occurrence.key.clone(),
                &self.inner.tariffs,
                self.unreachable_set().await?,
            )?;
            // Another dispatcher may have frozen it meanwhile: then only sending is left.
            if let Some(freeze) = store.begin_freeze(occurrence.id, self.now()).await? {
                let freeze = Arc::new(tokio::sync::Mutex::new(freeze));
                let sink = Arc::clone(&freeze);
                // The whole source is read before anything is sent: without skipping, a
                // malformed line refuses the run and nothing written stays; the occurrence is
                // frozen again by the next run once the input is fixed.
                let (_, problems) = self
                    .stream_plan(&mut planner, move |batch| {
                        let freeze = Arc::clone(&sink);
                        Box::pin(async move { freeze.lock().await.write(batch).await })
                    })
                    .await?;
                if !problems.is_empty() && !self.inner.skip_malformed {
                    return Err(DispatchError::MalformedRecipients(problems));
                }
                let freeze = Arc::try_unwrap(freeze)
                    .map_err(|_| DispatchError::store("a freeze write is still running"))?
                    .into_inner();
                report.listed_again += freeze.commit(planner.keys_unique()).await?;
                frozen_now = true;
            }
        }
        let idempotent: Vec<ChannelKind> = self
            .inner
            .channels
            .iter()
            .filter(|(_, c)| c.takes_idempotency_key())
            .map(|(k, _)| *k)
            .collect();
        // An occurrence this run froze has sent nothing: there is nothing to recover.
        if !frozen_now {
            report.recovered_unknown += store
                .recover(occurrence.id, &idempotent, self.now())
                .await?;
            self.accrue_pending(mailing, &occurrence).await?;
        }
        let verdict = self.send_occurrence(mailing, &occurrence).await?;
        let counts = store.counts(occurrence.id).await?;
        if counts.queued == 0 && counts.sending == 0 && counts.standby == 0 {
            store
                .set_occurrence_state(occurrence.id, OccurrenceState::Done)
                .await?;
        } else if let Some(due) = store.next_due(occurrence.id).await? {
            report.next_due = Some(report.next_due.map_or(due, |d| d.min(due)));
        }
        report.counts.merge(&counts);
        report.occurrences.push(occurrence.key.clone());
        Ok(verdict)
    }

    /// Runs what is due for one mailing.
    pub async fn run_mailing(&self, mailing_id: &str) -> Result<RunReport, DispatchError> {
        let mut report = RunReport::default();
        self.run_mailing_into(mailing_id, &mut report).await?;
        Ok(report)
    }

    async fn run_mailing_into(
        &self,
        mailing_id: &str,
        report: &mut RunReport,
    ) -> Result<(), DispatchError> {
        let store = &self.inner.store;
        let mut record = self.record(mailing_id).await?;
        let now = self.now();
        match record.state {
            MailingState::Queued => {}
            MailingState::Paused if record.paused_until.is_some_and(|until| until <= now) => {
                record.state = MailingState::Queued;
                record.paused_until = None;
                record.reason = None;
                store.save_mailing(&record).await?;
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
        // «Send now» fires at the instant confirmation recorded, so a repeated run finds the
        // same key however late it comes.
        if mailing.schedule.is_none()
            && history.is_empty()
            && let Some(confirmed) = record.checked_at
        {
            let schedule = Schedule::send_now(confirmed, mailing.zone())
                .map_err(|e| invalid("schedule", e))?;
            if let Some(occurrence) = schedule.next_after(confirmed - TimeDelta::minutes(1)) {
                let key = occurrence
                    .key(&mailing.id, record.version)
                    .map_err(|e| invalid("id", e))?;
                store
                    .start_occurrence(&NewOccurrence {
                        mailing_id: mailing.id.clone(),
                        key: key.to_string(),
                        fired_at: occurrence.utc(),
                        evaluation_date: occurrence.evaluation_date(),
                        state: OccurrenceState::Freezing,
                    })
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
            // A periodic mailing with date rules catches up every missed run date, each
            // evaluated with its own «today», so a downtime skips nobody; delivery keys make
            // the re-runs safe. Others follow the schedule's misfire policy.
            let last_run = history
                .iter()
                .filter(|o| o.state != OccurrenceState::Missed)
                .map(|o| o.evaluation_date)
                .max();
            let decided: Vec<(rassylka_schedule::Occurrence, OccurrenceState)> = match last_run {
                Some(last)
                    if mailing.kind == MailingKind::Periodic
                        && uses_dates(&mailing.audience.to_value()) =>
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
            };
            for (occurrence, state) in decided {
                let key = occurrence
                    .key(&mailing.id, record.version)
                    .map_err(|e| invalid("schedule", e))?;
                let start = store
                    .start_occurrence(&NewOccurrence {
                        mailing_id: mailing.id.clone(),
                        key: key.to_string(),
                        fired_at: occurrence.utc(),
                        evaluation_date: occurrence.evaluation_date(),
                        state,
                    })
                    .await?;
                match (start, state) {
                    (OccurrenceStart::Created(o), OccurrenceState::Freezing) => pending.push(o),
                    (OccurrenceStart::Created(o), _) => report.missed.push(o.key),
                    (OccurrenceStart::Existing(_), _) => {}
                }
            }
            // Re-read, so a pause or cancel made meanwhile is not overwritten.
            let mut fresh = self.record(mailing_id).await?;
            fresh.checked_at = Some(now);
            store.save_mailing(&fresh).await?;
        }
        pending.sort_by_key(|o| (o.fired_at, o.id));
        pending.dedup_by_key(|o| o.id);
        for occurrence in pending {
            match self.run_occurrence(&mailing, occurrence, report).await? {
                Verdict::Continue => {}
                Verdict::Pause { until, reason } => {
                    self.set_state(mailing_id, MailingState::Paused, Some(reason), Some(until))
                        .await?;
                    report.next_due = Some(report.next_due.map_or(until, |d| d.min(until)));
                    return Ok(());
                }
                Verdict::Stop { channel, reason } => {
                    self.set_state(
                        mailing_id,
                        MailingState::Stopped,
                        Some(reason.clone()),
                        None,
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
        // A one-time mailing is done once its occurrence is.
        let occurrences = store.occurrences(Some(mailing_id)).await?;
        let finished = !occurrences.is_empty()
            && occurrences
                .iter()
                .all(|o| matches!(o.state, OccurrenceState::Done | OccurrenceState::Missed));
        let repeats = mailing.schedule.as_ref().is_some_and(|s| {
            s.next_after(now).is_some() && s.every() != rassylka_schedule::Every::Once
        });
        if finished && !repeats && self.record(mailing_id).await?.state == MailingState::Queued {
            self.set_state(mailing_id, MailingState::Done, None, None)
                .await?;
        }
        Ok(())
    }

    /// Puts the deliveries left «unknown» by a crash back in the queue, on the operator's
    /// word that they were not delivered. Returns how many.
    ///
    /// # Errors
    /// [`DispatchError::Store`] when the journal cannot be updated.
    pub async fn resend_unknown(&self, mailing_id: &str) -> Result<u64, DispatchError> {
        let mut n = 0;
        for occurrence in self.inner.store.occurrences(Some(mailing_id)).await? {
            let requeued = self
                .inner
                .store
                .requeue_unknown(occurrence.id, self.now())
                .await?;
            if requeued > 0 && occurrence.state == OccurrenceState::Done {
                self.inner
                    .store
                    .set_occurrence_state(occurrence.id, OccurrenceState::Frozen)
                    .await?;
            }
            n += requeued;
        }
        // A one-time mailing that looked finished has work again.
        let record = self.record(mailing_id).await?;
        if n > 0 && record.state == MailingState::Done {
            self.set_state(mailing_id, MailingState::Queued, None, None)
                .await?;
        }
        Ok(n)
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
        self.inner
            .store
            .deliveries(occurrence_id, after_id, limit)
            .await
    }
}

/// How many missed run dates a date-rule mailing catches up at most (a month of daily runs).
const CATCH_UP_LIMIT: usize = 31;

/// Runs a catch-up looks back over: those beyond [`CATCH_UP_LIMIT`] are journaled as missed.
const CATCH_UP_SEEN: usize = 10_000;

/// Recipients whose bonuses go to the ledger in one call (several send batches).
const ACCRUAL_BATCH: usize = 4096;

/// How often a send loop reads the mailing's state to notice a pause or a cancel.
const STATE_CHECK: Duration = Duration::from_millis(100);

/// Bonus accruals of one occurrence, one call to the ledger at a time running beside the
/// send loop.
struct Accruals {
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
    fn new(dispatcher: &Rassylka, mailing: &Mailing, occurrence: &OccurrenceRecord) -> Self {
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
    fn check(&mut self) -> Result<(), DispatchError> {
        if !self.running.as_ref().is_some_and(|r| r.is_finished()) {
            return Ok(());
        }
        match self
            .running
            .take()
            .and_then(futures_util::FutureExt::now_or_never)
        {
            Some(Ok(result)) => result,
            Some(Err(e)) => Err(DispatchError::store(e)),
            None => Ok(()),
        }
    }

    /// Waits for the running accrual.
    async fn wait(&mut self) -> Result<(), DispatchError> {
        match self.running.take() {
            Some(running) => running.await.map_err(DispatchError::store)?,
            None => Ok(()),
        }
    }

    /// Starts accruing to `recipients` once the previous accrual has ended.
    async fn start(&mut self, recipients: Vec<String>) -> Result<(), DispatchError> {
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
    async fn finish(&mut self, recipients: Vec<String>) -> Result<(), DispatchError> {
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

/// Whether a rule has a date leaf (`{"date": …}`) anywhere.
fn uses_dates(rule: &serde_json::Value) -> bool {
    match rule {
        serde_json::Value::Object(map) => map.contains_key("date") || map.values().any(uses_dates),
        serde_json::Value::Array(items) => items.iter().any(uses_dates),
        _ => false,
    }
}

fn invalid(path: &str, e: impl std::fmt::Display) -> DispatchError {
    DispatchError::InvalidMailing(vec![Problem {
        path: path.into(),
        message: e.to_string(),
    }])
}

fn next_local_midnight(now: DateTime<Utc>, zone: chrono_tz::Tz) -> DateTime<Utc> {
    let tomorrow = now.with_timezone(&zone).date_naive() + Days::new(1);
    // Midnight may fall in a DST gap somewhere; the first valid instant of the day is fine.
    (0..24)
        .find_map(|h| {
            tomorrow
                .and_hms_opt(h, 0, 0)
                .and_then(|t| t.and_local_timezone(zone).earliest())
        })
        .map_or(now + TimeDelta::days(1), |t| t.with_timezone(&Utc))
}

#[async_trait]
impl Dispatcher for Rassylka {
    async fn save(&self, mailing: &Mailing) -> Result<(), DispatchError> {
        let store = &self.inner.store;
        let json = mailing.to_json();
        let record = match store.mailing(&mailing.id).await? {
            None => MailingRecord {
                id: mailing.id.clone(),
                json,
                state: MailingState::Draft,
                version: 1,
                checked_at: None,
                paused_until: None,
                reason: None,
            },
            Some(mut old) => {
                let old_schedule = Mailing::from_json(&old.json).ok().and_then(|m| m.schedule);
                if old_schedule != mailing.schedule {
                    old.version += 1;
                }
                old.json = json;
                old
            }
        };
        store.save_mailing(&record).await
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
        let mut record = self.record(mailing_id).await?;
        if record.state != MailingState::Draft {
            return Err(DispatchError::WrongState {
                id: mailing_id.into(),
                state: record.state.to_string(),
                action: "confirm",
            });
        }
        let mailing = Mailing::from_json(&record.json)?;
        let now = self.now();
        record.checked_at = Some(match &mailing.schedule {
            // «Send now»: the run creates the one occurrence at this instant.
            None => now,
            // Confirmed before its start, a schedule counts from its start.
            Some(schedule) => schedule
                .next_after(DateTime::<Utc>::MIN_UTC)
                .map(|o| o.utc() - TimeDelta::milliseconds(1))
                .map_or(now, |start| start.min(now)),
        });
        record.state = MailingState::Queued;
        self.inner.store.save_mailing(&record).await
    }

    async fn pause(&self, mailing_id: &str) -> Result<(), DispatchError> {
        self.require_state(mailing_id, &[MailingState::Queued], "pause")
            .await?;
        self.set_state(
            mailing_id,
            MailingState::Paused,
            Some("paused by the operator".into()),
            None,
        )
        .await
    }

    async fn resume(&self, mailing_id: &str) -> Result<(), DispatchError> {
        self.require_state(
            mailing_id,
            &[MailingState::Paused, MailingState::Stopped],
            "resume",
        )
        .await?;
        self.set_state(mailing_id, MailingState::Queued, None, None)
            .await
    }

    async fn cancel(&self, mailing_id: &str) -> Result<(), DispatchError> {
        let open = [
            MailingState::Draft,
            MailingState::Queued,
            MailingState::Paused,
            MailingState::Stopped,
        ];
        self.require_state(mailing_id, &open, "cancel").await?;
        self.set_state(
            mailing_id,
            MailingState::Cancelled,
            Some("cancelled by the operator".into()),
            None,
        )
        .await
    }

    async fn run_due(&self) -> Result<RunReport, DispatchError> {
        let mut report = RunReport::default();
        for record in self.inner.store.mailings().await? {
            match self.run_mailing_into(&record.id, &mut report).await {
                Ok(()) => {}
                // The store or the source is down: nothing else can run either.
                Err(e) if e.is_transient() => return Err(e),
                // One mailing's problem does not hold up the others.
                Err(e) => report.failures.push((record.id.clone(), e.to_string())),
            }
        }
        Ok(report)
    }

    async fn occurrences(&self, mailing_id: &str) -> Result<Vec<OccurrenceRecord>, DispatchError> {
        self.inner.store.occurrences(Some(mailing_id)).await
    }
}
