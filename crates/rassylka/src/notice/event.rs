//! Events and senders as the host system hands them over (SPEC §7g), read with JSON paths.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::{DispatchError, Problem};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    /// An order is ready to be picked up.
    OrderReady,
    /// Bonuses were accrued.
    BonusAccrued,
    /// A personal message written by the seller.
    Personal,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 3] = [
        EventKind::OrderReady,
        EventKind::BonusAccrued,
        EventKind::Personal,
    ];

    /// The name in events and the notices file.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::OrderReady => "order_ready",
            EventKind::BonusAccrued => "bonus_accrued",
            EventKind::Personal => "personal",
        }
    }
}

/// The order an `order_ready` event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Its number (`:ID:`).
    pub id: String,
    /// Its status; only `ready` may be announced.
    pub status: String,
    /// The department (salon) it belongs to.
    pub department: Option<String>,
    /// The salon's phone (`:Tel:`).
    pub salon_phone: Option<String>,
}

/// One event from the host system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeEvent {
    /// Unique: the same id is never sent twice.
    pub id: String,
    /// What happened.
    pub kind: EventKind,
    /// Whom to tell.
    pub recipient_id: String,
    /// Template values of the event (`order_id`, `salon_phone`, `bonus_accrued`,
    /// `bonus_expires_on`, `balance`, `bonus_expiring`, `text`).
    pub values: BTreeMap<&'static str, String>,
    /// The order of an `order_ready` event.
    pub order: Option<Order>,
}

/// Who asks to send a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// The user.
    pub user: String,
    /// Their role, as named in the notices file's permissions.
    pub role: String,
    /// Their department (salon).
    pub department: Option<String>,
}

fn invalid(problems: Vec<Problem>) -> DispatchError {
    DispatchError::InvalidMailing(problems)
}

fn problem(path: &str, message: impl std::fmt::Display) -> Problem {
    Problem::new(path, message)
}

/// Reads an object's fields with paths, collecting problems.
struct Fields<'a> {
    object: &'a Map<String, Value>,
    prefix: &'a str,
    problems: Vec<Problem>,
}

impl<'a> Fields<'a> {
    fn new(value: &'a Value, prefix: &'a str, what: &str) -> Result<Fields<'a>, DispatchError> {
        match value.as_object() {
            Some(object) => Ok(Fields {
                object,
                prefix,
                problems: Vec::new(),
            }),
            None => Err(invalid(vec![problem(
                prefix,
                format!("{what} is a JSON object"),
            )])),
        }
    }

    fn path(&self, key: &str) -> String {
        crate::error::json_path(self.prefix, key)
    }

    fn known(&mut self, keys: &[&str]) {
        self.problems
            .extend(crate::error::unknown_keys(self.object, keys, self.prefix));
    }

    /// A string or number as text; `None` when absent.
    fn text(&mut self, key: &str, required: bool) -> Option<String> {
        match self.object.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            None | Some(Value::Null) if !required => None,
            _ => {
                let path = self.path(key);
                let what = if required { "required: " } else { "" };
                self.problems
                    .push(problem(&path, format!("{what}a non-empty string")));
                None
            }
        }
    }
}

impl NoticeEvent {
    /// Reads an event: `{"id", "event", "recipient_id", …}` with the fields of its kind.
    ///
    /// # Errors
    /// [`DispatchError::InvalidMailing`] listing every problem with its JSON path.
    pub fn from_json(text: &str) -> Result<NoticeEvent, DispatchError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| invalid(vec![problem("", format!("not valid JSON: {e}"))]))?;
        let mut f = Fields::new(&value, "", "an event")?;
        let id = f.text("id", true).unwrap_or_default();
        if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            f.problems.push(problem("id", "an event id has no spaces"));
        }
        let recipient_id = f.text("recipient_id", true).unwrap_or_default();
        let kind = match f.object.get("event").and_then(Value::as_str) {
            Some(name) => EventKind::ALL.into_iter().find(|k| k.as_str() == name),
            None => None,
        };
        let Some(kind) = kind else {
            f.problems.push(problem(
                "event",
                "required: order_ready, bonus_accrued or personal",
            ));
            return Err(invalid(f.problems));
        };
        let mut values = BTreeMap::new();
        let mut order = None;
        match kind {
            EventKind::OrderReady => {
                f.known(&["id", "event", "recipient_id", "order"]);
                match f.object.get("order") {
                    Some(o) => {
                        let mut of = Fields::new(o, "order", "an order")?;
                        of.known(&["id", "status", "department", "salon_phone"]);
                        let read = Order {
                            id: of.text("id", true).unwrap_or_default(),
                            status: of.text("status", true).unwrap_or_default(),
                            department: of.text("department", false),
                            salon_phone: of.text("salon_phone", false),
                        };
                        f.problems.append(&mut of.problems);
                        values.insert("order_id", read.id.clone());
                        if let Some(phone) = &read.salon_phone {
                            values.insert("salon_phone", phone.clone());
                        }
                        order = Some(read);
                    }
                    None => f.problems.push(problem("order", "required: the order")),
                }
            }
            EventKind::BonusAccrued => {
                f.known(&[
                    "id",
                    "event",
                    "recipient_id",
                    "amount",
                    "expires_on",
                    "balance",
                    "expiring",
                ]);
                for (key, variable, required) in [
                    ("amount", "bonus_accrued", true),
                    ("expires_on", "bonus_expires_on", false),
                    ("balance", "balance", false),
                    ("expiring", "bonus_expiring", false),
                ] {
                    if let Some(v) = f.text(key, required) {
                        values.insert(variable, v);
                    }
                }
            }
            EventKind::Personal => {
                f.known(&["id", "event", "recipient_id", "text"]);
                if let Some(text) = f.text("text", true) {
                    values.insert("text", text);
                }
            }
        }
        if f.problems.is_empty() {
            Ok(NoticeEvent {
                id,
                kind,
                recipient_id,
                values,
                order,
            })
        } else {
            Err(invalid(f.problems))
        }
    }
}

impl Sender {
    /// Reads a sender: `{"user", "role", "department"}`.
    ///
    /// # Errors
    /// [`DispatchError::InvalidMailing`] listing every problem with its JSON path.
    pub fn from_json(text: &str) -> Result<Sender, DispatchError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| invalid(vec![problem("", format!("not valid JSON: {e}"))]))?;
        let mut f = Fields::new(&value, "", "a sender")?;
        f.known(&["user", "role", "department"]);
        let sender = Sender {
            user: f.text("user", true).unwrap_or_default(),
            role: f.text("role", true).unwrap_or_default(),
            department: f.text("department", false),
        };
        if f.problems.is_empty() {
            Ok(sender)
        } else {
            Err(invalid(f.problems))
        }
    }
}
