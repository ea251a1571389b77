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
            // Bytes, not a String: a line that is not UTF-8 is one malformed line, and the
            // lines after it are read on.
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => self.done = true,
                Ok(_) => {
                    self.line += 1;
                    let text = match std::str::from_utf8(&self.buf) {
                        Ok(text) => text,
                        Err(e) => {
                            return Some(Err(ModelError::NotUtf8 {
                                line: self.line,
                                column: e.valid_up_to() + 1,
                            }));
                        }
                    };
                    if text.trim().is_empty() {
                        continue;
                    }
                    return Some(
                        serde_json::from_str(text).map_err(|source| ModelError::Line {
                            line: self.line,
                            source,
                        }),
                    );
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
