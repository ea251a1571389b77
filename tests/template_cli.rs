//! The `render` and `convert` example binaries, run as a user would (SPEC §8).

use rassylka_workspace::{run_example as example, write_file as write};

const ANNA: &str = r#"{"id": "c-1001", "first_name": "Анна", "last_name": "Иванова", "gender": "female",
 "balance": 1250.5, "fields": {"order_id": "A-553"}}"#;

#[test]
fn render_prints_the_text_and_one_newline() {
    let dir = tempfile::tempdir().unwrap();
    let recipient = write(dir.path(), "anna.json", ANNA);
    let template = write(
        dir.path(),
        "t.txt",
        "[УВАЖ] [ИМЯ] <[ФАМИЛИЯ]>, заказ [ЗАКАЗ]: [БОН2] до [БОН2_ДО], баланс [БАЛАНС] на [ДАТА]\n",
    );
    let out = example(
        "render",
        &[
            "--dialect",
            "bonusplus",
            "--format",
            "html",
            "--template",
            &template,
            "--recipient",
            &recipient,
            "--today",
            "2026-11-22",
            "--var",
            "bonus_accrued=300",
            "--var",
            "bonus_expires_on=2026-12-06",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "Уважаемая Анна <Иванова>, заказ A-553: 300 до 06.12.2026, баланс 1 250,50 на 22.11.2026\n"
    );
}

#[test]
fn render_template_errors_exit_2_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let recipient = write(dir.path(), "anna.json", ANNA);
    let template = write(dir.path(), "t.txt", "Привет!\n  {frist_name}");
    let args = [
        "--dialect",
        "probonus",
        "--format",
        "plain",
        "--template",
        &template,
        "--recipient",
        &recipient,
        "--today",
        "2026-11-22",
    ];
    let out = example("render", &args);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("2:3: unknown placeholder `{frist_name}`, did you mean `{first_name}`?"),
        "{stderr}"
    );

    let mut lenient = args.to_vec();
    lenient.push("--lenient");
    let out = example("render", &lenient);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "Привет!\n  {frist_name}\n"
    );
    assert!(String::from_utf8(out.stderr).unwrap().contains("warning:"));

    let out = example(
        "render",
        &[
            "--dialect",
            "klingon",
            "--format",
            "plain",
            "--template",
            &template,
            "--recipient",
            &recipient,
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = example("render", &["--dialect", "probonus"]);
    assert_eq!(out.status.code(), Some(2));
    let bad = write(dir.path(), "bad.json", "{\"first_name\": 1}");
    let out = example(
        "render",
        &[
            "--dialect",
            "probonus",
            "--format",
            "plain",
            "--template",
            &template,
            "--recipient",
            &bad,
            "--lenient",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn convert_prints_the_template_in_the_other_dialect() {
    let dir = tempfile::tempdir().unwrap();
    let template = write(
        dir.path(),
        "t.html",
        "<p>{{salutation}} {{guest}}, ваш номер {{room}}; код {{promo_code|нет}}</p>\n",
    );
    let out = example(
        "convert",
        &[
            "--from",
            "ecvi",
            "--to",
            "bonusplus",
            "--template",
            &template,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "<p>[УВАЖ] [ФИО], ваш номер [НОМЕР]; код [promo_code|нет]</p>\n"
    );

    let clash = write(dir.path(), "clash.txt", "Напишите [ИМЯ] {first_name}");
    let out = example(
        "convert",
        &[
            "--from",
            "probonus",
            "--to",
            "bonusplus",
            "--template",
            &clash,
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains(":1:10: `[ИМЯ] ` cannot be written in dialect bonusplus")
    );
}
