//! The `segment` command's work on a recipients export, beside DuckDB reading the same file in
//! the same minutes (issue «faster than DuckDB»).
//!
//! The file is 1 M recipients from `benches/segment-peers/gen.py` (seeded, about 580 MB),
//! the rule `benches/segment-peers/rule.json` (6 leaves), evaluated on 2026-11-22 in
//! Europe/Moscow for service messages. Each measurement is a fresh process (so its peak
//! memory, VmHWM, is its own); rassylka and DuckDB (`benches/segment-peers/duck.py`) take turns,
//! with 1 and with 2 threads, for several rounds, and the table gives each one's median.
//! Both must find the same `matched`, or the bench stops. Peak memory is each process's own
//! (DuckDB's through `/usr/bin/time`, with its Python interpreter).
//!
//! `cargo bench --bench ingest` generates the file under `target/segment-peers/` the first
//! time (Python 3). `RASSYLKA_INGEST_FILE=PATH` takes another file, `RASSYLKA_INGEST_ROUNDS=N`
//! sets the rounds (5). DuckDB is the `duckdb` package from PyPI (`pip install duckdb`): a
//! measuring tool, not a dependency; without it only rassylka's rows are printed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use rassylka_model::MessageClass;
use rassylka_segment::{CompileOptions, Rule, ScanOptions, Segment, Tz};
use rassylka_workspace::peak_rss_mib;

const PEERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/segment-peers");

/// One measurement: seconds, matched, peak MiB.
type Run = (f64, u64, f64);

/// In the child process: the segment command's work, once.
fn measure_rassylka(file: &Path, threads: usize) -> Run {
    let started = Instant::now();
    let rule = Rule::from_json(&std::fs::read_to_string(format!("{PEERS}/rule.json")).unwrap())
        .expect("the bundled rule");
    let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
    let zone: Tz = "Europe/Moscow".parse().unwrap();
    let options = CompileOptions::new(today, zone);
    let segment = Arc::new(Segment::compile(&rule, &options).unwrap());
    let reader = std::fs::File::open(file).unwrap();
    let options = ScanOptions {
        threads,
        ids: false,
    };
    let audience = segment
        .scan_jsonl(reader, MessageClass::Service, options)
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    (seconds, audience.counts.matched, peak_rss_mib())
}

fn run_child(file: &Path, threads: usize) -> Run {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--child", &threads.to_string()])
        .arg(file)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let mut parts = text.split_whitespace().map(|p| p.parse::<f64>().unwrap());
    let mut next = || parts.next().unwrap();
    (next(), next() as u64, next())
}

/// DuckDB's run through `duck.py`; its peak memory from `/usr/bin/time` when present (the
/// Python interpreter's included).
fn run_duckdb(file: &Path, threads: usize) -> Run {
    let timed = Path::new("/usr/bin/time").exists();
    let mut command = if timed {
        let mut time = Command::new("/usr/bin/time");
        time.args(["-f", "%M", "python3"]);
        time
    } else {
        Command::new("python3")
    };
    let started = Instant::now();
    let output = command
        .arg(format!("{PEERS}/duck.py"))
        .arg(file)
        .arg(threads.to_string())
        .output()
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(output.status.success(), "{output:?}");
    let matched = String::from_utf8(output.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let kib: f64 = String::from_utf8_lossy(&output.stderr)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0.0);
    (seconds, matched, kib / 1024.0)
}

fn duckdb_present() -> bool {
    Command::new("python3")
        .args(["-c", "import duckdb"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn input_file() -> PathBuf {
    if let Ok(path) = std::env::var("RASSYLKA_INGEST_FILE") {
        return path.into();
    }
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/segment-peers/recipients.jsonl"
    ));
    if !path.exists() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        eprintln!("generating {} (1 M recipients)…", path.display());
        let status = Command::new("python3")
            .arg(format!("{PEERS}/gen.py"))
            .arg("1000000")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success(), "gen.py failed");
    }
    path
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        let (seconds, matched, mib) =
            measure_rassylka(Path::new(&args[2]), args[1].parse().unwrap());
        println!("{seconds} {matched} {mib}");
        return;
    }
    if args.iter().any(|a| a == "--test") {
        // `cargo test --benches`: a compile check; the file is half a gigabyte.
        return;
    }
    let file = input_file();
    let rounds: usize = std::env::var("RASSYLKA_INGEST_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let duckdb = duckdb_present();
    if !duckdb {
        eprintln!("DuckDB not found (pip install duckdb): rassylka's rows only");
    }
    let size = std::fs::metadata(&file).unwrap().len() as f64 / 1e6;
    println!("{} ({size:.0} MB), {rounds} rounds", file.display());
    let mut rows: Vec<(String, usize, Vec<Run>)> = Vec::new();
    for threads in [1, 2] {
        rows.push(("rassylka".into(), threads, Vec::new()));
        if duckdb {
            rows.push(("DuckDB".into(), threads, Vec::new()));
        }
    }
    for round in 1..=rounds {
        for (engine, threads, runs) in &mut rows {
            let run = if engine == "rassylka" {
                run_child(&file, *threads)
            } else {
                run_duckdb(&file, *threads)
            };
            println!(
                "round {round}: {engine:>8}, {threads} thread(s): {:.2} s, matched {}",
                run.0, run.1
            );
            runs.push(run);
        }
        let matched: Vec<u64> = rows.iter().map(|(_, _, runs)| runs[round - 1].1).collect();
        assert!(
            matched.windows(2).all(|w| w[0] == w[1]),
            "the engines disagree: {matched:?}"
        );
    }
    println!("\n| engine | threads | median | min | max | peak memory |");
    println!("|---|---|---|---|---|---|");
    for (engine, threads, runs) in &rows {
        let seconds: Vec<f64> = runs.iter().map(|r| r.0).collect();
        let mib = median(runs.iter().map(|r| r.2).collect());
        let memory = if mib > 0.0 {
            format!("{mib:.0} MiB")
        } else {
            "not measured".into()
        };
        println!(
            "| {engine} | {threads} | {:.2} s | {:.2} s | {:.2} s | {memory} |",
            median(seconds.clone()),
            seconds.iter().copied().fold(f64::INFINITY, f64::min),
            seconds.iter().copied().fold(0.0, f64::max),
        );
    }
}
