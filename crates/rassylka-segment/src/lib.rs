//! Audience rules of a mailing (SPEC §4): who gets a message.
//!
//! A [`Rule`] is a serde tree (`all` / `any` / `not` over leaves: gender, age, country, tags,
//! VIP, loyalty group, balance, registration date, purchases, last purchase, date rules over
//! bookings and the birthday, reachability, `is_set`). It is parsed by hand from JSON so every
//! error names the JSON path of the bad node (`all[2].age.gte: expected a non-negative
//! integer`), unknown keys are errors (a typo must not silently widen an audience), and it
//! writes back in the same shape.
//!
//! A rule is compiled once per evaluation date `D` (the occurrence's civil date in the
//! mailing's zone, always passed in: the crate never reads a clock), zone and Feb 29 policy into
//! a [`Segment`]: ages become birth-date bounds, dates become day numbers, names become
//! interned symbols, amounts become scaled integers. A segment evaluates a [`Recipient`]
//! directly ([`Segment::evaluate`], [`Segment::count`]) or the rows of a columnar
//! [`Snapshot`] built once per recipient list ([`Segment::bind`]), with identical results.
//!
//! ```
//! use chrono::NaiveDate;
//! use rassylka_model::{MessageClass, Recipient};
//! use rassylka_segment::{CompileOptions, Outcome, Rule, Segment, Snapshot};
//!
//! let rule = Rule::from_json(r#"{"all": [
//!     {"country": {"not_in": ["RU"]}},
//!     {"date": {"dynamic": {"field": "check_in", "days": 3, "when": "before"}}}
//! ]}"#)?;
//! let today = NaiveDate::from_ymd_opt(2026, 11, 28).ok_or("bad date")?;
//! let segment = Segment::compile(&rule, &CompileOptions::new(today, chrono_tz::Europe::Moscow))?;
//!
//! let guest: Recipient = serde_json::from_str(r#"{"id": "g-1", "country": "KZ",
//!     "contacts": {"email": "guest@example.com"},
//!     "bookings": [{"id": "b-1", "check_in": "2026-12-01"}, {"id": "b-2", "check_in": "2027-01-05"}]}"#)?;
//! let mut bookings = Vec::new();
//! assert_eq!(segment.evaluate(&guest, &mut bookings), Outcome::Bookings);
//! assert_eq!(bookings.len(), 1);
//! assert_eq!(guest.bookings[bookings[0].index].id.as_deref(), Some("b-1"));
//! assert_eq!(bookings[0].anchor, NaiveDate::from_ymd_opt(2026, 12, 1));
//!
//! let counts = segment.count([&guest], MessageClass::Service);
//! assert_eq!((counts.matched, counts.per_channel.email), (1, 1));
//! let snapshot = Snapshot::from_recipients([&guest], chrono_tz::Europe::Moscow);
//! assert_eq!(segment.bind(&snapshot)?.count(MessageClass::Service), counts);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Semantics
//!
//! The table of SPEC §4a holds throughout; what follows is what the specification left open.
//!
//! - **Two-valued logic.** A leaf whose data is missing is false; `not` is the exact complement
//!   recipient by recipient, so `{"country": {"not_in": ["RU"]}}` includes recipients with no
//!   country and «for Russia» plus «not for Russia» reach everyone exactly once.
//! - **Booking leaves** (date rules on `check_in`, `check_out`, `booked_at`, `paid_at`) match a
//!   recipient when some booking matches, and say which. A node with booking leaves below it is
//!   false, true for the recipient as a whole (⊤), or true for a non-empty set of bookings:
//!   `all` intersects the sets (a booking must satisfy every booking leaf; plain children
//!   filter the recipient) and is false when the intersection is empty; `any` unites them, and
//!   a true plain child makes it ⊤; `not` is the recipient-level complement and never carries
//!   bookings («has no booking that …»). A recipient matched through a set gets one delivery
//!   per booking ([`Outcome::Bookings`]), one matched as ⊤ a single delivery
//!   ([`Outcome::Recipient`]). The anchor date of a matched booking is its date in the rule's
//!   [anchor field](Segment::anchor_field): the field of the first dynamic booking leaf in
//!   document order, else of the first booking interval.
//! - **Instants** (`registered_at`, purchase `at`, `booked_at`, `paid_at`) are read as civil
//!   dates in the mailing's zone, so `[from, to]` means `[from 00:00, to+1 00:00)` local time,
//!   whatever DST does that day.
//! - **Age** is completed years at `D` with the Feb 29 policy; a birth date after `D` has a
//!   negative age. Ages above 200 are refused as typos.
//! - **Birthday intervals** compare month-days; `from > to` wraps New Year. A Feb 29 birthday
//!   (and a Feb 29 bound: `from` → Mar 1, `to` → Feb 28) is read in the year of the February
//!   of the interval's occurrence that contains `D`, or of the next one when `D` is outside
//!   it (a Dec 20 mailing for «Feb 20 – Mar 10» looks at next year's February). Wrapping is
//!   decided on the bounds as written, so «02-29 – 02-29» is empty in non-leap years.
//! - **Dynamic birthday rules** look for `y` in `D.y−1 … D.y+1` with `birthday(y) ± N == D`.
//! - **Purchases**: `within_days` N ≥ 1 is `[D − (N−1), D]`; purchases without a time are
//!   never in a window; a purchase without an amount counts but adds nothing to `sum`; with
//!   neither `count` nor `sum` the rule means «at least one purchase». `last_purchase` looks at
//!   dated purchases only.
//! - **Names**: country codes are upper-cased when parsed and compared with the recipient's
//!   (trimmed) country; tags and loyalty groups compare exactly. `loyalty_group` and `segment`
//!   take one name or `{"in": [..]}`.
//! - **`is_set`** takes a recipient field (`first_name`, `birth_date`, `balance`, `segments`,
//!   `bookings`, …), a contact (`email`, `phone`, `telegram_chat_id`, `vk_user_id`,
//!   `wallet_push`) or `fields.NAME`. Present means not missing, not null, not a blank string,
//!   not an empty list. Presence is not validity: `{"reachable": "email"}` needs a valid address.
//! - **Reachability and classes**: the `reachable` leaf tests a valid contact only; the
//!   message class applies in [`targets`], which counting and sending share. Advertising needs
//!   `consent.advertising == true` and `no_mailings != true`; service ignores both.
//! - **Counts** are of recipients: see [`Counts`] and [`Excluded`] for the exclusion order.
//!
//! # Performance
//!
//! Evaluating a [`Recipient`] converts its instants in the zone as it goes (and the model
//! builds addresses for reachability), so it suits single recipients and streams. For
//! previews over a whole base, build a [`Snapshot`] once: dates are day numbers in the zone,
//! names interned, amounts scaled integers, contacts validated into bit sets, purchases
//! summarised; a bound segment then narrows a bit per row leaf by leaf, column leaves 64 rows
//! at a time, and judges booking leaves over the booking columns. `benches/segment.rs`
//! measures both against SQLite on a million recipients.
//!
//! Straight from an export file, [`Segment::scan_jsonl`] parses on several threads and judges
//! each recipient where it was parsed; `benches/ingest.rs` measures it beside DuckDB reading
//! the same file.

mod columnar;
mod compile;
mod count;
mod dates;
mod error;
mod eval;
mod reach;
mod rule;
mod scan;
mod snapshot;

pub use chrono_tz::Tz;
pub use compile::{CompileOptions, Segment};
pub use count::{Counts, Excluded, PerChannel};
pub use dates::{InvalidMonthDay, LeapDay, MonthDay};
pub use error::SegmentError;
pub use eval::{BookingMatch, Outcome};
pub use reach::{ChannelSet, Exclusion, Targets, targets};
pub use rule::{
    BookingField, CountryRule, DateField, DateInterval, DateRule, DateSpan, DecimalRange,
    DynamicDate, Field, IntRange, LastPurchaseRule, Names, PurchasesRule, Rule, When,
};
pub use scan::{Audience, ScanOptions};
pub use snapshot::{BoundSegment, Snapshot};

#[cfg(doc)]
use rassylka_model::Recipient;
