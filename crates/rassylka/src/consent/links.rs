//! What an advertising message carries for its unsubscribe: the link, the e-mail headers of
//! RFC 2369, 8058 and 2919, and the footer.

use std::sync::Arc;

use rassylka_channels::UnsubscribeSettings;

use super::UnsubscribeKeys;
use rassylka_template::OutputFormat;

/// The link when the settings give none: the `unsubscribe` example on this machine.
pub(crate) const DEFAULT_URL: &str = "http://localhost:8080/u/{token}";

/// The footer's words before the link, when the settings give none.
pub(crate) const DEFAULT_FOOTER: &str =
    "Вы получили это письмо, потому что подписаны на рассылку. Отписаться:";

/// Links and headers for one dispatcher: its keys and settings.
#[derive(Debug, Clone)]
pub(crate) struct Links {
    keys: Arc<UnsubscribeKeys>,
    url: String,
    mailto: Option<String>,
    footer: String,
}

impl Links {
    pub(crate) fn new(keys: Arc<UnsubscribeKeys>, settings: &UnsubscribeSettings) -> Links {
        Links {
            keys,
            url: settings.url.clone().unwrap_or_else(|| DEFAULT_URL.into()),
            mailto: settings.mailto.clone(),
            footer: settings
                .footer
                .clone()
                .unwrap_or_else(|| DEFAULT_FOOTER.into()),
        }
    }

    /// The recipient's link for the mailing.
    pub(crate) fn url(&self, mailing_id: &str, recipient_id: &str) -> String {
        self.url
            .replace("{token}", &self.keys.sign(mailing_id, recipient_id))
    }

    /// `List-Unsubscribe` (the link, and a mailto when set), `List-Unsubscribe-Post` and
    /// `List-Id` (a bare mailing id: the adapter puts it under the sender's domain).
    pub(crate) fn headers(&self, mailing_id: &str, recipient_id: &str) -> Vec<(String, String)> {
        let token = self.keys.sign(mailing_id, recipient_id);
        let mut list = format!("<{}>", self.url.replace("{token}", &token));
        if let Some(mailto) = &self.mailto {
            list.push_str(&format!(", <mailto:{mailto}?subject=unsubscribe-{token}>"));
        }
        vec![
            ("List-Unsubscribe".into(), list),
            (
                "List-Unsubscribe-Post".into(),
                "List-Unsubscribe=One-Click".into(),
            ),
            ("List-Id".into(), mailing_id.into()),
        ]
    }

    /// `text` with the footer after it.
    pub(crate) fn text_with_footer(&self, text: &str, url: &str) -> String {
        format!("{}\n\n-- \n{} {url}\n", text.trim_end(), self.footer)
    }

    /// `html` with the footer before its `</body>` (or at its end).
    pub(crate) fn html_with_footer(&self, html: &str, url: &str) -> String {
        let footer = format!(
            "<p style=\"font-size:12px;color:#777777\">{} <a href=\"{}\">Отписаться от рассылки</a></p>",
            OutputFormat::Html.escape(&self.footer),
            OutputFormat::Html.escape(url)
        );
        let at = html
            .to_ascii_lowercase()
            .rfind("</body>")
            .unwrap_or(html.len());
        let mut out = String::with_capacity(html.len() + footer.len());
        out.push_str(&html[..at]);
        out.push_str(&footer);
        out.push_str(&html[at..]);
        out
    }
}
