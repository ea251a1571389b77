//! The send loop of one occurrence, as a sliding window. A worker holds at most `concurrency`
//! rows at any moment (claimed, in flight, or ended and not yet recorded: what a kill can
//! leave unknown) and sends all it holds at once. Once half of them have ended, their results
//! are recorded and as many rows claimed in one write that runs in a task of its own while
//! the other half is sent and judged: the journal's work (SQLite's thread, PostgreSQL's
//! server) and the dispatcher's overlap instead of taking turns, and a slow channel still has
//! more than half the limit in flight.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rassylka_channels::{ChannelError, Receipt};
use rassylka_model::{ChannelKind, MessageClass};

use super::ended::{Ended, InFlight, Tally};
use super::journal::{Claimed, WriteOrder, Writing, Written};
use super::lease::Renewal;
use super::outage::OutageWatch;
use super::policy::Verdict;
use super::suppress::unsubscribed_among;
use crate::DispatchError;
use crate::bonus::Accruals;
use crate::consent::Links;
use crate::dispatcher::{Rassylka, RunReport};
use crate::mailing::Mailing;
use crate::store::{Delivery, Lease, MailingState, OccurrenceRecord};

/// How often a send loop reads the mailing's state to notice a pause or a cancel.
const STATE_CHECK: Duration = Duration::from_millis(100);

/// How long a worker waits before looking again at rows another live worker is sending.
const OTHERS_POLL: Duration = Duration::from_millis(200);

/// What stays the same through one pass over an occurrence.
struct Pass<'a> {
    mailing: &'a Mailing,
    occurrence: &'a OccurrenceRecord,
    lease: Lease,
    concurrency: usize,
    /// What an advertising e-mail's unsubscribe headers are made of.
    list: Option<Arc<(Links, String)>>,
    advertising: bool,
    /// Whether some channel has provider limits, whose count is read again now and then.
    limited: bool,
    started: Instant,
}

/// A write in flight, and what follows its results once recorded.
struct Pending {
    writing: Writing,
    gone: Vec<(i64, (String, ChannelKind, String))>,
    reached: Vec<(i64, String)>,
}

/// What a worker holds and owes while it sends.
struct Window {
    in_flight: InFlight,
    ended: Ended,
    writing: Option<Pending>,
    verdict: Verdict,
    /// Nothing more is claimed: the mailing left the queue, or the loop winds down.
    closing: bool,
    /// Winding down after an error: neither the mailing's state nor the ledger is consulted.
    winding_down: bool,
    /// Channels that failed as a whole (SPEC §7b) in this pass.
    outages: OutageWatch,
    tally: Tally,
    /// When the provider limits' count was last read.
    usage_read: Instant,
    /// When the mailing was last seen queued.
    checked: Option<Instant>,
}

/// What the loop waits for.
#[expect(
    clippy::large_enum_variant,
    reason = "one value per turn of the loop, moved once: boxing it would allocate per send"
)]
enum Event {
    Written(Result<Written, DispatchError>),
    Ended((Delivery, Result<Receipt, ChannelError>)),
    Nothing,
}

impl Rassylka {
    /// Sends queued deliveries of one occurrence until none is due and no other worker holds
    /// any; returns why it stopped.
    pub(super) async fn send_occurrence(
        &self,
        mailing: &Mailing,
        occurrence: &OccurrenceRecord,
        report: &mut RunReport,
    ) -> Result<Verdict, DispatchError> {
        let lease = self.lease();
        let _renewal = Renewal::start(self.store().clone(), occurrence.id, lease.clone());
        self.start_account_usage().await?;
        let list = match mailing.class {
            MessageClass::Advertising if self.inner.channels.contains_key(&ChannelKind::Email) => {
                Some(Arc::new((self.links().await?, mailing.id.clone())))
            }
            _ => None,
        };
        let progress = match &self.inner.progress {
            Some(_) => Some(self.progress(occurrence).await?),
            None => None,
        };
        let pass = Pass {
            mailing,
            occurrence,
            lease,
            concurrency: self.inner.config.concurrency,
            list,
            advertising: mailing.class == MessageClass::Advertising,
            limited: self
                .inner
                .channels
                .values()
                .any(|channel| channel.account_limits().is_some()),
            started: Instant::now(),
        };
        let mut window = Window {
            in_flight: InFlight::new(),
            ended: Ended::default(),
            writing: None,
            verdict: Verdict::Continue,
            closing: false,
            winding_down: false,
            outages: OutageWatch::default(),
            tally: Tally {
                progress,
                owed: Vec::new(),
                accruals: Accruals::new(self, mailing, occurrence),
            },
            usage_read: Instant::now(),
            checked: None,
        };
        match self.slide(&pass, &mut window, report).await {
            Ok(verdict) => {
                let owed = std::mem::take(&mut window.tally.owed);
                window.tally.accruals.finish(owed).await?;
                // A channel down pauses the mailing once the rest is sent.
                Ok(match (verdict, window.outages.pause()) {
                    (Verdict::Continue, Some((until, reason))) => Verdict::Pause { until, reason },
                    (verdict, _) => verdict,
                })
            }
            Err(e) => {
                // What is in flight ends and is recorded, what was claimed and not sent goes
                // back unsent, as far as the journal lets; the first error is the one told.
                window.closing = true;
                window.winding_down = true;
                let _ = self.slide(&pass, &mut window, report).await;
                Err(e)
            }
        }
    }

    /// The loop: claims, sends, judges and writes until nothing is due (or the mailing left
    /// the queue, or a verdict stops it) and this worker holds nothing.
    async fn slide(
        &self,
        pass: &Pass<'_>,
        w: &mut Window,
        report: &mut RunReport,
    ) -> Result<Verdict, DispatchError> {
        let store = self.store();
        let occurrence_id = pass.occurrence.id;
        loop {
            if !w.winding_down {
                // The operator (or another worker) may pause or cancel while a big occurrence
                // is being sent; the state is read every so often rather than for every row.
                if !w.closing && w.checked.is_none_or(|at| at.elapsed() >= STATE_CHECK) {
                    if self.record(&pass.mailing.id).await?.state != MailingState::Queued {
                        w.closing = true;
                    }
                    w.checked = Some(Instant::now());
                }
                // A failed accrual stops the run before more is claimed.
                w.tally.accruals.check()?;
            }
            let closing = w.closing || !matches!(w.verdict, Verdict::Continue);
            // Other workers spend the same provider limits: their count is read again now
            // and then, so together they overshoot by at most what they send meanwhile. Only
            // while this worker holds nothing: a row it holds counts as `sending` in the
            // journal and again when the channel sends it.
            let count_due =
                pass.limited && w.usage_read.elapsed() >= self.inner.config.usage_refresh;
            if w.writing.is_none() {
                if w.in_flight.is_empty() && w.ended.results.is_empty() {
                    if closing {
                        return Ok(std::mem::replace(&mut w.verdict, Verdict::Continue));
                    }
                    if count_due {
                        self.start_account_usage().await?;
                        w.usage_read = Instant::now();
                    }
                    let now = self.now();
                    let claimed = store
                        .claim(occurrence_id, &pass.lease, now, pass.concurrency)
                        .await?;
                    if claimed.is_empty() {
                        if self.idle(pass, w, now, report).await? {
                            continue;
                        }
                        return Ok(Verdict::Continue);
                    }
                    match unsubscribed_among(store.as_ref(), pass.advertising, &claimed).await {
                        Ok(unsubscribed) => self.start_sends(
                            claimed,
                            &unsubscribed,
                            &w.outages,
                            pass.list.as_ref(),
                            &mut w.in_flight,
                            &mut w.ended,
                        ),
                        Err(e) => {
                            self.put_back(occurrence_id, &pass.lease, claimed).await?;
                            return Err(e.into());
                        }
                    }
                    continue;
                }
                if w.ended.results.len() >= pass.concurrency.div_ceil(2) || w.in_flight.is_empty()
                {
                    let claim = if closing || count_due {
                        0
                    } else {
                        pass.concurrency.saturating_sub(w.in_flight.len())
                    };
                    let Ended {
                        results,
                        gone,
                        reached,
                    } = std::mem::take(&mut w.ended);
                    let order = WriteOrder {
                        occurrence_id,
                        lease: pass.lease.clone(),
                        results,
                        now: self.now(),
                        claim,
                        advertising: pass.advertising,
                    };
                    w.writing = Some(Pending {
                        writing: Writing::start(store.clone(), order),
                        gone,
                        reached,
                    });
                }
            }
            match next_event(&mut w.writing, &mut w.in_flight).await {
                Event::Ended(ended) => {
                    self.judge_ended(
                        pass.mailing,
                        ended,
                        &mut w.outages,
                        &mut w.verdict,
                        &mut w.ended,
                    )
                    .await;
                }
                Event::Written(written) => {
                    let pending = w.writing.take();
                    let mut written = written?;
                    let claimed = written.claimed.take();
                    let (gone, reached) = pending.map(|p| (p.gone, p.reached)).unwrap_or_default();
                    if let Err(e) = self
                        .tally(&written, gone, reached, &mut w.tally, report)
                        .await
                    {
                        if let Some(claimed) = claimed {
                            self.put_back(occurrence_id, &pass.lease, claimed.rows)
                                .await?;
                        }
                        return Err(e);
                    }
                    if let Some(claimed) = claimed {
                        self.take_claim(pass, w, claimed, report).await?;
                    }
                }
                Event::Nothing => {}
            }
        }
    }

    /// Starts sending rows a write claimed; puts them back unsent when nothing more is to be
    /// sent, or when this worker stalled past half its lease and lost rows meanwhile.
    async fn take_claim(
        &self,
        pass: &Pass<'_>,
        w: &mut Window,
        claimed: Claimed,
        report: &mut RunReport,
    ) -> Result<(), DispatchError> {
        let occurrence_id = pass.occurrence.id;
        let unsubscribed = match claimed.unsubscribed {
            Ok(unsubscribed) => unsubscribed,
            Err(e) => {
                self.put_back(occurrence_id, &pass.lease, claimed.rows)
                    .await?;
                return Err(e.into());
            }
        };
        if claimed.rows.is_empty() {
            return Ok(());
        }
        if w.closing || !matches!(w.verdict, Verdict::Continue) {
            self.put_back(occurrence_id, &pass.lease, claimed.rows)
                .await?;
            return Ok(());
        }
        // Rows held longer than half a lease (this process stalled) are sent only if every
        // row this worker holds is still its own: the others may have been recovered.
        if claimed.at.elapsed() > pass.lease.length / 2 {
            let held = w.in_flight.len() + w.ended.results.len() + claimed.rows.len();
            if self.store().renew(occurrence_id, &pass.lease).await? < held as u64 {
                report.lease_lost += self
                    .put_back(occurrence_id, &pass.lease, claimed.rows)
                    .await?;
                return Ok(());
            }
        }
        self.start_sends(
            claimed.rows,
            &unsubscribed,
            &w.outages,
            pass.list.as_ref(),
            &mut w.in_flight,
            &mut w.ended,
        );
        Ok(())
    }

    /// Nothing claimed and nothing held: recovers rows of dead workers, waits for live
    /// ones or for the next retry; returns whether to look again.
    async fn idle(
        &self,
        pass: &Pass<'_>,
        w: &mut Window,
        now: chrono::DateTime<chrono::Utc>,
        report: &mut RunReport,
    ) -> Result<bool, DispatchError> {
        let store = self.store();
        let occurrence_id = pass.occurrence.id;
        // Rows of a worker that died or stalled, once its lease has run out.
        report.recovered_unknown += self.recover_expired(pass.occurrence).await?;
        if store.sending(occurrence_id).await? > 0 {
            // Another live worker is sending: its rows end, or its lease runs out.
            let owed = std::mem::take(&mut w.tally.owed);
            w.tally.accruals.finish(owed).await?;
            tokio::time::sleep(OTHERS_POLL).await;
            return Ok(true);
        }
        let Some(due) = store.next_due(occurrence_id).await? else {
            return Ok(false);
        };
        if due <= now {
            // Recovery queued rows again (idempotent channels), or another worker's retry
            // came due: claim them.
            return Ok(true);
        }
        let wait = (due - now).to_std().unwrap_or_default();
        if pass.started.elapsed() + wait > self.inner.config.max_wait {
            return Ok(false);
        }
        let owed = std::mem::take(&mut w.tally.owed);
        w.tally.accruals.finish(owed).await?;
        tokio::time::sleep(wait.max(Duration::from_millis(5))).await;
        Ok(true)
    }
}

/// The write ending or a send ending, whichever comes first (the write when both have).
async fn next_event(writing: &mut Option<Pending>, in_flight: &mut InFlight) -> Event {
    tokio::select! {
        biased;
        written = async {
            match writing.as_mut() {
                Some(pending) => pending.writing.wait().await,
                None => std::future::pending().await,
            }
        }, if writing.is_some() => Event::Written(written),
        Some(ended) = in_flight.next() => Event::Ended(ended),
        else => Event::Nothing,
    }
}
