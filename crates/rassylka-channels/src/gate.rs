//! Pacing shared by the adapters: a governor limiter per provider account, an optional keyed
//! limiter per recipient, and an account-wide pause set by a provider's retry-after.
#![allow(dead_code)]

use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

/// Requests spaced evenly at `per_sec` (burst 1), so that no one-second window holds more than
/// `per_sec` of them; `0` means unlimited.
fn quota(per_sec: u32) -> Option<Quota> {
    NonZeroU32::new(per_sec).map(|n| Quota::per_second(n).allow_burst(NonZeroU32::MIN))
}

pub(crate) struct AccountGate {
    limiter: Option<DefaultDirectRateLimiter>,
    paused_until: Mutex<Option<Instant>>,
}

impl AccountGate {
    pub(crate) fn new(per_sec: u32) -> Self {
        AccountGate {
            limiter: quota(per_sec).map(RateLimiter::direct),
            paused_until: Mutex::new(None),
        }
    }

    /// Waits until the account is not paused and the limiter lets one request through.
    pub(crate) async fn admit(&self) {
        self.wait_pause().await;
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
        // A pause may have begun while we waited for the limiter.
        self.wait_pause().await;
    }

    async fn wait_pause(&self) {
        loop {
            let until = *self.paused_until.lock().unwrap();
            match until {
                Some(until) if until > Instant::now() => tokio::time::sleep_until(until).await,
                _ => return,
            }
        }
    }

    /// Holds every later request of the account for `wait`.
    pub(crate) fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut paused = self.paused_until.lock().unwrap();
        if paused.is_none_or(|current| current < until) {
            *paused = Some(until);
        }
    }
}

/// One limiter per key (a Telegram chat), for providers that throttle per recipient too.
pub(crate) struct KeyedGate<K: Hash + Eq + Clone> {
    limiter: Option<DefaultKeyedRateLimiter<K>>,
}

impl<K: Hash + Eq + Clone> KeyedGate<K> {
    pub(crate) fn new(per_sec: u32) -> Self {
        KeyedGate {
            limiter: quota(per_sec).map(RateLimiter::keyed),
        }
    }

    pub(crate) async fn admit(&self, key: &K) {
        if let Some(limiter) = &self.limiter {
            limiter.until_key_ready(key).await;
            // Keys whose cell is full again are forgotten, so memory stays bounded in a
            // mailing to millions of chats.
            if limiter.len() > 10_000 {
                limiter.retain_recent();
            }
        }
    }
}
