//! Planning an audience: the recipients streamed through the [`Planner`] in chunks, with the
//! contacts known gone, the unsubscribed and those at the frequency cap looked up once per
//! chunk. Preview, cost and the freeze share it, so a
//! preview equals what a run targets on the same data.

mod planner;

pub(crate) use planner::UNSUBSCRIBED;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use rassylka_segment::ChannelSet;

pub(crate) use planner::{Planned, Planner};

use crate::dispatcher::{ChannelCost, CostReport, Rassylka};
use crate::mailing::Mailing;
use crate::store::{DeliveryStatus, NewDelivery};
use crate::{DispatchError, Problem, SourceItem};

/// Recipients planned per look-up of contacts gone.
const LOOKUP_CHUNK: usize = 4096;

/// Where planned deliveries go, a batch at a time.
pub(crate) type Sink =
    Box<dyn FnMut(Vec<NewDelivery>) -> BoxFuture<'static, Result<(), DispatchError>> + Send>;

impl Rassylka {
    /// Gives the planner its links and the frequency cap's window, for an occurrence fired at
    /// `fired_at` (`except`: its own row).
    pub(crate) async fn prepare_consent(
        &self,
        planner: &mut Planner<'_>,
        mailing: &Mailing,
        fired_at: DateTime<Utc>,
        except: Option<i64>,
    ) -> Result<(), DispatchError> {
        let links = if planner.needs_links() {
            Some(self.links().await?)
        } else {
            None
        };
        let cap = self.cap_window(mailing, fired_at, except).await?;
        planner.set_consent(links, cap);
        Ok(())
    }

    /// Marks, for a chunk of recipients, the contacts known gone and (for advertising) who
    /// unsubscribed and who reached the frequency cap.
    async fn look_up_gone(
        &self,
        planner: &mut Planner<'_>,
        chunk: &[SourceItem],
    ) -> Result<(), DispatchError> {
        let ids: Vec<&str> = chunk
            .iter()
            .filter_map(|item| item.as_ref().ok().map(|r| r.id.as_str()))
            .collect();
        let mut gone: HashMap<String, ChannelSet> = HashMap::new();
        for (recipient, channel) in self.store().unreachable_among(&ids).await? {
            gone.entry(recipient)
                .or_insert(ChannelSet::EMPTY)
                .insert(channel);
        }
        planner.set_unreachable(gone);
        let mut unsubscribed = HashSet::new();
        let mut capped = HashSet::new();
        if planner.is_advertising() && !ids.is_empty() {
            unsubscribed.extend(self.store().unsubscribed_among(&ids).await?);
            if let Some(cap) = planner.cap().filter(|c| !c.occurrences.is_empty()) {
                let max = cap.max;
                let reached = self.store().reached_in(&cap.occurrences, &ids).await?;
                capped.extend(
                    reached
                        .into_iter()
                        .filter(|(_, count)| *count >= max)
                        .map(|(id, _)| id),
                );
            }
        }
        planner.set_suppressed(unsubscribed, capped);
        Ok(())
    }

    /// Streams the source through the planner, handing each batch of deliveries to `sink`;
    /// returns the recipients matched and the records that could not be read. With
    /// `first_entries_only`, a recipient listed again is passed over, as the freeze's
    /// repeated keys are skipped (so a preview counts what the run sends); the freeze itself
    /// plans every entry and journals the repeats as skipped.
    pub(crate) async fn stream_plan(
        &self,
        planner: &mut Planner<'_>,
        mut sink: Sink,
        first_entries_only: bool,
    ) -> Result<(u64, Vec<Problem>), DispatchError> {
        let mut seen: std::collections::HashSet<u64> = std::collections::HashSet::new();
        let first_entry = |seen: &mut std::collections::HashSet<u64>, id: &str| {
            use std::hash::{BuildHasher, BuildHasherDefault};
            let hash = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .hash_one(id);
            seen.insert(hash)
        };
        let batch_size = self.inner.config.freeze_batch;
        let mut stream = self
            .inner
            .source
            .scan()
            .await
            .map_err(DispatchError::Source)?;
        let mut batch = Vec::with_capacity(batch_size);
        let mut matched = 0;
        let mut problems = Vec::new();
        let mut in_flight: Option<tokio::task::JoinHandle<Result<(), DispatchError>>> = None;
        let join = |handle: tokio::task::JoinHandle<Result<(), DispatchError>>| async move {
            handle.await.map_err(|e| DispatchError::Source(e.into()))?
        };
        let mut chunk: Vec<SourceItem> = Vec::with_capacity(LOOKUP_CHUNK);
        let mut ended = false;
        while !ended {
            chunk.clear();
            while chunk.len() < LOOKUP_CHUNK {
                match stream.next().await {
                    Some(item) => chunk.push(item),
                    None => {
                        ended = true;
                        break;
                    }
                }
            }
            self.look_up_gone(planner, &chunk).await?;
            for item in chunk.drain(..) {
                match item {
                    Ok(r) => {
                        if first_entries_only && !first_entry(&mut seen, &r.id) {
                            continue;
                        }
                        if planner.plan(&r, &mut batch) == Planned::Matched {
                            matched += 1;
                        }
                    }
                    Err((place, error)) => {
                        if self.inner.config.skip_malformed {
                            batch.push(planner.unreadable(&place, &error));
                        }
                        problems.push(Problem {
                            path: place,
                            message: error,
                        });
                    }
                }
                if batch.len() >= batch_size {
                    // The previous batch is written while this one was planned: one write in
                    // flight overlaps the store with parsing and rendering.
                    if let Some(previous) = in_flight.take() {
                        join(previous).await?;
                    }
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                    in_flight = Some(tokio::spawn(sink(full)));
                }
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
    pub(crate) async fn plan_counts(
        &self,
        mailing: &Mailing,
        today: Option<NaiveDate>,
    ) -> Result<(u64, CostReport), DispatchError> {
        let (fired_at, today) = self.preview_moment(mailing, today);
        let mut planner = Planner::new(
            mailing,
            today,
            fired_at,
            format!("{}/preview", mailing.id),
            &self.inner.config.tariffs,
        )?;
        self.prepare_consent(&mut planner, mailing, fired_at, None)
            .await?;
        let mut totals = CostReport::default();
        for channel in &mailing.channels {
            totals.per_channel.insert(*channel, ChannelCost::default());
        }
        // Each batch is folded into the running totals, so memory stays flat.
        let totals = Arc::new(std::sync::Mutex::new(totals));
        let sink_totals = Arc::clone(&totals);
        let sink: Sink = Box::new(move |batch| {
            let totals = Arc::clone(&sink_totals);
            Box::pin(async move {
                let mut totals = totals.lock().unwrap_or_else(|e| e.into_inner());
                totals.held_out += batch
                    .iter()
                    .filter(|d| d.error.as_deref() == Some(crate::attribution::HOLDOUT))
                    .count() as u64;
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
        });
        let (matched, problems) = self.stream_plan(&mut planner, sink, true).await?;
        if !problems.is_empty() && !self.inner.config.skip_malformed {
            return Err(DispatchError::MalformedRecipients(problems));
        }
        let mut totals = std::mem::take(&mut *totals.lock().unwrap_or_else(|e| e.into_inner()));
        totals.total = totals.per_channel.values().map(|c| c.cost).sum();
        Ok((matched, totals))
    }
}
