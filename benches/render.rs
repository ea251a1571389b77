//! Template rendering for 1 000 different recipients in turn: rassylka against minijinja (a
//! runtime engine), askama (compile-time) and a hand-written renderer (the practical limit).
//!
//! Workloads: (a) `sms` — a ~1 KB Cyrillic text with 6 placeholders, plain; (b) `email` — a
//! ~4 KB HTML letter with 10 placeholders, HTML-escaped. Every engine renders into one reused
//! buffer (minijinja sizes its own string); all four are checked to produce identical text
//! before timing. Every engine does the whole per-recipient job inside the timed loop: from the
//! same typed `Recipient` (decimal balance, civil dates, fields map) to the final text; values
//! that are the same for the whole mailing (`today`, the bonus amount and date) are formatted
//! once beforehand for every engine (rassylka does that in `Template::prepare`). askama gets
//! `Display` wrappers that format straight into its output; minijinja gets a context built per
//! recipient, as an application would build it.
//!
//! `cargo bench --bench render`

use std::collections::BTreeMap;
use std::hint::black_box;

use askama::Template as _;
use chrono::{Datelike, NaiveDate};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rassylka_model::{Booking, Gender, Money, Recipient};
use rassylka_template::{Dialect, Formatting, OutputFormat, Template, Values};
use rust_decimal::Decimal;

const SMS: &str = include_str!("templates/sms.txt");
const EMAIL: &str = include_str!("templates/email.html");
const RECIPIENTS: usize = 1000;

const SMS_VARS: [&str; 6] = [
    "first_name",
    "middle_name",
    "balance",
    "bonus_accrued",
    "bonus_expires_on",
    "today",
];
const EMAIL_VARS: [&str; 10] = [
    "salutation",
    "full_name",
    "booking_id",
    "room",
    "check_in",
    "check_out",
    "order_id",
    "first_name",
    "balance",
    "today",
];

#[derive(askama::Template)]
#[template(path = "sms.txt")]
struct SmsAskama<'a> {
    first_name: &'a str,
    middle_name: &'a str,
    balance: MoneyText,
    bonus_accrued: &'a str,
    bonus_expires_on: &'a str,
    today: &'a str,
}

#[derive(askama::Template)]
#[template(path = "email.html")]
struct EmailAskama<'a> {
    salutation: &'a str,
    full_name: FullNameText<'a>,
    booking_id: &'a str,
    room: &'a str,
    check_in: DateText,
    check_out: DateText,
    order_id: &'a str,
    first_name: &'a str,
    balance: MoneyText,
    today: &'a str,
}

/// askama prints any `Display`; these format straight into its output.
struct MoneyText(Decimal);
struct DateText(NaiveDate);
struct FullNameText<'a>(&'a Recipient);

impl std::fmt::Display for MoneyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        push_money(self.0, &mut s);
        f.write_str(&s)
    }
}

impl std::fmt::Display for DateText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:02}.{:02}.{:04}",
            self.0.day(),
            self.0.month(),
            self.0.year()
        )
    }
}

impl std::fmt::Display for FullNameText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.0;
        let mut first = true;
        for part in [&r.last_name, &r.first_name, &r.middle_name]
            .into_iter()
            .flatten()
        {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            f.write_str(part)?;
        }
        Ok(())
    }
}

/// A deterministic generator: the same 1 000 people every run.
fn recipients() -> Vec<Recipient> {
    const FIRST: [&str; 8] = [
        "Анна",
        "Пётр",
        "Мария",
        "Константин",
        "Ёлка",
        "Жан-Поль",
        "Светлана",
        "Ли",
    ];
    const MIDDLE: [&str; 6] = [
        "Сергеевна",
        "Ильич",
        "Олеговна",
        "Александрович",
        "Петровна",
        "Ким",
    ];
    const LAST: [&str; 6] = [
        "Иванова",
        "Смирнов",
        "Кузнецова",
        "Рога & Копыта",
        "Орлов",
        "<Ли>",
    ];
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..RECIPIENTS)
        .map(|i| {
            let n = next();
            let check_in =
                NaiveDate::from_ymd_opt(2026, 12, 1).unwrap() + chrono::Days::new(n % 60);
            Recipient {
                id: format!("c-{i}"),
                first_name: Some(FIRST[(n % 8) as usize].into()),
                middle_name: Some(MIDDLE[((n >> 8) % 6) as usize].into()),
                last_name: Some(LAST[((n >> 16) % 6) as usize].into()),
                gender: [Some(Gender::Male), Some(Gender::Female), None][((n >> 24) % 3) as usize],
                balance: Some(Money(Decimal::new((n >> 32) as i64 % 10_000_000, 2))),
                bookings: vec![Booking {
                    id: Some(format!("b-{}", n % 100_000)),
                    check_in: Some(check_in),
                    check_out: Some(check_in + chrono::Days::new(1 + (n >> 40) % 9)),
                    room: Some(format!("{}", 100 + (n >> 44) % 400)),
                    ..Booking::default()
                }],
                fields: serde_json::json!({"order_id": format!("A-{}&{}", i, n % 97)})
                    .as_object()
                    .unwrap()
                    .clone(),
                ..Recipient::default()
            }
        })
        .collect()
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
}

fn mailing_values() -> Values {
    let mut values = Values::new();
    values
        .insert_text("bonus_accrued", "300")
        .insert_text("bonus_expires_on", "2026-12-06");
    values
}

/// The practical limit: literal parts and variables pushed into a reused `String` by code
/// written for exactly these variables.
enum Part {
    Literal(String),
    Variable(Var),
}

#[derive(Clone, Copy)]
enum Var {
    FirstName,
    MiddleName,
    FullName,
    Salutation,
    Balance,
    Room,
    CheckIn,
    CheckOut,
    BookingId,
    OrderId,
    /// A value the same for the whole mailing, formatted once.
    Constant(usize),
}

fn var_of(name: &str, constants: &mut Vec<String>) -> Var {
    let constant = |text: &str, constants: &mut Vec<String>| {
        constants.push(text.to_owned());
        Var::Constant(constants.len() - 1)
    };
    match name {
        "first_name" => Var::FirstName,
        "middle_name" => Var::MiddleName,
        "full_name" => Var::FullName,
        "salutation" => Var::Salutation,
        "balance" => Var::Balance,
        "room" => Var::Room,
        "check_in" => Var::CheckIn,
        "check_out" => Var::CheckOut,
        "booking_id" => Var::BookingId,
        "order_id" => Var::OrderId,
        "bonus_accrued" => constant("300", constants),
        "bonus_expires_on" => constant("06.12.2026", constants),
        "today" => constant("22.11.2026", constants),
        other => panic!("unknown {other}"),
    }
}

fn hand_parts(jinja: &str, constants: &mut Vec<String>) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut rest = jinja;
    while let Some(start) = rest.find("{{ ") {
        parts.push(Part::Literal(rest[..start].to_owned()));
        let end = rest[start..].find(" }}").unwrap() + start;
        parts.push(Part::Variable(var_of(&rest[start + 3..end], constants)));
        rest = &rest[end + 3..];
    }
    parts.push(Part::Literal(rest.to_owned()));
    parts
}

fn push_escaped(value: &str, escape: bool, out: &mut String) {
    if !escape {
        return out.push_str(value);
    }
    let mut from = 0;
    for (i, b) in value.bytes().enumerate() {
        let entity = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        out.push_str(&value[from..i]);
        out.push_str(entity);
        from = i + 1;
    }
    out.push_str(&value[from..]);
}

fn push_number(n: u64, width: usize, out: &mut String) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut rest = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 && digits.len() - i >= width {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[i..]).unwrap());
}

/// `1 250,50`, `1 500`: amounts here have at most two decimals.
fn push_money(value: Decimal, out: &mut String) {
    let cents = value.mantissa() as u64 * 10u64.pow(2 - value.scale());
    let (whole, fraction) = (cents / 100, cents % 100);
    if whole >= 1_000_000 {
        push_number(whole / 1_000_000, 1, out);
        out.push(' ');
        push_number(whole / 1000 % 1000, 3, out);
        out.push(' ');
        push_number(whole % 1000, 3, out);
    } else if whole >= 1000 {
        push_number(whole / 1000, 1, out);
        out.push(' ');
        push_number(whole % 1000, 3, out);
    } else {
        push_number(whole, 1, out);
    }
    if fraction != 0 {
        out.push(',');
        push_number(fraction, 2, out);
    }
}

fn push_date(date: NaiveDate, out: &mut String) {
    push_number(u64::from(date.day()), 2, out);
    out.push('.');
    push_number(u64::from(date.month()), 2, out);
    out.push('.');
    push_number(date.year() as u64, 4, out);
}

fn push_var(var: Var, r: &Recipient, constants: &[String], escape: bool, out: &mut String) {
    let booking = r.bookings.first();
    match var {
        Var::FirstName => push_escaped(r.first_name.as_deref().unwrap_or(""), escape, out),
        Var::MiddleName => push_escaped(r.middle_name.as_deref().unwrap_or(""), escape, out),
        Var::FullName => {
            let mut first = true;
            for part in [&r.last_name, &r.first_name, &r.middle_name]
                .into_iter()
                .flatten()
            {
                if !first {
                    out.push(' ');
                }
                first = false;
                push_escaped(part, escape, out);
            }
        }
        Var::Salutation => out.push_str(match r.gender {
            Some(Gender::Male) => "Уважаемый",
            Some(Gender::Female) => "Уважаемая",
            None => "Уважаемый(ая)",
        }),
        Var::Balance => push_money(r.balance.unwrap().0, out),
        Var::Room => push_escaped(
            booking.and_then(|b| b.room.as_deref()).unwrap_or(""),
            escape,
            out,
        ),
        Var::BookingId => push_escaped(
            booking.and_then(|b| b.id.as_deref()).unwrap_or(""),
            escape,
            out,
        ),
        Var::CheckIn => push_date(booking.and_then(|b| b.check_in).unwrap(), out),
        Var::CheckOut => push_date(booking.and_then(|b| b.check_out).unwrap(), out),
        Var::OrderId => push_escaped(
            r.fields
                .get("order_id")
                .and_then(|v| v.as_str())
                .unwrap_or(""),
            escape,
            out,
        ),
        Var::Constant(i) => out.push_str(&constants[i]),
    }
}

fn render_hand(
    parts: &[Part],
    r: &Recipient,
    constants: &[String],
    escape: bool,
    out: &mut String,
) {
    for part in parts {
        match part {
            Part::Literal(text) => out.push_str(text),
            Part::Variable(var) => push_var(*var, r, constants, escape, out),
        }
    }
}

/// Every variable of `r` as text, the way minijinja's context takes them.
fn strings_of(vars: &[Var], r: &Recipient, constants: &[String]) -> Vec<String> {
    vars.iter()
        .map(|var| {
            let mut text = String::new();
            push_var(*var, r, constants, false, &mut text);
            text
        })
        .collect()
}

fn workload(c: &mut Criterion, name: &str, jinja: &str, vars: &[&str], format: OutputFormat) {
    let people = recipients();
    let values = mailing_values();
    let escape = format == OutputFormat::Html;

    let ours = Template::compile(
        &jinja.replace("{{ ", "{{").replace(" }}", "}}"),
        &Dialect::ecvi(),
    )
    .unwrap()
    .prepare(today(), &values, &Formatting::default(), format);
    let mut constants = Vec::new();
    let hand = hand_parts(jinja, &mut constants);
    let mut env = minijinja::Environment::new();
    let file = if escape { "t.html" } else { "t.txt" };
    env.add_template(file, jinja).unwrap();
    let mj = env.get_template(file).unwrap();
    let resolved: Vec<Var> = vars.iter().map(|v| var_of(v, &mut constants)).collect();
    let minijinja_render = |r: &Recipient| {
        let strings = strings_of(&resolved, r, &constants);
        let map: BTreeMap<&str, minijinja::Value> = vars
            .iter()
            .zip(strings)
            .map(|(k, v)| (*k, minijinja::Value::from(v)))
            .collect();
        mj.render(minijinja::Value::from(map)).unwrap()
    };
    let (accrued, expires, today_text) = ("300", "06.12.2026", "22.11.2026");
    let askama_render = |r: &Recipient, out: &mut String| {
        let booking = &r.bookings[0];
        if escape {
            let t = EmailAskama {
                salutation: match r.gender {
                    Some(Gender::Male) => "Уважаемый",
                    Some(Gender::Female) => "Уважаемая",
                    None => "Уважаемый(ая)",
                },
                full_name: FullNameText(r),
                booking_id: booking.id.as_deref().unwrap_or(""),
                room: booking.room.as_deref().unwrap_or(""),
                check_in: DateText(booking.check_in.unwrap()),
                check_out: DateText(booking.check_out.unwrap()),
                order_id: r
                    .fields
                    .get("order_id")
                    .and_then(|v| v.as_str())
                    .unwrap_or(""),
                first_name: r.first_name.as_deref().unwrap_or(""),
                balance: MoneyText(r.balance.unwrap().0),
                today: today_text,
            };
            t.render_into(out).unwrap();
        } else {
            let t = SmsAskama {
                first_name: r.first_name.as_deref().unwrap_or(""),
                middle_name: r.middle_name.as_deref().unwrap_or(""),
                balance: MoneyText(r.balance.unwrap().0),
                bonus_accrued: accrued,
                bonus_expires_on: expires,
                today: today_text,
            };
            t.render_into(out).unwrap();
        }
    };

    // Same text from every engine, or the comparison means nothing. askama writes `&#38;` for
    // `&`, which reads the same.
    for (i, r) in people.iter().enumerate() {
        let (a, _) = ours.render(r, None);
        let mut b = String::new();
        render_hand(&hand, r, &constants, escape, &mut b);
        let c_ = minijinja_render(r);
        let mut d = String::new();
        askama_render(r, &mut d);
        assert_eq!(a, b, "hand-written differs for {i}");
        assert_eq!(a, c_, "minijinja differs for {i}");
        assert_eq!(
            a,
            d.replace("&#38;", "&amp;")
                .replace("&#60;", "&lt;")
                .replace("&#62;", "&gt;"),
            "askama differs for {i}"
        );
    }

    let mut group = c.benchmark_group(format!("render/{name}"));
    group.throughput(Throughput::Elements(RECIPIENTS as u64));
    let mut out = String::with_capacity(2 * jinja.len());
    group.bench_function("rassylka", |b| {
        b.iter(|| {
            for r in &people {
                out.clear();
                black_box(ours.render_into(r, None, &mut out));
                black_box(&out);
            }
        })
    });
    group.bench_function("hand-written", |b| {
        b.iter(|| {
            for r in &people {
                out.clear();
                render_hand(&hand, r, &constants, escape, &mut out);
                black_box(&out);
            }
        })
    });
    group.bench_function("askama", |b| {
        b.iter(|| {
            for r in &people {
                out.clear();
                askama_render(r, &mut out);
                black_box(&out);
            }
        })
    });
    group.bench_function("minijinja", |b| {
        b.iter(|| {
            for r in &people {
                black_box(minijinja_render(r));
            }
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    workload(c, "sms", SMS, &SMS_VARS, OutputFormat::Plain);
    workload(c, "email", EMAIL, &EMAIL_VARS, OutputFormat::Html);
}

criterion_group!(render, benches);
criterion_main!(render);
