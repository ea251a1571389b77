use async_trait::async_trait;
use rassylka_model::{Address, ChannelKind};

use crate::{ChannelError, CostEstimate, Message, Receipt, Verification};

/// The daily and monthly limits of a provider account, counted in the provider's day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountLimits {
    /// Messages per day, if limited.
    pub daily: Option<u64>,
    /// Messages per calendar month, if limited.
    pub monthly: Option<u64>,
    /// The zone of the provider's day (Europe/Moscow unless set).
    pub zone: chrono_tz::Tz,
}

/// A way to deliver a rendered message to one address: e-mail, SMS, Telegram, VK, Wallet push,
/// the file outbox or the in-memory test channel.
///
/// Channels never retry on their own: the dispatcher retries [`ErrorClass::Transient`]
/// errors, waiting at least [`ChannelError::retry_after`]. When a provider throttles an account,
/// the channel also pauses every later send through that account until the wait is over, so one
/// 429 does not turn into a burst of them.
///
/// [`ErrorClass::Transient`]: crate::ErrorClass::Transient
#[async_trait]
pub trait Channel: Send + Sync {
    /// Which kind of channel this is.
    fn kind(&self) -> ChannelKind;

    /// Sends one message to one address.
    ///
    /// # Errors
    /// A classified [`ChannelError`]; an address of another channel kind is
    /// [`ErrorClass::Rejected`](crate::ErrorClass::Rejected).
    async fn send(&self, to: &Address, message: &Message) -> Result<Receipt, ChannelError>;

    /// Checks the settings with a cheap authenticated call («settings saved and verified»).
    ///
    /// # Errors
    /// [`ErrorClass::Configuration`](crate::ErrorClass::Configuration) for bad credentials,
    /// a transient error when the provider cannot be reached.
    async fn verify(&self) -> Result<Verification, ChannelError>;

    /// The billable units of `message` without asking the provider: SMS segments, otherwise 1.
    fn estimate(&self, message: &Message) -> CostEstimate {
        let _ = message;
        CostEstimate::units(1)
    }

    /// Asks the provider what sending `message` to `to` would cost, where it can tell;
    /// the default is [`Channel::estimate`].
    ///
    /// # Errors
    /// As [`Channel::send`].
    async fn quote(&self, to: &Address, message: &Message) -> Result<CostEstimate, ChannelError> {
        let _ = to;
        Ok(self.estimate(message))
    }

    /// Whether the provider takes the message's delivery key as an idempotency key, so sending
    /// the same key again cannot deliver twice (VK `random_id`, the file outbox). The
    /// dispatcher resends such messages after a crash instead of marking them «unknown».
    fn takes_idempotency_key(&self) -> bool {
        false
    }

    /// The account's daily and monthly limits, when the provider has them; the dispatcher
    /// counts what the journal says was sent in the provider's day and month and hands it to
    /// [`Channel::start_usage`], so separate processes share the limits. `None` by default.
    fn account_limits(&self) -> Option<AccountLimits> {
        None
    }

    /// Starts the limits' counters at what was already sent today and this month (in the
    /// zone of [`Channel::account_limits`]). The default does nothing.
    fn start_usage(&self, sent_today: u64, sent_this_month: u64) {
        let _ = (sent_today, sent_this_month);
    }

    /// Sends several messages, answering one result per item in the same order. The default
    /// sends them one by one; providers with a batch call override it.
    async fn send_batch(&self, items: &[(Address, Message)]) -> Vec<Result<Receipt, ChannelError>> {
        let mut results = Vec::with_capacity(items.len());
        for (to, message) in items {
            results.push(self.send(to, message).await);
        }
        results
    }
}

#[allow(dead_code)]
pub(crate) fn wrong_address(kind: ChannelKind, to: &Address) -> ChannelError {
    let got = match to {
        Address::Email(_) => "an e-mail address",
        Address::Phone(_) => "a phone number",
        Address::TelegramChat(_) => "a telegram chat",
        Address::VkUser(_) => "a vk user",
        Address::WalletCard(_) => "a wallet card",
    };
    ChannelError::rejected(format!("the {kind} channel cannot send to {got}"))
}
