//! Who is held out (SPEC §7f): a stable hash of (mailing id, recipient id), so a rerun, a
//! preview and a second worker choose the same people.

use sha2::{Digest, Sha256};

/// Whether `recipient_id` is in the `basis_points`/10 000 share of `mailing_id`'s audience
/// held out.
pub(crate) fn is_held_out(mailing_id: &str, recipient_id: &str, basis_points: u32) -> bool {
    let digest = Sha256::new()
        .chain_update(mailing_id.as_bytes())
        .chain_update([0])
        .chain_update(recipient_id.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) % 10_000 < u64::from(basis_points)
}

/// A mailing's `"holdout": {"percent": P}`: the share of its audience left out to measure the
/// lift against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holdout {
    /// The share in hundredths of a percent (`{"percent": 10}` is 1 000).
    pub basis_points: u32,
}

/// Reads `"holdout"`: `{"percent": P}` with `0 < P < 100` and at most two decimals.
pub(crate) fn read_holdout(
    value: Option<&serde_json::Value>,
) -> Result<Option<Holdout>, Vec<crate::Problem>> {
    use crate::Problem;
    let object = match value {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::Object(object)) => object,
        Some(_) => return Err(vec![Problem::new("holdout", "expected {\"percent\": P}")]),
    };
    let mut problems = crate::error::unknown_keys(object, &["percent"], "holdout");
    let percent = object.get("percent").and_then(serde_json::Value::as_f64);
    let basis_points = match percent {
        // 0.29 × 100 is 28.999999999999996 in binary: compared with the nearest whole.
        Some(p) if p > 0.0 && p < 100.0 && ((p * 100.0) - (p * 100.0).round()).abs() < 1e-9 => {
            Some((p * 100.0).round() as u32)
        }
        Some(_) => {
            problems.push(Problem::new(
                "holdout.percent",
                "expected a share above 0 and below 100, with at most two decimals",
            ));
            None
        }
        None => {
            problems.push(Problem::new("holdout.percent", "required: a number"));
            None
        }
    };
    match basis_points {
        Some(basis_points) if problems.is_empty() => Ok(Some(Holdout { basis_points })),
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_is_kept_and_the_choice_is_stable_per_mailing() {
        let held = (0..100_000)
            .filter(|i| is_held_out("m-1", &format!("c-{i}"), 1_000))
            .count();
        assert!((9_500..10_500).contains(&held), "{held} of 100 000 at 10 %");
        // A larger share keeps everyone a smaller one held out (the draws are nested).
        assert!((0..10_000).all(|i| {
            let id = format!("c-{i}");
            !is_held_out("m-1", &id, 1_000) || is_held_out("m-1", &id, 2_000)
        }));
        let differ = (0..1_000)
            .filter(|i| {
                is_held_out("m-1", &format!("c-{i}"), 5_000)
                    != is_held_out("m-2", &format!("c-{i}"), 5_000)
            })
            .count();
        assert!(differ > 300, "another mailing holds out other people");
        assert!(!is_held_out("m-1", "c-1", 0));
        for (percent, basis_points) in [
            (10.0, 1_000),
            (0.29, 29),
            (2.3, 230),
            (4.35, 435),
            (99.99, 9_999),
        ] {
            let read = read_holdout(Some(&serde_json::json!({"percent": percent}))).unwrap();
            assert_eq!(read, Some(Holdout { basis_points }), "{percent}");
        }
        for bad in [0.0, 100.0, 1.005, -3.0] {
            assert!(
                read_holdout(Some(&serde_json::json!({"percent": bad}))).is_err(),
                "{bad}"
            );
        }
        let unknown =
            read_holdout(Some(&serde_json::json!({"percent": 5, "seed": 1}))).unwrap_err();
        assert_eq!(unknown[0].path, "holdout.seed");
        assert!(is_held_out("m-1", "c-1", 10_000));
    }
}
