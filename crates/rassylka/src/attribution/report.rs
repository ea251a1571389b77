//! What an attribution says, and its JSON (SPEC §8, `campaign report`).

use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::history::money;

/// How often the mailing's promotion was used in the window.
#[derive(Debug, Clone, PartialEq)]
pub struct PromotionUse {
    /// The promotion.
    pub id: String,
    /// Reached recipients with an in-window purchase that used it.
    pub used: u64,
    /// `used / reached`.
    pub conversion: f64,
    /// The sum of the in-window purchases that used it.
    pub sum: Decimal,
}

/// The control group's figures and the lift they measure.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldoutResult {
    /// Recipients held out.
    pub size: u64,
    /// Those with a purchase in their window (from the occurrence's firing).
    pub converted: u64,
    /// `converted / size`.
    pub conversion: f64,
    /// Conversion minus the control's (may be negative).
    pub lift: f64,
    /// Newcombe's hybrid score 95 % interval of the lift.
    pub lift_ci95: (f64, f64),
    /// Revenue minus the control's revenue scaled to the reached audience.
    pub incremental_revenue: Decimal,
}

/// The cumulative conversion `day` days after sending, treated and (with a holdout) control.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DailyConversion {
    /// Days since each recipient's start (1-based).
    pub day: u32,
    /// Share of the reached who bought by then.
    pub treated: f64,
    /// Share of the held out who bought by then.
    pub control: Option<f64>,
}

/// The figures of SPEC §7f for one mailing or activity.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributionReport {
    /// The window's length in days.
    pub window_days: u32,
    /// Recipients with at least one sent delivery.
    pub reached: u64,
    /// Reached recipients with a purchase in their window.
    pub converted: u64,
    /// `converted / reached` (0 when nobody was reached).
    pub conversion: f64,
    /// In-window purchases of the converted, summed.
    pub revenue: Decimal,
    /// Their count.
    pub purchases: u64,
    /// `revenue / purchases`; `None` without purchases.
    pub average_check: Option<Decimal>,
    /// The reached recipients' average purchase in the `N` days before their reach.
    pub average_check_before: Option<Decimal>,
    /// What sending cost (the journal's sent rows).
    pub cost_sending: Decimal,
    /// Bonus points accrued × their value.
    pub cost_bonus: Decimal,
    /// Both.
    pub cost_total: Decimal,
    /// `(revenue − cost) / cost`; `None` when the cost is zero.
    pub roi: Option<f64>,
    /// When the mailing names a promotion.
    pub promotion: Option<PromotionUse>,
    /// When recipients were held out.
    pub holdout: Option<HoldoutResult>,
    /// Day by day, for the chart.
    pub daily: Vec<DailyConversion>,
}

fn optional_money(amount: Option<Decimal>) -> Value {
    amount.map_or(Value::Null, money)
}

impl AttributionReport {
    /// The JSON line of `campaign report`: money rounded half-even to cents; rates, ROI, lift
    /// and its interval not rounded.
    pub fn to_json(&self) -> Value {
        json!({
            "reached": self.reached,
            "converted": self.converted,
            "conversion": self.conversion,
            "revenue": money(self.revenue),
            "purchases": self.purchases,
            "average_check": optional_money(self.average_check),
            "average_check_before": optional_money(self.average_check_before),
            "cost": {
                "sending": money(self.cost_sending),
                "bonus": money(self.cost_bonus),
                "total": money(self.cost_total),
            },
            "roi": self.roi,
            "promotion": self.promotion.as_ref().map(|p| json!({
                "id": p.id,
                "used": p.used,
                "conversion": p.conversion,
                "sum": money(p.sum),
            })),
            "holdout": self.holdout.as_ref().map(|h| json!({
                "size": h.size,
                "converted": h.converted,
                "conversion": h.conversion,
                "lift": h.lift,
                "lift_ci95": [h.lift_ci95.0, h.lift_ci95.1],
                "incremental_revenue": money(h.incremental_revenue),
            })),
        })
    }
}
