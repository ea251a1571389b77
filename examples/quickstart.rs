//! The whole job on the embedded default, no arguments, no setup: the bundled sample mailing
//! for the bundled sample recipients — preview, cost, run with a progress bar into a file
//! outbox and an SQLite journal under `target/quickstart/`, then a summary, the history row
//! of the run and `history.xlsx` beside the journal.
//!
//! The clock is set to the mailing's start (22 Nov 2026, 10:00 Moscow) so every run shows the
//! same thing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use rassylka::channels::{Channel, FileOutbox};
use rassylka::model::ChannelKind;
use rassylka::store::DeliveryStatus;
use rassylka::store::prelude::*;
use rassylka::{
    Dispatcher, Mailing, ManualClock, MemoryLedger, MemorySource, Progress, Rassylka, SqliteStore,
};
use rassylka_workspace::{CliError, sample_recipients};
use rust_decimal::Decimal;

const MAILING: &str = include_str!("data/mailing.json");

async fn run() -> Result<(), CliError> {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("quickstart");
    // A fresh journal and outbox each time: the quickstart shows one whole mailing.
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder)
        .map_err(|e| CliError::failed(format!("{}: {e}", folder.display())))?;
    let mailing = Mailing::from_json(MAILING).map_err(CliError::bad)?;
    let recipients = sample_recipients().map_err(CliError::bad)?;
    let now: DateTime<Utc> = "2026-11-22T07:00:00Z".parse().map_err(CliError::failed)?;

    let store = Arc::new(
        SqliteStore::open(folder.join("journal.db"))
            .await
            .map_err(CliError::failed)?,
    );
    let ledger = Arc::new(MemoryLedger::default());
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("  sending {bar:30} {pos}/{len} deliveries")
            .map_err(CliError::failed)?,
    );
    let hook_bar = bar.clone();
    let mut builder = Rassylka::builder()
        .recipients(MemorySource::new(recipients.clone()))
        .store_shared(store.clone())
        .ledger(ledger.clone())
        .clock(Arc::new(ManualClock::starting_at(now)))
        .on_progress(Arc::new(move |p: &Progress| {
            hook_bar.set_length(p.total);
            hook_bar.set_position(p.done);
        }));
    let tariffs: BTreeMap<ChannelKind, Decimal> = [
        (ChannelKind::Sms, "4.50"),
        (ChannelKind::Email, "0.05"),
        (ChannelKind::Push, "0.10"),
        (ChannelKind::Telegram, "0"),
        (ChannelKind::Vk, "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.parse().unwrap_or_default()))
    .collect();
    for (channel, price) in &tariffs {
        builder = builder.tariff(*channel, *price);
    }
    let outbox_dir = folder.join("outbox");
    for kind in &mailing.channels {
        // The sender a real SMTP setting would give, so the .eml is the message it would send.
        let outbox = FileOutbox::open(&outbox_dir, *kind)
            .map_err(CliError::failed)?
            .with_from("Бонусы к зиме <news@shop.example>");
        let outbox: Arc<dyn Channel> = Arc::new(outbox);
        builder = builder.channel(outbox);
    }
    let dispatcher = builder.build().map_err(CliError::failed)?;

    println!(
        "«{}»: {} recipients, channels {:?} in {} mode\n",
        mailing.name,
        recipients.len(),
        mailing.channels,
        mailing.mode.as_str()
    );
    dispatcher.save(&mailing).await.map_err(CliError::failed)?;
    let preview = dispatcher
        .preview(&mailing, None)
        .await
        .map_err(CliError::failed)?;
    println!("preview: {} matched the audience", preview.matched);
    for (channel, n) in &preview.per_channel {
        println!("  {:<8} {n}", channel.as_str());
    }
    let cost = dispatcher
        .cost(&mailing, None)
        .await
        .map_err(CliError::failed)?;
    println!("cost:");
    for (channel, c) in &cost.per_channel {
        println!(
            "  {:<8} {} messages, {} units, {} ₽",
            channel.as_str(),
            c.messages,
            c.units,
            c.cost
        );
    }
    println!("  total    {} ₽\n", cost.total);

    dispatcher
        .confirm(&mailing.id)
        .await
        .map_err(CliError::failed)?;
    let report = dispatcher.run_due().await.map_err(CliError::failed)?;
    bar.finish();
    for (mailing, why) in &report.failures {
        eprintln!("mailing {mailing} failed: {why}");
    }
    let c = report.counts;
    println!(
        "\nrun: {} sent, {} skipped, {} failed, {} waiting, {} unknown",
        c.sent, c.skipped, c.failed, c.queued, c.unknown
    );
    for occurrence in dispatcher
        .occurrences(&mailing.id)
        .await
        .map_err(CliError::failed)?
    {
        println!(
            "journal of {} ({}):",
            occurrence.key,
            occurrence.state.as_str()
        );
        for d in store
            .deliveries(occurrence.id, 0, 1000)
            .await
            .map_err(CliError::failed)?
        {
            let p = &d.planned;
            let channel = p.channel.map_or("-", ChannelKind::as_str);
            let detail = match p.status {
                DeliveryStatus::Sent => p.address.clone().unwrap_or_default(),
                DeliveryStatus::Queued => match p.not_before {
                    Some(at) => format!("waits for the send window: {}", at.to_rfc3339()),
                    None => "waits for a retry".to_owned(),
                },
                _ => p.error.clone().unwrap_or_default(),
            };
            println!(
                "  {:<7} {:<8} {:<8} {detail}",
                p.recipient_id,
                channel,
                p.status.as_str()
            );
        }
    }
    println!("bonuses accrued: {}", ledger.accruals().len());
    println!("outbox: {}", outbox_dir.display());

    // The history of this run, as `campaign history` prints it, and as a workbook.
    let this_mailing = rassylka::HistoryQuery {
        mailing_id: Some(mailing.id.clone()),
        ..rassylka::HistoryQuery::default()
    };
    for row in dispatcher
        .history(&this_mailing)
        .await
        .map_err(CliError::failed)?
    {
        println!("history: {}", row.to_json());
    }
    let workbook = folder.join("history.xlsx");
    dispatcher
        .export_history(&this_mailing, &workbook)
        .await
        .map_err(CliError::failed)?;
    println!("history workbook: {}", workbook.display());
    Ok(())
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return CliError::failed(e).report(),
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}
