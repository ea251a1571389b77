//! Shared pieces of the workspace's examples, benchmarks and cross-crate tests: the bundled
//! sample recipients and mailing texts. Not published; applications depend on `rassylka`.
//!
//! ```
//! let recipients = rassylka_workspace::sample_recipients()?;
//! assert!(recipients.len() >= 5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use rassylka_model::{ModelError, Recipient, read_jsonl};

/// The bundled sample recipients (`examples/data/recipients.jsonl`).
pub const SAMPLE_RECIPIENTS_JSONL: &str = include_str!("../examples/data/recipients.jsonl");

/// Parses [`SAMPLE_RECIPIENTS_JSONL`].
///
/// # Errors
/// A [`ModelError::Line`] if the bundled file were malformed (a test keeps it valid).
pub fn sample_recipients() -> Result<Vec<Recipient>, ModelError> {
    read_jsonl(SAMPLE_RECIPIENTS_JSONL.as_bytes()).collect()
}
