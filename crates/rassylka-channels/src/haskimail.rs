use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{Datelike, NaiveDate};
use rassylka_model::{Address, ChannelKind};
use serde_json::{Value, json};

use crate::channel::wrong_address;
use crate::gate::AccountGate;
use crate::headers::{complete_header, sender_domain};
use crate::http::{client, join, read_body, transport_error};
use crate::{Channel, ChannelError, HaskiMailSettings, Image, Message, Receipt, Verification};

const BATCH_LIMIT: usize = 500;
/// HaskiMail documents no Retry-After; its SDK example waits 10 s.
const DEFAULT_THROTTLE: Duration = Duration::from_secs(10);

/// Today's date, for the daily and monthly limits.
pub type DateSource = Arc<dyn Fn() -> NaiveDate + Send + Sync>;

struct Usage {
    day: NaiveDate,
    today: u64,
    this_month: u64,
}

/// The HaskiMail adapter (a Postmark-compatible HTTP API by DashaMail): `POST /email` for one
/// message, `POST /email/batch` (chunks of 500) for [`Channel::send_batch`], `GET /server` to
/// verify.
///
/// The daily and monthly limits of the settings are enforced here: a send beyond them fails
/// with [`ErrorClass::Quota`](crate::ErrorClass::Quota) without calling the provider. The
/// counters roll over on the date given by the date source (UTC today by default;
/// [`HaskiMailChannel::with_date_source`]) and can be seeded from the journal after a restart
/// with [`HaskiMailChannel::with_usage`]. A local image goes as an inline attachment with
/// `Content-ID: image`, so the HTML can show it as `<img src="cid:image">`.
pub struct HaskiMailChannel {
    settings: HaskiMailSettings,
    from: String,
    client: reqwest::Client,
    account: AccountGate,
    usage: Mutex<Usage>,
    today: DateSource,
}

impl std::fmt::Debug for HaskiMailChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HaskiMailChannel")
            .field("settings", &self.settings)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

fn classify(status: u16, code: Option<i64>, message: &str) -> ChannelError {
    let reason = if message.is_empty() {
        format!("haskimail answered http {status}")
    } else {
        format!("haskimail: {}", message.to_lowercase())
    };
    let error = match (status, code) {
        (_, Some(406)) => ChannelError::recipient_gone(reason),
        (_, Some(405)) => ChannelError::quota(reason),
        (_, Some(10 | 400 | 401)) | (401 | 403, _) => ChannelError::configuration(reason),
        (429, _) => ChannelError::transient(reason).with_retry_after(DEFAULT_THROTTLE),
        (408 | 500.., _) => ChannelError::outage(reason),
        (_, Some(_)) | (400..=499, None) => ChannelError::rejected(reason),
        _ => ChannelError::transient(reason),
    };
    match code {
        Some(code) => error.with_provider_code(code),
        None => error.with_provider_code(status),
    }
}

/// One result object of `/email` or an element of `/email/batch`.
fn result_of(status: u16, item: &Value) -> Result<Receipt, ChannelError> {
    let code = item["ErrorCode"].as_i64();
    if code == Some(0) && (200..300).contains(&status) {
        return Ok(Receipt::new(item["MessageID"].as_str().unwrap_or_default()));
    }
    Err(classify(
        status,
        code,
        item["Message"].as_str().unwrap_or_default(),
    ))
}

impl HaskiMailChannel {
    /// A channel for the server token in `settings` (already resolved). The from address is
    /// the settings' `from` (with `from_name`), else `default_from` (the e-mail `from`).
    ///
    /// # Errors
    /// A configuration error when there is no from address, the token is empty, or the HTTP
    /// client cannot be built.
    pub fn new(
        settings: HaskiMailSettings,
        default_from: Option<&str>,
    ) -> Result<Self, ChannelError> {
        if settings.server_token.expose().is_empty() {
            return Err(ChannelError::configuration(
                "haskimail: the server token is empty",
            ));
        }
        let address = settings
            .from
            .as_deref()
            .or(default_from)
            .filter(|f| !f.trim().is_empty())
            .ok_or_else(|| ChannelError::configuration("haskimail: no from address"))?;
        let from = match &settings.from_name {
            Some(name) if !address.contains('<') => {
                format!("\"{}\" <{address}>", name.replace('"', "'"))
            }
            _ => address.to_owned(),
        };
        let zone = settings.limits_tz;
        let today: DateSource =
            Arc::new(move || chrono::Utc::now().with_timezone(&zone).date_naive());
        Ok(HaskiMailChannel {
            client: client(Duration::from_secs(settings.timeout_secs))?,
            account: AccountGate::new(0),
            usage: Mutex::new(Usage {
                day: today(),
                today: 0,
                this_month: 0,
            }),
            today,
            from,
            settings,
        })
    }

    /// Uses `today` for the limits' days and months (a zone-aware clock, or a fixed date in
    /// tests).
    #[must_use]
    pub fn with_date_source(mut self, today: DateSource) -> Self {
        self.usage.get_mut().unwrap().day = today();
        self.today = today;
        self
    }

    /// Starts the counters at what was already sent today and this month.
    #[must_use]
    pub fn with_usage(self, sent_today: u64, sent_this_month: u64) -> Self {
        self.start_usage(sent_today, sent_this_month);
        self
    }

    /// Takes up to `wanted` sends from the limits; answers how many were granted.
    fn reserve(&self, wanted: u64) -> u64 {
        let now = (self.today)();
        let mut usage = self.usage.lock().unwrap();
        if now != usage.day {
            if (now.year(), now.month()) != (usage.day.year(), usage.day.month()) {
                usage.this_month = 0;
            }
            usage.today = 0;
            usage.day = now;
        }
        let daily_left = self
            .settings
            .daily_limit
            .map_or(u64::MAX, |limit| limit.saturating_sub(usage.today));
        let monthly_left = self
            .settings
            .monthly_limit
            .map_or(u64::MAX, |limit| limit.saturating_sub(usage.this_month));
        let granted = wanted.min(daily_left).min(monthly_left);
        usage.today += granted;
        usage.this_month += granted;
        granted
    }

    fn release(&self, unused: u64) {
        let mut usage = self.usage.lock().unwrap();
        usage.today = usage.today.saturating_sub(unused);
        usage.this_month = usage.this_month.saturating_sub(unused);
    }

    /// The limit reached. A daily one renews at the provider's next midnight, which the
    /// dispatcher waits for in [`AccountLimits::zone`](crate::AccountLimits); a monthly one
    /// says how long until the provider's next month begins.
    fn quota_error(&self) -> ChannelError {
        let usage = self.usage.lock().unwrap();
        let daily = matches!(self.settings.daily_limit, Some(limit) if usage.today >= limit);
        if daily {
            return ChannelError::quota("haskimail: the daily limit of the account is reached");
        }
        let error = ChannelError::quota("haskimail: the monthly limit of the account is reached");
        let (year, month) = match usage.day.month() {
            12 => (usage.day.year() + 1, 1),
            m => (usage.day.year(), m + 1),
        };
        let starts = NaiveDate::from_ymd_opt(year, month, 1).and_then(|d| {
            d.and_time(chrono::NaiveTime::MIN)
                .and_local_timezone(self.settings.limits_tz)
                .earliest()
        });
        match starts.and_then(|at| (at.to_utc() - chrono::Utc::now()).to_std().ok()) {
            Some(wait) => error.with_retry_after(wait),
            None => error,
        }
    }

    async fn body(&self, to: &Address, message: &Message) -> Result<Value, ChannelError> {
        let Address::Email(email) = to else {
            return Err(wrong_address(ChannelKind::Email, to));
        };
        let mut body = json!({
            "From": self.from,
            "To": email.as_str(),
            "Subject": message.subject.clone().unwrap_or_default(),
            "TextBody": message.text,
            "Metadata": {"delivery_key": message.delivery_key},
        });
        if let Some(html) = &message.html {
            body["HtmlBody"] = json!(html);
        }
        if let Some(stream) = &self.settings.message_stream {
            body["MessageStream"] = json!(stream);
        }
        if !message.headers.is_empty() {
            let domain = sender_domain(&self.from);
            body["Headers"] = message
                .headers
                .iter()
                .map(|(name, value)| {
                    let value = complete_header(name, value, domain);
                    json!({"Name": name, "Value": value})
                })
                .collect();
        }
        if let Some(image @ Image::Path(path)) = &message.image {
            let bytes = tokio::fs::read(path).await.map_err(|e| {
                ChannelError::rejected("haskimail: cannot read the image file").with_source(e)
            })?;
            body["Attachments"] = json!([{
                "Name": image.file_name(),
                "Content": BASE64.encode(bytes),
                "ContentType": image.mime_type(),
                "ContentID": "cid:image",
            }]);
        }
        Ok(body)
    }

    async fn post(&self, path: &str, body: &Value) -> Result<(u16, Value), ChannelError> {
        self.account.admit().await;
        let response = self
            .client
            .post(join(&self.settings.api_base, path))
            .header(
                &self.settings.token_header,
                self.settings.server_token.expose(),
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .json(body)
            .send()
            .await
            .map_err(transport_error)?;
        let (status, retry_after, bytes) = read_body(response).await?;
        let status = status.as_u16();
        if status == 429 {
            self.account.pause(retry_after.unwrap_or(DEFAULT_THROTTLE));
        }
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if value.is_null() && !(200..300).contains(&status) {
            return Err(classify(status, None, ""));
        }
        Ok((status, value))
    }

    async fn send_chunk(
        &self,
        items: &[&(Address, Message)],
    ) -> Vec<Result<Receipt, ChannelError>> {
        let mut bodies = Vec::with_capacity(items.len());
        let mut results: Vec<Option<Result<Receipt, ChannelError>>> = Vec::new();
        for (to, message) in items {
            match self.body(to, message).await {
                Ok(body) => {
                    bodies.push(body);
                    results.push(None);
                }
                Err(error) => results.push(Some(Err(error))),
            }
        }
        let granted = self.reserve(bodies.len() as u64) as usize;
        let mut answers: Vec<Result<Receipt, ChannelError>> = Vec::new();
        if granted > 0 {
            bodies.truncate(granted);
            match self.post("email/batch", &Value::Array(bodies)).await {
                Ok((status, Value::Array(items))) if (200..300).contains(&status) => {
                    answers = items.iter().map(|item| result_of(status, item)).collect();
                }
                Ok((status, other)) => {
                    let error = || result_of(status, &other).err();
                    for _ in 0..granted {
                        answers.push(Err(error().unwrap_or_else(|| {
                            ChannelError::transient("haskimail: unexpected batch answer")
                        })));
                    }
                }
                Err(error) => {
                    for _ in 0..granted {
                        answers.push(Err(error.duplicate()));
                    }
                }
            }
            let failed = answers.iter().filter(|a| a.is_err()).count() as u64;
            self.release(failed);
        }
        let mut answers = answers.into_iter();
        results
            .into_iter()
            .map(|slot| match slot {
                Some(done) => done,
                None => answers.next().unwrap_or_else(|| Err(self.quota_error())),
            })
            .collect()
    }
}

#[async_trait]
impl Channel for HaskiMailChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }

    async fn send(&self, to: &Address, message: &Message) -> Result<Receipt, ChannelError> {
        let body = self.body(to, message).await?;
        if self.reserve(1) == 0 {
            return Err(self.quota_error());
        }
        let result = match self.post("email", &body).await {
            Ok((status, answer)) => result_of(status, &answer),
            Err(error) => Err(error),
        };
        if result.is_err() {
            self.release(1);
        }
        result
    }

    fn account_limits(&self) -> Option<crate::AccountLimits> {
        let (daily, monthly) = (self.settings.daily_limit, self.settings.monthly_limit);
        (daily.is_some() || monthly.is_some()).then_some(crate::AccountLimits {
            daily,
            monthly,
            zone: self.settings.limits_tz,
        })
    }

    fn start_usage(&self, sent_today: u64, sent_this_month: u64) {
        let mut usage = self.usage.lock().unwrap();
        usage.day = (self.today)();
        usage.today = sent_today;
        usage.this_month = sent_this_month;
    }

    async fn send_batch(&self, items: &[(Address, Message)]) -> Vec<Result<Receipt, ChannelError>> {
        let mut results = Vec::with_capacity(items.len());
        let all: Vec<&(Address, Message)> = items.iter().collect();
        for chunk in all.chunks(BATCH_LIMIT) {
            results.extend(self.send_chunk(chunk).await);
        }
        results
    }

    async fn verify(&self) -> Result<Verification, ChannelError> {
        self.account.admit().await;
        let response = self
            .client
            .get(join(&self.settings.api_base, "server"))
            .header(
                &self.settings.token_header,
                self.settings.server_token.expose(),
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(transport_error)?;
        let (status, _, bytes) = read_body(response).await?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(classify(
                status.as_u16(),
                value["ErrorCode"].as_i64(),
                value["Message"].as_str().unwrap_or_default(),
            ));
        }
        Ok(Verification {
            account: value["Name"]
                .as_str()
                .map(str::to_owned)
                .or(Some(self.from.clone())),
            balance: None,
        })
    }
}
