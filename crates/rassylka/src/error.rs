use std::fmt;

use rassylka_store::StoreError;

/// One thing wrong with an input, and where: a JSON path (`content.sms.text`) or a line
/// (`recipients:17`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where.
    pub path: String,
    /// What.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub(crate) fn new(path: impl Into<String>, message: impl fmt::Display) -> Problem {
        Problem {
            path: path.into(),
            message: message.to_string(),
        }
    }
}

/// `key` under the JSON path `prefix`.
pub(crate) fn json_path(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// A problem for every key of `object` that is not `known`: unknown keys are refused, never
/// ignored.
pub(crate) fn unknown_keys(
    object: &serde_json::Map<String, serde_json::Value>,
    known: &[&str],
    prefix: &str,
) -> Vec<Problem> {
    object
        .keys()
        .filter(|key| !known.contains(&key.as_str()))
        .map(|key| {
            Problem::new(
                json_path(prefix, key),
                format!("unknown key; expected one of {}", known.join(", ")),
            )
        })
        .collect()
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Everything the dispatcher can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DispatchError {
    /// The mailing does not validate; every problem is listed.
    #[error("invalid mailing:\n{}", list(.0))]
    InvalidMailing(Vec<Problem>),
    /// Recipients that cannot be read, by line; nothing was sent.
    #[error("{} malformed recipient line(s), nothing was sent (allow skipping them to go on):\n{}", .0.len(), list(.0))]
    MalformedRecipients(Vec<Problem>),
    /// No mailing with that id.
    #[error("no mailing `{0}`")]
    UnknownMailing(String),
    /// What was asked cannot be done, and why (copying a periodic mailing, an occurrence the
    /// mailing does not have).
    #[error("{0}")]
    Refused(String),
    /// An unsubscribe token that none of the keys signed, and what is wrong with it.
    #[error("invalid unsubscribe token: {0}")]
    BadToken(&'static str),
    /// The mailing is in a state that does not allow the action.
    #[error("mailing `{id}` is {state}: cannot {action}")]
    WrongState {
        /// Mailing id.
        id: String,
        /// Its state.
        state: String,
        /// What was asked.
        action: &'static str,
    },
    /// A channel the mailing uses has no adapter.
    #[error("channel `{0}` is not configured")]
    ChannelMissing(rassylka_model::ChannelKind),
    /// A channel said its settings are wrong; the mailing was stopped.
    #[error("mailing `{mailing}` stopped: the {channel} channel's settings are wrong: {reason}")]
    Configuration {
        /// Mailing id.
        mailing: String,
        /// The channel.
        channel: rassylka_model::ChannelKind,
        /// The channel's words.
        reason: String,
    },
    /// The recipient source failed.
    #[error("reading recipients failed: {0}")]
    Source(#[source] BoxError),
    /// The journal failed; the message names the cause.
    #[error("the journal failed: {0}")]
    Store(#[source] StoreError),
    /// The bonus ledger failed.
    #[error("the bonus ledger failed")]
    Ledger(#[source] BoxError),
    /// A workbook could not be written; the message names the file and the cause.
    #[error("writing the workbook {path} failed: {source}")]
    Export {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: BoxError,
    },
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl DispatchError {
    /// Whether the caller's input is at fault (exit code 2 in the command-line tools).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            DispatchError::InvalidMailing(_)
                | DispatchError::MalformedRecipients(_)
                | DispatchError::UnknownMailing(_)
                | DispatchError::Refused(_)
                | DispatchError::BadToken(_)
        )
    }

    /// Whether trying again later may succeed (the store or source was unavailable).
    pub fn is_transient(&self) -> bool {
        match self {
            DispatchError::Store(e) => e.is_transient() || e.is_conflict(),
            DispatchError::Source(_) => true,
            _ => false,
        }
    }
}

impl From<StoreError> for DispatchError {
    fn from(e: StoreError) -> Self {
        DispatchError::Store(e)
    }
}
