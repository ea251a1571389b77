use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use rassylka_model::{Address, ChannelKind};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::channel::wrong_address;
use crate::gate::AccountGate;
use crate::http::{client, join, read_body, transport_error};
use crate::{Channel, ChannelError, Image, Message, Receipt, Verification, VkSettings};

const TEXT_LIMIT: usize = 9000;

/// The VK `random_id` for a delivery key: a positive `i32` from SHA-256 of the key, so every
/// retry of one delivery carries the same id and VK refuses to send it twice.
pub fn vk_random_id(delivery_key: &str) -> i32 {
    let digest = Sha256::digest(delivery_key.as_bytes());
    let value = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) & 0x7fff_ffff;
    // 0 means «no random_id» to VK.
    value.max(1) as i32
}

/// The VK community bot adapter: `messages.send` (API 5.199) with `random_id` derived from the
/// delivery key, and the photo chain `photos.getMessagesUploadServer` → upload →
/// `photos.saveMessagesPhoto`, whose attachment is reused for later sends of the same image.
///
/// VK answers HTTP 200 with an `error` object; codes map to classes as in the reference
/// table. Errors 6 (too many requests per second) pause the whole token for one second; flood
/// control (9) comes back as transient with a one-hour retry-after but pauses nothing, since it
/// concerns one recipient.
pub struct VkChannel {
    settings: VkSettings,
    client: reqwest::Client,
    token: AccountGate,
    attachments: tokio::sync::Mutex<HashMap<Image, String>>,
}

impl std::fmt::Debug for VkChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VkChannel")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn classify(code: i64, message: &str) -> ChannelError {
    let reason = format!("vk: {}", message.to_lowercase());
    let error = match code {
        900 | 901 | 902 | 18 | 113 | 936 | 950 => ChannelError::recipient_gone(reason),
        914 | 911 | 913 | 100 | 943 => ChannelError::rejected(reason),
        944 | 29 => ChannelError::quota(reason),
        985 | 5 | 27 | 28 | 15 | 14 => ChannelError::configuration(reason),
        6 => ChannelError::transient(reason).with_retry_after(Duration::from_secs(1)),
        9 => ChannelError::transient(reason).with_retry_after(Duration::from_secs(3600)),
        _ => ChannelError::transient(reason),
    };
    error.with_provider_code(code)
}

impl VkChannel {
    /// A channel for the community token in `settings`; the token must already be resolved.
    ///
    /// # Errors
    /// A configuration error when the HTTP client cannot be built or the token is empty.
    pub fn new(settings: VkSettings) -> Result<Self, ChannelError> {
        if settings.token.expose().is_empty() {
            return Err(ChannelError::configuration("vk: the token is empty"));
        }
        Ok(VkChannel {
            client: client(Duration::from_secs(settings.timeout_secs))?,
            token: AccountGate::new(settings.rate_per_sec),
            attachments: tokio::sync::Mutex::new(HashMap::new()),
            settings,
        })
    }

    async fn call(&self, method: &str, params: &[(&str, String)]) -> Result<Value, ChannelError> {
        self.token.admit().await;
        let mut form: Vec<(&str, String)> = vec![
            ("access_token", self.settings.token.expose().to_owned()),
            ("v", self.settings.api_version.clone()),
        ];
        form.extend(params.iter().cloned());
        let response = self
            .client
            .post(join(&self.settings.api_base, &format!("method/{method}")))
            .form(&form)
            .send()
            .await
            .map_err(transport_error)?;
        let (status, _, bytes) = read_body(response).await?;
        if !status.is_success() {
            let error = ChannelError::transient(format!("vk answered http {}", status.as_u16()))
                .with_provider_code(status.as_u16());
            return Err(if status.is_server_error() {
                error.with_outage()
            } else {
                error
            });
        }
        let mut body: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ChannelError::transient("vk: cannot read the answer").with_source(e))?;
        if let Some(error) = body.get("error") {
            let code = error["error_code"].as_i64().unwrap_or(0);
            let error = classify(code, error["error_msg"].as_str().unwrap_or_default());
            if code == 6 {
                self.token.pause(Duration::from_secs(1));
            }
            return Err(error);
        }
        Ok(body["response"].take())
    }

    async fn image_bytes(&self, image: &Image) -> Result<Vec<u8>, ChannelError> {
        match image {
            Image::Path(path) => tokio::fs::read(path).await.map_err(|e| {
                ChannelError::rejected("vk: cannot read the image file").with_source(e)
            }),
            Image::Url(url) => {
                let response = self.client.get(url).send().await.map_err(transport_error)?;
                let (status, _, bytes) = read_body(response).await?;
                if status.is_success() {
                    Ok(bytes)
                } else {
                    Err(ChannelError::rejected(format!(
                        "vk: the image url answered http {}",
                        status.as_u16()
                    )))
                }
            }
        }
    }

    /// Uploads `image` once per channel and returns the `attachment` value.
    async fn attachment(&self, peer: i64, image: &Image) -> Result<String, ChannelError> {
        // Held during the upload, so concurrent first sends upload once.
        let mut cache = self.attachments.lock().await;
        if let Some(found) = cache.get(image) {
            return Ok(found.clone());
        }
        let server = self
            .call(
                "photos.getMessagesUploadServer",
                &[("peer_id", peer.to_string())],
            )
            .await?;
        let upload_url = server["upload_url"]
            .as_str()
            .ok_or_else(|| ChannelError::transient("vk: no upload_url in the answer"))?;
        let part = reqwest::multipart::Part::bytes(self.image_bytes(image).await?)
            .file_name(image.file_name())
            .mime_str(image.mime_type())
            .map_err(|e| {
                ChannelError::rejected("vk: bad image type").with_source(e.without_url())
            })?;
        let response = self
            .client
            .post(upload_url)
            .multipart(reqwest::multipart::Form::new().part("photo", part))
            .send()
            .await
            .map_err(transport_error)?;
        let (_, _, bytes) = read_body(response).await?;
        let uploaded: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ChannelError::transient("vk: cannot read the upload answer").with_source(e)
        })?;
        let field = |name: &str| match &uploaded[name] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        if field("photo").is_empty() || field("photo") == "[]" {
            return Err(ChannelError::rejected(
                "vk: the upload server refused the image",
            ));
        }
        let saved = self
            .call(
                "photos.saveMessagesPhoto",
                &[
                    ("photo", field("photo")),
                    ("server", field("server")),
                    ("hash", field("hash")),
                ],
            )
            .await?;
        let photo = &saved[0];
        let (Some(owner), Some(id)) = (photo["owner_id"].as_i64(), photo["id"].as_i64()) else {
            return Err(ChannelError::transient("vk: no photo in the save answer"));
        };
        let mut attachment = format!("photo{owner}_{id}");
        if let Some(key) = photo["access_key"].as_str().filter(|k| !k.is_empty()) {
            attachment.push('_');
            attachment.push_str(key);
        }
        cache.insert(image.clone(), attachment.clone());
        Ok(attachment)
    }
}

#[async_trait]
impl Channel for VkChannel {
    fn takes_idempotency_key(&self) -> bool {
        true
    }

    fn kind(&self) -> ChannelKind {
        ChannelKind::Vk
    }

    async fn send(&self, to: &Address, message: &Message) -> Result<Receipt, ChannelError> {
        let &Address::VkUser(peer) = to else {
            return Err(wrong_address(ChannelKind::Vk, to));
        };
        if message.text.trim().is_empty() && message.image.is_none() {
            return Err(ChannelError::rejected("vk: the message is empty"));
        }
        if message.text.chars().count() > TEXT_LIMIT {
            return Err(ChannelError::rejected(format!(
                "vk: the text is longer than {TEXT_LIMIT} characters"
            )));
        }
        let mut params = vec![
            ("peer_id", peer.to_string()),
            ("random_id", vk_random_id(&message.delivery_key).to_string()),
            ("message", message.text.clone()),
        ];
        if let Some(image) = &message.image {
            params.push(("attachment", self.attachment(peer, image).await?));
        }
        if let Some(intent) = &self.settings.intent {
            params.push(("intent", intent.clone()));
        }
        if let Some(id) = self.settings.subscribe_id {
            params.push(("subscribe_id", id.to_string()));
        }
        let response = self.call("messages.send", &params).await?;
        Ok(Receipt::new(response.to_string()))
    }

    async fn verify(&self) -> Result<Verification, ChannelError> {
        let answer = self.call("groups.getTokenPermissions", &[]).await?;
        let has_messages = answer["permissions"]
            .as_array()
            .is_some_and(|rights| rights.iter().any(|r| r["name"] == "messages"));
        if !has_messages {
            return Err(ChannelError::configuration(
                "vk: the token lacks the `messages` right",
            ));
        }
        Ok(Verification::default())
    }
}
