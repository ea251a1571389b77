//! Service notices (SPEC §7g, the ITigris settings): a one-recipient message the host system
//! triggers (an order ready, bonuses accrued, a personal message from the client card), sent
//! through the same journal, channels, modes and retries as mailings, once per event id, and
//! only by a role allowed to.
//!
//! A notice is journaled as a one-time service mailing `notice:<event id>` whose one
//! occurrence holds the recipient's deliveries: the same event again finds it and answers with
//! its result instead of sending. A refusal sends nothing, is kept in the journal with who
//! tried and why, and leaves the event id unused.

mod event;
mod permission;
mod settings;

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use rassylka_model::{ChannelKind, Money, Recipient};
use rassylka_store::{Delivery, DeliveryStatus, MailingState, NoticeRefusal};
use rust_decimal::Decimal;
use serde_json::{Value, json};

pub use event::{EventKind, NoticeEvent, Order, Sender};
pub use settings::{Notices, Permission};

use crate::history::money;
use crate::{DispatchError, Dispatcher, Mailing, Rassylka, RecipientSource, SourceItem};

/// What became of a notice.
#[derive(Debug, Clone, PartialEq)]
pub struct NoticeResult {
    /// The event's id.
    pub event: String,
    /// The delivery's status: `sent`, or where it stopped.
    pub status: DeliveryStatus,
    /// The channel it went through (or was last tried on).
    pub channel: Option<ChannelKind>,
    /// The delivery key.
    pub key: String,
    /// What it cost: SMS segments × tariff, or the message tariff; zero unless sent.
    pub cost: Decimal,
    /// Why it is not sent (yet): the delivery's error, or the pause of a channel out of money.
    pub reason: Option<String>,
}

impl NoticeResult {
    /// SPEC §8's `notify` line: `{"event","status","channel","key","cost"}`.
    pub fn to_json(&self) -> Value {
        json!({"event": self.event, "status": self.status.as_str(),
            "channel": self.channel.map(ChannelKind::as_str), "key": self.key,
            "cost": money(self.cost)})
    }
}

/// The host's recipients narrowed to one: the notice's freeze sees nobody else, and other
/// recipients' unreadable lines are none of its business. A balance the event reports is newer
/// than the profile's and replaces it.
struct OneRecipient {
    source: Arc<dyn RecipientSource>,
    id: String,
    balance: Option<Money>,
}

#[async_trait]
impl RecipientSource for OneRecipient {
    async fn scan(&self) -> Result<BoxStream<'_, SourceItem>, crate::source::BoxError> {
        let all = self.source.scan().await?;
        Ok(all
            .filter_map(move |item| {
                let kept = match item {
                    Ok(mut r) if r.id == self.id => {
                        if self.balance.is_some() {
                            r.balance = self.balance;
                        }
                        Some(Ok(r))
                    }
                    _ => None,
                };
                async move { kept }
            })
            .boxed())
    }

    async fn set_no_mailings(
        &self,
        recipient_id: &str,
        value: bool,
    ) -> Result<(), crate::source::BoxError> {
        self.source.set_no_mailings(recipient_id, value).await
    }

    async fn mark_unreachable(
        &self,
        recipient_id: &str,
        channel: ChannelKind,
    ) -> Result<(), crate::source::BoxError> {
        self.source.mark_unreachable(recipient_id, channel).await
    }
}

impl Rassylka {
    /// Sends a service notice for `event` on behalf of `sender`, or answers with the result
    /// of the same event sent before.
    ///
    /// # Errors
    /// [`DispatchError::Refused`] when the sender may not send it, the order is not ready or
    /// belongs to another department without that permission, the recipient is unknown, or
    /// no notices file is configured (each kept in the journal);
    /// [`DispatchError::InvalidMailing`] when the notices file has no template for the event;
    /// the errors of a run.
    pub async fn send_notice(
        &self,
        event: &NoticeEvent,
        sender: &Sender,
    ) -> Result<NoticeResult, DispatchError> {
        let Some(notices) = self.inner.config.notices.clone() else {
            return Err(DispatchError::Refused(
                "no notices file is configured: notices cannot be sent".into(),
            ));
        };
        if let Err(reason) = permission::check(&notices, event, sender) {
            return Err(self.refuse(event, sender, reason).await);
        }
        let recipient = match self.find_recipient(&event.recipient_id).await? {
            Some(recipient) => recipient,
            None => {
                let reason = format!("no recipient `{}` among the recipients", event.recipient_id);
                return Err(self.refuse(event, sender, reason).await);
            }
        };
        let mailing_id = format!("notice:{}", event.id);
        if self.store().mailing(&mailing_id).await?.is_none() {
            if !notices.content.contains_key(&event.kind) {
                return Err(crate::dispatcher::invalid(
                    &format!("templates.{}", event.kind.as_str()),
                    "the notices file has no template for this event",
                ));
            }
            let json = notices.mailing_json(event.kind, &event.id, event.values.clone());
            self.save(&Mailing::from_value(json)?).await?;
        }
        if self.record(&mailing_id).await?.state == MailingState::Draft {
            match self.confirm(&mailing_id).await {
                // Another call for the same event confirmed it first.
                Ok(()) | Err(DispatchError::WrongState { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let one = self.with_source(Arc::new(OneRecipient {
            source: Arc::clone(&self.inner.source),
            id: recipient.id.clone(),
            balance: event.values.get("balance").and_then(|b| b.parse().ok()),
        }));
        let report = one.run_mailing(&mailing_id).await?;
        if let Some((_, why)) = report.failures.first() {
            return Err(DispatchError::Refused(format!(
                "the notice {} was not sent: {why}",
                event.id
            )));
        }
        self.notice_result(&event.id, &mailing_id).await
    }

    /// The recipient with `id`, from a scan of the source.
    async fn find_recipient(&self, id: &str) -> Result<Option<Recipient>, DispatchError> {
        let mut all = self
            .inner
            .source
            .scan()
            .await
            .map_err(DispatchError::Source)?;
        while let Some(item) = all.next().await {
            if let Ok(recipient) = item
                && recipient.id == id
            {
                return Ok(Some(recipient));
            }
        }
        Ok(None)
    }

    /// Keeps a refusal in the journal; the error to return.
    async fn refuse(&self, event: &NoticeEvent, sender: &Sender, reason: String) -> DispatchError {
        let refusal = NoticeRefusal {
            event_id: event.id.clone(),
            event: event.kind.as_str().into(),
            recipient_id: event.recipient_id.clone(),
            user: sender.user.clone(),
            role: sender.role.clone(),
            department: sender.department.clone(),
            reason: reason.clone(),
            at: self.now(),
        };
        match self.store().record_refusal(&refusal).await {
            Ok(()) => DispatchError::Refused(reason),
            Err(e) => DispatchError::Store(e),
        }
    }

    /// The notice's delivery that tells its fate.
    async fn notice_result(
        &self,
        event_id: &str,
        mailing_id: &str,
    ) -> Result<NoticeResult, DispatchError> {
        let mut rows: Vec<Delivery> = Vec::new();
        for occurrence in self.store().occurrences(Some(mailing_id)).await? {
            rows.extend(self.store().deliveries(occurrence.id, 0, 100).await?);
        }
        // Sent tells it all; else the row in flight; else the last channel that failed;
        // else whatever waits or was skipped.
        let telling = |d: &Delivery| match d.planned.status {
            DeliveryStatus::Sent => 5,
            DeliveryStatus::Queued | DeliveryStatus::Sending | DeliveryStatus::Unknown => 4,
            DeliveryStatus::Failed => 3,
            DeliveryStatus::Standby => 2,
            DeliveryStatus::Skipped => 1,
        };
        let chosen = rows
            .iter()
            .max_by_key(|d| (telling(d), d.planned.rank, std::cmp::Reverse(d.id)));
        let Some(d) = chosen else {
            return Err(DispatchError::Refused(format!(
                "the notice {event_id} has no delivery in the journal"
            )));
        };
        let reason = match d.planned.status {
            DeliveryStatus::Sent => None,
            _ => match &d.planned.error {
                Some(error) => Some(error.clone()),
                None => self
                    .store()
                    .mailing(mailing_id)
                    .await?
                    .and_then(|m| m.reason),
            },
        };
        Ok(NoticeResult {
            reason,
            event: event_id.to_owned(),
            status: d.planned.status,
            channel: d.planned.channel,
            key: d.planned.delivery_key.clone(),
            cost: if d.planned.status == DeliveryStatus::Sent {
                d.planned.cost.unwrap_or_default()
            } else {
                Decimal::ZERO
            },
        })
    }
}
