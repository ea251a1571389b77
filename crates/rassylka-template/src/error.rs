use std::fmt;

/// A well-formed tag the dialect does not know, with where it is and the nearest known tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPlaceholder {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// The tag as written, delimiters included (`{frist_name}`).
    pub tag: String,
    /// The nearest known tag, delimiters included.
    pub suggestion: Option<String>,
}

impl fmt::Display for UnknownPlaceholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: unknown placeholder `{}`",
            self.line, self.column, self.tag
        )?;
        if let Some(suggestion) = &self.suggestion {
            write!(f, ", did you mean `{suggestion}`?")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong with templates and dialects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// Strict mode found tags it does not know; every one is listed, in order.
    #[error("{}", list(.0))]
    UnknownPlaceholders(Vec<UnknownPlaceholder>),
    /// Strict mode found more unknown tags than are worth listing: the first twenty, in
    /// order, and how many more.
    #[error("{}\n… and {more} more unknown placeholders", list(first))]
    ManyUnknownPlaceholders {
        /// The first ones.
        first: Vec<UnknownPlaceholder>,
        /// How many more there are.
        more: usize,
    },
    /// Text of the template that the target dialect would read differently.
    #[error(
        "{line}:{column}: `{text}` cannot be written in dialect {dialect}: it would read as a different placeholder or text there"
    )]
    Unconvertible {
        /// 1-based line in the source template.
        line: usize,
        /// 1-based column in characters.
        column: usize,
        /// The text concerned.
        text: String,
        /// The target dialect.
        dialect: String,
    },
    /// Delimiters that cannot make a dialect.
    #[error("invalid dialect `{name}`: {reason}")]
    InvalidDialect {
        /// The dialect's name.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An alias that is not a valid name.
    #[error("invalid alias name `{name}`: a name is a letter followed by letters, digits or `_`")]
    InvalidAlias {
        /// The offending name.
        name: String,
    },
    /// A dialect name that is not built in.
    #[error("unknown dialect `{0}`: expected probonus, bonusplus, ecvi or itigris")]
    UnknownDialect(String),
    /// An output format name that does not exist.
    #[error("unknown output format `{0}`: expected plain, html, telegram-html or markdown-v2")]
    UnknownFormat(String),
}

fn list(items: &[UnknownPlaceholder]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl TemplateError {
    /// The first `(line, column)` the error points at, if it points anywhere.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            TemplateError::UnknownPlaceholders(items)
            | TemplateError::ManyUnknownPlaceholders { first: items, .. } => {
                items.first().map(|u| (u.line, u.column))
            }
            TemplateError::Unconvertible { line, column, .. } => Some((*line, *column)),
            _ => None,
        }
    }
}
