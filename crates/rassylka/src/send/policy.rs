//! What a send's outcome means for the delivery, its priority group and the mailing, by the
//! error class (SPEC §6): the dispatcher decides here; the store only records.

use std::time::Duration;

use backon::BackoffBuilder;
use chrono::{DateTime, TimeDelta, Utc};
use rassylka_channels::{ChannelError, ErrorClass, Receipt};
use rassylka_model::ChannelKind;
use rassylka_schedule::next_local_midnight;

use crate::dispatcher::Rassylka;
use crate::mailing::{DeliveryMode, Mailing};
use crate::store::{Delivery, GroupEffect, Outcome, Settle};

/// What a batch of sends told the loop to do next.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Go on.
    Continue,
    /// A quota ran out: pause the mailing until it renews.
    Pause {
        until: DateTime<Utc>,
        reason: String,
    },
    /// A channel's settings are wrong: stop the mailing.
    Stop {
        channel: ChannelKind,
        reason: String,
    },
}

/// One send's result, judged.
pub(crate) struct Judged {
    /// What to record.
    pub(crate) settle: Settle,
    /// The recipient reached, when it was.
    pub(crate) reached: Option<String>,
    /// A contact the channel reported gone: (recipient, channel, why).
    pub(crate) gone: Option<(String, ChannelKind, String)>,
}

/// Why the lower priorities of an unknown delivery are held.
pub(crate) const BEHIND_UNKNOWN: &str =
    "not sent: the delivery through a higher-priority channel is unknown";

impl Rassylka {
    /// Whether `channel` takes the delivery key as an idempotency key (a repeat is dropped).
    pub(crate) fn idempotent(&self, channel: Option<ChannelKind>) -> bool {
        channel
            .and_then(|c| self.inner.channels.get(&c))
            .is_some_and(|c| c.takes_idempotency_key())
    }

    fn retry_delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let (first, longest) = self.inner.config.backoff;
        let backoff = backon::ExponentialBuilder::default()
            .with_min_delay(first)
            .with_max_delay(longest)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(usize::try_from(attempt).unwrap_or(usize::MAX))
            .build()
            .last()
            .unwrap_or(first);
        retry_after.map_or(backoff, |after| after.max(backoff))
    }

    /// Judges one send; a quota or configuration failure also sets the batch's verdict (a
    /// configuration stop wins over a pause).
    pub(crate) fn judge(
        &self,
        mailing: &Mailing,
        delivery: Delivery,
        outcome: Result<Receipt, ChannelError>,
        now: DateTime<Utc>,
        verdict: &mut Verdict,
    ) -> Judged {
        let priority = mailing.mode == DeliveryMode::Priority && mailing.channels.len() > 1;
        let channel = delivery.planned.channel;
        let mut judged = Judged {
            settle: Settle {
                id: delivery.id,
                attempt: delivery.attempts,
                outcome: Outcome::Requeue,
                then: GroupEffect::Nothing,
            },
            reached: None,
            gone: None,
        };
        let e = match outcome {
            Ok(receipt) => {
                judged.settle.outcome = Outcome::Sent {
                    provider_id: Some(receipt.provider_id),
                    cost: receipt.cost.map(|m| m.0),
                };
                if priority && let Some(channel) = channel {
                    judged.settle.then = GroupEffect::Close {
                        reason: format!("delivered through {channel}"),
                    };
                }
                judged.reached = Some(delivery.planned.recipient_id);
                return judged;
            }
            Err(e) => e,
        };
        let class = e.class();
        let text = e.to_string();
        // An earlier attempt that may have reached the provider (on a channel that takes the
        // key, so it was tried again) stays on record: «not sent» answers to later attempts
        // do not prove the first one did not arrive.
        let maybe_delivered =
            delivery.error_class.as_deref() == Some(ErrorClass::Ambiguous.as_str());
        match class {
            ErrorClass::Transient if delivery.attempts < self.inner.config.max_attempts => {
                let delay = self.retry_delay(delivery.attempts, e.retry_after());
                let kept = if maybe_delivered {
                    ErrorClass::Ambiguous
                } else {
                    class
                };
                judged.settle.outcome = Outcome::Retry {
                    not_before: now + TimeDelta::from_std(delay).unwrap_or_default(),
                    class: kept.as_str().into(),
                    error: text,
                };
            }
            ErrorClass::Transient | ErrorClass::Rejected if maybe_delivered => {
                // Out of attempts after one that may have arrived: its fate is unknown.
                judged.settle.outcome = Outcome::Unknown {
                    error: format!("{text}; an earlier attempt may have been delivered"),
                };
                judged.settle.then = GroupEffect::Hold {
                    reason: BEHIND_UNKNOWN.into(),
                };
            }
            ErrorClass::Ambiguous if self.idempotent(channel) => {
                // The same key again: the provider drops a repeat.
                let delay = self.retry_delay(delivery.attempts, e.retry_after());
                judged.settle.outcome = Outcome::Retry {
                    not_before: now + TimeDelta::from_std(delay).unwrap_or_default(),
                    class: class.as_str().into(),
                    error: text,
                };
            }
            ErrorClass::Ambiguous => {
                judged.settle.outcome = Outcome::Unknown { error: text };
                judged.settle.then = GroupEffect::Hold {
                    reason: BEHIND_UNKNOWN.into(),
                };
            }
            ErrorClass::Quota => {
                // A daily limit renews at midnight of the provider's day (its zone when the
                // channel has account limits), by this dispatcher's clock.
                let zone = channel
                    .and_then(|c| self.inner.channels.get(&c))
                    .and_then(|c| c.account_limits())
                    .map_or_else(|| mailing.zone(), |limits| limits.zone);
                let until = e
                    .retry_after()
                    .and_then(|d| TimeDelta::from_std(d).ok())
                    .map_or_else(|| next_local_midnight(now, zone), |d| now + d);
                if matches!(verdict, Verdict::Continue) {
                    *verdict = Verdict::Pause {
                        until,
                        reason: text,
                    };
                }
            }
            ErrorClass::Configuration => {
                *verdict = Verdict::Stop {
                    channel: channel.unwrap_or(ChannelKind::Email),
                    reason: text,
                };
            }
            _ => {
                if class == ErrorClass::RecipientGone
                    && let Some(channel) = channel
                {
                    judged.gone = Some((delivery.planned.recipient_id, channel, text.clone()));
                }
                judged.settle.outcome = Outcome::Failed {
                    class: class.as_str().into(),
                    error: text,
                };
                if priority {
                    judged.settle.then = GroupEffect::FallBack;
                }
            }
        }
        judged
    }
}
