//! A whole mailing on the embedded default: segment + render + journal for 1 M recipients,
//! streamed from a JSON Lines file into an SQLite journal, sent to a channel that accepts
//! everything at once (so the figure is the dispatcher's own cost).
//!
//! `cargo bench --bench dispatch` runs 100 000, 1 000 000 and 3 000 000 recipients, each in a
//! fresh process so that its peak memory (VmHWM) is its own, and prints one table row per run: the
//! mailing as the target defines it (segment + render + journal), then the same mailing
//! accruing a bonus to everyone reached through a ledger that only counts, to show what
//! exactly-once accrual adds. The target is under 10 s for 1 M on a 2-core machine, with
//! memory that does not grow with the audience.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use rassylka::channels::{Channel, ChannelError, Message, Receipt, Verification};
use rassylka::model::{Address, ChannelKind};
use rassylka::{
    Accrual, BonusLedger, Dispatcher, JsonlFile, Mailing, ManualClock, Rassylka, SqliteStore,
};

/// Counts accruals and keeps nothing, like a ledger in another service would.
#[derive(Default)]
struct CountingLedger(std::sync::atomic::AtomicU64);

#[async_trait]
impl BonusLedger for CountingLedger {
    async fn accrue(
        &self,
        _accrual: &Accrual,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// Accepts every message and keeps nothing.
struct NullChannel;

#[async_trait]
impl Channel for NullChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Sms
    }

    async fn send(&self, _to: &Address, message: &Message) -> Result<Receipt, ChannelError> {
        Ok(Receipt::new(message.delivery_key.len().to_string()))
    }

    async fn verify(&self) -> Result<Verification, ChannelError> {
        Ok(Verification::default())
    }
}

const MAILING: &str = r#"{"id": "m-bench", "kind": "one_time", "class": "advertising",
    "audience": {"all": [{"any": [{"gender": "female"}, {"balance": {"gte": 100}}]}, {"not": {"loyalty_group": {"in": ["Blocked"]}}}]},
    "schedule": {"start": "2026-11-22T10:00", "tz": "Europe/Moscow", "every": "once"},
    "channels": ["sms"],
    "content": {"default": {"dialect": "bonusplus", "text": "[ИМЯ|Добрый день], дарим [БОН2] бонусов до [БОН2_ДО]! Баланс: [БАЛАНС]."}},
    "values": {"bonus_accrued": "300", "bonus_expires_on": "06.12.2026"}}"#;

/// The same mailing, accruing its bonus.
const BONUS: &str = r#", "bonus": {"amount": 300, "expires_in_days": 14}}"#;

fn write_recipients(path: &std::path::Path, n: usize) {
    const NAMES: [&str; 6] = ["Анна", "Пётр", "Мария", "Олег", "Светлана", "Илья"];
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for i in 0..n {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let gender = if seed.is_multiple_of(2) {
            "female"
        } else {
            "male"
        };
        let group = ["Gold", "Silver", "Base", "Blocked"][(seed >> 8) as usize % 4];
        let consent = !(seed >> 12).is_multiple_of(10);
        writeln!(
            out,
            "{{\"id\": \"c-{i}\", \"first_name\": \"{}\", \"gender\": \"{gender}\", \"loyalty_group\": \"{group}\", \"balance\": {}.{:02}, \"consent\": {{\"advertising\": {consent}}}, \"contacts\": {{\"phone\": \"+7916{:07}\"}}}}",
            NAMES[(seed >> 16) as usize % 6],
            (seed >> 20) % 5000,
            (seed >> 40) % 100,
            i % 10_000_000,
        )
        .unwrap();
    }
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn measure(n: usize, bonus: bool) {
    let dir = tempfile::tempdir().unwrap();
    let people = dir.path().join("people.jsonl");
    write_recipients(&people, n);
    let rss_before = peak_rss_mib();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (seconds, sent) = runtime.block_on(async {
        let dispatcher = Rassylka::builder()
            .recipients(JsonlFile::new(&people))
            .store(
                SqliteStore::open(dir.path().join("journal.db"))
                    .await
                    .unwrap(),
            )
            .channel(Arc::new(NullChannel))
            .ledger(Arc::new(CountingLedger::default()))
            .clock(Arc::new(ManualClock::starting_at(
                "2026-11-22T07:00:30Z".parse().unwrap(),
            )))
            .concurrency(512)
            .build()
            .unwrap();
        let json = if bonus {
            let open = MAILING.trim_end().strip_suffix('}').unwrap_or(MAILING);
            format!("{open}{BONUS}")
        } else {
            MAILING.to_owned()
        };
        let mailing = Mailing::from_json(&json).unwrap();
        let started = Instant::now();
        dispatcher.save(&mailing).await.unwrap();
        dispatcher.confirm("m-bench").await.unwrap();
        let report = dispatcher.run_due().await.unwrap();
        (started.elapsed().as_secs_f64(), report.counts.sent)
    });
    let what = if bonus {
        "+ bonus accrual"
    } else {
        "segment + render + journal"
    };
    println!(
        "| {n:>9} | {what} | {sent:>9} | {seconds:>6.2} s | {:>9.0} | {:>7.1} MiB | {:>7.1} MiB |",
        n as f64 / seconds,
        rss_before,
        peak_rss_mib()
    );
}

fn main() {
    if let Ok(n) = std::env::var("RASSYLKA_BENCH_RECIPIENTS") {
        let bonus = std::env::var("RASSYLKA_BENCH_BONUS").is_ok_and(|b| b == "1");
        measure(n.parse().unwrap(), bonus);
        return;
    }
    // `cargo test --benches` runs benches with `--test`: keep that quick.
    // (recipients, with the bonus variant): 3 M shows that memory stays where 1 M left it.
    let runs: &[(usize, bool)] = if std::env::args().any(|a| a == "--test") {
        &[(2_000, true)]
    } else {
        &[(100_000, true), (1_000_000, true), (3_000_000, false)]
    };
    println!(
        "| recipients | mailing | sent | time | recipients/s | peak RSS before run | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &(n, with_bonus) in runs {
        let variants: &[&str] = if with_bonus { &["0", "1"] } else { &["0"] };
        for bonus in variants {
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .env("RASSYLKA_BENCH_RECIPIENTS", n.to_string())
                .env("RASSYLKA_BENCH_BONUS", bonus)
                .status()
                .unwrap();
            assert!(status.success());
        }
    }
}
