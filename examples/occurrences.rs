//! Prints the next occurrences of a schedule.
//!
//! ```text
//! occurrences --schedule FILE.json --after RFC3339 --count N
//! ```
//! Prints the next N occurrences strictly after the instant, RFC 3339 with the schedule zone's
//! offset, one a line (at most one for a `once` schedule). Bad arguments, an unreadable file or
//! a bad schedule exit 2, anything else 1.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, SecondsFormat, Utc};
use clap::Parser;
use rassylka_schedule::Schedule;
use rassylka_workspace::CliError;

#[derive(Parser)]
#[command(about = "Print the next occurrences of a schedule")]
struct Args {
    /// The schedule as JSON: {"start": "2027-01-31T10:00", "tz": "Europe/Moscow", "every": "month", …}.
    #[arg(long)]
    schedule: PathBuf,
    /// The instant to start after, RFC 3339 (e.g. 2027-01-31T10:00:00+03:00).
    #[arg(long)]
    after: String,
    /// How many occurrences to print at most.
    #[arg(long)]
    count: usize,
}

fn run(args: &Args) -> Result<(), CliError> {
    let after = DateTime::parse_from_rfc3339(&args.after)
        .map_err(|e| CliError::bad(format!("--after `{}`: {e}; expected RFC 3339", args.after)))?
        .with_timezone(&Utc);
    let json = std::fs::read_to_string(&args.schedule)
        .map_err(|e| CliError::bad(format!("{}: {e}", args.schedule.display())))?;
    let schedule = Schedule::from_json(&json)
        .map_err(|e| CliError::bad(format!("{}: {e}", args.schedule.display())))?;

    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for occurrence in schedule.next_n_after(after, args.count) {
        let line = occurrence
            .instant()
            .to_rfc3339_opts(SecondsFormat::Secs, false);
        writeln!(out, "{line}").map_err(|e| CliError::failed(format!("stdout: {e}")))?;
    }
    out.flush()
        .map_err(|e| CliError::failed(format!("stdout: {e}")))
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => return CliError::from_clap(e),
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}
