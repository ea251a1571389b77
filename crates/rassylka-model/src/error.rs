/// Everything that can go wrong while reading or validating recipient data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A phone number that cannot be brought to E.164.
    #[error("invalid phone number `{}`: {reason}", cut(input))]
    InvalidPhone {
        /// The text as given.
        input: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// An e-mail address an SMTP server would refuse.
    #[error("invalid e-mail address `{}`: {reason}", cut(input))]
    InvalidEmail {
        /// The text as given.
        input: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A chat or user id that is not one.
    #[error("invalid address `{}`: {reason}", cut(input))]
    InvalidAddress {
        /// The text as given.
        input: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A money amount that is not a decimal number.
    #[error(
        "invalid amount `{}`: expected a decimal number such as 1250.50",
        cut(input)
    )]
    InvalidMoney {
        /// The text as given.
        input: String,
    },
    /// A line of a JSON Lines file that is not a valid recipient.
    #[error("line {line}: {source}")]
    Line {
        /// 1-based line number in the file.
        line: usize,
        /// The JSON error, with the column inside the line.
        #[source]
        source: serde_json::Error,
    },
    /// A line of a JSON Lines file that is not UTF-8.
    #[error("line {line}: not UTF-8 (byte {column} of the line)")]
    NotUtf8 {
        /// 1-based line number in the file.
        line: usize,
        /// 1-based byte in the line where the bad sequence starts.
        column: usize,
    },
    /// Reading the input failed.
    #[error("reading recipients failed")]
    Io(#[from] std::io::Error),
}

impl ModelError {
    /// True for errors in the data itself (as opposed to I/O): the record can be skipped and
    /// reported while the rest is processed.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, ModelError::Io(_))
    }
}

/// Why a recipient cannot be reached on a channel.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, thiserror::Error,
)]
#[serde(rename_all = "snake_case")]
pub enum Unreachable {
    /// The recipient has no contact for that channel.
    #[error("no contact for the channel")]
    NoContact,
    /// The contact is there but cannot be used (an e-mail address or phone that fails validation).
    #[error("the contact is not valid")]
    InvalidContact,
}

/// Characters of a bad value an error repeats: enough to recognise it, not a 50 MB echo into
/// stderr and the journal.
const SHOWN: usize = 80;

/// `input`, cut to [`SHOWN`] characters with how much was left out.
fn cut(input: &str) -> std::borrow::Cow<'_, str> {
    match input.char_indices().nth(SHOWN) {
        None => input.into(),
        Some((end, _)) => format!("{}… ({} bytes in all)", &input[..end], input.len()).into(),
    }
}
