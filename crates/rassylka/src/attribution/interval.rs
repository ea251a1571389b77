//! Confidence intervals for proportions: Wilson's score interval, and Newcombe's hybrid score
//! interval for a difference of two independent proportions (method 10 of Newcombe, «Interval
//! estimation for the difference between independent proportions», Statistics in Medicine
//! 1998).

/// z for a two-sided 95 % interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// Wilson's score interval for `successes` of `trials` (`(0, 1)` when there are none).
pub fn wilson(successes: u64, trials: u64, z: f64) -> (f64, f64) {
    if trials == 0 {
        return (0.0, 1.0);
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = z * z;
    let centre = 2.0 * n * p + z2;
    let spread = z * (z2 + 4.0 * n * p * (1.0 - p)).sqrt();
    let denominator = 2.0 * (n + z2);
    (
        ((centre - spread) / denominator).max(0.0),
        ((centre + spread) / denominator).min(1.0),
    )
}

/// Newcombe's hybrid score interval for `x1/n1 − x2/n2`: with Wilson intervals `(l1, u1)` and
/// `(l2, u2)`, `δ − √((p1 − l1)² + (u2 − p2)²)` to `δ + √((u1 − p1)² + (p2 − l2)²)`.
pub fn newcombe_difference(x1: u64, n1: u64, x2: u64, n2: u64, z: f64) -> (f64, f64) {
    let rate = |x: u64, n: u64| if n == 0 { 0.0 } else { x as f64 / n as f64 };
    let (p1, p2) = (rate(x1, n1), rate(x2, n2));
    let (l1, u1) = wilson(x1, n1, z);
    let (l2, u2) = wilson(x2, n2, z);
    let delta = p1 - p2;
    (
        delta - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt(),
        delta + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: (f64, f64), want: (f64, f64)) {
        assert!(
            (got.0 - want.0).abs() < 5e-5 && (got.1 - want.1).abs() < 5e-5,
            "{got:?} against {want:?}"
        );
    }

    /// Newcombe (1998), Table II, method 10, and the Wilson intervals it is built from.
    #[test]
    fn the_published_worked_examples() {
        close(wilson(0, 10, Z95), (0.0, 0.2775));
        close(wilson(0, 20, Z95), (0.0, 0.1611));
        close(newcombe_difference(56, 70, 48, 80, Z95), (0.0524, 0.3339));
        close(newcombe_difference(9, 10, 3, 10, Z95), (0.1705, 0.8090));
        close(newcombe_difference(0, 10, 0, 20, Z95), (-0.1611, 0.2775));
        close(newcombe_difference(0, 10, 0, 10, Z95), (-0.2775, 0.2775));
    }

    #[test]
    fn no_trials_say_nothing() {
        assert_eq!(wilson(0, 0, Z95), (0.0, 1.0));
        let (lo, hi) = newcombe_difference(0, 0, 0, 0, Z95);
        assert!(lo <= 0.0 && hi >= 0.0);
    }
}
