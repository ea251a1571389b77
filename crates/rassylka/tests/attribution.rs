//! Attribution through the public API (SPEC §7f): every definition on hand-computed figures,
//! the holdout chosen and journaled by a real run on SQLite, activities, and the lift's
//! behaviour when treated and control buy alike.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use rassylka::channels::{ErrorClass, MemoryChannel};
use rassylka::model::{Address, ChannelKind, PhoneNumber, Recipient};
use rassylka::store::DeliveryStatus;
use rassylka::store::prelude::*;
use rassylka::{
    Attribution, AttributionScope, Dispatcher, Mailing, ManualClock, MemoryLedger, MemorySource,
    Rassylka, SqliteStore, Z95, newcombe_difference,
};
use rust_decimal::Decimal;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn d(text: &str) -> Decimal {
    text.parse().unwrap()
}

const T0: &str = "2026-12-01T10:00:00Z";

/// The figures of SPEC §7f on a small case worked out by hand.
fn worked_example() -> Attribution {
    let t0 = at(T0);
    let mut a = Attribution::new(7);
    a.promotion(Some("p-5".into()));
    a.reached("c-1", t0);
    a.reached("c-1", t0 + TimeDelta::days(1)); // reached again later: counted from the first
    a.reached("c-2", t0);
    a.reached("c-3", t0 + TimeDelta::hours(1));
    a.reached("c-4", t0);
    a.held_out("c-1", t0); // reached: never control
    a.held_out("c-10", t0);
    a.held_out("c-11", t0);
    a.add_sending_cost(d("10"));
    a.add_bonus_points(d("300"));
    let buy =
        |a: &mut Attribution, who: &str, when: DateTime<Utc>, amount: &str, promo: Option<&str>| {
            a.purchase(who, when, d(amount), promo);
        };
    buy(&mut a, "c-1", t0, "100", None); // at the instant of the reach: neither window nor before
    buy(&mut a, "c-1", t0 + TimeDelta::days(2), "1000", Some("p-5"));
    buy(&mut a, "c-1", t0 + TimeDelta::days(7), "500", Some("p-9")); // the window's last instant
    buy(
        &mut a,
        "c-1",
        t0 + TimeDelta::days(7) + TimeDelta::seconds(1),
        "300",
        None,
    );
    buy(&mut a, "c-2", t0 - TimeDelta::days(1), "200", None); // before
    buy(&mut a, "c-2", t0 - TimeDelta::days(7), "400", None); // before, its first instant
    buy(
        &mut a,
        "c-2",
        t0 - TimeDelta::days(7) - TimeDelta::seconds(1),
        "50",
        None,
    );
    buy(
        &mut a,
        "c-3",
        t0 + TimeDelta::hours(1) + TimeDelta::days(1),
        "250.50",
        None,
    );
    buy(&mut a, "c-9", t0 + TimeDelta::days(1), "999", None); // nobody of the report
    buy(&mut a, "c-10", t0 + TimeDelta::days(3), "700", None);
    buy(&mut a, "c-11", t0 + TimeDelta::days(8), "80", None); // after the control's window
    a
}

#[test]
fn every_definition_on_a_worked_example() {
    let report = worked_example().report(d("0.5"));
    assert_eq!(report.reached, 4);
    assert_eq!(report.converted, 2);
    assert_eq!(report.conversion, 0.5);
    assert_eq!(report.revenue, d("1750.50"));
    assert_eq!(report.purchases, 3);
    assert_eq!(report.average_check, Some(d("583.50")));
    assert_eq!(report.average_check_before, Some(d("300")));
    assert_eq!(
        (report.cost_sending, report.cost_bonus, report.cost_total),
        (d("10"), d("150.0"), d("160.0"))
    );
    assert_eq!(report.roi, Some(9.940625));
    let promotion = report.promotion.clone().unwrap();
    assert_eq!(
        (promotion.used, promotion.conversion, promotion.sum),
        (1, 0.25, d("1000"))
    );
    let holdout = report.holdout.clone().unwrap();
    assert_eq!(
        (holdout.size, holdout.converted, holdout.conversion),
        (2, 1, 0.5)
    );
    assert_eq!(holdout.lift, 0.0);
    assert_eq!(holdout.lift_ci95, newcombe_difference(2, 4, 1, 2, Z95));
    assert_eq!(holdout.incremental_revenue, d("350.50"));
    // Day by day: c-1 bought on day 2, c-3 on day 1; the control's c-10 on day 3.
    let treated: Vec<f64> = report.daily.iter().map(|d| d.treated).collect();
    assert_eq!(treated, [0.25, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]);
    let control: Vec<Option<f64>> = report.daily.iter().map(|d| d.control).collect();
    assert_eq!(control[1], Some(0.0));
    assert_eq!(control[2], Some(0.5));

    assert_eq!(
        report.to_json().to_string(),
        format!(
            "{{\"reached\":4,\"converted\":2,\"conversion\":0.5,\"revenue\":1750.5,\"purchases\":3,\
             \"average_check\":583.5,\"average_check_before\":300,\
             \"cost\":{{\"sending\":10,\"bonus\":150,\"total\":160}},\"roi\":9.940625,\
             \"promotion\":{{\"id\":\"p-5\",\"used\":1,\"conversion\":0.25,\"sum\":1000}},\
             \"holdout\":{{\"size\":2,\"converted\":1,\"conversion\":0.5,\"lift\":0.0,\
             \"lift_ci95\":[{},{}],\"incremental_revenue\":350.5}}}}",
            serde_json::json!(holdout.lift_ci95.0),
            serde_json::json!(holdout.lift_ci95.1)
        )
    );
}

#[test]
fn zero_cost_no_purchases_and_no_holdout_say_null() {
    let mut a = Attribution::new(7);
    a.reached("c-1", at(T0));
    let report = a.report(Decimal::ONE);
    assert_eq!(
        (report.reached, report.converted, report.conversion),
        (1, 0, 0.0)
    );
    let json = report.to_json();
    for key in [
        "average_check",
        "average_check_before",
        "roi",
        "promotion",
        "holdout",
    ] {
        assert!(json[key].is_null(), "{key}: {json}");
    }
    assert_eq!(json["revenue"], 0);
    let empty = Attribution::new(7).report(Decimal::ONE);
    assert_eq!((empty.reached, empty.conversion), (0, 0.0));
}

fn people(n: usize) -> Vec<Recipient> {
    (0..n)
        .map(|i| {
            serde_json::from_str(&format!(
                r#"{{"id": "c-{i:03}", "consent": {{"advertising": true}}, "contacts": {{"phone": "+7916{i:07}"}}}}"#
            ))
            .unwrap()
        })
        .collect()
}

fn mailing(id: &str, start: &str, extra: &str) -> Mailing {
    Mailing::from_json(&format!(
        r#"{{"id": "{id}", "class": "advertising", "channels": ["sms"],
            "schedule": {{"start": "{start}", "tz": "UTC", "every": "once"}},
            "content": {{"default": {{"text": "Скидка 20%"}}}}{extra}}}"#
    ))
    .unwrap()
}

#[tokio::test]
async fn a_run_holds_out_a_stable_share_and_the_journal_gives_the_audience() {
    let store = Arc::new(SqliteStore::temporary().await.unwrap());
    let clock = Arc::new(ManualClock::starting_at(at("2026-12-01T10:05:00Z")));
    let sms = Arc::new(MemoryChannel::new(ChannelKind::Sms));
    let phone = |i: usize| Address::Phone(PhoneNumber::parse(&format!("+7916{i:07}")).unwrap());
    let dispatcher = Rassylka::builder()
        .recipients(MemorySource::new(people(200)))
        .store_shared(store.clone())
        .clock(clock.clone())
        .ledger(Arc::new(MemoryLedger::default()))
        .channel(sms.clone())
        .tariff(ChannelKind::Sms, d("4.5"))
        .build()
        .unwrap();
    let m = mailing(
        "m-1",
        "2026-12-01T10:00",
        r#", "holdout": {"percent": 25}, "promotion_id": "p-5", "bonus": {"amount": 100}"#,
    );
    dispatcher.save(&m).await.unwrap();
    let preview = dispatcher.preview(&m, None).await.unwrap();
    assert!((30..70).contains(&preview.held_out), "{}", preview.held_out);
    assert_eq!(
        preview.per_channel[&ChannelKind::Sms] + preview.held_out,
        200
    );
    let cost = dispatcher.cost(&m, None).await.unwrap();
    assert_eq!(cost.held_out, preview.held_out);
    // A failure and an unknown send leave their recipients unreached.
    sms.fail_for(phone(1), ErrorClass::Rejected);
    sms.fail_for(phone(2), ErrorClass::Ambiguous);
    dispatcher.confirm("m-1").await.unwrap();
    let run = dispatcher.run_mailing("m-1").await.unwrap();
    // The run says how long each phase took (the dispatch bench prints them).
    assert!(run.freezing > std::time::Duration::ZERO && run.sending > std::time::Duration::ZERO);

    let occurrence = dispatcher.occurrences("m-1").await.unwrap().remove(0);
    let rows = store.deliveries(occurrence.id, 0, 1_000).await.unwrap();
    let held: Vec<&str> = rows
        .iter()
        .filter(|r| r.planned.error.as_deref() == Some("holdout"))
        .map(|r| r.planned.recipient_id.as_str())
        .collect();
    assert_eq!(
        held.len() as u64,
        preview.held_out,
        "the run holds out whom the preview did"
    );
    assert!(
        rows.iter()
            .filter(|r| r.planned.error.as_deref() == Some("holdout"))
            .all(|r| r.planned.status == DeliveryStatus::Skipped && r.planned.channel.is_none())
    );
    let sent: Vec<&str> = rows
        .iter()
        .filter(|r| r.planned.status == DeliveryStatus::Sent)
        .map(|r| r.planned.recipient_id.as_str())
        .collect();
    let status_of = |id: &str| {
        rows.iter()
            .find(|r| r.planned.recipient_id == id)
            .unwrap()
            .planned
            .status
    };
    for (id, status) in [
        ("c-001", DeliveryStatus::Failed),
        ("c-002", DeliveryStatus::Unknown),
    ] {
        if !held.contains(&id) {
            assert_eq!(status_of(id), status, "{id}");
            assert!(!sent.contains(&id));
        }
    }
    assert!(
        !held.contains(&"c-001") || !held.contains(&"c-002"),
        "the test needs one of them treated"
    );

    let attribution = dispatcher
        .attribution(&AttributionScope::Mailing("m-1".into()), 7)
        .await
        .unwrap();
    let report = attribution.report(d("0.5"));
    assert_eq!(
        report.reached,
        sent.len() as u64,
        "failed and unknown are not reached"
    );
    let control = report
        .holdout
        .expect("the control group is there before any purchase");
    assert_eq!((control.size, control.converted), (held.len() as u64, 0));
    let mut with_purchases = attribution.clone();
    let buyer = sent[0];
    let control = held[0];
    with_purchases.purchase(buyer, at("2026-12-02T10:00:00Z"), d("1000"), Some("p-5"));
    with_purchases.purchase(control, at("2026-12-02T10:00:00Z"), d("500"), None);
    let report = with_purchases.report(d("0.5"));
    assert_eq!(report.converted, 1);
    assert_eq!(
        report.cost_sending,
        d("4.5") * Decimal::from(sent.len() as u64)
    );
    assert_eq!(
        report.cost_bonus,
        d("50") * Decimal::from(sent.len() as u64)
    );
    assert_eq!(report.promotion.unwrap().used, 1);
    let holdout = report.holdout.unwrap();
    assert_eq!((holdout.size, holdout.converted), (held.len() as u64, 1));
}

#[tokio::test]
async fn an_activity_counts_each_recipient_once_from_the_first_mailing() {
    let store = Arc::new(SqliteStore::temporary().await.unwrap());
    let clock = Arc::new(ManualClock::starting_at(at("2026-12-01T10:05:00Z")));
    let dispatcher = Rassylka::builder()
        .recipients(MemorySource::new(people(40)))
        .store_shared(store.clone())
        .clock(clock.clone())
        .channel(Arc::new(MemoryChannel::new(ChannelKind::Sms)))
        .build()
        .unwrap();
    let first = mailing(
        "w-1",
        "2026-12-01T10:00",
        r#", "activity_id": "winter", "holdout": {"percent": 50}"#,
    );
    let second = mailing(
        "w-2",
        "2026-12-03T10:00",
        r#", "activity_id": "winter", "holdout": {"percent": 50}"#,
    );
    let other = mailing("x-1", "2026-12-01T10:00", "");
    for (m, now) in [
        (&first, "2026-12-01T10:05:00Z"),
        (&second, "2026-12-03T10:05:00Z"),
        (&other, "2026-12-03T10:06:00Z"),
    ] {
        clock.set(at(now));
        dispatcher.save(m).await.unwrap();
        dispatcher.confirm(&m.id).await.unwrap();
        dispatcher.run_mailing(&m.id).await.unwrap();
    }
    let scope = AttributionScope::Activity("winter".into());
    let mut activity = dispatcher.attribution(&scope, 7).await.unwrap();
    // Held out by w-1 but reached by w-2 (or the reverse): treated. Control: held out by both.
    // Whom each mailing reached, as its journal says.
    let mut sent_by: Vec<Vec<String>> = Vec::new();
    for m in [&first, &second] {
        let occurrence = dispatcher.occurrences(&m.id).await.unwrap().remove(0);
        let rows = store.deliveries(occurrence.id, 0, 1_000).await.unwrap();
        sent_by.push(
            rows.into_iter()
                .filter(|r| r.planned.status == DeliveryStatus::Sent)
                .map(|r| r.planned.recipient_id)
                .collect(),
        );
    }
    let reached_by = |id: &str| {
        sent_by
            .iter()
            .filter(|sent| sent.iter().any(|s| s == id))
            .count()
    };
    let expected_reached = (0..40)
        .filter(|i| reached_by(&format!("c-{i:03}")) > 0)
        .count() as u64;
    let report = activity.report(Decimal::ONE);
    assert_eq!(report.reached, expected_reached);
    assert_eq!(
        report.holdout.as_ref().map_or(0, |h| h.size),
        40 - expected_reached
    );
    // Someone reached by both, counted from w-1: a purchase two days after w-1 converts them
    // (from w-2 it would be before the reach).
    let both = (0..40)
        .map(|i| format!("c-{i:03}"))
        .find(|id| reached_by(id) == 2)
        .unwrap();
    activity.purchase(&both, at("2026-12-03T09:00:00Z"), d("300"), None);
    assert_eq!(activity.report(Decimal::ONE).converted, 1);
    let unknown = dispatcher
        .attribution(&AttributionScope::Activity("summer".into()), 7)
        .await
        .unwrap_err();
    assert!(unknown.is_bad_input(), "{unknown}");
}

/// splitmix64: a small, seedable generator for the simulation.
fn next(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as f64 / u64::MAX as f64
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    /// When treated and control buy alike, the lift is zero in expectation and its 95 %
    /// interval holds zero about 95 % of the time.
    #[test]
    fn lift_is_zero_in_expectation_when_both_groups_buy_alike(
        seed in any::<u64>(),
        rate in 0.02f64..0.5,
    ) {
        let mut state = seed;
        let t0 = at(T0);
        let runs = 200;
        let (mut lifts, mut covered) = (0.0, 0);
        for _ in 0..runs {
            let mut a = Attribution::new(7);
            for i in 0..600 {
                a.reached(&format!("t{i}"), t0);
            }
            for i in 0..400 {
                a.held_out(&format!("c{i}"), t0);
            }
            for i in 0..600 {
                if next(&mut state) < rate {
                    a.purchase(&format!("t{i}"), t0 + TimeDelta::days(1), Decimal::ONE, None);
                }
            }
            for i in 0..400 {
                if next(&mut state) < rate {
                    a.purchase(&format!("c{i}"), t0 + TimeDelta::days(1), Decimal::ONE, None);
                }
            }
            let holdout = a.report(Decimal::ONE).holdout.unwrap();
            lifts += holdout.lift;
            covered += usize::from(holdout.lift_ci95.0 <= 0.0 && 0.0 <= holdout.lift_ci95.1);
        }
        let mean = lifts / f64::from(runs);
        prop_assert!(mean.abs() < 0.012, "mean lift {mean} at rate {rate}");
        prop_assert!(covered >= 170, "{covered} of {runs} intervals hold zero");
    }
}
