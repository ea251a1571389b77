//! A columnar copy of a recipient list, built once, that compiled segments count fast: every
//! date is a day number in the mailing's zone, names are interned, amounts are scaled integers,
//! contacts are validated once into channel bit sets.

use std::collections::HashMap;

use chrono_tz::Tz;
use rassylka_model::{ChannelKind, Gender, MessageClass, OptOut, Recipient};
use rust_decimal::Decimal;

use crate::SegmentError;
use crate::compile::{AmountBounds, FieldRef, PurchaseWindow, Segment, Sym, SymSet, amount_key};
use crate::count::Counts;
use crate::dates::{day_number, local_day, ordinal_of};
use crate::eval::{
    self, BookingMatch, Outcome, Row, UNKNOWN, booking_days, built_in_set, custom_present, text,
};
use crate::reach::{ChannelSet, Targets, classify, contact_sets};
use crate::rule::{BookingField, Field};

pub(crate) const NO_DAY: i32 = i32::MIN;
pub(crate) const NO_NAME: u32 = u32::MAX;
pub(crate) const NO_AMOUNT: i64 = i64::MIN;
/// The amount has more than four decimals (or is huge): compare the exact decimal.
pub(crate) const INEXACT: i64 = i64::MIN + 1;

/// Recipients as columns, with the instants already read as civil dates in `zone`.
///
/// Build it once per recipient list and zone ([`Snapshot::from_recipients`]); then
/// [`Segment::bind`] it to count or evaluate rows. Results are identical to evaluating the
/// [`Recipient`]s themselves.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub(crate) zone: Tz,
    pub(crate) names: Vec<String>,
    pub(crate) gender: Vec<u8>,
    pub(crate) birth_day: Vec<i32>,
    pub(crate) birth_ordinal: Vec<u16>,
    pub(crate) registered_day: Vec<i32>,
    pub(crate) country: Vec<u32>,
    pub(crate) group: Vec<u32>,
    pub(crate) vip: Vec<bool>,
    pub(crate) balance: Vec<i64>,
    pub(crate) exact_balances: HashMap<usize, Decimal>,
    pub(crate) present: Vec<u32>,
    pub(crate) valid: Vec<u8>,
    pub(crate) invalid: Vec<u8>,
    /// Opt-out for advertising and for service, as 0 (none), 1 (no mailings), 2 (no consent).
    pub(crate) opt_out: Vec<[u8; 2]>,
    pub(crate) tag_start: Vec<usize>,
    pub(crate) tags: Vec<u32>,
    pub(crate) custom_start: Vec<usize>,
    pub(crate) customs: Vec<u32>,
    pub(crate) purchase_start: Vec<usize>,
    pub(crate) purchase_day: Vec<i32>,
    pub(crate) purchase_amount: Vec<i64>,
    pub(crate) exact_amounts: HashMap<usize, Decimal>,
    pub(crate) last_purchase: Vec<i32>,
    /// The four latest purchase days, latest first ([`NO_DAY`] when fewer), then how many
    /// dated purchases there are: most windows are answered from here without a second
    /// memory access.
    pub(crate) recent_purchases: Vec<[i32; 5]>,
    pub(crate) booking_start: Vec<usize>,
    /// One column per [`BookingField`], indexed by booking.
    pub(crate) booking_day: [Vec<i32>; 4],
    /// The row of each booking.
    pub(crate) booking_row: Vec<usize>,
}

pub(crate) fn gender_code(gender: Option<Gender>) -> u8 {
    match gender {
        None => 0,
        Some(Gender::Male) => 1,
        Some(Gender::Female) => 2,
    }
}

fn opt_out_code(opt_out: Option<OptOut>) -> u8 {
    match opt_out {
        None => 0,
        Some(OptOut::NoMailings) => 1,
        Some(OptOut::NoConsent) => 2,
    }
}

fn opt_out_of(code: u8) -> Option<OptOut> {
    match code {
        1 => Some(OptOut::NoMailings),
        2 => Some(OptOut::NoConsent),
        _ => None,
    }
}

/// The key of an amount, or [`INEXACT`] when only the decimal can compare it.
fn key_of(value: Decimal) -> i64 {
    match amount_key(value) {
        (key, true) => match i64::try_from(key) {
            Ok(key) if key != NO_AMOUNT && key != INEXACT => key,
            _ => INEXACT,
        },
        _ => INEXACT,
    }
}

struct Interner {
    names: Vec<String>,
    index: HashMap<String, u32>,
}

impl Interner {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(sym) = self.index.get(name) {
            return *sym;
        }
        let sym = u32::try_from(self.names.len()).unwrap_or(NO_NAME - 1);
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), sym);
        sym
    }
}

impl Snapshot {
    /// Builds the columns; instants (registration, purchases, booking and payment times) are
    /// read as civil dates in `zone`, which must be the zone of the segments bound to it.
    pub fn from_recipients<'r>(
        recipients: impl IntoIterator<Item = &'r Recipient>,
        zone: Tz,
    ) -> Self {
        let mut names = Interner {
            names: Vec::new(),
            index: HashMap::new(),
        };
        let mut s = Snapshot {
            zone,
            names: Vec::new(),
            gender: Vec::new(),
            birth_day: Vec::new(),
            birth_ordinal: Vec::new(),
            registered_day: Vec::new(),
            country: Vec::new(),
            group: Vec::new(),
            vip: Vec::new(),
            balance: Vec::new(),
            exact_balances: HashMap::new(),
            present: Vec::new(),
            valid: Vec::new(),
            invalid: Vec::new(),
            opt_out: Vec::new(),
            tag_start: vec![0],
            tags: Vec::new(),
            custom_start: vec![0],
            customs: Vec::new(),
            purchase_start: vec![0],
            purchase_day: Vec::new(),
            purchase_amount: Vec::new(),
            exact_amounts: HashMap::new(),
            last_purchase: Vec::new(),
            recent_purchases: Vec::new(),
            booking_start: vec![0],
            booking_day: Default::default(),
            booking_row: Vec::new(),
        };
        for r in recipients {
            let row = s.gender.len();
            s.gender.push(gender_code(r.gender));
            s.birth_day.push(r.birth_date.map_or(NO_DAY, day_number));
            s.birth_ordinal.push(r.birth_date.map_or(0, ordinal_of));
            s.registered_day.push(
                r.registered_at
                    .as_ref()
                    .map_or(NO_DAY, |t| local_day(t, zone)),
            );
            s.country
                .push(text(r.country.as_deref()).map_or(NO_NAME, |c| names.intern(c)));
            s.group.push(
                r.loyalty_group
                    .as_deref()
                    .map_or(NO_NAME, |g| names.intern(g)),
            );
            s.vip.push(r.vip);
            s.balance.push(match r.balance {
                None => NO_AMOUNT,
                Some(b) => {
                    let key = key_of(b.0);
                    if key == INEXACT {
                        s.exact_balances.insert(row, b.0);
                    }
                    key
                }
            });
            let mut present = 0u32;
            for index in 0..Field::BUILT_IN.len() {
                if built_in_set(r, index) {
                    present |= 1 << index;
                }
            }
            s.present.push(present);
            let (valid, invalid) = contact_sets(r);
            s.valid.push(valid.bits());
            s.invalid.push(invalid.bits());
            s.opt_out.push([
                opt_out_code(r.opt_out(MessageClass::Advertising)),
                opt_out_code(r.opt_out(MessageClass::Service)),
            ]);
            s.tags.extend(r.segments.iter().map(|t| names.intern(t)));
            s.tag_start.push(s.tags.len());
            s.customs.extend(
                r.fields
                    .iter()
                    .filter(|(_, v)| custom_present(v))
                    .map(|(k, _)| names.intern(k)),
            );
            s.custom_start.push(s.customs.len());
            // Purchases keep their order, so an exact (decimal) sum adds in the same order as
            // evaluating the recipient does.
            let first = s.purchase_day.len();
            let mut inexact = false;
            let mut last = NO_DAY;
            for p in &r.purchases {
                let Some(at) = &p.at else { continue };
                let day = local_day(at, zone);
                last = last.max(day);
                let key = p.amount.map_or(0, |a| key_of(a.0));
                inexact |= key == INEXACT;
                s.purchase_day.push(day);
                s.purchase_amount.push(key);
            }
            if inexact {
                let dated = r.purchases.iter().filter(|p| p.at.is_some());
                for (offset, p) in dated.enumerate() {
                    let amount = p.amount.map_or(Decimal::ZERO, |a| a.0);
                    s.exact_amounts.insert(first + offset, amount);
                    s.purchase_amount[first + offset] = INEXACT;
                }
            }
            s.purchase_start.push(s.purchase_day.len());
            s.last_purchase.push(last);
            let mut recent = s.purchase_day[first..].to_vec();
            recent.sort_unstable_by(|a, b| b.cmp(a));
            let mut summary = [NO_DAY; 5];
            summary[..4]
                .iter_mut()
                .zip(&recent)
                .for_each(|(slot, day)| *slot = *day);
            summary[4] = i32::try_from(recent.len()).unwrap_or(i32::MAX);
            s.recent_purchases.push(summary);
            for booking in &r.bookings {
                let days = booking_days(booking, zone);
                for (column, day) in s.booking_day.iter_mut().zip(days) {
                    column.push(day.unwrap_or(NO_DAY));
                }
                s.booking_row.push(row);
            }
            s.booking_start.push(s.booking_row.len());
        }
        s.names = names.names;
        s
    }

    /// The number of recipients.
    pub fn len(&self) -> usize {
        self.gender.len()
    }

    /// Whether there are no recipients.
    pub fn is_empty(&self) -> bool {
        self.gender.is_empty()
    }

    /// The zone the instants were read in.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// [`targets`](crate::targets) of the recipient at `row`; `None` past the end.
    pub fn targets(&self, row: usize, class: MessageClass) -> Option<Targets> {
        let opt_out = self.opt_out.get(row)?;
        let code = match class {
            MessageClass::Advertising => opt_out[0],
            MessageClass::Service => opt_out[1],
        };
        Some(classify(
            opt_out_of(code),
            ChannelSet::from_bits(self.valid[row]),
            ChannelSet::from_bits(self.invalid[row]),
        ))
    }
}

/// A segment bound to a snapshot: the snapshot's names translated to the segment's symbols once.
#[derive(Debug, Clone)]
pub struct BoundSegment<'a> {
    pub(crate) segment: &'a Segment,
    pub(crate) snapshot: &'a Snapshot,
    pub(crate) translate: Vec<Sym>,
}

impl Segment {
    /// Binds the segment to `snapshot` for counting and evaluating its rows.
    ///
    /// # Errors
    /// [`SegmentError::ZoneMismatch`] when the snapshot was built for another zone than the
    /// segment was compiled for.
    pub fn bind<'a>(&'a self, snapshot: &'a Snapshot) -> Result<BoundSegment<'a>, SegmentError> {
        if snapshot.zone != self.options.zone {
            return Err(SegmentError::ZoneMismatch {
                snapshot: snapshot.zone,
                segment: self.options.zone,
            });
        }
        let translate = snapshot
            .names
            .iter()
            .map(|name| self.symbol(name).unwrap_or(UNKNOWN))
            .collect();
        Ok(BoundSegment {
            segment: self,
            snapshot,
            translate,
        })
    }
}

impl BoundSegment<'_> {
    #[inline]
    pub(crate) fn row(&self, index: usize) -> SnapshotRow<'_> {
        SnapshotRow {
            s: self.snapshot,
            translate: &self.translate,
            i: index,
        }
    }

    /// Whether the recipient at `row` is in the audience (`false` past the end).
    pub fn matches(&self, row: usize) -> bool {
        row < self.snapshot.len() && eval::matches(&self.segment.root, &self.row(row))
    }

    /// [`Segment::evaluate`] for the recipient at `row` ([`Outcome::NoMatch`] past the end).
    pub fn evaluate(&self, row: usize, bookings: &mut Vec<BookingMatch>) -> Outcome {
        if row >= self.snapshot.len() {
            bookings.clear();
            return Outcome::NoMatch;
        }
        eval::evaluate(self.segment, &self.row(row), bookings)
    }

    /// [`Segment::count`] over the whole snapshot.
    pub fn count(&self, class: MessageClass) -> Counts {
        let mut counts = Counts::default();
        for row in self.audience().rows() {
            if let Some(targets) = self.snapshot.targets(row, class) {
                counts.record_matched(targets);
            }
        }
        counts.total = self.snapshot.len() as u64;
        counts
    }

    /// The rows of the audience, in order.
    pub fn matching_rows(&self) -> Vec<usize> {
        self.audience().rows().collect()
    }
}

pub(crate) struct SnapshotRow<'a> {
    s: &'a Snapshot,
    translate: &'a [Sym],
    i: usize,
}

impl SnapshotRow<'_> {
    #[inline]
    fn name(&self, sym: u32) -> Option<Sym> {
        (sym != NO_NAME).then(|| self.translate.get(sym as usize).copied().unwrap_or(UNKNOWN))
    }

    #[inline]
    fn span(starts: &[usize], i: usize) -> std::ops::Range<usize> {
        starts[i]..starts[i + 1]
    }
}

impl Row for SnapshotRow<'_> {
    #[inline]
    fn gender(&self) -> Option<Gender> {
        match self.s.gender[self.i] {
            1 => Some(Gender::Male),
            2 => Some(Gender::Female),
            _ => None,
        }
    }
    #[inline]
    fn birth_day(&self) -> Option<i32> {
        Some(self.s.birth_day[self.i]).filter(|d| *d != NO_DAY)
    }
    #[inline]
    fn birth_ordinal(&self) -> Option<u16> {
        Some(self.s.birth_ordinal[self.i]).filter(|o| *o != 0)
    }
    #[inline]
    fn registered_day(&self) -> Option<i32> {
        Some(self.s.registered_day[self.i]).filter(|d| *d != NO_DAY)
    }
    #[inline]
    fn country(&self) -> Option<Sym> {
        self.name(self.s.country[self.i])
    }
    #[inline]
    fn vip(&self) -> bool {
        self.s.vip[self.i]
    }
    fn has_tag_in(&self, set: &SymSet) -> bool {
        self.s.tags[Self::span(&self.s.tag_start, self.i)]
            .iter()
            .any(|t| set.contains(self.translate.get(*t as usize).copied().unwrap_or(UNKNOWN)))
    }
    #[inline]
    fn group(&self) -> Option<Sym> {
        self.name(self.s.group[self.i])
    }
    #[inline]
    fn balance_within(&self, bounds: &AmountBounds) -> bool {
        match self.s.balance[self.i] {
            NO_AMOUNT => false,
            INEXACT => self
                .s
                .exact_balances
                .get(&self.i)
                .is_some_and(|b| bounds.contains(*b)),
            key => bounds.contains_key(i128::from(key)),
        }
    }
    fn purchases_within(&self, window: &PurchaseWindow) -> bool {
        let (lo, hi) = (window.days.lo, window.days.hi);
        let inside = |day: &i32| *day != NO_DAY && lo <= *day && *day <= hi;
        if window.sum.is_none() {
            let recent = &self.s.recent_purchases[self.i];
            // The summary holds the latest days first: with at most four purchases, or the
            // fourth already before the window, it holds every day inside the window.
            let seen = recent[..4].iter().filter(|d| inside(d)).count() as u64;
            if recent[4] <= 4 || recent[3] < lo {
                return window.count.contains(seen);
            }
            // Otherwise `seen` is a lower bound of the count, enough for «at least k».
            if window.count.hi == u64::MAX && seen >= window.count.lo {
                return true;
            }
        }
        let span = Self::span(&self.s.purchase_start, self.i);
        let days = &self.s.purchase_day[span.clone()];
        let Some(bounds) = &window.sum else {
            return window
                .count
                .contains(days.iter().filter(|d| inside(d)).count() as u64);
        };
        let amounts = &self.s.purchase_amount[span.clone()];
        let (mut count, mut sum, mut inexact) = (0u64, 0i128, false);
        for (day, amount) in days.iter().zip(amounts) {
            if inside(day) {
                count += 1;
                inexact |= *amount == INEXACT;
                sum += i128::from(*amount);
            }
        }
        if !window.count.contains(count) {
            return false;
        }
        if !inexact {
            return bounds.contains_key(sum);
        }
        let mut exact = Decimal::ZERO;
        for (offset, day) in days.iter().enumerate() {
            if inside(day) {
                let amount = self.s.exact_amounts.get(&(span.start + offset));
                exact = exact.saturating_add(amount.copied().unwrap_or_default());
            }
        }
        bounds.contains(exact)
    }
    #[inline]
    fn last_purchase_day(&self) -> Option<i32> {
        Some(self.s.last_purchase[self.i]).filter(|d| *d != NO_DAY)
    }
    fn is_set(&self, field: FieldRef) -> bool {
        match field {
            FieldRef::BuiltIn(index) => self.s.present[self.i] >> index & 1 == 1,
            FieldRef::Custom(sym) => self.s.customs[Self::span(&self.s.custom_start, self.i)]
                .iter()
                .any(|c| self.translate.get(*c as usize) == Some(&sym)),
        }
    }
    #[inline]
    fn reachable(&self, channel: ChannelKind) -> bool {
        ChannelSet::from_bits(self.s.valid[self.i]).contains(channel)
    }
    #[inline]
    fn booking_count(&self) -> usize {
        let span = Self::span(&self.s.booking_start, self.i);
        span.end - span.start
    }
    #[inline]
    fn booking_day(&self, index: usize, field: BookingField) -> Option<i32> {
        let span = Self::span(&self.s.booking_start, self.i);
        let at = span.start + index;
        if at >= span.end {
            return None;
        }
        let day = *self.s.booking_day[field.column()].get(at)?;
        (day != NO_DAY).then_some(day)
    }
}
