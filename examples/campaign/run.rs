//! `run`: every due occurrence of a mailing sent up to now, and a summary of what was done.

use std::path::PathBuf;
use std::time::Duration;

use rassylka::store::MailingState;
use rassylka::{DispatchError, Dispatcher};
use rassylka_workspace::CliError;

use crate::{Inputs, adapters, bad, clock_at, dispatch_error, dispatcher, load, store_error};

#[derive(clap::Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) inputs: Inputs,
    /// Where the outbox writes.
    #[arg(long)]
    pub(crate) outbox: PathBuf,
    /// «Now» (default: the system clock).
    #[arg(long)]
    pub(crate) now: Option<String>,
    /// Journal unreadable recipient lines as skipped instead of refusing to run.
    #[arg(long)]
    pub(crate) skip_malformed: bool,
    /// Resend deliveries a crash left «unknown».
    #[arg(long)]
    pub(crate) resend_unknown: bool,
    /// How long this worker's claims last without renewal, in seconds (default 60): a
    /// worker that dies or stalls longer loses them to the others.
    #[arg(long, value_name = "SECONDS")]
    pub(crate) lease_secs: Option<f64>,
}

pub(crate) async fn run(db: &str, args: &RunArgs) -> Result<String, CliError> {
    let RunArgs {
        inputs,
        outbox,
        now,
        skip_malformed,
        resend_unknown,
        lease_secs,
    } = args;
    let setup = load(inputs)?;
    let lease = lease_secs
        .map(|s| {
            Duration::try_from_secs_f64(s).map_err(|e| bad(format!("--lease-secs `{s}`: {e}")))
        })
        .transpose()?;
    let clock = clock_at(now.as_deref())?;
    let channels = adapters(
        setup.channels_file.as_ref(),
        &setup.mailing.channels,
        outbox,
    )?;
    let (dispatcher, store) =
        dispatcher(db, inputs, &setup, channels, clock, *skip_malformed, lease).await?;
    let id = setup.mailing.id.clone();
    dispatcher
        .save(&setup.mailing)
        .await
        .map_err(dispatch_error)?;
    let state = store
        .mailing(&id)
        .await
        .map_err(store_error)?
        .map(|r| r.state);
    if state == Some(MailingState::Draft) {
        match dispatcher.confirm(&id).await {
            // Another worker confirmed it at the same moment.
            Err(DispatchError::WrongState { .. }) => {}
            other => other.map_err(dispatch_error)?,
        }
    }
    if *resend_unknown {
        dispatcher
            .resend_unknown(&id)
            .await
            .map_err(dispatch_error)?;
    }
    let report = match dispatcher.run_mailing(&id).await {
        Ok(report) => report,
        // The mailing is stopped: what could be done was done; it needs attention.
        Err(e @ DispatchError::Configuration { .. }) => {
            store.close().await.map_err(store_error)?;
            return Err(CliError::Attention {
                output: String::new(),
                message: e.to_string(),
            });
        }
        Err(e) => return Err(dispatch_error(e)),
    };
    let record = store.mailing(&id).await.map_err(store_error)?;
    let state = record.as_ref().map_or("unknown", |r| r.state.as_str());
    let attention = record
        .as_ref()
        .filter(|r| matches!(r.state, MailingState::Paused | MailingState::Stopped))
        .map(|r| {
            let until = r
                .paused_until
                .map(|t| format!(" until {}", t.to_rfc3339()))
                .unwrap_or_default();
            format!(
                "mailing {id} is {state}{until}: {}",
                r.reason.as_deref().unwrap_or("no reason given")
            )
        });
    // Everything into the journal file itself, so a copy of the file alone is whole.
    store.close().await.map_err(store_error)?;
    let c = report.counts;
    let summary = serde_json::json!({
        "mailing": id,
        "state": state,
        "occurrences": report.occurrences,
        "missed": report.missed,
        "sent": c.sent, "failed": c.failed, "skipped": c.skipped, "unknown": c.unknown,
        "queued": c.queued, "standby": c.standby,
        "recovered_unknown": report.recovered_unknown,
        "lease_lost": report.lease_lost,
        "next_due": report.next_due.map(|d| d.to_rfc3339()),
    })
    .to_string();
    match attention {
        Some(message) => Err(CliError::Attention {
            output: summary,
            message,
        }),
        None => Ok(summary),
    }
}
