use std::fmt;

/// The canonical variables every dialect can name (SPEC §3). Any other name refers to a custom
/// value: a caller-supplied mailing value or a key of the recipient's `fields`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Variable {
    /// Имя.
    FirstName,
    /// Фамилия.
    LastName,
    /// Отчество.
    MiddleName,
    /// «Фамилия Имя Отчество», missing parts skipped.
    FullName,
    /// «Уважаемый» / «Уважаемая» by gender, «Уважаемый(ая)» when unknown.
    Salutation,
    /// Bonus balance (money).
    Balance,
    /// The date the mailing fired.
    Today,
    /// Bonuses this mailing accrues (money).
    BonusAccrued,
    /// When those bonuses burn (date).
    BonusExpiresOn,
    /// Bonuses that will burn (money).
    BonusExpiring,
    /// Order number.
    OrderId,
    /// The shop's phone.
    SalonPhone,
    /// Room of the matched booking.
    Room,
    /// Check-in date of the matched booking.
    CheckIn,
    /// Check-out date of the matched booking.
    CheckOut,
    /// Id of the matched booking.
    BookingId,
    /// The recipient's unsubscribe link for this mailing, given per render
    /// ([`Context::unsubscribe_url`](crate::Context::unsubscribe_url)).
    UnsubscribeUrl,
}

/// How a variable's value is printed, whatever its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    Money,
    Date,
}

impl Variable {
    /// Every canonical variable, in the specification's order.
    pub const ALL: [Variable; 17] = [
        Variable::FirstName,
        Variable::LastName,
        Variable::MiddleName,
        Variable::FullName,
        Variable::Salutation,
        Variable::Balance,
        Variable::Today,
        Variable::BonusAccrued,
        Variable::BonusExpiresOn,
        Variable::BonusExpiring,
        Variable::OrderId,
        Variable::SalonPhone,
        Variable::Room,
        Variable::CheckIn,
        Variable::CheckOut,
        Variable::BookingId,
        Variable::UnsubscribeUrl,
    ];

    /// The canonical name (`first_name`), which every dialect accepts as a tag.
    pub fn name(self) -> &'static str {
        match self {
            Variable::FirstName => "first_name",
            Variable::LastName => "last_name",
            Variable::MiddleName => "middle_name",
            Variable::FullName => "full_name",
            Variable::Salutation => "salutation",
            Variable::Balance => "balance",
            Variable::Today => "today",
            Variable::BonusAccrued => "bonus_accrued",
            Variable::BonusExpiresOn => "bonus_expires_on",
            Variable::BonusExpiring => "bonus_expiring",
            Variable::OrderId => "order_id",
            Variable::SalonPhone => "salon_phone",
            Variable::Room => "room",
            Variable::CheckIn => "check_in",
            Variable::CheckOut => "check_out",
            Variable::BookingId => "booking_id",
            Variable::UnsubscribeUrl => "unsubscribe_url",
        }
    }

    /// The variable with canonical name `name`.
    pub fn from_name(name: &str) -> Option<Variable> {
        Variable::ALL.into_iter().find(|v| v.name() == name)
    }

    pub(crate) fn kind(self) -> Kind {
        match self {
            Variable::Balance | Variable::BonusAccrued | Variable::BonusExpiring => Kind::Money,
            Variable::Today | Variable::BonusExpiresOn | Variable::CheckIn | Variable::CheckOut => {
                Kind::Date
            }
            _ => Kind::Text,
        }
    }
}

impl fmt::Display for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a placeholder refers to: a canonical variable or a custom name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// A canonical variable.
    Variable(Variable),
    /// A custom value: a mailing value or a key of the recipient's `fields`.
    Field(String),
}

impl Target {
    /// The canonical name or the field name.
    pub fn name(&self) -> &str {
        match self {
            Target::Variable(v) => v.name(),
            Target::Field(f) => f,
        }
    }

    /// A canonical variable when `name` is one, otherwise a field.
    pub fn from_name(name: &str) -> Target {
        match Variable::from_name(name) {
            Some(v) => Target::Variable(v),
            None => Target::Field(name.to_owned()),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
