//! Property tests of phone, e-mail and money parsing.

use proptest::prelude::*;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, NaiveDate};
use rassylka_model::{EmailAddress, Money, PhoneNumber, parse_date, parse_instant};

fn separators() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["", " ", "-", "\u{a0}", "."]).prop_map(str::to_owned)
}

proptest! {
    #[test]
    fn any_written_form_of_a_russian_number_normalises_to_the_same(
        // Mobile numbers: any 9xx code (landlines, whose valid ranges libphonenumber's
        // metadata knows, have examples of their own).
        code in prop::collection::vec(0u8..=9, 2).prop_map(|d| [9, d[0], d[1]]),
        rest in prop::collection::vec(0u8..=9, 7),
        prefix in prop::sample::select(vec!["8", "7", "+7", "+7 ", ""]),
        seps in prop::collection::vec(separators(), 10),
        parens in any::<bool>(),
    ) {
        let digits: Vec<u8> = code.into_iter().chain(rest).collect();
        let canonical = format!("+7{}", digits.iter().map(|d| char::from(b'0' + d)).collect::<String>());
        let mut written = String::from(prefix);
        for (i, d) in digits.iter().enumerate() {
            if parens && i == 0 { written.push('('); }
            written.push(char::from(b'0' + d));
            if parens && i == 2 { written.push(')'); }
            written.push_str(&seps[i]);
        }
        let phone = PhoneNumber::parse(&written).unwrap();
        prop_assert_eq!(phone.as_str(), canonical.as_str());
        // Normalising is idempotent.
        prop_assert_eq!(PhoneNumber::parse(phone.as_str()).unwrap(), phone);
    }

    #[test]
    fn phone_parsing_never_panics_and_yields_e164(input in "\\PC{0,24}") {
        if let Ok(phone) = PhoneNumber::parse(&input) {
            let s = phone.as_str();
            prop_assert!(s.starts_with('+'));
            prop_assert!(s[1..].bytes().all(|b| b.is_ascii_digit()));
            prop_assert!((9..=16).contains(&s.len()));
        }
    }

    #[test]
    fn valid_addresses_are_accepted_and_round_trip(
        local in "[a-z0-9]{1,10}([._+-][a-z0-9]{1,8}){0,2}",
        domain in "[a-z0-9]{1,12}(-[a-z0-9]{1,5})?\\.[a-z]{2,6}",
    ) {
        let text = format!("{local}@{domain}");
        let email = EmailAddress::parse(&text).unwrap();
        prop_assert_eq!(email.as_str(), text.as_str());
        prop_assert_eq!(EmailAddress::parse(email.as_str()).unwrap(), email);
    }

    #[test]
    fn email_parsing_never_panics_and_accepted_ones_have_no_spaces(input in "\\PC{0,40}") {
        if let Ok(email) = EmailAddress::parse(&input) {
            prop_assert!(!email.as_str().contains(char::is_whitespace));
            prop_assert_eq!(email.as_str().matches('@').count(), 1);
        }
    }

    #[test]
    fn money_from_json_number_equals_money_from_its_text(units in -10_000_000i64..10_000_000, cents in 0u32..100) {
        let text = format!("{units}.{cents:02}");
        let from_number: Money = serde_json::from_str(&text).unwrap();
        let from_string: Money = serde_json::from_str(&format!("\"{text}\"")).unwrap();
        prop_assert_eq!(from_number, from_string);
    }

    #[test]
    fn money_from_any_json_number_is_the_value_of_its_shortest_text(value in any::<f64>().prop_filter("finite", |v| v.is_finite())) {
        // Rust's own shortest text, without an exponent, is the reference reading.
        let reference = Money::from_str(&value.to_string()).ok();
        // Through a JSON value, so the reader sees exactly this f64 (serde_json's own text
        // reading rounds some long exponents differently).
        let read: Option<Money> = serde_json::from_value(serde_json::Value::from(value)).ok();
        prop_assert_eq!(read, reference);
    }

    #[test]
    fn money_shaped_json_numbers_read_as_their_text(whole in -10_i64.pow(16)..10_i64.pow(16), scale in 0u32..10) {
        let text = rassylka_model::Decimal::new(whole, scale).to_string();
        let value: f64 = text.parse().unwrap();
        let reference = Money::from_str(&value.to_string()).ok();
        let read: Option<Money> = serde_json::from_value(serde_json::Value::from(value)).ok();
        prop_assert_eq!(read, reference, "{}", text);
    }

    #[test]
    fn dates_and_instants_read_as_chrono_reads_them(
        year in 0u32..10_000, month in 0u32..14, day in 0u32..33,
        hour in 0u32..26, minute in 0u32..61, second in 0u32..62,
        sign in prop::sample::select(vec!["+", "-"]), offset_hours in 0u32..26, offset_minutes in 0u32..61,
        separator in prop::sample::select(vec!["T", " ", "t"]),
        zone in prop::sample::select(vec!["offset", "Z", "z", "compact", "none"]),
    ) {
        let date = format!("{year:04}-{month:02}-{day:02}");
        prop_assert_eq!(parse_date(&date).ok(), NaiveDate::from_str(&date).ok());
        let zone = match zone {
            "offset" => format!("{sign}{offset_hours:02}:{offset_minutes:02}"),
            "compact" => format!("{sign}{offset_hours:02}{offset_minutes:02}"),
            "none" => String::new(),
            other => other.to_owned(),
        };
        let instant = format!("{date}{separator}{hour:02}:{minute:02}:{second:02}{zone}");
        prop_assert_eq!(parse_instant(&instant).ok(), DateTime::<FixedOffset>::from_str(&instant).ok(), "{}", instant);
    }
}
