//! One worksheet in constant memory: typed cells, and column widths that fit what was written.

use std::path::Path;

use chrono::NaiveDateTime;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use rust_xlsxwriter::{Color, Format, FormatUnderline, Formula, Workbook, XlsxError};

use crate::DispatchError;

/// Everything but RFC 3986's unreserved characters is encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `text` percent-encoded as one URL path segment or query value.
pub(crate) fn percent_encoded(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

/// A spreadsheet cell by what it holds.
pub(crate) enum Cell {
    Empty,
    Text(String),
    /// A count, as a number.
    Count(u64),
    /// Money, as a number formatted with two decimals.
    Money(Decimal),
    /// A local time, as a spreadsheet date.
    Time(NaiveDateTime),
    /// Text that opens `url`.
    Link {
        url: String,
        text: String,
    },
}

/// Excel takes at most 255 characters in a `HYPERLINK` target.
const LONGEST_LINK: usize = 255;
/// Columns grow to fit their text, up to this many characters.
const WIDEST: usize = 60;

pub(crate) struct Sheet<'p> {
    workbook: Workbook,
    path: &'p Path,
    widths: Vec<usize>,
    rows: u32,
    money: Format,
    time: Format,
    link: Format,
}

fn failed(path: &Path, e: XlsxError) -> DispatchError {
    DispatchError::Export {
        path: path.display().to_string(),
        source: Box::new(e),
    }
}

impl<'p> Sheet<'p> {
    /// A workbook with one sheet `name` and a bold header of `columns`.
    pub(crate) fn new(
        name: &str,
        columns: &[String],
        path: &'p Path,
    ) -> Result<Sheet<'p>, DispatchError> {
        let mut workbook = Workbook::new();
        let sheet = workbook.add_worksheet_with_constant_memory();
        sheet.set_name(name).map_err(|e| failed(path, e))?;
        let bold = Format::new().set_bold();
        for (col, title) in columns.iter().enumerate() {
            sheet
                .write_string_with_format(0, column(col), title, &bold)
                .map_err(|e| failed(path, e))?;
        }
        sheet.set_freeze_panes(1, 0).map_err(|e| failed(path, e))?;
        Ok(Sheet {
            workbook,
            path,
            widths: columns.iter().map(|c| c.chars().count() + 2).collect(),
            rows: 0,
            money: Format::new().set_num_format("#,##0.00"),
            time: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            link: Format::new()
                .set_font_color(Color::Blue)
                .set_underline(FormatUnderline::Single),
        })
    }

    /// Writes the next row.
    pub(crate) fn row(&mut self, cells: &[Cell]) -> Result<(), DispatchError> {
        self.rows += 1;
        let row = self.rows;
        let path = self.path;
        let sheet = self
            .workbook
            .worksheet_from_index(0)
            .map_err(|e| failed(path, e))?;
        for (col, cell) in cells.iter().enumerate() {
            let c = column(col);
            let width = match cell {
                Cell::Empty => 0,
                Cell::Text(text) => {
                    sheet
                        .write_string(row, c, text)
                        .map_err(|e| failed(path, e))?;
                    text.chars().count()
                }
                Cell::Count(n) => {
                    #[allow(clippy::cast_precision_loss)] // counts stay far below 2^53
                    sheet
                        .write_number(row, c, *n as f64)
                        .map_err(|e| failed(path, e))?;
                    n.to_string().len()
                }
                Cell::Money(amount) => {
                    let amount = amount.round_dp(2);
                    sheet
                        .write_number_with_format(
                            row,
                            c,
                            amount.to_f64().unwrap_or_default(),
                            &self.money,
                        )
                        .map_err(|e| failed(path, e))?;
                    // Digits, the separators and two decimals.
                    let digits = amount.trunc().abs().to_string().len();
                    digits + digits / 3 + 3
                }
                Cell::Time(at) => {
                    sheet
                        .write_datetime_with_format(row, c, at, &self.time)
                        .map_err(|e| failed(path, e))?;
                    19
                }
                Cell::Link { url, text } if url.len() <= LONGEST_LINK => {
                    let formula = Formula::new(format!(
                        "HYPERLINK(\"{}\",\"{}\")",
                        url.replace('"', "\"\""),
                        text.replace('"', "\"\"")
                    ))
                    .set_result(text);
                    sheet
                        .write_formula_with_format(row, c, formula, &self.link)
                        .map_err(|e| failed(path, e))?;
                    text.chars().count()
                }
                Cell::Link { text, .. } => {
                    sheet
                        .write_string(row, c, text)
                        .map_err(|e| failed(path, e))?;
                    text.chars().count()
                }
            };
            if let Some(w) = self.widths.get_mut(col) {
                *w = (*w).max((width + 2).min(WIDEST));
            }
        }
        Ok(())
    }

    /// Sets widths and the autofilter over what was written, and saves; returns the rows.
    pub(crate) fn save(mut self) -> Result<u64, DispatchError> {
        let path = self.path;
        let sheet = self
            .workbook
            .worksheet_from_index(0)
            .map_err(|e| failed(path, e))?;
        for (col, width) in self.widths.iter().enumerate() {
            #[allow(clippy::cast_precision_loss)] // at most WIDEST
            sheet
                .set_column_width(column(col), *width as f64)
                .map_err(|e| failed(path, e))?;
        }
        let last = column(self.widths.len().saturating_sub(1));
        sheet
            .autofilter(0, 0, self.rows, last)
            .map_err(|e| failed(path, e))?;
        self.workbook.save(path).map_err(|e| failed(path, e))?;
        Ok(u64::from(self.rows))
    }
}

fn column(index: usize) -> u16 {
    u16::try_from(index).unwrap_or(u16::MAX)
}
