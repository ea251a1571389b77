//! Purchases as JSON Lines (SPEC §7f): `{"recipient_id": "c-1", "at": RFC3339, "amount":
//! 1500.0, "promotion_id": "p-5"}`, read one line at a time.

use std::borrow::Cow;
use std::io::BufRead;

use chrono::{DateTime, FixedOffset, Utc};
use rassylka_model::Money;
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::Problem;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    #[serde(borrow)]
    recipient_id: Cow<'a, str>,
    at: DateTime<FixedOffset>,
    amount: Money,
    #[serde(default, borrow)]
    promotion_id: Option<Cow<'a, str>>,
}

/// Reads every purchase of `reader`, handing each to `each` as (recipient, instant, amount,
/// promotion); blank lines are passed over. Returns how many were read.
///
/// # Errors
/// The first line that is not a purchase, as `line N` and what is wrong (its column too).
pub fn read_purchases(
    reader: impl BufRead,
    mut each: impl FnMut(&str, DateTime<Utc>, Decimal, Option<&str>),
) -> Result<u64, Problem> {
    let mut count = 0;
    let mut reader = reader;
    let mut buffer = Vec::with_capacity(256);
    let mut number = 0_u64;
    loop {
        buffer.clear();
        let read = reader
            .read_until(b'\n', &mut buffer)
            .map_err(|e| Problem::new("purchases", e))?;
        if read == 0 {
            return Ok(count);
        }
        number += 1;
        let line = std::str::from_utf8(&buffer)
            .map_err(|e| Problem::new(format!("line {number}"), format!("not UTF-8: {e}")))?
            .trim();
        if line.is_empty() {
            continue;
        }
        let purchase: Line<'_> = serde_json::from_str(line).map_err(|e| {
            let text = e.to_string();
            let what = text
                .rfind(" at line ")
                .map_or(text.as_str(), |at| &text[..at]);
            Problem::new(
                format!("line {number}"),
                format!("column {}: {what}", e.column()),
            )
        })?;
        each(
            &purchase.recipient_id,
            purchase.at.to_utc(),
            purchase.amount.0,
            purchase.promotion_id.as_deref(),
        );
        count += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purchases_read_numbers_and_decimal_strings_and_name_the_bad_line() {
        let text = "{\"recipient_id\": \"c-1\", \"at\": \"2026-12-02T10:00:00+03:00\", \"amount\": 1500.5}\n\n\
                    {\"recipient_id\": \"c-2\", \"at\": \"2026-12-02T11:00:00Z\", \"amount\": \"99,90\", \"promotion_id\": \"p-5\"}\n";
        let mut seen = Vec::new();
        let count = read_purchases(text.as_bytes(), |id, at, amount, promo| {
            seen.push((
                id.to_owned(),
                at.to_rfc3339(),
                amount.to_string(),
                promo.map(str::to_owned),
            ));
        })
        .unwrap();
        assert_eq!(count, 2);
        assert_eq!(
            seen[0],
            (
                "c-1".into(),
                "2026-12-02T07:00:00+00:00".into(),
                "1500.5".into(),
                None
            )
        );
        assert_eq!(seen[1].2, "99.90");
        assert_eq!(seen[1].3.as_deref(), Some("p-5"));
        let bad = "{\"recipient_id\": \"c-1\", \"at\": \"2026-12-02T10:00:00Z\", \"amount\": 1}\n{\"recipient_id\": \"c-2\", \"at\": \"yesterday\", \"amount\": 1}\n";
        let problem = read_purchases(bad.as_bytes(), |_, _, _, _| {}).unwrap_err();
        assert_eq!(problem.path, "line 2");
        assert!(
            problem.message.starts_with("column "),
            "{}",
            problem.message
        );
        let unknown = "{\"recipient_id\": \"c-1\", \"at\": \"2026-12-02T10:00:00Z\", \"amount\": 1, \"sum\": 2}\n";
        let problem = read_purchases(unknown.as_bytes(), |_, _, _, _| {}).unwrap_err();
        assert!(
            problem.message.contains("unknown field `sum`"),
            "{}",
            problem.message
        );
    }
}
