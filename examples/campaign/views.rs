//! `history`, `journal`, `copy` and `export`: what happened, read from the journal.

use std::io::Write as _;
use std::path::PathBuf;

use chrono::NaiveDate;
use rassylka::store::DeliveryStatus;
use rassylka::{ExportOptions, HistoryQuery, JournalQuery, MailingKind, Rassylka};
use rassylka_workspace::CliError;

use crate::{bad, dispatch_error};

/// Which occurrences `history` and `export --what history` list.
#[derive(clap::Args)]
pub(crate) struct HistoryFilter {
    /// The first local date (inclusive), YYYY-MM-DD.
    #[arg(long)]
    from: Option<String>,
    /// The last local date (inclusive), YYYY-MM-DD.
    #[arg(long)]
    to: Option<String>,
    /// one_time or periodic.
    #[arg(long)]
    kind: Option<String>,
}

/// Which rows `journal` and `export --what journal` show.
#[derive(clap::Args)]
pub(crate) struct JournalFilter {
    /// The mailing's id.
    #[arg(long)]
    mailing_id: Option<String>,
    /// Only this occurrence (its key).
    #[arg(long)]
    occurrence: Option<String>,
    /// Only rows of this status.
    #[arg(long)]
    status: Option<String>,
    /// Only this recipient's rows.
    #[arg(long)]
    recipient_id: Option<String>,
}

fn date(flag: &str, text: &Option<String>) -> Result<Option<NaiveDate>, CliError> {
    text.as_ref()
        .map(|d| {
            NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|e| bad(format!("--{flag} `{d}`: {e}; expected YYYY-MM-DD")))
        })
        .transpose()
}

impl HistoryFilter {
    pub(crate) fn query(&self) -> Result<HistoryQuery, CliError> {
        let kind = match self.kind.as_deref() {
            None => None,
            Some("one_time") => Some(MailingKind::OneTime),
            Some("periodic") => Some(MailingKind::Periodic),
            Some(other) => {
                return Err(bad(format!(
                    "--kind `{other}`: expected one_time or periodic"
                )));
            }
        };
        let (from, to) = (date("from", &self.from)?, date("to", &self.to)?);
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            return Err(bad(format!("--from {from} is after --to {to}")));
        }
        Ok(HistoryQuery {
            from,
            to,
            kind,
            mailing_id: None,
        })
    }
}

impl JournalFilter {
    pub(crate) fn query(&self) -> Result<JournalQuery, CliError> {
        let Some(mailing_id) = self.mailing_id.clone() else {
            return Err(bad("--mailing-id is required"));
        };
        let status = self
            .status
            .as_deref()
            .map(|s| {
                s.parse::<DeliveryStatus>().map_err(|_| {
                    let names: Vec<&str> = DeliveryStatus::ALL.iter().map(|s| s.as_str()).collect();
                    bad(format!(
                        "--status `{s}`: expected one of {}",
                        names.join(", ")
                    ))
                })
            })
            .transpose()?;
        Ok(JournalQuery {
            mailing_id,
            occurrence: self.occurrence.clone(),
            status,
            recipient_id: self.recipient_id.clone(),
        })
    }
}

/// A write to stdout; a reader that went away (`… | head -1`) ends the output quietly.
fn written(result: std::io::Result<()>) -> Result<bool, CliError> {
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(CliError::failed(e)),
    }
}

/// `history`: one JSON line per occurrence, newest first.
pub(crate) async fn history(dispatcher: &Rassylka, filter: &HistoryFilter) -> Result<(), CliError> {
    let rows = dispatcher
        .history(&filter.query()?)
        .await
        .map_err(dispatch_error)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for row in rows {
        if !written(writeln!(out, "{}", row.to_json()))? {
            return Ok(());
        }
    }
    written(out.flush()).map(|_| ())
}

/// `journal`: one JSON line per delivery, printed page by page.
pub(crate) async fn journal(dispatcher: &Rassylka, filter: &JournalFilter) -> Result<(), CliError> {
    let mut pages = dispatcher
        .journal_rows(&filter.query()?)
        .await
        .map_err(dispatch_error)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    while let Some(page) = pages.next_page().await.map_err(dispatch_error)? {
        for row in page {
            if !written(writeln!(out, "{}", row.to_json()))? {
                return Ok(());
            }
        }
    }
    written(out.flush()).map(|_| ())
}

/// A clock that always reads one instant.
pub(crate) struct Stopped(pub(crate) chrono::DateTime<chrono::Utc>);

impl rassylka::Clock for Stopped {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0
    }
}

/// `copy`: the new draft's JSON.
pub(crate) async fn copy(
    dispatcher: &Rassylka,
    mailing_id: &str,
    new_id: &str,
) -> Result<String, CliError> {
    let copy = dispatcher
        .copy(mailing_id, new_id)
        .await
        .map_err(dispatch_error)?;
    Ok(copy.to_json())
}

/// What `export` writes.
#[derive(clap::Args)]
pub(crate) struct Export {
    /// history or journal.
    #[arg(long)]
    what: String,
    #[command(flatten)]
    history: HistoryFilter,
    #[command(flatten)]
    journal: JournalFilter,
    /// The workbook to write.
    #[arg(long)]
    out: PathBuf,
    /// The account card, `{id}` standing for the recipient id.
    #[arg(long)]
    account_url: Option<String>,
}

/// `export`: the workbook, nothing on stdout.
pub(crate) async fn export(dispatcher: &Rassylka, args: &Export) -> Result<(), CliError> {
    match args.what.as_str() {
        "history" => {
            if args.journal.mailing_id.is_some()
                || args.journal.occurrence.is_some()
                || args.journal.status.is_some()
                || args.journal.recipient_id.is_some()
                || args.account_url.is_some()
            {
                return Err(bad(
                    "--what history takes --from, --to and --kind; the journal's filters and --account-url belong to --what journal",
                ));
            }
            dispatcher
                .export_history(&args.history.query()?, &args.out)
                .await
                .map_err(dispatch_error)?;
        }
        "journal" => {
            if args.history.from.is_some()
                || args.history.to.is_some()
                || args.history.kind.is_some()
            {
                return Err(bad(
                    "--what journal takes --mailing-id, --occurrence, --status and --recipient-id; --from, --to and --kind belong to --what history",
                ));
            }
            let options = ExportOptions {
                account_url: args.account_url.clone(),
            };
            dispatcher
                .export_journal(&args.journal.query()?, &args.out, &options)
                .await
                .map_err(dispatch_error)?;
        }
        other => {
            return Err(bad(format!(
                "--what `{other}`: expected history or journal"
            )));
        }
    }
    Ok(())
}
