use std::path::PathBuf;

use rassylka_model::Money;
use serde::{Deserialize, Serialize};

/// An image to send with a message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Image {
    /// A local file; adapters upload it (once per mailing where the provider allows reuse).
    Path(PathBuf),
    /// A public HTTP(S) URL.
    Url(String),
}

impl Image {
    /// Reads `"http://…"`/`"https://…"` as a URL and anything else as a path, the way the
    /// mailing JSON writes `"image"`.
    pub fn parse(text: &str) -> Image {
        if text.starts_with("http://") || text.starts_with("https://") {
            Image::Url(text.to_owned())
        } else {
            Image::Path(PathBuf::from(text))
        }
    }

    /// The file name part, for multipart uploads and attachments.
    pub fn file_name(&self) -> String {
        let raw = match self {
            Image::Path(path) => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            Image::Url(url) => url
                .split(['?', '#'])
                .next()
                .and_then(|u| u.rsplit('/').next())
                .unwrap_or_default()
                .to_owned(),
        };
        if raw.is_empty() {
            "image".to_owned()
        } else {
            raw
        }
    }

    /// The MIME type guessed from the extension (JPEG when unknown).
    pub fn mime_type(&self) -> &'static str {
        let name = self.file_name().to_ascii_lowercase();
        match name.rsplit('.').next() {
            Some("png") => "image/png",
            Some("gif") => "image/gif",
            Some("webp") => "image/webp",
            _ => "image/jpeg",
        }
    }
}

/// One rendered message for one recipient, as the dispatcher hands it to a channel.
///
/// The text is already in the channel's format: Telegram HTML for Telegram, plain text for SMS
/// and VK, plain text plus optional HTML for e-mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The delivery key: unique per (mailing, occurrence, recipient, channel). Adapters whose
    /// provider takes an idempotency key derive it from this (VK `random_id`, the outbox).
    pub delivery_key: String,
    /// The text; may be empty when an image is given.
    pub text: String,
    /// E-mail subject.
    pub subject: Option<String>,
    /// E-mail HTML body.
    pub html: Option<String>,
    /// An optional image.
    pub image: Option<Image>,
    /// Extra headers for e-mail (`List-Unsubscribe`, `List-Unsubscribe-Post` …), in order.
    pub headers: Vec<(String, String)>,
}

impl Message {
    /// A text message with the given delivery key.
    pub fn new(delivery_key: impl Into<String>, text: impl Into<String>) -> Self {
        Message {
            delivery_key: delivery_key.into(),
            text: text.into(),
            subject: None,
            html: None,
            image: None,
            headers: Vec::new(),
        }
    }

    /// Sets the e-mail subject.
    #[must_use]
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets the e-mail HTML body.
    #[must_use]
    pub fn with_html(mut self, html: impl Into<String>) -> Self {
        self.html = Some(html.into());
        self
    }

    /// Attaches an image.
    #[must_use]
    pub fn with_image(mut self, image: Image) -> Self {
        self.image = Some(image);
        self
    }

    /// Adds a header (e-mail only).
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// What a channel answers for an accepted message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The provider's message id (Telegram `message_id`, SMS id, e-mail `Message-ID` …).
    pub provider_id: String,
    /// What the provider charged, when it says.
    pub cost: Option<Money>,
    /// Billable units (SMS segments), when known.
    pub parts: Option<u32>,
}

impl Receipt {
    /// A receipt with only the provider id.
    pub fn new(provider_id: impl Into<String>) -> Self {
        Receipt {
            provider_id: provider_id.into(),
            cost: None,
            parts: None,
        }
    }
}

/// What a message will cost, in billable units and, when the provider told, in money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostEstimate {
    /// Billable units: SMS segments, or 1 message elsewhere.
    pub units: u32,
    /// The price the provider quoted, when asked.
    pub price: Option<Money>,
}

impl CostEstimate {
    /// An estimate of `units` without a price.
    pub fn units(units: u32) -> Self {
        CostEstimate { units, price: None }
    }
}

/// What a successful settings check learned about the account.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Verification {
    /// The account's name as the provider knows it (bot username, sender address …).
    pub account: Option<String>,
    /// The prepaid balance, for providers that have one.
    pub balance: Option<Money>,
}
