use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use rassylka_model::{Address, ChannelKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::segments::sms_segments;
use crate::{Channel, ChannelError, CostEstimate, Image, Message, Receipt, Verification};

/// One line of `DIR/<channel>.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRecord {
    /// The delivery key; the outbox writes each key once.
    pub delivery_key: String,
    /// The address, as text.
    pub recipient: String,
    /// `email`, `sms`, `telegram`, `vk` or `push`.
    pub channel: ChannelKind,
    /// E-mail subject.
    pub subject: Option<String>,
    /// The text.
    pub text: String,
    /// E-mail HTML.
    pub html: Option<String>,
    /// The image path or URL.
    pub image: Option<String>,
    /// When it was written, RFC 3339 UTC.
    pub time: String,
}

/// The file outbox (SPEC §8): every message becomes one JSON line in `DIR/<channel>.jsonl`,
/// and an e-mail also `DIR/email/<key>.eml`. It is the embedded default and the dry run.
///
/// It is idempotent on the delivery key, across restarts and across processes: a send takes
/// an exclusive lock on the file, reads the lines other processes appended since it last
/// looked, and does not write a message whose key is there (the send still succeeds). A line
/// is written and fsynced before `send` returns; a torn last line left by a crash is cut off,
/// since its send never returned.
pub struct FileOutbox {
    dir: PathBuf,
    kind: ChannelKind,
    seen: std::sync::Arc<std::sync::Mutex<Seen>>,
    /// The `From` of the `.eml` files, as an SMTP adapter's settings would give it.
    from: lettre::message::Mailbox,
}

/// The sender of an outbox's e-mails when none is set.
fn outbox_from() -> lettre::message::Mailbox {
    lettre::message::Mailbox::new(
        Some("Rassylka outbox".into()),
        lettre::Address::new("outbox", "rassylka.invalid")
            .unwrap_or_else(|_| unreachable!("a fixed valid address")),
    )
}

/// The keys of the outbox file, read up to a byte offset.
#[derive(Debug, Default)]
struct Seen {
    keys: HashSet<String>,
    read_to: u64,
}

impl Seen {
    /// Takes the complete lines of `bytes` (read from `read_to` on); returns how many bytes
    /// they span.
    fn take(&mut self, bytes: &[u8], kind: ChannelKind) -> Result<usize, ChannelError> {
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        for line in bytes[..complete].split(|&b| b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let record: OutboxRecord = serde_json::from_slice(line).map_err(|e| {
                ChannelError::configuration(format!(
                    "outbox: a line of {kind}.jsonl after byte {} is not a record",
                    self.read_to
                ))
                .with_source(e)
            })?;
            self.keys.insert(record.delivery_key);
        }
        self.read_to += complete as u64;
        Ok(complete)
    }
}

/// How long a send waits for another process's lock on the outbox file (a stopped process
/// can hold it indefinitely).
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Takes the file's exclusive lock, or says «try later» after `patience`.
fn lock_within(file: &std::fs::File, patience: std::time::Duration) -> Result<(), ChannelError> {
    let started = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < patience => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(ChannelError::transient(
                    "outbox: another process has held the file's lock for too long",
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_error("lock the file", e)),
        }
    }
}

/// Under the file's exclusive lock: catches up with what other writers appended (cutting a
/// torn line a dead writer left), then appends `line` unless its key is there. Returns
/// whether it wrote.
fn append_once(
    path: &Path,
    seen: &std::sync::Mutex<Seen>,
    kind: ChannelKind,
    key: &str,
    line: &[u8],
    eml: Option<(PathBuf, Vec<u8>)>,
) -> Result<bool, ChannelError> {
    use std::io::Write as _;
    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| io_error("open the file", e))?;
    lock_within(&file, LOCK_PATIENCE)?;
    let len = file
        .metadata()
        .map_err(|e| io_error("read the file", e))?
        .len();
    if len > seen.read_to {
        let mut fresh = Vec::new();
        file.seek(SeekFrom::Start(seen.read_to))
            .and_then(|_| file.read_to_end(&mut fresh))
            .map_err(|e| io_error("read the file", e))?;
        let from = seen.read_to;
        let complete = seen.take(&fresh, kind)?;
        if complete < fresh.len() {
            // The lock is ours, so whoever wrote that part of a line is gone.
            file.set_len(from + complete as u64)
                .map_err(|e| io_error("cut a torn last line", e))?;
        }
    }
    if seen.keys.contains(key) {
        return Ok(false);
    }
    if let Some((eml_path, bytes)) = eml {
        if let Some(parent) = eml_path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| io_error("create the email directory", e))?;
        }
        std::fs::write(&eml_path, &bytes)
            .and_then(|()| std::fs::File::open(&eml_path)?.sync_all())
            .map_err(|e| io_error("write", e))?;
    }
    file.write_all(line)
        .and_then(|()| file.sync_data())
        .map_err(|e| io_error("write", e))?;
    seen.read_to += line.len() as u64;
    seen.keys.insert(key.to_owned());
    Ok(true)
}

impl std::fmt::Debug for FileOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileOutbox")
            .field("dir", &self.dir)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

fn io_error(what: &str, error: std::io::Error) -> ChannelError {
    ChannelError::configuration(format!("outbox: cannot {what}")).with_source(error)
}

impl FileOutbox {
    /// Opens (creating it if needed) the outbox of channel `kind` in `dir` and loads the
    /// delivery keys it already holds.
    ///
    /// # Errors
    /// A configuration error when the directory or file cannot be created or read, or a line
    /// other than a torn last one is not a record.
    pub fn open(dir: impl AsRef<Path>, kind: ChannelKind) -> Result<Self, ChannelError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| io_error("create the directory", e))?;
        let path = dir.join(format!("{kind}.jsonl"));
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| io_error("open the file", e))?;
        lock_within(&file, LOCK_PATIENCE)?;
        let mut content = Vec::new();
        file.read_to_end(&mut content)
            .map_err(|e| io_error("read the file", e))?;
        let mut seen = Seen::default();
        let complete = seen.take(&content, kind)?;
        if complete < content.len() {
            file.set_len(complete as u64)
                .and_then(|()| file.seek(SeekFrom::End(0)).map(drop))
                .and_then(|()| file.sync_all())
                .map_err(|e| io_error("cut a torn last line", e))?;
        }
        drop(file);
        // The new file's directory entry must be durable too.
        if let Ok(handle) = std::fs::File::open(&dir) {
            let _ = handle.sync_all();
        }
        Ok(FileOutbox {
            dir,
            kind,
            seen: std::sync::Arc::new(std::sync::Mutex::new(seen)),
            from: outbox_from(),
        })
    }

    /// The sender the `.eml` files name (`"Shop <news@shop.example>"`), and whose domain their
    /// `Message-ID` is on, as the SMTP adapter's would be.
    ///
    /// # Errors
    /// A configuration error when `from` is not a mailbox.
    pub fn with_from(mut self, from: &str) -> Result<Self, ChannelError> {
        self.from = crate::compose::sender(from)?;
        Ok(self)
    }

    /// The `.jsonl` file this outbox appends to.
    pub fn path(&self) -> PathBuf {
        self.dir.join(format!("{}.jsonl", self.kind))
    }

    /// Whether a message with `delivery_key` was already written.
    pub async fn contains(&self, delivery_key: &str) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys
            .contains(delivery_key)
    }

    /// Reads every record of the outbox file.
    ///
    /// # Errors
    /// A configuration error when the file cannot be read or holds a line that is not a record.
    pub fn records(&self) -> Result<Vec<OutboxRecord>, ChannelError> {
        let content =
            std::fs::read_to_string(self.path()).map_err(|e| io_error("read the file", e))?;
        content
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).map_err(|e| {
                    ChannelError::configuration("outbox: a line is not a record").with_source(e)
                })
            })
            .collect()
    }

    /// Where the `.eml` of an e-mail with `delivery_key` is written.
    pub fn eml_path(&self, delivery_key: &str) -> PathBuf {
        let safe: String = delivery_key
            .chars()
            .take(64)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        // Sanitising can merge two keys; the hash keeps their files apart.
        let hash = hex_prefix(delivery_key, 12);
        self.dir.join("email").join(format!("{safe}-{hash}.eml"))
    }
}

fn hex_prefix(text: &str, len: usize) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..len]
        .to_owned()
}

fn image_text(image: &Image) -> String {
    match image {
        Image::Path(path) => path.display().to_string(),
        Image::Url(url) => url.clone(),
    }
}

#[async_trait]
impl Channel for FileOutbox {
    fn takes_idempotency_key(&self) -> bool {
        true
    }

    fn kind(&self) -> ChannelKind {
        self.kind
    }

    async fn send(&self, to: &Address, message: &Message) -> Result<Receipt, ChannelError> {
        let mut receipt = Receipt::new(message.delivery_key.clone());
        receipt.parts = Some(self.estimate(message).units);
        let now = chrono::Utc::now();
        // The very message the SMTP adapter would send, from the same builder.
        let eml = if self.kind == ChannelKind::Email {
            let domain = self.from.email.domain();
            let (built, _) = crate::compose::compose(&self.from, domain, to, message).await?;
            Some((self.eml_path(&message.delivery_key), built.formatted()))
        } else {
            None
        };
        let record = OutboxRecord {
            delivery_key: message.delivery_key.clone(),
            recipient: to.to_string(),
            channel: self.kind,
            subject: message.subject.clone(),
            text: message.text.clone(),
            html: message.html.clone(),
            image: message.image.as_ref().map(image_text),
            time: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        };
        let mut line = serde_json::to_vec(&record).map_err(|e| {
            ChannelError::rejected("outbox: cannot encode the record").with_source(e)
        })?;
        line.push(b'\n');
        let (path, seen, kind) = (self.path(), std::sync::Arc::clone(&self.seen), self.kind);
        let key = message.delivery_key.clone();
        tokio::task::spawn_blocking(move || append_once(&path, &seen, kind, &key, &line, eml))
            .await
            .map_err(|e| {
                ChannelError::configuration("outbox: the writer stopped").with_source(e)
            })??;
        Ok(receipt)
    }

    async fn verify(&self) -> Result<Verification, ChannelError> {
        let metadata = tokio::fs::metadata(&self.dir)
            .await
            .map_err(|e| io_error("read the directory", e))?;
        if metadata.permissions().readonly() {
            return Err(ChannelError::configuration(
                "outbox: the directory is read-only",
            ));
        }
        Ok(Verification {
            account: Some(self.dir.display().to_string()),
            balance: None,
        })
    }

    fn estimate(&self, message: &Message) -> CostEstimate {
        if self.kind == ChannelKind::Sms {
            CostEstimate::units(sms_segments(&message.text).parts)
        } else {
            CostEstimate::units(1)
        }
    }
}
