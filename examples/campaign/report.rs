//! `report`: whether a mailing (or a marketing activity) paid off (SPEC §7f, §8).

use std::io::BufReader;
use std::path::PathBuf;
use std::sync::Arc;

use rassylka::{AttributionScope, SystemClock, purchases_problem};
use rassylka_workspace::CliError;
use rust_decimal::Decimal;

use crate::{dispatch_error, journal_reader};

/// The output format.
#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum Format {
    /// One JSON line.
    Json,
    /// A self-contained HTML page with a chart.
    Html,
}

#[derive(clap::Args)]
pub(crate) struct Report {
    /// The mailing to report on.
    #[arg(
        long,
        required_unless_present = "activity_id",
        conflicts_with = "activity_id"
    )]
    mailing_id: Option<String>,
    /// The marketing activity: every mailing with this `activity_id`.
    #[arg(long)]
    activity_id: Option<String>,
    /// Purchases, one `{"recipient_id","at","amount","promotion_id"}` a line.
    #[arg(long)]
    purchases: PathBuf,
    /// Recipients whose own `purchases` count too.
    #[arg(long)]
    recipients: Option<PathBuf>,
    /// Days after the reach in which a purchase counts.
    #[arg(long, default_value_t = 7)]
    window_days: u32,
    /// What one bonus point costs.
    #[arg(long, default_value = "1")]
    bonus_value: String,
    /// json or html.
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
}

fn open(path: &PathBuf) -> Result<BufReader<std::fs::File>, CliError> {
    std::fs::File::open(path)
        .map(|f| BufReader::with_capacity(1 << 16, f))
        .map_err(|e| CliError::bad(format!("{}: {e}", path.display())))
}

pub(crate) async fn report(db: &str, args: &Report) -> Result<String, CliError> {
    if args.window_days == 0 {
        return Err(CliError::bad("--window-days: at least 1"));
    }
    let bonus_value: Decimal = args.bonus_value.trim().parse().map_err(|_| {
        CliError::bad(format!(
            "--bonus-value `{}`: expected a decimal number",
            args.bonus_value
        ))
    })?;
    let (scope, title) = match (&args.mailing_id, &args.activity_id) {
        (Some(id), _) => (
            AttributionScope::Mailing(id.clone()),
            format!("Рассылка {id}"),
        ),
        (None, Some(activity)) => (
            AttributionScope::Activity(activity.clone()),
            format!("Маркетинговая активность {activity}"),
        ),
        (None, None) => return Err(CliError::bad("--mailing-id or --activity-id is needed")),
    };
    // Files first: a bad path is found before the journal is read.
    let purchases = open(&args.purchases)?;
    let recipients = args.recipients.as_ref().map(open).transpose()?;
    let reader = journal_reader(db, Arc::new(SystemClock), false).await?;
    let audience = reader
        .dispatcher
        .attribution(&scope, args.window_days)
        .await
        .map_err(dispatch_error);
    let mut attribution = reader.finish(audience).await?;
    attribution
        .read_purchases(purchases)
        .map_err(|p| CliError::bad(purchases_problem(&args.purchases.display().to_string(), &p)))?;
    if let (Some(reader), Some(path)) = (recipients, &args.recipients) {
        for item in rassylka::model::read_jsonl(reader) {
            let recipient = item.map_err(|e| match e {
                rassylka::model::ModelError::Line { line, source } => {
                    CliError::bad(format!("{}:{line}: {source}", path.display()))
                }
                other => CliError::bad(format!("{}: {other}", path.display())),
            })?;
            for p in &recipient.purchases {
                if let (Some(at), Some(amount)) = (p.at, p.amount) {
                    attribution.purchase(
                        &recipient.id,
                        at.to_utc(),
                        amount.0,
                        p.promotion_id.as_deref(),
                    );
                }
            }
        }
    }
    let report = attribution.report(bonus_value);
    Ok(match args.format {
        Format::Json => report.to_json().to_string(),
        Format::Html => report.to_html(&title),
    })
}
