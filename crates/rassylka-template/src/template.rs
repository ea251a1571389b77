use std::collections::BTreeSet;
use std::ops::Range;

use chrono::NaiveDate;
use memchr::memmem;
use rust_decimal::Decimal;
use serde_json::Value as Json;

use crate::context::Value;
use crate::dialect::{is_name_char, is_name_start};
use crate::format::{StackText, parse_iso_date};
use crate::variable::Kind;
use crate::{Context, Dialect, OutputFormat, Target, TemplateError, UnknownPlaceholder, Variable};

/// What to do with a well-formed tag the dialect does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Refuse the template, naming every such tag (the default).
    #[default]
    Strict,
    /// Keep the tag as literal text and report it in [`Template::warnings`].
    Lenient,
}

/// How to compile: strictness and the custom field names the templates may use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompileOptions {
    /// Strict or lenient.
    pub mode: Mode,
    /// Custom names (`fields` keys, mailing values) that are valid tags in every dialect. A tag
    /// also matches a name when its lower-case form does (`[PROMO_CODE]` → `promo_code`).
    pub fields: BTreeSet<String>,
    /// Read every well-formed tag the dialect does not know as a custom field of that name,
    /// so nothing is unknown (for tools such as converters that cannot know the fields).
    pub any_field: bool,
}

impl CompileOptions {
    /// Lenient mode.
    pub fn lenient() -> Self {
        CompileOptions {
            mode: Mode::Lenient,
            ..CompileOptions::default()
        }
    }

    /// Accepts every well-formed tag, reading unknown ones as custom fields.
    pub fn accept_any_field(mut self) -> Self {
        self.any_field = true;
        self
    }

    /// Adds custom field names.
    pub fn with_fields<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.fields.extend(names.into_iter().map(Into::into));
        self
    }
}

/// A placeholder found in a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    /// The tag as written, delimiters included.
    pub tag: String,
    /// What it refers to.
    pub target: Target,
    /// The text printed when the value is missing.
    pub fallback: Option<String>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column in characters.
    pub column: usize,
}

/// What one render noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rendered {
    /// Placeholders that had no value and no fallback, so printed nothing.
    pub missing: usize,
    /// Placeholders that printed their fallback.
    pub fallbacks: usize,
}

impl Rendered {
    /// True when every placeholder without a fallback had a value.
    pub fn is_complete(&self) -> bool {
        self.missing == 0
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Source {
    Variable(Variable),
    Field(Box<str>),
}

#[derive(Debug, Clone)]
pub(crate) enum Part {
    Literal(Box<str>),
    Slot {
        source: Source,
        fallback: Option<Box<str>>,
        /// Index into [`Template::placeholders`].
        index: usize,
        /// Whether the mailing's values may hold this name; cleared by
        /// [`Template::prepare`] when they cannot, to skip the lookup.
        consult_values: bool,
    },
}

/// A compiled template: parse once, render for every recipient.
///
/// Rendering walks a list of literal and placeholder parts, appending to the caller's buffer; it
/// allocates nothing else. Substituted values are escaped for the [`OutputFormat`]; the
/// template's own text is copied as is.
#[derive(Debug, Clone)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
    /// Source byte range of each part, to point conversion errors at the source.
    spans: Vec<Range<usize>>,
    placeholders: Vec<Placeholder>,
    warnings: Vec<UnknownPlaceholder>,
    literal_len: usize,
    options: CompileOptions,
}

/// Line and column of byte offsets met in increasing order, counted once.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
    line: usize,
    column: usize,
}

impl Cursor<'_> {
    fn advance(&mut self, to: usize) -> (usize, usize) {
        for c in self.text[self.at..to].chars() {
            if c == '\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
        }
        self.at = to;
        (self.line, self.column)
    }
}

struct Tag {
    name: Range<usize>,
    fallback: Option<Range<usize>>,
    end: usize,
}

/// Reads a well-formed tag whose opening delimiter starts at `at`.
fn scan_tag(text: &str, at: usize, open: &str, close: &str) -> Option<Tag> {
    let name_start = at + open.len();
    let rest = &text[name_start..];
    let mut chars = rest.char_indices();
    let (_, first) = chars.next()?;
    if !is_name_start(first) {
        return None;
    }
    let name_end = name_start
        + chars
            .find(|(_, c)| !is_name_char(*c))
            .map_or(rest.len(), |(i, _)| i);
    let after = &text[name_end..];
    if after.starts_with(close) {
        return Some(Tag {
            name: name_start..name_end,
            fallback: None,
            end: name_end + close.len(),
        });
    }
    let fallback_start = name_end + after.strip_prefix('|').map(|_| 1)?;
    let tail = &text[fallback_start..];
    // A fallback ends at the closing delimiter, and never spans a line or another opening
    // delimiter: stopping there keeps compiling linear (`{a|` repeated a million times would
    // otherwise search the rest of the text for `}` at each one).
    let mut close_at = None;
    for (i, c) in tail.char_indices() {
        let here = &tail[i..];
        if here.starts_with(close) {
            close_at = Some(i);
            break;
        }
        if c == '\n' || here.starts_with(open) {
            return None;
        }
    }
    let close_at = close_at?;
    Some(Tag {
        name: name_start..name_end,
        fallback: Some(fallback_start..fallback_start + close_at),
        end: fallback_start + close_at + close.len(),
    })
}

/// Unknown tags listed in an error or in warnings; more are counted.
pub(crate) const LISTED_UNKNOWN: usize = 20;

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca.to_lowercase().ne(cb.to_lowercase()));
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

impl Template {
    /// Compiles `text` in `dialect`, strictly, with no custom fields.
    ///
    /// # Errors
    /// [`TemplateError::UnknownPlaceholders`] listing every well-formed tag the dialect does not
    /// know, with `line:column` and the nearest known tag.
    pub fn compile(text: &str, dialect: &Dialect) -> Result<Template, TemplateError> {
        Template::compile_with(text, dialect, &CompileOptions::default())
    }

    /// Compiles `text` in `dialect` with `options`.
    ///
    /// # Errors
    /// In [`Mode::Strict`], [`TemplateError::UnknownPlaceholders`] as for [`Template::compile`];
    /// lenient compilation does not fail.
    pub fn compile_with(
        text: &str,
        dialect: &Dialect,
        options: &CompileOptions,
    ) -> Result<Template, TemplateError> {
        let (template, unknown, unlisted) = Template::parse(text, dialect, options);
        if unknown.is_empty() {
            Ok(template)
        } else if unlisted == 0 {
            Err(TemplateError::UnknownPlaceholders(unknown))
        } else {
            Err(TemplateError::ManyUnknownPlaceholders {
                first: unknown,
                more: unlisted,
            })
        }
    }

    /// The template and, in strict mode, the unknown tags (in lenient mode they are warnings).
    fn parse(
        text: &str,
        dialect: &Dialect,
        options: &CompileOptions,
    ) -> (Template, Vec<UnknownPlaceholder>, usize) {
        let (open, close) = (dialect.open(), dialect.close());
        let finder = memmem::Finder::new(open.as_bytes());
        let mut cursor = Cursor {
            text,
            at: 0,
            line: 1,
            column: 1,
        };
        let mut template = Template {
            source: text.to_owned(),
            parts: Vec::new(),
            spans: Vec::new(),
            placeholders: Vec::new(),
            warnings: Vec::new(),
            literal_len: 0,
            options: options.clone(),
        };
        let mut unknown = Vec::new();
        let mut unlisted = 0;
        let mut literal_start = 0;
        let mut search = 0;
        while let Some(found) = finder.find(&text.as_bytes()[search..]) {
            let at = search + found;
            let Some(tag) = scan_tag(text, at, open, close) else {
                search = at + text[at..].chars().next().map_or(1, char::len_utf8);
                continue;
            };
            let name = &text[tag.name.clone()];
            let (line, column) = cursor.advance(at);
            let Some(target) = resolve(dialect, options, name) else {
                let listed = match options.mode {
                    Mode::Strict => &mut unknown,
                    Mode::Lenient => &mut template.warnings,
                };
                // The first ones are listed; the rest only counted, so that a megabyte of
                // `:a` makes a short error, not hundreds of megabytes of one.
                if listed.len() < LISTED_UNKNOWN {
                    listed.push(UnknownPlaceholder {
                        line,
                        column,
                        tag: text[at..tag.end].to_owned(),
                        suggestion: nearest(dialect, options, name).map(|n| dialect.wrap(n)),
                    });
                } else {
                    unlisted += 1;
                }
                // The closing delimiter may open the next tag in dialects like `:И:`.
                search = at + open.len();
                continue;
            };
            template.push_literal(text, literal_start..at);
            let fallback = tag.fallback.clone().map(|r| text[r].to_owned());
            template.parts.push(Part::Slot {
                source: match &target {
                    Target::Variable(v) => Source::Variable(*v),
                    Target::Field(f) => Source::Field(f.as_str().into()),
                },
                fallback: fallback.as_deref().map(Into::into),
                index: template.placeholders.len(),
                consult_values: true,
            });
            template.spans.push(at..tag.end);
            template.placeholders.push(Placeholder {
                tag: text[at..tag.end].to_owned(),
                target,
                fallback,
                line,
                column,
            });
            literal_start = tag.end;
            search = tag.end;
        }
        template.push_literal(text, literal_start..text.len());
        (template, unknown, unlisted)
    }

    fn push_literal(&mut self, text: &str, range: Range<usize>) {
        if range.is_empty() {
            return;
        }
        self.literal_len += range.len();
        self.parts.push(Part::Literal(text[range.clone()].into()));
        self.spans.push(range);
    }

    /// The text the template was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The placeholders, in order.
    pub fn placeholders(&self) -> &[Placeholder] {
        &self.placeholders
    }

    /// Unknown tags kept as text in lenient mode.
    pub fn warnings(&self) -> &[UnknownPlaceholder] {
        &self.warnings
    }

    /// The options it was compiled with.
    pub fn options(&self) -> &CompileOptions {
        &self.options
    }

    /// Appends the rendered text to `out` (which is not cleared) and reports missing values.
    ///
    /// For many recipients of one mailing, [`Template::prepare`] once and render the
    /// [`PreparedTemplate`](crate::PreparedTemplate): it folds the mailing's constants in.
    pub fn render_into(
        &self,
        ctx: &Context<'_>,
        format: OutputFormat,
        out: &mut String,
    ) -> Rendered {
        render_parts(
            &self.parts,
            self.literal_len + 16 * self.placeholders.len(),
            ctx,
            format,
            out,
        )
    }

    /// Renders into a new string.
    pub fn render(&self, ctx: &Context<'_>, format: OutputFormat) -> (String, Rendered) {
        let mut out = String::new();
        let report = self.render_into(ctx, format, &mut out);
        (out, report)
    }

    /// The placeholders that have no value for `ctx` (with or without a fallback), to tell a
    /// user which data a skipped recipient lacks.
    pub fn missing<'t>(
        &'t self,
        ctx: &'t Context<'_>,
    ) -> impl Iterator<Item = &'t Placeholder> + 't {
        self.parts
            .iter()
            .filter_map(|part| match part {
                Part::Slot { source, index, .. } => Some((source, *index)),
                Part::Literal(_) => None,
            })
            .filter(|(source, _)| resolve_value(source, true, ctx).is_none())
            .filter_map(|(_, index)| self.placeholders.get(index))
    }

    pub(crate) fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Writes the template in another dialect (see «Conversion» in the crate docs).
    ///
    /// # Errors
    /// [`TemplateError::Unconvertible`] when text of the template would read differently in
    /// `to` (for example the literal `[ИМЯ]` written into BonusPlus).
    pub fn convert(&self, to: &Dialect) -> Result<String, TemplateError> {
        let mut out = String::with_capacity(self.source.len() + 16);
        let mut starts = Vec::with_capacity(self.parts.len());
        let mut slots = self.placeholders.iter();
        for part in &self.parts {
            starts.push(out.len());
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Slot { .. } => {
                    let Some(placeholder) = slots.next() else {
                        break;
                    };
                    out.push_str(to.open());
                    out.push_str(to.tag_for(&placeholder.target));
                    if let Some(fallback) = &placeholder.fallback {
                        out.push('|');
                        out.push_str(fallback);
                    }
                    out.push_str(to.close());
                }
            }
        }
        let lenient = CompileOptions {
            mode: Mode::Lenient,
            ..self.options.clone()
        };
        let (reread, _, _) = Template::parse(&out, to, &lenient);
        let strict = self.options.mode == Mode::Strict;
        if let Some(offset) = first_difference(self, &reread, strict) {
            // Map the output offset back to the source part it came from.
            let part = starts.partition_point(|&s| s <= offset).saturating_sub(1);
            let mut source_offset = self.spans.get(part).map_or(0, |span| {
                span.start + offset.saturating_sub(starts[part]).min(span.len())
            });
            // A tag is written with other delimiters and names: the same distance into it
            // may fall inside a character of the source (found by fuzzing).
            while !self.source.is_char_boundary(source_offset) {
                source_offset -= 1;
            }
            let (line, column) = line_column(&self.source, source_offset);
            let end = self.spans.get(part).map_or(self.source.len(), |s| s.end);
            let text: String = self.source[source_offset..end].chars().take(40).collect();
            return Err(TemplateError::Unconvertible {
                line,
                column,
                text,
                dialect: to.name().to_owned(),
            });
        }
        Ok(out)
    }
}

/// The render loop shared by [`Template`] and [`crate::PreparedTemplate`].
pub(crate) fn render_parts(
    parts: &[Part],
    expected_len: usize,
    ctx: &Context<'_>,
    format: OutputFormat,
    out: &mut String,
) -> Rendered {
    out.reserve(expected_len);
    let mut report = Rendered::default();
    let numbers_plain = ctx.formatting.is_plain_in(format);
    for part in parts {
        render_part(part, ctx, (format, numbers_plain), out, &mut report);
    }
    report
}

/// Appends one part: a literal as is, a placeholder's value (or its fallback, counted in
/// `report`).
pub(crate) fn render_part(
    part: &Part,
    ctx: &Context<'_>,
    (format, numbers_plain): (OutputFormat, bool),
    out: &mut String,
    report: &mut Rendered,
) {
    match part {
        Part::Literal(text) => out.push_str(text),
        Part::Slot {
            source,
            fallback,
            consult_values,
            ..
        } => match resolve_value(source, *consult_values, ctx) {
            Some(value) => write_value(value, source, ctx, (format, numbers_plain), out),
            None => match fallback {
                Some(text) => {
                    report.fallbacks += 1;
                    out.push_str(text);
                }
                None => report.missing += 1,
            },
        },
    }
}

/// The output offset of the first place where `reread` (the converted text compiled again)
/// differs from `original`, if any.
fn first_difference(original: &Template, reread: &Template, strict: bool) -> Option<usize> {
    if strict && let Some(w) = reread.warnings.first() {
        return Some(offset_of(&reread.source, w.line, w.column));
    }
    let mut a = original.parts.iter().zip(&original.spans);
    let mut b = reread.parts.iter().zip(&reread.spans);
    loop {
        match (a.next(), b.next()) {
            (None, None) => return None,
            (Some((pa, _)), Some((pb, sb))) => {
                let same = match (pa, pb) {
                    (Part::Literal(x), Part::Literal(y)) => x == y,
                    (
                        Part::Slot {
                            source: sa,
                            fallback: fa,
                            ..
                        },
                        Part::Slot {
                            source: sb2,
                            fallback: fb,
                            ..
                        },
                    ) => same_source(sa, sb2) && fa == fb,
                    _ => false,
                };
                if !same {
                    return Some(sb.start + common_prefix(pa, pb));
                }
            }
            (_, Some((_, sb))) => return Some(sb.start),
            (Some(_), None) => return Some(reread.source.len()),
        }
    }
}

fn common_prefix(a: &Part, b: &Part) -> usize {
    match (a, b) {
        (Part::Literal(x), Part::Literal(y)) => x
            .char_indices()
            .zip(y.chars())
            .find(|((_, cx), cy)| cx != cy)
            .map_or(x.len().min(y.len()), |((i, _), _)| i),
        _ => 0,
    }
}

fn same_source(a: &Source, b: &Source) -> bool {
    match (a, b) {
        (Source::Variable(x), Source::Variable(y)) => x == y,
        (Source::Field(x), Source::Field(y)) => x == y,
        _ => false,
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut cursor = Cursor {
        text,
        at: 0,
        line: 1,
        column: 1,
    };
    cursor.advance(offset)
}

fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut current = (1, 1);
    for (i, c) in text.char_indices() {
        if current == (line, column) {
            return i;
        }
        current = if c == '\n' {
            (current.0 + 1, 1)
        } else {
            (current.0, current.1 + 1)
        };
    }
    text.len()
}

fn resolve(dialect: &Dialect, options: &CompileOptions, name: &str) -> Option<Target> {
    dialect.resolve(name).or_else(|| {
        if options.fields.contains(name) {
            return Some(Target::Field(name.to_owned()));
        }
        let lower = name.to_lowercase();
        if options.fields.contains(&lower) {
            return Some(Target::Field(lower));
        }
        options.any_field.then(|| Target::Field(name.to_owned()))
    })
}

fn nearest<'a>(dialect: &'a Dialect, options: &'a CompileOptions, name: &str) -> Option<&'a str> {
    dialect
        .known_tags()
        .chain(options.fields.iter().map(String::as_str))
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// A value found for a placeholder, before formatting.
#[derive(Clone, Copy)]
pub(crate) enum Found<'a> {
    Text(&'a str),
    Money(Decimal),
    Date(NaiveDate),
    FullName,
    Salutation,
    Json(&'a Json),
}

/// Which of [`Formatting::salutation`](crate::Formatting) greets `r`: by gender, the last
/// when it is unknown.
pub(crate) fn salutation_index(r: &rassylka_model::Recipient) -> usize {
    match r.gender {
        Some(rassylka_model::Gender::Male) => 0,
        Some(rassylka_model::Gender::Female) => 1,
        None => 2,
    }
}

/// «Фамилия Имя Отчество» without the blank parts, each escaped; `false` when all are blank
/// (nothing written).
pub(crate) fn write_full_name(
    r: &rassylka_model::Recipient,
    format: OutputFormat,
    out: &mut String,
) -> bool {
    let parts = [&r.last_name, &r.first_name, &r.middle_name];
    let mut first = true;
    for part in parts.into_iter().filter_map(non_blank) {
        if !first {
            out.push(' ');
        }
        first = false;
        format.escape_into(part, out);
    }
    !first
}

pub(crate) fn non_blank(value: &Option<String>) -> Option<&str> {
    value
        .as_deref()
        .map(str::trim_ascii)
        .filter(|s| !s.is_empty())
}

pub(crate) fn resolve_value<'a>(
    source: &'a Source,
    consult_values: bool,
    ctx: &Context<'a>,
) -> Option<Found<'a>> {
    let r = ctx.recipient;
    let (variable, name) = match source {
        Source::Variable(v) => (Some(*v), v.name()),
        Source::Field(name) => (None, &**name),
    };
    let profile = match variable {
        Some(Variable::FirstName) => non_blank(&r.first_name).map(Found::Text),
        Some(Variable::LastName) => non_blank(&r.last_name).map(Found::Text),
        Some(Variable::MiddleName) => non_blank(&r.middle_name).map(Found::Text),
        Some(Variable::FullName) => [&r.last_name, &r.first_name, &r.middle_name]
            .into_iter()
            .any(|p| non_blank(p).is_some())
            .then_some(Found::FullName),
        Some(Variable::Salutation) => Some(Found::Salutation),
        Some(Variable::Balance) => r.balance.map(|b| Found::Money(b.0)),
        Some(Variable::Today) => Some(Found::Date(ctx.today)),
        Some(Variable::UnsubscribeUrl) => ctx.unsubscribe_url.map(Found::Text),
        _ => None,
    };
    if profile.is_some() {
        return profile;
    }
    if consult_values
        && !ctx.values.is_empty()
        && let Some(value) = ctx.values.get(name)
    {
        return match value {
            Value::Text(t) => (!t.trim().is_empty()).then_some(Found::Text(t)),
            Value::Money(m) => Some(Found::Money(*m)),
            Value::Date(d) => Some(Found::Date(*d)),
        };
    }
    if let Some(booking) = ctx.booking {
        let found = match variable {
            Some(Variable::Room) => non_blank(&booking.room).map(Found::Text),
            Some(Variable::BookingId) => non_blank(&booking.id).map(Found::Text),
            Some(Variable::CheckIn) => booking.check_in.map(Found::Date),
            Some(Variable::CheckOut) => booking.check_out.map(Found::Date),
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    match r.fields.get(name)? {
        Json::Null | Json::Array(_) | Json::Object(_) => None,
        Json::String(s) => (!s.trim().is_empty()).then_some(Found::Text(s)),
        json => Some(Found::Json(json)),
    }
}

/// Writes `found` into `out`, escaped for the format; `numbers_plain` is
/// [`Formatting::is_plain_in`] of that format, worked out once per render.
pub(crate) fn write_value(
    found: Found<'_>,
    source: &Source,
    ctx: &Context<'_>,
    (format, numbers_plain): (OutputFormat, bool),
    out: &mut String,
) {
    let kind = match source {
        Source::Variable(v) => v.kind(),
        Source::Field(_) => Kind::Text,
    };
    let formatting = ctx.formatting;
    // Plain text, the common case, needs no buffer.
    if let (Found::Text(text), Kind::Text) = (found, kind) {
        return format.escape_into(text, out);
    }
    // Money and dates whose separators need no escaping go straight into the output.
    match found {
        Found::Money(m) if numbers_plain => return formatting.push_money(m, out),
        Found::Date(d) if numbers_plain => return formatting.push_date(d, out),
        _ => {}
    }
    let mut buf = StackText::new();
    let text = match found {
        Found::Text(text) => match kind {
            Kind::Money => match text.trim().parse::<rassylka_model::Money>() {
                Ok(m) => {
                    formatting.write_money(m.0, &mut buf);
                    buf.as_str()
                }
                Err(_) => text,
            },
            Kind::Date => match parse_iso_date(text) {
                Some(d) => {
                    formatting.write_date(d, &mut buf);
                    buf.as_str()
                }
                None => text,
            },
            Kind::Text => text,
        },
        Found::Money(m) => {
            formatting.write_money(m, &mut buf);
            buf.as_str()
        }
        Found::Date(d) => {
            formatting.write_date(d, &mut buf);
            buf.as_str()
        }
        Found::Json(Json::Number(n)) => {
            let decimal = n
                .as_i64()
                .map(Decimal::from)
                .or_else(|| n.as_f64().and_then(Decimal::from_f64_exactish));
            match (kind, decimal) {
                (Kind::Money, Some(d)) => formatting.write_money(d, &mut buf),
                _ => {
                    let _ = std::fmt::Write::write_fmt(&mut buf, format_args!("{n}"));
                }
            }
            buf.as_str()
        }
        Found::Json(Json::Bool(b)) => {
            if *b {
                "true"
            } else {
                "false"
            }
        }
        Found::Json(_) => "",
        Found::Salutation => &formatting.salutation[salutation_index(ctx.recipient)],
        Found::FullName => {
            write_full_name(ctx.recipient, format, out);
            return;
        }
    };
    format.escape_into(text, out);
}

trait FromF64Exactish: Sized {
    fn from_f64_exactish(value: f64) -> Option<Self>;
}

impl FromF64Exactish for Decimal {
    /// The decimal the JSON author wrote: the shortest text that reads back as `value`.
    fn from_f64_exactish(value: f64) -> Option<Decimal> {
        let mut buf = StackText::new();
        std::fmt::Write::write_fmt(&mut buf, format_args!("{value}")).ok()?;
        buf.as_str().parse().ok()
    }
}
