//! Several `campaign run` workers on one PostgreSQL journal (SPEC §7a, a real server named by
//! `RASSYLKA_TEST_PG`; skipped with one line without it): three workers killed with SIGKILL at
//! random moments and replaced until the mailing is done, and a worker stopped past its lease.

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use crate::crash::{Dice, write_inputs};
use crate::workers::{finished, never_twice_never_lost, report, telegram, worker};

/// A fresh database on the test server, or `None` (and one line why) without a server.
pub(crate) async fn fresh_database() -> Option<String> {
    let admin = match std::env::var("RASSYLKA_TEST_PG") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            say_skipped();
            return None;
        }
    };
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = format!(
        "rassylka_{}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let store = rassylka::PgStore::connect(
        &admin,
        rassylka::store::PgConfig {
            schema: Some("rassylka_admin".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    store
        .raw_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    rassylka::store::Store::close(&store).await.unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    Some(format!("{base}/{name}"))
}

/// The PostgreSQL tests of this binary take turns: one of them restarts the server.
static SERVER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const RECIPIENTS: usize = 20_000;
const CONCURRENCY: usize = 16;
const WORKERS: usize = 3;
const KILLS: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_killed_at_random_never_message_a_chat_twice() {
    let _turn = SERVER.lock().await;
    let Some(db) = fresh_database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path(), RECIPIENTS);
    let (server, channels) = telegram(dir.path(), Duration::from_millis(2)).await;
    let path = dir.path().to_owned();
    let journal = db.clone();
    let (kills, last) = tokio::task::spawn_blocking(move || {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let mut dice = Dice(seed | 1);
        let start = |path: &Path| worker(path, &journal, Some(&channels), "2");
        let mut running: Vec<Child> = (0..WORKERS).map(|_| start(&path)).collect();
        let mut kills = 0;
        while kills < KILLS {
            std::thread::sleep(Duration::from_millis(300 + dice.next(900)));
            let victim = dice.next(WORKERS as u64) as usize;
            if running[victim].try_wait().unwrap().is_none() {
                running[victim].kill().unwrap();
                kills += 1;
            }
            running[victim].wait().unwrap();
            running[victim] = start(&path);
        }
        for child in running {
            finished(child);
        }
        // One more, after everything: finds nothing left to do.
        (kills, report(&finished(start(&path))))
    })
    .await
    .unwrap();
    eprintln!("{kills} kills; last run: {last}");
    let (_, unknown) = never_twice_never_lost(&server, &db, RECIPIENTS).await;
    assert!(
        unknown <= CONCURRENCY * kills,
        "{unknown} unknown after {kills} kills"
    );
    assert_eq!(last["state"], "done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_worker_on_postgres_has_its_late_results_refused() {
    let _turn = SERVER.lock().await;
    let Some(db) = fresh_database().await else {
        return;
    };
    crate::workers::a_stalled_worker_is_fenced_off(db).await;
}

/// Restarts the test server (its data folder is `RASSYLKA_TEST_PG_DATA`, as `.ci/run` sets).
fn restart_server() -> bool {
    let Ok(data) = std::env::var("RASSYLKA_TEST_PG_DATA") else {
        return false;
    };
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .max()
        .unwrap();
    let status = std::process::Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin.join("pg_ctl"))
        .args(["-D", &data, "-m", "immediate", "-w", "restart"])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "pg_ctl restart failed");
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_run_ends_the_worker_clearly_and_the_next_run_finishes() {
    if std::env::var("RASSYLKA_TEST_PG_DATA").is_err() {
        return;
    }
    let _turn = SERVER.lock().await;
    let Some(db) = fresh_database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path(), 5_000);
    let (server, channels) = telegram(dir.path(), Duration::from_millis(10)).await;
    let path = dir.path().to_owned();
    let journal = db.clone();
    let (interrupted, last) = tokio::task::spawn_blocking(move || {
        let child = worker(&path, &journal, Some(&channels), "2");
        std::thread::sleep(Duration::from_millis(1500));
        assert!(restart_server());
        let interrupted = child.wait_with_output().unwrap();
        // The next run waits out the lost worker's lease and finishes.
        let last = report(&finished(worker(&path, &journal, Some(&channels), "2")));
        (interrupted, last)
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&interrupted.stderr);
    eprintln!(
        "interrupted run: {:?} {stderr}\nnext run: {last}",
        interrupted.status
    );
    // A worker whose connections broke mid-transaction ends with the cause; one that only
    // met fresh connections afterwards may go on and finish.
    match interrupted.status.code() {
        Some(1) => assert!(stderr.contains("journal failed: postgres"), "{stderr}"),
        Some(0) => {}
        other => panic!("exit {other:?}: {stderr}"),
    }
    assert!(
        !stderr.contains("127.0.0.1"),
        "the URL is not echoed: {stderr}"
    );
    let (_, unknown) = never_twice_never_lost(&server, &db, 5_000).await;
    assert!(unknown <= CONCURRENCY, "{unknown} unknown");
    assert_eq!(last["state"], "done");
}

/// Says once, past the test harness's capture, that the PostgreSQL tests did not run.
fn say_skipped() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "PostgreSQL tests skipped: set RASSYLKA_TEST_PG=postgres://user@host:port/db (or run .ci/run, which starts a server) to run them"
        );
    });
}
