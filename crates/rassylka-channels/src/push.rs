use std::time::Duration;

use async_trait::async_trait;
use rassylka_model::{Address, ChannelKind};
use serde_json::{Value, json};

use crate::channel::wrong_address;
use crate::gate::AccountGate;
use crate::http::{client, join, read_body, transport_error};
use crate::{
    Channel, ChannelError, HttpPushSettings, Message, PushSettings, Receipt, Verification,
};

/// Wallet card push through a pass platform's HTTP API (OSMI Cards-like: the platform owns the
/// Apple/Google certificates and turns a call into a pass update with a notification).
///
/// `POST {api_base}{push_path}` with `Authorization: Bearer <token>` and
/// `{"serials": ["<card serial>"], "message": "<text>"}`. Answers: 2xx sent (the provider id
/// is the body's `id` when present, else the serial); 400/422 rejected; 401/403 configuration;
/// 402 quota; 404/410 recipient gone (the card was deleted or never installed); 429 transient
/// with `Retry-After` (1 s when absent), pausing the account; 5xx transient.
pub struct PushChannel {
    settings: HttpPushSettings,
    client: reqwest::Client,
    account: AccountGate,
}

impl std::fmt::Debug for PushChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushChannel")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn classify(status: u16, body: &Value, retry_after: Option<Duration>) -> ChannelError {
    let detail = body["message"]
        .as_str()
        .or_else(|| body["error"].as_str())
        .map(str::to_lowercase)
        .unwrap_or_default();
    let reason = if detail.is_empty() {
        format!("push platform answered http {status}")
    } else {
        format!("push platform answered http {status}: {detail}")
    };
    let error = match status {
        400 | 413 | 422 => ChannelError::rejected(reason),
        401 | 403 => ChannelError::configuration(reason),
        402 => ChannelError::quota(reason),
        404 | 410 => ChannelError::recipient_gone(reason),
        429 => ChannelError::transient(reason)
            .with_retry_after(retry_after.unwrap_or(Duration::from_secs(1))),
        500.. => ChannelError::outage(reason),
        _ => ChannelError::rejected(reason),
    };
    error.with_provider_code(status)
}

impl PushChannel {
    /// A channel for the platform in `settings`; the token must already be resolved.
    ///
    /// # Errors
    /// A configuration error when the token is empty or the HTTP client cannot be built.
    pub fn new(settings: PushSettings) -> Result<Self, ChannelError> {
        let PushSettings::Http(settings) = settings;
        if settings.token.expose().is_empty() {
            return Err(ChannelError::configuration("push: the token is empty"));
        }
        Ok(PushChannel {
            client: client(Duration::from_secs(settings.timeout_secs))?,
            account: AccountGate::new(settings.rate_per_sec),
            settings,
        })
    }

    async fn answer(&self, request: reqwest::RequestBuilder) -> Result<Value, ChannelError> {
        self.account.admit().await;
        let response = request
            .bearer_auth(self.settings.token.expose())
            .send()
            .await
            .map_err(transport_error)?;
        let (status, retry_after, bytes) = read_body(response).await?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let error = classify(status.as_u16(), &body, retry_after);
        if let (429, Some(wait)) = (status.as_u16(), error.retry_after()) {
            self.account.pause(wait);
        }
        Err(error)
    }
}

#[async_trait]
impl Channel for PushChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Push
    }

    async fn send(&self, to: &Address, message: &Message) -> Result<Receipt, ChannelError> {
        let Address::WalletCard(serial) = to else {
            return Err(wrong_address(ChannelKind::Push, to));
        };
        if message.text.trim().is_empty() {
            return Err(ChannelError::rejected("push: the text is empty"));
        }
        let request = self
            .client
            .post(join(&self.settings.api_base, &self.settings.push_path))
            .json(&json!({"serials": [serial], "message": message.text}));
        let body = self.answer(request).await?;
        let id = match &body["id"] {
            Value::String(id) => id.clone(),
            Value::Number(id) => id.to_string(),
            _ => serial.clone(),
        };
        Ok(Receipt::new(id))
    }

    async fn verify(&self) -> Result<Verification, ChannelError> {
        let request = self
            .client
            .get(join(&self.settings.api_base, &self.settings.verify_path));
        self.answer(request).await?;
        Ok(Verification::default())
    }
}
