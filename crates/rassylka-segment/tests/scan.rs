//! The audience of a rule straight from a JSON Lines export.

use std::sync::Arc;

use chrono::NaiveDate;
use rassylka_model::{MessageClass, ModelError};
use rassylka_segment::{CompileOptions, Rule, ScanOptions, Segment};

fn segment() -> Arc<Segment> {
    let rule = Rule::from_json(
        r#"{"all": [{"gender": "female"}, {"purchases": {"within_days": 90, "count": {"gte": 2}}}]}"#,
    )
    .unwrap();
    let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
    Arc::new(
        Segment::compile(
            &rule,
            &CompileOptions::new(today, chrono_tz::Europe::Moscow),
        )
        .unwrap(),
    )
}

fn export(n: usize) -> String {
    (0..n)
        .map(|i| {
            let gender = if i % 3 == 0 { "female" } else { "male" };
            let at = if i % 2 == 0 { "2026-11-01" } else { "2025-01-01" };
            // Every seventh line has an escaped name: the serde path reads it.
            let name = if i % 7 == 0 { "\\u0410нна" } else { "Анна" };
            format!(
                "{{\"id\": \"c-{i}\", \"first_name\": \"{name}\", \"gender\": \"{gender}\", \
                 \"contacts\": {{\"phone\": \"+7916{i:07}\"}}, \"consent\": {{\"advertising\": {}}}, \
                 \"purchases\": [{{\"at\": \"{at}T12:00:00+03:00\", \"amount\": 10}}, {{\"at\": \"{at}T13:00:00Z\", \"amount\": 1.5}}]}}\n",
                i % 5 != 0
            )
        })
        .collect()
}

#[test]
fn any_number_of_threads_finds_the_same_audience_in_order() {
    let text = export(20_000);
    let segment = segment();
    let one_by_one = segment.count(
        rassylka_model::read_jsonl(text.as_bytes())
            .map(Result::unwrap)
            .collect::<Vec<_>>()
            .iter(),
        MessageClass::Advertising,
    );
    for threads in [1, 2, 4] {
        let options = ScanOptions { threads, ids: true };
        let audience = segment
            .scan_jsonl(
                std::io::Cursor::new(text.clone().into_bytes()),
                MessageClass::Advertising,
                options,
            )
            .unwrap();
        assert_eq!(audience.counts, one_by_one, "{threads}");
        let expected: Vec<String> = (0..20_000)
            .filter(|i| i % 6 == 0)
            .map(|i| format!("c-{i}"))
            .collect();
        assert_eq!(audience.ids, expected, "{threads}");
    }
    assert_eq!(one_by_one.matched, 3_334);
    assert_eq!(one_by_one.excluded.no_consent, 667);
}

#[test]
fn a_bad_line_is_named_and_nothing_is_counted() {
    let mut text = export(5_000);
    text.insert_str(
        text.find("c-4321").unwrap() - 8,
        "{\"id\": \"x\", \"balance\": }\n",
    );
    let options = ScanOptions {
        threads: 2,
        ids: false,
    };
    let error = segment()
        .scan_jsonl(
            std::io::Cursor::new(text.into_bytes()),
            MessageClass::Service,
            options,
        )
        .unwrap_err();
    assert!(
        matches!(error, ModelError::Line { line: 4322, .. }),
        "{error}"
    );
}
