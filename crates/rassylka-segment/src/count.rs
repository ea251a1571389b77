//! Audience counts: how many match, how many each channel reaches, how many are excluded and why.

use rassylka_model::{ChannelKind, MessageClass, Recipient};

use crate::compile::Segment;
use crate::reach::{Exclusion, Targets, targets};

/// Counts for one segment, evaluation date and message class. Serialises as
/// `{"total":N,"matched":N,"per_channel":{"email":N,"sms":N,"telegram":N,"vk":N,"push":N},
/// "excluded":{"no_mailings":N,"no_consent":N,"invalid_contact":N,"unreachable":N}}`.
///
/// Every count is of recipients (not of bookings or deliveries). Each matched recipient is
/// either reachable (counted once in every channel of its [`targets`]) or excluded with exactly
/// one reason, so `matched == reachable() + excluded.total()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Counts {
    /// Recipients seen.
    pub total: u64,
    /// Recipients the rule matches.
    pub matched: u64,
    /// Matched recipients reachable on each channel after the class rules.
    pub per_channel: PerChannel,
    /// Matched recipients reachable on no channel, by the first reason.
    pub excluded: Excluded,
}

/// A count per channel kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub struct PerChannel {
    /// E-mail.
    pub email: u64,
    /// SMS.
    pub sms: u64,
    /// Telegram.
    pub telegram: u64,
    /// VK.
    pub vk: u64,
    /// Wallet push.
    pub push: u64,
}

impl PerChannel {
    /// The count of one channel.
    pub fn channel(&self, kind: ChannelKind) -> u64 {
        match kind {
            ChannelKind::Email => self.email,
            ChannelKind::Sms => self.sms,
            ChannelKind::Telegram => self.telegram,
            ChannelKind::Vk => self.vk,
            ChannelKind::Push => self.push,
        }
    }

    fn slot(&mut self, kind: ChannelKind) -> &mut u64 {
        match kind {
            ChannelKind::Email => &mut self.email,
            ChannelKind::Sms => &mut self.sms,
            ChannelKind::Telegram => &mut self.telegram,
            ChannelKind::Vk => &mut self.vk,
            ChannelKind::Push => &mut self.push,
        }
    }
}

/// Matched recipients that get nothing, by the first reason in the order no_mailings,
/// no_consent (both only for advertising), then invalid_contact (no channel reachable and some
/// contact present but invalid) or unreachable (no contact at all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Excluded {
    /// «No mailings» flag set (advertising).
    pub no_mailings: u64,
    /// No advertising consent (advertising).
    pub no_consent: u64,
    /// Only invalid contacts.
    pub invalid_contact: u64,
    /// No contact at all.
    pub unreachable: u64,
}

impl Excluded {
    /// All excluded recipients.
    pub fn total(&self) -> u64 {
        self.no_mailings + self.no_consent + self.invalid_contact + self.unreachable
    }
}

impl Counts {
    /// Records a recipient the rule does not match.
    pub fn record_unmatched(&mut self) {
        self.total += 1;
    }

    /// Records a matched recipient with its [`targets`].
    pub fn record_matched(&mut self, targets: Targets) {
        self.total += 1;
        self.matched += 1;
        match targets {
            Targets::Channels(channels) => {
                for kind in channels.iter() {
                    *self.per_channel.slot(kind) += 1;
                }
            }
            Targets::Excluded(why) => {
                let slot = match why {
                    Exclusion::NoMailings => &mut self.excluded.no_mailings,
                    Exclusion::NoConsent => &mut self.excluded.no_consent,
                    Exclusion::InvalidContact => &mut self.excluded.invalid_contact,
                    Exclusion::Unreachable => &mut self.excluded.unreachable,
                };
                *slot += 1;
            }
        }
    }

    /// Matched recipients reachable on at least one channel.
    pub fn reachable(&self) -> u64 {
        self.matched - self.excluded.total()
    }
}

impl Segment {
    /// Counts a stream of recipients for a message `class` (evaluated on the date the segment
    /// was compiled for).
    pub fn count<'r>(
        &self,
        recipients: impl IntoIterator<Item = &'r Recipient>,
        class: MessageClass,
    ) -> Counts {
        let mut counts = Counts::default();
        for recipient in recipients {
            if self.matches(recipient) {
                counts.record_matched(targets(recipient, class));
            } else {
                counts.record_unmatched();
            }
        }
        counts
    }
}
