//! Compiling and rendering through the public API: dialects, grammar, values, formats.

use chrono::NaiveDate;
use rassylka_model::Recipient;
use rassylka_template::{
    CompileOptions, Context, DateStyle, Dialect, Formatting, OutputFormat, Target, Template,
    TemplateError, Values, Variable,
};

fn anna() -> Recipient {
    serde_json::from_str(
        r#"{"id": "c-1001", "first_name": "Анна", "last_name": "Иванова", "middle_name": "Сергеевна",
            "gender": "female", "balance": 1250.5,
            "bookings": [{"id": "b-77", "check_in": "2026-12-01", "check_out": "2026-12-05", "room": "101"},
                         {"id": "b-78", "check_in": "2027-01-10", "room": "205"}],
            "fields": {"order_id": "A-553", "salon_phone": "+7 343 000-00-00", "bonus_expires_on": "2026-12-06",
                       "promo": "<b>&'\"", "visits": 12, "rate": 0.5, "empty": "  ", "list": [1]}}"#,
    )
    .unwrap()
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
}

fn render(text: &str, dialect: &Dialect, r: &Recipient) -> String {
    let t = Template::compile(text, dialect).unwrap_or_else(|e| panic!("{text}: {e}"));
    let (out, _) = t.render(&Context::new(r, today()), OutputFormat::Plain);
    out
}

#[test]
fn every_builtin_alias_of_the_spec_table() {
    let r = anna();
    let rows: [(&str, &str, &str, &str, &str); 12] = [
        ("{first_name}", "[ИМЯ]", "{{first_name}}", ":И:", "Анна"),
        (
            "{last_name}",
            "[ФАМИЛИЯ]",
            "{{last_name}}",
            ":Ф:",
            "Иванова",
        ),
        (
            "{middle_name}",
            "[ОТЧЕСТВО]",
            "{{middle_name}}",
            ":О:",
            "Сергеевна",
        ),
        (
            "{full_name}",
            "[ФИО]",
            "{{guest}}",
            ":ФИО:",
            "Иванова Анна Сергеевна",
        ),
        (
            "{salutation}",
            "[УВАЖ]",
            "{{salutation}}",
            ":Уваж:",
            "Уважаемая",
        ),
        (
            "{balance}",
            "[БАЛАНС]",
            "{{balance}}",
            ":БалансБонусов:",
            "1 250,50",
        ),
        ("{today}", "[ДАТА]", "{{today}}", ":Дата:", "22.11.2026"),
        (
            "{bonus_expires_on}",
            "[БОН2_ДО]",
            "{{bonus_expires_on}}",
            ":ДатаСгорания:",
            "06.12.2026",
        ),
        ("{order_id}", "[ЗАКАЗ]", "{{order_id}}", ":ID:", "A-553"),
        (
            "{salon_phone}",
            "[ТЕЛЕФОН]",
            "{{salon_phone}}",
            ":Tel:",
            "+7 343 000-00-00",
        ),
        ("{room}", "[НОМЕР]", "{{room}}", ":room:", "101"),
        (
            "{check_in}",
            "[ЗАЕЗД]",
            "{{check_in}}",
            ":check_in:",
            "01.12.2026",
        ),
    ];
    for (probonus, bonusplus, ecvi, itigris, expected) in rows {
        assert_eq!(
            render(probonus, &Dialect::probonus(), &r),
            expected,
            "{probonus}"
        );
        assert_eq!(
            render(bonusplus, &Dialect::bonusplus(), &r),
            expected,
            "{bonusplus}"
        );
        assert_eq!(render(ecvi, &Dialect::ecvi(), &r), expected, "{ecvi}");
        assert_eq!(
            render(itigris, &Dialect::itigris(), &r),
            expected,
            "{itigris}"
        );
    }
    assert_eq!(
        render("[ВЫЕЗД] [БРОНЬ]", &Dialect::bonusplus(), &r),
        "05.12.2026 b-77"
    );
}

#[test]
fn literal_text_that_only_looks_like_a_tag_stays() {
    let r = anna();
    let css = "<style>p { color: red; } .a{b:c}</style>{first_name}";
    assert_eq!(
        render(css, &Dialect::probonus(), &r),
        "<style>p { color: red; } .a{b:c}</style>Анна"
    );
    assert_eq!(
        render("Время: 10:00, :И:! 10:30:45", &Dialect::itigris(), &r),
        "Время: 10:00, Анна! 10:30:45"
    );
    assert_eq!(
        render("[до 50%] [ИМЯ] [ lone [", &Dialect::bonusplus(), &r),
        "[до 50%] Анна [ lone ["
    );
    assert_eq!(
        render("{{{guest}}} {{ guest }} {{guest}", &Dialect::ecvi(), &r),
        "{Иванова Анна Сергеевна} {{ guest }} {{guest}"
    );
    assert_eq!(
        render("{1} {_x} {first_name", &Dialect::probonus(), &r),
        "{1} {_x} {first_name"
    );
}

#[test]
fn strict_mode_names_line_column_and_nearest_tag() {
    let err = Template::compile(
        "Привет,\n  дорогая {frist_name}!\n{balanse} [ИМЯ]",
        &Dialect::probonus(),
    )
    .unwrap_err();
    let TemplateError::UnknownPlaceholders(list) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(list.len(), 2);
    assert_eq!((list[0].line, list[0].column), (2, 11));
    assert_eq!(list[0].suggestion.as_deref(), Some("{first_name}"));
    assert_eq!(err.position(), Some((2, 11)));
    assert_eq!(
        err.to_string(),
        "2:11: unknown placeholder `{frist_name}`, did you mean `{first_name}`?\n3:1: unknown placeholder `{balanse}`, did you mean `{balance}`?"
    );
    let err = Template::compile("Ёлка :Имя:", &Dialect::itigris()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("1:6: unknown placeholder `:Имя:`"),
        "{err}"
    );
    let err = Template::compile("[ИМЯЯ]", &Dialect::bonusplus()).unwrap_err();
    assert!(err.to_string().contains("did you mean `[ИМЯ]`?"), "{err}");
}

#[test]
fn lenient_mode_keeps_unknown_tags_and_warns() {
    let t = Template::compile_with(
        "{frist_name} {first_name}",
        &Dialect::probonus(),
        &CompileOptions::lenient(),
    )
    .unwrap();
    assert_eq!(t.warnings().len(), 1);
    assert_eq!(t.warnings()[0].tag, "{frist_name}");
    let (out, _) = t.render(&Context::new(&anna(), today()), OutputFormat::Plain);
    assert_eq!(out, "{frist_name} Анна");
}

#[test]
fn fallbacks_and_missing_values_are_reported() {
    let nobody: Recipient = serde_json::from_str(r#"{"id": "x", "first_name": " "}"#).unwrap();
    for (text, dialect) in [
        (
            "Здравствуйте, {first_name|друг}! {last_name}",
            Dialect::probonus(),
        ),
        ("Здравствуйте, [ИМЯ|друг]! [ФАМИЛИЯ]", Dialect::bonusplus()),
        (
            "Здравствуйте, {{first_name|друг}}! {{last_name}}",
            Dialect::ecvi(),
        ),
        ("Здравствуйте, :И|друг:! :Ф:", Dialect::itigris()),
    ] {
        let t = Template::compile(text, &dialect).unwrap();
        let ctx = Context::new(&nobody, today());
        let (out, report) = t.render(&ctx, OutputFormat::Plain);
        assert_eq!(out, "Здравствуйте, друг! ", "{text}");
        assert_eq!((report.missing, report.fallbacks), (1, 1));
        assert!(!report.is_complete());
        let missing: Vec<_> = t.missing(&ctx).map(|p| p.target.clone()).collect();
        assert_eq!(
            missing,
            [
                Target::Variable(Variable::FirstName),
                Target::Variable(Variable::LastName)
            ]
        );
    }
    let t = Template::compile("{salutation} {full_name|гость}", &Dialect::probonus()).unwrap();
    assert_eq!(
        t.render(&Context::new(&nobody, today()), OutputFormat::Plain)
            .0,
        "Уважаемый(ая) гость"
    );
}

#[test]
fn values_come_from_profile_then_mailing_then_booking_then_fields() {
    let r = anna();
    let mut values = Values::new();
    values
        .insert_text("first_name", "НЕ ТО")
        .insert_text("bonus_accrued", "300")
        .insert_text("room", "999");
    values.insert_text("bonus_expires_on", "2027-01-15");
    let t = Template::compile(
        "{first_name} {bonus_accrued} {room} {bonus_expires_on} {order_id}",
        &Dialect::probonus(),
    )
    .unwrap();
    let ctx = Context::new(&r, today()).values(&values);
    assert_eq!(
        t.render(&ctx, OutputFormat::Plain).0,
        "Анна 300 999 15.01.2027 A-553"
    );

    let second = &r.bookings[1];
    let t = Template::compile(
        "{room} {check_in} {check_out|?} {booking_id}",
        &Dialect::probonus(),
    )
    .unwrap();
    let ctx = Context::new(&r, today()).booking(Some(second));
    assert_eq!(
        t.render(&ctx, OutputFormat::Plain).0,
        "205 10.01.2027 ? b-78"
    );
}

#[test]
fn custom_fields_are_declared_and_typed_values_format() {
    let r = anna();
    let options =
        CompileOptions::default().with_fields(["visits", "rate", "promo", "empty", "list"]);
    let t = Template::compile_with(
        "{visits}/{rate}/{empty|-}/{list|-}",
        &Dialect::probonus(),
        &options,
    )
    .unwrap();
    assert_eq!(
        t.render(&Context::new(&r, today()), OutputFormat::Plain).0,
        "12/0.5/-/-"
    );
    let t = Template::compile_with("[VISITS] [ИМЯ]", &Dialect::bonusplus(), &options).unwrap();
    assert_eq!(
        t.render(&Context::new(&r, today()), OutputFormat::Plain).0,
        "12 Анна"
    );
    assert!(Template::compile("{visits}", &Dialect::probonus()).is_err());
}

#[test]
fn money_and_dates_format_the_russian_way_and_can_be_overridden() {
    let mut r = anna();
    let t = Template::compile("{balance}", &Dialect::probonus()).unwrap();
    for (balance, expected) in [
        ("1250.5", "1 250,50"),
        ("1500", "1 500"),
        ("1500.00", "1 500"),
        ("0", "0"),
        ("999", "999"),
        ("1000", "1 000"),
        ("1234567.891", "1 234 567,89"),
        ("0.005", "0,01"),
        ("-1250.5", "-1 250,50"),
        ("-0.001", "0"),
    ] {
        r.balance = Some(balance.parse().unwrap());
        assert_eq!(
            t.render(&Context::new(&r, today()), OutputFormat::Plain).0,
            expected,
            "{balance}"
        );
    }
    let mut formatting = Formatting {
        date: DateStyle::Iso,
        ..Formatting::default()
    };
    formatting.money.group_separator = None;
    formatting.money.decimal_separator = '.';
    formatting.money.omit_zero_fraction = false;
    formatting.salutation[1] = "Дорогая".into();
    r.balance = Some("1500".parse().unwrap());
    let t = Template::compile("{salutation}: {balance} на {today}", &Dialect::probonus()).unwrap();
    let ctx = Context::new(&r, today()).formatting(&formatting);
    assert_eq!(
        t.render(&ctx, OutputFormat::Plain).0,
        "Дорогая: 1500.00 на 2026-11-22"
    );
}

#[test]
fn output_formats_escape_only_substituted_values() {
    let r = anna();
    let options = CompileOptions::default().with_fields(["promo"]);
    let t =
        Template::compile_with("<b>{promo}</b> & {today}", &Dialect::probonus(), &options).unwrap();
    let ctx = Context::new(&r, today());
    let cases = [
        (OutputFormat::Plain, "<b><b>&'\"</b> & 22.11.2026"),
        (
            OutputFormat::Html,
            "<b>&lt;b&gt;&amp;&#39;&quot;</b> & 22.11.2026",
        ),
        (
            OutputFormat::TelegramHtml,
            "<b>&lt;b&gt;&amp;'\"</b> & 22.11.2026",
        ),
        (
            OutputFormat::MarkdownV2,
            "<b><b\\>&'\"</b> & 22\\.11\\.2026",
        ),
    ];
    for (format, expected) in cases {
        assert_eq!(t.render(&ctx, format).0, expected, "{format:?}");
    }
    let mut out = String::new();
    OutputFormat::MarkdownV2.escape_into("_*[]()~`>#+-=|{}.!\\a", &mut out);
    assert_eq!(
        out,
        "\\_\\*\\[\\]\\(\\)\\~\\`\\>\\#\\+\\-\\=\\|\\{\\}\\.\\!\\\\a"
    );
    assert_eq!(
        "telegram-html".parse::<OutputFormat>().unwrap(),
        OutputFormat::TelegramHtml
    );
    assert!("rtf".parse::<OutputFormat>().is_err());
}

#[test]
fn render_into_appends_to_the_callers_buffer() {
    let r = anna();
    let t = Template::compile("[ИМЯ]!", &Dialect::bonusplus()).unwrap();
    let mut out = String::from(">> ");
    t.render_into(&Context::new(&r, today()), OutputFormat::Plain, &mut out);
    t.render_into(&Context::new(&r, today()), OutputFormat::Plain, &mut out);
    assert_eq!(out, ">> Анна!Анна!");
}

#[test]
fn custom_dialects_with_their_own_aliases() {
    let r = anna();
    let angle = Dialect::custom("angle", "<", ">")
        .unwrap()
        .with_alias("name", "first_name")
        .unwrap();
    assert_eq!(render("<name>, <first_name|x>!", &angle, &r), "Анна, Анна!");
    assert!(
        Template::compile("<p><name></p>", &angle).is_err(),
        "<p> is a well-formed unknown tag here"
    );
    let double = Dialect::custom("double-angle", "<<", ">>")
        .unwrap()
        .with_alias("guest", "full_name")
        .unwrap();
    assert_eq!(
        render("<<guest>> <<", &double, &r),
        "Иванова Анна Сергеевна <<"
    );
    let percent = Dialect::custom("percent", "%", "%")
        .unwrap()
        .with_alias("name", "first_name")
        .unwrap();
    assert_eq!(
        render("Скидка 50% для %name%", &percent, &r),
        "Скидка 50% для Анна"
    );
    // Overriding a built-in alias.
    let overridden = Dialect::bonusplus().with_alias("ИМЯ", "full_name").unwrap();
    assert_eq!(render("[ИМЯ]", &overridden, &r), "Иванова Анна Сергеевна");
    assert!(Dialect::custom("bad", "", ">").is_err());
    assert!(Dialect::custom("bad", "a", ">").is_err());
    assert!(Dialect::custom("bad", "< ", ">").is_err());
    assert!(Dialect::bonusplus().with_alias("1x", "first_name").is_err());
}

#[test]
fn conversion_between_dialects() {
    let t = Template::compile(
        "{{salutation}} {{guest}}, номер {{room}} {{first_name|гость}}",
        &Dialect::ecvi(),
    )
    .unwrap();
    assert_eq!(
        t.convert(&Dialect::bonusplus()).unwrap(),
        "[УВАЖ] [ФИО], номер [НОМЕР] [ИМЯ|гость]"
    );
    assert_eq!(
        t.convert(&Dialect::itigris()).unwrap(),
        ":Уваж: :ФИО:, номер :room: :И|гость:"
    );
    assert_eq!(
        t.convert(&Dialect::probonus()).unwrap(),
        "{salutation} {full_name}, номер {room} {first_name|гость}"
    );
    // A literal the target would read as a placeholder cannot be converted.
    let t = Template::compile("Скажите «[ИМЯ]»,\n {first_name}", &Dialect::probonus()).unwrap();
    let err = t.convert(&Dialect::bonusplus()).unwrap_err();
    assert_eq!(err.position(), Some((1, 10)), "{err}");
    assert!(
        err.to_string()
            .contains("cannot be written in dialect bonusplus"),
        "{err}"
    );
    // An ITigris tag glued to literal colons.
    let t = Template::compile("a:b {first_name}:", &Dialect::probonus()).unwrap();
    assert_eq!(t.convert(&Dialect::itigris()).unwrap(), "a:b :И::");
    let t = Template::compile("x:И{first_name}", &Dialect::probonus()).unwrap();
    assert_eq!(
        t.convert(&Dialect::itigris()).unwrap_err().position(),
        Some((1, 2))
    );
    // Strict templates must stay strict-valid: `:b:` would be an unknown tag in ITigris.
    let t = Template::compile("a:b{first_name}", &Dialect::probonus()).unwrap();
    assert_eq!(
        t.convert(&Dialect::itigris()).unwrap_err().position(),
        Some((1, 2))
    );
    let lenient = Template::compile_with(
        "a:b{first_name}",
        &Dialect::probonus(),
        &CompileOptions::lenient(),
    )
    .unwrap();
    assert_eq!(lenient.convert(&Dialect::itigris()).unwrap(), "a:b:И:");
}

#[test]
fn pathological_templates_compile_in_one_pass_with_a_bounded_error() {
    // `{a|` a third of a million times: no tag ever closes, so it is all text.
    let text = "{a|".repeat(350_000);
    let template = Template::compile(&text, &Dialect::probonus()).unwrap();
    assert_eq!(template.placeholders().len(), 0);
    let ecvi = "{{a|".repeat(250_000);
    assert!(Template::compile(&ecvi, &Dialect::ecvi()).is_ok());
    // A megabyte of `:a` in ITigris is hundreds of thousands of unknown tags: the error lists
    // twenty and counts the rest.
    let colons = ":a".repeat(500_000);
    let err = Template::compile(&colons, &Dialect::itigris()).unwrap_err();
    let TemplateError::ManyUnknownPlaceholders { first, more } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(first.len(), 20);
    assert!(*more > 200_000, "{more}");
    assert_eq!(err.position(), Some((1, 1)));
    assert!(err.to_string().len() < 4_000, "{}", err.to_string().len());
    assert!(err.to_string().ends_with("more unknown placeholders"));
    // Lenient: twenty warnings kept.
    let lenient = Template::compile_with(
        &colons,
        &Dialect::itigris(),
        &CompileOptions {
            mode: rassylka_template::Mode::Lenient,
            ..CompileOptions::default()
        },
    )
    .unwrap();
    assert_eq!(lenient.warnings().len(), 20);
}

#[test]
fn the_unsubscribe_link_has_a_tag_in_every_dialect_and_is_escaped_per_format() {
    let url = "https://shop.example/u/abc?x=1&y=2";
    let r = anna();
    let values = rassylka_template::Values::new();
    let formatting = rassylka_template::Formatting::default();
    for (dialect, text) in [
        (Dialect::probonus(), "Отписаться: {unsubscribe_url}"),
        (Dialect::bonusplus(), "Отписаться: [ОТПИСКА]"),
        (Dialect::ecvi(), "Отписаться: {{unsubscribe_url}}"),
        (Dialect::itigris(), "Отписаться: :Отписка:"),
    ] {
        let template = Template::compile(text, &dialect).unwrap();
        let html = template.prepare(today(), &values, &formatting, OutputFormat::Html);
        assert!(
            html.places(rassylka_template::Variable::UnsubscribeUrl),
            "{text}"
        );
        let (out, report) = html.render_with_link(&r, None, Some(url));
        assert_eq!(out, "Отписаться: https://shop.example/u/abc?x=1&amp;y=2");
        assert!(report.is_complete());
        let plain = template.prepare(today(), &values, &formatting, OutputFormat::Plain);
        assert_eq!(
            plain.render_with_link(&r, None, Some(url)).0,
            format!("Отписаться: {url}")
        );
        // Without a link the tag is a missing value, reported like any other.
        let (out, report) = plain.render(&r, None);
        assert_eq!(out, "Отписаться: ");
        assert!(!report.is_complete());
    }
    let other = Template::compile("Здравствуйте, {first_name}!", &Dialect::probonus()).unwrap();
    let prepared = other.prepare(today(), &values, &formatting, OutputFormat::Html);
    assert!(!prepared.places(rassylka_template::Variable::UnsubscribeUrl));
}
