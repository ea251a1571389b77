//! `notify`: one service notice for an event from the host system (SPEC §7g).

use std::path::PathBuf;
use std::sync::Arc;

use rassylka::channels::{ChannelsFile, SmsSettings};
use rassylka::model::ChannelKind;
use rassylka::{
    DispatchError, Dispatcher, JsonlFile, MemoryLedger, NoticeEvent, Notices, Rassylka, Sender,
    SystemClock,
};
use rassylka_workspace::CliError;

use crate::{bad, dispatch_error, open_journal, read, store_error};

/// What `notify` reads.
#[derive(clap::Args)]
pub(crate) struct Notify {
    /// The notices file: channels, mode, templates, permissions.
    #[arg(long)]
    notices: PathBuf,
    /// The event, one JSON object.
    #[arg(long)]
    event: PathBuf,
    /// Who sends it, one JSON object.
    #[arg(long)]
    sender: PathBuf,
    /// Recipients, one JSON object a line.
    #[arg(long)]
    recipients: PathBuf,
    /// Where the outbox writes.
    #[arg(long)]
    outbox: PathBuf,
    /// Channel adapters and tariffs.
    #[arg(long)]
    channels: Option<PathBuf>,
}

fn parsed<T>(
    path: &std::path::Path,
    parse: fn(&str) -> Result<T, DispatchError>,
) -> Result<T, CliError> {
    parse(&read(path)?).map_err(|e| bad(format!("{}: {e}", path.display())))
}

/// Sends the notice and returns its line, or the refusal (exit 2).
pub(crate) async fn notify(db: &str, args: &Notify) -> Result<String, CliError> {
    let notices = parsed(&args.notices, Notices::from_json)?;
    let event = parsed(&args.event, NoticeEvent::from_json)?;
    let sender = parsed(&args.sender, Sender::from_json)?;
    let file = args
        .channels
        .as_ref()
        .map(|path| {
            ChannelsFile::from_json(&read(path)?)
                .map_err(|e| bad(format!("{}: {e}", path.display())))
        })
        .transpose()?;
    // An SMS notice goes out under the shop's approved alpha-name; operators' gateways
    // deliver service SMS from a bare number poorly or not at all.
    if notices.channels().contains(&ChannelKind::Sms)
        && let Some(sms) = file.as_ref().and_then(|f| f.sms.as_ref())
    {
        let sender = match sms {
            SmsSettings::Smsru(s) => s.sender.as_deref(),
            SmsSettings::Smsc(s) => s.sender.as_deref(),
        };
        if sender.is_none_or(|s| s.trim().is_empty()) {
            return Err(bad(
                "channels.sms.sender: service notices by SMS need the gateway's alpha-name",
            ));
        }
    }
    let channels = crate::adapters(file.as_ref(), notices.channels(), &args.outbox)?;
    let store = open_journal(db).await?;
    let mut builder = Rassylka::builder()
        .recipients(JsonlFile::new(&args.recipients))
        .store_shared(store.clone())
        .ledger(Arc::new(MemoryLedger::default()))
        .clock(Arc::new(SystemClock))
        .max_wait(std::time::Duration::from_secs(30))
        .notices(notices);
    if let Some(file) = &file {
        builder = rassylka_workspace::with_channels_file(builder, file)?;
    }
    for channel in channels.into_values() {
        builder = builder.channel(channel);
    }
    let dispatcher = builder.build().map_err(dispatch_error)?;
    let result = dispatcher.notify(&event, &sender).await;
    store.close().await.map_err(store_error)?;
    let result = result.map_err(dispatch_error)?;
    if let Some(reason) = &result.reason {
        eprintln!("notice {}: {reason}", result.event);
    }
    Ok(result.to_json().to_string())
}
