//! The whole job on the embedded default, no arguments: the bundled sample mailing rendered for
//! the bundled sample recipients, one preview per channel.
//!
//! It grows into the full dispatcher run (segment, cost, journal, outbox) as those crates land.

use std::process::ExitCode;

use chrono::NaiveDate;
use rassylka_model::{ChannelKind, Recipient};
use rassylka_template::{BuiltinDialect, Context, Dialect, OutputFormat, Template, Values};
use rassylka_workspace::{CliError, sample_recipients};

const MAILING: &str = include_str!("data/mailing.json");

struct ChannelText {
    channel: ChannelKind,
    format: OutputFormat,
    subject: Option<Template>,
    body: Template,
}

fn compile(content: &serde_json::Value, key: &str) -> Result<Option<Template>, CliError> {
    let Some(text) = content.get(key).and_then(|t| t.as_str()) else {
        return Ok(None);
    };
    let dialect_name = content
        .get("dialect")
        .and_then(|d| d.as_str())
        .unwrap_or("probonus");
    let dialect = Dialect::builtin(
        dialect_name
            .parse::<BuiltinDialect>()
            .map_err(CliError::bad)?,
    );
    Template::compile(text, &dialect)
        .map(Some)
        .map_err(|e| CliError::bad(format!("content.{key}: {e}")))
}

fn run() -> Result<(), CliError> {
    let mailing: serde_json::Value = serde_json::from_str(MAILING).map_err(CliError::bad)?;
    let recipients: Vec<Recipient> = sample_recipients().map_err(CliError::bad)?;
    let today =
        NaiveDate::from_ymd_opt(2026, 11, 22).ok_or_else(|| CliError::failed("bad date"))?;
    let amount = mailing["bonus"]["amount"].as_i64().unwrap_or(0);
    let days = mailing["bonus"]["expires_in_days"].as_i64().unwrap_or(0);
    let mut values = Values::new();
    values.insert("bonus_accrued", amount).insert(
        "bonus_expires_on",
        today + chrono::Days::new(days.unsigned_abs()),
    );

    let mut channels = Vec::new();
    for name in mailing["channels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str())
    {
        let channel: ChannelKind = name.parse().map_err(CliError::bad)?;
        let content = mailing["content"]
            .get(name)
            .unwrap_or(&mailing["content"]["default"]);
        let (format, body_key) = match channel {
            ChannelKind::Email => (OutputFormat::Html, "html"),
            ChannelKind::Telegram => (OutputFormat::TelegramHtml, "text"),
            _ => (OutputFormat::Plain, "text"),
        };
        let body = compile(content, body_key)?
            .or(compile(content, "text")?)
            .ok_or_else(|| CliError::bad(format!("content.{name}: no text")))?;
        channels.push(ChannelText {
            channel,
            format,
            subject: compile(content, "subject")?,
            body,
        });
    }

    println!(
        "{} — {} recipients, {} channels\n",
        mailing["name"].as_str().unwrap_or(""),
        recipients.len(),
        channels.len()
    );
    let mut out = String::new();
    for recipient in &recipients {
        println!(
            "== {} ({})",
            recipient.id,
            recipient.full_name().unwrap_or_else(|| "без имени".into())
        );
        for channel in &channels {
            let reachable = recipient.address(channel.channel);
            let ctx = Context::new(recipient, today).values(&values);
            out.clear();
            if let Some(subject) = &channel.subject {
                subject.render_into(&ctx, OutputFormat::Plain, &mut out);
                out.push_str(" | ");
            }
            let report = channel.body.render_into(&ctx, channel.format, &mut out);
            let to = match reachable {
                Ok(address) => address.to_string(),
                Err(why) => format!("unreachable: {why}"),
            };
            let note = if report.is_complete() {
                ""
            } else {
                "  [missing values]"
            };
            println!(
                "  {:<8} -> {to}\n           {}{note}",
                channel.channel,
                out.replace('\n', "\n           ")
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}
