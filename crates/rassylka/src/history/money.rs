//! Money in JSON: a number with at most two decimals.

use rust_decimal::Decimal;
use serde_json::Value;

/// `amount` rounded half-even to cents, as a JSON number (`4.5`, `1234.56`, `0`).
pub(crate) fn money(amount: Decimal) -> Value {
    let cents = amount.round_dp(2).normalize();
    // Whole amounts stay integers; the shortest float that reads back as the cents otherwise.
    if cents.scale() == 0
        && let Ok(whole) = cents.to_string().parse::<i64>()
    {
        return Value::from(whole);
    }
    cents
        .to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_round_half_even_and_stay_short() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(money(d("4.50")).to_string(), "4.5");
        assert_eq!(money(d("0")).to_string(), "0");
        assert_eq!(money(d("1234.565")).to_string(), "1234.56");
        assert_eq!(money(d("1234.575")).to_string(), "1234.58");
        assert_eq!(money(d("9.00")).to_string(), "9");
        assert_eq!(money(d("0.1")).to_string(), "0.1");
    }
}
