//! Recipients from JSON Lines: one line at a time ([`read_jsonl`]) or a few hundred
//! kilobytes at a time on several threads, in the file's order ([`read_jsonl_parallel`]).

mod parallel;
mod quick;

use std::io::BufRead;

use crate::{ModelError, Recipient};

pub use parallel::{ParallelLines, RecipientItem, read_jsonl_mapped, read_jsonl_parallel};

/// One line's recipient; `None` for a blank line. `number` is the line's 1-based number.
fn parse_line(raw: &[u8], number: usize) -> Option<Result<Recipient, ModelError>> {
    // Bytes, not a String: a line that is not UTF-8 is one malformed line, and the lines
    // after it are read on.
    let text = match std::str::from_utf8(raw) {
        Ok(text) => text,
        Err(e) => {
            return Some(Err(ModelError::NotUtf8 {
                line: number,
                column: e.valid_up_to() + 1,
            }));
        }
    };
    if text.trim().is_empty() {
        return None;
    }
    if let Some(recipient) = quick::quick_recipient(text) {
        return Some(Ok(recipient));
    }
    Some(
        serde_json::from_str(text).map_err(|source| ModelError::Line {
            line: number,
            source,
        }),
    )
}

/// Reads recipients from JSON Lines, one object a line; blank lines are skipped.
///
/// Each item is one line's result, so a caller can report every malformed line (with its
/// number) and keep the good ones. An I/O error ends the stream after it is yielded.
pub fn read_jsonl<R: BufRead>(reader: R) -> RecipientLines<R> {
    RecipientLines {
        reader,
        line: 0,
        buf: Vec::new(),
        done: false,
    }
}

/// The iterator returned by [`read_jsonl`].
#[derive(Debug)]
pub struct RecipientLines<R> {
    reader: R,
    line: usize,
    buf: Vec<u8>,
    done: bool,
}

impl<R: BufRead> Iterator for RecipientLines<R> {
    type Item = Result<Recipient, ModelError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => self.done = true,
                Ok(_) => {
                    self.line += 1;
                    if let Some(item) = parse_line(&self.buf, self.line) {
                        return Some(item);
                    }
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(ModelError::Io(e)));
                }
            }
        }
        None
    }
}
