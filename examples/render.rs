//! Renders a template for one recipient.
//!
//! ```text
//! render --dialect D --format F --template FILE --recipient FILE.json [--today YYYY-MM-DD]
//!        [--var NAME=VALUE]… [--lenient]
//! ```
//! Prints the rendered text and one newline. A template error exits 2 with `LINE:COLUMN` on
//! stderr; other bad input exits 2, anything else 1. Missing values are warned about on stderr.

use std::process::ExitCode;

use chrono::NaiveDate;
use clap::Parser;
use rassylka_model::Recipient;
use rassylka_template::{
    BuiltinDialect, CompileOptions, Context, Dialect, Mode, OutputFormat, Template, Values,
};
use rassylka_workspace::{CliError, read_template_file};

#[derive(Parser)]
#[command(about = "Render a template for one recipient")]
struct Args {
    /// probonus, bonusplus, ecvi or itigris.
    #[arg(long)]
    dialect: String,
    /// plain, html, telegram-html or markdown-v2.
    #[arg(long)]
    format: String,
    /// The template file.
    #[arg(long)]
    template: std::path::PathBuf,
    /// The recipient as one JSON object.
    #[arg(long)]
    recipient: std::path::PathBuf,
    /// The date the mailing fires (default: today).
    #[arg(long)]
    today: Option<String>,
    /// A mailing-level value, NAME=VALUE; repeatable.
    #[arg(long = "var")]
    vars: Vec<String>,
    /// Keep unknown tags as text instead of failing.
    #[arg(long)]
    lenient: bool,
}

fn run(args: Args) -> Result<String, CliError> {
    let dialect = Dialect::builtin(
        args.dialect
            .parse::<BuiltinDialect>()
            .map_err(CliError::bad)?,
    );
    let format: OutputFormat = args.format.parse().map_err(CliError::bad)?;
    let text = read_template_file(&args.template)?;
    let recipient_json = std::fs::read_to_string(&args.recipient)
        .map_err(|e| CliError::bad(format!("{}: {e}", args.recipient.display())))?;
    let recipient: Recipient = serde_json::from_str(&recipient_json)
        .map_err(|e| CliError::bad(format!("{}: {e}", args.recipient.display())))?;
    let today = match &args.today {
        Some(date) => NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .map_err(|e| CliError::bad(format!("--today `{date}`: {e}; expected YYYY-MM-DD")))?,
        None => chrono::Local::now().date_naive(),
    };
    let mut values = Values::new();
    for var in &args.vars {
        let (name, value) = var
            .split_once('=')
            .ok_or_else(|| CliError::bad(format!("--var `{var}`: expected NAME=VALUE")))?;
        values.insert_text(name, value);
    }
    let options = CompileOptions {
        mode: if args.lenient {
            Mode::Lenient
        } else {
            Mode::Strict
        },
        ..CompileOptions::default()
    }
    .with_fields(recipient.fields.keys().cloned())
    .with_fields(
        args.vars
            .iter()
            .filter_map(|v| v.split_once('='))
            .map(|(n, _)| n.to_owned()),
    );
    let template = Template::compile_with(&text, &dialect, &options)
        .map_err(|e| CliError::bad(format!("{}:{e}", args.template.display())))?;
    for warning in template.warnings() {
        eprintln!("warning: {}:{warning}", args.template.display());
    }
    let ctx = Context::new(&recipient, today).values(&values);
    let mut out = String::new();
    template.render_into(&ctx, format, &mut out);
    for missing in template.missing(&ctx) {
        eprintln!(
            "warning: {}:{}:{}: no value for `{}`{}",
            args.template.display(),
            missing.line,
            missing.column,
            missing.tag,
            if missing.fallback.is_some() {
                ", printed the fallback"
            } else {
                ""
            }
        );
    }
    Ok(out)
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => return CliError::from_clap(e),
    };
    match run(args) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => e.report(),
    }
}
