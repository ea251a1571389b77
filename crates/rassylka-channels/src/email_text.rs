//! What an e-mail says in words (SPEC §7d), shared by the SMTP adapter and the outbox's
//! `.eml`: header values that can never start a new header, and a text part that is never
//! empty — the message's text, or the words of its HTML with links kept as `text (URL)`.

/// A header value with CR, LF and NUL turned into spaces: a value never makes a new header.
pub(crate) fn header_value(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if matches!(c, '\r' | '\n' | '\0') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// The text/plain part: the message's text, or text derived from its HTML.
pub(crate) fn plain_part(text: &str, html: Option<&str>) -> String {
    match html {
        Some(html) if text.trim().is_empty() => html_to_text(html),
        _ => text.to_owned(),
    }
}

/// Paragraphs stay one line each: wrapping would break long links (an unsubscribe link is
/// longer than a line), and mail readers wrap text themselves.
const UNWRAPPED: usize = 10_000;

/// What a reader of `html` sees, as text: no markup, no CSS or script, links as `text (URL)`.
pub(crate) fn html_to_text(html: &str) -> String {
    let marked = with_link_targets(html);
    html2text::config::with_decorator(html2text::render::TrivialDecorator::new())
        .link_footnotes(false)
        .string_from_read(marked.as_bytes(), UNWRAPPED)
        .map(|t| t.trim_end().to_owned())
        .unwrap_or_default()
}

/// `html` with ` (URL)` written after each link's text, so the derived text keeps where it
/// leads.
fn with_link_targets(html: &str) -> String {
    // ASCII lower-casing keeps every byte where it was.
    let lower = html.to_ascii_lowercase();
    let mut out = String::with_capacity(html.len() + 64);
    let mut at = 0;
    while let Some(found) = lower[at..].find("<a") {
        let start = at + found;
        let opens_a_link = matches!(
            lower.as_bytes().get(start + 2),
            Some(b' ' | b'\t' | b'\n' | b'\r' | b'>')
        );
        let (Some(tag_len), Some(close)) = (lower[start..].find('>'), lower[start..].find("</a>"))
        else {
            break;
        };
        if !opens_a_link {
            out.push_str(&html[at..start + 2]);
            at = start + 2;
            continue;
        }
        let end = start + close + "</a>".len();
        out.push_str(&html[at..end]);
        if let Some(href) = attribute(&html[start..=start + tag_len], "href")
            .filter(|h| !h.is_empty() && !h.starts_with('#'))
        {
            out.push_str(" (");
            out.push_str(&href.replace('&', "&amp;").replace('<', "&lt;"));
            out.push(')');
        }
        at = end;
    }
    out.push_str(&html[at..]);
    out
}

/// The value of attribute `name` in one start tag, quoted or not.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find(name) {
        let at = from + found;
        from = at + name.len();
        let before = lower.as_bytes().get(at.wrapping_sub(1)).copied();
        if !matches!(before, Some(b' ' | b'\t' | b'\n' | b'\r')) {
            continue;
        }
        let rest = tag[at + name.len()..].trim_start();
        let Some(value) = rest.strip_prefix('=') else {
            continue;
        };
        let value = value.trim_start();
        let text = match value.chars().next() {
            Some(quote @ ('"' | '\'')) => value[1..].split(quote).next().unwrap_or_default(),
            _ => value
                .split(|c: char| c.is_whitespace() || c == '>')
                .next()
                .unwrap_or_default(),
        };
        return Some(text.replace("&amp;", "&"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_never_break_a_line() {
        assert_eq!(
            header_value("Anna\r\nBcc: x@evil.example\0"),
            "Anna  Bcc: x@evil.example "
        );
    }

    #[test]
    fn html_becomes_what_a_reader_sees_with_links() {
        let html = r#"<html><head><style>p {color: red}</style><script>alert(1)</script></head>
            <body><p>Здравствуйте, Анна!</p><p>Скидка <b>20%</b> в <a class="x" href="https://shop.example/sale?a=1&amp;b=2">нашем магазине</a>.</p></body></html>"#;
        let text = html_to_text(html);
        assert!(text.contains("Здравствуйте, Анна!"), "{text}");
        assert!(
            text.contains("нашем магазине (https://shop.example/sale?a=1&b=2)"),
            "{text}"
        );
        assert!(!text.contains("color") && !text.contains("alert"), "{text}");
        assert_eq!(plain_part("", Some("<p>hi</p>")), "hi");
        assert_eq!(plain_part("own text", Some("<p>hi</p>")), "own text");
    }
}
