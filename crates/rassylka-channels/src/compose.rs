//! One e-mail message, built the same way for the SMTP adapter and the outbox's `.eml`
//! (SPEC §7d), so the outbox is a faithful preview of what would be sent.

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use rassylka_model::{Address, ChannelKind};
use sha2::{Digest, Sha256};

use crate::channel::wrong_address;
use crate::email_text::{header_value, plain_part};
use crate::headers::complete_header;
use crate::{ChannelError, Image, Message};

/// A domain as its A-label (punycode); an ASCII one as it is.
pub(crate) fn ascii_domain(domain: &str) -> String {
    if domain.is_ascii() {
        domain.to_owned()
    } else {
        idna::domain_to_ascii(domain).unwrap_or_else(|_| domain.to_owned())
    }
}

/// `from` as a mailbox, or a configuration error naming it.
pub(crate) fn sender(from: &str) -> Result<Mailbox, ChannelError> {
    from.parse().map_err(|e| {
        ChannelError::configuration(format!("email: invalid from address `{from}`")).with_source(e)
    })
}

/// The message to `to`, from `from`, with a `Message-ID` on `domain`; and that id.
///
/// # Errors
/// A rejection when the address is not an e-mail, a header is invalid, or the image cannot
/// be read.
pub(crate) async fn compose(
    from: &Mailbox,
    domain: &str,
    to: &Address,
    message: &Message,
) -> Result<(lettre::Message, String), ChannelError> {
    let Address::Email(email) = to else {
        return Err(wrong_address(ChannelKind::Email, to));
    };
    // The domain as its A-label (punycode): every server takes it, with or without
    // SMTPUTF8 (SPEC §7d).
    let ascii = format!("{}@{}", email.local_part(), ascii_domain(email.domain()));
    let to: Mailbox = ascii.parse().map_err(|e| {
        ChannelError::rejected("email: the recipient address is not valid").with_source(e)
    })?;
    let hash: String = Sha256::digest(message.delivery_key.as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    let message_id = format!("<{hash}@{}>", domain);
    let mut builder = lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(header_value(message.subject.as_deref().unwrap_or_default()))
        .message_id(Some(message_id.clone()));
    for (name, value) in &message.headers {
        let name = HeaderName::new_from_ascii(name.clone()).map_err(|e| {
            ChannelError::rejected(format!("email: invalid header name `{name}`")).with_source(e)
        })?;
        let value = complete_header(&name, value, domain);
        builder = builder.raw_header(HeaderValue::new(name, header_value(&value)));
    }
    let image = match &message.image {
        Some(image @ Image::Path(path)) => {
            let bytes = tokio::fs::read(path).await.map_err(|e| {
                ChannelError::rejected("email: cannot read the image file").with_source(e)
            })?;
            let content_type = ContentType::parse(image.mime_type())
                .map_err(|e| ChannelError::rejected("email: bad image type").with_source(e))?;
            Some((image.file_name(), bytes, content_type))
        }
        _ => None,
    };
    let text = plain_part(&message.text, message.html.as_deref());
    let plain = SinglePart::plain(text.clone());
    let built = match (&message.html, image) {
        (None, None) => builder.singlepart(plain),
        (Some(html), None) => {
            builder.multipart(MultiPart::alternative_plain_html(text, html.clone()))
        }
        (Some(html), Some((name, bytes, content_type))) => builder.multipart(
            MultiPart::alternative().singlepart(plain).multipart(
                MultiPart::related()
                    .singlepart(SinglePart::html(html.clone()))
                    .singlepart(
                        Attachment::new_inline_with_name("image".to_owned(), name)
                            .body(bytes, content_type),
                    ),
            ),
        ),
        (None, Some((name, bytes, content_type))) => builder.multipart(
            MultiPart::mixed()
                .singlepart(plain)
                .singlepart(Attachment::new(name).body(bytes, content_type)),
        ),
    };
    let built = built
        .map_err(|e| ChannelError::rejected("email: cannot build the message").with_source(e))?;
    Ok((built, message_id))
}
