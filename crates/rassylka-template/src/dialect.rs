use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use crate::{Target, TemplateError, Variable};

/// A placeholder syntax: its delimiters and its alias table (tag → variable).
///
/// The four built-in dialects are those of the source systems; [`Dialect::custom`] makes any
/// other pair of delimiters. Every dialect also accepts the canonical names
/// (`[first_name]` works in BonusPlus), so a template can always name every variable.
/// [`Dialect::with_alias`] extends or overrides a table.
#[derive(Clone)]
pub struct Dialect {
    name: String,
    open: String,
    close: String,
    aliases: HashMap<String, Target>,
    /// Aliases in the order they were added; the first one naming a target is what
    /// conversion writes.
    order: Vec<String>,
}

impl fmt::Debug for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dialect")
            .field("name", &self.name)
            .field("open", &self.open)
            .field("close", &self.close)
            .field("aliases", &self.order.len())
            .finish()
    }
}

/// The built-in dialects by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuiltinDialect {
    /// ProBonus: `{first_name}`.
    ProBonus,
    /// BonusPlus: `[ИМЯ]`.
    BonusPlus,
    /// Ecvi: `{{guest}}`.
    Ecvi,
    /// ITigris Optima: `:И:`.
    ITigris,
}

impl BuiltinDialect {
    /// The lower-case name used on command lines and in JSON (`probonus` …).
    pub fn as_str(self) -> &'static str {
        match self {
            BuiltinDialect::ProBonus => "probonus",
            BuiltinDialect::BonusPlus => "bonusplus",
            BuiltinDialect::Ecvi => "ecvi",
            BuiltinDialect::ITigris => "itigris",
        }
    }
}

impl FromStr for BuiltinDialect {
    type Err = TemplateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "probonus" => Ok(BuiltinDialect::ProBonus),
            "bonusplus" => Ok(BuiltinDialect::BonusPlus),
            "ecvi" => Ok(BuiltinDialect::Ecvi),
            "itigris" => Ok(BuiltinDialect::ITigris),
            other => Err(TemplateError::UnknownDialect(other.to_owned())),
        }
    }
}

const BONUSPLUS: &[(&str, Variable)] = &[
    ("ИМЯ", Variable::FirstName),
    ("ФАМИЛИЯ", Variable::LastName),
    ("ОТЧЕСТВО", Variable::MiddleName),
    ("ФИО", Variable::FullName),
    ("УВАЖ", Variable::Salutation),
    ("БАЛАНС", Variable::Balance),
    ("ДАТА", Variable::Today),
    ("БОН2", Variable::BonusAccrued),
    ("БОН2_ДО", Variable::BonusExpiresOn),
    ("СГОРАЕТ", Variable::BonusExpiring),
    ("ЗАКАЗ", Variable::OrderId),
    ("ТЕЛЕФОН", Variable::SalonPhone),
    ("НОМЕР", Variable::Room),
    ("ЗАЕЗД", Variable::CheckIn),
    ("ВЫЕЗД", Variable::CheckOut),
    ("БРОНЬ", Variable::BookingId),
    ("ОТПИСКА", Variable::UnsubscribeUrl),
];

const ITIGRIS: &[(&str, Variable)] = &[
    ("И", Variable::FirstName),
    ("Ф", Variable::LastName),
    ("О", Variable::MiddleName),
    ("ФИО", Variable::FullName),
    ("Уваж", Variable::Salutation),
    ("БалансБонусов", Variable::Balance),
    ("Дата", Variable::Today),
    ("НачисленоБонусов", Variable::BonusAccrued),
    ("ДатаСгорания", Variable::BonusExpiresOn),
    ("СгораетБонусов", Variable::BonusExpiring),
    ("ID", Variable::OrderId),
    ("Tel", Variable::SalonPhone),
    ("Отписка", Variable::UnsubscribeUrl),
];

pub(crate) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || is_cyrillic_letter(c)
}

pub(crate) fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || is_cyrillic_letter(c)
}

fn is_cyrillic_letter(c: char) -> bool {
    matches!(c, 'А'..='я' | 'Ё' | 'ё' | 'Ѐ'..='Џ' | 'ѐ'..='џ')
}

impl Dialect {
    /// A built-in dialect.
    pub fn builtin(which: BuiltinDialect) -> Dialect {
        match which {
            BuiltinDialect::ProBonus => Dialect::bare("probonus", "{", "}"),
            BuiltinDialect::BonusPlus => Dialect::bare("bonusplus", "[", "]").with_table(BONUSPLUS),
            BuiltinDialect::Ecvi => {
                Dialect::bare("ecvi", "{{", "}}").with_table(&[("guest", Variable::FullName)])
            }
            BuiltinDialect::ITigris => Dialect::bare("itigris", ":", ":").with_table(ITIGRIS),
        }
    }

    /// ProBonus: `{first_name}` … the canonical names.
    pub fn probonus() -> Dialect {
        Dialect::builtin(BuiltinDialect::ProBonus)
    }

    /// BonusPlus: `[ИМЯ]`, `[БОН2]` ….
    pub fn bonusplus() -> Dialect {
        Dialect::builtin(BuiltinDialect::BonusPlus)
    }

    /// Ecvi: `{{first_name}}`, `{{guest}}` for the full name.
    pub fn ecvi() -> Dialect {
        Dialect::builtin(BuiltinDialect::Ecvi)
    }

    /// ITigris Optima: `:И:`, `:Уваж:`, `:НачисленоБонусов:` ….
    pub fn itigris() -> Dialect {
        Dialect::builtin(BuiltinDialect::ITigris)
    }

    /// A dialect with other delimiters (`<`/`>`, `<<`/`>>`, `%`/`%`) and only the canonical names
    /// until aliases are added.
    ///
    /// # Errors
    /// [`TemplateError::InvalidDialect`] when a delimiter is empty, contains whitespace, a name
    /// character or `|`, or the closing delimiter starts with a name character.
    pub fn custom(name: &str, open: &str, close: &str) -> Result<Dialect, TemplateError> {
        let bad = |reason: &'static str| TemplateError::InvalidDialect {
            name: name.to_owned(),
            reason,
        };
        for delimiter in [open, close] {
            if delimiter.is_empty() {
                return Err(bad("a delimiter is empty"));
            }
            if delimiter
                .chars()
                .any(|c| c.is_whitespace() || is_name_char(c) || c == '|')
            {
                return Err(bad("a delimiter contains a space, a name character or `|`"));
            }
        }
        Ok(Dialect::bare(name, open, close))
    }

    fn bare(name: &str, open: &str, close: &str) -> Dialect {
        Dialect {
            name: name.to_owned(),
            open: open.to_owned(),
            close: close.to_owned(),
            aliases: HashMap::new(),
            order: Vec::new(),
        }
    }

    fn with_table(mut self, table: &[(&str, Variable)]) -> Dialect {
        for (tag, variable) in table {
            self.insert(tag, Target::Variable(*variable));
        }
        self
    }

    fn insert(&mut self, tag: &str, target: Target) {
        if self.aliases.insert(tag.to_owned(), target).is_none() {
            self.order.push(tag.to_owned());
        }
    }

    /// Adds or overrides an alias: `tag` will name `target` (a canonical name such as
    /// `first_name`, or any custom field name).
    ///
    /// # Errors
    /// [`TemplateError::InvalidAlias`] when `tag` or `target` is not a valid name (a letter,
    /// then letters, digits or `_`).
    pub fn with_alias(mut self, tag: &str, target: &str) -> Result<Dialect, TemplateError> {
        for name in [tag, target] {
            if !is_valid_name(name) {
                return Err(TemplateError::InvalidAlias {
                    name: name.to_owned(),
                });
            }
        }
        self.insert(tag, Target::from_name(target));
        Ok(self)
    }

    /// The dialect's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The opening delimiter.
    pub fn open(&self) -> &str {
        &self.open
    }

    /// The closing delimiter.
    pub fn close(&self) -> &str {
        &self.close
    }

    /// What `tag` names in this dialect's table or as a canonical name (custom fields are
    /// resolved by the compile options).
    pub fn resolve(&self, tag: &str) -> Option<Target> {
        self.aliases
            .get(tag)
            .cloned()
            .or_else(|| Variable::from_name(tag).map(Target::Variable))
    }

    /// The tag this dialect writes for `target`: its first alias, else the canonical or field
    /// name.
    pub fn tag_for<'a>(&'a self, target: &'a Target) -> &'a str {
        self.order
            .iter()
            .find(|tag| self.aliases.get(tag.as_str()) == Some(target))
            .map_or(target.name(), String::as_str)
    }

    /// Every tag the dialect knows: aliases, then canonical names.
    pub fn known_tags(&self) -> impl Iterator<Item = &str> {
        self.order
            .iter()
            .map(String::as_str)
            .chain(Variable::ALL.iter().map(|v| v.name()))
    }

    /// `tag` wrapped in this dialect's delimiters.
    pub fn wrap(&self, tag: &str) -> String {
        format!("{}{tag}{}", self.open, self.close)
    }
}

pub(crate) fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(is_name_start) && chars.all(is_name_char)
}
