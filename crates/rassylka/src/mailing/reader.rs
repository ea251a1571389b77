//! Reading a mailing's JSON: problems collected with their paths, and the readers of its
//! parts (content, bonus, string maps).

use std::collections::BTreeMap;
use std::fmt;

use rassylka_model::{ChannelKind, Money};
use rassylka_template::BuiltinDialect;
use serde_json::{Map, Value};

use super::{Bonus, ChannelContent};
use crate::Problem;

/// Collects problems while reading, so the user sees them all at once.
pub(super) struct Reader {
    pub(super) problems: Vec<Problem>,
}

impl Reader {
    pub(super) fn problem(&mut self, path: impl Into<String>, message: impl fmt::Display) {
        self.problems.push(Problem::new(path, message));
    }

    pub(super) fn string(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Option<String> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.problem(path, "expected a string");
                None
            }
        }
    }

    pub(super) fn unknown_keys(&mut self, obj: &Map<String, Value>, known: &[&str], prefix: &str) {
        self.problems
            .extend(crate::error::unknown_keys(obj, known, prefix));
    }
}

pub(super) fn read_content(
    r: &mut Reader,
    value: Option<&Value>,
) -> BTreeMap<String, ChannelContent> {
    let mut out = BTreeMap::new();
    let Some(value) = value else {
        return out;
    };
    let Some(obj) = value.as_object() else {
        r.problem(
            "content",
            "expected an object with `default` and channel names",
        );
        return out;
    };
    for (key, item) in obj {
        let path = format!("content.{key}");
        if key != "default" && key.parse::<ChannelKind>().is_err() {
            r.problem(
                &path,
                "unknown key; expected default, email, sms, telegram, vk or push",
            );
            continue;
        }
        let Some(fields) = item.as_object() else {
            r.problem(
                &path,
                "expected an object with dialect, subject, text, html, image",
            );
            continue;
        };
        r.unknown_keys(
            fields,
            &["dialect", "subject", "text", "html", "image"],
            &path,
        );
        let dialect = match r.string(fields, "dialect", &format!("{path}.dialect")) {
            None => BuiltinDialect::ProBonus,
            Some(name) => name.parse().unwrap_or_else(|e| {
                r.problem(format!("{path}.dialect"), e);
                BuiltinDialect::ProBonus
            }),
        };
        out.insert(
            key.clone(),
            ChannelContent {
                dialect,
                subject: r.string(fields, "subject", &format!("{path}.subject")),
                text: r.string(fields, "text", &format!("{path}.text")),
                html: r.string(fields, "html", &format!("{path}.html")),
                image: r.string(fields, "image", &format!("{path}.image")),
            },
        );
    }
    out
}

pub(super) fn read_bonus(r: &mut Reader, value: Option<&Value>) -> Option<Bonus> {
    let obj = match value? {
        Value::Null => return None,
        Value::Object(obj) => obj,
        _ => {
            r.problem("bonus", "expected {\"amount\": N, \"expires_in_days\": N}");
            return None;
        }
    };
    r.unknown_keys(obj, &["amount", "expires_in_days"], "bonus");
    let amount = match obj
        .get("amount")
        .map(|v| serde_json::from_value::<Money>(v.clone()))
    {
        Some(Ok(m)) if m.0.is_sign_negative() => {
            r.problem("bonus.amount", "must not be negative");
            None
        }
        Some(Ok(m)) => Some(m),
        Some(Err(e)) => {
            r.problem("bonus.amount", e);
            None
        }
        None => {
            r.problem("bonus.amount", "required");
            None
        }
    };
    let expires_in_days = match obj.get("expires_in_days") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64().and_then(|d| u32::try_from(d).ok()) {
            Some(d) => Some(d),
            None => {
                r.problem(
                    "bonus.expires_in_days",
                    "expected a non-negative number of days",
                );
                None
            }
        },
    };
    amount.map(|amount| Bonus {
        amount,
        expires_in_days,
    })
}

pub(super) fn read_string_map(
    r: &mut Reader,
    value: Option<&Value>,
    path: &str,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Object(obj)) => {
            for (key, item) in obj {
                match item {
                    Value::String(s) => {
                        out.insert(key.clone(), s.clone());
                    }
                    Value::Number(n) => {
                        out.insert(key.clone(), n.to_string());
                    }
                    _ => r.problem(format!("{path}.{key}"), "expected a string or a number"),
                }
            }
        }
        Some(_) => r.problem(path, "expected an object of names and values"),
    }
    out
}
