//! The audience of a segment over a JSON Lines export, parsed on several threads.

use std::io::Read;
use std::sync::Arc;

use rassylka_model::{MessageClass, ModelError, RecipientItem, read_jsonl_mapped};

use crate::{Counts, Segment, Targets, targets};

/// What [`Segment::scan_jsonl`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audience {
    /// The counts, as [`Segment::count`] makes them.
    pub counts: Counts,
    /// The matched recipients' ids in input order, when asked for.
    pub ids: Vec<String>,
}

/// How [`Segment::scan_jsonl`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanOptions {
    /// Threads parsing the file (1: the caller's thread only). The result is the same with any
    /// number.
    pub threads: usize,
    /// Keep the matched ids.
    pub ids: bool,
}

impl Segment {
    /// Counts (and lists, with [`ScanOptions::ids`]) the audience of this segment in a JSON
    /// Lines recipients file, for messages of `class`.
    ///
    /// The file is parsed a megabyte at a time on `threads` threads and the rule and reach are
    /// worked out there, so only a verdict per recipient comes back; memory stays flat in the
    /// file's size.
    ///
    /// # Errors
    /// The first line that is not a recipient ([`ModelError::Line`], [`ModelError::NotUtf8`],
    /// with its number), or a read failure ([`ModelError::Io`]). Nothing is counted then: an
    /// audience of part of a file is not an answer.
    pub fn scan_jsonl<R: Read + Send + 'static>(
        self: &Arc<Self>,
        reader: R,
        class: MessageClass,
        options: ScanOptions,
    ) -> Result<Audience, ModelError> {
        let segment = Arc::clone(self);
        let judge =
            move |item: RecipientItem| -> Result<Option<(Targets, Option<String>)>, ModelError> {
                let recipient = item?;
                Ok(segment.matches(&recipient).then(|| {
                    let reach = targets(&recipient, class);
                    (reach, options.ids.then_some(recipient.id))
                }))
            };
        let mut audience = Audience::default();
        for verdict in read_jsonl_mapped(reader, options.threads, judge) {
            match verdict? {
                Some((reach, id)) => {
                    audience.counts.record_matched(reach);
                    audience.ids.extend(id);
                }
                None => audience.counts.record_unmatched(),
            }
        }
        Ok(audience)
    }
}
