use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use rassylka_model::{Address, ChannelKind};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::channel::wrong_address;
use crate::gate::{AccountGate, KeyedGate};
use crate::http::{client, join, read_body, transport_error};
use crate::{Channel, ChannelError, Image, Message, Receipt, TelegramSettings, Verification};

const TEXT_LIMIT: usize = 4096;
const CAPTION_LIMIT: usize = 1024;

/// The Telegram Bot API adapter: `sendMessage` in HTML parse mode, `sendPhoto` with a caption.
///
/// The message text must already be Telegram HTML (the template crate's `telegram-html`
/// format). A photo is uploaded once (file or URL) and its returned `file_id` is reused for
/// every later send of the same image by this channel. A text longer than the 1024-character
/// caption limit goes as the photo followed by a separate message; when only that message
/// fails, a retry with the same delivery key sends only the message. Lengths are counted in
/// UTF-16 units of the text without tags, entities counting one.
///
/// Pacing: `rate_per_sec` for the bot (evenly spaced) and `per_chat_per_sec` per chat; a 429
/// pauses every send of the bot for its `retry_after`. A group that was upgraded to a
/// supergroup is retried once at its new id.
pub struct TelegramChannel {
    settings: TelegramSettings,
    client: reqwest::Client,
    bot: AccountGate,
    chats: KeyedGate<i64>,
    photo_ids: Mutex<HashMap<Image, String>>,
    /// Photos already delivered for a delivery key whose follow-up text failed, so the
    /// dispatcher's retry sends only the text.
    photos_sent: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for TelegramChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramChannel")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    result: Value,
    #[serde(default)]
    description: String,
    #[serde(default)]
    parameters: Parameters,
}

#[derive(Deserialize, Default)]
struct Parameters {
    retry_after: Option<u64>,
    migrate_to_chat_id: Option<i64>,
}

/// A failed call, before classification, so `send` can follow a chat migration.
struct Failure {
    error: ChannelError,
    migrate_to: Option<i64>,
}

impl From<ChannelError> for Failure {
    fn from(error: ChannelError) -> Self {
        Failure {
            error,
            migrate_to: None,
        }
    }
}

enum Body {
    Json(Value),
    Form(reqwest::multipart::Form),
}

/// Characters Telegram counts: the text without tags, an entity counting once.
fn visible_len(html: &str) -> usize {
    let mut count = 0;
    let mut in_tag = false;
    let mut in_entity = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if in_tag => {}
            '&' => {
                in_entity = true;
                count += 1;
            }
            ';' if in_entity => in_entity = false,
            _ if in_entity && (c.is_ascii_alphanumeric() || c == '#') => {}
            _ => {
                in_entity = false;
                count += c.len_utf16();
            }
        }
    }
    count
}

fn classify(status: u16, description: &str, retry_after: Option<u64>) -> ChannelError {
    let lower = description.to_lowercase();
    let reason = if lower.is_empty() {
        format!("telegram answered http {status}")
    } else {
        format!("telegram: {lower}")
    };
    let error = match status {
        429 => {
            let wait = retry_after
                .or_else(|| {
                    lower
                        .rsplit("retry after ")
                        .next()
                        .and_then(|n| n.trim().parse().ok())
                })
                .unwrap_or(1);
            ChannelError::transient(reason).with_retry_after(Duration::from_secs(wait))
        }
        403 => ChannelError::recipient_gone(reason),
        400 if [
            "chat not found",
            "user not found",
            "peer_id_invalid",
            "bot was blocked",
            "user is deactivated",
            "upgraded to a supergroup",
        ]
        .iter()
        .any(|p| lower.contains(p)) =>
        {
            ChannelError::recipient_gone(reason)
        }
        400 => ChannelError::rejected(reason),
        401 | 404 => ChannelError::configuration(reason),
        500.. => ChannelError::outage(reason),
        _ => ChannelError::rejected(reason),
    };
    error.with_provider_code(status)
}

impl TelegramChannel {
    /// A channel for the bot in `settings`; the token must already be resolved.
    ///
    /// # Errors
    /// A configuration error when the HTTP client cannot be built or the token is empty.
    pub fn new(settings: TelegramSettings) -> Result<Self, ChannelError> {
        if settings.bot_token.expose().is_empty() {
            return Err(ChannelError::configuration(
                "telegram: the bot token is empty",
            ));
        }
        Ok(TelegramChannel {
            client: client(Duration::from_secs(settings.timeout_secs))?,
            bot: AccountGate::new(settings.rate_per_sec),
            chats: KeyedGate::new(settings.per_chat_per_sec),
            photo_ids: Mutex::new(HashMap::new()),
            photos_sent: Mutex::new(HashMap::new()),
            settings,
        })
    }

    async fn call(&self, method: &str, body: Body) -> Result<Value, Failure> {
        self.bot.admit().await;
        let url = join(
            &self.settings.api_base,
            &format!("bot{}/{method}", self.settings.bot_token.expose()),
        );
        let request = self.client.post(url);
        let request = match body {
            Body::Json(value) => request.json(&value),
            Body::Form(form) => request.multipart(form),
        };
        let response = request.send().await.map_err(transport_error)?;
        let (status, header_wait, bytes) = read_body(response).await?;
        let answer: Answer = match serde_json::from_slice(&bytes) {
            Ok(answer) => answer,
            Err(e) => {
                return Err(
                    classify(status.as_u16(), "", header_wait.map(|d| d.as_secs()))
                        .with_source(e)
                        .into(),
                );
            }
        };
        if answer.ok && status.is_success() {
            return Ok(answer.result);
        }
        let retry_after = answer
            .parameters
            .retry_after
            .or(header_wait.map(|d| d.as_secs()));
        let error = classify(status.as_u16(), &answer.description, retry_after);
        if let (429, Some(wait)) = (status.as_u16(), error.retry_after()) {
            self.bot.pause(wait);
        }
        Err(Failure {
            error,
            migrate_to: answer.parameters.migrate_to_chat_id,
        })
    }

    async fn photo_body(
        &self,
        chat: i64,
        image: &Image,
        caption: Option<&str>,
    ) -> Result<Body, ChannelError> {
        let cached = self.photo_ids.lock().unwrap().get(image).cloned();
        let reference = match (cached, image) {
            (Some(file_id), _) => file_id,
            (None, Image::Url(url)) => url.clone(),
            (None, Image::Path(path)) => {
                let bytes = tokio::fs::read(path).await.map_err(|e| {
                    ChannelError::rejected("telegram: cannot read the image file").with_source(e)
                })?;
                let part = reqwest::multipart::Part::bytes(bytes)
                    .file_name(image.file_name())
                    .mime_str(image.mime_type())
                    .map_err(|e| {
                        ChannelError::rejected("telegram: bad image type")
                            .with_source(e.without_url())
                    })?;
                let mut form = reqwest::multipart::Form::new()
                    .text("chat_id", chat.to_string())
                    .part("photo", part);
                if let Some(caption) = caption {
                    form = form
                        .text("caption", caption.to_owned())
                        .text("parse_mode", "HTML");
                }
                return Ok(Body::Form(form));
            }
        };
        let mut body = json!({"chat_id": chat, "photo": reference});
        if let Some(caption) = caption {
            body["caption"] = json!(caption);
            body["parse_mode"] = json!("HTML");
        }
        Ok(Body::Json(body))
    }

    async fn send_to_chat(&self, chat: i64, message: &Message) -> Result<Receipt, Failure> {
        self.chats.admit(&chat).await;
        let text = message.text.trim();
        let mut ids = Vec::new();
        let mut text_left = Some(text).filter(|t| !t.is_empty());
        if let Some(image) = &message.image {
            let caption = text_left.filter(|t| visible_len(t) <= CAPTION_LIMIT);
            if caption.is_some() {
                text_left = None;
            }
            let earlier = self
                .photos_sent
                .lock()
                .unwrap()
                .get(&message.delivery_key)
                .cloned();
            let photo_id = match earlier {
                Some(id) => id,
                None => {
                    let body = self.photo_body(chat, image, caption).await?;
                    let result = self.call("sendPhoto", body).await?;
                    if let Some(file_id) = result["photo"]
                        .as_array()
                        .and_then(|sizes| sizes.last())
                        .and_then(|size| size["file_id"].as_str())
                    {
                        self.photo_ids
                            .lock()
                            .unwrap()
                            .insert(image.clone(), file_id.to_owned());
                    }
                    result["message_id"].to_string()
                }
            };
            ids.push(photo_id);
        }
        if let Some(text) = text_left {
            let body = json!({"chat_id": chat, "text": text, "parse_mode": "HTML"});
            match self.call("sendMessage", Body::Json(body)).await {
                Ok(result) => ids.push(result["message_id"].to_string()),
                Err(failure) => {
                    if let Some(photo_id) = ids.first() {
                        self.photos_sent
                            .lock()
                            .unwrap()
                            .insert(message.delivery_key.clone(), photo_id.clone());
                    }
                    return Err(failure);
                }
            }
        }
        self.photos_sent
            .lock()
            .unwrap()
            .remove(&message.delivery_key);
        Ok(Receipt::new(ids.join(",")))
    }
}

#[async_trait]
impl Channel for TelegramChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Telegram
    }

    async fn send(&self, to: &Address, message: &Message) -> Result<Receipt, ChannelError> {
        let &Address::TelegramChat(chat) = to else {
            return Err(wrong_address(ChannelKind::Telegram, to));
        };
        if message.text.trim().is_empty() && message.image.is_none() {
            return Err(ChannelError::rejected("telegram: the message is empty"));
        }
        if visible_len(&message.text) > TEXT_LIMIT {
            return Err(ChannelError::rejected(format!(
                "telegram: the text is longer than {TEXT_LIMIT} characters"
            )));
        }
        match self.send_to_chat(chat, message).await {
            Ok(receipt) => Ok(receipt),
            Err(Failure {
                migrate_to: Some(new_chat),
                ..
            }) => self
                .send_to_chat(new_chat, message)
                .await
                .map_err(|failure| failure.error),
            Err(failure) => Err(failure.error),
        }
    }

    async fn verify(&self) -> Result<Verification, ChannelError> {
        let me = self
            .call("getMe", Body::Json(json!({})))
            .await
            .map_err(|f| f.error)?;
        Ok(Verification {
            account: me["username"].as_str().map(|u| format!("@{u}")),
            balance: None,
        })
    }
}
