//! Compiling a rule for one evaluation date: every date becomes a day-number range, ages become
//! birth-date bounds, names become interned symbols, decimals become scaled-integer ranges.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;
use rassylka_model::{ChannelKind, Gender};
use rust_decimal::Decimal;

use crate::SegmentError;
use crate::dates::{
    FEB29, LeapDay, date_of_day, day_number, feb29_in, is_leap, latest_birth_for_age, ordinal_of,
};
use crate::rule::{
    BookingField, CountryRule, DateInterval, DateRule, DecimalRange, Field, IntRange, Rule, When,
};

/// What a rule is compiled against: the evaluation date `D` (the occurrence's civil date in the
/// mailing's zone, never read from a clock), the mailing's zone (instants become civil dates in
/// it) and the Feb 29 policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileOptions {
    /// The evaluation date `D`.
    pub today: NaiveDate,
    /// The mailing's time zone.
    pub zone: Tz,
    /// How Feb 29 reads in other years.
    pub leap_day: LeapDay,
}

impl CompileOptions {
    /// Options for `today` in `zone`, with the default Feb 29 policy (Feb 28).
    pub fn new(today: NaiveDate, zone: Tz) -> Self {
        CompileOptions {
            today,
            zone,
            leap_day: LeapDay::default(),
        }
    }

    /// The same options with another Feb 29 policy.
    pub fn with_leap_day(self, leap_day: LeapDay) -> Self {
        CompileOptions { leap_day, ..self }
    }
}

/// An interned name (country, tag, group, custom field) of one compiled segment.
pub(crate) type Sym = u32;

/// A set of symbols; the small ones (almost all) test with one shift.
#[derive(Debug, Clone, Default)]
pub(crate) struct SymSet {
    low: u64,
    high: Vec<Sym>,
}

impl SymSet {
    fn insert(&mut self, sym: Sym) {
        if sym < 64 {
            self.low |= 1 << sym;
        } else if let Err(at) = self.high.binary_search(&sym) {
            self.high.insert(at, sym);
        }
    }

    #[inline]
    pub(crate) fn contains(&self, sym: Sym) -> bool {
        if sym < 64 {
            self.low >> sym & 1 == 1
        } else {
            self.high.binary_search(&sym).is_ok()
        }
    }
}

/// Scale of the integer keys of amounts: 10⁴, so amounts with up to four decimals (money has
/// two) compare as plain integers.
pub(crate) const KEY_SCALE: u32 = 4;

/// `floor(value × 10⁴)` and whether that is exact.
pub(crate) fn amount_key(value: Decimal) -> (i128, bool) {
    let mantissa = value.mantissa();
    let scale = value.scale();
    if scale <= KEY_SCALE {
        (mantissa * 10i128.pow(KEY_SCALE - scale), true)
    } else {
        let divisor = 10i128.pow(scale - KEY_SCALE);
        (
            mantissa.div_euclid(divisor),
            mantissa.rem_euclid(divisor) == 0,
        )
    }
}

/// A decimal range, both as exact comparisons and as an inclusive range of integer keys for
/// values whose key is exact.
#[derive(Debug, Clone)]
pub(crate) struct AmountBounds {
    range: DecimalRange,
    key_lo: i128,
    key_hi: i128,
}

impl AmountBounds {
    fn new(range: &DecimalRange) -> Self {
        let (mut lo, mut hi) = (i128::MIN, i128::MAX);
        // A value with an exact key k is k/10⁴; a bound b lies in [kb, kb+1)/10⁴, strictly
        // inside when inexact, which turns every comparison into an integer bound on k.
        let mut at_least = |k: i128| lo = lo.max(k);
        if let Some(b) = range.gte {
            let (kb, exact) = amount_key(b);
            at_least(if exact { kb } else { kb + 1 });
        }
        if let Some(b) = range.gt {
            at_least(amount_key(b).0 + 1);
        }
        if let Some(b) = range.eq {
            let (kb, exact) = amount_key(b);
            at_least(if exact { kb } else { i128::MAX });
        }
        let mut at_most = |k: i128| hi = hi.min(k);
        if let Some(b) = range.lte {
            at_most(amount_key(b).0);
        }
        if let Some(b) = range.lt {
            let (kb, exact) = amount_key(b);
            at_most(if exact { kb - 1 } else { kb });
        }
        if let Some(b) = range.eq {
            let (kb, exact) = amount_key(b);
            at_most(if exact { kb } else { i128::MIN });
        }
        AmountBounds {
            range: *range,
            key_lo: lo,
            key_hi: hi,
        }
    }

    #[inline]
    pub(crate) fn contains_key(&self, key: i128) -> bool {
        self.key_lo <= key && key <= self.key_hi
    }

    pub(crate) fn contains(&self, value: Decimal) -> bool {
        let r = &self.range;
        r.gte.is_none_or(|b| value >= b)
            && r.gt.is_none_or(|b| value > b)
            && r.lte.is_none_or(|b| value <= b)
            && r.lt.is_none_or(|b| value < b)
            && r.eq.is_none_or(|b| value == b)
    }
}

/// An inclusive range of day numbers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DaySpan {
    pub(crate) lo: i32,
    pub(crate) hi: i32,
}

impl DaySpan {
    const EMPTY: DaySpan = DaySpan {
        lo: i32::MAX,
        hi: i32::MIN,
    };

    /// The span from `lo` to `hi`, clipped to the calendar (an end beyond it is open).
    fn clipped(lo: i64, hi: i64) -> DaySpan {
        let clip = |d: i64| i32::try_from(d.clamp(i64::from(i32::MIN), i64::from(i32::MAX)));
        match (clip(lo), clip(hi)) {
            (Ok(lo), Ok(hi)) => DaySpan { lo, hi },
            _ => DaySpan::EMPTY,
        }
    }

    #[inline]
    pub(crate) fn contains(self, day: i32) -> bool {
        self.lo <= day && day <= self.hi
    }
}

/// Inclusive integer range of a count.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CountSpan {
    pub(crate) lo: u64,
    pub(crate) hi: u64,
}

impl CountSpan {
    fn new(range: &IntRange) -> CountSpan {
        let mut lo = 0u64;
        let mut hi = u64::MAX;
        if let Some(v) = range.gte {
            lo = lo.max(v);
        }
        if let Some(v) = range.gt {
            lo = lo.max(v.saturating_add(1));
            if v == u64::MAX {
                hi = 0;
                lo = 1;
            }
        }
        if let Some(v) = range.lte {
            hi = hi.min(v);
        }
        if let Some(v) = range.lt {
            match v.checked_sub(1) {
                Some(v) => hi = hi.min(v),
                None => (lo, hi) = (1, 0),
            }
        }
        if let Some(v) = range.eq {
            lo = lo.max(v);
            hi = hi.min(v);
        }
        CountSpan { lo, hi }
    }

    #[inline]
    pub(crate) fn contains(self, n: u64) -> bool {
        self.lo <= n && n <= self.hi
    }
}

/// The purchase-window leaf.
#[derive(Debug, Clone)]
pub(crate) struct PurchaseWindow {
    pub(crate) days: DaySpan,
    pub(crate) count: CountSpan,
    pub(crate) sum: Option<AmountBounds>,
}

/// The birthday as month-day ordinals: a Feb 29 birth reads as `feb29_as` in the year that
/// matters; the leaf holds when the ordinal is in `lo..=hi` (or outside `hi+1..lo` when it wraps).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BirthdaySpan {
    pub(crate) lo: u16,
    pub(crate) hi: u16,
    pub(crate) wraps: bool,
    pub(crate) feb29_as: u16,
}

impl BirthdaySpan {
    #[inline]
    pub(crate) fn contains(self, ordinal: u16) -> bool {
        let b = if ordinal == FEB29 {
            self.feb29_as
        } else {
            ordinal
        };
        if self.wraps {
            b >= self.lo || b <= self.hi
        } else {
            self.lo <= b && b <= self.hi
        }
    }
}

/// A compiled rule node.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Const(bool),
    /// `bookings`: some descendant is a booking leaf, so the node needs booking sets.
    All {
        children: Vec<Node>,
        bookings: bool,
    },
    Any {
        children: Vec<Node>,
        bookings: bool,
    },
    Not {
        child: Box<Node>,
        bookings: bool,
    },
    Gender(Gender),
    BirthDay(DaySpan),
    CountryIn(SymSet),
    CountryKnown(bool),
    IsSet(FieldRef),
    Tag(SymSet),
    Vip(bool),
    Group(SymSet),
    Balance(AmountBounds),
    Registered(DaySpan),
    Purchases(PurchaseWindow),
    /// The latest purchase's day is before this day.
    LastPurchaseBefore(i32),
    Birthday(BirthdaySpan),
    Reachable(ChannelKind),
    Booking {
        field: BookingField,
        days: DaySpan,
    },
}

/// `is_set` target: a built-in field by index, or a custom field's symbol.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FieldRef {
    BuiltIn(usize),
    Custom(Sym),
}

impl Node {
    pub(crate) fn has_bookings(&self) -> bool {
        match self {
            Node::Booking { .. } => true,
            Node::All { bookings, .. }
            | Node::Any { bookings, .. }
            | Node::Not { bookings, .. } => *bookings,
            _ => false,
        }
    }

    /// A rough per-row cost, to test cheap leaves first under `all` / `any`.
    fn cost(&self) -> u32 {
        match self {
            Node::Const(_) => 0,
            Node::Gender(_)
            | Node::Vip(_)
            | Node::BirthDay(_)
            | Node::Birthday(_)
            | Node::CountryKnown(_)
            | Node::Registered(_)
            | Node::IsSet(FieldRef::BuiltIn(_))
            | Node::LastPurchaseBefore(_) => 1,
            Node::CountryIn(_) | Node::Group(_) | Node::Balance(_) => 2,
            // A column in a snapshot, but an address validation on a recipient.
            Node::Reachable(_) => 3,
            Node::Tag(_) | Node::IsSet(FieldRef::Custom(_)) => 4,
            Node::Booking { .. } => 6,
            Node::Purchases(_) => 10,
            Node::All { children, .. } | Node::Any { children, .. } => {
                children.iter().map(Node::cost).sum::<u32>() + 1
            }
            Node::Not { child, .. } => child.cost(),
        }
    }
}

/// A rule compiled for one evaluation date, zone and Feb 29 policy: evaluate it per recipient
/// ([`Segment::evaluate`]), count a stream ([`Segment::count`]) or bind it to a
/// [`Snapshot`](crate::Snapshot) for fast counts.
#[derive(Debug, Clone)]
pub struct Segment {
    pub(crate) root: Node,
    pub(crate) options: CompileOptions,
    pub(crate) symbols: HashMap<String, Sym>,
    pub(crate) anchor: Option<BookingField>,
}

struct Compiler<'o> {
    options: &'o CompileOptions,
    today: i64,
    symbols: HashMap<String, Sym>,
}

impl Compiler<'_> {
    fn sym(&mut self, name: &str) -> Sym {
        let next = Sym::try_from(self.symbols.len()).unwrap_or(Sym::MAX - 1);
        *self.symbols.entry(name.to_owned()).or_insert(next)
    }

    fn sym_set<'n>(&mut self, names: impl IntoIterator<Item = &'n String>) -> SymSet {
        let mut set = SymSet::default();
        for name in names {
            let sym = self.sym(name);
            set.insert(sym);
        }
        set
    }

    fn children(&mut self, rules: &[Rule]) -> (Vec<Node>, bool) {
        let mut children: Vec<Node> = rules.iter().map(|r| self.node(r)).collect();
        children.sort_by_key(Node::cost);
        let bookings = children.iter().any(Node::has_bookings);
        (children, bookings)
    }

    fn node(&mut self, rule: &Rule) -> Node {
        let today = self.today;
        let leap_day = self.options.leap_day;
        match rule {
            Rule::Everyone => Node::Const(true),
            Rule::All(rules) => {
                let (children, bookings) = self.children(rules);
                Node::All { children, bookings }
            }
            Rule::Any(rules) => {
                let (children, bookings) = self.children(rules);
                Node::Any { children, bookings }
            }
            Rule::Not(rule) => {
                let child = self.node(rule);
                let bookings = child.has_bookings();
                Node::Not {
                    child: Box::new(child),
                    bookings,
                }
            }
            Rule::Gender(gender) => Node::Gender(*gender),
            Rule::Age(range) => Node::BirthDay(self.birth_bounds(range)),
            Rule::Country(CountryRule::In(codes)) => Node::CountryIn(self.sym_set(codes)),
            Rule::Country(CountryRule::NotIn(codes)) => Node::Not {
                child: Box::new(Node::CountryIn(self.sym_set(codes))),
                bookings: false,
            },
            Rule::Country(CountryRule::IsSet(known)) => Node::CountryKnown(*known),
            Rule::IsSet(Field::Custom(name)) => Node::IsSet(FieldRef::Custom(self.sym(name))),
            Rule::IsSet(field) => match field.built_in_index() {
                Some(index) => Node::IsSet(FieldRef::BuiltIn(index)),
                None => Node::Const(false),
            },
            Rule::Segment(names) => Node::Tag(self.sym_set(names.as_slice())),
            Rule::Vip(flag) => Node::Vip(*flag),
            Rule::LoyaltyGroup(names) => Node::Group(self.sym_set(names.as_slice())),
            Rule::Balance(range) => Node::Balance(AmountBounds::new(range)),
            Rule::Registered(span) => {
                let lo = span.from.map_or(i64::MIN, |d| i64::from(day_number(d)));
                let hi = span.to.map_or(i64::MAX, |d| i64::from(day_number(d)));
                Node::Registered(DaySpan::clipped(lo, hi))
            }
            Rule::Purchases(p) => Node::Purchases(PurchaseWindow {
                days: DaySpan::clipped(today - i64::from(p.within_days) + 1, today),
                count: match (&p.count, &p.sum) {
                    (Some(count), _) => CountSpan::new(count),
                    (None, Some(_)) => CountSpan {
                        lo: 0,
                        hi: u64::MAX,
                    },
                    (None, None) => CountSpan {
                        lo: 1,
                        hi: u64::MAX,
                    },
                },
                sum: p.sum.as_ref().map(AmountBounds::new),
            }),
            Rule::LastPurchase(p) => {
                // D − date > N  ⇔  date < D − N.
                let before = today - i64::from(p.older_than_days);
                Node::LastPurchaseBefore(
                    i32::try_from(before.max(i64::from(i32::MIN))).unwrap_or(i32::MAX),
                )
            }
            Rule::Date(DateRule::Dynamic(dynamic)) => {
                // before N: date − N = D ⇒ date = D + N; after N: date = D − N.
                let n = i64::from(dynamic.days);
                let target = match dynamic.when {
                    When::Before => today + n,
                    When::After => today - n,
                };
                match dynamic.field.booking_field() {
                    Some(field) => Node::Booking {
                        field,
                        days: DaySpan::clipped(target, target),
                    },
                    None => self.birthday_on(target),
                }
            }
            Rule::Date(DateRule::Interval(DateInterval::Booking { field, from, to })) => {
                Node::Booking {
                    field: *field,
                    days: DaySpan::clipped(day_number(*from).into(), day_number(*to).into()),
                }
            }
            Rule::Date(DateRule::Interval(DateInterval::Birthday { from, to })) => {
                let (from, to) = (from.ordinal(), to.ordinal());
                let wraps = from > to;
                let year = self.interval_year(from, to);
                let mut span = BirthdaySpan {
                    lo: from,
                    hi: to,
                    wraps,
                    feb29_as: feb29_in(year, leap_day),
                };
                if !is_leap(year) {
                    if from == FEB29 {
                        span.lo = FEB29 + 1;
                    }
                    if to == FEB29 {
                        span.hi = FEB29 - 1;
                    }
                }
                Node::Birthday(span)
            }
            Rule::Reachable(channel) => Node::Reachable(*channel),
        }
    }

    /// Birth days of people whose completed age at D satisfies `range`.
    fn birth_bounds(&self, range: &IntRange) -> DaySpan {
        let (today, leap_day) = (self.options.today, self.options.leap_day);
        let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        let mut min_age: Option<u32> = None;
        let mut max_age: Option<i64> = None;
        let mut at_least = |a: u32| min_age = Some(min_age.map_or(a, |m| m.max(a)));
        range.gte.map(clamp).map(&mut at_least);
        range
            .gt
            .map(|v| clamp(v).saturating_add(1))
            .map(&mut at_least);
        range.eq.map(clamp).map(&mut at_least);
        let mut at_most = |a: i64| max_age = Some(max_age.map_or(a, |m| m.min(a)));
        range.lte.map(|v| i64::from(clamp(v))).map(&mut at_most);
        range.lt.map(|v| i64::from(clamp(v)) - 1).map(&mut at_most);
        range.eq.map(|v| i64::from(clamp(v))).map(&mut at_most);
        // age ≥ a ⇔ birth ≤ latest(a);  age ≤ m ⇔ ¬(age ≥ m+1) ⇔ birth > latest(m+1).
        let hi = match min_age {
            None => i64::MAX,
            Some(a) => latest_birth_for_age(today, a, leap_day).map_or(i64::MIN, i64::from),
        };
        let lo = match max_age {
            None => i64::MIN,
            Some(m) if m < 0 => return DaySpan::EMPTY,
            Some(m) => u32::try_from(m + 1)
                .ok()
                .and_then(|a| latest_birth_for_age(today, a, leap_day))
                .map_or(i64::MIN, |d| i64::from(d) + 1),
        };
        if hi == i64::MIN {
            return DaySpan::EMPTY;
        }
        DaySpan::clipped(lo, hi)
    }

    /// Birthdays falling on day `target` in its own year, when that year is within one of D's.
    fn birthday_on(&self, target: i64) -> Node {
        let Some(target) = date_of_day(target) else {
            return Node::Const(false);
        };
        if (target.year() - self.options.today.year()).abs() > 1 {
            return Node::Const(false);
        }
        let ordinal = ordinal_of(target);
        // A Feb 29 birth reads as `feb29_as` in the target's year, so a one-day span with that
        // substitution is exactly «birthday(target year) == target».
        Node::Birthday(BirthdaySpan {
            lo: ordinal,
            hi: ordinal,
            wraps: false,
            feb29_as: feb29_in(target.year(), self.options.leap_day),
        })
    }

    /// The year whose February a birthday interval is read in: that of the interval's instance
    /// containing D, or of the next instance when D is outside every instance.
    fn interval_year(&self, from: u16, to: u16) -> i32 {
        let today = self.options.today;
        let d = ordinal_of(today);
        let year = today.year();
        if from <= to {
            if d <= to { year } else { year + 1 }
        } else {
            // The instance starts at `from` in year A and ends at `to` in A + 1.
            let start = if d <= to { year - 1 } else { year };
            if from <= FEB29 { start } else { start + 1 }
        }
    }
}

/// The anchor field: the first booking-date leaf in document order, dynamic rules first.
fn anchor_field(rule: &Rule) -> Option<BookingField> {
    fn walk(rule: &Rule, dynamic: bool) -> Option<BookingField> {
        match rule {
            Rule::All(rules) | Rule::Any(rules) => rules.iter().find_map(|r| walk(r, dynamic)),
            Rule::Not(rule) => walk(rule, dynamic),
            Rule::Date(DateRule::Dynamic(d)) if dynamic => d.field.booking_field(),
            Rule::Date(DateRule::Interval(DateInterval::Booking { field, .. })) if !dynamic => {
                Some(*field)
            }
            _ => None,
        }
    }
    walk(rule, true).or_else(|| walk(rule, false))
}

impl Segment {
    /// Compiles `rule` for the evaluation date, zone and Feb 29 policy of `options`.
    ///
    /// # Errors
    /// [`SegmentError::Rule`] when the rule does not pass [`Rule::validate`] (a rule built in
    /// code can be invalid; a parsed one never is).
    pub fn compile(rule: &Rule, options: &CompileOptions) -> Result<Segment, SegmentError> {
        rule.validate()?;
        let mut compiler = Compiler {
            options,
            today: i64::from(day_number(options.today)),
            symbols: HashMap::new(),
        };
        let root = compiler.node(rule);
        Ok(Segment {
            root,
            options: *options,
            symbols: compiler.symbols,
            anchor: anchor_field(rule),
        })
    }

    /// The options the segment was compiled with.
    pub fn options(&self) -> &CompileOptions {
        &self.options
    }

    /// The booking date that anchors a delivery (see [`BookingMatch::anchor`](crate::BookingMatch::anchor));
    /// `None` when the rule has no booking-date leaf.
    pub fn anchor_field(&self) -> Option<BookingField> {
        self.anchor
    }

    /// Whether the rule has booking-date leaves (and so can match per booking).
    pub fn has_booking_rules(&self) -> bool {
        self.root.has_bookings()
    }

    pub(crate) fn symbol(&self, name: &str) -> Option<Sym> {
        self.symbols.get(name).copied()
    }
}
