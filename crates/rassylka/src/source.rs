use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use futures_util::stream::{self, BoxStream};
use rassylka_model::{ChannelKind, ModelError, Recipient, read_jsonl_parallel};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One item of a recipient stream: a recipient, or a record that could not be read (with
/// where it was, such as `line 17`).
pub type SourceItem = Result<Recipient, (String, String)>;

/// Where recipients come from: the application's customer base.
///
/// A scan yields every recipient in a stable order; the dispatcher streams it, so a source
/// never has to hold the whole base in memory.
#[async_trait]
pub trait RecipientSource: Send + Sync {
    /// A fresh pass over every recipient.
    ///
    /// # Errors
    /// When the source cannot be opened at all.
    async fn scan(&self) -> Result<BoxStream<'_, SourceItem>, BoxError>;

    /// Sets or clears the «no mailings» flag (unsubscribe).
    ///
    /// # Errors
    /// When the source cannot record it.
    async fn set_no_mailings(&self, recipient_id: &str, value: bool) -> Result<(), BoxError>;

    /// Told when a channel reports the recipient gone (blocked the bot, no such mailbox); the
    /// dispatcher also remembers it in its own store. The default does nothing.
    ///
    /// # Errors
    /// When the source cannot record it.
    async fn mark_unreachable(
        &self,
        recipient_id: &str,
        channel: ChannelKind,
    ) -> Result<(), BoxError> {
        let _ = (recipient_id, channel);
        Ok(())
    }
}

/// Recipients in a JSON Lines file (SPEC §2), read lazily on each scan, parsed a quarter
/// megabyte at a time on parsing threads and handed on in the file's order. Unsubscribes are
/// kept in memory and applied to later scans, since the file is the caller's.
#[derive(Debug)]
pub struct JsonlFile {
    path: PathBuf,
    threads: usize,
    no_mailings: Mutex<HashMap<String, bool>>,
}

impl JsonlFile {
    /// A source reading `path`, parsing on one thread fewer than the machine has cores: the
    /// scan's consumer (a freeze segments, renders and journals every recipient) keeps one.
    /// On two cores that is the scanning task's own thread, which measured faster for a
    /// freeze than two parsing threads competing with it (see the README's dispatch figures).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        JsonlFile {
            path: path.into(),
            threads: cores.saturating_sub(1).max(1),
            no_mailings: Mutex::new(HashMap::new()),
        }
    }

    /// Parses on `threads` threads (1: on the scanning task's thread);
    /// what a scan yields is the same with any number.
    #[must_use]
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }
}

#[async_trait]
impl RecipientSource for JsonlFile {
    async fn scan(&self) -> Result<BoxStream<'_, SourceItem>, BoxError> {
        let file =
            std::fs::File::open(&self.path).map_err(|e| format!("{}: {e}", self.path.display()))?;
        let overrides = self
            .no_mailings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let lines = read_jsonl_parallel(file, self.threads);
        Ok(Box::pin(stream::iter(lines.map(move |item| match item {
            Ok(mut r) => {
                if let Some(flag) = overrides.get(&r.id) {
                    r.no_mailings = *flag;
                }
                Ok(r)
            }
            Err(ModelError::Line { line, source }) => {
                // serde's own position is inside the one-line document: its line is always
                // 1, so only the column is worth saying.
                let text = source.to_string();
                let what = text
                    .rfind(" at line ")
                    .map_or(text.as_str(), |at| &text[..at]);
                Err((
                    format!("line {line}"),
                    format!("column {}: {what}", source.column()),
                ))
            }
            Err(ModelError::NotUtf8 { line, column }) => Err((
                format!("line {line}"),
                format!("not UTF-8 (byte {column} of the line)"),
            )),
            Err(other) => Err(("input".to_owned(), other.to_string())),
        }))))
    }

    async fn set_no_mailings(&self, recipient_id: &str, value: bool) -> Result<(), BoxError> {
        self.no_mailings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(recipient_id.to_owned(), value);
        Ok(())
    }
}

/// Recipients held in memory: for tests and applications that already have them loaded.
#[derive(Debug, Default)]
pub struct MemorySource {
    recipients: Mutex<Vec<Recipient>>,
    unreachable: Mutex<Vec<(String, ChannelKind)>>,
}

impl MemorySource {
    /// A source of these recipients.
    pub fn new(recipients: Vec<Recipient>) -> Self {
        MemorySource {
            recipients: Mutex::new(recipients),
            unreachable: Mutex::new(Vec::new()),
        }
    }

    /// The recipients as they are now (with unsubscribes applied).
    pub fn recipients(&self) -> Vec<Recipient> {
        self.recipients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// What channels reported gone.
    pub fn unreachable(&self) -> Vec<(String, ChannelKind)> {
        self.unreachable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait]
impl RecipientSource for MemorySource {
    async fn scan(&self) -> Result<BoxStream<'_, SourceItem>, BoxError> {
        let snapshot = self.recipients();
        Ok(Box::pin(stream::iter(snapshot.into_iter().map(Ok))))
    }

    async fn set_no_mailings(&self, recipient_id: &str, value: bool) -> Result<(), BoxError> {
        let mut recipients = self.recipients.lock().unwrap_or_else(|e| e.into_inner());
        match recipients.iter_mut().find(|r| r.id == recipient_id) {
            Some(r) => {
                r.no_mailings = value;
                Ok(())
            }
            None => Err(format!("no recipient `{recipient_id}`").into()),
        }
    }

    async fn mark_unreachable(
        &self,
        recipient_id: &str,
        channel: ChannelKind,
    ) -> Result<(), BoxError> {
        self.unreachable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((recipient_id.to_owned(), channel));
        Ok(())
    }
}
