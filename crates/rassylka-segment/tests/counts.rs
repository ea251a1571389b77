//! Counts per channel and exclusions: the class rules, the exclusion order, and preview equal
//! to what a send targets.

use chrono::NaiveDate;
use rassylka_model::{ChannelKind, MessageClass, Recipient};
use rassylka_segment::{
    ChannelSet, CompileOptions, Counts, Exclusion, Rule, Segment, Snapshot, Targets, targets,
};
use serde_json::json;

fn people() -> Vec<Recipient> {
    [
        json!({"id": "all", "consent": {"advertising": true}, "contacts": {"email": "a@example.com",
            "phone": "8 916 123-45-67", "telegram_chat_id": 1, "vk_user_id": 2, "wallet_push": "card"}}),
        json!({"id": "sms", "consent": {"advertising": true}, "contacts": {"phone": "+79161234567"}}),
        json!({"id": "unsubscribed", "no_mailings": true, "consent": {"advertising": true},
            "contacts": {"email": "u@example.com"}}),
        json!({"id": "no-consent", "contacts": {"telegram_chat_id": 5}}),
        json!({"id": "unsubscribed-no-consent", "no_mailings": true, "contacts": {"vk_user_id": 5}}),
        json!({"id": "bad-email", "consent": {"advertising": true}, "contacts": {"email": "not an address"}}),
        json!({"id": "bad-email-good-vk", "consent": {"advertising": true},
            "contacts": {"email": "nope", "vk_user_id": 9}}),
        json!({"id": "nothing", "consent": {"advertising": true}}),
        json!({"id": "blank", "consent": {"advertising": true}, "contacts": {"phone": "  ", "wallet_push": ""}}),
    ]
    .into_iter()
    .map(|v| serde_json::from_value(v).unwrap())
    .collect()
}

fn everyone() -> Segment {
    let today = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
    Segment::compile(
        &Rule::from_json(r#"{"everyone": true}"#).unwrap(),
        &CompileOptions::new(today, chrono_tz::Europe::Moscow),
    )
    .unwrap()
}

#[test]
fn targets_apply_the_class_rules_and_the_exclusion_order() {
    let people = people();
    let ad = |i: usize| targets(&people[i], MessageClass::Advertising);
    let service = |i: usize| targets(&people[i], MessageClass::Service);
    assert_eq!(ad(0).channels().len(), 5);
    assert_eq!(
        ad(1),
        Targets::Channels([ChannelKind::Sms].into_iter().collect())
    );
    assert_eq!(ad(2), Targets::Excluded(Exclusion::NoMailings));
    assert_eq!(
        service(2),
        Targets::Channels([ChannelKind::Email].into_iter().collect())
    );
    assert_eq!(ad(3), Targets::Excluded(Exclusion::NoConsent));
    assert_eq!(ad(4), Targets::Excluded(Exclusion::NoMailings));
    assert_eq!(ad(5), Targets::Excluded(Exclusion::InvalidContact));
    assert_eq!(
        ad(6),
        Targets::Channels([ChannelKind::Vk].into_iter().collect())
    );
    assert_eq!(ad(7), Targets::Excluded(Exclusion::Unreachable));
    assert_eq!(service(7), Targets::Excluded(Exclusion::Unreachable));
    assert_eq!(ad(8), Targets::Excluded(Exclusion::Unreachable));
    assert_eq!(ChannelSet::EMPTY.iter().count(), 0);
}

#[test]
fn counts_serialise_in_the_cli_shape() {
    let counts = everyone().count(&people(), MessageClass::Advertising);
    assert_eq!(
        serde_json::to_string(&counts).unwrap(),
        r#"{"total":9,"matched":9,"per_channel":{"email":1,"sms":2,"telegram":1,"vk":2,"push":1},"excluded":{"no_mailings":2,"no_consent":1,"invalid_contact":1,"unreachable":2}}"#
    );
    assert_eq!(counts.reachable(), 3);
    let service = everyone().count(&people(), MessageClass::Service);
    assert_eq!(
        service.excluded.no_mailings + service.excluded.no_consent,
        0
    );
    assert_eq!(service.reachable(), 6);
}

#[test]
fn counting_equals_iterating_targets_and_the_snapshot_agrees() {
    let people = people();
    let rule = Rule::from_json(
        r#"{"any": [{"reachable": "email"}, {"is_set": "vk_user_id"}, {"not": {"is_set": "phone"}}]}"#,
    )
    .unwrap();
    let today = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
    let zone = chrono_tz::Europe::Moscow;
    let segment = Segment::compile(&rule, &CompileOptions::new(today, zone)).unwrap();
    let snapshot = Snapshot::from_recipients(&people, zone);
    let bound = segment.bind(&snapshot).unwrap();
    for class in [MessageClass::Advertising, MessageClass::Service] {
        let mut by_hand = Counts::default();
        for (i, r) in people.iter().enumerate() {
            assert_eq!(snapshot.targets(i, class), Some(targets(r, class)));
            if segment.matches(r) {
                by_hand.total += 1;
                by_hand.matched += 1;
                match targets(r, class) {
                    Targets::Channels(channels) => {
                        for kind in channels.iter() {
                            match kind {
                                ChannelKind::Email => by_hand.per_channel.email += 1,
                                ChannelKind::Sms => by_hand.per_channel.sms += 1,
                                ChannelKind::Telegram => by_hand.per_channel.telegram += 1,
                                ChannelKind::Vk => by_hand.per_channel.vk += 1,
                                ChannelKind::Push => by_hand.per_channel.push += 1,
                            }
                        }
                    }
                    Targets::Excluded(Exclusion::NoMailings) => by_hand.excluded.no_mailings += 1,
                    Targets::Excluded(Exclusion::NoConsent) => by_hand.excluded.no_consent += 1,
                    Targets::Excluded(Exclusion::InvalidContact) => {
                        by_hand.excluded.invalid_contact += 1
                    }
                    Targets::Excluded(Exclusion::Unreachable) => by_hand.excluded.unreachable += 1,
                }
            } else {
                by_hand.total += 1;
            }
        }
        let counted = segment.count(&people, class);
        assert_eq!(counted, by_hand);
        assert_eq!(bound.count(class), counted);
        assert!(counted.matched < counted.total);
    }
    assert_eq!(snapshot.targets(people.len(), MessageClass::Service), None);
}
