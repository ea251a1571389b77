//! A direct reader for the recipient lines exports usually hold.
//!
//! serde's generic machinery took most of the time of reading an export: every key and value
//! goes through a visitor, every number through `f64`. This reader walks the bytes of one
//! line itself, for the common shape only: strings without escapes, the keys of SPEC §2 each
//! once in nested objects, numbers without exponents, no bookings, `timezone` or custom
//! fields. On anything else it declines (`None`) and the line goes to serde, which also
//! words every error; so what a line means, and which lines are refused, never depends on
//! which reader took it.

use chrono::{DateTime, FixedOffset, NaiveDate};
use rust_decimal::Decimal;

use crate::civil::{parse_date, parse_instant};
use crate::{Consent, Contacts, Gender, Money, Purchase, Recipient};

/// The recipient of `line`, or `None` when the line is not of the common shape.
pub(super) fn quick_recipient(line: &str) -> Option<Recipient> {
    let mut cursor = Cursor { text: line, at: 0 };
    let mut r = Recipient::default();
    let mut id = None;
    cursor.object(|cursor, key| {
        match key {
            // An empty id is refused at once, whatever follows.
            "id" => id = Some(cursor.string().filter(|id| !id.is_empty())?.to_owned()),
            "first_name" => r.first_name = cursor.text_or_null()?,
            "last_name" => r.last_name = cursor.text_or_null()?,
            "middle_name" => r.middle_name = cursor.text_or_null()?,
            "loyalty_group" => r.loyalty_group = cursor.text_or_null()?,
            "gender" => {
                r.gender = match cursor.string_or_null()? {
                    None => None,
                    Some("male") => Some(Gender::Male),
                    Some("female") => Some(Gender::Female),
                    Some(_) => return None,
                };
            }
            "birth_date" => r.birth_date = cursor.date_or_null()?,
            "registered_at" => r.registered_at = cursor.instant_or_null()?,
            "country" => {
                r.country = cursor
                    .string_or_null()?
                    .map(|c| c.trim().to_ascii_uppercase())
                    .filter(|c| !c.is_empty());
            }
            "vip" => r.vip = cursor.bool_or_null()?.unwrap_or(false),
            "no_mailings" => r.no_mailings = cursor.bool_or_null()?.unwrap_or(false),
            "balance" => r.balance = cursor.money_or_null()?,
            "segments" => {
                let mut segments = Vec::new();
                if !cursor.null() {
                    cursor.array(|cursor| {
                        segments.push(cursor.string()?.to_owned());
                        Some(())
                    })?;
                }
                r.segments = segments;
            }
            "contacts" => r.contacts = cursor.contacts()?,
            "consent" => r.consent = cursor.consent()?,
            "purchases" => {
                let mut purchases = Vec::new();
                if !cursor.null() {
                    cursor.array(|cursor| {
                        purchases.push(cursor.purchase()?);
                        Some(())
                    })?;
                }
                r.purchases = purchases;
            }
            "bookings" => {
                // Bookings are rare in exports: only an empty or absent list is read here.
                if !cursor.null() {
                    cursor.array(|_| None)?;
                }
                r.bookings = Vec::new();
            }
            _ => return None,
        }
        Some(())
    })?;
    cursor.space();
    if cursor.at != cursor.text.len() {
        return None;
    }
    r.id = id?;
    Some(r)
}

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    /// The byte under the cursor.
    fn byte(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.byte() {
            self.at += 1;
        }
    }

    /// Takes `byte` after any space.
    fn take(&mut self, byte: u8) -> Option<()> {
        self.space();
        (self.byte() == Some(byte)).then(|| self.at += 1)
    }

    fn peek(&mut self) -> Option<u8> {
        self.space();
        self.byte()
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        self.space();
        let found = self.text.as_bytes()[self.at..].starts_with(word);
        if found {
            self.at += word.len();
        }
        found
    }

    fn null(&mut self) -> bool {
        self.literal(b"null")
    }

    /// A string without escapes or control characters.
    fn string(&mut self) -> Option<&'a str> {
        self.take(b'"')?;
        let start = self.at;
        // Values are short: a plain loop beats a vectorised search and checks control
        // characters (which JSON refuses inside strings) on the way.
        loop {
            match self.byte()? {
                b'"' => break,
                b'\\' | 0..0x20 => return None,
                _ => self.at += 1,
            }
        }
        let end = self.at;
        self.at += 1;
        // Cut at ASCII quotes: always on a character boundary.
        self.text.get(start..end)
    }

    fn string_or_null(&mut self) -> Option<Option<&'a str>> {
        if self.null() {
            return Some(None);
        }
        self.string().map(Some)
    }

    fn text_or_null(&mut self) -> Option<Option<String>> {
        Some(self.string_or_null()?.map(str::to_owned))
    }

    fn bool_or_null(&mut self) -> Option<Option<bool>> {
        if self.null() {
            Some(None)
        } else if self.literal(b"true") {
            Some(Some(true))
        } else if self.literal(b"false") {
            Some(Some(false))
        } else {
            None
        }
    }

    fn date_or_null(&mut self) -> Option<Option<NaiveDate>> {
        match self.string_or_null()? {
            None => Some(None),
            Some(text) => parse_date(text).ok().map(Some),
        }
    }

    fn instant_or_null(&mut self) -> Option<Option<DateTime<FixedOffset>>> {
        match self.string_or_null()? {
            None => Some(None),
            Some(text) => parse_instant(text).ok().map(Some),
        }
    }

    /// The text of a JSON number: an optional minus, digits without a leading zero, an
    /// optional fraction; no exponent.
    fn number(&mut self) -> Option<&'a str> {
        self.space();
        let start = self.at;
        if self.byte() == Some(b'-') {
            self.at += 1;
        }
        let digits = self.digits();
        if digits == 0 || (digits > 1 && self.text.as_bytes()[self.at - digits] == b'0') {
            return None;
        }
        if self.byte() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.byte() {
            return None;
        }
        self.text.get(start..self.at)
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while self.byte().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        self.at - start
    }

    fn integer_or_null(&mut self) -> Option<Option<i64>> {
        if self.null() {
            return Some(None);
        }
        let text = self.number()?;
        // serde_json reads `-0` as the float -0.0, which an integer field refuses.
        if text.contains('.') || text.len() > 18 || text == "-0" {
            return None;
        }
        text.parse().ok().map(Some)
    }

    /// An amount as serde reads it: a number through its shortest text, a string as written.
    fn money_or_null(&mut self) -> Option<Option<Money>> {
        if self.null() {
            return Some(None);
        }
        if self.peek()? == b'"' {
            return self.string()?.parse().ok().map(Some);
        }
        let text = self.number()?;
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let negative = whole.starts_with('-');
        let whole = whole.trim_start_matches('-');
        // Up to 15 digits and 6 decimals the number's shortest text is its own text without
        // trailing zeros (what a JSON number through `f64` gives back); beyond, serde decides.
        if whole.len() + fraction.len() > 15 || fraction.len() > 6 {
            return None;
        }
        let fraction = fraction.trim_end_matches('0');
        let mut units: i64 = 0;
        for digit in whole.bytes().chain(fraction.bytes()) {
            units = units * 10 + i64::from(digit - b'0');
        }
        // `-0` is zero, as the number read through f64 is.
        let units = if negative { -units } else { units };
        let scale = if units == 0 { 0 } else { fraction.len() as u32 };
        Some(Some(Money(Decimal::new(units, scale))))
    }

    /// An object's members: `member` reads the value of each key and declines what it does
    /// not know.
    fn object(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.take(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.take(b':')?;
            member(self, key)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn array(&mut self, mut element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.take(b'[')?;
        if self.peek()? == b']' {
            self.at += 1;
            return Some(());
        }
        loop {
            element(self)?;
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A derived struct refuses a repeated key; the reader declines it and lets serde say so.
    fn once(seen: &mut u8, bit: u8) -> Option<()> {
        (*seen & bit == 0).then(|| *seen |= bit)
    }

    fn contacts(&mut self) -> Option<Contacts> {
        let mut contacts = Contacts::default();
        if self.null() {
            return Some(contacts);
        }
        let mut seen = 0;
        self.object(|cursor, key| {
            match key {
                "email" => {
                    Self::once(&mut seen, 1)?;
                    contacts.email = cursor.text_or_null()?;
                }
                "phone" => {
                    Self::once(&mut seen, 2)?;
                    contacts.phone = cursor.text_or_null()?;
                }
                "telegram_chat_id" => {
                    Self::once(&mut seen, 4)?;
                    contacts.telegram_chat_id = cursor.integer_or_null()?;
                }
                "vk_user_id" => {
                    Self::once(&mut seen, 8)?;
                    contacts.vk_user_id = cursor.integer_or_null()?;
                }
                "wallet_push" => {
                    Self::once(&mut seen, 16)?;
                    contacts.wallet_push = cursor.text_or_null()?;
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(contacts)
    }

    fn consent(&mut self) -> Option<Consent> {
        let mut consent = Consent::default();
        if self.null() {
            return Some(consent);
        }
        let mut seen = 0;
        self.object(|cursor, key| {
            if key != "advertising" {
                return None;
            }
            Self::once(&mut seen, 1)?;
            consent.advertising = cursor.bool_or_null()?.unwrap_or(false);
            Some(())
        })?;
        Some(consent)
    }

    fn purchase(&mut self) -> Option<Purchase> {
        let mut purchase = Purchase::default();
        let mut seen = 0;
        self.object(|cursor, key| {
            match key {
                "at" => {
                    Self::once(&mut seen, 1)?;
                    purchase.at = cursor.instant_or_null()?;
                }
                "amount" => {
                    Self::once(&mut seen, 2)?;
                    purchase.amount = cursor.money_or_null()?;
                }
                "promotion_id" => {
                    Self::once(&mut seen, 4)?;
                    purchase.promotion_id = cursor.text_or_null()?;
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(purchase)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const KEYS: &[&str] = &[
        "id",
        "first_name",
        "gender",
        "birth_date",
        "registered_at",
        "country",
        "vip",
        "no_mailings",
        "balance",
        "segments",
        "contacts",
        "consent",
        "purchases",
        "bookings",
        "loyalty_group",
        "timezone",
        "note",
        "fields",
    ];

    const VALUES: &[&str] = &[
        "\"c-1\"",
        "\"\"",
        "17",
        "null",
        "true",
        "false",
        "\"male\"",
        "\"Female\"",
        "\"female\"",
        "\"2008-08-29\"",
        "\"2023-02-29\"",
        "\" 2008-08-29\"",
        "\"2026-07-05T12:00:00+03:00\"",
        "\"2026-07-05 12:00:00Z\"",
        "\"ru \"",
        "\"  \"",
        "\"\\u0410нна\"",
        "\"tab\there\"",
        "1701.25",
        "1701.50",
        "-0",
        "-0.0",
        "0.000001",
        "0.0000001",
        "1e3",
        "01",
        "1.",
        "123456789012345",
        "1234567890123456",
        "\"1250,50\"",
        "\"abc\"",
        "[]",
        "[\"Командировочные\"]",
        "[null]",
        "{}",
        "{\"phone\": \"+79160000000\"}",
        "{\"email\": null, \"telegram_chat_id\": -42}",
        "{\"telegram_chat_id\": 4.0}",
        "{\"vk_user_id\": -0}",
        "{\"phone\": \"1\", \"phone\": \"2\"}",
        "{\"fax\": \"1\"}",
        "{\"advertising\": true}",
        "{\"advertising\": null}",
        "[{\"at\": \"2026-07-05T12:00:00+03:00\", \"amount\": 2279.54}]",
        "[{\"at\": null, \"amount\": \"99,90\", \"promotion_id\": \"p-5\"}, {}]",
        "[{\"at\": \"2026-07-05T12:00:00+03:00\", \"at\": null}]",
        "[{\"sum\": 1}]",
        "[1]",
        "[{\"id\": \"b-1\"}]",
        "\"Europe/Moscow\"",
        "{\"a\": 1}",
    ];

    /// Values of the right type for each of [`KEYS`], so that most lines are taken.
    fn fitting(key: &str) -> &'static [&'static str] {
        match key {
            "first_name" | "loyalty_group" => &["\"Анна\"", "null", "\"\""],
            "gender" => &["\"male\"", "\"female\"", "null"],
            "birth_date" => &["\"2008-08-29\"", "null", "\"2024-02-29\""],
            "registered_at" => &["\"2026-07-05T12:00:00+03:00\"", "\"2026-07-05T09:00:00Z\""],
            "country" => &["\"ru \"", "\"RU\"", "\"  \"", "null"],
            "vip" | "no_mailings" => &["true", "false", "null"],
            "balance" => &[
                "1701.25",
                "1701.50",
                "-0",
                "-3",
                "0.000001",
                "100",
                "\"99,90\"",
                "0.1",
            ],
            "segments" => &["[]", "[\"Командировочные\", \"VIP\"]", "null"],
            "contacts" => &[
                "{\"phone\": \"+79160000000\", \"email\": \"a@b.ru\"}",
                "{\"telegram_chat_id\": -42, \"vk_user_id\": 7, \"wallet_push\": null}",
                "null",
                "{}",
            ],
            "consent" => &["{\"advertising\": true}", "{\"advertising\": null}", "null"],
            "purchases" => &[
                "[{\"at\": \"2026-07-05T12:00:00+03:00\", \"amount\": 2279.5}]",
                "[{\"amount\": 12, \"promotion_id\": \"p-5\"}, {}]",
                "null",
            ],
            "bookings" => &["[]", "null"],
            _ => &["\"c-2\""],
        }
    }

    fn line() -> impl Strategy<Value = String> {
        let value = prop_oneof![
            3 => (0..8_usize).prop_map(|i| (i, true)),
            1 => (0..VALUES.len()).prop_map(|i| (i, false)),
        ];
        let member = (
            0..KEYS.len(),
            value,
            prop::sample::select(vec!["", " ", "\t"]),
        );
        (
            prop::collection::vec(member, 0..9),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(members, with_id, trailing)| {
                let mut text = String::from("{");
                if with_id {
                    text.push_str("\"id\": \"c-1\"");
                }
                for (i, (key, (value, fits), space)) in members.into_iter().enumerate() {
                    if with_id || i > 0 {
                        text.push(',');
                    }
                    let choices = fitting(KEYS[key]);
                    let value = if fits {
                        choices[value % choices.len()]
                    } else {
                        VALUES[value]
                    };
                    text.push_str(&format!("{space}\"{}\":{space}{value}", KEYS[key]));
                }
                text.push('}');
                if trailing {
                    text.push_str(" x");
                }
                text
            })
    }

    /// Amounts must agree in scale too, not only in value.
    fn scales(r: &Recipient) -> Vec<u32> {
        let amounts = r.purchases.iter().filter_map(|p| p.amount);
        r.balance
            .into_iter()
            .chain(amounts)
            .map(|m| m.0.scale())
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn what_the_quick_reader_takes_serde_reads_alike(text in line()) {
            if let Some(quick) = quick_recipient(&text) {
                let full: Recipient = serde_json::from_str(&text)
                    .map_err(|e| TestCaseError::fail(format!("{text}: serde refused: {e}")))?;
                prop_assert_eq!(scales(&quick), scales(&full), "{}", text);
                prop_assert_eq!(quick, full, "{}", text);
            }
        }
    }

    #[test]
    fn the_common_export_line_is_taken() {
        let line = r#"{"id": "c-0000000", "first_name": "Анна", "gender": "male", "birth_date": "2008-08-29", "country": null, "vip": false, "loyalty_group": "Blocked", "balance": 1701.25, "contacts": {"phone": "+79160000000"}, "consent": {"advertising": false}, "purchases": [{"at": "2026-07-05T12:00:00+03:00", "amount": 2279.54}, {"at": "2026-09-12T12:00:00+03:00", "amount": 6654.5}]}"#;
        let quick = quick_recipient(line).expect("taken");
        assert_eq!(quick, serde_json::from_str::<Recipient>(line).unwrap());
        assert_eq!(quick.purchases[1].amount.unwrap().0.scale(), 1);
        for declined in [
            r#"{"id": 7}"#,
            r#"{"id": "c-1", "note": "x"}"#,
            r#"{"id": "c-\"1"}"#,
        ] {
            assert!(quick_recipient(declined).is_none(), "{declined}");
        }
    }
}
