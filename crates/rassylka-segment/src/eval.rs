//! Evaluating a compiled rule on one row, whatever stores the row (a [`Recipient`] or a
//! [`Snapshot`](crate::Snapshot) row): the logic is written once, over the [`Row`] accessors.

use chrono::NaiveDate;
use rassylka_model::{ChannelKind, Gender, Recipient};
use serde_json::Value;

use crate::compile::{AmountBounds, FieldRef, Node, PurchaseWindow, Segment, Sym, SymSet};
use crate::dates::{date_of_day, day_number, local_day, ordinal_of};
use crate::rule::BookingField;

/// What a rule says about one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Not in the audience.
    NoMatch,
    /// In the audience, one delivery not tied to a booking.
    Recipient,
    /// In the audience through bookings: one delivery per [`BookingMatch`] written out.
    Bookings,
}

impl Outcome {
    /// Whether the recipient is in the audience.
    pub fn is_match(self) -> bool {
        self != Outcome::NoMatch
    }
}

/// A booking that matched: a dispatcher keys its delivery by the booking's id (or index) and
/// the anchor date, so a moved check-in gets a new reminder and a re-run on the same day none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BookingMatch {
    /// Index into the recipient's `bookings`.
    pub index: usize,
    /// The booking's date in the rule's [anchor field](Segment::anchor_field) (instants read in
    /// the mailing's zone); `None` only when the booking lacks that date, which can happen
    /// when `any` joins leaves on different fields.
    pub anchor: Option<NaiveDate>,
}

/// The symbol of a name the segment never mentions: no set contains it.
pub(crate) const UNKNOWN: Sym = Sym::MAX;

/// Read access to one recipient's data, already reduced to what leaves compare.
pub(crate) trait Row {
    fn gender(&self) -> Option<Gender>;
    fn birth_day(&self) -> Option<i32>;
    fn birth_ordinal(&self) -> Option<u16>;
    fn registered_day(&self) -> Option<i32>;
    /// `None` when missing, [`UNKNOWN`] when the segment does not name it.
    fn country(&self) -> Option<Sym>;
    fn vip(&self) -> bool;
    fn has_tag_in(&self, set: &SymSet) -> bool;
    fn group(&self) -> Option<Sym>;
    fn balance_within(&self, bounds: &AmountBounds) -> bool;
    fn purchases_within(&self, window: &PurchaseWindow) -> bool;
    fn last_purchase_day(&self) -> Option<i32>;
    fn is_set(&self, field: FieldRef) -> bool;
    fn reachable(&self, channel: ChannelKind) -> bool;
    fn booking_count(&self) -> usize;
    fn booking_day(&self, index: usize, field: BookingField) -> Option<i32>;
}

/// The value of a node that has booking leaves below it: false, true for the recipient as a
/// whole, or true for a non-empty set of bookings.
enum Value3<M> {
    False,
    True,
    Set(M),
}

/// A set of booking indices.
trait Mask: Sized {
    fn none(len: usize) -> Self;
    fn insert(&mut self, index: usize);
    fn intersect(&mut self, other: &Self);
    fn unite(&mut self, other: &Self);
    fn is_empty(&self) -> bool;
    fn each(&self, f: impl FnMut(usize));
}

/// Up to 64 bookings: no allocation.
impl Mask for u64 {
    fn none(_: usize) -> Self {
        0
    }
    fn insert(&mut self, index: usize) {
        *self |= 1 << index;
    }
    fn intersect(&mut self, other: &Self) {
        *self &= other;
    }
    fn unite(&mut self, other: &Self) {
        *self |= other;
    }
    fn is_empty(&self) -> bool {
        *self == 0
    }
    fn each(&self, mut f: impl FnMut(usize)) {
        let mut bits = *self;
        while bits != 0 {
            f(bits.trailing_zeros() as usize);
            bits &= bits - 1;
        }
    }
}

/// More than 64 bookings (a corporate client): rare enough to allocate.
struct WideMask(Vec<u64>);

impl Mask for WideMask {
    fn none(len: usize) -> Self {
        WideMask(vec![0; len.div_ceil(64)])
    }
    fn insert(&mut self, index: usize) {
        if let Some(word) = self.0.get_mut(index / 64) {
            *word |= 1 << (index % 64);
        }
    }
    fn intersect(&mut self, other: &Self) {
        self.0.iter_mut().zip(&other.0).for_each(|(a, b)| *a &= b);
    }
    fn unite(&mut self, other: &Self) {
        self.0.iter_mut().zip(&other.0).for_each(|(a, b)| *a |= b);
    }
    fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }
    fn each(&self, mut f: impl FnMut(usize)) {
        for (w, word) in self.0.iter().enumerate() {
            word.each(|bit| f(w * 64 + bit));
        }
    }
}

#[inline]
fn leaf<R: Row>(node: &Node, row: &R) -> bool {
    match node {
        Node::Const(value) => *value,
        Node::Gender(gender) => row.gender() == Some(*gender),
        Node::BirthDay(span) => row.birth_day().is_some_and(|d| span.contains(d)),
        Node::CountryIn(set) => row.country().is_some_and(|c| set.contains(c)),
        Node::CountryKnown(known) => row.country().is_some() == *known,
        Node::IsSet(field) => row.is_set(*field),
        Node::Tag(set) => row.has_tag_in(set),
        Node::Vip(flag) => row.vip() == *flag,
        Node::Group(set) => row.group().is_some_and(|g| set.contains(g)),
        Node::Balance(bounds) => row.balance_within(bounds),
        Node::Registered(span) => row.registered_day().is_some_and(|d| span.contains(d)),
        Node::Purchases(window) => row.purchases_within(window),
        Node::LastPurchaseBefore(day) => row.last_purchase_day().is_some_and(|d| d < *day),
        Node::Birthday(span) => row.birth_ordinal().is_some_and(|b| span.contains(b)),
        Node::Reachable(channel) => row.reachable(*channel),
        // Combinators are handled by the callers; a booking leaf seen as a plain predicate
        // means «some booking matches».
        Node::Booking { .. } | Node::All { .. } | Node::Any { .. } | Node::Not { .. } => {
            matches(node, row)
        }
    }
}

/// Whether the row is in the audience of `node`.
pub(crate) fn matches<R: Row>(node: &Node, row: &R) -> bool {
    match node {
        Node::All {
            children,
            bookings: false,
        } => children.iter().all(|c| leaf_or_tree(c, row)),
        Node::Any {
            children,
            bookings: false,
        } => children.iter().any(|c| leaf_or_tree(c, row)),
        Node::Not { child, .. } => !matches(child, row),
        Node::All { .. } | Node::Any { .. } | Node::Booking { .. } => {
            let n = row.booking_count();
            if n <= 64 {
                !matches!(value::<u64, R>(node, row, n), Value3::False)
            } else {
                !matches!(value::<WideMask, R>(node, row, n), Value3::False)
            }
        }
        _ => leaf(node, row),
    }
}

#[inline]
fn leaf_or_tree<R: Row>(node: &Node, row: &R) -> bool {
    match node {
        Node::All { .. } | Node::Any { .. } | Node::Not { .. } | Node::Booking { .. } => {
            matches(node, row)
        }
        _ => leaf(node, row),
    }
}

/// The booking-aware value (see the crate docs for the algebra).
fn value<M: Mask, R: Row>(node: &Node, row: &R, n: usize) -> Value3<M> {
    match node {
        Node::Booking { field, days } => {
            let mut set = M::none(n);
            for i in 0..n {
                if row.booking_day(i, *field).is_some_and(|d| days.contains(d)) {
                    set.insert(i);
                }
            }
            if set.is_empty() {
                Value3::False
            } else {
                Value3::Set(set)
            }
        }
        Node::All {
            children,
            bookings: true,
        } => {
            let mut acc: Option<M> = None;
            for child in children {
                match value::<M, R>(child, row, n) {
                    Value3::False => return Value3::False,
                    Value3::True => {}
                    Value3::Set(set) => match &mut acc {
                        None => acc = Some(set),
                        Some(acc) => {
                            acc.intersect(&set);
                            if acc.is_empty() {
                                return Value3::False;
                            }
                        }
                    },
                }
            }
            acc.map_or(Value3::True, Value3::Set)
        }
        Node::Any {
            children,
            bookings: true,
        } => {
            let mut acc: Option<M> = None;
            for child in children {
                match value::<M, R>(child, row, n) {
                    Value3::True => return Value3::True,
                    Value3::False => {}
                    Value3::Set(set) => match &mut acc {
                        None => acc = Some(set),
                        Some(acc) => acc.unite(&set),
                    },
                }
            }
            acc.map_or(Value3::False, Value3::Set)
        }
        plain => {
            if leaf_or_tree(plain, row) {
                Value3::True
            } else {
                Value3::False
            }
        }
    }
}

/// Evaluates with the bookings written to `out` (cleared first).
pub(crate) fn evaluate<R: Row>(segment: &Segment, row: &R, out: &mut Vec<BookingMatch>) -> Outcome {
    out.clear();
    let root = &segment.root;
    if !root.has_bookings() || matches!(root, Node::Not { .. }) {
        return if matches(root, row) {
            Outcome::Recipient
        } else {
            Outcome::NoMatch
        };
    }
    let n = row.booking_count();
    let anchor = segment.anchor;
    let mut push = |index: usize| {
        let anchor = anchor
            .and_then(|field| row.booking_day(index, field))
            .and_then(|d| date_of_day(d.into()));
        out.push(BookingMatch { index, anchor });
    };
    if n <= 64 {
        match value::<u64, R>(root, row, n) {
            Value3::False => return Outcome::NoMatch,
            Value3::True => return Outcome::Recipient,
            Value3::Set(set) => set.each(&mut push),
        }
    } else {
        match value::<WideMask, R>(root, row, n) {
            Value3::False => return Outcome::NoMatch,
            Value3::True => return Outcome::Recipient,
            Value3::Set(set) => set.each(&mut push),
        }
    }
    Outcome::Bookings
}

/// A trimmed, non-blank text.
pub(crate) fn text(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|t| !t.is_empty())
}

/// A custom field counts as set when present, not null and not a blank string.
pub(crate) fn custom_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.trim().is_empty(),
        _ => true,
    }
}

/// Presence of the built-in field at `index` of [`Field::BUILT_IN`](crate::Field::BUILT_IN).
pub(crate) fn built_in_set(r: &Recipient, index: usize) -> bool {
    let c = &r.contacts;
    match index {
        0 => text(r.first_name.as_deref()).is_some(),
        1 => text(r.last_name.as_deref()).is_some(),
        2 => text(r.middle_name.as_deref()).is_some(),
        3 => r.gender.is_some(),
        4 => r.birth_date.is_some(),
        5 => r.timezone.is_some(),
        6 => r.registered_at.is_some(),
        7 => text(r.country.as_deref()).is_some(),
        8 => !r.segments.is_empty(),
        9 => text(r.loyalty_group.as_deref()).is_some(),
        10 => r.balance.is_some(),
        11 => !r.bookings.is_empty(),
        12 => !r.purchases.is_empty(),
        13 => text(c.email.as_deref()).is_some(),
        14 => text(c.phone.as_deref()).is_some(),
        15 => c.telegram_chat_id.is_some(),
        16 => c.vk_user_id.is_some(),
        17 => text(c.wallet_push.as_deref()).is_some(),
        _ => false,
    }
}

/// The local day of each booking field of a booking.
pub(crate) fn booking_days(
    booking: &rassylka_model::Booking,
    zone: chrono_tz::Tz,
) -> [Option<i32>; 4] {
    [
        booking.check_in.map(day_number),
        booking.check_out.map(day_number),
        booking.booked_at.as_ref().map(|t| local_day(t, zone)),
        booking.paid_at.as_ref().map(|t| local_day(t, zone)),
    ]
}

/// A recipient read directly, instants converted in the segment's zone as they are met.
pub(crate) struct RecipientRow<'a> {
    pub(crate) recipient: &'a Recipient,
    pub(crate) segment: &'a Segment,
}

impl RecipientRow<'_> {
    fn sym(&self, name: &str) -> Sym {
        self.segment.symbol(name).unwrap_or(UNKNOWN)
    }
}

impl Row for RecipientRow<'_> {
    fn gender(&self) -> Option<Gender> {
        self.recipient.gender
    }
    fn birth_day(&self) -> Option<i32> {
        self.recipient.birth_date.map(day_number)
    }
    fn birth_ordinal(&self) -> Option<u16> {
        self.recipient.birth_date.map(ordinal_of)
    }
    fn registered_day(&self) -> Option<i32> {
        let zone = self.segment.options.zone;
        self.recipient
            .registered_at
            .as_ref()
            .map(|t| local_day(t, zone))
    }
    fn country(&self) -> Option<Sym> {
        text(self.recipient.country.as_deref()).map(|c| self.sym(c))
    }
    fn vip(&self) -> bool {
        self.recipient.vip
    }
    fn has_tag_in(&self, set: &SymSet) -> bool {
        self.recipient
            .segments
            .iter()
            .any(|tag| set.contains(self.sym(tag)))
    }
    fn group(&self) -> Option<Sym> {
        self.recipient.loyalty_group.as_deref().map(|g| self.sym(g))
    }
    fn balance_within(&self, bounds: &AmountBounds) -> bool {
        self.recipient.balance.is_some_and(|b| bounds.contains(b.0))
    }
    fn purchases_within(&self, window: &PurchaseWindow) -> bool {
        let zone = self.segment.options.zone;
        let mut count = 0u64;
        let mut sum = rust_decimal::Decimal::ZERO;
        for purchase in &self.recipient.purchases {
            let Some(at) = &purchase.at else { continue };
            if window.days.contains(local_day(at, zone)) {
                count += 1;
                if let Some(amount) = purchase.amount {
                    sum = sum.saturating_add(amount.0);
                }
            }
        }
        window.count.contains(count) && window.sum.as_ref().is_none_or(|b| b.contains(sum))
    }
    fn last_purchase_day(&self) -> Option<i32> {
        let zone = self.segment.options.zone;
        self.recipient
            .purchases
            .iter()
            .filter_map(|p| p.at.as_ref().map(|t| local_day(t, zone)))
            .max()
    }
    fn is_set(&self, field: FieldRef) -> bool {
        match field {
            FieldRef::BuiltIn(index) => built_in_set(self.recipient, index),
            FieldRef::Custom(sym) => self.recipient.fields.iter().any(|(name, value)| {
                self.segment.symbol(name) == Some(sym) && custom_present(value)
            }),
        }
    }
    fn reachable(&self, channel: ChannelKind) -> bool {
        self.recipient.address(channel).is_ok()
    }
    fn booking_count(&self) -> usize {
        self.recipient.bookings.len()
    }
    fn booking_day(&self, index: usize, field: BookingField) -> Option<i32> {
        let booking = self.recipient.bookings.get(index)?;
        let zone = self.segment.options.zone;
        match field {
            BookingField::CheckIn => booking.check_in.map(day_number),
            BookingField::CheckOut => booking.check_out.map(day_number),
            BookingField::BookedAt => booking.booked_at.as_ref().map(|t| local_day(t, zone)),
            BookingField::PaidAt => booking.paid_at.as_ref().map(|t| local_day(t, zone)),
        }
    }
}

impl Segment {
    /// Whether `recipient` is in the audience. Allocates nothing unless the rule tests
    /// reachability (the model's address validation builds the address).
    pub fn matches(&self, recipient: &Recipient) -> bool {
        matches(
            &self.root,
            &RecipientRow {
                recipient,
                segment: self,
            },
        )
    }

    /// Evaluates `recipient`; for [`Outcome::Bookings`] the matching bookings are written to
    /// `bookings` (cleared first), in booking order. With a caller-owned vector reused across
    /// recipients this allocates nothing for recipients with up to 64 bookings.
    pub fn evaluate(&self, recipient: &Recipient, bookings: &mut Vec<BookingMatch>) -> Outcome {
        evaluate(
            self,
            &RecipientRow {
                recipient,
                segment: self,
            },
            bookings,
        )
    }
}
