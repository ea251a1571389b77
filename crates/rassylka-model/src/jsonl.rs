use std::io::BufRead;

use crate::{ModelError, Recipient};

/// Reads recipients from JSON Lines, one object a line; blank lines are skipped.
///
/// Each item is one line's result, so a caller can report every malformed line (with its
/// number) and keep the good ones. An I/O error ends the stream after it is yielded.
pub fn read_jsonl<R: BufRead>(reader: R) -> RecipientLines<R> {
    RecipientLines {
        reader,
        line: 0,
        buf: String::new(),
        done: false,
    }
}

/// The iterator returned by [`read_jsonl`].
#[derive(Debug)]
pub struct RecipientLines<R> {
    reader: R,
    line: usize,
    buf: String,
    done: bool,
}

impl<R: BufRead> Iterator for RecipientLines<R> {
    type Item = Result<Recipient, ModelError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            match self.reader.read_line(&mut self.buf) {
                Ok(0) => self.done = true,
                Ok(_) => {
                    self.line += 1;
                    if self.buf.trim().is_empty() {
                        continue;
                    }
                    return Some(serde_json::from_str(&self.buf).map_err(|source| {
                        ModelError::Line {
                            line: self.line,
                            source,
                        }
                    }));
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
