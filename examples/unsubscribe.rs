//! `unsubscribe`: the endpoint behind the links of advertising e-mail (SPEC §7c).
//!
//! ```text
//! unsubscribe --db FILE|postgres://… [--channels FILE.json] [--listen ADDR]
//! ```
//!
//! Serves `GET /u/{token}` (a page naming the masked address, with one button; it changes
//! nothing), `POST /u/{token}` (the button, or a mail client's one-click
//! `List-Unsubscribe=One-Click`: records the unsubscribe) and `GET /healthz`, on
//! `127.0.0.1:8080` unless `--listen` says otherwise, until Ctrl-C. The tokens are checked
//! with the channels file's `unsubscribe.secret` (and `previous_secrets`), or with the secret
//! the journal keeps when the file gives none: the same one `campaign run` signs with. Bad
//! input exits 2, anything else 1.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use rassylka::channels::ChannelsFile;
use rassylka::{Rassylka, RecipientSource, SourceItem};
use rassylka_unsubscribe::UnsubscribeServer;
use rassylka_workspace::CliError;

/// The endpoint has no customer base of its own: unsubscribes are kept in the journal, and the
/// CRM takes them from `campaign unsubscribes` to set its «no mailings» flag.
struct JournalOnly;

#[async_trait::async_trait]
impl RecipientSource for JournalOnly {
    async fn scan(
        &self,
    ) -> Result<
        futures_util::stream::BoxStream<'_, SourceItem>,
        Box<dyn std::error::Error + Send + Sync>,
    > {
        Ok(Box::pin(futures_util::stream::empty()))
    }

    async fn set_no_mailings(
        &self,
        _recipient_id: &str,
        _value: bool,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(())
    }
}

/// Serves the unsubscribe pages of a journal.
#[derive(Parser)]
#[command(name = "unsubscribe")]
struct Args {
    /// The journal: a SQLite file, or a postgres://user@host/database URL.
    #[arg(long)]
    db: String,
    /// The channels file, for its `unsubscribe` settings (the secret).
    #[arg(long)]
    channels: Option<PathBuf>,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
}

async fn run(args: Args) -> Result<(), CliError> {
    let file = args
        .channels
        .as_ref()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::bad(format!("{}: {e}", path.display())))?;
            ChannelsFile::from_json(&text)
                .map_err(|e| CliError::bad(format!("{}: {e}", path.display())))
        })
        .transpose()?;
    let store = rassylka::store::connect(&args.db).await.map_err(|e| {
        // A URL is never echoed: it may hold a password.
        let message = if rassylka::store::is_postgres_url(&args.db) {
            format!("--db: {e}")
        } else {
            format!("{}: {e}", args.db)
        };
        CliError::failed(message)
    })?;
    let mut builder = Rassylka::builder()
        .recipients(JournalOnly)
        .store_shared(Arc::clone(&store));
    if let Some(file) = &file {
        builder = rassylka_workspace::with_channels_file(builder, file)?;
    }
    let dispatcher = builder.build().map_err(dispatch_error)?;
    // The keys are read (or the secret made) now, so a journal that cannot give them (or a
    // secret too short) fails at start rather than at the first visitor.
    dispatcher
        .unsubscribe_keys()
        .await
        .map_err(dispatch_error)?;
    let server = UnsubscribeServer::bind(&args.listen, dispatcher)
        .await
        .map_err(|e| CliError::failed(e.to_string()))?;
    eprintln!(
        "listening on http://{} (GET and POST /u/{{token}}, GET /healthz); Ctrl-C stops",
        server.local_addr()
    );
    let served = server
        .serve_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    store
        .close()
        .await
        .map_err(|e| CliError::failed(format!("the journal failed: {e}")))?;
    served.map_err(|e| CliError::failed(e.to_string()))
}

/// Bad input (a secret too short) exits 2, anything else 1.
fn dispatch_error(e: rassylka::DispatchError) -> CliError {
    if e.is_bad_input() {
        CliError::bad(e)
    } else {
        CliError::failed(e)
    }
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
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}
