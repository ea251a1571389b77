//! Copying a one-time mailing (the ProBonus «Копирование рассылки»): a new draft with a new id
//! and a schedule of «now»; everything else as it was, to be edited.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::{DispatchError, Dispatcher, Mailing, MailingKind, Rassylka};

/// `now` in `zone`, rounded up to the minute, as a schedule's `start`.
fn start_at(now: DateTime<Utc>, zone: chrono_tz::Tz) -> String {
    let local = now.with_timezone(&zone);
    let minute = local.duration_trunc(TimeDelta::minutes(1)).unwrap_or(local);
    let start = if minute < local {
        minute + TimeDelta::minutes(1)
    } else {
        minute
    };
    start.format("%Y-%m-%dT%H:%M").to_string()
}

impl Rassylka {
    /// Copies one-time mailing `mailing_id` as a new draft `new_id` scheduled for now (the
    /// dispatcher's clock, in the mailing's zone, rounded up to the minute), saves and
    /// returns it.
    ///
    /// # Errors
    /// [`DispatchError::Refused`] for a periodic mailing or a `new_id` already taken;
    /// [`DispatchError::UnknownMailing`]; [`DispatchError::InvalidMailing`] for a new id that
    /// is not one; [`DispatchError::Store`] when the journal fails.
    pub async fn copy(&self, mailing_id: &str, new_id: &str) -> Result<Mailing, DispatchError> {
        let record = self.record(mailing_id).await?;
        let original = Mailing::from_json(&record.json)?;
        if original.kind == MailingKind::Periodic {
            return Err(DispatchError::Refused(format!(
                "mailing `{mailing_id}` is periodic: only a one-time mailing can be copied"
            )));
        }
        if self.store().mailing(new_id).await?.is_some() {
            return Err(DispatchError::Refused(format!(
                "mailing `{new_id}` already exists: copy to a new id"
            )));
        }
        let zone = original.zone();
        let mut source: Value = serde_json::from_str(&record.json).map_err(|e| {
            crate::dispatcher::invalid("", format!("the stored mailing is not JSON: {e}"))
        })?;
        if let Some(fields) = source.as_object_mut() {
            fields.insert("id".into(), Value::from(new_id));
            fields.insert(
                "schedule".into(),
                json!({"start": start_at(self.now(), zone), "tz": zone.name(), "every": "once"}),
            );
        }
        let copy = Mailing::from_value(source)?;
        self.save(&copy).await?;
        Ok(copy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_is_now_in_the_zone_rounded_up_to_the_minute() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let moscow = chrono_tz::Europe::Moscow;
        assert_eq!(
            start_at(at("2026-12-31T20:59:01Z"), moscow),
            "2027-01-01T00:00"
        );
        assert_eq!(
            start_at(at("2026-12-31T20:59:00Z"), moscow),
            "2026-12-31T23:59"
        );
        let vladivostok = chrono_tz::Asia::Vladivostok;
        assert_eq!(
            start_at(at("2026-11-30T14:00:00.5Z"), vladivostok),
            "2026-12-01T00:01"
        );
    }
}
