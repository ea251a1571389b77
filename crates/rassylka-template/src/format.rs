use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use rust_decimal::{Decimal, RoundingStrategy};

use crate::TemplateError;

/// Where a rendered text goes, which decides how substituted values are escaped. The template's
/// own text is never escaped: its author wrote the markup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OutputFormat {
    /// SMS, VK, plain e-mail: no escaping.
    #[default]
    Plain,
    /// HTML e-mail: `& < > " '` become `&amp; &lt; &gt; &quot; &#39;`.
    Html,
    /// Telegram `parse_mode=HTML`: `& < >`.
    TelegramHtml,
    /// Telegram `parse_mode=MarkdownV2`: `\` before each of ``_*[]()~`>#+-=|{}.!`` and `\`.
    MarkdownV2,
}

impl FromStr for OutputFormat {
    type Err = TemplateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "plain" => Ok(OutputFormat::Plain),
            "html" => Ok(OutputFormat::Html),
            "telegram-html" => Ok(OutputFormat::TelegramHtml),
            "markdown-v2" => Ok(OutputFormat::MarkdownV2),
            other => Err(TemplateError::UnknownFormat(other.to_owned())),
        }
    }
}

const fn table(special: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < special.len() {
        t[special[i] as usize] = true;
        i += 1;
    }
    t
}

static HTML: [bool; 256] = table(b"&<>\"'");
static TELEGRAM_HTML: [bool; 256] = table(b"&<>");
static MARKDOWN_V2: [bool; 256] = table(b"_*[]()~`>#+-=|{}.!\\");

impl OutputFormat {
    /// Whether `c` is escaped in this format.
    pub(crate) fn is_special(self, c: char) -> bool {
        let special = match self {
            OutputFormat::Plain => return false,
            OutputFormat::Html => &HTML,
            OutputFormat::TelegramHtml => &TELEGRAM_HTML,
            OutputFormat::MarkdownV2 => &MARKDOWN_V2,
        };
        u8::try_from(c).is_ok_and(|b| special[usize::from(b)])
    }

    /// `value` escaped for this format, as a new string.
    pub fn escape(self, value: &str) -> String {
        let mut out = String::with_capacity(value.len() + 8);
        self.escape_into(value, &mut out);
        out
    }

    /// Appends `value` to `out`, escaped for this format.
    pub fn escape_into(self, value: &str, out: &mut String) {
        match self {
            OutputFormat::Plain => out.push_str(value),
            OutputFormat::Html => escape_html(value, true, out),
            OutputFormat::TelegramHtml => escape_html(value, false, out),
            OutputFormat::MarkdownV2 => {
                let mut from = 0;
                for (i, b) in value.bytes().enumerate() {
                    if MARKDOWN_V2[usize::from(b)] {
                        // Specials are ASCII, so `i` is a char boundary.
                        out.push_str(&value[from..i]);
                        out.push('\\');
                        out.push(char::from(b));
                        from = i + 1;
                    }
                }
                out.push_str(&value[from..]);
            }
        }
    }
}

/// HTML escaping, quotes too when `quotes`: runs of ordinary text are copied whole. A plain
/// `match` per byte, which the compiler turns into a range test and a bit mask.
#[inline(always)]
fn escape_html(value: &str, quotes: bool, out: &mut String) {
    let mut from = 0;
    for (i, b) in value.bytes().enumerate() {
        let entity = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' if quotes => "&quot;",
            b'\'' if quotes => "&#39;",
            _ => continue,
        };
        out.push_str(&value[from..i]);
        out.push_str(entity);
        from = i + 1;
    }
    out.push_str(&value[from..]);
}

/// How dates print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateStyle {
    /// `06.12.2026` with the given separator (the default is `.`).
    DayMonthYear(char),
    /// `2026-12-06`.
    Iso,
}

/// How money and bonus amounts print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoneyStyle {
    /// Between groups of thousands: a plain space by default (SMS-safe, unlike U+00A0).
    pub group_separator: Option<char>,
    /// Before the fraction: `,` by default.
    pub decimal_separator: char,
    /// Print whole amounts without the fraction (`1 500` rather than `1 500,00`).
    pub omit_zero_fraction: bool,
}

/// Formatting choices for typed values; [`Formatting::default`] is the Russian convention of the
/// specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Formatting {
    /// Dates.
    pub date: DateStyle,
    /// Money and bonuses.
    pub money: MoneyStyle,
    /// Salutation for a man, a woman, and an unknown gender.
    pub salutation: [String; 3],
}

impl Default for Formatting {
    fn default() -> Self {
        Formatting {
            date: DateStyle::DayMonthYear('.'),
            money: MoneyStyle {
                group_separator: Some(' '),
                decimal_separator: ',',
                omit_zero_fraction: true,
            },
            salutation: [
                "Уважаемый".into(),
                "Уважаемая".into(),
                "Уважаемый(ая)".into(),
            ],
        }
    }
}

/// "00" to "99": numbers are written two digits at a time.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// The two digits of `n` (below 100).
fn pair(n: u64) -> [u8; 2] {
    let at = n as usize * 2;
    [PAIRS[at], PAIRS[at + 1]]
}

/// A fixed buffer for one formatted number or date, so rendering needs no heap.
pub(crate) struct StackText {
    buf: [u8; 64],
    len: usize,
}

impl StackText {
    pub(crate) fn new() -> Self {
        StackText {
            buf: [0; 64],
            len: 0,
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only whole `&str`s and ASCII bytes are ever copied in, so the bytes are UTF-8.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }

    fn push_char(&mut self, c: char) {
        let mut utf8 = [0; 4];
        let _ = fmt::Write::write_str(self, c.encode_utf8(&mut utf8));
    }

    /// Appends `value` with at least `width` digits (zero-padded); nothing if it would not
    /// fit.
    fn push_digits(&mut self, value: u64, width: usize) {
        let mut digits = 1;
        let mut rest = value / 10;
        while rest > 0 {
            digits += 1;
            rest /= 10;
        }
        let end = self.len + digits.max(width);
        if end > self.buf.len() {
            return;
        }
        let (mut at, mut rest) = (end, value);
        while rest >= 100 {
            at -= 2;
            self.buf[at..at + 2].copy_from_slice(&pair(rest % 100));
            rest /= 100;
        }
        if rest >= 10 {
            at -= 2;
            self.buf[at..at + 2].copy_from_slice(&pair(rest));
        } else {
            at -= 1;
            self.buf[at] = b'0' + rest as u8;
        }
        self.buf[self.len..at].fill(b'0');
        self.len = end;
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl Formatting {
    /// Whether dates and money printed with this formatting can never need escaping in
    /// `format`: digits always; the separators (and a minus) checked.
    pub(crate) fn is_plain_in(&self, format: OutputFormat) -> bool {
        let date_separator = match self.date {
            DateStyle::DayMonthYear(sep) => sep,
            DateStyle::Iso => '-',
        };
        let separators = [
            date_separator,
            self.money.group_separator.unwrap_or(' '),
            self.money.decimal_separator,
            '-',
        ];
        separators.iter().all(|c| !format.is_special(*c))
    }

    /// Appends `date` to `out` (for a format where it needs no escaping): `DD.MM.YYYY` with an
    /// ASCII separator straight from digit pairs, anything else through [`StackText`].
    pub(crate) fn push_date(&self, date: NaiveDate, out: &mut String) {
        let year = date.year();
        if let (DateStyle::DayMonthYear(sep), 1000..=9999) = (self.date, year)
            && sep.is_ascii()
        {
            let (d, m) = (pair(date.day().into()), pair(date.month().into()));
            let year = u64::from(year.unsigned_abs());
            let (c, y) = (pair(year / 100), pair(year % 100));
            let sep = sep as u8;
            let text = [d[0], d[1], sep, m[0], m[1], sep, c[0], c[1], y[0], y[1]];
            // Digits and an ASCII separator.
            out.push_str(std::str::from_utf8(&text).unwrap_or_default());
            return;
        }
        let mut text = StackText::new();
        self.write_date(date, &mut text);
        out.push_str(text.as_str());
    }

    pub(crate) fn write_date(&self, date: NaiveDate, out: &mut StackText) {
        let (y, m, d) = (date.year(), u64::from(date.month()), u64::from(date.day()));
        // Years before 1 CE do not occur in mailings; print them plainly rather than padded.
        let year = u64::from(y.unsigned_abs());
        if y < 0 {
            out.push_char('-');
        }
        match self.date {
            DateStyle::DayMonthYear(sep) => {
                out.push_digits(d, 2);
                out.push_char(sep);
                out.push_digits(m, 2);
                out.push_char(sep);
                out.push_digits(year, 4);
            }
            DateStyle::Iso => {
                out.push_digits(year, 4);
                out.push_char('-');
                out.push_digits(m, 2);
                out.push_char('-');
                out.push_digits(d, 2);
            }
        }
    }

    /// Appends `value` to `out` (for a format where it needs no escaping): with ASCII
    /// separators written backwards into a small array from digit pairs, otherwise through
    /// [`StackText`].
    pub(crate) fn push_money(&self, value: Decimal, out: &mut String) {
        let money = self.money;
        let group = money.group_separator.unwrap_or(' ');
        let (Some(cents), true, true) = (
            cents_of(value),
            group.is_ascii(),
            money.decimal_separator.is_ascii(),
        ) else {
            let mut text = StackText::new();
            self.write_money(value, &mut text);
            return out.push_str(text.as_str());
        };
        let (mut whole, fraction) = (cents / 100, cents % 100);
        let mut text = [0_u8; 40];
        let mut at = text.len();
        let mut put = |bytes: &[u8]| {
            at -= bytes.len();
            text[at..at + bytes.len()].copy_from_slice(bytes);
        };
        if fraction != 0 || !money.omit_zero_fraction {
            put(&pair(fraction));
            put(&[money.decimal_separator as u8]);
        }
        while money.group_separator.is_some() && whole >= 1000 {
            let three = whole % 1000;
            put(&pair(three % 100));
            put(&[group as u8, b'0' + (three / 100) as u8]);
            whole /= 1000;
        }
        loop {
            if whole >= 10 {
                put(&pair(whole % 100));
                whole /= 100;
                if whole == 0 {
                    break;
                }
            } else {
                put(&[b'0' + whole as u8]);
                break;
            }
        }
        if value.is_sign_negative() && cents != 0 {
            put(b"-");
        }
        // Digits and ASCII separators.
        out.push_str(std::str::from_utf8(&text[at..]).unwrap_or_default());
    }

    pub(crate) fn write_money(&self, value: Decimal, out: &mut StackText) {
        let Some(cents) = cents_of(value) else {
            // Beyond 10^17 a plain decimal is still right, if ungrouped.
            let _ = fmt::Write::write_fmt(out, format_args!("{}", value.round_dp(2)));
            return;
        };
        let (whole, fraction) = (cents / 100, cents % 100);
        if value.is_sign_negative() && cents != 0 {
            out.push_char('-');
        }
        match self.money.group_separator {
            Some(sep) if whole >= 1000 => {
                let mut groups = [0u64; 7];
                let mut n = 0;
                let mut rest = whole;
                while rest > 0 {
                    groups[n] = rest % 1000;
                    rest /= 1000;
                    n += 1;
                }
                out.push_digits(groups[n - 1], 1);
                for group in groups[..n - 1].iter().rev() {
                    out.push_char(sep);
                    out.push_digits(*group, 3);
                }
            }
            _ => out.push_digits(whole, 1),
        }
        if fraction != 0 || !self.money.omit_zero_fraction {
            out.push_char(self.money.decimal_separator);
            out.push_digits(fraction, 2);
        }
    }
}

/// The absolute amount in whole cents (rounded half away from zero), when it fits a `u64`.
fn cents_of(value: Decimal) -> Option<u64> {
    let (mantissa, scale) = (value.mantissa().unsigned_abs(), value.scale());
    // Amounts with at most two decimals need no rounding: the common case.
    let cents = if scale <= 2 {
        mantissa.checked_mul(10u128.pow(2 - scale))
    } else {
        let rounded = value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
        rounded
            .mantissa()
            .unsigned_abs()
            .checked_mul(10u128.pow(2 - rounded.scale().min(2)))
    };
    cents.and_then(|c| u64::try_from(c).ok())
}

/// Reads `YYYY-MM-DD` (optionally followed by a time, which is ignored) without allocating.
pub(crate) fn parse_iso_date(text: &str) -> Option<NaiveDate> {
    let b = text.trim().as_bytes();
    if b.len() < 10
        || b[4] != b'-'
        || b[7] != b'-'
        || (b.len() > 10 && b[10] != b'T' && b[10] != b' ')
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    use super::{DateStyle, Formatting, MoneyStyle, OutputFormat, StackText};

    proptest! {
        #[test]
        fn money_and_dates_written_directly_equal_the_general_writer(
            units in -10_i64.pow(18)..10_i64.pow(18),
            scale in 0u32..5,
            group in prop::sample::select(vec![None, Some(' '), Some('\u{a0}'), Some('.')]),
            decimal in prop::sample::select(vec![',', '.', '٫']),
            omit_zero_fraction in any::<bool>(),
            days in -800_000_i64..800_000,
            separator in prop::sample::select(vec!['.', '/', '·']),
        ) {
            let formatting = Formatting {
                date: DateStyle::DayMonthYear(separator),
                money: MoneyStyle { group_separator: group, decimal_separator: decimal, omit_zero_fraction },
                ..Formatting::default()
            };
            let value = Decimal::new(units, scale);
            let mut general = StackText::new();
            formatting.write_money(value, &mut general);
            let mut direct = String::new();
            formatting.push_money(value, &mut direct);
            prop_assert_eq!(direct, general.as_str());
            let date = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::TimeDelta::days(days);
            let mut general = StackText::new();
            formatting.write_date(date, &mut general);
            let mut direct = String::new();
            formatting.push_date(date, &mut direct);
            prop_assert_eq!(direct, general.as_str());
        }
    }

    /// Escaping one character at a time, as the formats' docs define it.
    fn escaped_by_hand(format: OutputFormat, value: &str) -> String {
        value
            .chars()
            .map(|c| match (format, c) {
                (OutputFormat::Plain, c) => c.to_string(),
                (OutputFormat::MarkdownV2, c) if "_*[]()~`>#+-=|{}.!\\".contains(c) => {
                    format!("\\{c}")
                }
                (OutputFormat::Html | OutputFormat::TelegramHtml, '&') => "&amp;".into(),
                (OutputFormat::Html | OutputFormat::TelegramHtml, '<') => "&lt;".into(),
                (OutputFormat::Html | OutputFormat::TelegramHtml, '>') => "&gt;".into(),
                (OutputFormat::Html, '"') => "&quot;".into(),
                (OutputFormat::Html, '\'') => "&#39;".into(),
                (_, c) => c.to_string(),
            })
            .collect()
    }

    proptest! {
        #[test]
        fn escaping_equals_escaping_each_character(
            value in "([а-яА-Я]{0,12}|[a-z0-9 .-]{0,9}|[&<>\"'_*\\\\]){0,6}",
            format in prop::sample::select(vec![
                OutputFormat::Plain, OutputFormat::Html, OutputFormat::TelegramHtml,
                OutputFormat::MarkdownV2,
            ]),
        ) {
            let mut out = String::new();
            format.escape_into(&value, &mut out);
            prop_assert_eq!(out, escaped_by_hand(format, &value));
        }
    }

    #[test]
    fn digits_are_written_whole_and_padded() {
        for (value, width, text) in [
            (0, 1, "0"),
            (0, 2, "00"),
            (7, 2, "07"),
            (10, 1, "10"),
            (99, 4, "0099"),
            (100, 1, "100"),
            (2026, 4, "2026"),
            (12_345, 2, "12345"),
            (u64::MAX, 1, "18446744073709551615"),
        ] {
            let mut out = StackText::new();
            out.push_digits(value, width);
            assert_eq!(out.as_str(), text, "{value} {width}");
        }
    }
}
