//! Whole-snapshot evaluation: a bit per row, narrowed leaf by leaf.
//!
//! Each leaf runs as one tight loop over its column (the node is matched once per leaf, not
//! once per row), and only on rows still in the running: under `all` every child narrows what
//! the next one looks at. Column leaves test all 64 rows of a busy word without branching;
//! costly ones (purchase windows, tags, bookings) only visit the rows still set, through the
//! same per-row accessors [`eval`](crate::eval) uses. Column leaves read the same columns with
//! the same sentinels; the property tests hold both paths to the same answers.

use crate::compile::{DaySpan, FieldRef, Node, SymSet};
use crate::eval::{self, Row};
use crate::reach::ChannelSet;
use crate::rule::BookingField;
use crate::snapshot::{BoundSegment, INEXACT, NO_AMOUNT, NO_DAY, NO_NAME, gender_code};

/// Packs 64 flags (each 0 or 1) into a word, flag `j` at bit `j`.
#[inline]
fn pack(flags: &[u8; 64]) -> u64 {
    let mut word = 0u64;
    for (k, eight) in flags.chunks_exact(8).enumerate() {
        let bytes = <[u8; 8]>::try_from(eight).unwrap_or_default();
        // Byte k of `x` lands on bit 56 + k of the product, with no two terms sharing a bit.
        let x = u64::from_le_bytes(bytes);
        word |= (x.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * k);
    }
    word
}

/// One bit per snapshot row.
#[derive(Debug, Clone)]
pub(crate) struct RowSet {
    words: Vec<u64>,
    len: usize,
}

impl RowSet {
    pub(crate) fn all(len: usize) -> RowSet {
        let mut words = vec![u64::MAX; len.div_ceil(64)];
        let tail = len % 64;
        if let Some(last) = words.last_mut()
            && tail > 0
        {
            *last = (1u64 << tail) - 1;
        }
        RowSet { words, len }
    }

    fn none(len: usize) -> RowSet {
        RowSet {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    fn insert(&mut self, row: usize) {
        if let Some(word) = self.words.get_mut(row / 64) {
            *word |= 1u64 << (row % 64);
        }
    }

    fn intersect(&mut self, other: &RowSet) {
        self.words
            .iter_mut()
            .zip(&other.words)
            .for_each(|(a, b)| *a &= b);
    }

    fn remove(&mut self, other: &RowSet) {
        self.words
            .iter_mut()
            .zip(&other.words)
            .for_each(|(a, b)| *a &= !b);
    }

    fn add(&mut self, other: &RowSet) {
        self.words
            .iter_mut()
            .zip(&other.words)
            .for_each(|(a, b)| *a |= b);
    }

    pub(crate) fn rows(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(w, word)| {
            let mut bits = *word;
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let bit = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    w * 64 + bit
                })
            })
        })
    }

    /// Keeps the rows whose value in `column` passes `keep(row, value)`; a busy word is
    /// computed whole from a 64-value slice, which the compiler turns into vector code.
    #[inline]
    fn retain_column<T: Copy>(&mut self, column: &[T], keep: impl Fn(usize, T) -> bool) {
        let full_words = (self.len / 64).min(column.len() / 64);
        for (w, word) in self.words.iter_mut().enumerate() {
            let current = *word;
            if current == 0 {
                continue;
            }
            let base = w * 64;
            if w < full_words && current.count_ones() > 8 {
                let mut flags = [0u8; 64];
                for (j, (flag, value)) in flags.iter_mut().zip(&column[base..base + 64]).enumerate()
                {
                    *flag = u8::from(keep(base + j, *value));
                }
                *word = current & pack(&flags);
            } else {
                let mut rest = current;
                while rest != 0 {
                    let bit = rest.trailing_zeros();
                    let row = base + bit as usize;
                    if !column.get(row).is_some_and(|v| keep(row, *v)) {
                        *word &= !(1u64 << bit);
                    }
                    rest &= rest - 1;
                }
            }
        }
    }

    /// Keeps the rows for which `keep` holds, visiting only the rows still set: for costly
    /// tests (purchase windows, tags, bookings).
    #[inline]
    fn retain(&mut self, keep: impl Fn(usize) -> bool) {
        for (w, word) in self.words.iter_mut().enumerate() {
            let mut rest = *word;
            while rest != 0 {
                let bit = rest.trailing_zeros();
                if !keep(w * 64 + bit as usize) {
                    *word &= !(1u64 << bit);
                }
                rest &= rest - 1;
            }
        }
    }
}

impl BoundSegment<'_> {
    /// Whether each of the snapshot's names is in `set`.
    fn members(&self, set: &SymSet) -> Vec<bool> {
        self.translate
            .iter()
            .map(|sym| set.contains(*sym))
            .collect()
    }

    /// Rows with at least one booking that satisfies every `(field, days)` leaf.
    fn rows_with_bookings(&self, leaves: &[(BookingField, DaySpan)]) -> RowSet {
        let snap = self.snapshot;
        let mut bookings = RowSet::all(snap.booking_row.len());
        for (field, span) in leaves {
            let column = &snap.booking_day[field.column()];
            bookings.retain_column(column, |_, d| d != NO_DAY && span.contains(d));
        }
        let mut rows = RowSet::none(snap.len());
        for booking in bookings.rows() {
            if let Some(row) = snap.booking_row.get(booking) {
                rows.insert(*row);
            }
        }
        rows
    }

    /// The rows of the audience.
    pub(crate) fn audience(&self) -> RowSet {
        let mut rows = RowSet::all(self.snapshot.len());
        self.narrow(&self.segment.root, &mut rows);
        rows
    }

    /// Removes from `rows` those `node` does not match.
    fn narrow(&self, node: &Node, rows: &mut RowSet) {
        if rows.is_empty() {
            return;
        }
        let snap = self.snapshot;
        match node {
            Node::All { children, bookings } => {
                for child in children.iter().filter(|c| !c.has_bookings()) {
                    self.narrow(child, rows);
                }
                if !*bookings || rows.is_empty() {
                    return;
                }
                // A booking must satisfy every booking leaf at once: plain leaves are judged
                // over the booking columns together, anything else row by row.
                let leaves: Option<Vec<(BookingField, DaySpan)>> = children
                    .iter()
                    .filter(|c| c.has_bookings())
                    .map(|c| match c {
                        Node::Booking { field, days } => Some((*field, *days)),
                        _ => None,
                    })
                    .collect();
                match leaves {
                    Some(leaves) => rows.intersect(&self.rows_with_bookings(&leaves)),
                    None => rows.retain(|i| eval::matches(node, &self.row(i))),
                }
            }
            Node::Any {
                children,
                bookings: false,
            } => {
                let mut open = rows.clone();
                let mut hit = RowSet::none(rows.len);
                for child in children {
                    let mut matched = open.clone();
                    self.narrow(child, &mut matched);
                    open.remove(&matched);
                    hit.add(&matched);
                }
                *rows = hit;
            }
            Node::Not { child, .. } => {
                let mut matched = rows.clone();
                self.narrow(child, &mut matched);
                rows.remove(&matched);
            }
            Node::Const(value) => {
                if !value {
                    *rows = RowSet::none(rows.len);
                }
            }
            Node::Gender(gender) => {
                let code = gender_code(Some(*gender));
                rows.retain_column(&snap.gender, |_, g| g == code);
            }
            Node::BirthDay(span) => {
                rows.retain_column(&snap.birth_day, |_, d| d != NO_DAY && span.contains(d));
            }
            Node::Birthday(span) => {
                rows.retain_column(&snap.birth_ordinal, |_, o| o != 0 && span.contains(o));
            }
            Node::Registered(span) => {
                rows.retain_column(&snap.registered_day, |_, d| d != NO_DAY && span.contains(d));
            }
            Node::CountryIn(set) => {
                let member = self.members(set);
                rows.retain_column(&snap.country, |_, c| member.get(c as usize) == Some(&true));
            }
            Node::CountryKnown(known) => {
                rows.retain_column(&snap.country, |_, c| (c != NO_NAME) == *known);
            }
            Node::Group(set) => {
                let member = self.members(set);
                rows.retain_column(&snap.group, |_, g| member.get(g as usize) == Some(&true));
            }
            Node::Vip(flag) => rows.retain_column(&snap.vip, |_, v| v == *flag),
            Node::Balance(bounds) => rows.retain_column(&snap.balance, |i, key| match key {
                NO_AMOUNT => false,
                INEXACT => self.row(i).balance_within(bounds),
                key => bounds.contains_key(i128::from(key)),
            }),
            Node::LastPurchaseBefore(day) => {
                rows.retain_column(&snap.last_purchase, |_, d| d != NO_DAY && d < *day);
            }
            Node::Reachable(channel) => {
                let bit = ChannelSet::from_iter([*channel]).bits();
                rows.retain_column(&snap.valid, |_, valid| valid & bit != 0);
            }
            Node::IsSet(FieldRef::BuiltIn(index)) => {
                rows.retain_column(&snap.present, |_, present| present >> index & 1 == 1);
            }
            Node::IsSet(field @ FieldRef::Custom(_)) => {
                rows.retain(|i| self.row(i).is_set(*field));
            }
            Node::Tag(set) => rows.retain(|i| self.row(i).has_tag_in(set)),
            Node::Purchases(window) => {
                rows.retain(|i| self.row(i).purchases_within(window));
            }
            Node::Booking { field, days } => {
                rows.intersect(&self.rows_with_bookings(&[(*field, *days)]));
            }
            Node::Any { .. } => {
                rows.retain(|i| eval::matches(node, &self.row(i)));
            }
        }
    }
}
