//! A fuzz harness on stable Rust: random and mutated inputs into every public parser
//! (templates in all dialects, rules, schedules, recipients, mailings, channels files,
//! notices, phone numbers and e-mail addresses, purchases, unsubscribe tokens and mailto
//! subjects), each call under `catch_unwind`, so a panic is reported with the input that
//! caused it instead of ending the run.
//!
//! `cargo test` runs a short pass (`tests/fuzz.rs`); `cargo bench --bench fuzz` a long one
//! (`RASSYLKA_FUZZ_INPUTS`, default a million). The seed corpus is `tests/fuzz-corpus/`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use chrono::NaiveDate;
use rassylka::channels::ChannelsFile;
use rassylka::model::{EmailAddress, PhoneNumber, Recipient, read_jsonl};
use rassylka::schedule::Schedule;
use rassylka::segment::{CompileOptions, Rule, Segment, Tz};
use rassylka::template::{Context, Dialect, OutputFormat, Template};
use rassylka::{Mailing, NoticeEvent, Notices, UnsubscribeKeys, mailto_token, read_purchases};

/// A parser under test: its name and what it does with one input.
pub struct Target {
    /// Also the corpus folder's name.
    pub name: &'static str,
    run: fn(&str),
}

/// Every target.
pub fn targets() -> Vec<Target> {
    vec![
        Target {
            name: "template",
            run: template,
        },
        Target {
            name: "rule",
            run: rule,
        },
        Target {
            name: "schedule",
            run: |t| drop(Schedule::from_json(t)),
        },
        Target {
            name: "recipient",
            run: recipients,
        },
        Target {
            name: "mailing",
            run: |t| drop(Mailing::from_json(t)),
        },
        Target {
            name: "channels",
            run: |t| drop(ChannelsFile::from_json(t)),
        },
        Target {
            name: "notices",
            run: notices,
        },
        Target {
            name: "contact",
            run: contacts,
        },
        Target {
            name: "purchases",
            run: |t| drop(read_purchases(t.as_bytes(), |_, _, _, _| {})),
        },
        Target {
            name: "unsubscribe",
            run: unsubscribe,
        },
    ]
}

/// The recipient templates and rules are tried on, read once.
fn sample() -> &'static Recipient {
    static SAMPLE: std::sync::OnceLock<Recipient> = std::sync::OnceLock::new();
    SAMPLE.get_or_init(|| {
        serde_json::from_str(
            r#"{"id": "c-1", "first_name": "Анна", "middle_name": "Сергеевна", "gender": "female",
                "balance": 1250.5, "fields": {"order_id": "A-553"},
                "bookings": [{"id": "b-1", "check_in": "2026-12-01", "room": "101"}]}"#,
        )
        .unwrap_or_else(|_| unreachable!("the sample recipient is valid"))
    })
}

fn template(text: &str) {
    let dialects = [
        Dialect::probonus(),
        Dialect::bonusplus(),
        Dialect::ecvi(),
        Dialect::itigris(),
    ];
    let recipient = sample();
    let today = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap_or_default();
    for dialect in &dialects {
        if let Ok(t) = Template::compile(text, dialect) {
            let context = Context::new(recipient, today);
            for format in [
                OutputFormat::Plain,
                OutputFormat::Html,
                OutputFormat::TelegramHtml,
                OutputFormat::MarkdownV2,
            ] {
                let _ = t.render(&context, format);
            }
            for to in &dialects {
                let _ = t.convert(to);
            }
        }
    }
}

fn rule(text: &str) {
    if let Ok(rule) = Rule::from_json(text) {
        let today = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap_or_default();
        if let Ok(segment) =
            Segment::compile(&rule, &CompileOptions::new(today, Tz::Europe__Moscow))
        {
            let _ = segment.matches(sample());
        }
    }
}

fn recipients(text: &str) {
    let serde = serde_json::from_str::<Recipient>(text).ok();
    let mut lines = read_jsonl(text.as_bytes());
    let first = lines.next().map(|item| item.ok());
    lines.for_each(drop);
    // A one-line input read by the JSON Lines reader (whose quick path takes the common
    // shape) means what serde reads in it; a disagreement is a bug, reported as a panic.
    if !text.contains(['\n', '\r']) && !text.trim().is_empty() {
        assert_eq!(
            first,
            Some(serde),
            "the quick reader and serde disagree on {text:?}"
        );
    }
}

fn notices(text: &str) {
    let _ = Notices::from_json(text);
    let _ = NoticeEvent::from_json(text);
}

fn unsubscribe(text: &str) {
    static KEYS: std::sync::OnceLock<Option<UnsubscribeKeys>> = std::sync::OnceLock::new();
    let keys = KEYS.get_or_init(|| UnsubscribeKeys::new(&["the fuzz harness's secret key"]).ok());
    if let Some(keys) = keys {
        let _ = keys.verify(text);
        let _ = keys.verify(text.trim());
    }
    let _ = mailto_token(text);
}

fn contacts(text: &str) {
    let _ = PhoneNumber::parse(text);
    let _ = EmailAddress::parse(text);
}

/// A cheap, seedable pseudo-random sequence (xorshift).
pub struct Dice(u64);

impl Dice {
    /// A sequence from `seed` (any value).
    pub fn new(seed: u64) -> Dice {
        Dice(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }
}

/// Pieces that parsers give meaning to.
const TOKENS: [&str; 24] = [
    "{",
    "}",
    "{{",
    "}}",
    "[",
    "]",
    ":",
    "|",
    "\"",
    ",",
    "\\",
    "\n",
    "\r\n",
    "\u{0}",
    "-",
    "9999999999999999",
    "-1",
    "1e308",
    "null",
    "true",
    "{\"any\":[",
    "\"every\":\"month\"",
    "Ё",
    "\u{202e}",
];

/// One input made from the corpus: a seed mutated a few times, sometimes spliced or repeated.
pub fn mutate(corpus: &[String], dice: &mut Dice) -> String {
    let mut bytes: Vec<u8> = corpus
        .get(dice.below(corpus.len()))
        .map(|s| s.as_bytes().to_vec())
        .unwrap_or_default();
    for _ in 0..=dice.below(4) {
        let at = dice.below(bytes.len() + 1);
        match dice.below(7) {
            0 if !bytes.is_empty() => {
                let i = dice.below(bytes.len());
                bytes[i] ^= 1 << dice.below(8);
            }
            1 if !bytes.is_empty() => {
                let end = (at + 1 + dice.below(8)).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            2 => {
                let token = TOKENS[dice.below(TOKENS.len())];
                bytes.splice(at..at, token.bytes());
            }
            3 if !bytes.is_empty() => {
                // A slice repeated: long inputs of one shape (quadratic parsers, deep nesting).
                let start = dice.below(bytes.len());
                let end = (start + 1 + dice.below(6)).min(bytes.len());
                let piece = bytes[start..end].to_vec();
                for _ in 0..dice.below(200) {
                    bytes.splice(at..at, piece.iter().copied());
                }
            }
            4 => {
                let other = corpus
                    .get(dice.below(corpus.len()))
                    .cloned()
                    .unwrap_or_default();
                let cut = dice.below(other.len() + 1);
                bytes.splice(at..at, other.as_bytes()[..cut].iter().copied());
            }
            5 => bytes.insert(at, u8::try_from(dice.below(256)).unwrap_or(0)),
            _ => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Reads a target's seed corpus from `root/<name>/*`.
pub fn corpus(root: &Path, name: &str) -> Vec<String> {
    let mut seeds: Vec<String> = std::fs::read_dir(root.join(name))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    seeds.sort();
    if seeds.is_empty() {
        seeds.push(String::new());
    }
    seeds
}

/// A panic found: the target and the input.
#[derive(Debug)]
pub struct Crash {
    /// The target.
    pub target: &'static str,
    /// The input that made it panic.
    pub input: String,
}

/// Runs `inputs` mutated inputs (and every seed as is) through `target`; the inputs that
/// panicked.
pub fn run(target: &Target, corpus: &[String], inputs: usize, dice: &mut Dice) -> Vec<Crash> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut crashes = Vec::new();
    let mut try_one = |input: String| {
        if catch_unwind(AssertUnwindSafe(|| (target.run)(&input))).is_err() {
            crashes.push(Crash {
                target: target.name,
                input,
            });
        }
    };
    for seed in corpus {
        try_one(seed.clone());
    }
    for _ in 0..inputs {
        try_one(mutate(corpus, dice));
    }
    std::panic::set_hook(previous);
    crashes
}
