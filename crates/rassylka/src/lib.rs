//! Mailings for loyalty, CRM and hotel systems: the [`Dispatcher`] that previews, prices,
//! queues, sends, retries and journals them, over the workspace's segments, schedules,
//! templates and channels (re-exported here, so an application depends on `rassylka` alone).
//!
//! ```
//! use std::sync::Arc;
//! use rassylka::{Dispatcher, Mailing, MemorySource, Rassylka, SqliteStore};
//! use rassylka::channels::MemoryChannel;
//! use rassylka::model::{ChannelKind, Recipient};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! runtime.block_on(async {
//!     let anna: Recipient = serde_json::from_str(
//!         r#"{"id": "c-1", "first_name": "Анна", "contacts": {"telegram_chat_id": 42}}"#)?;
//!     let telegram = Arc::new(MemoryChannel::new(ChannelKind::Telegram));
//!     let dispatcher = Rassylka::builder()
//!         .recipients(MemorySource::new(vec![anna]))
//!         .channel(telegram.clone())
//!         .store(SqliteStore::temporary().await?)
//!         .build()?;
//!     let mailing = Mailing::from_json(r#"{"id": "m-1", "class": "service", "channels": ["telegram"],
//!         "content": {"default": {"text": "{first_name}, ваш заказ готов"}}}"#)?;
//!     dispatcher.save(&mailing).await?;
//!     assert_eq!(dispatcher.preview(&mailing, None).await?.per_channel[&ChannelKind::Telegram], 1);
//!     dispatcher.confirm("m-1").await?;
//!     let report = dispatcher.run_due().await?;
//!     assert_eq!(report.counts.sent, 1);
//!     assert_eq!(telegram.sent()[0].message.text, "Анна, ваш заказ готов");
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! # Ok(())
//! # }
//! ```
//!
//! # How a run works
//! An occurrence fires when its schedule says (misfires by the schedule's policy; «send now»
//! at confirmation; a periodic mailing with date rules catches up every missed run date after
//! a downtime, each evaluated with its own «today», so nobody's reminder is skipped). Its audience is then **frozen**: the segment is evaluated with the
//! occurrence's date, and every delivery — one per recipient, channel and matched booking —
//! is rendered and written to the journal (queued, standby for lower priorities, or skipped with
//! the reason) before anything is sent. Sending claims `concurrency` queued deliveries at a
//! time (marking them `sending`), sends them through the channels, and records each result.
//!
//! Errors act by class: transient → retried with exponential backoff and jitter (backon),
//! honouring retry-after; recipient gone → failed, the contact remembered as unreachable and
//! the next priority channel queued; rejected → failed, next channel queued; quota → the
//! mailing pauses until the limit renews (the retry-after, else local midnight); configuration
//! → the mailing stops with the reason.
//!
//! **Crash safety.** Occurrence keys are unique in the journal, and an occurrence's audience
//! is frozen in one transaction, with a delivery key written twice (a recipient listed twice)
//! journaled as skipped. After a kill the next run finishes the occurrence: deliveries left `sending` become `unknown` (at most
//! `concurrency` of them, never resent unless [`Rassylka::resend_unknown`] is asked), except on
//! channels that take the delivery key as an idempotency key (VK, the file outbox), which are
//! resent safely. Bonuses are accrued once per (occurrence, recipient) through the
//! [`BonusLedger`], keyed so that a retried accrual is the same one.
//!
//! **Consent and results.** Advertising e-mail carries a signed unsubscribe link
//! ([`Rassylka::unsubscribe_link`], `List-Unsubscribe` with one-click, a footer); unsubscribes
//! ([`Rassylka::unsubscribe`]) and a frequency cap suppress advertising from the next freeze, and
//! an unsubscribe stops what is still queued. [`Rassylka::attribution`] reads who was reached and
//! who was held out of a mailing, [`Attribution`] folds in purchases, and its report gives
//! conversion, revenue, ROI and the lift over the holdout group (SPEC §7f).
//!
//! **Several workers.** Every dispatcher is a worker with its own id; its claims are leases
//! on the journal's wall clock, renewed while it sends. Rows whose lease ran out (their worker
//! died or stalled) are settled by any other worker as after a crash; a late result of a
//! worker that lost its lease is refused and counted in [`RunReport::lease_lost`]. Several
//! processes may share one SQLite file or one PostgreSQL database.
//!
//! # Features
//! - `sqlite` (default): [`SqliteStore`], the embedded journal (`rassylka-sqlite`).
//! - `xlsx` (default): [`Rassylka::export_history`] and [`Rassylka::export_journal`] write
//!   XLSX workbooks (rust_xlsxwriter, constant memory).
//! - `charts` (default): [`AttributionReport::to_html`], the report as a self-contained page with
//!   an SVG chart (plotters).
//! - `postgres`: `PgStore`, the journal on PostgreSQL for several workers on several machines
//!   (`rassylka-postgres`). [`store::connect`] opens whichever a `--db` location names.
//!
//! The channel adapters are features of [`channels`].

mod attribution;
mod bonus;
mod clock;
mod consent;
mod dispatcher;
mod error;
#[cfg(feature = "xlsx")]
mod export;
mod firing;
mod freeze;
mod history;
mod ledger;
mod lifecycle;
mod mailing;
mod notice;
mod plan;
mod recovery;
mod send;
mod source;
pub mod store;

pub use attribution::{
    Attribution, AttributionReport, AttributionScope, DailyConversion, Holdout, HoldoutResult,
    PromotionUse, Z95, newcombe_difference, purchases_problem, read_purchases, wilson,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use consent::{
    TokenClaims, UnsubscribeKeys, UnsubscribePage, UnsubscribeSource, Unsubscribed, mailto_token,
    mask_address,
};
pub use dispatcher::{
    ChannelCost, Config, CostReport, Dispatcher, Preview, Progress, ProgressHook, Rassylka,
    RassylkaBuilder, RunReport,
};
pub use error::{DispatchError, Problem};
#[cfg(feature = "xlsx")]
pub use export::ExportOptions;
pub use history::{
    ChannelTotals, HistoryQuery, HistoryRow, JournalPages, JournalQuery, JournalRow,
};
pub use ledger::{Accrual, BonusLedger, MemoryLedger};
pub use mailing::{Bonus, ChannelContent, DeliveryMode, Mailing, MailingKind};
pub use notice::{EventKind, NoticeEvent, NoticeResult, Notices, Order, Permission, Sender};
pub use source::{JsonlFile, MemorySource, RecipientSource, SourceItem};
#[cfg(feature = "postgres")]
pub use store::PgStore;
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
pub use store::Store;

pub use rassylka_channels as channels;
pub use rassylka_model as model;
pub use rassylka_schedule as schedule;
pub use rassylka_segment as segment;
pub use rassylka_template as template;
