//! `unsubscribes` and `resubscribe`: the journal's unsubscribes for a CRM to sync its «no
//! mailings» flag, and the operator clearing one.

use std::sync::Arc;

use rassylka::SystemClock;
use rassylka_workspace::CliError;

use crate::{dispatch_error, instant, journal_reader};

/// One JSON line per recipient unsubscribed now (since `since`, when given).
pub(crate) async fn unsubscribes(db: &str, since: Option<&str>) -> Result<String, CliError> {
    let since = since.map(instant).transpose()?;
    let reader = journal_reader(db, Arc::new(SystemClock), false).await?;
    let listed = reader
        .dispatcher
        .unsubscribes(since)
        .await
        .map_err(dispatch_error);
    let listed = reader.finish(listed).await?;
    let lines: Vec<String> = listed
        .iter()
        .map(|u| {
            serde_json::json!({
                "recipient_id": u.recipient_id,
                "mailing_id": u.mailing_id,
                "channel": u.channel.map(|c| c.as_str()),
                "at": u.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "source": u.source,
            })
            .to_string()
        })
        .collect();
    Ok(lines.join("\n"))
}

/// Clears one recipient's unsubscribe; for a recipient who was not unsubscribed it says so
/// on stderr and changes nothing.
pub(crate) async fn resubscribe(db: &str, recipient_id: &str) -> Result<String, CliError> {
    let reader = journal_reader(db, Arc::new(SystemClock), true).await?;
    let cleared = reader
        .dispatcher
        .resubscribe(recipient_id)
        .await
        .map_err(dispatch_error);
    if !reader.finish(cleared).await? {
        eprintln!("note: `{recipient_id}` was not unsubscribed; nothing changed");
    }
    Ok(String::new())
}
