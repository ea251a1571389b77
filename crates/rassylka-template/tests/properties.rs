//! Property tests: parsing never panics, rendering matches a plain reference, and converted
//! templates render identically in every dialect.

use chrono::NaiveDate;
use proptest::prelude::*;
use rassylka_model::{Gender, Recipient};
use rassylka_template::{
    CompileOptions, Context, Dialect, Formatting, Mode, OutputFormat, Template, Values, Variable,
};

fn dialects() -> Vec<Dialect> {
    vec![
        Dialect::probonus(),
        Dialect::bonusplus(),
        Dialect::ecvi(),
        Dialect::itigris(),
        Dialect::custom("angle", "<", ">").unwrap(),
        Dialect::custom("double-angle", "<<", ">>")
            .unwrap()
            .with_alias("guest", "full_name")
            .unwrap(),
        Dialect::custom("percent", "%", "%")
            .unwrap()
            .with_alias("name", "first_name")
            .unwrap(),
    ]
}

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Slot(Variable, Option<String>),
}

fn piece(literal: &'static str) -> impl Strategy<Value = Piece> {
    prop_oneof![
        3 => literal.prop_map(Piece::Text),
        2 => (prop::sample::select(Variable::ALL.to_vec()), prop::option::of("[a-zа-я !]{0,6}"))
            .prop_map(|(v, f)| Piece::Slot(v, f)),
    ]
}

fn write(pieces: &[Piece], dialect: &Dialect) -> String {
    let mut out = String::new();
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Slot(v, fallback) => {
                out.push_str(dialect.open());
                out.push_str(dialect.tag_for(&rassylka_template::Target::Variable(*v)));
                if let Some(f) = fallback {
                    out.push('|');
                    out.push_str(f);
                }
                out.push_str(dialect.close());
            }
        }
    }
    out
}

fn recipient() -> impl Strategy<Value = Recipient> {
    let name = prop::option::of(prop::sample::select(vec![
        "Анна",
        "O'Brien",
        "<b>&",
        "Ёж",
        " ",
        "Жан-Поль",
    ]));
    (
        name.clone(),
        name.clone(),
        name,
        prop::option::of(prop::sample::select(vec![Gender::Male, Gender::Female])),
        prop::option::of((-1_000_000i64..10_000_000, 0u32..3)),
        prop::option::of(0u32..3000),
        prop::option::of((
            prop::option::of(prop::sample::select(vec!["12", " ", "<b>&", "Люкс"])),
            prop::option::of(prop::sample::select(vec!["B-1", "", "O'Hara"])),
            prop::option::of(0u64..400),
        )),
        prop::sample::select(vec!["text", "number", "null", "blank"]),
    )
        .prop_map(|(first, last, middle, gender, balance, order, booking, salon)| Recipient {
            id: "r".into(),
            first_name: first.map(Into::into),
            last_name: last.map(Into::into),
            middle_name: middle.map(Into::into),
            gender,
            balance: balance.map(|(m, s)| rassylka_model::Money(rust_decimal::Decimal::new(m, s))),
            fields: order
                .map(|o| {
                    let salon = match salon {
                        "text" => serde_json::json!("+7 (495) 000-00-00"),
                        "number" => serde_json::json!(4950000000_i64),
                        "blank" => serde_json::json!("  "),
                        _ => serde_json::Value::Null,
                    };
                    serde_json::json!({"order_id": format!("A-{o}"), "bonus_expires_on": "2027-02-28", "salon_phone": salon})
                })
                .and_then(|v| v.as_object().cloned())
                .unwrap_or_default(),
            bookings: booking
                .map(|(room, id, days)| rassylka_model::Booking {
                    room: room.map(Into::into),
                    id: id.map(Into::into),
                    check_in: days.map(|d| today() + chrono::Days::new(d)),
                    check_out: days.map(|d| today() + chrono::Days::new(d + 3)),
                    ..rassylka_model::Booking::default()
                })
                .into_iter()
                .collect(),
            ..Recipient::default()
        })
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
}

fn formats() -> impl Strategy<Value = OutputFormat> {
    prop::sample::select(vec![
        OutputFormat::Plain,
        OutputFormat::Html,
        OutputFormat::TelegramHtml,
        OutputFormat::MarkdownV2,
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn compiling_never_panics_and_points_inside_the_text(text in "[{}\\[\\]:|<>%a-zИМЯи_ \n0-9]{0,40}", d in 0usize..7) {
        let dialect = &dialects()[d];
        for options in [CompileOptions::default(), CompileOptions::lenient()] {
            match Template::compile_with(&text, dialect, &options) {
                Ok(t) => {
                    for w in t.warnings().iter().chain([]) {
                        prop_assert!(w.line >= 1 && w.line <= text.lines().count().max(1));
                    }
                    let r = Recipient::default();
                    let _ = t.render(&Context::new(&r, today()), OutputFormat::MarkdownV2);
                }
                Err(e) => {
                    prop_assert_eq!(options.mode, Mode::Strict);
                    let (line, column) = e.position().unwrap();
                    let line_text = text.split('\n').nth(line - 1).unwrap();
                    prop_assert!(column <= line_text.chars().count());
                }
            }
        }
    }

    #[test]
    fn rendering_equals_a_plain_reference(
        pieces in prop::collection::vec(piece("[a-zа-я ,.!]{1,8}"), 0..8),
        r in recipient(),
        d in 0usize..7,
        format in formats(),
    ) {
        let dialect = &dialects()[d];
        let template = Template::compile(&write(&pieces, dialect), dialect).unwrap();
        let (out, report) = template.render(&Context::new(&r, today()), format);
        // The reference: render every placeholder alone and glue the pieces.
        let mut expected = String::new();
        let mut missing = 0;
        for p in &pieces {
            match p {
                Piece::Text(t) => expected.push_str(t),
                Piece::Slot(v, fallback) => {
                    let alone = Template::compile(&write(&[Piece::Slot(*v, None)], dialect), dialect).unwrap();
                    let (value, rep) = alone.render(&Context::new(&r, today()), format);
                    if rep.missing == 1 {
                        match fallback {
                            Some(f) => expected.push_str(f),
                            None => missing += 1,
                        }
                    } else {
                        expected.push_str(&value);
                    }
                }
            }
        }
        prop_assert_eq!(out, expected);
        prop_assert_eq!(report.missing, missing);
    }

    #[test]
    fn converted_templates_render_identically(
        pieces in prop::collection::vec(piece("[a-zа-я ,.!]{1,8}"), 0..8),
        tricky in prop::collection::vec(piece("[a-zИМЯ{}\\[\\]:|<>% ]{1,8}"), 0..6),
        r in recipient(),
        from in 0usize..7,
        to in 0usize..7,
        format in formats(),
    ) {
        let all = dialects();
        let (source_dialect, target_dialect) = (&all[from], &all[to]);
        let mut values = Values::new();
        values.insert_text("bonus_accrued", "300");
        // Plain literals always convert.
        let plain = Template::compile(&write(&pieces, source_dialect), source_dialect).unwrap();
        let converted = plain.convert(target_dialect).unwrap();
        let again = Template::compile(&converted, target_dialect).unwrap();
        let ctx = Context::new(&r, today()).values(&values);
        prop_assert_eq!(plain.render(&ctx, format).0, again.render(&ctx, format).0);

        // Literals with delimiter characters convert whenever the target can say the same thing.
        let text = write(&tricky, source_dialect);
        let source = Template::compile_with(&text, source_dialect, &CompileOptions::lenient()).unwrap();
        match source.convert(target_dialect) {
            Ok(converted) => {
                let again = Template::compile_with(&converted, target_dialect, &CompileOptions::lenient()).unwrap();
                prop_assert_eq!(source.render(&ctx, format).0, again.render(&ctx, format).0);
                prop_assert_eq!(source.placeholders().len(), again.placeholders().len());
            }
            Err(e) => {
                let (line, _) = e.position().unwrap();
                prop_assert!(line <= text.split('\n').count());
            }
        }
    }

    #[test]
    fn a_prepared_template_renders_what_the_template_renders(
        pieces in prop::collection::vec(piece("[a-zа-я ,.!<&]{1,8}"), 0..10),
        r in recipient(),
        d in 0usize..7,
        format in formats(),
        accrued in prop::option::of(0i64..100_000),
        first in prop::option::of(prop::sample::select(vec!["", "Гость", "<b>"])),
        order in prop::option::of(prop::sample::select(vec!["", "Z-1"])),
    ) {
        let dialect = &dialects()[d];
        let template = Template::compile(&write(&pieces, dialect), dialect).unwrap();
        let mut values = Values::new();
        if let Some(a) = accrued { values.insert("bonus_accrued", a); }
        if let Some(f) = first { values.insert_text("first_name", f); }
        if let Some(o) = order { values.insert_text("order_id", o); }
        let formatting = Formatting::default();
        let prepared = template.prepare(today(), &values, &formatting, format);
        let ctx = Context::new(&r, today()).values(&values);
        prop_assert_eq!(prepared.render(&r, None), template.render(&ctx, format));
    }
}
