//! Freezing an occurrence: its audience planned once and written to the journal in one
//! transaction, by one worker; the others wait for the commit and then help send.

use std::sync::Arc;

use crate::DispatchError;
use crate::dispatcher::{Rassylka, RunReport};
use crate::mailing::Mailing;
use crate::plan::{Planner, Sink};
use crate::store::OccurrenceRecord;

impl Rassylka {
    /// Freezes the occurrence's audience unless another worker did (or does: then this one
    /// waits for its commit). Returns whether this call froze it.
    pub(crate) async fn freeze(
        &self,
        mailing: &Mailing,
        occurrence: &OccurrenceRecord,
        report: &mut RunReport,
    ) -> Result<bool, DispatchError> {
        let mut planner = Planner::new(
            mailing,
            occurrence.evaluation_date,
            occurrence.fired_at,
            occurrence.key.clone(),
            &self.inner.config.tariffs,
        )?;
        // Before the freeze begins: the journal may have to keep a new signing secret, and
        // the freeze holds the journal's writer.
        self.prepare_consent(
            &mut planner,
            mailing,
            occurrence.fired_at,
            Some(occurrence.id),
        )
        .await?;
        let Some(freeze) = self.store().begin_freeze(occurrence.id, self.now()).await? else {
            return Ok(false);
        };
        let freeze = Arc::new(tokio::sync::Mutex::new(freeze));
        let writer = Arc::clone(&freeze);
        let sink: Sink = Box::new(move |batch| {
            let freeze = Arc::clone(&writer);
            Box::pin(async move { Ok(freeze.lock().await.write(batch).await?) })
        });
        // The whole source is read before anything is sent: without skipping, a malformed line
        // refuses the run and nothing written stays; the occurrence is frozen again by the
        // next run once the input is fixed.
        let (_, problems) = self.stream_plan(&mut planner, sink, false).await?;
        if !problems.is_empty() && !self.inner.config.skip_malformed {
            return Err(DispatchError::MalformedRecipients(problems));
        }
        let freeze = Arc::try_unwrap(freeze)
            .map_err(|_| DispatchError::Source("a freeze write is still running".into()))?
            .into_inner();
        report.listed_again += freeze.commit().await?;
        Ok(true)
    }
}
