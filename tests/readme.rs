//! The README's commands, run as written: every `cargo run --example …` line of its `sh`
//! blocks, in order, in a fresh folder holding `examples/data/`, each exiting 0. (The
//! PostgreSQL lines need a server and run in `postgres_workers`' way elsewhere; they are
//! skipped here.)

use std::path::Path;

use crate::crash::example_binary;
use std::process::Command;

/// Splits a command line as a shell would for these commands: spaces, single quotes, and a
/// trailing `# comment`.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                started = true;
            }
            '#' if !quoted && !started => break,
            ' ' if !quoted => {
                if started {
                    words.push(std::mem::take(&mut current));
                    started = false;
                }
            }
            other => {
                current.push(other);
                started = true;
            }
        }
    }
    if started {
        words.push(current);
    }
    words
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn every_readme_command_runs_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut in_sh = false;
    let mut commands = Vec::new();
    for line in readme.lines() {
        if line.starts_with("```") {
            in_sh = !in_sh && line.trim() == "```sh";
            continue;
        }
        if in_sh && line.starts_with("cargo run --example ") && !line.contains("postgres://") {
            commands.push(line.to_owned());
        }
    }
    assert!(commands.len() >= 15, "{commands:?}");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &root.join("examples/data"),
        &dir.path().join("examples/data"),
    );
    for command in &commands {
        let words = words(command);
        let name = &words[3];
        let args: Vec<&String> = words.iter().skip(5).collect();
        if name == "unsubscribe" {
            the_endpoint_serves_the_runs_links(command, &args, dir.path());
            continue;
        }
        let output = Command::new(example_binary(name))
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "`{command}` exited {:?}: {}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr)
        );
        if name == "quickstart" {
            // It reads to someone new: why 10 matched and fewer got a message, the waiting
            // delivery in its recipient's own time, where the files are.
            let text = String::from_utf8_lossy(&output.stdout);
            for expected in [
                "10 recipients match the audience; 8 will get a message",
                "the other 2 get none",
                "2 messages, 2 segments",
                "waits for the send window: 23.11.2026 09:00 in Asia/Kamchatka",
                "email/*.eml",
                "next:",
            ] {
                assert!(
                    text.contains(expected),
                    "quickstart: no `{expected}` in\n{text}"
                );
            }
        }
    }
}

/// The endpoint runs until Ctrl-C: it is started, asked for the page of a link that an
/// e-mail of the README's run carries, and stopped with SIGINT, which must end it cleanly.
fn the_endpoint_serves_the_runs_links(command: &str, args: &[&String], dir: &Path) {
    use std::io::{Read, Write};
    let mut child = Command::new(example_binary("unsubscribe"))
        .args(args)
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let get = |path: &str| -> Option<String> {
        let mut stream = std::net::TcpStream::connect("127.0.0.1:8080").ok()?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        Some(answer)
    };
    let mut up = false;
    for _ in 0..200 {
        if get("/healthz").is_some_and(|a| a.starts_with("HTTP/1.1 200")) {
            up = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let eml = std::fs::read_dir(dir.join("out/email"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "eml"))
        .unwrap();
    let eml = std::fs::read_to_string(eml).unwrap().replace("\r\n ", " ");
    let link = eml
        .lines()
        .find_map(|l| l.strip_prefix("List-Unsubscribe: <"))
        .and_then(|l| l.split('>').next())
        .unwrap()
        .to_owned();
    let page = get(link.trim_start_matches("http://localhost:8080"));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(up, "`{command}`: nothing answered on 127.0.0.1:8080");
    let page = page.unwrap_or_default();
    assert!(
        page.starts_with("HTTP/1.1 200") && page.contains("o***@example.ru"),
        "`{command}`: {link}: {page}"
    );
    assert!(status.success(), "`{command}` ended {status:?} on Ctrl-C");
}

#[test]
fn words_split_like_a_shell() {
    assert_eq!(
        words("cargo run --example x -- --url 'https://a/{id}' --n 5   # a comment"),
        [
            "cargo",
            "run",
            "--example",
            "x",
            "--",
            "--url",
            "https://a/{id}",
            "--n",
            "5"
        ]
    );
}
