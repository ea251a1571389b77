//! Unsubscribes, consent and frequency (SPEC §7c): signed tokens, the links and headers of
//! advertising messages, what an unsubscribe records, and the frequency cap's count.
//!
//! The HTTP endpoint is not here: it lives in the `rassylka-unsubscribe` crate and calls
//! [`Rassylka::unsubscribe_page`] and [`Rassylka::unsubscribe`].

mod cap;
mod links;
mod mask;
mod token;

use std::sync::Arc;

use chrono::{DateTime, Utc};

pub(crate) use cap::CapWindow;
pub(crate) use links::Links;
pub use mask::mask_address;
pub use token::{TokenClaims, UnsubscribeKeys};

use crate::DispatchError;
use crate::dispatcher::Rassylka;
use crate::store::{DeliveryStatus, ReachedAddress, Unsubscribe};
use rassylka_model::ChannelKind;

/// The name the journal keeps the generated signing secret under.
const SECRET_NAME: &str = "unsubscribe";

/// The token of an unsubscribe e-mail, from its subject: the `mailto:` of `List-Unsubscribe`
/// asks for `unsubscribe-TOKEN`; a mail client may add `Re:` or spaces. Hand it to
/// [`Rassylka::unsubscribe`] with [`UnsubscribeSource::Mailto`].
///
/// ```
/// assert_eq!(rassylka::mailto_token("unsubscribe-AQEabc_-1"), Some("AQEabc_-1"));
/// assert_eq!(rassylka::mailto_token("Re: Unsubscribe-AQEabc "), Some("AQEabc"));
/// assert_eq!(rassylka::mailto_token("Вопрос по заказу"), None);
/// assert_eq!(rassylka::mailto_token("Ré"), None);
/// ```
pub fn mailto_token(subject: &str) -> Option<&str> {
    let mut rest = subject.trim();
    while rest.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("re:")) {
        rest = rest[3..].trim_start();
    }
    let prefix = "unsubscribe-";
    let token = rest
        .get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .map(|_| rest[prefix.len()..].trim())?;
    let url_safe = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    (!token.is_empty() && token.bytes().all(url_safe)).then_some(token)
}

/// How an unsubscribe came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsubscribeSource {
    /// The page's button (a link in the message, then the form).
    Link,
    /// A mail client's RFC 8058 one-click POST.
    OneClick,
    /// A reply to the `mailto:` of `List-Unsubscribe`.
    Mailto,
}

impl UnsubscribeSource {
    /// `link`, `one_click` or `mailto`.
    pub fn as_str(self) -> &'static str {
        match self {
            UnsubscribeSource::Link => "link",
            UnsubscribeSource::OneClick => "one_click",
            UnsubscribeSource::Mailto => "mailto",
        }
    }
}

/// What a valid token leads to, for the page that asks to confirm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubscribePage {
    /// Who.
    pub recipient_id: String,
    /// From which mailing.
    pub mailing_id: String,
    /// The address the mailing reached, masked (`a***@example.com`), when the journal has it.
    pub masked_address: Option<String>,
    /// Whether the recipient is unsubscribed already.
    pub unsubscribed: bool,
}

/// What [`Rassylka::unsubscribe`] recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribed {
    /// The unsubscribe as the journal keeps it (the earlier one when it was a repeat).
    pub record: Unsubscribe,
    /// `false` when the recipient was unsubscribed already: nothing changed.
    pub new: bool,
    /// The address the mailing reached, masked, as the page names it.
    pub masked_address: Option<String>,
    /// Why the recipient source did not take the «no mailings» flag, when it did not; the
    /// journal keeps the unsubscribe all the same (a CRM syncs from
    /// [`Rassylka::unsubscribes`]).
    pub source_error: Option<String>,
}

impl Rassylka {
    /// The keys that sign and verify unsubscribe tokens: the settings' secret (and previous
    /// ones), or the secret the journal generated once and keeps.
    ///
    /// # Errors
    /// [`DispatchError::Store`] when the journal cannot keep the secret,
    /// [`DispatchError::Refused`] for a secret too short.
    pub async fn unsubscribe_keys(&self) -> Result<Arc<UnsubscribeKeys>, DispatchError> {
        self.inner
            .keys
            .get_or_try_init(|| async {
                let settings = &self.inner.config.unsubscribe;
                // An `env:NAME` left unresolved would sign with public text.
                if let Some(name) = settings
                    .secret
                    .iter()
                    .chain(&settings.previous_secrets)
                    .find_map(|s| s.env_name())
                {
                    return Err(DispatchError::Refused(format!(
                        "unsubscribe: the secret `env:{name}` was not read from the environment (resolve the settings first)"
                    )));
                }
                let mut secrets: Vec<Vec<u8>> = Vec::new();
                match &settings.secret {
                    Some(secret) => {
                        secrets.push(secret.expose().as_bytes().to_vec());
                        // Links signed before the settings named a secret stay good.
                        secrets.extend(self.store().kept_secret(SECRET_NAME).await?);
                    }
                    None => {
                        let mut fresh = [0u8; 32];
                        getrandom::fill(&mut fresh).map_err(|e| {
                            DispatchError::Refused(format!(
                                "unsubscribe: no randomness for a secret: {e}"
                            ))
                        })?;
                        secrets.push(self.store().keep_secret(SECRET_NAME, &fresh).await?);
                    }
                }
                secrets.extend(
                    settings
                        .previous_secrets
                        .iter()
                        .map(|s| s.expose().as_bytes().to_vec()),
                );
                Ok(Arc::new(UnsubscribeKeys::new(&secrets)?))
            })
            .await
            .cloned()
    }

    /// What advertising messages carry for their unsubscribe.
    pub(crate) async fn links(&self) -> Result<Links, DispatchError> {
        Ok(Links::new(
            self.unsubscribe_keys().await?,
            &self.inner.config.unsubscribe,
        ))
    }

    /// The unsubscribe link of `recipient_id` for `mailing_id`.
    ///
    /// # Errors
    /// As [`Rassylka::unsubscribe_keys`].
    pub async fn unsubscribe_link(
        &self,
        mailing_id: &str,
        recipient_id: &str,
    ) -> Result<String, DispatchError> {
        Ok(self.links().await?.url(mailing_id, recipient_id))
    }

    /// What a token leads to, changing nothing (mail scanners open links).
    ///
    /// # Errors
    /// [`DispatchError::BadToken`] for a token none of the keys signed; journal errors.
    pub async fn unsubscribe_page(&self, token: &str) -> Result<UnsubscribePage, DispatchError> {
        let claims = self.unsubscribe_keys().await?.verify(token)?;
        let store = self.store();
        let address = self.reached_address(&claims).await?;
        let unsubscribed = !store
            .unsubscribed_among(&[claims.recipient_id.as_str()])
            .await?
            .is_empty();
        Ok(UnsubscribePage {
            masked_address: address.map(|a| mask_address(a.channel, &a.address)),
            recipient_id: claims.recipient_id,
            mailing_id: claims.mailing_id,
            unsubscribed,
        })
    }

    /// Records the unsubscribe a token asks for and tells the recipient source («no
    /// mailings»); a repeat changes nothing. From the next freeze on, advertising journals the
    /// recipient as skipped with reason `unsubscribed`.
    ///
    /// # Errors
    /// [`DispatchError::BadToken`] (nothing recorded); journal errors.
    pub async fn unsubscribe(
        &self,
        token: &str,
        source: UnsubscribeSource,
    ) -> Result<Unsubscribed, DispatchError> {
        let claims = self.unsubscribe_keys().await?.verify(token)?;
        let store = self.store();
        let reached = self.reached_address(&claims).await?;
        let channel = reached.as_ref().map(|a| a.channel);
        let masked_address = reached.map(|a| mask_address(a.channel, &a.address));
        let record = Unsubscribe {
            recipient_id: claims.recipient_id,
            mailing_id: claims.mailing_id,
            channel,
            // The journal keeps milliseconds: the record returned is the record kept.
            at: DateTime::from_timestamp_millis(self.now().timestamp_millis()).unwrap_or_default(),
            source: source.as_str().into(),
        };
        let earlier = store.record_unsubscribe(&record).await?;
        let new = earlier.is_none();
        // The journal is the truth; a source that cannot keep the flag does not undo it.
        let source_error = self
            .inner
            .source
            .set_no_mailings(&record.recipient_id, true)
            .await
            .err()
            .map(|e| e.to_string());
        let record = earlier.unwrap_or(record);
        Ok(Unsubscribed {
            record,
            new,
            masked_address,
            source_error,
        })
    }

    /// The address a link leads back to: the mailing's sent e-mail to the recipient, else
    /// its latest sent delivery, else its latest delivery with an address.
    async fn reached_address(
        &self,
        claims: &TokenClaims,
    ) -> Result<Option<ReachedAddress>, DispatchError> {
        let mut addresses = self
            .store()
            .addresses(&claims.mailing_id, &claims.recipient_id)
            .await?;
        let sent = |a: &ReachedAddress| a.status == DeliveryStatus::Sent;
        let pick = addresses
            .iter()
            .position(|a| sent(a) && a.channel == ChannelKind::Email)
            .or_else(|| addresses.iter().position(sent))
            .or(if addresses.is_empty() { None } else { Some(0) });
        Ok(pick.map(|i| addresses.swap_remove(i)))
    }

    /// The recipients unsubscribed now, at or after `since`, oldest first.
    ///
    /// # Errors
    /// When the journal cannot be read.
    pub async fn unsubscribes(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<Unsubscribe>, DispatchError> {
        Ok(self.store().unsubscribes(since).await?)
    }

    /// Clears a recipient's unsubscribe (the operator may) and the source's «no mailings»
    /// flag; `false` when there was none. A source that cannot clear its flag is not asked
    /// again: the journal no longer suppresses the recipient either way.
    ///
    /// # Errors
    /// When the journal cannot be written.
    pub async fn resubscribe(&self, recipient_id: &str) -> Result<bool, DispatchError> {
        let cleared = self.store().resubscribe(recipient_id).await?;
        if cleared {
            let _ = self.inner.source.set_no_mailings(recipient_id, false).await;
        }
        Ok(cleared)
    }
}
