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
    #[serde(deserialize_with = "rassylka_model::deserialize_instant")]
    at: DateTime<FixedOffset>,
    amount: Money,
    #[serde(default, borrow)]
    promotion_id: Option<Cow<'a, str>>,
}

/// Bytes of input parsed at once: split in two at a line's end and parsed on two threads.
const CHUNK: usize = 4 << 20;

/// One purchase as parsed, its id borrowed from the chunk when it needs no unescaping, and
/// the id's fingerprint worked out on the parsing thread.
pub(crate) struct Parsed<'a> {
    pub(crate) recipient_id: Cow<'a, str>,
    pub(crate) key: u128,
    pub(crate) at: DateTime<Utc>,
    pub(crate) amount: Decimal,
    pub(crate) promotion_id: Option<Cow<'a, str>>,
}

/// The purchases of `text`, whose first line is number `first_line`; blank lines are passed
/// over.
fn parse(text: &[u8], first_line: u64) -> Result<Vec<Parsed<'_>>, Problem> {
    let mut parsed = Vec::with_capacity(text.len() / 64);
    for (offset, raw) in text.split(|b| *b == b'\n').enumerate() {
        let number = first_line + offset as u64;
        let line = std::str::from_utf8(raw)
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
        parsed.push(Parsed {
            key: super::audience::fingerprint(&purchase.recipient_id),
            recipient_id: purchase.recipient_id,
            at: purchase.at.to_utc(),
            amount: purchase.amount.0,
            promotion_id: purchase.promotion_id,
        });
    }
    Ok(parsed)
}

/// Reads every purchase of `reader`, handing each to `each` as (recipient, instant, amount,
/// promotion), in the file's order; blank lines are passed over. Lines are parsed a few
/// megabytes at a time on two threads. Returns how many were read.
///
/// # Errors
/// The first line that is not a purchase, as `line N` and what is wrong (its column too).
/// The purchases of the few megabytes around it are not handed on: a caller treats what it
/// folded so far as incomplete.
pub fn read_purchases(
    reader: impl BufRead,
    mut each: impl FnMut(&str, DateTime<Utc>, Decimal, Option<&str>),
) -> Result<u64, Problem> {
    for_each_parsed(reader, |p| {
        each(&p.recipient_id, p.at, p.amount, p.promotion_id.as_deref());
    })
}

/// [`read_purchases`] handing on the parsed purchases themselves.
pub(crate) fn for_each_parsed(
    mut reader: impl BufRead,
    mut each: impl FnMut(&Parsed<'_>),
) -> Result<u64, Problem> {
    let mut count = 0;
    let mut next_line = 1_u64;
    let mut chunk: Vec<u8> = Vec::with_capacity(CHUNK + 4096);
    loop {
        chunk.clear();
        while chunk.len() < CHUNK {
            let read = reader
                .read_until(b'\n', &mut chunk)
                .map_err(|e| Problem::new("purchases", e))?;
            if read == 0 {
                break;
            }
        }
        if chunk.is_empty() {
            return Ok(count);
        }
        let body = chunk.strip_suffix(b"\n").unwrap_or(&chunk);
        let middle = body.len() / 2;
        let split = body[middle..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(body.len(), |at| middle + at);
        let (first, second) = body.split_at(split);
        let second = second.strip_prefix(b"\n").unwrap_or(second);
        let first_lines = first.iter().filter(|b| **b == b'\n').count() as u64 + 1;
        let (head, tail) = std::thread::scope(|scope| {
            let tail = scope.spawn(|| parse(second, next_line + first_lines));
            let head = parse(first, next_line);
            (head, tail.join())
        });
        let tail = tail.map_err(|_| Problem::new("purchases", "a parsing thread failed"))?;
        for purchase in head?.iter().chain(tail?.iter()) {
            each(purchase);
            count += 1;
        }
        next_line += body.iter().filter(|b| **b == b'\n').count() as u64 + 1;
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
        // Chunks split in two and parsed apart keep the file's order and its line numbers.
        let many: String = (0..200_000)
            .map(|i| format!("{{\"recipient_id\": \"c-{i}\", \"at\": \"2026-12-02T10:00:00Z\", \"amount\": {i}}}\n"))
            .collect();
        let mut order = Vec::new();
        assert_eq!(
            read_purchases(many.as_bytes(), |id, _, _, _| order.push(id.to_owned())).unwrap(),
            200_000
        );
        assert!(
            order
                .iter()
                .enumerate()
                .all(|(i, id)| *id == format!("c-{i}"))
        );
        let broken = many.replace("\"c-150000\", \"at\"", "\"c-150000\", \"at\": 5, \"x\"");
        let problem = read_purchases(broken.as_bytes(), |_, _, _, _| {}).unwrap_err();
        assert_eq!(problem.path, "line 150001");
        let unknown = "{\"recipient_id\": \"c-1\", \"at\": \"2026-12-02T10:00:00Z\", \"amount\": 1, \"sum\": 2}\n";
        let problem = read_purchases(unknown.as_bytes(), |_, _, _, _| {}).unwrap_err();
        assert!(
            problem.message.contains("unknown field `sum`"),
            "{}",
            problem.message
        );
    }
}
