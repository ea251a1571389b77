//! Who gets what for one recipient: segment, reachable channels, priority ranks, send window,
//! rendered texts and cost.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use rassylka_channels::sms_segments;
use rassylka_model::{ChannelKind, MessageClass, Recipient};
use rassylka_schedule::SendWindow;
use rassylka_segment::{
    BookingMatch, ChannelSet, CompileOptions, Exclusion, Outcome, Segment, Targets, targets,
};
use rassylka_template::{Formatting, OutputFormat, PreparedTemplate, Values, Variable};
use rust_decimal::Decimal;

use crate::consent::{CapWindow, Links};
use crate::mailing::{CompiledContent, DeliveryMode, Mailing};
use crate::store::{DeliveryStatus, NewDelivery};
use crate::{DispatchError, Problem};

/// The reason an advertising delivery to someone who unsubscribed is journaled with, at the
/// freeze and when a claimed batch is checked again.
pub(crate) const UNSUBSCRIBED: &str = "unsubscribed";

/// A channel's templates bound to one occurrence.
struct PreparedContent {
    subject: Option<PreparedTemplate>,
    text: Option<PreparedTemplate>,
    html: Option<PreparedTemplate>,
    image: Option<String>,
    /// A template places `{unsubscribe_url}`.
    places_link: bool,
}

impl PreparedContent {
    fn templates(&self) -> impl Iterator<Item = &PreparedTemplate> {
        [&self.subject, &self.text, &self.html]
            .into_iter()
            .filter_map(Option::as_ref)
    }
}

/// Everything fixed for one occurrence of one mailing.
pub(crate) struct Planner<'m> {
    mailing: &'m Mailing,
    segment: Segment,
    zone: Tz,
    fired_at: DateTime<Utc>,
    occurrence_key: String,
    content: BTreeMap<ChannelKind, PreparedContent>,
    unreachable: HashMap<String, ChannelSet>,
    tariffs: BTreeMap<ChannelKind, Decimal>,
    window: Option<SendWindow>,
    bookings: Vec<BookingMatch>,
    advertising: bool,
    /// Links for templates that place them and for the e-mail footer.
    links: Option<Links>,
    /// Advertising e-mail whose templates do not place the link gets the footer.
    email_footer: bool,
    cap: Option<CapWindow>,
    /// Of the recipients planned next: who unsubscribed, who reached the cap.
    unsubscribed: HashSet<String>,
    capped: HashSet<String>,
}

/// What the plan did with one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Planned {
    /// Not in the audience.
    NotMatched,
    /// In the audience; deliveries (maybe skipped ones) were written out.
    Matched,
}

impl<'m> Planner<'m> {
    pub(crate) fn new(
        mailing: &'m Mailing,
        evaluation_date: NaiveDate,
        fired_at: DateTime<Utc>,
        occurrence_key: String,
        tariffs: &BTreeMap<ChannelKind, Decimal>,
    ) -> Result<Planner<'m>, DispatchError> {
        let zone = mailing.zone();
        let segment = Segment::compile(
            &mailing.audience,
            &CompileOptions::new(evaluation_date, zone),
        )
        .map_err(|e| {
            DispatchError::InvalidMailing(vec![Problem {
                path: "audience".into(),
                message: e.to_string(),
            }])
        })?;
        let mut values = Values::new();
        if let Some(bonus) = &mailing.bonus {
            values.insert("bonus_accrued", bonus.amount);
            if let Some(days) = bonus.expires_in_days {
                values.insert(
                    "bonus_expires_on",
                    evaluation_date + Days::new(u64::from(days)),
                );
            }
        }
        for (name, value) in &mailing.values {
            values.insert_text(name, value);
        }
        let formatting = Formatting::default();
        let mut content = BTreeMap::new();
        for channel in &mailing.channels {
            let compiled: CompiledContent = mailing
                .compile_channel(*channel)
                .map_err(DispatchError::InvalidMailing)?;
            let body_format = match channel {
                ChannelKind::Telegram => OutputFormat::TelegramHtml,
                _ => OutputFormat::Plain,
            };
            let prepare = |t: &rassylka_template::Template, format| {
                t.prepare(evaluation_date, &values, &formatting, format)
            };
            let mut prepared = PreparedContent {
                subject: compiled
                    .subject
                    .as_ref()
                    .map(|t| prepare(t, OutputFormat::Plain)),
                text: compiled.text.as_ref().map(|t| prepare(t, body_format)),
                html: compiled
                    .html
                    .as_ref()
                    .map(|t| prepare(t, OutputFormat::Html)),
                image: compiled.image.clone(),
                places_link: false,
            };
            let places_link = prepared
                .templates()
                .any(|t| t.places(Variable::UnsubscribeUrl));
            prepared.places_link = places_link;
            content.insert(*channel, prepared);
        }
        let advertising = mailing.class == MessageClass::Advertising;
        Ok(Planner {
            mailing,
            segment,
            zone,
            fired_at,
            occurrence_key,
            content,
            unreachable: HashMap::new(),
            tariffs: tariffs.clone(),
            window: mailing.send_window,
            bookings: Vec::new(),
            advertising,
            links: None,
            email_footer: false,
            cap: None,
            unsubscribed: HashSet::new(),
            capped: HashSet::new(),
        })
    }

    /// Whether links are needed at all: an advertising e-mail (its footer), or a template
    /// that places `{unsubscribe_url}`.
    pub(crate) fn needs_links(&self) -> bool {
        self.content.values().any(|c| c.places_link)
            || (self.advertising && self.content.contains_key(&ChannelKind::Email))
    }

    /// Links to put in messages, and the frequency cap's window.
    pub(crate) fn set_consent(&mut self, links: Option<Links>, cap: Option<CapWindow>) {
        self.email_footer = self.advertising
            && links.is_some()
            && self
                .content
                .get(&ChannelKind::Email)
                .is_some_and(|c| !c.places_link);
        self.links = links;
        self.cap = cap;
    }

    /// The occurrences the cap counts and how many are allowed, when a cap applies.
    pub(crate) fn cap(&self) -> Option<&CapWindow> {
        self.cap.as_ref()
    }

    /// Whether unsubscribes apply (advertising only).
    pub(crate) fn is_advertising(&self) -> bool {
        self.advertising
    }

    /// Of the recipients planned next: who unsubscribed, and who has had the cap's number of
    /// advertising occurrences.
    pub(crate) fn set_suppressed(
        &mut self,
        unsubscribed: HashSet<String>,
        capped: HashSet<String>,
    ) {
        self.unsubscribed = unsubscribed;
        self.capped = capped;
    }

    /// A skipped delivery: `group` names it in the key, `group_key` ties it to its group.
    fn skipped(
        &self,
        recipient_id: &str,
        group: &str,
        group_key: String,
        channel: Option<ChannelKind>,
        reason: String,
    ) -> NewDelivery {
        NewDelivery {
            delivery_key: self.delivery_key(recipient_id, channel, group),
            recipient_id: recipient_id.to_owned(),
            channel,
            address: None,
            booking_id: None,
            group_key,
            rank: 0,
            status: DeliveryStatus::Skipped,
            not_before: None,
            subject: None,
            text: None,
            html: None,
            image: None,
            units: 0,
            cost: None,
            error: Some(reason),
        }
    }

    /// The contacts known gone of the recipients planned next (looked up for each chunk).
    pub(crate) fn set_unreachable(&mut self, gone: HashMap<String, ChannelSet>) {
        self.unreachable = gone;
    }

    /// A line of the recipients that could not be read, journaled as skipped.
    pub(crate) fn unreadable(&mut self, place: &str, error: &str) -> NewDelivery {
        let id = place.replace(' ', ":");
        self.skipped(
            &id,
            &id,
            id.clone(),
            None,
            format!("unreadable recipient ({place}): {error}"),
        )
    }

    /// Appends the deliveries for `r` to `out`.
    pub(crate) fn plan(&mut self, r: &Recipient, out: &mut Vec<NewDelivery>) -> Planned {
        let mut bookings = std::mem::take(&mut self.bookings);
        bookings.clear();
        let outcome = self.segment.evaluate(r, &mut bookings);
        let planned = match outcome {
            Outcome::NoMatch => Planned::NotMatched,
            _ => {
                self.plan_matched(r, outcome, &bookings, out);
                Planned::Matched
            }
        };
        self.bookings = bookings;
        planned
    }

    fn plan_matched(
        &self,
        r: &Recipient,
        outcome: Outcome,
        bookings: &[BookingMatch],
        out: &mut Vec<NewDelivery>,
    ) {
        let reachable = match targets(r, self.mailing.class) {
            Targets::Excluded(why) => {
                out.push(self.skipped(
                    &r.id,
                    &r.id,
                    r.id.clone(),
                    None,
                    exclusion_reason(r, why, &self.mailing.channels),
                ));
                return;
            }
            Targets::Channels(set) => set,
        };
        if self.advertising {
            let suppressed = if self.unsubscribed.contains(&r.id) {
                Some(UNSUBSCRIBED)
            } else if self.capped.contains(&r.id) {
                Some("frequency_cap")
            } else {
                None
            };
            if let Some(reason) = suppressed {
                out.push(self.skipped(&r.id, &r.id, r.id.clone(), None, reason.into()));
                return;
            }
        }
        // Contacts a channel reported gone in an earlier mailing.
        let gone = self
            .unreachable
            .get(r.id.as_str())
            .copied()
            .unwrap_or(ChannelSet::EMPTY);
        // Each address is written out once per recipient, whatever the number of bookings.
        let channels: Vec<(ChannelKind, String)> = self
            .mailing
            .channels
            .iter()
            .copied()
            .filter(|c| reachable.contains(*c) && !gone.contains(*c))
            .filter_map(|c| r.address(c).ok().map(|a| (c, a.to_string())))
            .collect();
        if channels.is_empty() {
            // Say what is wrong with the contacts it has, when that is why.
            let reason = invalid_contacts(r, &self.mailing.channels)
                .unwrap_or_else(|| "not reachable on any of the mailing's channels".into());
            out.push(self.skipped(&r.id, &r.id, r.id.clone(), None, reason));
            return;
        }
        if let Some(holdout) = self.mailing.holdout
            && crate::attribution::is_held_out(&self.mailing.id, &r.id, holdout.basis_points)
        {
            out.push(self.skipped(
                &r.id,
                &r.id,
                r.id.clone(),
                None,
                crate::attribution::HOLDOUT.into(),
            ));
            return;
        }
        let not_before = self
            .window
            .and_then(|w| w.earliest_delivery_for(self.fired_at, r.timezone, self.zone))
            .filter(|at| *at > self.fired_at);
        let groups: Vec<(Option<usize>, String)> = match outcome {
            Outcome::Bookings => bookings
                .iter()
                .map(|b| {
                    let id = r.bookings[b.index]
                        .id
                        .clone()
                        .unwrap_or_else(|| format!("#{}", b.index));
                    let anchor = b.anchor.map(|d| d.to_string()).unwrap_or_default();
                    (
                        Some(b.index),
                        format!("{}/{}@{anchor}", r.id, key_part(&id)),
                    )
                })
                .collect(),
            _ => vec![(None, r.id.clone())],
        };
        let link = self
            .links
            .as_ref()
            .filter(|_| {
                channels.iter().any(|(c, _)| {
                    self.content[c].places_link || (*c == ChannelKind::Email && self.email_footer)
                })
            })
            .map(|links| links.url(&self.mailing.id, &r.id));
        for (booking_index, group) in groups {
            let booking = booking_index.and_then(|i| r.bookings.get(i));
            let mut queued_one = false;
            for (rank, (channel, address)) in channels.iter().enumerate() {
                let group_key = match self.mailing.mode {
                    DeliveryMode::Priority => group.clone(),
                    DeliveryMode::All => format!("{group}#{channel}"),
                };
                let content = &self.content[channel];
                let render = |t: &Option<PreparedTemplate>| {
                    t.as_ref()
                        .map(|t| t.render_with_link(r, booking, link.as_deref()))
                };
                let (subject, text, mut html) = (
                    render(&content.subject),
                    render(&content.text),
                    render(&content.html),
                );
                let incomplete = [&subject, &text, &html]
                    .iter()
                    .any(|p| p.as_ref().is_some_and(|(_, rep)| !rep.is_complete()));
                if incomplete && self.mailing.skip_incomplete {
                    out.push(self.skipped(
                        &r.id,
                        &group,
                        group_key,
                        Some(*channel),
                        "a placeholder has no value".into(),
                    ));
                    continue;
                }
                let status = match self.mailing.mode {
                    DeliveryMode::Priority if queued_one => DeliveryStatus::Standby,
                    _ => DeliveryStatus::Queued,
                };
                queued_one = true;
                let mut text = text.map(|(t, _)| t);
                if *channel == ChannelKind::Email
                    && self.email_footer
                    && let (Some(links), Some(url)) = (&self.links, &link)
                {
                    text = text.map(|t| links.text_with_footer(&t, url));
                    html = html.map(|(h, report)| (links.html_with_footer(&h, url), report));
                }
                let units = match channel {
                    ChannelKind::Sms => sms_segments(text.as_deref().unwrap_or_default()).parts,
                    _ => 1,
                };
                let cost = self
                    .tariffs
                    .get(channel)
                    .map(|price| *price * Decimal::from(units));
                out.push(NewDelivery {
                    delivery_key: self.delivery_key(&r.id, Some(*channel), &group),
                    recipient_id: r.id.clone(),
                    channel: Some(*channel),
                    address: Some(address.clone()),
                    booking_id: booking.and_then(|b| b.id.clone()),
                    group_key,
                    rank: u32::try_from(rank).unwrap_or(u32::MAX),
                    status,
                    not_before,
                    subject: subject.map(|(t, _)| t),
                    text,
                    html: html.map(|(t, _)| t),
                    image: content.image.clone(),
                    units,
                    cost,
                    error: None,
                });
            }
        }
    }

    /// `occurrence/recipient/channel[/booking@anchor]`; `-` for no channel.
    fn delivery_key(
        &self,
        recipient_id: &str,
        channel: Option<ChannelKind>,
        group: &str,
    ) -> String {
        let channel = channel.map_or("-", ChannelKind::as_str);
        format!(
            "{}/{}/{channel}{}",
            self.occurrence_key,
            key_part(recipient_id),
            group_suffix(group, recipient_id)
        )
    }
}

/// An id as a part of a delivery key: `%` and `/` are escaped, so that keys of different
/// deliveries differ even when ids contain slashes (`r` with booking `email/x` against `r/sms`
/// with booking `x`). Ids without them are written as they are.
fn key_part(id: &str) -> std::borrow::Cow<'_, str> {
    if id.contains(['%', '/']) {
        id.replace('%', "%25").replace('/', "%2F").into()
    } else {
        id.into()
    }
}

/// The booking part of a group key (`/b-77@2026-12-01`), empty for a recipient-level group.
fn group_suffix<'a>(group: &'a str, recipient_id: &str) -> &'a str {
    group.strip_prefix(recipient_id).unwrap_or("")
}

/// Why a recipient gets nothing; for invalid contacts, what is wrong with each of them.
fn exclusion_reason(r: &Recipient, why: Exclusion, channels: &[ChannelKind]) -> String {
    match why {
        Exclusion::InvalidContact => {
            invalid_contacts(r, channels).unwrap_or_else(|| exclusion_text(why).into())
        }
        _ => exclusion_text(why).into(),
    }
}

/// `invalid_contact: sms: invalid phone number …` for the mailing's channels whose contact
/// the recipient has but which does not validate; `None` when there is none such.
fn invalid_contacts(r: &Recipient, channels: &[ChannelKind]) -> Option<String> {
    let problems: Vec<String> = channels
        .iter()
        .filter_map(|channel| {
            let error = match channel {
                ChannelKind::Sms => {
                    rassylka_model::PhoneNumber::parse(r.contacts.phone.as_deref()?).err()?
                }
                ChannelKind::Email => {
                    rassylka_model::EmailAddress::parse(r.contacts.email.as_deref()?).err()?
                }
                _ => return None,
            };
            Some(format!("{channel}: {error}"))
        })
        .collect();
    (!problems.is_empty()).then(|| format!("invalid_contact: {}", problems.join("; ")))
}

fn exclusion_text(why: Exclusion) -> &'static str {
    match why {
        Exclusion::NoMailings => "no_mailings: the recipient unsubscribed",
        Exclusion::NoConsent => "no_consent: no advertising consent",
        Exclusion::InvalidContact => "invalid_contact: every contact is invalid",
        Exclusion::Unreachable => "unreachable: no contact",
    }
}

#[cfg(test)]
mod tests {
    use super::key_part;

    #[test]
    fn key_parts_escape_slashes_and_percent_signs_only() {
        assert_eq!(key_part("c-1001"), "c-1001");
        assert_eq!(key_part("r/sms"), "r%2Fsms");
        assert_eq!(key_part("50%/x"), "50%25%2Fx");
        // The two deliveries that looked alike unescaped.
        let first = format!(
            "occ/{}/sms/{}@2026-12-01",
            key_part("r"),
            key_part("email/x")
        );
        let second = format!(
            "occ/{}/email/{}@2026-12-01",
            key_part("r/sms"),
            key_part("x")
        );
        assert_ne!(first, second);
    }
}
