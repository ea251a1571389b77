//! Extra e-mail headers completed with what only the adapter knows: the sender's domain.

/// A header value as it goes out: a `List-Id` given as a bare label (a mailing id) becomes
/// `<label.sender-domain>` (RFC 2919), its characters outside letters, digits, `-` and `.`
/// made `-`; any other value unchanged.
pub(crate) fn complete_header(name: &str, value: &str, domain: &str) -> String {
    if !name.eq_ignore_ascii_case("List-Id") || value.contains('<') {
        return value.to_owned();
    }
    let label: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("<{}.{domain}>", label.trim_matches('.'))
}

/// The domain of a from address (`Shop <news@shop.example>` → `shop.example`).
pub(crate) fn sender_domain(from: &str) -> &str {
    from.rsplit('@')
        .next()
        .map_or("", |d| d.trim_end_matches(['>', ' ', '"']))
}
