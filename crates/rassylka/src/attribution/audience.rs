//! The attribution of one mailing or activity: who was reached (and when), who was held out,
//! and the purchases folded in one by one, in memory proportional to the people, never to the
//! purchases.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::interval::{Z95, newcombe_difference};
use super::report::{AttributionReport, DailyConversion, HoldoutResult, PromotionUse};

const DAY_MS: i64 = 86_400_000;

/// A recipient id as a 128-bit fingerprint: two SipHash-1-3 halves with fixed keys. At a
/// million people a collision is about 10⁻²⁷ likely, and the map holds no strings, so a
/// lookup neither follows a pointer nor compares text (that was a third of the time).
pub(crate) fn fingerprint(id: &str) -> u128 {
    let half = |salt: u8| {
        let mut hasher = std::hash::DefaultHasher::new();
        hasher.write_u8(salt);
        hasher.write(id.as_bytes());
        hasher.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

/// The fingerprint is already a hash: its low half is used as it is.
#[derive(Default)]
struct Fingerprinted(u64);

impl Hasher for Fingerprinted {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u128(&mut self, value: u128) {
        self.0 = value as u64;
    }
}

type People = HashMap<u128, Person, BuildHasherDefault<Fingerprinted>>;

/// One person of the report: reached (treated) or held out (control), when their window
/// starts, the first day they bought in it, whether they used the promotion.
#[derive(Debug, Clone, Copy)]
struct Person {
    start_ms: i64,
    treated: bool,
    /// 1-based day of the window of the first purchase in it; 0 for none.
    first_day: u16,
    used_promotion: bool,
}

/// The attribution being computed (SPEC §7f). Give it the reached and the held-out recipients
/// first, then every purchase, then ask for the [`AttributionReport`].
///
/// ```
/// use chrono::{DateTime, Utc};
/// use rassylka::Attribution;
/// use rust_decimal::Decimal;
///
/// let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
/// let mut attribution = Attribution::new(7);
/// attribution.reached("c-1", at("2026-12-01T10:00:00Z"));
/// attribution.reached("c-2", at("2026-12-01T10:00:00Z"));
/// attribution.purchase("c-1", at("2026-12-03T12:00:00Z"), Decimal::from(1500), None);
/// let report = attribution.report(Decimal::ONE);
/// assert_eq!((report.reached, report.converted), (2, 1));
/// assert_eq!(report.conversion, 0.5);
/// ```
#[derive(Debug, Clone)]
pub struct Attribution {
    window_days: u32,
    people: People,
    promotion_id: Option<String>,
    sending_cost: Decimal,
    bonus_points: Decimal,
    revenue: Decimal,
    purchases: u64,
    before_sum: Decimal,
    before_count: u64,
    promotion_sum: Decimal,
    control_revenue: Decimal,
}

impl Attribution {
    /// An attribution with a window of `window_days` days after each recipient's start (at
    /// least 1: a window of 0 days is read as 1).
    pub fn new(window_days: u32) -> Attribution {
        Attribution {
            window_days: window_days.max(1),
            people: People::default(),
            promotion_id: None,
            sending_cost: Decimal::ZERO,
            bonus_points: Decimal::ZERO,
            revenue: Decimal::ZERO,
            purchases: 0,
            before_sum: Decimal::ZERO,
            before_count: 0,
            promotion_sum: Decimal::ZERO,
            control_revenue: Decimal::ZERO,
        }
    }

    /// A recipient reached at `at` (its earliest sent delivery): kept once, from the earliest
    /// reach; a reached recipient is never in the control group.
    pub fn reached(&mut self, recipient_id: &str, at: DateTime<Utc>) {
        let start_ms = at.timestamp_millis();
        let person = self
            .people
            .entry(fingerprint(recipient_id))
            .or_insert_with(|| new_person(start_ms, true));
        if person.treated {
            person.start_ms = person.start_ms.min(start_ms);
        } else {
            person.treated = true;
            person.start_ms = start_ms;
        }
    }

    /// A recipient held out of an occurrence fired at `fired_at` (their window starts there),
    /// unless reached by another mailing of the same report.
    pub fn held_out(&mut self, recipient_id: &str, fired_at: DateTime<Utc>) {
        let start_ms = fired_at.timestamp_millis();
        let person = self
            .people
            .entry(fingerprint(recipient_id))
            .or_insert_with(|| new_person(start_ms, false));
        if !person.treated {
            person.start_ms = person.start_ms.min(start_ms);
        }
    }

    /// The promotion whose use is counted.
    pub fn promotion(&mut self, promotion_id: Option<String>) {
        self.promotion_id = promotion_id;
    }

    /// Adds to the sending cost (the journal's sent rows).
    pub fn add_sending_cost(&mut self, cost: Decimal) {
        self.sending_cost += cost;
    }

    /// Adds bonus points accrued (amount × recipients accrued).
    pub fn add_bonus_points(&mut self, points: Decimal) {
        self.bonus_points += points;
    }

    /// Folds in one purchase; a purchase of nobody in the report changes nothing. Give every
    /// reached and held-out recipient before the first purchase.
    pub fn purchase(
        &mut self,
        recipient_id: &str,
        at: DateTime<Utc>,
        amount: Decimal,
        promotion_id: Option<&str>,
    ) {
        self.purchase_of(fingerprint(recipient_id), at, amount, promotion_id);
    }

    /// Folds in every purchase of a JSON Lines `reader` (SPEC §7f), parsed a few megabytes
    /// at a time on two threads; returns how many.
    ///
    /// # Errors
    /// As [`read_purchases`](crate::read_purchases): the first line that is not a purchase;
    /// the attribution is then incomplete.
    pub fn read_purchases(&mut self, reader: impl std::io::BufRead) -> Result<u64, crate::Problem> {
        super::purchases::for_each_parsed(reader, |p| {
            self.purchase_of(p.key, p.at, p.amount, p.promotion_id.as_deref());
        })
    }

    fn purchase_of(
        &mut self,
        key: u128,
        at: DateTime<Utc>,
        amount: Decimal,
        promotion_id: Option<&str>,
    ) {
        let Some(person) = self.people.get_mut(&key) else {
            return;
        };
        let window_ms = i64::from(self.window_days) * DAY_MS;
        let since = at.timestamp_millis() - person.start_ms;
        let in_window = since > 0 && since <= window_ms;
        if in_window {
            let day = u16::try_from((since + DAY_MS - 1) / DAY_MS).unwrap_or(u16::MAX);
            if person.first_day == 0 || day < person.first_day {
                person.first_day = day;
            }
            if !person.treated {
                self.control_revenue += amount;
                return;
            }
            self.revenue += amount;
            self.purchases += 1;
            if promotion_id.is_some() && promotion_id == self.promotion_id.as_deref() {
                person.used_promotion = true;
                self.promotion_sum += amount;
            }
        } else if person.treated && since < 0 && since >= -window_ms {
            // `[start − N days, start)`: a purchase at the very instant of the reach is in
            // neither this nor the window.
            self.before_sum += amount;
            self.before_count += 1;
        }
    }

    /// The figures, with bonus points worth `bonus_value` each.
    pub fn report(&self, bonus_value: Decimal) -> AttributionReport {
        let days = usize::from(u16::try_from(self.window_days).unwrap_or(u16::MAX));
        let mut treated_by_day = vec![0_u64; days + 1];
        let mut control_by_day = vec![0_u64; days + 1];
        let (mut reached, mut converted, mut used) = (0_u64, 0_u64, 0_u64);
        let (mut control, mut control_converted) = (0_u64, 0_u64);
        for person in self.people.values() {
            let day = usize::from(person.first_day).min(days);
            if person.treated {
                reached += 1;
                if person.first_day > 0 {
                    converted += 1;
                    treated_by_day[day] += 1;
                }
                used += u64::from(person.used_promotion);
            } else {
                control += 1;
                if person.first_day > 0 {
                    control_converted += 1;
                    control_by_day[day] += 1;
                }
            }
        }
        let rate = |x: u64, n: u64| if n == 0 { 0.0 } else { x as f64 / n as f64 };
        let conversion = rate(converted, reached);
        let bonus = self.bonus_points * bonus_value;
        let total = self.sending_cost + bonus;
        let roi = (!total.is_zero())
            .then(|| ((self.revenue - total) / total).to_f64())
            .flatten();
        let promotion = self.promotion_id.as_ref().map(|id| PromotionUse {
            id: id.clone(),
            used,
            conversion: rate(used, reached),
            sum: self.promotion_sum,
        });
        let holdout = (control > 0).then(|| {
            let control_conversion = rate(control_converted, control);
            let incremental = self.revenue
                - self.control_revenue * Decimal::from(reached) / Decimal::from(control);
            HoldoutResult {
                size: control,
                converted: control_converted,
                conversion: control_conversion,
                lift: conversion - control_conversion,
                lift_ci95: newcombe_difference(converted, reached, control_converted, control, Z95),
                incremental_revenue: incremental,
            }
        });
        let (mut treated_so_far, mut control_so_far) = (0, 0);
        let daily = (1..=days)
            .map(|day| {
                treated_so_far += treated_by_day[day];
                control_so_far += control_by_day[day];
                DailyConversion {
                    day: u32::try_from(day).unwrap_or(u32::MAX),
                    treated: rate(treated_so_far, reached),
                    control: (control > 0).then(|| rate(control_so_far, control)),
                }
            })
            .collect();
        AttributionReport {
            window_days: self.window_days,
            reached,
            converted,
            conversion,
            revenue: self.revenue,
            purchases: self.purchases,
            average_check: (self.purchases > 0)
                .then(|| self.revenue / Decimal::from(self.purchases)),
            average_check_before: (self.before_count > 0)
                .then(|| self.before_sum / Decimal::from(self.before_count)),
            cost_sending: self.sending_cost,
            cost_bonus: bonus,
            cost_total: total,
            roi,
            promotion,
            holdout,
            daily,
        }
    }
}

fn new_person(start_ms: i64, treated: bool) -> Person {
    Person {
        start_ms,
        treated,
        first_day: 0,
        used_promotion: false,
    }
}
