//! Exporting a journal: 1 M journal rows written to an XLSX workbook (rust_xlsxwriter in
//! constant memory, read from the journal a page at a time), beside the same rows printed as
//! JSON Lines (what `campaign journal` does) as the anchor, and the journal read alone, each
//! in a fresh process so that its peak memory (VmHWM) is its own. Target: under 15 s and
//! under 150 MiB for the workbook. `RASSYLKA_BENCH_NO_LINKS=1` drops the account-card links.
//!
//! `cargo bench --bench export`; `RASSYLKA_BENCH_ROWS=N` changes the row count.

use rassylka_workspace::bench::prepare_journal;
use rassylka_workspace::peak_rss_mib;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Utc};
use rassylka::model::ChannelKind;
use rassylka::store::{DeliveryStatus, NewDelivery, Outcome};
use rassylka::{ExportOptions, JournalQuery, MemorySource, Rassylka, SqliteStore};

const MAILING: &str = r#"{"id": "m-export", "name": "Экспорт", "channels": ["sms"],
    "schedule": {"start": "2026-11-22T10:00", "tz": "Europe/Moscow", "every": "once"},
    "content": {"default": {"text": "{first_name|Гость}, дарим бонусы"}}}"#;

fn delivery(i: usize) -> NewDelivery {
    NewDelivery {
        delivery_key: format!("m-export/v1/2026-11-22T10:00/c-{i:07}/sms"),
        recipient_id: format!("c-{i:07}"),
        channel: Some(ChannelKind::Sms),
        address: Some(format!("+7916{i:07}")),
        booking_id: None,
        group_key: format!("c-{i:07}"),
        rank: 0,
        status: DeliveryStatus::Queued,
        not_before: None,
        subject: None,
        text: Some("Анна, дарим 300 бонусов до 06.12.2026! Баланс: 1250.".into()),
        html: None,
        image: None,
        units: 1,
        cost: Some(rust_decimal::Decimal::new(450, 2)),
        error: None,
    }
}

/// A journal of `n` rows of one occurrence, nine in ten sent, the rest failed.
async fn prepare(path: &Path, n: usize) {
    let now: DateTime<Utc> = "2026-11-22T07:00:00Z".parse().unwrap();
    prepare_journal(path, "m-export", MAILING, now, n, delivery, |d| {
        if d.id % 10 == 0 {
            Outcome::Failed {
                class: "invalid_address".into(),
                error: "no such number".into(),
            }
        } else {
            Outcome::Sent {
                provider_id: Some(format!("smsru-{}", d.id)),
                cost: None,
            }
        }
    })
    .await;
}

/// Runs in a child process: one export of the whole journal.
async fn measure(journal: &Path, what: &str, n: usize) {
    let store = SqliteStore::open(journal).await.unwrap();
    let reader = Rassylka::builder()
        .recipients(MemorySource::new(Vec::new()))
        .store(store)
        .build()
        .unwrap();
    let query = JournalQuery {
        mailing_id: "m-export".into(),
        ..JournalQuery::default()
    };
    let out = journal.with_extension(if what == "xlsx" { "xlsx" } else { "jsonl" });
    let _ = std::fs::remove_file(&out);
    let started = Instant::now();
    let rows = if what == "read" {
        let mut pages = reader.journal_rows(&query).await.unwrap();
        let mut rows = 0;
        while let Some(page) = pages.next_page().await.unwrap() {
            rows += page.len() as u64;
        }
        rows
    } else if what == "xlsx" {
        let options = ExportOptions {
            account_url: std::env::var("RASSYLKA_BENCH_NO_LINKS")
                .is_err()
                .then(|| "https://crm.example/clients/{id}".into()),
        };
        reader.export_journal(&query, &out, &options).await.unwrap()
    } else {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&out).unwrap());
        let mut pages = reader.journal_rows(&query).await.unwrap();
        let mut rows = 0;
        while let Some(page) = pages.next_page().await.unwrap() {
            for row in page {
                writeln!(file, "{}", row.to_json()).unwrap();
                rows += 1;
            }
        }
        file.flush().unwrap();
        rows
    };
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(rows, n as u64);
    let label = match what {
        "xlsx" => "XLSX workbook (target < 15 s, < 150 MiB)",
        "read" => "nothing (the journal read alone)",
        _ => "JSON Lines (anchor)",
    };
    let size = std::fs::metadata(&out).map_or(0, |m| m.len());
    println!(
        "| {n:>9} | {label} | {seconds:>6.2} s | {:>9.0} | {:>7.1} MiB | {:>6.1} MiB |",
        n as f64 / seconds,
        peak_rss_mib(),
        size as f64 / (1024.0 * 1024.0)
    );
}

fn folder() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-export");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let journal = folder().join("journal.db");
    if let Ok(what) = std::env::var("RASSYLKA_BENCH_EXPORT") {
        let n = std::env::var("RASSYLKA_BENCH_ROWS")
            .unwrap()
            .parse()
            .unwrap();
        runtime.block_on(measure(&journal, &what, n));
        return;
    }
    // `cargo test --benches` runs benches with `--test`: keep that quick.
    let quick = std::env::args().any(|a| a == "--test");
    let n: usize = std::env::var("RASSYLKA_BENCH_ROWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if quick { 2_000 } else { 1_000_000 });
    let started = Instant::now();
    runtime.block_on(prepare(&journal, n));
    eprintln!(
        "journal of {n} rows prepared in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("| journal rows | written as | time | rows/s | peak RSS | file |");
    println!("|---|---|---|---|---|---|");
    let rounds = if quick { 1 } else { 2 };
    for _ in 0..rounds {
        for what in ["read", "jsonl", "xlsx"] {
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .env("RASSYLKA_BENCH_EXPORT", what)
                .env("RASSYLKA_BENCH_ROWS", n.to_string())
                .status()
                .unwrap();
            assert!(status.success());
        }
    }
}
