use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

/// What the dispatcher should do about a failed send (SPEC §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Try again later (timeouts, HTTP 429/5xx, SMTP 4xx, flood control), honouring
    /// [`ChannelError::retry_after`] when given.
    Transient,
    /// No answer after the request may have been written (a read timeout, a connection reset
    /// or closed mid-answer): the provider may hold the message. Never retried blind: the
    /// delivery is «unknown», unless the channel takes the delivery key as an idempotency key,
    /// when it is sent again with the same key.
    Ambiguous,
    /// Permanent for this recipient on this channel (blocked bot, VK 901, SMTP 550): mark the
    /// contact unreachable, never retry.
    RecipientGone,
    /// Permanent for this message (text too long, bad markup, invalid image): journal the reason.
    Rejected,
    /// A daily or monthly limit is reached or the balance is too low: pause until it renews.
    Quota,
    /// Bad credentials, unapproved sender name, wrong base URL: stop the mailing and report.
    Configuration,
}

impl ErrorClass {
    /// The snake-case name used in JSON and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Transient => "transient",
            ErrorClass::Ambiguous => "ambiguous",
            ErrorClass::RecipientGone => "recipient_gone",
            ErrorClass::Rejected => "rejected",
            ErrorClass::Quota => "quota",
            ErrorClass::Configuration => "configuration",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The one error type of every channel: a class, a lowercase reason, the provider's own code when
/// it gave one, an optional retry-after and the underlying error.
///
/// The reason never holds a secret or a URL: adapters scrub transport errors before wrapping
/// them.
#[derive(Debug)]
pub struct ChannelError {
    class: ErrorClass,
    reason: String,
    provider_code: Option<String>,
    retry_after: Option<Duration>,
    source: Option<BoxError>,
    outage: bool,
}

impl ChannelError {
    /// An error of `class` with a lowercase `reason`.
    pub fn new(class: ErrorClass, reason: impl Into<String>) -> Self {
        ChannelError {
            class,
            reason: reason.into(),
            provider_code: None,
            retry_after: None,
            source: None,
            outage: false,
        }
    }

    /// The channel itself failed, not this recipient: the provider could not be reached
    /// (refused, reset, DNS, TLS), did not answer in time, or answered 5xx (SPEC §7b). A
    /// transient error; several in a row take the channel down for the mailing.
    pub fn outage(reason: impl Into<String>) -> Self {
        ChannelError::transient(reason).with_outage()
    }

    /// Marks the error as a sign of an outage of the whole channel (an ambiguous timeout keeps
    /// its class and counts towards the outage too).
    pub fn with_outage(mut self) -> Self {
        self.outage = true;
        self
    }

    /// Whether the error speaks of the channel rather than the recipient.
    pub fn is_outage(&self) -> bool {
        self.outage
    }

    /// A transient error.
    pub fn transient(reason: impl Into<String>) -> Self {
        Self::new(ErrorClass::Transient, reason)
    }

    /// No answer after the request may have reached the provider.
    pub fn ambiguous(reason: impl Into<String>) -> Self {
        Self::new(ErrorClass::Ambiguous, reason)
    }

    /// The recipient cannot be reached on this channel any more.
    pub fn recipient_gone(reason: impl Into<String>) -> Self {
        Self::new(ErrorClass::RecipientGone, reason)
    }

    /// The message itself was refused.
    pub fn rejected(reason: impl Into<String>) -> Self {
        Self::new(ErrorClass::Rejected, reason)
    }

    /// A limit or the balance is exhausted.
    pub fn quota(reason: impl Into<String>) -> Self {
        Self::new(ErrorClass::Quota, reason)
    }

    /// The channel's settings are wrong.
    pub fn configuration(reason: impl Into<String>) -> Self {
        Self::new(ErrorClass::Configuration, reason)
    }

    /// Adds how long to wait before the next attempt.
    #[must_use]
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// Adds the provider's own error code (`"403"`, `"901"`, `"550"` …) for the journal.
    #[must_use]
    pub fn with_provider_code(mut self, code: impl fmt::Display) -> Self {
        self.provider_code = Some(code.to_string());
        self
    }

    /// Adds the underlying error; it must not carry secrets.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The class the dispatcher acts on.
    pub fn class(&self) -> ErrorClass {
        self.class
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        self.class == ErrorClass::Transient
    }

    /// How long the provider asked us to wait, when it did.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The provider's own error code, when it gave one.
    pub fn provider_code(&self) -> Option<&str> {
        self.provider_code.as_deref()
    }

    /// The human-readable reason, without the class.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl ChannelError {
    /// The same error without its source, for reporting one failure once per batch item.
    #[allow(dead_code)]
    pub(crate) fn duplicate(&self) -> ChannelError {
        ChannelError {
            class: self.class,
            reason: self.reason.clone(),
            provider_code: self.provider_code.clone(),
            retry_after: self.retry_after,
            source: None,
            outage: self.outage,
        }
    }
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let class = match self.class {
            ErrorClass::Transient => "transient error",
            ErrorClass::Ambiguous => "no answer",
            ErrorClass::RecipientGone => "recipient gone",
            ErrorClass::Rejected => "message rejected",
            ErrorClass::Quota => "quota exhausted",
            ErrorClass::Configuration => "channel misconfigured",
        };
        write!(f, "{class}: {}", self.reason)?;
        if let Some(code) = &self.provider_code {
            write!(f, " (code {code})")?;
        }
        if let Some(wait) = self.retry_after {
            write!(f, "; retry after {} ms", wait.as_millis())?;
        }
        Ok(())
    }
}

impl StdError for ChannelError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}
