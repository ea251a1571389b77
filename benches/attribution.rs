//! Attribution of one 1 M-recipient occurrence (nine in ten sent, one in ten held out)
//! against 3 M purchases (SPEC §7f): the journal's audience read, every purchase streamed from
//! a JSON Lines file and folded in, the report made, in a fresh process so its peak memory
//! (VmHWM) is its own. Target: under 5 s and under 200 MiB.
//!
//! `cargo bench --bench attribution`; `RASSYLKA_BENCH_RECIPIENTS=N` and
//! `RASSYLKA_BENCH_PURCHASES=M` change the sizes.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use rassylka::model::ChannelKind;
use rassylka::store::{DeliveryStatus, NewDelivery, Outcome};
use rassylka::{AttributionScope, MemorySource, Rassylka, SqliteStore};
use rassylka_workspace::bench::prepare_journal;
use rassylka_workspace::peak_rss_mib;

const MAILING: &str = r#"{"id": "m-attr", "name": "Атрибуция", "channels": ["sms"],
    "promotion_id": "p-5", "holdout": {"percent": 10},
    "schedule": {"start": "2026-11-22T10:00", "tz": "Europe/Moscow", "every": "once"},
    "content": {"default": {"text": "Скидка 20%"}}}"#;

fn fired_at() -> DateTime<Utc> {
    "2026-11-22T07:00:00Z".parse().unwrap()
}

fn delivery(i: usize) -> NewDelivery {
    let held_out = i % 10 == 9;
    NewDelivery {
        delivery_key: format!("m-attr/v1/2026-11-22T10:00/c-{i:07}/sms"),
        recipient_id: format!("c-{i:07}"),
        channel: (!held_out).then_some(ChannelKind::Sms),
        address: (!held_out).then(|| format!("+7916{i:07}")),
        booking_id: None,
        group_key: format!("c-{i:07}"),
        rank: 0,
        status: if held_out {
            DeliveryStatus::Skipped
        } else {
            DeliveryStatus::Queued
        },
        not_before: None,
        subject: None,
        text: (!held_out).then(|| "Скидка 20%".into()),
        html: None,
        image: None,
        units: 1,
        cost: Some(rust_decimal::Decimal::new(450, 2)),
        error: held_out.then(|| "holdout".into()),
    }
}

/// The journal: `n` rows of one occurrence, the held out skipped, everyone else sent.
async fn prepare_bench_journal(path: &Path, n: usize) {
    prepare_journal(path, "m-attr", MAILING, fired_at(), n, delivery, |_| {
        Outcome::Sent {
            provider_id: None,
            cost: None,
        }
    })
    .await;
}

/// `m` purchases of recipients among the first `n` × 1.2 ids (a sixth of them nobody the
/// mailing knows), from two weeks before the mailing to two weeks after it.
fn prepare_purchases(path: &Path, n: usize, m: usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let base = fired_at() - TimeDelta::days(14);
    for _ in 0..m {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let who = (seed % (n as u64 * 6 / 5)) as usize;
        let at = base + TimeDelta::seconds(((seed >> 20) % (28 * 86_400)) as i64);
        let promotion = if (seed >> 50).is_multiple_of(7) {
            ", \"promotion_id\": \"p-5\""
        } else {
            ""
        };
        writeln!(
            out,
            "{{\"recipient_id\": \"c-{who:07}\", \"at\": \"{}\", \"amount\": {}.{:02}{promotion}}}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            100 + (seed >> 32) % 5000,
            (seed >> 44) % 100,
        )
        .unwrap();
    }
}

/// In a child process: the whole report.
async fn measure(journal: &Path, purchases: &Path, n: usize, m: usize) {
    let started = Instant::now();
    let store = SqliteStore::open_read_only(journal).await.unwrap();
    let dispatcher = Rassylka::builder()
        .recipients(MemorySource::default())
        .store(store)
        .build()
        .unwrap();
    let mut attribution = dispatcher
        .attribution(&AttributionScope::Mailing("m-attr".into()), 7)
        .await
        .unwrap();
    let audience = started.elapsed();
    let file = std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(purchases).unwrap());
    let read = attribution.read_purchases(file).unwrap();
    assert_eq!(read as usize, m);
    let report = attribution.report(rust_decimal::Decimal::ONE);
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(report.reached as usize, n - n / 10);
    println!(
        "| {n:>9} | {m:>9} | {:>6.2} s | {:>6.2} s | {seconds:>6.2} s | {:>7.1} MiB | {} converted, lift {:+.4} |",
        audience.as_secs_f64(),
        seconds - audience.as_secs_f64(),
        peak_rss_mib(),
        report.converted,
        report.holdout.map_or(0.0, |h| h.lift),
    );
}

fn folder() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-attribution");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (journal, purchases) = (
        folder().join("journal.db"),
        folder().join("purchases.jsonl"),
    );
    let quick = std::env::args().any(|a| a == "--test");
    let size = |name: &str, full: usize, small: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if quick { small } else { full })
    };
    let n = size("RASSYLKA_BENCH_RECIPIENTS", 1_000_000, 2_000);
    let m = size("RASSYLKA_BENCH_PURCHASES", 3_000_000, 6_000);
    if std::env::var("RASSYLKA_BENCH_MEASURE").is_ok() {
        runtime.block_on(measure(&journal, &purchases, n, m));
        return;
    }
    let started = Instant::now();
    runtime.block_on(prepare_bench_journal(&journal, n));
    prepare_purchases(&purchases, n, m);
    eprintln!(
        "journal of {n} recipients and {m} purchases prepared in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!(
        "| recipients | purchases | audience read | purchases folded | total | peak RSS | result |"
    );
    println!("|---|---|---|---|---|---|---|");
    for _ in 0..if quick { 1 } else { 3 } {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .env("RASSYLKA_BENCH_MEASURE", "1")
            .env("RASSYLKA_BENCH_RECIPIENTS", n.to_string())
            .env("RASSYLKA_BENCH_PURCHASES", m.to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }
}
