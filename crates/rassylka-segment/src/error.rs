use chrono_tz::Tz;

/// Everything that can go wrong with a segment: a bad rule (with the JSON path of the bad node),
/// rule text that is not JSON, or a snapshot built for another time zone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentError {
    /// A rule node that is malformed or invalid; `path` is its JSON path (`all[2].age.gte`,
    /// empty for the root).
    #[error("{}: {message}", display_path(path))]
    Rule {
        /// Where the bad node is, in `all[2].age.gte` notation; empty for the root.
        path: String,
        /// What is wrong, lower-case.
        message: String,
    },
    /// The rule text is not JSON.
    #[error("invalid json at line {line} column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A snapshot keeps civil dates in the zone it was built for; a segment compiled for another
    /// zone would compare dates of two different calendars.
    #[error(
        "the snapshot was built for time zone {snapshot}, the segment was compiled for {segment}"
    )]
    ZoneMismatch {
        /// The snapshot's zone.
        snapshot: Tz,
        /// The segment's zone.
        segment: Tz,
    },
}

fn display_path(path: &str) -> &str {
    if path.is_empty() { "(root)" } else { path }
}

impl SegmentError {
    pub(crate) fn rule(path: &str, message: impl Into<String>) -> Self {
        SegmentError::Rule {
            path: path.to_owned(),
            message: message.into(),
        }
    }

    /// The JSON path of the bad rule node, for [`SegmentError::Rule`].
    pub fn path(&self) -> Option<&str> {
        match self {
            SegmentError::Rule { path, .. } => Some(path),
            _ => None,
        }
    }
}
