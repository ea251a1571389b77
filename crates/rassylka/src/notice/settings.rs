//! The notices file (SPEC §7g): channels, mode, a template per event and the permissions of
//! each role, read with JSON paths (unknown keys refused) and its templates compiled at load.

use std::collections::{BTreeMap, BTreeSet};

use rassylka_model::ChannelKind;
use serde_json::{Map, Value, json};

use super::EventKind;
use crate::{DispatchError, Mailing, Problem};

/// What a role may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    /// A personal message written by the seller («отправка сообщений из просмотра клиента»).
    Personal,
    /// «Уведомление о готовности заказа».
    OrderReady,
    /// Bonuses accrued.
    BonusAccrued,
    /// Orders of other departments («за другие департаменты»).
    OtherDepartments,
}

impl Permission {
    /// The name in the notices file.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Personal => "personal",
            Permission::OrderReady => "order_ready",
            Permission::BonusAccrued => "bonus_accrued",
            Permission::OtherDepartments => "other_departments",
        }
    }

    const ALL: [Permission; 4] = [
        Permission::Personal,
        Permission::OrderReady,
        Permission::BonusAccrued,
        Permission::OtherDepartments,
    ];
}

/// The notices file: how service notices are sent, in whose words, and who may send them.
#[derive(Debug, Clone, PartialEq)]
pub struct Notices {
    pub(crate) channels: Vec<ChannelKind>,
    pub(crate) mode: String,
    /// Per event kind: the mailing `content` its notices are sent with.
    pub(crate) content: BTreeMap<EventKind, Value>,
    pub(crate) permissions: BTreeMap<String, BTreeSet<Permission>>,
}

const TEMPLATE_KEYS: [&str; 9] = [
    "dialect", "subject", "text", "html", "email", "sms", "telegram", "vk", "push",
];
const CHANNEL_KEYS: [&str; 3] = ["subject", "text", "html"];

fn problem(path: impl Into<String>, message: impl std::fmt::Display) -> Problem {
    Problem::new(path, message)
}

fn unknown_keys(object: &Map<String, Value>, known: &[&str], path: &str, out: &mut Vec<Problem>) {
    out.extend(crate::error::unknown_keys(object, known, path));
}

impl Notices {
    /// Reads and checks a notices file: every problem with its JSON path, templates compiled
    /// (`templates.order_ready.text: 1:7: unknown placeholder …`).
    ///
    /// # Errors
    /// [`DispatchError::InvalidMailing`] listing the problems.
    pub fn from_json(text: &str) -> Result<Notices, DispatchError> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            DispatchError::InvalidMailing(vec![problem("", format!("not valid JSON: {e}"))])
        })?;
        let mut problems = Vec::new();
        let Some(root) = value.as_object() else {
            return Err(DispatchError::InvalidMailing(vec![problem(
                "",
                "the notices file is a JSON object",
            )]));
        };
        unknown_keys(
            root,
            &["channels", "mode", "templates", "permissions"],
            "",
            &mut problems,
        );
        let mut channels = Vec::new();
        match root.get("channels") {
            Some(Value::Array(items)) if !items.is_empty() => {
                for (i, item) in items.iter().enumerate() {
                    match item.as_str().map(str::parse::<ChannelKind>) {
                        Some(Ok(kind)) if !channels.contains(&kind) => channels.push(kind),
                        Some(Ok(kind)) => problems.push(problem(
                            format!("channels[{i}]"),
                            format!("`{kind}` is listed twice"),
                        )),
                        _ => problems.push(problem(
                            format!("channels[{i}]"),
                            "expected one of email, sms, telegram, vk, push",
                        )),
                    }
                }
            }
            _ => problems.push(problem(
                "channels",
                "required: a non-empty list of channels",
            )),
        }
        let mode = match root.get("mode") {
            None => "all".to_owned(),
            Some(Value::String(m)) if m == "all" || m == "priority" => m.clone(),
            Some(_) => {
                problems.push(problem("mode", "expected all or priority"));
                "all".to_owned()
            }
        };
        let mut content = BTreeMap::new();
        match root.get("templates") {
            Some(Value::Object(templates)) => {
                let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                unknown_keys(templates, &names, "templates", &mut problems);
                for kind in EventKind::ALL {
                    let Some(template) = templates.get(kind.as_str()) else {
                        continue;
                    };
                    let path = format!("templates.{}", kind.as_str());
                    match template_content(kind, template, &path, &mut problems) {
                        Some(c) => {
                            content.insert(kind, c);
                        }
                        None => continue,
                    }
                }
            }
            _ => problems.push(problem(
                "templates",
                "required: an object of templates by event",
            )),
        }
        let mut permissions = BTreeMap::new();
        match root.get("permissions") {
            Some(Value::Object(roles)) => {
                for (role, granted) in roles {
                    let mut set = BTreeSet::new();
                    let Some(items) = granted.as_array() else {
                        problems.push(problem(format!("permissions.{role}"), "expected a list"));
                        continue;
                    };
                    for (i, item) in items.iter().enumerate() {
                        match Permission::ALL.iter().find(|p| Some(p.as_str()) == item.as_str()) {
                            Some(p) => {
                                set.insert(*p);
                            }
                            None => problems.push(problem(
                                format!("permissions.{role}[{i}]"),
                                "expected one of personal, order_ready, bonus_accrued, other_departments",
                            )),
                        }
                    }
                    permissions.insert(role.clone(), set);
                }
            }
            _ => problems.push(problem("permissions", "required: an object of roles")),
        }
        if !problems.is_empty() {
            return Err(DispatchError::InvalidMailing(problems));
        }
        let notices = Notices {
            channels,
            mode,
            content,
            permissions,
        };
        // Every template compiles for every channel, as its notices will.
        let mut problems = Vec::new();
        for kind in notices.content.keys() {
            let sample = notices.mailing_json(*kind, "check", BTreeMap::new());
            if let Err(DispatchError::InvalidMailing(found)) = Mailing::from_value(sample) {
                for p in found {
                    let path = p
                        .path
                        .replacen(
                            "content.default",
                            &format!("templates.{}", kind.as_str()),
                            1,
                        )
                        .replacen("content.", &format!("templates.{}.", kind.as_str()), 1);
                    problems.push(problem(path, p.message));
                }
            }
        }
        if problems.is_empty() {
            Ok(notices)
        } else {
            Err(DispatchError::InvalidMailing(problems))
        }
    }

    /// The channels notices go through, in order of priority.
    pub fn channels(&self) -> &[ChannelKind] {
        &self.channels
    }

    /// Whether `role` has `permission`.
    pub fn allows(&self, role: &str, permission: Permission) -> bool {
        self.permissions
            .get(role)
            .is_some_and(|granted| granted.contains(&permission))
    }

    /// The one-time service mailing a notice of `kind` is sent as.
    pub(crate) fn mailing_json(
        &self,
        kind: EventKind,
        event_id: &str,
        values: BTreeMap<&'static str, String>,
    ) -> Value {
        let channels: Vec<&str> = self.channels.iter().map(|c| c.as_str()).collect();
        json!({
            "id": format!("notice:{event_id}"),
            "name": format!("{} {event_id}", kind.as_str()),
            "kind": "one_time",
            "class": "service",
            "channels": channels,
            "mode": self.mode,
            "content": self.content.get(&kind).cloned().unwrap_or(Value::Null),
            "values": values,
            "fields": ["text"],
        })
    }
}

/// The e-mail subject of a notice whose template names none.
fn default_subject(kind: EventKind) -> &'static str {
    match kind {
        EventKind::OrderReady => "Ваш заказ готов",
        EventKind::BonusAccrued => "Вам начислены бонусы",
        EventKind::Personal => "Сообщение для вас",
    }
}

/// A template as mailing `content`: `default` from its top-level pieces, each channel's own
/// pieces in the same dialect.
fn template_content(
    kind: EventKind,
    template: &Value,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Option<Value> {
    let Some(fields) = template.as_object() else {
        problems.push(problem(path, "expected an object"));
        return None;
    };
    unknown_keys(fields, &TEMPLATE_KEYS, path, problems);
    let dialect = fields.get("dialect").cloned().unwrap_or(json!("probonus"));
    let mut default = Map::new();
    default.insert("dialect".into(), dialect.clone());
    for piece in CHANNEL_KEYS {
        if let Some(v) = fields.get(piece) {
            default.insert(piece.into(), v.clone());
        }
    }
    let has_subject = default.contains_key("subject");
    let mut content = Map::new();
    content.insert("default".into(), Value::Object(default));
    for channel in ["email", "sms", "telegram", "vk", "push"] {
        let Some(own) = fields.get(channel) else {
            continue;
        };
        let Some(own) = own.as_object() else {
            problems.push(problem(format!("{path}.{channel}"), "expected an object"));
            continue;
        };
        unknown_keys(own, &CHANNEL_KEYS, &format!("{path}.{channel}"), problems);
        let mut pieces = own.clone();
        pieces.insert("dialect".into(), dialect.clone());
        content.insert(channel.into(), Value::Object(pieces));
    }
    // SPEC §7g's own file gives e-mail a subject for one event only: the others get one that
    // says what the notice is about (on e-mail alone: other channels have no subject).
    if !has_subject {
        let email = content
            .entry("email")
            .or_insert_with(|| json!({"dialect": dialect.clone()}));
        if let Some(email) = email.as_object_mut() {
            email
                .entry("subject")
                .or_insert_with(|| json!(default_subject(kind)));
        }
    }
    Some(Value::Object(content))
}
