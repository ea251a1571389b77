//! History and journal as XLSX workbooks (SPEC §7e): a bold, frozen header with an autofilter,
//! times as spreadsheet dates in the mailing's zone, counts and money as numbers, widths that
//! fit, recipient ids linked to the account card. Written in constant memory: rows go to a
//! temporary file as they come from the journal, a page at a time.

mod sheet;

use std::collections::BTreeSet;
use std::path::Path;

use rassylka_model::ChannelKind;

use crate::history::class_name;
use crate::{DispatchError, HistoryQuery, JournalQuery, JournalRow, Rassylka};
use sheet::{Cell, Sheet};

/// How to write a workbook.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// The account card of a recipient, `{id}` standing for the percent-encoded recipient id
    /// (`https://crm.example/clients/{id}`): recipient ids become links to it.
    pub account_url: Option<String>,
}

const HISTORY_COLUMNS: [&str; 14] = [
    "mailing_id",
    "name",
    "kind",
    "class",
    "occurrence",
    "fired_at",
    "state",
    "recipients",
    "sent",
    "failed",
    "skipped",
    "unknown",
    "queued",
    "cost",
];

const JOURNAL_COLUMNS: [&str; 15] = [
    "delivery_key",
    "occurrence",
    "recipient_id",
    "channel",
    "booking",
    "address",
    "status",
    "reason",
    "error_class",
    "attempts",
    "provider_message_id",
    "units",
    "cost",
    "sent_at",
    "updated_at",
];

fn refused(what: impl Into<String>) -> DispatchError {
    DispatchError::Refused(what.into())
}

/// Checks an account URL before anything is written.
fn account_url(options: &ExportOptions) -> Result<Option<&str>, DispatchError> {
    match options.account_url.as_deref() {
        None => Ok(None),
        Some(url) if !url.contains("{id}") => Err(refused(format!(
            "--account-url `{url}` has no {{id}} for the recipient id"
        ))),
        Some(url) if !(url.starts_with("https://") || url.starts_with("http://")) => Err(refused(
            format!("--account-url `{url}` is not an http(s) URL"),
        )),
        Some(url) => Ok(Some(url)),
    }
}

impl Rassylka {
    /// Writes the history rows of `query` to the workbook `path` (sheet `history`); returns
    /// the rows written.
    ///
    /// # Errors
    /// [`DispatchError::Export`] when the file cannot be written; the errors of
    /// [`Rassylka::history`].
    pub async fn export_history(
        &self,
        query: &HistoryQuery,
        path: &Path,
    ) -> Result<u64, DispatchError> {
        let rows = self.history(query).await?;
        let channels: BTreeSet<ChannelKind> = rows
            .iter()
            .flat_map(|r| r.per_channel.keys().copied())
            .collect();
        let mut header: Vec<String> = HISTORY_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
        for channel in &channels {
            for part in ["sent", "failed", "skipped", "cost"] {
                header.push(format!("{channel} {part}"));
            }
        }
        let mut sheet = Sheet::new("history", &header, path)?;
        for row in &rows {
            let mut cells = vec![
                Cell::Text(row.mailing_id.clone()),
                Cell::Text(row.name.clone()),
                Cell::Text(row.kind.as_str().into()),
                Cell::Text(class_name(row.class).into()),
                Cell::Text(row.occurrence.clone()),
                Cell::Time(row.fired_at.naive_local()),
                Cell::Text(row.state.as_str().into()),
                Cell::Count(row.recipients),
                Cell::Count(row.sent),
                Cell::Count(row.failed),
                Cell::Count(row.skipped),
                Cell::Count(row.unknown),
                Cell::Count(row.queued),
                Cell::Money(row.cost),
            ];
            for channel in &channels {
                let totals = row.per_channel.get(channel).cloned().unwrap_or_default();
                cells.extend([
                    Cell::Count(totals.sent),
                    Cell::Count(totals.failed),
                    Cell::Count(totals.skipped),
                    Cell::Money(totals.cost),
                ]);
            }
            sheet.row(&cells)?;
        }
        sheet.save()
    }

    /// Writes the journal rows of `query` to the workbook `path` (sheet `journal`), page by
    /// page as they are read; returns the rows written.
    ///
    /// # Errors
    /// [`DispatchError::Refused`] for an account URL without `{id}`; [`DispatchError::Export`]
    /// when the file cannot be written; the errors of [`Rassylka::journal_rows`].
    pub async fn export_journal(
        &self,
        query: &JournalQuery,
        path: &Path,
        options: &ExportOptions,
    ) -> Result<u64, DispatchError> {
        let link = account_url(options)?.map(str::to_owned);
        let mut pages = self.journal_rows(query).await?;
        // The workbook is written on a thread of its own while the journal is read: the two
        // take about the same time, and a page at a time stays in between.
        let (send, receive) = tokio::sync::mpsc::channel::<Feed>(2);
        let path_buf = path.to_path_buf();
        let writer =
            tokio::task::spawn_blocking(move || write_journal(&path_buf, link.as_deref(), receive));
        let read = async {
            while let Some(page) = pages.next_page().await? {
                if send.send(Feed::Page(page)).await.is_err() {
                    // The writer stopped; its error says why.
                    return Ok(());
                }
            }
            let _ = send.send(Feed::End).await;
            Ok::<(), DispatchError>(())
        }
        .await;
        drop(send);
        let written = writer.await.map_err(|e| DispatchError::Export {
            path: path.display().to_string(),
            source: Box::new(e),
        })?;
        read?;
        written
    }
}

/// What the journal reader hands the workbook writer.
enum Feed {
    Page(Vec<JournalRow>),
    /// Every row was read: the workbook may be saved.
    End,
}

/// Writes journal rows as they come; saves only after [`Feed::End`], so a read that failed
/// half-way leaves no workbook that looks whole.
fn write_journal(
    path: &Path,
    link: Option<&str>,
    mut feed: tokio::sync::mpsc::Receiver<Feed>,
) -> Result<u64, DispatchError> {
    let header: Vec<String> = JOURNAL_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
    let mut sheet = Sheet::new("journal", &header, path)?;
    let text = |v: Option<String>| v.map_or(Cell::Empty, Cell::Text);
    let mut ended = false;
    while let Some(next) = feed.blocking_recv() {
        let page = match next {
            Feed::Page(page) => page,
            Feed::End => {
                ended = true;
                break;
            }
        };
        for row in page {
            let recipient = match link {
                Some(url) => Cell::Link {
                    url: url.replace("{id}", &sheet::percent_encoded(&row.recipient_id)),
                    text: row.recipient_id,
                },
                None => Cell::Text(row.recipient_id),
            };
            sheet.row(&[
                Cell::Text(row.delivery_key),
                Cell::Text(row.occurrence),
                recipient,
                row.channel
                    .map_or(Cell::Empty, |c| Cell::Text(c.as_str().into())),
                text(row.booking),
                text(row.address),
                Cell::Text(row.status.as_str().into()),
                text(row.reason),
                text(row.error_class),
                Cell::Count(u64::from(row.attempts)),
                text(row.provider_message_id),
                Cell::Count(u64::from(row.units)),
                Cell::Money(row.cost),
                row.sent_at
                    .map_or(Cell::Empty, |t| Cell::Time(t.naive_local())),
                Cell::Time(row.updated_at.naive_local()),
            ])?;
        }
    }
    if !ended {
        return Err(DispatchError::Export {
            path: path.display().to_string(),
            source: "the journal was not read to its end".into(),
        });
    }
    sheet.save()
}
