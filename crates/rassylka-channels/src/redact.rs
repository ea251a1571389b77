//! Secrets out of error texts: some gateways echo the request (its URL, the `api_id`, the
//! token) in their error answers, and transport errors name the URL, which for Telegram holds
//! the bot token. Every error an adapter built from a channels file returns passes through
//! here before anyone logs, prints or journals it.

use std::sync::Arc;

use async_trait::async_trait;
use rassylka_model::{Address, ChannelKind};

use crate::{Channel, ChannelError, CostEstimate, Message, Receipt, Verification};

/// Shorter values are left alone: a two-letter «password» would cut every word it occurs in.
const SHORTEST: usize = 4;

/// What replaces a secret.
const MARK: &str = "<redacted>";

/// `text` with every occurrence of every secret, in any letter case, replaced by
/// `<redacted>`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= SHORTEST) {
        out = replace_ignoring_case(&out, secret);
    }
    out
}

fn replace_ignoring_case(text: &str, secret: &str) -> String {
    let (hay, needle) = (text.as_bytes(), secret.as_bytes());
    // Tokens and keys are ASCII: compared byte by byte; another secret by its lower case.
    let lower = (!secret.is_ascii()).then(|| secret.to_lowercase());
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        let window = &hay[i..i + needle.len()];
        let same = match &lower {
            None => window.eq_ignore_ascii_case(needle),
            Some(lower) => {
                text.is_char_boundary(i)
                    && text.is_char_boundary(i + needle.len())
                    && text[i..i + needle.len()].to_lowercase() == *lower
            }
        };
        if same && text.is_char_boundary(i) {
            out.push_str(&text[copied..i]);
            out.push_str(MARK);
            i += needle.len();
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

impl ChannelError {
    /// The same error with `secrets` taken out of its reason, provider code and the messages
    /// of its causes (the causes become text).
    pub fn redacted(self, secrets: &[String]) -> ChannelError {
        let causes = {
            let mut chain = Vec::new();
            let mut source = std::error::Error::source(&self);
            while let Some(cause) = source {
                chain.push(redact(&cause.to_string(), secrets));
                source = cause.source();
            }
            chain
        };
        let mut clean = ChannelError::new(self.class(), redact(self.reason(), secrets));
        if let Some(code) = self.provider_code() {
            clean = clean.with_provider_code(redact(code, secrets));
        }
        if let Some(wait) = self.retry_after() {
            clean = clean.with_retry_after(wait);
        }
        if !causes.is_empty() {
            clean = clean.with_source(causes.join(": "));
        }
        if self.is_outage() {
            clean = clean.with_outage();
        }
        clean
    }
}

/// A channel whose errors never carry its secrets.
pub(crate) struct Redacting {
    pub(crate) inner: Arc<dyn Channel>,
    pub(crate) secrets: Vec<String>,
}

#[async_trait]
impl Channel for Redacting {
    fn kind(&self) -> ChannelKind {
        self.inner.kind()
    }

    async fn send(&self, to: &Address, message: &Message) -> Result<Receipt, ChannelError> {
        self.inner
            .send(to, message)
            .await
            .map_err(|e| e.redacted(&self.secrets))
    }

    async fn verify(&self) -> Result<Verification, ChannelError> {
        self.inner
            .verify()
            .await
            .map_err(|e| e.redacted(&self.secrets))
    }

    fn estimate(&self, message: &Message) -> CostEstimate {
        self.inner.estimate(message)
    }

    async fn quote(&self, to: &Address, message: &Message) -> Result<CostEstimate, ChannelError> {
        self.inner
            .quote(to, message)
            .await
            .map_err(|e| e.redacted(&self.secrets))
    }

    fn account_limits(&self) -> Option<crate::AccountLimits> {
        self.inner.account_limits()
    }

    fn start_usage(&self, sent_today: u64, sent_this_month: u64) {
        self.inner.start_usage(sent_today, sent_this_month);
    }

    fn takes_idempotency_key(&self) -> bool {
        self.inner.takes_idempotency_key()
    }

    async fn send_batch(&self, items: &[(Address, Message)]) -> Vec<Result<Receipt, ChannelError>> {
        self.inner
            .send_batch(items)
            .await
            .into_iter()
            .map(|r| r.map_err(|e| e.redacted(&self.secrets)))
            .collect()
    }
}
