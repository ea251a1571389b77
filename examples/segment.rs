//! `segment`: the audience of a rule over a recipients file (SPEC §8).
//!
//! ```text
//! segment --rule FILE.json --recipients FILE.jsonl --today YYYY-MM-DD [--tz ZONE]
//!         [--class advertising|service] [--ids] [--threads N]
//! ```
//!
//! Prints one JSON line
//! `{"total":N,"matched":N,"per_channel":{"email":N,"sms":N,"telegram":N,"vk":N,"push":N},"excluded":{"no_mailings":N,"no_consent":N,"invalid_contact":N,"unreachable":N}}`,
//! or with `--ids` the matched recipient ids, one a line, in input order. Errors go to stderr;
//! the exit code is 2 for bad input (arguments, the rule, a malformed recipients line) and 1
//! for anything else.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use chrono::NaiveDate;
use clap::{Parser, ValueEnum};
use rassylka_model::MessageClass;
use rassylka_segment::{CompileOptions, Rule, ScanOptions, Segment, Tz};

/// Counts (or lists) the recipients a segment rule selects on a date.
#[derive(Debug, Parser)]
#[command(name = "segment")]
struct Args {
    /// The rule, as JSON (SPEC §4).
    #[arg(long, value_name = "FILE.json")]
    rule: PathBuf,
    /// The recipients, one JSON object a line (SPEC §2).
    #[arg(long, value_name = "FILE.jsonl")]
    recipients: PathBuf,
    /// The evaluation date: the occurrence's civil date in the mailing's zone.
    #[arg(long, value_name = "YYYY-MM-DD")]
    today: NaiveDate,
    /// The mailing's IANA time zone; instants are read as dates in it.
    #[arg(long, value_name = "ZONE", default_value = "Europe/Moscow")]
    tz: Tz,
    /// Message class: advertising also needs consent and no «no mailings» flag.
    #[arg(long, value_enum, default_value_t = Class::Service)]
    class: Class,
    /// Print the matched ids instead of the counts.
    #[arg(long)]
    ids: bool,
    /// Threads parsing the recipients (the output is the same with any number); all cores
    /// by default.
    #[arg(long, value_name = "N")]
    threads: Option<std::num::NonZeroUsize>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Class {
    Advertising,
    Service,
}

/// A failure and its exit code.
struct Failure {
    bad_input: bool,
    message: String,
}

impl Failure {
    fn bad_input(message: String) -> Self {
        Failure {
            bad_input: true,
            message,
        }
    }

    fn other(message: String) -> Self {
        Failure {
            bad_input: false,
            message,
        }
    }
}

fn open(path: &Path, what: &str) -> Result<File, Failure> {
    // A path that does not open is a bad argument, not a failure of the program.
    File::open(path)
        .map_err(|e| Failure::bad_input(format!("cannot open {what} {}: {e}", path.display())))
}

fn run(args: &Args) -> Result<String, Failure> {
    let text = io::read_to_string(open(&args.rule, "rule")?)
        .map_err(|e| Failure::other(format!("reading rule {}: {e}", args.rule.display())))?;
    let rule = Rule::from_json(&text)
        .map_err(|e| Failure::bad_input(format!("rule {}: {e}", args.rule.display())))?;
    let segment = Segment::compile(&rule, &CompileOptions::new(args.today, args.tz))
        .map_err(|e| Failure::bad_input(format!("rule {}: {e}", args.rule.display())))?;
    let class = match args.class {
        Class::Advertising => MessageClass::Advertising,
        Class::Service => MessageClass::Service,
    };
    let file = open(&args.recipients, "recipients")?;
    let threads = args
        .threads
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, std::num::NonZeroUsize::get);
    let options = ScanOptions {
        threads,
        ids: args.ids,
    };
    // Output waits for the whole file, so a bad line never leaves half a result on stdout.
    let audience = Arc::new(segment)
        .scan_jsonl(file, class, options)
        .map_err(|e| {
            let message = format!("recipients {}: {e}", args.recipients.display());
            if e.is_bad_input() {
                Failure::bad_input(message)
            } else {
                Failure::other(message)
            }
        })?;
    if args.ids {
        let mut ids = String::new();
        for id in &audience.ids {
            ids.push_str(id);
            ids.push('\n');
        }
        return Ok(ids);
    }
    let mut line = serde_json::to_string(&audience.counts)
        .map_err(|e| Failure::other(format!("writing counts: {e}")))?;
    line.push('\n');
    Ok(line)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = run(&args).and_then(|out| {
        let mut stdout = io::stdout().lock();
        stdout
            .write_all(out.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|e| Failure::other(format!("writing output: {e}")))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("segment: {}", failure.message);
            ExitCode::from(if failure.bad_input { 2 } else { 1 })
        }
    }
}
