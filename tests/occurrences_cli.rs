//! The `occurrences` example binary, run as a user would (SPEC §8).

use std::process::Output;

use rassylka_workspace::write_file as write;

fn occurrences(args: &[&str]) -> Output {
    rassylka_workspace::run_example("occurrences", args)
}

fn stdout_lines(output: &Output) -> Vec<String> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn prints_the_next_occurrences_with_the_zones_offset() {
    let dir = tempfile::tempdir().unwrap();
    let schedule = write(
        dir.path(),
        "monthly.json",
        r#"{"start": "2027-01-31T10:00", "tz": "Europe/Moscow", "every": "month",
            "until": "2027-12-31T23:59", "misfire": {"latest_within": "6h"}}"#,
    );
    let output = occurrences(&[
        "--schedule",
        &schedule,
        "--after",
        "2027-01-31T10:00:00+03:00",
        "--count",
        "3",
    ]);
    assert_eq!(
        stdout_lines(&output),
        [
            "2027-02-28T10:00:00+03:00",
            "2027-03-31T10:00:00+03:00",
            "2027-04-30T10:00:00+03:00"
        ]
    );
    let to_the_end = occurrences(&[
        "--schedule",
        &schedule,
        "--after",
        "2027-10-01T00:00:00Z",
        "--count",
        "10",
    ]);
    assert_eq!(
        stdout_lines(&to_the_end),
        [
            "2027-10-31T10:00:00+03:00",
            "2027-11-30T10:00:00+03:00",
            "2027-12-31T10:00:00+03:00"
        ]
    );
}

#[test]
fn a_dst_gap_shows_the_shifted_instant() {
    let dir = tempfile::tempdir().unwrap();
    let schedule = write(
        dir.path(),
        "daily.json",
        r#"{"start": "2025-03-28T02:30", "tz": "Europe/Berlin", "every": "day"}"#,
    );
    let output = occurrences(&[
        "--schedule",
        &schedule,
        "--after",
        "2025-03-29T00:00:00Z",
        "--count",
        "3",
    ]);
    assert_eq!(
        stdout_lines(&output),
        [
            "2025-03-29T02:30:00+01:00",
            "2025-03-30T03:30:00+02:00",
            "2025-03-31T02:30:00+02:00"
        ]
    );
}

#[test]
fn a_once_schedule_prints_at_most_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let schedule = write(
        dir.path(),
        "once.json",
        r#"{"start": "2027-03-01T10:00", "tz": "Asia/Vladivostok", "every": "once"}"#,
    );
    let before = occurrences(&[
        "--schedule",
        &schedule,
        "--after",
        "2027-01-01T00:00:00Z",
        "--count",
        "5",
    ]);
    assert_eq!(stdout_lines(&before), ["2027-03-01T10:00:00+10:00"]);
    let after = occurrences(&[
        "--schedule",
        &schedule,
        "--after",
        "2027-03-01T10:00:00+10:00",
        "--count",
        "5",
    ]);
    assert_eq!(stdout_lines(&after), Vec::<String>::new());
}

#[test]
fn bad_input_exits_2_with_the_field_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let bad_zone = write(
        dir.path(),
        "bad.json",
        r#"{"start": "2027-01-31T10:00", "tz": "Europe/Mosco", "every": "month"}"#,
    );
    let output = occurrences(&[
        "--schedule",
        &bad_zone,
        "--after",
        "2027-01-01T00:00:00Z",
        "--count",
        "1",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`tz`"), "{stderr}");

    let good = write(
        dir.path(),
        "good.json",
        r#"{"start": "2027-01-31T10:00", "tz": "Europe/Moscow", "every": "month"}"#,
    );
    let missing = dir.path().join("missing.json");
    for args in [
        vec!["--schedule", &good, "--after", "yesterday", "--count", "1"],
        vec![
            "--schedule",
            &good,
            "--after",
            "2027-01-01T00:00:00Z",
            "--count",
            "-1",
        ],
        vec!["--schedule", &good, "--after", "2027-01-01T00:00:00Z"],
        vec![
            "--schedule",
            missing.to_str().unwrap(),
            "--after",
            "2027-01-01T00:00:00Z",
            "--count",
            "1",
        ],
    ] {
        let output = occurrences(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}
