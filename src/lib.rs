//! Shared pieces of the workspace's examples, benchmarks and cross-crate tests: the bundled
//! sample recipients and mailing texts. Not published; applications depend on `rassylka`.
//!
//! ```
//! let recipients = rassylka_workspace::sample_recipients()?;
//! assert!(recipients.len() >= 5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bench;
pub mod fuzz;

use rassylka_model::{ModelError, Recipient, read_jsonl};

/// The bundled sample recipients (`examples/data/recipients.jsonl`).
pub const SAMPLE_RECIPIENTS_JSONL: &str = include_str!("../examples/data/recipients.jsonl");

/// Parses [`SAMPLE_RECIPIENTS_JSONL`].
///
/// # Errors
/// A [`ModelError::Line`] if the bundled file were malformed (a test keeps it valid).
pub fn sample_recipients() -> Result<Vec<Recipient>, ModelError> {
    read_jsonl(SAMPLE_RECIPIENTS_JSONL.as_bytes()).collect()
}

/// An error of an example binary: bad input exits 2, anything else 1 (SPEC §8).
#[derive(Debug)]
pub enum CliError {
    /// The user's input is wrong: arguments, files, JSON, templates.
    BadInput(String),
    /// Something else failed.
    Failed(String),
    /// Everything that could be done was done, but something needs attention (a mailing
    /// paused by an outage or stopped by its configuration): `output` still goes to stdout,
    /// `message` to stderr, and the exit code is 3.
    Attention {
        /// What stdout gets, as on success.
        output: String,
        /// Why it needs attention.
        message: String,
    },
}

impl CliError {
    /// Bad input, from anything printable.
    pub fn bad(message: impl std::fmt::Display) -> Self {
        CliError::BadInput(message.to_string())
    }

    /// Another failure, from anything printable.
    pub fn failed(message: impl std::fmt::Display) -> Self {
        CliError::Failed(message.to_string())
    }

    /// Prints the message to stderr and gives the exit code.
    pub fn report(self) -> std::process::ExitCode {
        match self {
            CliError::BadInput(message) => {
                eprintln!("error: {message}");
                std::process::ExitCode::from(2)
            }
            CliError::Failed(message) => {
                eprintln!("error: {message}");
                std::process::ExitCode::from(1)
            }
            CliError::Attention { output, message } => {
                if !output.is_empty() {
                    println!("{output}");
                }
                eprintln!("attention: {message}");
                std::process::ExitCode::from(3)
            }
        }
    }

    /// Reports an argument error of clap: help and version exit 0, mistakes exit 2.
    pub fn from_clap(error: clap::Error) -> std::process::ExitCode {
        let code = if error.use_stderr() { 2 } else { 0 };
        let _ = error.print();
        std::process::ExitCode::from(code)
    }
}

/// Reads a template file, dropping one trailing line break that editors add, so that the
/// binaries' «text and one newline» output does not end in a blank line.
///
/// # Errors
/// [`CliError::BadInput`] naming the file when it cannot be read.
pub fn read_template_file(path: &std::path::Path) -> Result<String, CliError> {
    let mut text = std::fs::read_to_string(path)
        .map_err(|e| CliError::bad(format!("{}: {e}", path.display())))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

/// Runs an example of this workspace as a user would (`cargo run --example NAME -- ARGS`),
/// for the command-line tests.
///
/// # Panics
/// When cargo itself cannot be started: a broken test environment, not a test failure.
pub fn run_example(name: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--example", name, "--"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs")
}

/// Writes `text` to `dir/name` and returns the path as a string, for command lines in tests.
///
/// # Panics
/// When the file cannot be written or its path is not UTF-8.
pub fn write_file(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("the test directory is writable");
    path.to_str().expect("a UTF-8 temp path").to_owned()
}

/// The dispatcher-wide settings of a channels file on a builder: tariffs, concurrency, the
/// unsubscribe settings (their `env:` secrets read from the environment) and the frequency
/// cap.
///
/// # Errors
/// [`CliError::BadInput`] naming an environment variable a secret refers to that is not set.
pub fn with_channels_file(
    mut builder: rassylka::RassylkaBuilder,
    file: &rassylka::channels::ChannelsFile,
) -> Result<rassylka::RassylkaBuilder, CliError> {
    for (channel, price) in &file.tariffs {
        builder = builder.tariff(*channel, price.0);
    }
    if let Some(n) = file.concurrency {
        builder = builder.concurrency(n);
    }
    if let Some(settings) = &file.unsubscribe {
        let resolved = settings
            .resolve(&|name| std::env::var(name).ok())
            .map_err(|e| CliError::bad(format!("channels: unsubscribe: {e}")))?;
        builder = builder.unsubscribe(resolved);
    }
    if let Some(cap) = file.frequency_cap {
        builder = builder.frequency_cap(cap);
    }
    Ok(builder)
}

/// This process's peak resident memory (VmHWM) in MiB, for the bench binaries; 0 where
/// `/proc` does not tell.
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
