//! Channel outages (SPEC §7b): a failure about the channel rather than the recipient must not
//! burn the audience. After [`DOWN_AFTER`] such failures in a row on a channel (in the order
//! the sends end; any answer from the provider, a 429 included, starts the count again) the
//! channel is down for the mailing: its deliveries wait, uncounted, until the pause ends, the
//! other channels go on, and the mailing pauses with the reason.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use rassylka_channels::{ChannelError, Receipt};
use rassylka_model::ChannelKind;

/// Failures in a row that take a channel down.
pub(crate) const DOWN_AFTER: u32 = 5;

/// The first pause of an outage, doubled at each pause in a row, up to [`LONGEST_MINUTES`].
const FIRST_MINUTES: i64 = 1;
const LONGEST_MINUTES: i64 = 60;

/// A channel found down in this pass.
#[derive(Debug, Clone)]
pub(crate) struct Down {
    /// What the last failure said.
    pub(crate) cause: String,
    /// Until when its deliveries wait.
    pub(crate) until: DateTime<Utc>,
    /// The pause, in minutes.
    pub(crate) minutes: i64,
}

impl Down {
    /// The reason its deliveries and the mailing carry.
    pub(crate) fn reason(&self, channel: ChannelKind) -> String {
        format!(
            "the {channel} channel is down: {} (paused {} min)",
            self.cause, self.minutes
        )
    }
}

/// Counts outage failures per channel over one pass of sending.
#[derive(Debug, Default)]
pub(crate) struct OutageWatch {
    streak: HashMap<ChannelKind, u32>,
    down: BTreeMap<ChannelKind, Down>,
}

impl OutageWatch {
    /// Counts one send's end; `true` when it takes `channel` down now.
    pub(crate) fn observe(
        &mut self,
        channel: ChannelKind,
        outcome: &Result<Receipt, ChannelError>,
    ) -> bool {
        if self.down.contains_key(&channel) {
            return false;
        }
        match outcome {
            Err(e) if e.is_outage() => {
                let streak = self.streak.entry(channel).or_insert(0);
                *streak += 1;
                *streak >= DOWN_AFTER
            }
            _ => {
                self.streak.insert(channel, 0);
                false
            }
        }
    }

    /// Marks `channel` down until `now` plus the next pause after `previous` (the reason of
    /// the mailing's last pause, which names its length).
    pub(crate) fn take_down(
        &mut self,
        channel: ChannelKind,
        cause: String,
        now: DateTime<Utc>,
        previous: Option<&str>,
    ) {
        let minutes = previous
            .and_then(paused_minutes)
            .map_or(FIRST_MINUTES, |m| (m * 2).min(LONGEST_MINUTES));
        self.down.insert(
            channel,
            Down {
                cause,
                until: now + TimeDelta::minutes(minutes),
                minutes,
            },
        );
    }

    /// The channel's outage, when it is down.
    pub(crate) fn down(&self, channel: Option<ChannelKind>) -> Option<(ChannelKind, &Down)> {
        let channel = channel?;
        self.down.get(&channel).map(|d| (channel, d))
    }

    /// The mailing's pause: until the first channel comes back, naming every channel down.
    pub(crate) fn pause(&self) -> Option<(DateTime<Utc>, String)> {
        let until = self.down.values().map(|d| d.until).min()?;
        let reason = self
            .down
            .iter()
            .map(|(channel, d)| d.reason(*channel))
            .collect::<Vec<_>>()
            .join("; ");
        Some((until, reason))
    }
}

/// The length of an outage pause a reason names: `… (paused 4 min)`.
fn paused_minutes(reason: &str) -> Option<i64> {
    let start = reason.rfind("(paused ")? + "(paused ".len();
    let rest = &reason[start..];
    rest[..rest.find(" min)")?].parse().ok()
}

/// Whether a mailing's reason is an outage pause's (kept while the mailing resumes, so the
/// next pause of the same outage is longer).
pub(crate) fn is_outage_reason(reason: &str) -> bool {
    reason.contains(" channel is down: ") && paused_minutes(reason).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> Result<Receipt, ChannelError> {
        Err(ChannelError::outage("cannot connect to the provider"))
    }

    #[test]
    fn five_failures_in_a_row_take_a_channel_down_and_an_answer_starts_again() {
        let mut watch = OutageWatch::default();
        let sms = ChannelKind::Sms;
        for _ in 0..4 {
            assert!(!watch.observe(sms, &refused()));
        }
        // A 429 is an answer: the count starts again.
        assert!(!watch.observe(sms, &Err(ChannelError::transient("http 429"))));
        for _ in 0..4 {
            assert!(!watch.observe(sms, &refused()));
        }
        assert!(
            !watch.observe(ChannelKind::Email, &refused()),
            "per channel"
        );
        assert!(watch.observe(sms, &refused()));
    }

    #[test]
    fn pauses_double_from_a_minute_to_an_hour() {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let mut minutes = Vec::new();
        let mut previous: Option<String> = None;
        for _ in 0..9 {
            let mut watch = OutageWatch::default();
            watch.take_down(
                ChannelKind::Email,
                "refused".into(),
                now,
                previous.as_deref(),
            );
            let (until, reason) = watch.pause().unwrap();
            minutes.push((until - now).num_minutes());
            assert!(is_outage_reason(&reason), "{reason}");
            previous = Some(reason);
        }
        assert_eq!(minutes, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
