use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use rassylka_model::{Address, ChannelKind, Money, PhoneNumber};
use serde_json::Value;

use crate::channel::wrong_address;
use crate::gate::AccountGate;
use crate::http::{client, join, read_body, transport_error};
use crate::segments::sms_segments;
use crate::{
    Channel, ChannelError, CostEstimate, Message, Receipt, SmsRuSettings, SmsSettings,
    SmscSettings, Verification,
};

const DAY: Duration = Duration::from_secs(24 * 3600);
const MINUTE: Duration = Duration::from_secs(60);

/// A price or balance that the gateway writes as a JSON number (SMS.ru) or a string (SMSC).
fn money(value: &Value) -> Option<Money> {
    match value {
        Value::Number(n) => Money::from_str(&n.to_string()).ok(),
        Value::String(s) => Money::from_str(s).ok(),
        _ => None,
    }
}

fn int(value: &Value) -> Option<i64> {
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

/// SMS.ru `status_code` → class. 230–232 are per-number and duplicate-text limits: transient
/// with the limit's period rather than «recipient gone», so the contact is kept.
fn classify_smsru(code: i64, text: &str) -> ChannelError {
    let reason = if text.is_empty() {
        format!("sms.ru refused the request with status {code}")
    } else {
        format!("sms.ru: {}", text.to_lowercase())
    };
    let error = match code {
        200 | 204 | 210 | 211 | 300..=302 => ChannelError::configuration(reason),
        201 | 206 => ChannelError::quota(reason),
        202 | 207 | 209 => ChannelError::recipient_gone(reason),
        203 | 205 | 208 | 212 | 213 | 233 => ChannelError::rejected(reason),
        230 | 232 => ChannelError::transient(reason).with_retry_after(DAY),
        231 => ChannelError::transient(reason).with_retry_after(MINUTE),
        _ => ChannelError::transient(reason),
    };
    error.with_provider_code(code)
}

/// SMSC `error_code` → class.
fn classify_smsc(code: i64, text: &str) -> ChannelError {
    let reason = format!("smsc: {}", text.to_lowercase());
    let error = match code {
        2 => ChannelError::configuration(reason),
        3 => ChannelError::quota(reason),
        1 | 5 | 6 => ChannelError::rejected(reason),
        7 | 8 => ChannelError::recipient_gone(reason),
        4 | 9 => ChannelError::transient(reason).with_retry_after(MINUTE),
        _ => ChannelError::transient(reason),
    };
    error.with_provider_code(code)
}

/// The SMS adapter for SMS.ru and SMSC.ru: one number per send, the alpha-name sender from the
/// settings, the provider's cost-only call behind [`Channel::quote`] and its balance call
/// behind [`Channel::verify`]. [`Channel::estimate`] counts segments with
/// [`sms_segments`](crate::sms_segments).
///
/// SMSC is called with `charset=utf-8` (its default is windows-1251), `fmt=3` (JSON) and
/// `cost=3`, so the receipt carries the price and part count. SMSC error 4 (IP blocked) pauses
/// the account for a minute.
pub struct SmsChannel {
    settings: SmsSettings,
    client: reqwest::Client,
    account: AccountGate,
}

impl std::fmt::Debug for SmsChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsChannel")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SmsChannel {
    /// A channel for the gateway in `settings`; secrets must already be resolved.
    ///
    /// # Errors
    /// A configuration error when the HTTP client cannot be built or credentials are missing.
    pub fn new(settings: SmsSettings) -> Result<Self, ChannelError> {
        let (rate, timeout) = match &settings {
            SmsSettings::Smsru(s) => {
                if s.api_id.expose().is_empty() {
                    return Err(ChannelError::configuration("sms.ru: the api_id is empty"));
                }
                (s.rate_per_sec, s.timeout_secs)
            }
            SmsSettings::Smsc(s) => {
                if s.api_key.is_none() && (s.login.is_none() || s.password.is_none()) {
                    return Err(ChannelError::configuration(
                        "smsc: give `login` and `password`, or `api_key`",
                    ));
                }
                (s.rate_per_sec, s.timeout_secs)
            }
        };
        Ok(SmsChannel {
            client: client(Duration::from_secs(timeout))?,
            account: AccountGate::new(rate),
            settings,
        })
    }

    async fn post(
        &self,
        base: &str,
        path: &str,
        form: &[(&str, String)],
    ) -> Result<Value, ChannelError> {
        self.account.admit().await;
        let response = self
            .client
            .post(join(base, path))
            .form(form)
            .send()
            .await
            .map_err(transport_error)?;
        let (status, retry_after, bytes) = read_body(response).await?;
        if !status.is_success() {
            let error = ChannelError::new(
                if status.is_server_error() || status.as_u16() == 429 {
                    crate::ErrorClass::Transient
                } else {
                    crate::ErrorClass::Configuration
                },
                format!("sms gateway answered http {}", status.as_u16()),
            )
            .with_provider_code(status.as_u16());
            let error = if status.is_server_error() {
                error.with_outage()
            } else {
                error
            };
            return Err(match retry_after {
                Some(wait) => error.with_retry_after(wait),
                None => error,
            });
        }
        // The gateway answered 2xx to a request it read: it may have taken the message, so
        // an answer that cannot be read is ambiguous, never a «not sent».
        serde_json::from_slice(&bytes).map_err(|e| {
            ChannelError::ambiguous("sms gateway: cannot read the answer").with_source(e)
        })
    }

    fn smsru_form(
        s: &SmsRuSettings,
        extra: &[(&'static str, String)],
    ) -> Vec<(&'static str, String)> {
        let mut form = vec![
            ("api_id", s.api_id.expose().to_owned()),
            ("json", "1".to_owned()),
        ];
        form.extend(extra.iter().cloned());
        form
    }

    fn smsc_form(
        s: &SmscSettings,
        extra: &[(&'static str, String)],
    ) -> Vec<(&'static str, String)> {
        let mut form = Vec::new();
        match (&s.api_key, &s.login, &s.password) {
            (Some(key), _, _) => form.push(("apikey", key.expose().to_owned())),
            (None, Some(login), Some(password)) => {
                form.push(("login", login.clone()));
                form.push(("psw", password.expose().to_owned()));
            }
            _ => {}
        }
        form.push(("fmt", "3".to_owned()));
        form.push(("charset", "utf-8".to_owned()));
        form.extend(extra.iter().cloned());
        form
    }

    fn smsru_message(
        s: &SmsRuSettings,
        phone: &PhoneNumber,
        message: &Message,
    ) -> Vec<(&'static str, String)> {
        let mut extra = vec![
            ("to", phone.digits().to_owned()),
            ("msg", message.text.clone()),
        ];
        if let Some(sender) = &s.sender {
            extra.push(("from", sender.clone()));
        }
        if s.test {
            extra.push(("test", "1".to_owned()));
        }
        Self::smsru_form(s, &extra)
    }

    fn smsc_message(
        s: &SmscSettings,
        phone: &PhoneNumber,
        message: &Message,
        cost: &str,
    ) -> Vec<(&'static str, String)> {
        let mut extra = vec![
            ("phones", phone.digits().to_owned()),
            ("mes", message.text.clone()),
            ("cost", cost.to_owned()),
        ];
        if let Some(sender) = &s.sender {
            extra.push(("sender", sender.clone()));
        }
        Self::smsc_form(s, &extra)
    }

    /// The per-number entry of an SMS.ru answer, after the request-level status.
    fn smsru_entry(answer: &Value, phone: &PhoneNumber) -> Result<Value, ChannelError> {
        if answer["status"] != "OK" {
            return Err(classify_smsru(
                int(&answer["status_code"]).unwrap_or(0),
                answer["status_text"].as_str().unwrap_or_default(),
            ));
        }
        let entry = answer["sms"].get(phone.digits()).cloned().ok_or_else(|| {
            ChannelError::transient("sms.ru: the answer does not list the number")
        })?;
        if entry["status"] != "OK" {
            return Err(classify_smsru(
                int(&entry["status_code"]).unwrap_or(0),
                entry["status_text"].as_str().unwrap_or_default(),
            ));
        }
        Ok(entry)
    }

    fn smsc_answer(&self, answer: Value) -> Result<Value, ChannelError> {
        if let Some(code) = answer.get("error_code") {
            let code = int(code).unwrap_or(0);
            let error = classify_smsc(code, answer["error"].as_str().unwrap_or_default());
            if code == 4 {
                self.account.pause(MINUTE);
            }
            return Err(error);
        }
        Ok(answer)
    }
}

fn phone_of(to: &Address) -> Result<&PhoneNumber, ChannelError> {
    match to {
        Address::Phone(phone) => Ok(phone),
        other => Err(wrong_address(ChannelKind::Sms, other)),
    }
}

#[async_trait]
impl Channel for SmsChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Sms
    }

    async fn send(&self, to: &Address, message: &Message) -> Result<Receipt, ChannelError> {
        let phone = phone_of(to)?;
        if message.text.trim().is_empty() {
            return Err(ChannelError::rejected("sms: the text is empty"));
        }
        let parts = sms_segments(&message.text).parts;
        match &self.settings {
            SmsSettings::Smsru(s) => {
                let form = Self::smsru_message(s, phone, message);
                let answer = self.post(&s.api_base, "sms/send", &form).await?;
                let entry = Self::smsru_entry(&answer, phone)?;
                let mut receipt = Receipt::new(entry["sms_id"].as_str().unwrap_or_default());
                receipt.cost = money(&entry["cost"]);
                receipt.parts = int(&entry["sms"]).map(|n| n as u32).or(Some(parts));
                Ok(receipt)
            }
            SmsSettings::Smsc(s) => {
                let form = Self::smsc_message(s, phone, message, "3");
                let answer = self.post(&s.api_base, "sys/send.php", &form).await?;
                let answer = self.smsc_answer(answer)?;
                let mut receipt = Receipt::new(match &answer["id"] {
                    Value::String(id) => id.clone(),
                    other => other.to_string(),
                });
                receipt.cost = money(&answer["cost"]);
                receipt.parts = int(&answer["cnt"]).map(|n| n as u32).or(Some(parts));
                Ok(receipt)
            }
        }
    }

    async fn verify(&self) -> Result<Verification, ChannelError> {
        let balance = match &self.settings {
            SmsSettings::Smsru(s) => {
                let answer = self
                    .post(&s.api_base, "my/balance", &Self::smsru_form(s, &[]))
                    .await?;
                if answer["status"] != "OK" {
                    return Err(classify_smsru(
                        int(&answer["status_code"]).unwrap_or(0),
                        answer["status_text"].as_str().unwrap_or_default(),
                    ));
                }
                money(&answer["balance"])
            }
            SmsSettings::Smsc(s) => {
                let answer = self
                    .post(&s.api_base, "sys/balance.php", &Self::smsc_form(s, &[]))
                    .await?;
                money(&self.smsc_answer(answer)?["balance"])
            }
        };
        let account = match &self.settings {
            SmsSettings::Smsru(s) => s.sender.clone(),
            SmsSettings::Smsc(s) => s.sender.clone().or_else(|| s.login.clone()),
        };
        Ok(Verification { account, balance })
    }

    fn estimate(&self, message: &Message) -> CostEstimate {
        CostEstimate::units(sms_segments(&message.text).parts)
    }

    async fn quote(&self, to: &Address, message: &Message) -> Result<CostEstimate, ChannelError> {
        let phone = phone_of(to)?;
        match &self.settings {
            SmsSettings::Smsru(s) => {
                let form = Self::smsru_message(s, phone, message);
                let answer = self.post(&s.api_base, "sms/cost", &form).await?;
                let entry = Self::smsru_entry(&answer, phone)?;
                Ok(CostEstimate {
                    units: int(&entry["sms"])
                        .map_or_else(|| self.estimate(message).units, |n| n as u32),
                    price: money(&entry["cost"]),
                })
            }
            SmsSettings::Smsc(s) => {
                let form = Self::smsc_message(s, phone, message, "1");
                let answer = self.post(&s.api_base, "sys/send.php", &form).await?;
                let answer = self.smsc_answer(answer)?;
                Ok(CostEstimate {
                    units: int(&answer["cnt"])
                        .map_or_else(|| self.estimate(message).units, |n| n as u32),
                    price: money(&answer["cost"]),
                })
            }
        }
    }
}
