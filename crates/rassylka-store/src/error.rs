use std::fmt;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What kind of failure a [`StoreError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The journal could not be reached or was busy: trying again later may succeed.
    Unavailable,
    /// A concurrent change won (a compare-and-set lost, a row changed under a claim).
    Conflict,
    /// The journal holds what this version cannot read (another schema version, a damaged
    /// file, an unknown state name).
    Invalid,
    /// Anything else the backend reported.
    Backend,
}

/// The one error of the store contract: a lower-case message that names the cause, a kind,
/// and the backend's error as its source.
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
    source: Option<BoxError>,
}

impl StoreError {
    /// A failure of `kind` with `message`.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        StoreError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// The journal could not be reached.
    pub fn unavailable(message: impl Into<String>) -> Self {
        StoreError::new(StoreErrorKind::Unavailable, message)
    }

    /// A concurrent change won.
    pub fn conflict(message: impl Into<String>) -> Self {
        StoreError::new(StoreErrorKind::Conflict, message)
    }

    /// The journal holds what this version cannot read.
    pub fn invalid(message: impl Into<String>) -> Self {
        StoreError::new(StoreErrorKind::Invalid, message)
    }

    /// Another failure of the backend.
    pub fn backend(message: impl Into<String>) -> Self {
        StoreError::new(StoreErrorKind::Backend, message)
    }

    /// Keeps `source` as the cause.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// What kind of failure.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind == StoreErrorKind::Unavailable
    }

    /// Whether a concurrent change won.
    pub fn is_conflict(&self) -> bool {
        self.kind == StoreErrorKind::Conflict
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
