//! Segment counting on one million generated recipients: the columnar snapshot, the same
//! segment over the `Recipient` structs, and the same count in an in-memory SQLite database.
//!
//! The recipients come from a deterministic generator (5% with Telegram, 60% with a phone,
//! birthdays across the year, 0–5 bookings and 0–20 purchases each). Setup checks that the
//! snapshot, the structs and SQLite all give the same count before anything is measured.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Instant;

use chrono::{DateTime, Datelike, Days, FixedOffset, NaiveDate, TimeZone};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rassylka_model::{
    Booking, ChannelKind, Consent, Contacts, Gender, MessageClass, Money, Purchase, Recipient,
};
use rassylka_segment::{CompileOptions, Rule, Segment, Snapshot, Tz};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use sqlx::{AssertSqlSafe, Connection, SqliteConnection};

const RECIPIENTS: usize = 1_000_000;
const TODAY: (i32, u32, u32) = (2026, 11, 28);

/// SplitMix64: deterministic and fast.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(TODAY.0, TODAY.1, TODAY.2).unwrap()
}

/// A moment on the day `days_ago` days before `from`, at +03:00.
fn instant_before(rng: &mut Rng, from: NaiveDate, days_ago: u64) -> DateTime<FixedOffset> {
    let day = from - Days::new(rng.below(days_ago.max(1)));
    let offset = FixedOffset::east_opt(3 * 3600).unwrap();
    let seconds = rng.below(86_400) as u32;
    let time = chrono::NaiveTime::from_num_seconds_from_midnight_opt(seconds, 0).unwrap();
    offset.from_local_datetime(&day.and_time(time)).unwrap()
}

fn generate(n: usize) -> Vec<Recipient> {
    let mut rng = Rng(0x5eed);
    let today = today();
    let groups = [
        "Bronze", "Bronze", "Bronze", "Silver", "Silver", "Gold", "Blocked",
    ];
    let countries = ["RU", "RU", "RU", "RU", "RU", "RU", "KZ", "BY", "DE", "TR"];
    (0..n)
        .map(|i| {
            let birth = (!rng.chance(5)).then(|| {
                let age_days = 16 * 365 + rng.below(64 * 365);
                today - Days::new(age_days)
            });
            let phone = if rng.chance(60) {
                Some(if rng.chance(3) {
                    "12-34".to_owned()
                } else {
                    format!("+79{:09}", rng.below(1_000_000_000))
                })
            } else {
                None
            };
            let email = rng
                .chance(50)
                .then(|| format!("user{i}@{}", if rng.chance(5) { "" } else { "example.com" }));
            let bookings = (0..rng.below(6))
                .map(|b| {
                    let check_in = today + Days::new(rng.below(180)) - Days::new(60);
                    let booked = check_in - Days::new(1 + rng.below(90));
                    Booking {
                        id: Some(format!("b-{i}-{b}")),
                        check_in: Some(check_in),
                        check_out: Some(check_in + Days::new(1 + rng.below(7))),
                        booked_at: Some(instant_before(&mut rng, booked, 1)),
                        paid_at: rng.chance(70).then(|| instant_before(&mut rng, booked, 1)),
                        room: None,
                    }
                })
                .collect();
            let purchases = (0..rng.below(21))
                .map(|_| Purchase {
                    at: Some(instant_before(&mut rng, today, 365)),
                    amount: Some(Money(Decimal::new(10_000 + rng.below(990_000) as i64, 2))),
                    promotion_id: None,
                })
                .collect();
            let mut segments = Vec::new();
            if rng.chance(10) {
                segments.push("Командировочные".to_owned());
            }
            if rng.chance(5) {
                segments.push("Семьи".to_owned());
            }
            Recipient {
                id: format!("c-{i}"),
                gender: match rng.below(20) {
                    0 => None,
                    1..=10 => Some(Gender::Female),
                    _ => Some(Gender::Male),
                },
                birth_date: birth,
                registered_at: Some(instant_before(&mut rng, today, 2000)),
                country: (!rng.chance(10))
                    .then(|| countries[rng.below(countries.len() as u64) as usize].to_owned()),
                vip: rng.chance(3),
                segments,
                loyalty_group: (!rng.chance(3))
                    .then(|| groups[rng.below(groups.len() as u64) as usize].to_owned()),
                balance: rng
                    .chance(90)
                    .then(|| Money(Decimal::new(rng.below(5_000_000) as i64, 2))),
                contacts: Contacts {
                    email,
                    phone,
                    telegram_chat_id: rng.chance(5).then(|| rng.below(1 << 40) as i64),
                    vk_user_id: rng.chance(10).then(|| rng.below(1 << 30) as i64),
                    wallet_push: rng.chance(8).then(|| format!("card-{i}")),
                },
                consent: Consent {
                    advertising: rng.chance(70),
                },
                no_mailings: rng.chance(5),
                bookings,
                purchases,
                ..Recipient::default()
            }
        })
        .collect()
}

const LOYALTY: &str = r#"{"all": [
    {"gender": "female"},
    {"age": {"gte": 25, "lt": 45}},
    {"balance": {"gte": 500}},
    {"loyalty_group": {"in": ["Silver", "Gold"]}},
    {"purchases": {"within_days": 90, "count": {"gte": 2}}},
    {"reachable": "sms"}
]}"#;

const HOTEL: &str = r#"{"all": [
    {"country": {"not_in": ["RU"]}},
    {"any": [{"vip": true}, {"segment": "Командировочные"}]},
    {"date": {"dynamic": {"field": "check_in", "days": 3, "when": "before"}}}
]}"#;

fn day_number(date: NaiveDate) -> i32 {
    date.num_days_from_ce()
}

fn cents(money: Money) -> i64 {
    (money.0 * Decimal::ONE_HUNDRED).to_i64().unwrap()
}

fn sql_text(value: Option<&str>) -> String {
    value.map_or("NULL".to_owned(), |v| {
        format!("'{}'", v.replace('\'', "''"))
    })
}

/// Loads the same rows into SQLite: what the rules need, one table per list.
async fn load(conn: &mut SqliteConnection, people: &[Recipient], zone: Tz) {
    sqlx::raw_sql(
        "CREATE TABLE recipients (id INTEGER PRIMARY KEY, gender INTEGER, birth INTEGER,
             balance INTEGER, grp TEXT, country TEXT, vip INTEGER, sms INTEGER);
         CREATE TABLE purchases (rid INTEGER, day INTEGER, amount INTEGER);
         CREATE TABLE bookings (rid INTEGER, check_in INTEGER);
         CREATE TABLE tags (rid INTEGER, tag TEXT);",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    let mut tx = conn.begin().await.unwrap();
    for (chunk_index, chunk) in people.chunks(2_000).enumerate() {
        let (mut rows, mut purchases, mut bookings, mut tags) =
            (String::new(), String::new(), String::new(), String::new());
        for (offset, r) in chunk.iter().enumerate() {
            let id = chunk_index * 2_000 + offset;
            let gender = match r.gender {
                None => 0,
                Some(Gender::Male) => 1,
                Some(Gender::Female) => 2,
            };
            let birth = r
                .birth_date
                .map_or("NULL".into(), |b| day_number(b).to_string());
            let balance = r.balance.map_or("NULL".into(), |b| cents(b).to_string());
            let sms = i32::from(r.address(ChannelKind::Sms).is_ok());
            let _ = write!(
                rows,
                "{}({id},{gender},{birth},{balance},{},{},{},{sms})",
                if rows.is_empty() { "" } else { "," },
                sql_text(r.loyalty_group.as_deref()),
                sql_text(r.country.as_deref()),
                i32::from(r.vip),
            );
            for p in &r.purchases {
                let (Some(at), Some(amount)) = (p.at, p.amount) else {
                    continue;
                };
                let day = day_number(at.with_timezone(&zone).date_naive());
                let sep = if purchases.is_empty() { "" } else { "," };
                let _ = write!(purchases, "{sep}({id},{day},{})", cents(amount));
            }
            for b in &r.bookings {
                if let Some(check_in) = b.check_in {
                    let sep = if bookings.is_empty() { "" } else { "," };
                    let _ = write!(bookings, "{sep}({id},{})", day_number(check_in));
                }
            }
            for t in &r.segments {
                let sep = if tags.is_empty() { "" } else { "," };
                let _ = write!(tags, "{sep}({id},{})", sql_text(Some(t)));
            }
        }
        for (table, values) in [
            ("recipients", rows),
            ("purchases", purchases),
            ("bookings", bookings),
            ("tags", tags),
        ] {
            if !values.is_empty() {
                let sql = format!("INSERT INTO {table} VALUES {values}");
                sqlx::raw_sql(AssertSqlSafe(sql))
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
        }
    }
    tx.commit().await.unwrap();
    sqlx::raw_sql(
        "CREATE INDEX purchases_by_rid ON purchases (rid, day);
         CREATE INDEX bookings_by_rid ON bookings (rid, check_in);
         CREATE INDEX tags_by_rid ON tags (rid, tag);
         ANALYZE;",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
}

/// The loyalty rule as SQL: age 25..45 is a birth range, the 90 days are [D−89, D].
fn loyalty_sql() -> String {
    let today = today();
    let oldest = today.with_year(today.year() - 45).unwrap() + Days::new(1);
    let youngest = today.with_year(today.year() - 25).unwrap();
    let window_start = today - Days::new(89);
    format!(
        "SELECT COUNT(*) FROM recipients r
         WHERE r.gender = 2 AND r.birth BETWEEN {} AND {} AND r.balance >= 50000
           AND r.grp IN ('Silver', 'Gold') AND r.sms = 1
           AND (SELECT COUNT(*) FROM purchases p
                WHERE p.rid = r.id AND p.day BETWEEN {} AND {}) >= 2",
        day_number(oldest),
        day_number(youngest),
        day_number(window_start),
        day_number(today),
    )
}

fn hotel_sql() -> String {
    let check_in = today() + Days::new(3);
    format!(
        "SELECT COUNT(*) FROM recipients r
         WHERE (r.country IS NULL OR r.country NOT IN ('RU'))
           AND (r.vip = 1 OR EXISTS (SELECT 1 FROM tags t
                                     WHERE t.rid = r.id AND t.tag = 'Командировочные'))
           AND EXISTS (SELECT 1 FROM bookings b WHERE b.rid = r.id AND b.check_in = {})",
        day_number(check_in)
    )
}

async fn sqlite_count(conn: &mut SqliteConnection, sql: &str) -> u64 {
    let count: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    count as u64
}

fn benches(c: &mut Criterion) {
    let zone: Tz = "Europe/Moscow".parse().unwrap();
    let started = Instant::now();
    let people = generate(RECIPIENTS);
    eprintln!(
        "generated {RECIPIENTS} recipients in {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    let snapshot = Snapshot::from_recipients(&people, zone);
    eprintln!("built the snapshot in {:?}", started.elapsed());

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let started = Instant::now();
    let mut conn = runtime.block_on(async {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        load(&mut conn, &people, zone).await;
        conn
    });
    eprintln!("loaded SQLite in {:?}", started.elapsed());

    let options = CompileOptions::new(today(), zone);
    let class = MessageClass::Service;
    for (name, rule, sql) in [
        ("loyalty", LOYALTY, loyalty_sql()),
        ("hotel", HOTEL, hotel_sql()),
    ] {
        let segment = Segment::compile(&Rule::from_json(rule).unwrap(), &options).unwrap();
        let bound = segment.bind(&snapshot).unwrap();
        let columnar = bound.count(class);
        let direct = segment.count(&people, class);
        let in_sqlite = runtime.block_on(sqlite_count(&mut conn, &sql));
        assert_eq!(columnar, direct, "{name}: snapshot and structs disagree");
        assert_eq!(
            columnar.matched, in_sqlite,
            "{name}: snapshot and SQLite disagree"
        );
        assert!(
            columnar.matched > 0,
            "{name}: an empty audience measures nothing"
        );
        eprintln!("{name}: {} of {RECIPIENTS} match", columnar.matched);

        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(RECIPIENTS as u64));
        group.sample_size(10);
        group.bench_function("snapshot", |b| b.iter(|| black_box(bound.count(class))));
        group.bench_function("recipients", |b| {
            b.iter(|| black_box(segment.count(black_box(&people), class)))
        });
        group.bench_function("sqlite", |b| {
            b.iter(|| runtime.block_on(sqlite_count(&mut conn, black_box(&sql))))
        });
        group.finish();
    }
}

criterion_group!(segment, benches);
criterion_main!(segment);
