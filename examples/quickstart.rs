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
            .with_from("Бонусы к зиме <news@shop.example>")
            .map_err(CliError::failed)?;
        let outbox: Arc<dyn Channel> = Arc::new(outbox);
        builder = builder.channel(outbox);
    }
    let dispatcher = builder.build().map_err(CliError::failed)?;

    let channels: Vec<&str> = mailing.channels.iter().map(|c| c.as_str()).collect();
    let mode = match mailing.mode {
        rassylka::DeliveryMode::Priority => {
            "one message each, through the first of these channels the recipient can be reached on"
        }
        rassylka::DeliveryMode::All => "a message on every one of these channels",
    };
    println!(
        "«{}» to {} sample recipients: {}, {mode}.\n",
        mailing.name,
        recipients.len(),
        channels.join(" → "),
    );
    dispatcher.save(&mailing).await.map_err(CliError::failed)?;
    let preview = dispatcher
        .preview(&mailing, None)
        .await
        .map_err(CliError::failed)?;
    let reached: u64 = preview.per_channel.values().sum();
    println!(
        "preview: {} recipients match the audience; {reached} will get a message:",
        preview.matched
    );
    for (channel, n) in &preview.per_channel {
        println!("  {:<8} {n}", channel.as_str());
    }
    if preview.matched > reached {
        println!(
            "  the other {} get none (no advertising consent, unsubscribed, or no contact that works: the journal below says which)",
            preview.matched - reached
        );
    }
    let cost = dispatcher
        .cost(&mailing, None)
        .await
        .map_err(CliError::failed)?;
    println!("cost:");
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    for (channel, c) in &cost.per_channel {
        let units = match channel {
            // SMS is billed per segment (70 Cyrillic or 160 Latin characters).
            ChannelKind::Sms => format!(", {}", plural(c.units, "segment", "segments")),
            _ => String::new(),
        };
        println!(
            "  {:<8} {}{units}, {} ₽",
            channel.as_str(),
            plural(c.messages, "message", "messages"),
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
        "\nrun: {} sent, {} waiting, {} failed, {} unknown; {} journal rows skipped (standby channels not needed once one delivered, and recipients who get nothing)",
        c.sent, c.queued, c.failed, c.unknown, c.skipped
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
                    // In the recipient's own time, which the send window is about.
                    Some(at) => {
                        let zone = recipients
                            .iter()
                            .find(|r| r.id == p.recipient_id)
                            .and_then(|r| r.timezone)
                            .unwrap_or(mailing.zone());
                        format!(
                            "waits for the send window: {} in {zone}; a `campaign run` from then on sends it",
                            at.with_timezone(&zone).format("%d.%m.%Y %H:%M")
                        )
                    }
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
    println!("\nfiles:");
    println!("  journal   {}", folder.join("journal.db").display());
    println!(
        "  outbox    {} (one JSON line per message in <channel>.jsonl; each e-mail also as email/*.eml, open it in a mail client)",
        outbox_dir.display()
    );
    println!("  history   {}", workbook.display());
    println!("\nnext:");
    println!(
        "  cargo run --example campaign -- --db {} journal --mailing-id {} --status skipped",
        folder.join("journal.db").display(),
        mailing.id
    );
    println!(
        "  cargo run --example unsubscribe -- --db {}   # then open the List-Unsubscribe link of the .eml",
        folder.join("journal.db").display()
    );
    println!("  the README's «Example binaries» section: every command runs as written");
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
