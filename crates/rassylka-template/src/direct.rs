//! Placeholders a prepared template writes straight from where their value lives.
//!
//! The general lookup ([`resolve_value`](crate::template::resolve_value)) asks, for every
//! placeholder of every recipient, the profile, the mailing's values, the booking and the
//! custom fields in turn, then dispatches on what it found. A prepared template knows each
//! placeholder's source and whether the mailing's values can hold its name, so it picks the
//! first place that can answer once, and goes there directly. When that place has no value the
//! general lookup runs as before (the rest of the order, fallbacks, counting), so what is
//! written never differs.

use serde_json::Value as Json;

use crate::template::{Part, Source, non_blank, salutation_index, write_full_name};
use crate::{Context, Formatting, OutputFormat, Variable};

/// One of the profile's names.
#[derive(Debug, Clone, Copy)]
pub(crate) enum NamePart {
    First,
    Last,
    Middle,
}

/// Where one placeholder's value is read first.
#[derive(Debug, Clone)]
pub(crate) enum Direct {
    /// A literal, or a placeholder the general lookup handles.
    General,
    /// A name of the profile, trimmed, escaped.
    Name(NamePart),
    /// «Фамилия Имя Отчество».
    FullName,
    /// The salutation by gender, escaped once when the template was prepared.
    Salutation,
    /// The bonus balance, when money needs no escaping in the format.
    Balance,
    /// A text of the matched booking, trimmed, escaped: its room (or else its id).
    BookingText { room: bool },
    /// A date of the matched booking, when dates need no escaping in the format: check-in
    /// (or else check-out).
    BookingDate { check_in: bool },
    /// A text custom field of the recipient, escaped.
    Field(Box<str>),
}

impl Direct {
    /// The direct way to `part`, for a template whose money and dates need no escaping when
    /// `numbers_plain`.
    pub(crate) fn of(part: &Part, numbers_plain: bool) -> Direct {
        let Part::Slot {
            source,
            consult_values,
            ..
        } = part
        else {
            return Direct::General;
        };
        match source {
            Source::Variable(Variable::FirstName) => Direct::Name(NamePart::First),
            Source::Variable(Variable::LastName) => Direct::Name(NamePart::Last),
            Source::Variable(Variable::MiddleName) => Direct::Name(NamePart::Middle),
            Source::Variable(Variable::FullName) => Direct::FullName,
            Source::Variable(Variable::Salutation) => Direct::Salutation,
            Source::Variable(Variable::Balance) if numbers_plain => Direct::Balance,
            // The mailing's values come before the booking and the fields.
            _ if *consult_values => Direct::General,
            Source::Variable(Variable::Room) => Direct::BookingText { room: true },
            Source::Variable(Variable::BookingId) => Direct::BookingText { room: false },
            Source::Variable(Variable::CheckIn) if numbers_plain => {
                Direct::BookingDate { check_in: true }
            }
            Source::Variable(Variable::CheckOut) if numbers_plain => {
                Direct::BookingDate { check_in: false }
            }
            Source::Variable(v @ (Variable::OrderId | Variable::SalonPhone)) => {
                Direct::Field(v.name().into())
            }
            Source::Field(name) => Direct::Field(name.clone()),
            Source::Variable(_) => Direct::General,
        }
    }

    /// Writes the value if it is where this placeholder looks first; `false` when it is not
    /// there and the general lookup must decide.
    pub(crate) fn write(
        &self,
        ctx: &Context<'_>,
        format: OutputFormat,
        salutations: &[String; 3],
        out: &mut String,
    ) -> bool {
        let r = ctx.recipient;
        match self {
            Direct::General => false,
            Direct::Name(part) => {
                let name = match part {
                    NamePart::First => &r.first_name,
                    NamePart::Last => &r.last_name,
                    NamePart::Middle => &r.middle_name,
                };
                escape(non_blank(name), format, out)
            }
            Direct::FullName => write_full_name(r, format, out),
            Direct::Salutation => {
                out.push_str(&salutations[salutation_index(r)]);
                true
            }
            Direct::Balance => match r.balance {
                Some(balance) => {
                    ctx.formatting.push_money(balance.0, out);
                    true
                }
                None => false,
            },
            Direct::BookingText { room } => {
                let text = ctx
                    .booking
                    .and_then(|b| non_blank(if *room { &b.room } else { &b.id }));
                escape(text, format, out)
            }
            Direct::BookingDate { check_in } => match ctx
                .booking
                .and_then(|b| if *check_in { b.check_in } else { b.check_out })
            {
                Some(date) => {
                    ctx.formatting.push_date(date, out);
                    true
                }
                None => false,
            },
            Direct::Field(name) => match r.fields.get(&**name) {
                Some(Json::String(s)) if !s.trim().is_empty() => {
                    format.escape_into(s, out);
                    true
                }
                _ => false,
            },
        }
    }
}

/// The salutations of `formatting`, escaped for `format`.
pub(crate) fn escaped_salutations(formatting: &Formatting, format: OutputFormat) -> [String; 3] {
    formatting.salutation.clone().map(|text| {
        let mut out = String::with_capacity(text.len());
        format.escape_into(&text, &mut out);
        out
    })
}

fn escape(text: Option<&str>, format: OutputFormat, out: &mut String) -> bool {
    match text {
        Some(text) => {
            format.escape_into(text, out);
            true
        }
        None => false,
    }
}
