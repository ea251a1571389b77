//! Writes a template in another dialect.
//!
//! ```text
//! convert --from D --to D --template FILE
//! ```
//! Prints the converted template and one newline. Tags the source dialect does not know are
//! taken as custom fields and keep their names. Text the target dialect would read differently
//! exits 2 with `LINE:COLUMN` on stderr.

use std::process::ExitCode;

use clap::Parser;
use rassylka_template::{BuiltinDialect, CompileOptions, Dialect, Template};
use rassylka_workspace::{CliError, read_template_file};

#[derive(Parser)]
#[command(about = "Convert a template between placeholder dialects")]
struct Args {
    /// Source dialect: probonus, bonusplus, ecvi or itigris.
    #[arg(long)]
    from: String,
    /// Target dialect.
    #[arg(long)]
    to: String,
    /// The template file.
    #[arg(long)]
    template: std::path::PathBuf,
}

fn run(args: Args) -> Result<String, CliError> {
    let from = Dialect::builtin(args.from.parse::<BuiltinDialect>().map_err(CliError::bad)?);
    let to = Dialect::builtin(args.to.parse::<BuiltinDialect>().map_err(CliError::bad)?);
    let text = read_template_file(&args.template)?;
    let template =
        Template::compile_with(&text, &from, &CompileOptions::default().accept_any_field())
            .map_err(|e| CliError::bad(format!("{}:{e}", args.template.display())))?;
    template
        .convert(&to)
        .map_err(|e| CliError::bad(format!("{}:{e}", args.template.display())))
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
