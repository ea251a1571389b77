//! Random rules on random recipients: the compiled segment, its snapshot form and a naive
//! evaluator written plainly from SPEC §4a agree on matches, bookings, anchors and counts.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, TimeZone};
use chrono_tz::Tz;
use proptest::prelude::*;
use rassylka_model::{ChannelKind, MessageClass, Recipient};
use rassylka_segment::{
    BookingMatch, CompileOptions, CountryRule, DateField, DateInterval, DateRule, DecimalRange,
    Field, IntRange, LeapDay, Names, Outcome, Rule, Segment, Snapshot, When,
};
use rust_decimal::Decimal;
use serde_json::{Value, json};

// --- the naive evaluator ---------------------------------------------------------------------

struct Ctx {
    today: NaiveDate,
    zone: Tz,
    leap_day: LeapDay,
}

#[derive(Debug, Clone, PartialEq)]
enum V {
    F,
    T,
    S(BTreeSet<usize>),
}

fn local(at: &DateTime<FixedOffset>, zone: Tz) -> NaiveDate {
    at.with_timezone(&zone).date_naive()
}

fn leap(year: i32) -> bool {
    NaiveDate::from_ymd_opt(year, 2, 29).is_some()
}

/// (month, day) of a birth in `year` under the policy.
fn birthday_md(birth: NaiveDate, year: i32, policy: LeapDay) -> (u32, u32) {
    if (birth.month(), birth.day()) == (2, 29) && !leap(year) {
        match policy {
            LeapDay::Feb28 => (2, 28),
            LeapDay::Mar1 => (3, 1),
        }
    } else {
        (birth.month(), birth.day())
    }
}

fn age(birth: NaiveDate, today: NaiveDate, policy: LeapDay) -> i64 {
    let years = i64::from(today.year() - birth.year());
    if (today.month(), today.day()) < birthday_md(birth, today.year(), policy) {
        years - 1
    } else {
        years
    }
}

fn int_ok(r: &IntRange, v: i64) -> bool {
    let v = i128::from(v);
    let c = |o: Option<u64>| o.map(i128::from);
    c(r.gte).is_none_or(|b| v >= b)
        && c(r.gt).is_none_or(|b| v > b)
        && c(r.lte).is_none_or(|b| v <= b)
        && c(r.lt).is_none_or(|b| v < b)
        && c(r.eq).is_none_or(|b| v == b)
}

fn dec_ok(r: &DecimalRange, v: Decimal) -> bool {
    r.gte.is_none_or(|b| v >= b)
        && r.gt.is_none_or(|b| v > b)
        && r.lte.is_none_or(|b| v <= b)
        && r.lt.is_none_or(|b| v < b)
        && r.eq.is_none_or(|b| v == b)
}

fn present(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|s| !s.trim().is_empty())
}

fn is_set(r: &Recipient, field: &Field) -> bool {
    let c = &r.contacts;
    match field {
        Field::FirstName => present(&r.first_name),
        Field::LastName => present(&r.last_name),
        Field::MiddleName => present(&r.middle_name),
        Field::Gender => r.gender.is_some(),
        Field::BirthDate => r.birth_date.is_some(),
        Field::Timezone => r.timezone.is_some(),
        Field::RegisteredAt => r.registered_at.is_some(),
        Field::Country => present(&r.country),
        Field::Segments => !r.segments.is_empty(),
        Field::LoyaltyGroup => present(&r.loyalty_group),
        Field::Balance => r.balance.is_some(),
        Field::Bookings => !r.bookings.is_empty(),
        Field::Purchases => !r.purchases.is_empty(),
        Field::Email => present(&c.email),
        Field::Phone => present(&c.phone),
        Field::TelegramChatId => c.telegram_chat_id.is_some(),
        Field::VkUserId => c.vk_user_id.is_some(),
        Field::WalletPush => present(&c.wallet_push),
        Field::Custom(name) => match r.fields.get(name) {
            None | Some(Value::Null) => false,
            Some(Value::String(s)) => !s.trim().is_empty(),
            Some(_) => true,
        },
    }
}

fn booking_date(r: &Recipient, i: usize, field: DateField, zone: Tz) -> Option<NaiveDate> {
    let b = &r.bookings[i];
    match field {
        DateField::CheckIn => b.check_in,
        DateField::CheckOut => b.check_out,
        DateField::BookedAt => b.booked_at.as_ref().map(|t| local(t, zone)),
        DateField::PaidAt => b.paid_at.as_ref().map(|t| local(t, zone)),
        DateField::Birthday => None,
    }
}

fn set_of(r: &Recipient, test: impl Fn(usize) -> bool) -> V {
    let set: BTreeSet<usize> = (0..r.bookings.len()).filter(|i| test(*i)).collect();
    if set.is_empty() { V::F } else { V::S(set) }
}

fn b(v: bool) -> V {
    if v { V::T } else { V::F }
}

fn truthy(v: &V) -> bool {
    *v != V::F
}

/// The year whose February a birthday interval is read in (see the crate docs).
fn interval_year(from: (u32, u32), to: (u32, u32), today: NaiveDate) -> i32 {
    let d = (today.month(), today.day());
    let wraps = from > to;
    for start in today.year() - 1..=today.year() + 1 {
        let end_year = if wraps { start + 1 } else { start };
        if (end_year, to.0, to.1) >= (today.year(), d.0, d.1) {
            return if wraps && from.0 > 2 {
                start + 1
            } else {
                start
            };
        }
    }
    today.year()
}

fn reference(rule: &Rule, r: &Recipient, cx: &Ctx) -> V {
    let z = cx.zone;
    match rule {
        Rule::Everyone => V::T,
        Rule::All(rules) => {
            let values: Vec<V> = rules.iter().map(|x| reference(x, r, cx)).collect();
            if values.contains(&V::F) {
                return V::F;
            }
            let sets: Vec<&BTreeSet<usize>> = values
                .iter()
                .filter_map(|v| if let V::S(s) = v { Some(s) } else { None })
                .collect();
            match sets.split_first() {
                None => V::T,
                Some((first, rest)) => {
                    let common: BTreeSet<usize> = first
                        .iter()
                        .copied()
                        .filter(|i| rest.iter().all(|s| s.contains(i)))
                        .collect();
                    if common.is_empty() {
                        V::F
                    } else {
                        V::S(common)
                    }
                }
            }
        }
        Rule::Any(rules) => {
            let values: Vec<V> = rules.iter().map(|x| reference(x, r, cx)).collect();
            if values.contains(&V::T) {
                return V::T;
            }
            let union: BTreeSet<usize> = values
                .iter()
                .flat_map(|v| {
                    if let V::S(s) = v {
                        s.clone()
                    } else {
                        BTreeSet::new()
                    }
                })
                .collect();
            if union.is_empty() { V::F } else { V::S(union) }
        }
        Rule::Not(inner) => b(!truthy(&reference(inner, r, cx))),
        Rule::Gender(g) => b(r.gender == Some(*g)),
        Rule::Age(range) => b(r
            .birth_date
            .is_some_and(|bd| int_ok(range, age(bd, cx.today, cx.leap_day)))),
        Rule::Country(c) => {
            let country = r
                .country
                .as_deref()
                .map(str::trim)
                .filter(|c| !c.is_empty());
            let inside =
                |codes: &Vec<String>| country.is_some_and(|c| codes.iter().any(|x| x == c));
            b(match c {
                CountryRule::In(codes) => inside(codes),
                CountryRule::NotIn(codes) => !inside(codes),
                CountryRule::IsSet(known) => country.is_some() == *known,
            })
        }
        Rule::IsSet(field) => b(is_set(r, field)),
        Rule::Segment(names) => b(r.segments.iter().any(|t| names.as_slice().contains(t))),
        Rule::Vip(v) => b(r.vip == *v),
        Rule::LoyaltyGroup(names) => b(r
            .loyalty_group
            .as_ref()
            .is_some_and(|g| names.as_slice().contains(g))),
        Rule::Balance(range) => b(r.balance.is_some_and(|m| dec_ok(range, m.0))),
        Rule::Registered(span) => b(r.registered_at.as_ref().is_some_and(|t| {
            let d = local(t, z);
            span.from.is_none_or(|f| d >= f) && span.to.is_none_or(|t| d <= t)
        })),
        Rule::Purchases(p) => {
            let first = cx.today - Duration::days(i64::from(p.within_days) - 1);
            let inside: Vec<_> = r
                .purchases
                .iter()
                .filter(|x| {
                    x.at.as_ref()
                        .is_some_and(|t| (first..=cx.today).contains(&local(t, z)))
                })
                .collect();
            let sum = inside.iter().fold(Decimal::ZERO, |s, x| {
                s.saturating_add(x.amount.map_or(Decimal::ZERO, |a| a.0))
            });
            let count = inside.len() as i64;
            b(match (&p.count, &p.sum) {
                (None, None) => count >= 1,
                (c, s) => {
                    c.as_ref().is_none_or(|c| int_ok(c, count))
                        && s.as_ref().is_none_or(|s| dec_ok(s, sum))
                }
            })
        }
        Rule::LastPurchase(p) => b(r
            .purchases
            .iter()
            .filter_map(|x| x.at.as_ref().map(|t| local(t, z)))
            .max()
            .is_some_and(|last| (cx.today - last).num_days() > i64::from(p.older_than_days))),
        Rule::Date(DateRule::Dynamic(d)) => {
            let n = Duration::days(i64::from(d.days));
            let hits = |date: NaiveDate| match d.when {
                When::Before => date - n == cx.today,
                When::After => date + n == cx.today,
            };
            if d.field == DateField::Birthday {
                b(r.birth_date.is_some_and(|bd| {
                    (cx.today.year() - 1..=cx.today.year() + 1).any(|y| {
                        let (m, day) = birthday_md(bd, y, cx.leap_day);
                        NaiveDate::from_ymd_opt(y, m, day).is_some_and(hits)
                    })
                }))
            } else {
                set_of(r, |i| booking_date(r, i, d.field, z).is_some_and(hits))
            }
        }
        Rule::Date(DateRule::Interval(DateInterval::Booking { field, from, to })) => {
            set_of(r, |i| {
                booking_date(r, i, field.date_field(), z).is_some_and(|d| *from <= d && d <= *to)
            })
        }
        Rule::Date(DateRule::Interval(DateInterval::Birthday { from, to })) => {
            let (from, to) = ((from.month(), from.day()), (to.month(), to.day()));
            let year = interval_year(from, to, cx.today);
            let (lo, hi) = if leap(year) {
                (from, to)
            } else {
                (
                    if from == (2, 29) { (3, 1) } else { from },
                    if to == (2, 29) { (2, 28) } else { to },
                )
            };
            b(r.birth_date.is_some_and(|bd| {
                let md = birthday_md(bd, year, cx.leap_day);
                if from > to {
                    md >= lo || md <= hi
                } else {
                    lo <= md && md <= hi
                }
            }))
        }
        Rule::Reachable(kind) => b(r.address(*kind).is_ok()),
    }
}

fn anchor_field(rule: &Rule, dynamic: bool) -> Option<DateField> {
    match rule {
        Rule::All(rules) | Rule::Any(rules) => rules.iter().find_map(|x| anchor_field(x, dynamic)),
        Rule::Not(inner) => anchor_field(inner, dynamic),
        Rule::Date(DateRule::Dynamic(d)) if dynamic && d.field != DateField::Birthday => {
            Some(d.field)
        }
        Rule::Date(DateRule::Interval(DateInterval::Booking { field, .. })) if !dynamic => {
            Some(field.date_field())
        }
        _ => None,
    }
}

// --- generators ----------------------------------------------------------------------------

const ZONES: [Tz; 4] = [
    chrono_tz::Europe::Moscow,
    chrono_tz::Europe::Berlin,
    chrono_tz::UTC,
    chrono_tz::Asia::Vladivostok,
];

/// Cases are generated around one of these days: across New Year, and around Feb 29 of a
/// leap and a non-leap year.
fn bases() -> impl Strategy<Value = NaiveDate> {
    pick(&[
        (2026, 1, 15),
        (2027, 12, 28),
        (2028, 2, 27),
        (2025, 2, 26),
        (2024, 3, 1),
    ])
    .prop_map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).unwrap())
}

fn date_near(base: NaiveDate) -> impl Strategy<Value = NaiveDate> {
    (-60i64..60).prop_map(move |d| base + Duration::days(d))
}

/// Close to the base, so dynamic rules with small N often hit.
fn date_close(base: NaiveDate) -> impl Strategy<Value = NaiveDate> {
    (-8i64..8).prop_map(move |d| base + Duration::days(d))
}

fn instant_near(base: NaiveDate) -> impl Strategy<Value = String> {
    instant_within(base, 60)
}

fn instant_within(base: NaiveDate, days: i64) -> impl Strategy<Value = String> {
    (-days * 24..days * 24, -5i32..=11).prop_map(move |(hours, offset)| {
        let zone = FixedOffset::east_opt(offset * 3600).unwrap();
        let at =
            zone.from_utc_datetime(&base.and_hms_opt(0, 30, 0).unwrap()) + Duration::hours(hours);
        at.to_rfc3339()
    })
}

fn birth() -> impl Strategy<Value = String> {
    prop_oneof![
        (0i64..365 * 12).prop_map(|d| (NaiveDate::from_ymd_opt(1996, 1, 1).unwrap()
            + Duration::days(d))
        .to_string()),
        Just("2000-02-29".to_owned()),
        Just("2004-02-28".to_owned()),
        Just("2003-03-01".to_owned()),
        Just("1990-12-31".to_owned()),
        Just("1991-01-01".to_owned()),
    ]
}

fn amount() -> impl Strategy<Value = Value> {
    prop_oneof![
        // Few distinct values, so sums often land exactly on the rules' bounds.
        pick(&["100", "250.5", "0"]).prop_map(|v| json!(v)),
        pick(&[100, 250]).prop_map(|v| json!(v)),
        (0i64..10_000).prop_map(|c| json!(format!("{}.{:02}", c / 100, c % 100))),
        (0i64..50).prop_map(|v| json!(v * 100)),
        Just(json!("100.00001")),
        Just(json!(null)),
        Just(json!(-50)),
    ]
}

fn pick<T: Clone + std::fmt::Debug + 'static>(items: &'static [T]) -> impl Strategy<Value = T> {
    proptest::sample::select(items)
}

fn opt<S: Strategy>(s: S) -> impl Strategy<Value = Option<S::Value>> {
    proptest::option::of(s)
}

fn recipient(id: usize, base: NaiveDate) -> impl Strategy<Value = Recipient> {
    let person = (
        opt(pick(&["male", "female"])),
        opt(birth()),
        opt(instant_near(base)),
        opt(pick(&["RU", "KZ", "BY", " "])),
        any::<bool>(),
        proptest::sample::subsequence(vec!["A", "B", "C"], 0..=2),
        opt(pick(&["Gold", "Silver", "Blocked"])),
        opt(amount()),
    );
    let contacts = (
        opt(pick(&["a@example.com", "broken@", " "])),
        opt(pick(&["+79161234567", "8 916 123-45-67", "12"])),
        opt(1i64..5),
        opt(1i64..5),
        opt(pick(&["card", ""])),
        any::<bool>(),
        any::<bool>(),
        opt(pick(&["A-1", "", "null"])),
    );
    let booking = (
        opt(date_close(base)),
        opt(date_close(base)),
        opt(instant_within(base, 9)),
        opt(instant_within(base, 9)),
    );
    let purchase = (opt(instant_near(base)), amount());
    (
        person,
        contacts,
        proptest::collection::vec(booking, 0..5),
        proptest::collection::vec(purchase, 0..9),
    )
        .prop_map(move |(p, c, bookings, purchases)| {
            let bookings: Vec<Value> = bookings
                .into_iter()
                .enumerate()
                .map(|(i, (ci, co, ba, pa))| {
                    json!({"id": format!("b{i}"), "check_in": ci, "check_out": co, "booked_at": ba, "paid_at": pa})
                })
                .collect();
            let purchases: Vec<Value> = purchases
                .into_iter()
                .map(|(at, amount)| json!({"at": at, "amount": amount}))
                .collect();
            let order_id = match c.7 {
                Some("null") => json!(null),
                other => json!(other),
            };
            let mut value = json!({
                "id": format!("r{id}"), "gender": p.0, "birth_date": p.1, "registered_at": p.2,
                "country": p.3, "vip": p.4, "segments": p.5, "loyalty_group": p.6, "balance": p.7,
                "contacts": {"email": c.0, "phone": c.1, "telegram_chat_id": c.2, "vk_user_id": c.3,
                             "wallet_push": c.4},
                "consent": {"advertising": c.5}, "no_mailings": c.6,
                "bookings": bookings, "purchases": purchases,
            });
            if c.7.is_some() {
                value["order_id"] = order_id;
            }
            serde_json::from_value(value).unwrap()
        })
}

fn int_range(max: u64) -> impl Strategy<Value = IntRange> {
    let bound = move || opt(0..=max);
    (bound(), bound(), bound(), bound(), opt(0..=max))
        .prop_filter("one bound at least", |(a, b, c, d, e)| {
            a.is_some() || b.is_some() || c.is_some() || d.is_some() || e.is_some()
        })
        .prop_map(|(gte, gt, lte, lt, eq)| IntRange {
            gte,
            gt,
            lte,
            lt,
            eq,
        })
}

fn decimal() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        pick(&[0i64, 1000, 2505, 3505, 5000, 6010]).prop_map(|c| Decimal::new(c, 1)),
        (0i64..10_000).prop_map(|c| Decimal::new(c, 2)),
        (0i64..50).prop_map(|v| Decimal::from(v * 100)),
        Just(Decimal::new(10000001, 5)),
        Just(Decimal::from(-50)),
    ]
}

fn decimal_range() -> impl Strategy<Value = DecimalRange> {
    (
        opt(decimal()),
        opt(decimal()),
        opt(decimal()),
        opt(decimal()),
        proptest::option::weighted(0.1, decimal()),
    )
        .prop_filter("one bound at least", |(a, b, c, d, e)| {
            a.is_some() || b.is_some() || c.is_some() || d.is_some() || e.is_some()
        })
        .prop_map(|(gte, gt, lte, lt, eq)| DecimalRange {
            gte,
            gt,
            lte,
            lt,
            eq,
        })
}

fn month_day() -> impl Strategy<Value = rassylka_segment::MonthDay> {
    prop_oneof![
        (1u32..=12, 1u32..=31).prop_filter_map("a real month-day", |(m, d)| {
            rassylka_segment::MonthDay::new(m, d)
        }),
        Just(rassylka_segment::MonthDay::new(2, 29).unwrap()),
        Just(rassylka_segment::MonthDay::new(2, 28).unwrap()),
        Just(rassylka_segment::MonthDay::new(3, 1).unwrap()),
    ]
}

fn booking_field() -> impl Strategy<Value = rassylka_segment::BookingField> {
    pick(&rassylka_segment::BookingField::ALL)
}

fn leaf(base: NaiveDate) -> impl Strategy<Value = Rule> {
    use rassylka_model::Gender;
    let names = |items: &'static [&'static str]| {
        prop_oneof![
            pick(items).prop_map(|n| Names::One(n.to_owned())),
            proptest::sample::subsequence(items.to_vec(), 1..=2)
                .prop_map(|v| Names::In(v.into_iter().map(str::to_owned).collect())),
        ]
    };
    prop_oneof![
        1 => Just(Rule::Everyone),
        1 => pick(&[Gender::Male, Gender::Female]).prop_map(Rule::Gender),
        1 => int_range(40).prop_map(Rule::Age),
        1 => proptest::sample::subsequence(vec!["RU", "KZ", "US"], 1..=2).prop_flat_map(|codes| {
            let codes: Vec<String> = codes.into_iter().map(str::to_owned).collect();
            prop_oneof![
                Just(CountryRule::In(codes.clone())),
                Just(CountryRule::NotIn(codes)),
                any::<bool>().prop_map(CountryRule::IsSet),
            ]
        })
        .prop_map(Rule::Country),
        1 => prop_oneof![
            pick(&Field::BUILT_IN),
            Just(Field::Custom("order_id".into())),
            Just(Field::Custom("missing".into())),
        ]
        .prop_map(Rule::IsSet),
        1 => names(&["A", "B", "Z"]).prop_map(Rule::Segment),
        1 => any::<bool>().prop_map(Rule::Vip),
        1 => names(&["Gold", "Silver", "Platinum"]).prop_map(Rule::LoyaltyGroup),
        1 => decimal_range().prop_map(Rule::Balance),
        1 => (opt(date_near(base)), opt(date_near(base)))
            .prop_filter("a bound, ordered", |(f, t)| (f.is_some() || t.is_some()) && f.zip(*t).is_none_or(|(f, t)| f <= t))
            .prop_map(|(from, to)| Rule::Registered(rassylka_segment::DateSpan { from, to })),
        1 => (1u32..60, opt(int_range(4)), opt(decimal_range())).prop_map(|(within_days, count, sum)| {
            Rule::Purchases(rassylka_segment::PurchasesRule { within_days, count, sum })
        }),
        1 => (0u32..60).prop_map(|older_than_days| Rule::LastPurchase(rassylka_segment::LastPurchaseRule { older_than_days })),
        8 => (
            pick(&[DateField::CheckIn, DateField::CheckOut, DateField::BookedAt, DateField::PaidAt, DateField::Birthday]),
            0u32..6,
            pick(&[When::Before, When::After]),
        )
            .prop_map(|(field, days, when)| Rule::Date(DateRule::Dynamic(rassylka_segment::DynamicDate { field, days, when }))),
        8 => (booking_field(), date_near(base), date_near(base)).prop_map(|(field, a, b)| {
            let (from, to) = if a <= b { (a, b) } else { (b, a) };
            Rule::Date(DateRule::Interval(DateInterval::Booking { field, from, to }))
        }),
        1 => (month_day(), month_day())
            .prop_map(|(from, to)| Rule::Date(DateRule::Interval(DateInterval::Birthday { from, to }))),
        1 => pick(&ChannelKind::ALL).prop_map(Rule::Reachable),
    ]
}

fn rule(base: NaiveDate) -> impl Strategy<Value = Rule> {
    leaf(base).prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 1..4).prop_map(Rule::All),
            proptest::collection::vec(inner.clone(), 1..4).prop_map(Rule::Any),
            inner.prop_map(|r| Rule::Not(Box::new(r))),
        ]
    })
}

fn crowd(base: NaiveDate) -> impl Strategy<Value = Vec<Recipient>> {
    (64usize..200).prop_flat_map(move |n| (0..n).map(|i| recipient(i, base)).collect::<Vec<_>>())
}

fn people(base: NaiveDate) -> impl Strategy<Value = Vec<Recipient>> {
    (1usize..8).prop_flat_map(move |n| (0..n).map(|i| recipient(i, base)).collect::<Vec<_>>())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn compiled_snapshot_and_naive_agree(
        (rule, people, today) in bases().prop_flat_map(|base| (
            rule(base),
            people(base),
            prop_oneof![3 => date_close(base), 1 => date_near(base)],
        )),
        zone in pick(&ZONES),
        leap_day in pick(&[LeapDay::Feb28, LeapDay::Mar1]),
        class in pick(&[MessageClass::Advertising, MessageClass::Service]),
    ) {
        let cx = Ctx { today, zone, leap_day };
        let options = CompileOptions::new(today, zone).with_leap_day(leap_day);
        let segment = Segment::compile(&rule, &options).unwrap();
        let snapshot = Snapshot::from_recipients(&people, zone);
        let bound = segment.bind(&snapshot).unwrap();
        let anchor = anchor_field(&rule, true).or_else(|| anchor_field(&rule, false));
        let (mut direct, mut columnar) = (Vec::new(), Vec::new());
        for (i, r) in people.iter().enumerate() {
            let expected = reference(&rule, r, &cx);
            let outcome = segment.evaluate(r, &mut direct);
            prop_assert_eq!(bound.evaluate(i, &mut columnar), outcome);
            prop_assert_eq!(&columnar, &direct);
            prop_assert_eq!(segment.matches(r), outcome.is_match());
            prop_assert_eq!(bound.matches(i), outcome.is_match());
            match expected {
                V::F => prop_assert_eq!(outcome, Outcome::NoMatch),
                V::T => prop_assert_eq!(outcome, Outcome::Recipient),
                V::S(set) => {
                    prop_assert_eq!(outcome, Outcome::Bookings);
                    let want: Vec<BookingMatch> = set
                        .into_iter()
                        .map(|index| BookingMatch {
                            index,
                            anchor: anchor.and_then(|f| booking_date(r, index, f, zone)),
                        })
                        .collect();
                    prop_assert_eq!(&direct, &want);
                }
            }
            let negated = Segment::compile(&Rule::Not(Box::new(rule.clone())), &options).unwrap();
            prop_assert_ne!(negated.matches(r), outcome.is_match());
        }
        prop_assert_eq!(bound.count(class), segment.count(&people, class));
        let expected_rows: Vec<usize> = (0..people.len()).filter(|i| segment.matches(&people[*i])).collect();
        prop_assert_eq!(bound.matching_rows(), expected_rows);
        let round_trip = Rule::from_value(&serde_json::to_value(&rule).unwrap()).unwrap();
        prop_assert_eq!(round_trip, rule);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(120))]

    /// Lists long enough for whole 64-row words, where the snapshot narrows a word at a time.
    #[test]
    fn the_snapshot_audience_equals_row_by_row_evaluation_on_long_lists(
        (rule, people, today) in bases().prop_flat_map(|base| (
            rule(base),
            crowd(base),
            prop_oneof![3 => date_close(base), 1 => date_near(base)],
        )),
        zone in pick(&ZONES),
        class in pick(&[MessageClass::Advertising, MessageClass::Service]),
    ) {
        let options = CompileOptions::new(today, zone);
        let segment = Segment::compile(&rule, &options).unwrap();
        let snapshot = Snapshot::from_recipients(&people, zone);
        let bound = segment.bind(&snapshot).unwrap();
        let expected: Vec<usize> = (0..people.len()).filter(|i| segment.matches(&people[*i])).collect();
        prop_assert_eq!(bound.matching_rows(), expected);
        prop_assert_eq!(bound.count(class), segment.count(&people, class));
    }
}
