//! Placeholder templates of Russian loyalty, CRM and hotel systems, compiled once and rendered
//! per recipient.
//!
//! Four built-in dialects name the same canonical [`Variable`]s: ProBonus `{first_name}`,
//! BonusPlus `[ИМЯ]`, Ecvi `{{guest}}` and ITigris Optima `:И:`; [`Dialect::custom`] makes any
//! other pair of delimiters (`<first_name>`, `<<guest>>`, `%name%`), and every alias table can
//! be extended or overridden. A [`Template`] renders a [`Context`] (recipient, date, mailing
//! values, matched booking) into the caller's `String`, escaping only the substituted values
//! for the [`OutputFormat`], and reports what was missing so a caller can skip a recipient whose
//! message would read «Здравствуйте, !».
//!
//! ```
//! use rassylka_template::{Context, Dialect, OutputFormat, Template, Values};
//! use rassylka_model::Recipient;
//!
//! let template = Template::compile(":Уваж: :И: :О:, начислено :НачисленоБонусов: бонусов до :ДатаСгорания:.", &Dialect::itigris())?;
//! let anna: Recipient = serde_json::from_str(
//!     r#"{"id": "1", "first_name": "Анна", "middle_name": "Сергеевна", "gender": "female"}"#)?;
//! let mut values = Values::new();
//! values.insert_text("bonus_accrued", "1500").insert_text("bonus_expires_on", "2026-12-06");
//! let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
//!
//! let mut out = String::new();
//! let report = template.render_into(&Context::new(&anna, today).values(&values), OutputFormat::Plain, &mut out);
//! assert_eq!(out, "Уважаемая Анна Сергеевна, начислено 1 500 бонусов до 06.12.2026.");
//! assert!(report.is_complete());
//!
//! // The same template in BonusPlus's words.
//! assert_eq!(template.convert(&Dialect::bonusplus())?,
//!            "[УВАЖ] [ИМЯ] [ОТЧЕСТВО], начислено [БОН2] бонусов до [БОН2_ДО].");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Grammar
//! A placeholder is the opening delimiter, a name (a Latin or Cyrillic letter, then letters,
//! digits or `_`), an optional fallback `|text` (no newline, no opening delimiter), and the
//! closing delimiter. Anything else is literal text, so CSS braces, «Время: 10:00», `[до 50%]`
//! and a lone `[` stay as written. Names must start with a letter so that `10:30:45` in the
//! `:И:` dialect is not a tag. There is no escape syntax: the source systems have none.
//!
//! In [`Mode::Strict`] (the default) a well-formed tag the dialect does not know is an error at
//! 1-based `line:column` (columns in characters) with the nearest known tag; in
//! [`Mode::Lenient`] it stays literal and is reported in [`Template::warnings`]. Custom
//! names (keys of the recipient's `fields`, caller values) are declared in
//! [`CompileOptions::fields`]; every dialect also accepts the canonical names.
//!
//! # Values
//! A placeholder takes the first value found in: the recipient's profile, the mailing's
//! [`Values`], the booking that matched (`room`, `check_in`, `check_out`, `booking_id`; the
//! first booking unless the caller passes the one a rule chose), then the recipient's `fields`.
//! Blank strings, `null`, arrays and objects count as missing. Typed variables format by type
//! whatever the source: dates `dd.mm.yyyy`, money `1 250,50` / `1 500` with a plain space
//! between thousands; [`Formatting`] overrides both and the salutations
//! («Уважаемый», «Уважаемая», «Уважаемый(ая)» for an unknown gender). A missing value prints its
//! fallback, else nothing, and is counted in [`Rendered`].
//!
//! # Conversion
//! [`Template::convert`] writes a template in another dialect, each variable under the target's
//! first alias. The result is compiled again and compared part by part, so a converted template
//! renders exactly the same text; when the target would read the source's literal text as a
//! placeholder (the text `[ИМЯ]` written into BonusPlus), conversion fails with the position.
//!
//! # Features
//! None. The crate does no I/O and reads no clock: «today» is passed in.

mod context;
mod dialect;
mod direct;
mod error;
mod format;
mod prepared;
mod template;
mod variable;

pub use context::{Context, Value, Values};
pub use dialect::{BuiltinDialect, Dialect};
pub use error::{TemplateError, UnknownPlaceholder};
pub use format::{DateStyle, Formatting, MoneyStyle, OutputFormat};
pub use prepared::PreparedTemplate;
pub use template::{CompileOptions, Mode, Placeholder, Rendered, Template};
pub use variable::{Target, Variable};
