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
//!
//! With `RASSYLKA_BENCH_PG` (or `RASSYLKA_TEST_PG`) naming a PostgreSQL server, it then runs
//! 1 M recipients on SQLite and on PostgreSQL with 1, 2 and 4 workers (tasks with a connection
//! pool each, sharing one queue), in the same minutes. One row alone:
//! `RASSYLKA_BENCH_RECIPIENTS=1000000 RASSYLKA_BENCH_BACKEND=pg:2 cargo bench --bench dispatch`.

use rassylka_workspace::peak_rss_mib;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use rassylka::channels::{Channel, ChannelError, Message, Receipt, Verification};
use rassylka::model::{Address, ChannelKind};
use rassylka::store::{PgConfig, PgStore, Store};
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

/// Where a run journals: the SQLite file, or a fresh PostgreSQL database with `workers`
/// dispatchers (tasks of this process, each with its own connection pool) sharing its queue.
#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Sqlite,
    Postgres { workers: usize },
}

impl Backend {
    fn from_env() -> Backend {
        match std::env::var("RASSYLKA_BENCH_BACKEND").ok().as_deref() {
            Some(pg) if pg.starts_with("pg:") => Backend::Postgres {
                workers: pg[3..].parse().unwrap(),
            },
            _ => Backend::Sqlite,
        }
    }

    fn env(self) -> String {
        match self {
            Backend::Sqlite => "sqlite".into(),
            Backend::Postgres { workers } => format!("pg:{workers}"),
        }
    }

    fn label(self) -> String {
        match self {
            Backend::Sqlite => "SQLite, 1 worker".into(),
            Backend::Postgres { workers: 1 } => "PostgreSQL, 1 worker".into(),
            Backend::Postgres { workers } => format!("PostgreSQL, {workers} workers"),
        }
    }
}

/// The PostgreSQL server the bench may use.
fn postgres_url() -> Option<String> {
    std::env::var("RASSYLKA_BENCH_PG")
        .or_else(|_| std::env::var("RASSYLKA_TEST_PG"))
        .ok()
        .filter(|u| !u.is_empty())
}

/// A fresh database on the bench's server.
async fn fresh_database(admin: &str) -> String {
    let name = format!("rassylka_bench_{}", std::process::id());
    let store = PgStore::connect(
        admin,
        PgConfig {
            schema: Some("rassylka_admin".into()),
            ..PgConfig::default()
        },
    )
    .await
    .unwrap();
    store
        .raw_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .await
        .unwrap();
    store
        .raw_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    store.close().await.unwrap();
    format!("{}/{name}", admin.rsplit_once('/').unwrap().0)
}

fn dispatcher(people: &std::path::Path, store: Arc<dyn Store>) -> Rassylka {
    Rassylka::builder()
        .recipients(JsonlFile::new(people))
        .store_shared(store)
        .channel(Arc::new(NullChannel))
        .ledger(Arc::new(CountingLedger::default()))
        .clock(Arc::new(ManualClock::starting_at(
            "2026-11-22T07:00:30Z".parse().unwrap(),
        )))
        .concurrency(512)
        .build()
        .unwrap()
}

fn measure(n: usize, bonus: bool, backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let people = dir.path().join("people.jsonl");
    write_recipients(&people, n);
    let rss_before = peak_rss_mib();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (seconds, sent, freezing, sending) = runtime.block_on(async {
        let stores: Vec<Arc<dyn Store>> = match backend {
            Backend::Sqlite => vec![Arc::new(
                SqliteStore::open(dir.path().join("journal.db"))
                    .await
                    .unwrap(),
            )],
            Backend::Postgres { workers } => {
                let url = fresh_database(&postgres_url().unwrap()).await;
                let mut stores: Vec<Arc<dyn Store>> = Vec::new();
                for _ in 0..workers {
                    let store = PgStore::connect(&url, PgConfig::default()).await.unwrap();
                    stores.push(Arc::new(store));
                }
                stores
            }
        };
        let dispatchers: Vec<Rassylka> = stores
            .into_iter()
            .map(|store| dispatcher(&people, store))
            .collect();
        let json = if bonus {
            let open = MAILING.trim_end().strip_suffix('}').unwrap_or(MAILING);
            format!("{open}{BONUS}")
        } else {
            MAILING.to_owned()
        };
        let mailing = Mailing::from_json(&json).unwrap();
        let started = Instant::now();
        dispatchers[0].save(&mailing).await.unwrap();
        dispatchers[0].confirm("m-bench").await.unwrap();
        // Every worker runs what is due at once: one freezes, the others wait for it and
        // then claim beside it. One worker is awaited here, on the thread that blocks on the
        // runtime, as an application's `main` (and `campaign run`) runs it; several are
        // spawned, each a task of its own.
        let reports: Vec<rassylka::RunReport> = if let [one] = dispatchers.as_slice() {
            vec![one.run_due().await.unwrap()]
        } else {
            let runs = dispatchers.iter().map(|d| {
                let d = d.clone();
                tokio::spawn(async move { d.run_due().await.unwrap() })
            });
            futures_util::future::join_all(runs)
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect()
        };
        let sent = reports.iter().map(|r| r.counts.sent).max().unwrap_or(0);
        // The phases as the worker that took longest in each saw them.
        let longest = |phase: fn(&rassylka::RunReport) -> std::time::Duration| {
            reports
                .iter()
                .map(phase)
                .max()
                .unwrap_or_default()
                .as_secs_f64()
        };
        (
            started.elapsed().as_secs_f64(),
            sent,
            longest(|r| r.freezing),
            longest(|r| r.sending),
        )
    });
    let what = if bonus {
        "+ bonus accrual"
    } else {
        "segment + render + journal"
    };
    println!(
        "| {n:>9} | {} | {what} | {sent:>9} | {seconds:>6.2} s | {freezing:>6.2} s | {sending:>6.2} s | {:>9.0} | {:>7.1} MiB | {:>7.1} MiB |",
        backend.label(),
        n as f64 / seconds,
        rss_before,
        peak_rss_mib()
    );
}

fn run_child(n: usize, bonus: &str, backend: Backend) {
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .env("RASSYLKA_BENCH_RECIPIENTS", n.to_string())
        .env("RASSYLKA_BENCH_BONUS", bonus)
        .env("RASSYLKA_BENCH_BACKEND", backend.env())
        .status()
        .unwrap();
    assert!(status.success());
}

fn main() {
    if let Ok(n) = std::env::var("RASSYLKA_BENCH_RECIPIENTS") {
        let bonus = std::env::var("RASSYLKA_BENCH_BONUS").is_ok_and(|b| b == "1");
        measure(n.parse().unwrap(), bonus, Backend::from_env());
        return;
    }
    // `cargo test --benches` runs benches with `--test`: keep that quick.
    let quick = std::env::args().any(|a| a == "--test");
    // (recipients, with the bonus variant): 3 M shows that memory stays where 1 M left it.
    let runs: &[(usize, bool)] = if quick {
        &[(2_000, true)]
    } else {
        &[(100_000, true), (1_000_000, true), (3_000_000, false)]
    };
    println!(
        "| recipients | journal | mailing | sent | time | freeze | send | recipients/s | peak RSS before run | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for &(n, with_bonus) in runs {
        let variants: &[&str] = if with_bonus { &["0", "1"] } else { &["0"] };
        for bonus in variants {
            run_child(n, bonus, Backend::Sqlite);
        }
    }
    // PostgreSQL beside SQLite in the same minutes: 1 M recipients (2 000 in a quick run) with
    // 1, 2 and 4 workers sharing one queue.
    let n = if quick { 2_000 } else { 1_000_000 };
    if postgres_url().is_none() {
        println!(
            "PostgreSQL rows skipped: set RASSYLKA_BENCH_PG=postgres://user@host:port/db to add them"
        );
        return;
    }
    run_child(n, "0", Backend::Sqlite);
    for workers in [1, 2, 4] {
        run_child(n, "0", Backend::Postgres { workers });
    }
}
