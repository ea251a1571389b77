//! JSON Lines parsed on several threads and handed on in the file's order.
//!
//! One thread reads the file in chunks that end at a line's end and counts their lines;
//! parsing threads turn chunks into recipients (and whatever the caller makes of each);
//! the iterator puts the chunks back in order. A fixed number of chunks is in flight at once
//! (tokens the iterator hands back as it finishes a chunk), so memory stays flat however long
//! the file is and however slowly the caller consumes it.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use super::parse_line;
use crate::{ModelError, Recipient};

/// Bytes read at once and parsed by one thread: about 400 recipients of an ordinary export
/// (enough that handing chunks between threads costs nothing measurable, few enough that the
/// recipients in flight stay a few megabytes).
const CHUNK: usize = 256 << 10;

/// One line's result, as [`read_jsonl`](super::read_jsonl) yields it.
pub type RecipientItem = Result<Recipient, ModelError>;

/// Lines of one chunk; `first_line` is the number of its first line.
struct Chunk {
    sequence: u64,
    first_line: usize,
    bytes: Result<Vec<u8>, io::Error>,
}

/// Reads recipients from JSON Lines like [`read_jsonl`](super::read_jsonl), parsing on
/// `threads` threads.
///
/// Items come in the file's order with the same line numbers, blank lines skipped, every
/// malformed line one error; an I/O error ends the stream after the lines read before it. With
/// `threads` of 1 or less everything happens on the caller's thread. Up to `2 × threads`
/// chunks of a quarter megabyte are read ahead.
pub fn read_jsonl_parallel<R: Read + Send + 'static>(
    reader: R,
    threads: usize,
) -> ParallelLines<RecipientItem> {
    read_jsonl_mapped(reader, threads, |item| item)
}

/// [`read_jsonl_parallel`] handing on `map` of each line's result, worked out on the parsing
/// threads: a caller that needs a few facts of each recipient (does a rule match, whom can it
/// reach) gets them without the recipients crossing threads.
pub fn read_jsonl_mapped<R, T, F>(reader: R, threads: usize, map: F) -> ParallelLines<T>
where
    R: Read + Send + 'static,
    T: Send + 'static,
    F: Fn(RecipientItem) -> T + Send + Sync + 'static,
{
    let chunks = ChunkReader::new(reader);
    if threads <= 1 {
        return ParallelLines(Lines::Serial {
            chunks,
            map: Box::new(map),
            current: Vec::new().into_iter(),
        });
    }
    let in_flight = 2 * threads;
    let (token_tx, token_rx) = mpsc::channel::<()>();
    for _ in 0..in_flight {
        // The receiver is alive: it is on this thread.
        let _ = token_tx.send(());
    }
    let (work_tx, work_rx) = mpsc::channel::<Chunk>();
    let (done_tx, done_rx) = mpsc::channel::<(u64, Vec<T>)>();
    std::thread::spawn(move || read_chunks(chunks, &token_rx, &work_tx));
    let work_rx = Arc::new(Mutex::new(work_rx));
    let map = Arc::new(map);
    for _ in 0..threads {
        let work_rx = Arc::clone(&work_rx);
        let done_tx = done_tx.clone();
        let map = Arc::clone(&map);
        std::thread::spawn(move || parse_chunks(&work_rx, &done_tx, &*map));
    }
    ParallelLines(Lines::Parallel {
        tokens: token_tx,
        done: done_rx,
        waiting: BTreeMap::new(),
        next: 0,
        current: Vec::new().into_iter(),
    })
}

/// The iterator returned by [`read_jsonl_parallel`] and [`read_jsonl_mapped`].
pub struct ParallelLines<T>(Lines<T>);

impl<T> std::fmt::Debug for ParallelLines<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Lines::Serial { .. } => "ParallelLines(on the caller's thread)",
            Lines::Parallel { .. } => "ParallelLines(on parsing threads)",
        })
    }
}

type Map<T> = Box<dyn Fn(RecipientItem) -> T + Send + Sync>;

enum Lines<T> {
    Serial {
        chunks: ChunkReader<Box<dyn Read + Send>>,
        map: Map<T>,
        current: std::vec::IntoIter<T>,
    },
    Parallel {
        tokens: Sender<()>,
        done: Receiver<(u64, Vec<T>)>,
        /// Chunks parsed ahead of the one the caller is on.
        waiting: BTreeMap<u64, Vec<T>>,
        next: u64,
        current: std::vec::IntoIter<T>,
    },
}

impl<T> Iterator for ParallelLines<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match &mut self.0 {
            Lines::Serial {
                chunks,
                map,
                current,
            } => loop {
                if let Some(item) = current.next() {
                    return Some(item);
                }
                *current = parse_chunk(chunks.next()?, map).into_iter();
            },
            Lines::Parallel {
                tokens,
                done,
                waiting,
                next,
                current,
            } => loop {
                if let Some(item) = current.next() {
                    return Some(item);
                }
                let chunk = match waiting.remove(next) {
                    Some(chunk) => chunk,
                    None => loop {
                        match done.recv() {
                            Ok((sequence, chunk)) if sequence == *next => break chunk,
                            Ok((sequence, chunk)) => {
                                waiting.insert(sequence, chunk);
                            }
                            // Every parser has ended and nothing more is coming.
                            Err(_) => return None,
                        }
                    },
                };
                *next += 1;
                // The reader may go on with another chunk; it has ended if this fails.
                let _ = tokens.send(());
                *current = chunk.into_iter();
            },
        }
    }
}

/// Cuts a reader into chunks that end at a line's end (the last may not), numbering lines.
struct ChunkReader<R> {
    reader: R,
    carry: Vec<u8>,
    next_line: usize,
    sequence: u64,
    /// The reader ended or failed; the failure is handed on as a chunk of its own.
    finished: bool,
    failure: Option<io::Error>,
}

impl ChunkReader<Box<dyn Read + Send>> {
    fn new(reader: impl Read + Send + 'static) -> Self {
        ChunkReader {
            reader: Box::new(reader),
            carry: Vec::new(),
            next_line: 1,
            sequence: 0,
            finished: false,
            failure: None,
        }
    }
}

impl<R: Read> Iterator for ChunkReader<R> {
    type Item = Chunk;

    fn next(&mut self) -> Option<Chunk> {
        if self.finished {
            let failure = self.failure.take()?;
            return Some(self.chunk(Err(failure), 0));
        }
        let mut bytes = std::mem::take(&mut self.carry);
        bytes.reserve(CHUNK + CHUNK / 4);
        let mut last_line_end = memchr::memrchr(b'\n', &bytes);
        // A line longer than a chunk makes its chunk longer.
        while bytes.len() < CHUNK || last_line_end.is_none() {
            let start = bytes.len();
            bytes.resize(start + CHUNK / 4, 0);
            match self.reader.read(&mut bytes[start..]) {
                Ok(0) => self.finished = true,
                Ok(read) => {
                    bytes.truncate(start + read);
                    if let Some(at) = memchr::memrchr(b'\n', &bytes[start..]) {
                        last_line_end = Some(start + at);
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    bytes.truncate(start);
                    continue;
                }
                Err(e) => {
                    self.finished = true;
                    self.failure = Some(e);
                }
            }
            bytes.truncate(start);
            break;
        }
        if let (false, Some(end)) = (self.finished, last_line_end) {
            self.carry = bytes.split_off(end + 1);
        }
        let lines = count_lines(&bytes);
        Some(self.chunk(Ok(bytes), lines))
    }
}

impl<R> ChunkReader<R> {
    fn chunk(&mut self, bytes: Result<Vec<u8>, io::Error>, lines: usize) -> Chunk {
        let chunk = Chunk {
            sequence: self.sequence,
            first_line: self.next_line,
            bytes,
        };
        self.sequence += 1;
        self.next_line += lines;
        chunk
    }
}

/// Lines in `bytes`: its line ends, and a last line without one.
fn count_lines(bytes: &[u8]) -> usize {
    let ends = memchr::memchr_iter(b'\n', bytes).count();
    ends + usize::from(bytes.last().is_some_and(|b| *b != b'\n'))
}

/// The reading thread: a chunk each time a token allows it.
fn read_chunks(chunks: impl Iterator<Item = Chunk>, tokens: &Receiver<()>, work: &Sender<Chunk>) {
    for chunk in chunks {
        if tokens.recv().is_err() || work.send(chunk).is_err() {
            return;
        }
    }
}

/// A parsing thread: takes chunks until the reader has ended.
fn parse_chunks<T>(
    work: &Mutex<Receiver<Chunk>>,
    done: &Sender<(u64, Vec<T>)>,
    map: &(dyn Fn(RecipientItem) -> T + Send + Sync),
) {
    loop {
        let chunk = match work.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok(chunk) = chunk else { return };
        let sequence = chunk.sequence;
        let items =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse_chunk(chunk, map)))
                // A panic while parsing must not leave the iterator waiting for this chunk.
                .unwrap_or_else(|_| {
                    vec![map(Err(ModelError::Io(io::Error::other(
                        "a recipients parsing thread failed",
                    ))))]
                });
        if done.send((sequence, items)).is_err() {
            return;
        }
    }
}

fn parse_chunk<T>(chunk: Chunk, map: &(dyn Fn(RecipientItem) -> T + Send + Sync)) -> Vec<T> {
    let bytes = match chunk.bytes {
        Ok(bytes) => bytes,
        Err(e) => return vec![map(Err(ModelError::Io(e)))],
    };
    let mut items = Vec::with_capacity(bytes.len() / 256);
    let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    if bytes.is_empty() {
        return items;
    }
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', body).chain(std::iter::once(body.len()));
    for (offset, end) in ends.enumerate() {
        if let Some(item) = parse_line(&body[start..end], chunk.first_line + offset) {
            items.push(map(item));
        }
        start = end + 1;
    }
    items
}

#[cfg(test)]
mod tests {
    use super::super::read_jsonl;
    use super::*;

    /// A reader that hands out a few bytes at a time and can fail after some.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        fail_at: Option<usize>,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.fail_at.is_some_and(|f| self.at >= f) {
                return Err(io::Error::other("disk gone"));
            }
            let n = buf.len().min(7919).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn summary(items: impl Iterator<Item = RecipientItem>) -> Vec<String> {
        items
            .map(|item| match item {
                Ok(r) => r.id,
                Err(e) => e.to_string(),
            })
            .collect()
    }

    #[test]
    fn many_threads_hand_on_what_one_does_in_the_same_order() {
        let mut text = String::new();
        for i in 0..30_000 {
            match i % 5_000 {
                17 => text.push_str("{\"id\": \"x\", \"balance\": }\n"),
                18 => text.push('\n'),
                19 => text.push_str(&format!(
                    "{{\"id\": \"long-{i}\", \"note\": \"{}\"}}\n",
                    "я".repeat(700_000)
                )),
                _ => text.push_str(&format!("{{\"id\": \"c-{i}\", \"balance\": {i}.5}}\n")),
            }
        }
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(b"{\"id\": \"bad \xff\"}\n{\"id\": \"last\"}");
        let serial = summary(read_jsonl(&bytes[..]));
        assert_eq!(serial.len(), 30_000 - 6 + 2);
        assert!(serial.iter().any(|s| s.starts_with("line 5018: ")));
        for threads in [2, 3, 4] {
            let reader = Trickle {
                data: bytes.clone(),
                at: 0,
                fail_at: None,
            };
            assert_eq!(
                summary(read_jsonl_parallel(reader, threads)),
                serial,
                "{threads}"
            );
        }
        assert_eq!(
            summary(read_jsonl_parallel(io::Cursor::new(bytes), 1)),
            serial
        );
    }

    #[test]
    fn a_failing_reader_ends_the_stream_after_the_lines_before_it() {
        let text: String = (0..20_000)
            .map(|i| format!("{{\"id\": \"c-{i}\"}}\n"))
            .collect();
        let reader = Trickle {
            data: text.into_bytes(),
            at: 0,
            fail_at: Some(150_000),
        };
        let items = summary(read_jsonl_parallel(reader, 2));
        let last = items.last().unwrap();
        assert_eq!(last, "reading recipients failed");
        let read = &items[..items.len() - 1];
        assert!(
            read.iter()
                .enumerate()
                .all(|(i, id)| *id == format!("c-{i}"))
        );
        assert!(read.len() > 5_000, "{}", read.len());
    }

    #[test]
    fn dropping_the_iterator_early_ends_the_threads_quietly() {
        let text: String = (0..100_000)
            .map(|i| format!("{{\"id\": \"c-{i}\"}}\n"))
            .collect();
        let mut lines = read_jsonl_parallel(io::Cursor::new(text.into_bytes()), 2);
        assert_eq!(lines.next().unwrap().unwrap().id, "c-0");
        drop(lines);
    }
}
