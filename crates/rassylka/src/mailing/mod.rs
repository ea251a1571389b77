//! The mailing JSON of SPEC §7: read and checked with JSON paths (`reader.rs` reads its
//! parts), its content compiled per channel.

use std::collections::{BTreeMap, BTreeSet};

use rassylka_model::{ChannelKind, MessageClass, Money};
use rassylka_schedule::{Schedule, SendWindow};
use rassylka_segment::Rule;
use rassylka_template::{BuiltinDialect, CompileOptions, Dialect, Template};
use serde_json::Value;

use crate::{DispatchError, Problem};

mod reader;

use reader::{Reader, read_bonus, read_content, read_string_map};

/// One-time mailings can be copied; periodic ones repeat inside a promotion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailingKind {
    /// «Разовая»: fires once.
    OneTime,
    /// «Периодическая»: repeats by its schedule.
    Periodic,
}

impl MailingKind {
    /// `one_time` or `periodic`.
    pub fn as_str(self) -> &'static str {
        match self {
            MailingKind::OneTime => "one_time",
            MailingKind::Periodic => "periodic",
        }
    }
}

/// Through which of the selected channels a recipient is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeliveryMode {
    /// Every selected channel the recipient can be reached on.
    #[default]
    All,
    /// The first reachable channel in order; the next one when a send fails for good.
    Priority,
}

impl DeliveryMode {
    /// `all` or `priority`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryMode::All => "all",
            DeliveryMode::Priority => "priority",
        }
    }
}

/// What one channel says: each piece is a template in its own dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelContent {
    /// The placeholder dialect of the texts below.
    pub dialect: BuiltinDialect,
    /// E-mail subject.
    pub subject: Option<String>,
    /// Plain text (SMS, Telegram, VK, push, the text part of an e-mail).
    pub text: Option<String>,
    /// HTML body of an e-mail.
    pub html: Option<String>,
    /// An image path or URL, overriding the mailing's.
    pub image: Option<String>,
}

/// Bonuses accrued to every recipient the mailing reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bonus {
    /// How many.
    pub amount: Money,
    /// They burn this many days after the occurrence's date.
    pub expires_in_days: Option<u32>,
}

/// A mailing as SPEC §7 describes it. Build it with [`Mailing::from_json`], which checks
/// everything and names each problem by its JSON path.
#[derive(Debug, Clone)]
pub struct Mailing {
    /// Identifier, part of every occurrence and delivery key.
    pub id: String,
    /// Name for people.
    pub name: String,
    /// One-time or periodic.
    pub kind: MailingKind,
    /// Advertising (needs consent, respects «no mailings») or service.
    pub class: MessageClass,
    /// Who.
    pub audience: Rule,
    /// When; `None` means «send now» (at confirmation).
    pub schedule: Option<Schedule>,
    /// Deliver only inside this window of the recipient's local time.
    pub send_window: Option<SendWindow>,
    /// Channels in order of priority.
    pub channels: Vec<ChannelKind>,
    /// All channels or the first reachable.
    pub mode: DeliveryMode,
    /// `default` and per-channel content.
    pub content: BTreeMap<String, ChannelContent>,
    /// Image for every channel that takes one.
    pub image: Option<String>,
    /// Bonus accrual.
    pub bonus: Option<Bonus>,
    /// Promotion for attribution.
    pub promotion_id: Option<String>,
    /// Marketing activity for attribution.
    pub activity_id: Option<String>,
    /// The share of the audience left out to measure the lift against.
    pub holdout: Option<crate::Holdout>,
    /// Inactive mailings are kept but never fire.
    pub active: bool,
    /// Extra template values for every recipient (`salon_phone`, a promo code …).
    pub values: BTreeMap<String, String>,
    /// Custom `fields` names the templates use, so strict compilation knows them.
    pub fields: BTreeSet<String>,
    /// Skip a delivery whose text has a placeholder with no value and no fallback, rather than
    /// send «Здравствуйте, !».
    pub skip_incomplete: bool,
    /// The zone of a mailing without a schedule (a schedule names its own).
    pub tz: Option<chrono_tz::Tz>,
    /// The JSON it was read from, as stored.
    source: Value,
}

const KEYS: &[&str] = &[
    "id",
    "name",
    "kind",
    "class",
    "audience",
    "schedule",
    "send_window",
    "channels",
    "mode",
    "content",
    "image",
    "bonus",
    "promotion_id",
    "activity_id",
    "holdout",
    "active",
    "values",
    "fields",
    "skip_incomplete",
    "tz",
];

impl Mailing {
    /// Reads and checks a mailing.
    ///
    /// # Errors
    /// [`DispatchError::InvalidMailing`] listing every problem with its JSON path: unknown
    /// keys, wrong types, an audience rule or schedule that does not parse, a channel without
    /// content, a template with an unknown placeholder (`content.sms.text: 1:7: unknown
    /// placeholder …`), a one-time kind with a repeating schedule.
    pub fn from_json(text: &str) -> Result<Mailing, DispatchError> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            DispatchError::InvalidMailing(vec![Problem {
                path: String::new(),
                message: format!("not valid JSON: {e}"),
            }])
        })?;
        Mailing::from_value(value)
    }

    /// Reads and checks a mailing from parsed JSON; see [`Mailing::from_json`].
    ///
    /// # Errors
    /// As for [`Mailing::from_json`].
    pub fn from_value(value: Value) -> Result<Mailing, DispatchError> {
        let mut r = Reader {
            problems: Vec::new(),
        };
        let Some(obj) = value.as_object() else {
            r.problem("", "a mailing is a JSON object");
            return Err(DispatchError::InvalidMailing(r.problems));
        };
        r.unknown_keys(obj, KEYS, "");
        let id = r.string(obj, "id", "id").unwrap_or_default();
        if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            r.problem("id", "required: a non-empty string without spaces");
        }
        let name = r.string(obj, "name", "name").unwrap_or_else(|| id.clone());
        let kind = match r.string(obj, "kind", "kind").as_deref() {
            None | Some("one_time" | "one-time") => MailingKind::OneTime,
            Some("periodic") => MailingKind::Periodic,
            Some(other) => {
                r.problem(
                    "kind",
                    format!("unknown kind `{other}`; expected one_time or periodic"),
                );
                MailingKind::OneTime
            }
        };
        let class = match r.string(obj, "class", "class").as_deref() {
            None | Some("advertising") => MessageClass::Advertising,
            Some("service") => MessageClass::Service,
            Some(other) => {
                r.problem(
                    "class",
                    format!("unknown class `{other}`; expected advertising or service"),
                );
                MessageClass::Advertising
            }
        };
        let audience = match obj.get("audience") {
            None | Some(Value::Null) => Rule::from_json(r#"{"everyone": true}"#).ok(),
            Some(rule) => match Rule::from_value(rule) {
                Ok(rule) => Some(rule),
                Err(e) => {
                    r.problem(audience_path(&e), e);
                    None
                }
            },
        };
        let schedule = match obj.get("schedule") {
            None | Some(Value::Null) => None,
            Some(s) => match serde_json::from_value::<Schedule>(s.clone()) {
                Ok(s) => Some(s),
                Err(e) => {
                    r.problem("schedule", e);
                    None
                }
            },
        };
        if let Some(schedule) = &schedule {
            let once = schedule.every() == rassylka_schedule::Every::Once;
            if kind == MailingKind::OneTime && !once {
                r.problem(
                    "kind",
                    "a one-time mailing fires once, but schedule.every repeats it",
                );
            }
            if kind == MailingKind::Periodic && once {
                r.problem(
                    "schedule.every",
                    "a periodic mailing needs day, week, month or year",
                );
            }
        } else if kind == MailingKind::Periodic {
            r.problem("schedule", "a periodic mailing needs a schedule");
        }
        let send_window = match obj.get("send_window") {
            None | Some(Value::Null) => None,
            Some(w) => match serde_json::from_value::<SendWindow>(w.clone()) {
                Ok(w) => Some(w),
                Err(e) => {
                    r.problem("send_window", e);
                    None
                }
            },
        };
        let mut channels = Vec::new();
        match obj.get("channels") {
            Some(Value::Array(items)) if !items.is_empty() => {
                for (i, item) in items.iter().enumerate() {
                    match item.as_str().map(str::parse::<ChannelKind>) {
                        Some(Ok(kind)) if channels.contains(&kind) => r.problem(
                            format!("channels[{i}]"),
                            format!("`{kind}` is listed twice"),
                        ),
                        Some(Ok(kind)) => channels.push(kind),
                        Some(Err(e)) => r.problem(format!("channels[{i}]"), e),
                        None => r.problem(format!("channels[{i}]"), "expected a channel name"),
                    }
                }
            }
            _ => r.problem(
                "channels",
                "required: a non-empty list of email, sms, telegram, vk, push",
            ),
        }
        let mode = match r.string(obj, "mode", "mode").as_deref() {
            None | Some("all") => DeliveryMode::All,
            Some("priority") => DeliveryMode::Priority,
            Some(other) => {
                r.problem(
                    "mode",
                    format!("unknown mode `{other}`; expected all or priority"),
                );
                DeliveryMode::All
            }
        };
        let image = r.string(obj, "image", "image");
        let content = read_content(&mut r, obj.get("content"));
        let bonus = read_bonus(&mut r, obj.get("bonus"));
        let values = read_string_map(&mut r, obj.get("values"), "values");
        let mut fields = BTreeSet::new();
        match obj.get("fields") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    match item.as_str() {
                        Some(name) => {
                            fields.insert(name.to_owned());
                        }
                        None => r.problem(format!("fields[{i}]"), "expected a field name"),
                    }
                }
            }
            Some(_) => r.problem("fields", "expected a list of field names"),
        }
        let active = match obj.get("active") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                r.problem("active", "expected true or false");
                true
            }
        };
        let skip_incomplete = match obj.get("skip_incomplete") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                r.problem("skip_incomplete", "expected true or false");
                false
            }
        };
        let tz = match r.string(obj, "tz", "tz") {
            None => None,
            Some(name) => match rassylka_schedule::parse_zone(&name) {
                Ok(tz) => Some(tz),
                Err(e) => {
                    r.problem("tz", e);
                    None
                }
            },
        };
        let holdout = crate::attribution::read_holdout(obj.get("holdout")).unwrap_or_else(|p| {
            r.problems.extend(p);
            None
        });
        let mailing = Mailing {
            id,
            name,
            kind,
            class,
            audience: audience
                .unwrap_or_else(|| Rule::from_json(r#"{"everyone": true}"#).expect("a valid rule")),
            schedule,
            send_window,
            channels,
            mode,
            content,
            image,
            bonus,
            promotion_id: r.string(obj, "promotion_id", "promotion_id"),
            activity_id: r.string(obj, "activity_id", "activity_id"),
            holdout,
            active,
            values,
            fields,
            skip_incomplete,
            tz,
            source: value.clone(),
        };
        // Every channel must have something to say, in templates that compile.
        for channel in &mailing.channels {
            if let Err(problems) = mailing.compile_channel(*channel) {
                r.problems.extend(problems);
            }
        }
        if r.problems.is_empty() {
            Ok(mailing)
        } else {
            Err(DispatchError::InvalidMailing(r.problems))
        }
    }

    /// The mailing's time zone: its schedule's, else `tz`, else Europe/Moscow.
    pub fn zone(&self) -> chrono_tz::Tz {
        self.schedule
            .as_ref()
            .map(Schedule::tz)
            .or(self.tz)
            .unwrap_or(chrono_tz::Europe::Moscow)
    }

    /// The JSON the mailing was read from.
    pub fn to_json(&self) -> String {
        self.source.to_string()
    }

    /// The content pieces for `channel`: each from the channel's own content, else the default.
    fn piece(
        &self,
        channel: ChannelKind,
        pick: fn(&ChannelContent) -> Option<&String>,
    ) -> Option<(String, &String, BuiltinDialect)> {
        let own = self.content.get(channel.as_str());
        if let Some(content) = own
            && let Some(text) = pick(content)
        {
            return Some((format!("content.{channel}"), text, content.dialect));
        }
        let default = self.content.get("default")?;
        pick(default).map(|text| ("content.default".to_owned(), text, default.dialect))
    }

    /// Compiles what `channel` sends.
    pub(crate) fn compile_channel(
        &self,
        channel: ChannelKind,
    ) -> Result<CompiledContent, Vec<Problem>> {
        let mut problems = Vec::new();
        let options = CompileOptions::default()
            .with_fields(self.fields.iter().cloned())
            .with_fields(self.values.keys().cloned());
        let mut compile = |piece: Option<(String, &String, BuiltinDialect)>, key: &str| {
            let (path, text, dialect) = piece?;
            match Template::compile_with(text, &Dialect::builtin(dialect), &options) {
                Ok(t) => Some(t),
                Err(e) => {
                    problems.push(Problem {
                        path: format!("{path}.{key}"),
                        message: e.to_string(),
                    });
                    None
                }
            }
        };
        let subject = compile(self.piece(channel, |c| c.subject.as_ref()), "subject");
        let mut text_piece = self.piece(channel, |c| c.text.as_ref());
        let html_piece = (channel == ChannelKind::Email)
            .then(|| self.piece(channel, |c| c.html.as_ref()))
            .flatten();
        // An e-mail's own HTML is not paired with the default text (written for SMS and the
        // messengers): its text part is derived from the HTML instead (SPEC §7d).
        if let (Some((html_from, ..)), Some((text_from, ..))) = (&html_piece, &text_piece)
            && html_from != text_from
        {
            text_piece = None;
        }
        let text = compile(text_piece, "text");
        let html = compile(html_piece, "html");
        let image = self
            .piece(channel, |c| c.image.as_ref())
            .map(|(_, image, _)| image.clone())
            .or_else(|| self.image.clone());
        if text.is_none() && html.is_none() && image.is_none() && problems.is_empty() {
            problems.push(Problem {
                path: format!("content.{channel}"),
                message: "no text and no image for this channel (nor in content.default)".into(),
            });
        }
        if channel == ChannelKind::Email && subject.is_none() && problems.is_empty() {
            problems.push(Problem {
                path: "content.email.subject".into(),
                message: "an e-mail needs a subject".into(),
            });
        }
        if problems.is_empty() {
            Ok(CompiledContent {
                subject,
                text,
                html,
                image,
            })
        } else {
            Err(problems)
        }
    }
}

/// The JSON path of a rule error, under `audience`.
fn audience_path(error: &rassylka_segment::SegmentError) -> String {
    match error.path() {
        Some(path) if !path.is_empty() => format!("audience.{path}"),
        _ => "audience".to_owned(),
    }
}

/// A channel's templates, compiled.
#[derive(Debug, Clone)]
pub(crate) struct CompiledContent {
    pub(crate) subject: Option<Template>,
    pub(crate) text: Option<Template>,
    pub(crate) html: Option<Template>,
    pub(crate) image: Option<String>,
}
