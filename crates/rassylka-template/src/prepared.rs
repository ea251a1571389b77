use chrono::NaiveDate;
use rassylka_model::{Booking, Recipient};

use crate::direct::{Direct, escaped_salutations};
use crate::template::{Part, Source, render_part, resolve_value, write_value};
use crate::{Context, Formatting, OutputFormat, Rendered, Template, Values, Variable};

/// A template bound to one mailing: its date, values, formatting and output format.
///
/// Placeholders whose value is the same for every recipient (`today`, and mailing values that
/// no recipient's profile can override, such as `bonus_accrued`) are rendered once here and
/// merged into the literal text, so a render only does per-recipient work.
#[derive(Debug, Clone)]
pub struct PreparedTemplate {
    parts: Vec<Part>,
    /// Where each part's value is read first (one per part).
    direct: Vec<Direct>,
    /// The formatting's salutations, escaped for the format.
    salutations: [String; 3],
    /// Money and dates never need escaping in the format.
    numbers_plain: bool,
    expected_len: usize,
    today: NaiveDate,
    values: Values,
    formatting: Formatting,
    format: OutputFormat,
}

/// Variables the recipient's profile answers before mailing values are consulted.
fn from_profile(source: &Source) -> bool {
    matches!(
        source,
        Source::Variable(
            Variable::FirstName
                | Variable::LastName
                | Variable::MiddleName
                | Variable::FullName
                | Variable::Salutation
                | Variable::Balance
                | Variable::UnsubscribeUrl
        )
    )
}

impl Template {
    /// Binds the template to a mailing for rendering many recipients.
    pub fn prepare(
        &self,
        today: NaiveDate,
        values: &Values,
        formatting: &Formatting,
        format: OutputFormat,
    ) -> PreparedTemplate {
        let nobody = Recipient::default();
        let ctx = Context::new(&nobody, today)
            .values(values)
            .formatting(formatting)
            .booking(None);
        let mut parts: Vec<Part> = Vec::with_capacity(self.parts().len());
        let mut pending = String::new();
        let mut slots = 0;
        for part in self.parts() {
            match part {
                Part::Literal(text) => pending.push_str(text),
                Part::Slot { source, .. } if !from_profile(source) => {
                    // With an empty profile and no booking, what resolves here comes from the
                    // date or the mailing's values, and is the same for everyone.
                    match resolve_value(source, true, &ctx) {
                        Some(found)
                            if matches!(source, Source::Variable(Variable::Today))
                                || values_have(values, source) =>
                        {
                            let plain = formatting.is_plain_in(format);
                            write_value(found, source, &ctx, (format, plain), &mut pending);
                        }
                        _ => {
                            flush(&mut parts, &mut pending);
                            parts.push(with_values_known(part, values));
                            slots += 1;
                        }
                    }
                }
                Part::Slot { .. } => {
                    flush(&mut parts, &mut pending);
                    parts.push(with_values_known(part, values));
                    slots += 1;
                }
            }
        }
        flush(&mut parts, &mut pending);
        let literal_len: usize = parts
            .iter()
            .map(|p| match p {
                Part::Literal(text) => text.len(),
                Part::Slot { .. } => 16,
            })
            .sum();
        let numbers_plain = formatting.is_plain_in(format);
        PreparedTemplate {
            direct: parts
                .iter()
                .map(|part| Direct::of(part, numbers_plain))
                .collect(),
            parts,
            salutations: escaped_salutations(formatting, format),
            numbers_plain,
            expected_len: literal_len + 16 * slots,
            today,
            values: values.clone(),
            formatting: formatting.clone(),
            format,
        }
    }
}

fn values_have(values: &Values, source: &Source) -> bool {
    let name = match source {
        Source::Variable(v) => v.name(),
        Source::Field(f) => f,
    };
    values.get(name).is_some()
}

/// The slot, told whether the mailing's values hold its name at all.
fn with_values_known(part: &Part, values: &Values) -> Part {
    let mut part = part.clone();
    if let Part::Slot {
        source,
        consult_values,
        ..
    } = &mut part
    {
        *consult_values = values_have(values, source);
    }
    part
}

fn flush(parts: &mut Vec<Part>, pending: &mut String) {
    if !pending.is_empty() {
        parts.push(Part::Literal(std::mem::take(pending).into_boxed_str()));
    }
}

impl PreparedTemplate {
    /// Appends the text for `recipient` to `out` (which is not cleared). `booking` is the
    /// booking a segment rule matched; `None` uses the recipient's first booking.
    pub fn render_into(
        &self,
        recipient: &Recipient,
        booking: Option<&Booking>,
        out: &mut String,
    ) -> Rendered {
        self.render_link_into(recipient, booking, None, out)
    }

    /// As [`PreparedTemplate::render_into`], with the recipient's unsubscribe link as the
    /// value of `{unsubscribe_url}`.
    pub fn render_link_into(
        &self,
        recipient: &Recipient,
        booking: Option<&Booking>,
        unsubscribe_url: Option<&str>,
        out: &mut String,
    ) -> Rendered {
        let ctx = Context::new(recipient, self.today)
            .values(&self.values)
            .formatting(&self.formatting)
            .booking(booking.or(recipient.bookings.first()))
            .unsubscribe_url(unsubscribe_url);
        out.reserve(self.expected_len);
        let mut report = Rendered::default();
        let how = (self.format, self.numbers_plain);
        for (part, direct) in self.parts.iter().zip(&self.direct) {
            match part {
                Part::Literal(text) => out.push_str(text),
                _ if direct.write(&ctx, self.format, &self.salutations, out) => {}
                _ => render_part(part, &ctx, how, out, &mut report),
            }
        }
        report
    }

    /// Renders into a new string.
    pub fn render(&self, recipient: &Recipient, booking: Option<&Booking>) -> (String, Rendered) {
        self.render_with_link(recipient, booking, None)
    }

    /// Renders into a new string, with the recipient's unsubscribe link.
    pub fn render_with_link(
        &self,
        recipient: &Recipient,
        booking: Option<&Booking>,
        unsubscribe_url: Option<&str>,
    ) -> (String, Rendered) {
        let mut out = String::new();
        let report = self.render_link_into(recipient, booking, unsubscribe_url, &mut out);
        (out, report)
    }

    /// Whether a placeholder names `variable` (a template that places `{unsubscribe_url}`
    /// itself gets no automatic footer).
    pub fn places(&self, variable: Variable) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Slot { source: Source::Variable(v), .. } if *v == variable))
    }

    /// The output format it escapes for.
    pub fn format(&self) -> OutputFormat {
        self.format
    }
}
