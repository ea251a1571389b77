//! The dispatcher from a terminal (SPEC §8).
//!
//! ```text
//! campaign --db FILE preview --mailing M.json --recipients R.jsonl [--channels C.json] [--today YYYY-MM-DD]
//! campaign --db FILE cost    --mailing M.json --recipients R.jsonl [--channels C.json] [--today YYYY-MM-DD]
//! campaign --db FILE run     --mailing M.json --recipients R.jsonl --outbox DIR [--channels C.json]
//!                            [--now RFC3339] [--skip-malformed] [--resend-unknown]
//! campaign --db FILE history [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--kind one_time|periodic]
//! campaign --db FILE journal --mailing-id ID [--occurrence KEY] [--status S] [--recipient-id ID]
//! campaign --db FILE copy    --mailing-id ID --new-id NEW [--now RFC3339]
//! campaign --db FILE export  --what history|journal [the same filters] --out FILE.xlsx [--account-url URL]
//! campaign --db FILE notify  --notices N.json --event E.json --sender S.json --recipients R.jsonl --outbox DIR [--channels C.json]
//! campaign --db FILE report  (--mailing-id ID | --activity-id A) --purchases P.jsonl [--recipients R.jsonl]
//!                            [--window-days N] [--bonus-value X] [--format json|html]
//! campaign --db FILE unsubscribes [--since RFC3339]
//! campaign --db FILE resubscribe --recipient-id ID
//! ```
//! `preview` prints `{"matched":N,"per_channel":{"email":N,"sms":N,"telegram":N,"vk":N,"push":N}}`,
//! `cost` `{"per_channel":{"sms":{"messages":N,"segments":N,"cost":X},…},"total":X}`, `run` a
//! JSON summary of what it did, `history` one JSON line per occurrence, `journal` one per
//! delivery, `copy` the new draft mailing, `notify` `{"event","status","channel","key","cost"}`,
//! `unsubscribes` `{"recipient_id","mailing_id","channel","at","source"}` per recipient;
//! `export` writes a workbook. `run` sends every due
//! occurrence up to now and exits; run again after a crash, it finishes the work without
//! sending anything twice. Without `--channels` every channel writes to the outbox; with it,
//! the channels named there use their real adapters. Bad input exits 2, anything else 1; a
//! `run` that did what it could while a mailing is paused (an outage, a quota) or stopped (its
//! configuration) exits 3 with the reason on stderr.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Parser, Subcommand};
use rassylka::channels::{Channel, ChannelsFile, FileOutbox};
use rassylka::model::ChannelKind;
use rassylka::store::prelude::*;
use rassylka::{
    Clock, DispatchError, Dispatcher, JsonlFile, Mailing, ManualClock, MemoryLedger, MemorySource,
    Rassylka, SystemClock,
};
use rassylka_workspace::CliError;
use rust_decimal::Decimal;

mod consent;
mod notify;
mod report;
mod run;
mod views;

#[derive(Parser)]
#[command(about = "Run mailings from a terminal")]
struct Args {
    /// The journal: a SQLite file, or a postgres://user@host/database URL.
    #[arg(long)]
    db: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
pub(crate) struct Inputs {
    /// The mailing JSON.
    #[arg(long)]
    mailing: PathBuf,
    /// Recipients, one JSON object a line.
    #[arg(long)]
    recipients: PathBuf,
    /// Channel adapters and tariffs.
    #[arg(long)]
    channels: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Exact counts per channel.
    Preview {
        #[command(flatten)]
        inputs: Inputs,
        /// The evaluation date (default: the next occurrence's).
        #[arg(long)]
        today: Option<String>,
    },
    /// Cost by the channels file's tariffs.
    Cost {
        #[command(flatten)]
        inputs: Inputs,
        /// The evaluation date (default: the next occurrence's).
        #[arg(long)]
        today: Option<String>,
    },
    /// Send every due occurrence up to now.
    Run(run::RunArgs),
    /// One JSON line per occurrence, newest first, with its totals.
    History {
        #[command(flatten)]
        filter: views::HistoryFilter,
    },
    /// The journal of a mailing, one JSON line per delivery.
    Journal {
        #[command(flatten)]
        filter: views::JournalFilter,
    },
    /// Copies a one-time mailing as a new draft scheduled for now.
    Copy {
        /// The mailing to copy.
        #[arg(long)]
        mailing_id: String,
        /// The copy's id.
        #[arg(long)]
        new_id: String,
        /// «Now» (default: the system clock).
        #[arg(long)]
        now: Option<String>,
    },
    /// Writes history or journal to an XLSX workbook.
    Export(views::Export),
    /// Sends one service notice for an event from the host system.
    Notify(notify::Notify),
    /// Whether a mailing or an activity paid off: conversion, revenue, ROI, lift.
    Report(report::Report),
    /// The recipients unsubscribed now, one JSON line each.
    Unsubscribes {
        /// Only those unsubscribed at or after this instant (RFC 3339).
        #[arg(long)]
        since: Option<String>,
    },
    /// Clears a recipient's unsubscribe.
    Resubscribe {
        /// The recipient.
        #[arg(long)]
        recipient_id: String,
    },
}

/// A dispatcher that only reads and writes the journal (no recipients, no channels).
pub(crate) async fn journal_reader(
    db: &str,
    clock: Arc<dyn Clock>,
    writes: bool,
) -> Result<Reader, CliError> {
    let store = if writes {
        open_journal(db).await?
    } else {
        rassylka::store::connect_read_only(db)
            .await
            .map_err(|e| journal_open_error(db, e))?
    };
    let dispatcher = Rassylka::builder()
        .recipients(MemorySource::new(Vec::new()))
        .store_shared(store.clone())
        .clock(clock)
        .build()
        .map_err(dispatch_error)?;
    Ok(Reader { dispatcher, store })
}

/// A dispatcher over the journal alone, and the journal to close when done.
pub(crate) struct Reader {
    pub(crate) dispatcher: Rassylka,
    store: Arc<dyn Store>,
}

impl Reader {
    /// Closes the journal (SQLite moves its log into the file) whatever `result` is.
    pub(crate) async fn finish<T>(self, result: Result<T, CliError>) -> Result<T, CliError> {
        let closed = self.store.close().await.map_err(store_error);
        let value = result?;
        closed?;
        Ok(value)
    }
}

/// `--now` as an instant.
pub(crate) fn instant(text: &str) -> Result<DateTime<Utc>, CliError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| {
            bad(format!(
                "--now `{text}`: expected an RFC 3339 instant such as 2026-11-22T10:00:00+03:00"
            ))
        })
}

pub(crate) fn clock_at(now: Option<&str>) -> Result<Arc<dyn Clock>, CliError> {
    Ok(match now {
        Some(text) => Arc::new(ManualClock::starting_at(instant(text)?)),
        None => Arc::new(SystemClock),
    })
}

/// The adapters a channels file names, and the outbox for every other channel of `kinds`.
pub(crate) fn adapters(
    file: Option<&ChannelsFile>,
    kinds: &[ChannelKind],
    outbox: &Path,
) -> Result<BTreeMap<ChannelKind, Arc<dyn Channel>>, CliError> {
    let mut channels: BTreeMap<ChannelKind, Arc<dyn Channel>> = match file {
        Some(file) => file
            .build(&|name| std::env::var(name).ok())
            .map_err(|e| bad(format!("channels: {e}")))?,
        None => BTreeMap::new(),
    };
    for kind in kinds {
        if !channels.contains_key(kind) {
            let outbox = FileOutbox::open(outbox, *kind)
                .map_err(|e| CliError::failed(format!("{}: {e}", outbox.display())))?;
            channels.insert(*kind, Arc::new(outbox));
        }
    }
    Ok(channels)
}

pub(crate) fn bad(e: impl std::fmt::Display) -> CliError {
    CliError::bad(e)
}

pub(crate) fn dispatch_error(e: DispatchError) -> CliError {
    // SPEC §8: one `FILE:LINE: what is wrong` per unreadable recipients line.
    if let DispatchError::MalformedRecipients(problems) = &e {
        let lines: Vec<String> = problems
            .iter()
            .map(|p| {
                let line = p.path.strip_prefix("line ").unwrap_or(&p.path);
                format!("{}:{line}: {}", recipients_file(), p.message)
            })
            .collect();
        return CliError::bad(format!(
            "{} unreadable recipient line(s), nothing was sent (--skip-malformed journals them as skipped and sends the rest):\n{}",
            problems.len(),
            lines.join("\n")
        ));
    }
    if e.is_bad_input() {
        CliError::bad(e)
    } else {
        CliError::failed(e)
    }
}

/// The journal `--db` names; a URL is never echoed (it may hold a password).
async fn open_journal(db: &str) -> Result<Arc<dyn Store>, CliError> {
    rassylka::store::connect(db)
        .await
        .map_err(|e| journal_open_error(db, e))
}

/// A journal that cannot be opened; a URL is never echoed (it may hold a password).
fn journal_open_error(db: &str, e: rassylka::store::StoreError) -> CliError {
    // A file that is not a journal (missing for a read, empty, another schema) is the
    // caller's input; anything else is the journal failing.
    let wrong_file = e.kind() == rassylka::store::StoreErrorKind::Invalid;
    let message = if rassylka::store::is_postgres_url(db) {
        format!("--db: {e}")
    } else if e.to_string().starts_with(db) {
        e.to_string()
    } else {
        format!("{db}: {e}")
    };
    if wrong_file {
        CliError::bad(message)
    } else {
        CliError::failed(message)
    }
}

pub(crate) fn store_error(e: rassylka::store::StoreError) -> CliError {
    CliError::failed(format!("the journal failed: {e}"))
}

fn read(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|e| bad(format!("{}: {e}", path.display())))
}

struct Setup {
    mailing: Mailing,
    channels_file: Option<ChannelsFile>,
}

pub(crate) fn load(inputs: &Inputs) -> Result<Setup, CliError> {
    if !inputs.recipients.is_file() {
        return Err(bad(format!(
            "{}: no such recipients file",
            inputs.recipients.display()
        )));
    }
    let mailing = Mailing::from_json(&read(&inputs.mailing)?)
        .map_err(|e| bad(format!("{}: {e}", inputs.mailing.display())))?;
    let channels_file = inputs
        .channels
        .as_ref()
        .map(|path| {
            ChannelsFile::from_json(&read(path)?)
                .map_err(|e| bad(format!("{}: {e}", path.display())))
        })
        .transpose()?;
    Ok(Setup {
        mailing,
        channels_file,
    })
}

fn parse_date(text: &Option<String>) -> Result<Option<NaiveDate>, CliError> {
    text.as_ref()
        .map(|d| {
            NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|e| bad(format!("--today `{d}`: {e}")))
        })
        .transpose()
}

pub(crate) async fn dispatcher(
    db: &str,
    inputs: &Inputs,
    setup: &Setup,
    channels: BTreeMap<ChannelKind, Arc<dyn Channel>>,
    clock: Arc<dyn Clock>,
    skip_malformed: bool,
    lease: Option<Duration>,
) -> Result<(Rassylka, Arc<dyn Store>), CliError> {
    let store = open_journal(db).await?;
    let mut builder = Rassylka::builder()
        .recipients(JsonlFile::new(&inputs.recipients))
        .store_shared(store.clone())
        // A terminal has no loyalty system to credit: bonus accruals are recorded in the
        // journal's `accruals` table, which is where an integration would read them from.
        .ledger(Arc::new(MemoryLedger::default()))
        .clock(clock)
        .skip_malformed(skip_malformed)
        .max_wait(Duration::from_secs(30));
    if let Some(lease) = lease {
        builder = builder.lease(lease);
    }
    if let Some(file) = &setup.channels_file {
        builder = rassylka_workspace::with_channels_file(builder, file)?;
    }
    for channel in channels.into_values() {
        builder = builder.channel(channel);
    }
    Ok((builder.build().map_err(dispatch_error)?, store))
}

fn counts_json(per_channel: &BTreeMap<ChannelKind, u64>) -> String {
    let items: Vec<String> = ChannelKind::ALL
        .iter()
        .map(|k| format!("\"{k}\":{}", per_channel.get(k).copied().unwrap_or(0)))
        .collect();
    format!("{{{}}}", items.join(","))
}

/// The balance the SMS gateway of the channels file reports (SMS.ru, SMSC.ru), if it has one;
/// a gateway that cannot tell is reported on stderr and left out.
async fn sms_balance(setup: &Setup) -> Option<Decimal> {
    let file = setup.channels_file.as_ref()?;
    let channels = file.build(&|name| std::env::var(name).ok()).ok()?;
    let sms = channels.get(&ChannelKind::Sms)?;
    match sms.verify().await {
        Ok(verification) => verification.balance.map(|b| b.decimal()),
        Err(e) => {
            eprintln!("warning: the SMS gateway's balance could not be read: {e}");
            None
        }
    }
}

/// `,"held_out":N` for a mailing with a holdout; nothing otherwise, so the line stays the
/// one SPEC §8 prints.
fn held_out(mailing: &Mailing, count: u64) -> String {
    if mailing.holdout.is_some() {
        format!(",\"held_out\":{count}")
    } else {
        String::new()
    }
}

fn decimal(d: Decimal) -> String {
    d.normalize().to_string()
}

async fn run(args: Args) -> Result<String, CliError> {
    match &args.command {
        Command::Preview { inputs, today } | Command::Cost { inputs, today } => {
            let setup = load(inputs)?;
            let today = parse_date(today)?;
            let (dispatcher, _) = dispatcher(
                &args.db,
                inputs,
                &setup,
                BTreeMap::new(),
                Arc::new(SystemClock),
                false,
                None,
            )
            .await?;
            if matches!(args.command, Command::Preview { .. }) {
                let preview = dispatcher
                    .preview(&setup.mailing, today)
                    .await
                    .map_err(dispatch_error)?;
                Ok(format!(
                    "{{\"matched\":{},\"per_channel\":{}{}}}",
                    preview.matched,
                    counts_json(&preview.per_channel),
                    held_out(&setup.mailing, preview.held_out)
                ))
            } else {
                let cost = dispatcher
                    .cost(&setup.mailing, today)
                    .await
                    .map_err(dispatch_error)?;
                let items: Vec<String> = cost
                    .per_channel
                    .iter()
                    .map(|(k, c)| match k {
                        ChannelKind::Sms => format!(
                            "\"{k}\":{{\"messages\":{},\"segments\":{},\"cost\":{}}}",
                            c.messages,
                            c.units,
                            decimal(c.cost)
                        ),
                        _ => format!(
                            "\"{k}\":{{\"messages\":{},\"cost\":{}}}",
                            c.messages,
                            decimal(c.cost)
                        ),
                    })
                    .collect();
                let sms_cost = cost
                    .per_channel
                    .get(&ChannelKind::Sms)
                    .map(|c| c.cost)
                    .unwrap_or_default();
                let balance = match sms_balance(&setup).await {
                    Some(balance) => {
                        if sms_cost > balance {
                            eprintln!(
                                "warning: the SMS cost {} exceeds the gateway's balance {}",
                                decimal(sms_cost),
                                decimal(balance)
                            );
                        }
                        format!(",\"sms_balance\":{}", decimal(balance))
                    }
                    None => String::new(),
                };
                Ok(format!(
                    "{{\"per_channel\":{{{}}},\"total\":{}{balance}{}}}",
                    items.join(","),
                    decimal(cost.total),
                    held_out(&setup.mailing, cost.held_out)
                ))
            }
        }
        Command::Run(run_args) => run::run(&args.db, run_args).await,
        Command::History { filter } => {
            let reader = journal_reader(&args.db, Arc::new(SystemClock), false).await?;
            let done = views::history(&reader.dispatcher, filter).await;
            reader.finish(done).await?;
            Ok(String::new())
        }
        Command::Journal { filter } => {
            let reader = journal_reader(&args.db, Arc::new(SystemClock), false).await?;
            let done = views::journal(&reader.dispatcher, filter).await;
            reader.finish(done).await?;
            Ok(String::new())
        }
        Command::Copy {
            mailing_id,
            new_id,
            now,
        } => {
            // `--now` is the instant itself: a clock that does not run on from it.
            let clock: Arc<dyn Clock> = match now {
                Some(text) => Arc::new(views::Stopped(instant(text)?)),
                None => Arc::new(SystemClock),
            };
            let reader = journal_reader(&args.db, clock, true).await?;
            let done = views::copy(&reader.dispatcher, mailing_id, new_id).await;
            reader.finish(done).await
        }
        Command::Notify(args_of) => notify::notify(&args.db, args_of).await,
        Command::Report(report_of) => report::report(&args.db, report_of).await,
        Command::Unsubscribes { since } => consent::unsubscribes(&args.db, since.as_deref()).await,
        Command::Resubscribe { recipient_id } => consent::resubscribe(&args.db, recipient_id).await,
        Command::Export(export) => {
            let reader = journal_reader(&args.db, Arc::new(SystemClock), false).await?;
            let done = views::export(&reader.dispatcher, export).await;
            reader.finish(done).await?;
            Ok(String::new())
        }
    }
}

/// The `--recipients` of this command line, for messages about its lines.
fn recipients_file() -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--recipients")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| "recipients".into())
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => return CliError::from_clap(e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return CliError::failed(e).report(),
    };
    match runtime.block_on(run(args)) {
        Ok(text) => {
            if !text.is_empty() {
                println!("{text}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => e.report(),
    }
}
