//! Who a message of a class may go to, and on which channels: the one function both counting
//! and sending use, so a preview counts exactly what a send targets.

use rassylka_model::{ChannelKind, MessageClass, OptOut, Recipient, Unreachable};

/// A set of channel kinds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ChannelSet(u8);

fn bit(kind: ChannelKind) -> u8 {
    match kind {
        ChannelKind::Email => 1,
        ChannelKind::Sms => 2,
        ChannelKind::Telegram => 4,
        ChannelKind::Vk => 8,
        ChannelKind::Push => 16,
    }
}

impl ChannelSet {
    /// No channel.
    pub const EMPTY: ChannelSet = ChannelSet(0);

    /// Whether `kind` is in the set.
    pub fn contains(self, kind: ChannelKind) -> bool {
        self.0 & bit(kind) != 0
    }

    /// Adds `kind`.
    pub fn insert(&mut self, kind: ChannelKind) {
        self.0 |= bit(kind);
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// How many channels.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The channels, in the specification's order (email, sms, telegram, vk, push).
    pub fn iter(self) -> impl Iterator<Item = ChannelKind> {
        ChannelKind::ALL
            .into_iter()
            .filter(move |k| self.contains(*k))
    }

    pub(crate) fn bits(self) -> u8 {
        self.0
    }

    pub(crate) fn from_bits(bits: u8) -> ChannelSet {
        ChannelSet(bits & 0x1f)
    }
}

impl FromIterator<ChannelKind> for ChannelSet {
    fn from_iter<I: IntoIterator<Item = ChannelKind>>(iter: I) -> Self {
        let mut set = ChannelSet::EMPTY;
        iter.into_iter().for_each(|k| set.insert(k));
        set
    }
}

/// Why a matched recipient gets no message of the class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    /// Advertising, and the «no mailings» flag is set.
    NoMailings,
    /// Advertising without advertising consent.
    NoConsent,
    /// No channel is reachable and at least one contact is present but invalid.
    InvalidContact,
    /// No channel is reachable and no contact is present at all.
    Unreachable,
}

/// Where a message of a class may go for one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Targets {
    /// The channels the recipient is reachable on (never empty).
    Channels(ChannelSet),
    /// Nowhere, and why: the first reason in the order no_mailings, no_consent, then
    /// invalid_contact (some contact present but invalid) or unreachable.
    Excluded(Exclusion),
}

impl Targets {
    /// The reachable channels (empty when excluded).
    pub fn channels(self) -> ChannelSet {
        match self {
            Targets::Channels(set) => set,
            Targets::Excluded(_) => ChannelSet::EMPTY,
        }
    }
}

/// Channels with a valid address, and channels whose contact is present but invalid.
pub(crate) fn contact_sets(recipient: &Recipient) -> (ChannelSet, ChannelSet) {
    let (mut valid, mut invalid) = (ChannelSet::EMPTY, ChannelSet::EMPTY);
    for kind in ChannelKind::ALL {
        match recipient.address(kind) {
            Ok(_) => valid.insert(kind),
            Err(Unreachable::InvalidContact) => invalid.insert(kind),
            Err(Unreachable::NoContact) => {}
        }
    }
    (valid, invalid)
}

pub(crate) fn classify(opt_out: Option<OptOut>, valid: ChannelSet, invalid: ChannelSet) -> Targets {
    match opt_out {
        Some(OptOut::NoMailings) => Targets::Excluded(Exclusion::NoMailings),
        Some(OptOut::NoConsent) => Targets::Excluded(Exclusion::NoConsent),
        None if !valid.is_empty() => Targets::Channels(valid),
        None if !invalid.is_empty() => Targets::Excluded(Exclusion::InvalidContact),
        None => Targets::Excluded(Exclusion::Unreachable),
    }
}

/// The channels a message of `class` may use for `recipient`: a valid address (email: a valid
/// address; sms: a phone normalisable to E.164; telegram: a chat id; vk: a user id; push: a
/// wallet card), and for advertising also consent and no «no mailings» flag. Counting and
/// sending both call this, so a preview equals the send on the same data.
pub fn targets(recipient: &Recipient, class: MessageClass) -> Targets {
    // Opt-outs first: an opted-out recipient's contacts need no validation.
    if let Some(opt_out) = recipient.opt_out(class) {
        return classify(Some(opt_out), ChannelSet::EMPTY, ChannelSet::EMPTY);
    }
    let (valid, invalid) = contact_sets(recipient);
    classify(None, valid, invalid)
}
