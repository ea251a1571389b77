//! The frequency cap's window (SPEC §7c): which earlier advertising occurrences count for
//! one occurrence being planned.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use rassylka_model::MessageClass;

use crate::DispatchError;
use crate::dispatcher::Rassylka;
use crate::mailing::Mailing;
use crate::store::OccurrenceState;

/// The occurrences that count against the cap for one occurrence, and how many are allowed.
#[derive(Debug, Clone, Default)]
pub(crate) struct CapWindow {
    /// Advertising occurrences a recipient may already have had.
    pub(crate) max: u32,
    /// The other advertising occurrences less than the cap's `days` away.
    pub(crate) occurrences: Vec<i64>,
}

impl Rassylka {
    /// The cap's window for an occurrence of `mailing` fired at `fired_at` (`except`: its own
    /// row, once it has one); `None` when no cap is set or the mailing is a service one.
    ///
    /// Every other advertising occurrence less than `days` away counts, before or after: a
    /// recipient let through here then has at most `max` in any window of `days` days that
    /// holds this occurrence, whatever order occurrences are frozen in.
    pub(crate) async fn cap_window(
        &self,
        mailing: &Mailing,
        fired_at: DateTime<Utc>,
        except: Option<i64>,
    ) -> Result<Option<CapWindow>, DispatchError> {
        let Some(cap) = self.inner.config.frequency_cap else {
            return Ok(None);
        };
        if mailing.class != MessageClass::Advertising {
            return Ok(None);
        }
        let store = self.store();
        let reach = TimeDelta::days(i64::from(cap.days));
        // Only the occurrences near this one are read, and only their mailings looked at.
        let near = store
            .occurrences_between(fired_at - reach, fired_at + reach)
            .await?;
        let mut classes: HashMap<String, bool> = HashMap::new();
        let mut occurrences = Vec::new();
        for o in near {
            if Some(o.id) == except || o.state == OccurrenceState::Missed {
                continue;
            }
            let advertising = match classes.get(&o.mailing_id) {
                Some(advertising) => *advertising,
                None => {
                    // A stored mailing that no longer reads counts as advertising: the cap
                    // errs on the side of sending less.
                    let advertising = store.mailing(&o.mailing_id).await?.is_none_or(|record| {
                        Mailing::from_json(&record.json)
                            .map_or(true, |m| m.class == MessageClass::Advertising)
                    });
                    classes.insert(o.mailing_id.clone(), advertising);
                    advertising
                }
            };
            if advertising {
                occurrences.push(o.id);
            }
        }
        Ok(Some(CapWindow {
            max: cap.max,
            occurrences,
        }))
    }
}
