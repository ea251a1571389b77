//! The recipient JSON contract, contacts and money through the public API.

use rassylka_model::{
    Address, ChannelKind, EmailAddress, Gender, MessageClass, Money, OptOut, PhoneNumber,
    Recipient, Unreachable, read_jsonl,
};

const ANNA: &str = r#"{"id": "c-1001",
 "first_name": "Анна", "last_name": "Иванова", "middle_name": "Сергеевна",
 "gender": "female", "birth_date": "1990-02-28", "timezone": "Asia/Yekaterinburg",
 "registered_at": "2024-05-01T10:00:00+03:00", "country": "ru", "vip": false,
 "segments": ["Командировочные"], "loyalty_group": "Gold", "balance": 1250.5,
 "contacts": {"email": "anna@Example.COM", "phone": "+79161234567",
              "telegram_chat_id": 123456789, "vk_user_id": 4321, "wallet_push": "pass-serial-1"},
 "consent": {"advertising": true},
 "no_mailings": false,
 "bookings": [{"id": "b-77", "check_in": "2026-12-01", "check_out": "2026-12-05",
               "booked_at": "2026-10-01T12:00:00+03:00", "paid_at": "2026-10-02T09:00:00+03:00",
               "room": "101"}],
 "purchases": [{"at": "2026-11-01T15:00:00+03:00", "amount": 1500.0, "promotion_id": "p-5"}],
 "fields": {"order_id": "A-553", "salon_phone": "+7 343 000-00-00"},
 "loyalty_card": "0042", "order_id": "ignored: explicit fields win"}"#;

#[test]
fn the_contract_example_reads_completely() {
    let r: Recipient = serde_json::from_str(ANNA).unwrap();
    assert_eq!(r.id, "c-1001");
    assert_eq!(r.gender, Some(Gender::Female));
    assert_eq!(r.timezone, Some(chrono_tz::Asia::Yekaterinburg));
    assert_eq!(r.country.as_deref(), Some("RU"));
    assert_eq!(r.balance, Some("1250.50".parse::<Money>().unwrap()));
    assert_eq!(r.bookings[0].room.as_deref(), Some("101"));
    assert_eq!(r.purchases[0].amount.unwrap().to_string(), "1500");
    assert_eq!(r.fields["order_id"], "A-553");
    assert_eq!(r.fields["loyalty_card"], "0042");
    assert_eq!(r.full_name().as_deref(), Some("Иванова Анна Сергеевна"));
    assert_eq!(
        r.address(ChannelKind::Email).unwrap(),
        Address::Email(EmailAddress::parse("anna@example.com").unwrap())
    );
    assert_eq!(
        r.address(ChannelKind::Telegram).unwrap(),
        Address::TelegramChat(123456789)
    );
    assert_eq!(
        r.address(ChannelKind::Push).unwrap().to_string(),
        "pass-serial-1"
    );
    assert_eq!(r.opt_out(MessageClass::Advertising), None);
}

#[test]
fn every_field_but_id_may_be_null_or_missing() {
    let r: Recipient = serde_json::from_str(
        r#"{"id": 42, "first_name": null, "gender": null, "vip": null, "segments": null,
            "contacts": null, "consent": {"advertising": null}, "no_mailings": null,
            "bookings": null, "purchases": null, "fields": null, "balance": null}"#,
    )
    .unwrap();
    assert_eq!(r.id, "42");
    assert!(!r.vip && !r.no_mailings && !r.consent.advertising);
    assert_eq!(r.address(ChannelKind::Sms), Err(Unreachable::NoContact));
    assert_eq!(
        r.opt_out(MessageClass::Advertising),
        Some(OptOut::NoConsent)
    );
    assert_eq!(r.opt_out(MessageClass::Service), None);
    assert_eq!(r.full_name(), None);

    let missing_id = serde_json::from_str::<Recipient>(r#"{"first_name": "Анна"}"#).unwrap_err();
    assert!(
        missing_id.to_string().contains("missing field `id`"),
        "{missing_id}"
    );
}

#[test]
fn bad_values_are_errors_with_position() {
    let err = serde_json::from_str::<Recipient>(r#"{"id": "x", "timezone": "Mars/Olympus"}"#)
        .unwrap_err();
    assert!(
        err.to_string().contains("Mars/Olympus") || err.line() == 1,
        "{err}"
    );
    let err = serde_json::from_str::<Recipient>(r#"{"id": "x", "balance": "много"}"#).unwrap_err();
    assert!(err.to_string().contains("invalid amount `много`"), "{err}");
    let err = serde_json::from_str::<Recipient>(r#"{"id": "x", "gender": "other"}"#).unwrap_err();
    assert!(err.to_string().contains("unknown variant"), "{err}");
}

#[test]
fn an_invalid_contact_makes_only_that_channel_unreachable() {
    let r: Recipient = serde_json::from_str(
        r#"{"id": "c", "contacts": {"email": "oleg@", "phone": "8 916 123-45-67"}, "no_mailings": true}"#,
    )
    .unwrap();
    assert_eq!(
        r.address(ChannelKind::Email),
        Err(Unreachable::InvalidContact)
    );
    assert_eq!(
        r.address(ChannelKind::Sms).unwrap().to_string(),
        "+79161234567"
    );
    assert_eq!(
        r.opt_out(MessageClass::Advertising),
        Some(OptOut::NoMailings)
    );
}

#[test]
fn jsonl_reports_bad_lines_by_number_and_keeps_the_rest() {
    let input = "{\"id\": \"a\"}\n\n{\"id\": \"b\", \"balance\": }\n{\"id\": \"c\"}\n";
    let results: Vec<_> = read_jsonl(input.as_bytes()).collect();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].as_ref().unwrap().id, "a");
    let err = results[1].as_ref().unwrap_err();
    assert!(err.to_string().starts_with("line 3: "), "{err}");
    assert!(err.is_bad_input());
    assert_eq!(results[2].as_ref().unwrap().id, "c");
}

#[test]
fn phone_forms_people_type() {
    for input in [
        "8 (916) 765-43-21",
        "+7 916 765 43 21",
        "79167654321",
        "9167654321",
        "+7(916)765-43-21",
        " 8-916-765-43-21 ",
    ] {
        assert_eq!(
            PhoneNumber::parse(input).unwrap().as_str(),
            "+79167654321",
            "{input}"
        );
    }
    assert_eq!(
        PhoneNumber::parse("+44 20 7946 0958").unwrap().as_str(),
        "+442079460958"
    );
    assert_eq!(
        PhoneNumber::parse("+79167654321").unwrap().digits(),
        "79167654321"
    );
    // Numbers libphonenumber's metadata knows; «(0)» is the UK's trunk prefix.
    for (input, e164) in [
        ("+44 (0)20 7946 0958", "+442079460958"),
        ("8 (495) 123-45-67", "+74951234567"),
        ("+7 (495) 987-65-43", "+74959876543"),
        ("+1 650 253 0000", "+16502530000"),
    ] {
        assert_eq!(PhoneNumber::parse(input).unwrap().as_str(), e164, "{input}");
    }
    for (input, reason) in [
        ("12345", "libphonenumber"),
        ("8 916 765 43", "libphonenumber"),
        ("8 916 765-43-2", "not a valid Russian number"),
        ("+7 916 765 43 210", "not a valid number"),
        ("+8 916 765-43-21", "libphonenumber"),
        ("+999 123 4567", "libphonenumber"),
        ("8 (916 765-43-21", "unbalanced"),
        ("tel: 89167654321", "only digits"),
        ("", "no digits"),
        ("8 016 765 43 21", "not a valid Russian number"),
        ("8 916 765 43 21 1234", "10 digits after +7 or 8"),
    ] {
        let err = PhoneNumber::parse(input).unwrap_err().to_string();
        assert!(err.contains(reason), "{input}: {err}");
    }
}

#[test]
fn email_rules_of_an_smtp_server() {
    for ok in [
        "a@b.ru",
        "first.last+tag@mail.example.com",
        "maria@почта.рф",
        "x_y-z@sub-domain.example.org",
    ] {
        EmailAddress::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    let e = EmailAddress::parse("Anna.K@Example.COM").unwrap();
    assert_eq!((e.local_part(), e.domain()), ("Anna.K", "example.com"));
    for bad in [
        "plainaddress",
        "@example.com",
        "anna@",
        "anna@localhost",
        "an na@example.com",
        ".anna@example.com",
        "an..na@example.com",
        "anna@-example.com",
        "anna@example..com",
        "anna@example.123",
        "\"quoted\"@example.com",
        "анна@example.com",
    ] {
        assert!(EmailAddress::parse(bad).is_err(), "{bad} should be refused");
    }
    let long_local = format!("{}@example.com", "a".repeat(65));
    assert!(EmailAddress::parse(&long_local).is_err());
}

#[test]
fn money_reads_numbers_and_strings_exactly() {
    for (json, text) in [
        ("1250.5", "1250.5"),
        ("\"1250,50\"", "1250.5"),
        ("0.1", "0.1"),
        ("-3", "-3"),
        ("1e3", "1000"),
    ] {
        let m: Money = serde_json::from_str(json).unwrap();
        assert_eq!(m.to_string(), text, "{json}");
    }
    let sum = serde_json::from_str::<Money>("0.1").unwrap().0
        + serde_json::from_str::<Money>("0.2").unwrap().0;
    assert_eq!(sum.to_string(), "0.3");
}

#[test]
fn a_huge_bad_value_is_cut_in_its_error() {
    let huge = format!("+7{}", "9".repeat(5_000_000));
    let err = PhoneNumber::parse(&huge).unwrap_err().to_string();
    assert!(err.len() < 300, "{} bytes", err.len());
    assert!(err.contains("(5000002 bytes in all)"), "{err}");
    let mail = format!("{}@example.com", "я".repeat(1_000));
    let err = EmailAddress::parse(&mail).unwrap_err().to_string();
    assert!(err.chars().count() < 300, "{err}");
    let short = PhoneNumber::parse("12").unwrap_err().to_string();
    assert!(short.contains("`12`"), "{short}");
}

#[test]
fn internationalised_domains_follow_the_idna_rules() {
    for good in [
        "ivan@почта.рф",
        "a@xn--80a1acny.xn--p1ai",
        "b@пример.испытание",
    ] {
        assert!(EmailAddress::parse(good).is_ok(), "{good}");
    }
    // A Cyrillic label of 60 letters is within 63 characters, but not as punycode.
    let long_label = format!("a@{}.рф", "абвгдежзийклмнопрстуфхцчшщыэюя".repeat(2));
    let broken_punycode = "a@xn--zzzzzzzzzzzz.ru";
    let right_to_left = "a@\u{5d0}1\u{5d1}-a.com";
    for bad in [long_label.as_str(), broken_punycode, right_to_left] {
        let err = EmailAddress::parse(bad).unwrap_err().to_string();
        assert!(err.contains("IDNA"), "{bad}: {err}");
    }
    // 250 characters as written, over 254 once the domain is punycode.
    let label = "абвгдежзийклмнопрстуфхцчшщыэюя";
    let near = format!(
        "{}@{label}.{label}.{label}.{label}.{label}.рф",
        "a".repeat(60)
    );
    assert!(near.chars().count() <= 254);
    let err = EmailAddress::parse(&near).unwrap_err().to_string();
    assert!(err.contains("254") || err.contains("IDNA"), "{err}");
}
