//! Building a [`Rassylka`]: one [`Config`] and the parts it runs on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rassylka_channels::Channel;
use rassylka_model::ChannelKind;
use rust_decimal::Decimal;

use super::{Inner, ProgressHook, Rassylka};
use crate::store::Store;
use crate::{BonusLedger, Clock, DispatchError, Problem, RecipientSource, SystemClock};

/// How a dispatcher sends: the settings of [`RassylkaBuilder`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Price per SMS segment, or per message on other channels.
    pub tariffs: BTreeMap<ChannelKind, Decimal>,
    /// Sends in flight at once (at least 1); also the most deliveries a crash can leave
    /// «unknown».
    pub concurrency: usize,
    /// Attempts per delivery before a transient failure becomes final.
    pub max_attempts: u32,
    /// How long a run waits in-process for retries and short pauses before returning with
    /// deliveries still queued.
    pub max_wait: Duration,
    /// Journal unreadable recipient records as skipped instead of refusing to run.
    pub skip_malformed: bool,
    /// The first and the longest wait between attempts of a transient failure.
    pub backoff: (Duration, Duration),
    /// How long a claim lasts without renewal (renewed every third of it while sending).
    pub lease: Duration,
    /// How often a sending worker reads again what the journal says the channels' daily and
    /// monthly provider limits have spent, so other workers' sends count against them.
    pub usage_refresh: Duration,
    /// This worker's id in the journal; unique per process by default.
    pub worker_id: String,
    /// Deliveries written per journal transaction while freezing: each commit rewrites the
    /// pages it touched, so fewer, larger ones cost less; two batches are in memory at once.
    pub freeze_batch: usize,
    /// How service notices are sent and who may send them (SPEC §7g); none by default.
    pub notices: Option<crate::Notices>,
    /// How advertising e-mail offers an unsubscribe: link, mailto, footer, secrets (SPEC §7c).
    pub unsubscribe: rassylka_channels::UnsubscribeSettings,
    /// At most so many advertising occurrences per recipient in so many days; none by default.
    pub frequency_cap: Option<rassylka_channels::FrequencyCap>,
}

impl Default for Config {
    /// The system's defaults: 32 sends in flight, 5 attempts, no waiting, backoff from 1 s to
    /// 10 min, a 60 s lease, a worker id of host name, process id and a random part.
    fn default() -> Self {
        Config {
            tariffs: BTreeMap::new(),
            concurrency: 32,
            max_attempts: 5,
            max_wait: Duration::ZERO,
            skip_malformed: false,
            backoff: (Duration::from_secs(1), Duration::from_secs(600)),
            lease: Duration::from_secs(60),
            usage_refresh: Duration::from_secs(10),
            worker_id: default_worker_id(),
            freeze_batch: 10_000,
            notices: None,
            unsubscribe: rassylka_channels::UnsubscribeSettings::default(),
            frequency_cap: None,
        }
    }
}

/// `host-pid-random`: tells an operator which process held a row.
fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{host}-{}-{nanos:08x}", std::process::id())
}

/// Builds a [`Rassylka`].
pub struct RassylkaBuilder {
    config: Config,
    source: Option<Arc<dyn RecipientSource>>,
    channels: BTreeMap<ChannelKind, Arc<dyn Channel>>,
    store: Option<Arc<dyn Store>>,
    ledger: Option<Arc<dyn BonusLedger>>,
    clock: Arc<dyn Clock>,
    progress: Option<ProgressHook>,
}

impl std::fmt::Debug for RassylkaBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RassylkaBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Rassylka {
    /// A builder with the system clock and [`Config::default`].
    pub fn builder() -> RassylkaBuilder {
        RassylkaBuilder {
            config: Config::default(),
            source: None,
            channels: BTreeMap::new(),
            store: None,
            ledger: None,
            clock: Arc::new(SystemClock),
            progress: None,
        }
    }
}

impl RassylkaBuilder {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Where recipients come from (required).
    pub fn recipients(self, source: impl RecipientSource + 'static) -> Self {
        self.recipients_shared(Arc::new(source))
    }

    /// Where recipients come from, shared.
    pub fn recipients_shared(mut self, source: Arc<dyn RecipientSource>) -> Self {
        self.source = Some(source);
        self
    }

    /// Adds a channel; one per kind.
    pub fn channel(mut self, channel: Arc<dyn Channel>) -> Self {
        self.channels.insert(channel.kind(), channel);
        self
    }

    /// The journal store (required).
    pub fn store(self, store: impl Store + 'static) -> Self {
        self.store_shared(Arc::new(store))
    }

    /// The journal store, shared.
    pub fn store_shared(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The bonus ledger, needed by mailings with a bonus.
    pub fn ledger(mut self, ledger: Arc<dyn BonusLedger>) -> Self {
        self.ledger = Some(ledger);
        self
    }

    /// The clock that says what is due («now»). Leases run on the store's wall clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Price per SMS segment, or per message on other channels.
    pub fn tariff(mut self, channel: ChannelKind, price: Decimal) -> Self {
        self.config.tariffs.insert(channel, price);
        self
    }

    /// Sends in flight at once (at least 1); also the most deliveries a crash can leave
    /// «unknown».
    pub fn concurrency(mut self, n: usize) -> Self {
        self.config.concurrency = n.max(1);
        self
    }

    /// Attempts per delivery before a transient failure becomes final.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.config.max_attempts = n.max(1);
        self
    }

    /// How long [`Dispatcher::run_due`](crate::Dispatcher::run_due) waits in-process for
    /// retries and short pauses before returning with deliveries still queued.
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.config.max_wait = wait;
        self
    }

    /// The first and the longest wait between attempts of a transient failure (default 1 s
    /// and 10 min; doubled each attempt, with jitter, never shorter than a retry-after).
    pub fn retry_backoff(mut self, first: Duration, longest: Duration) -> Self {
        self.config.backoff = (first, longest.max(first));
        self
    }

    /// How long a claim lasts without renewal (default 60 s, at least 100 ms). A worker
    /// that dies or stalls longer loses its claims to recovery by any other.
    pub fn lease(mut self, length: Duration) -> Self {
        self.config.lease = length.max(Duration::from_millis(100));
        self
    }

    /// How often a sending worker reads again what the journal counts against the channels'
    /// provider limits (default 10 s, at least 10 ms): workers sharing an account overshoot a
    /// limit by at most what they send meanwhile; each read is one count per limited channel.
    pub fn usage_refresh(mut self, every: Duration) -> Self {
        self.config.usage_refresh = every.max(Duration::from_millis(10));
        self
    }

    /// This worker's id in the journal (default: host, process id and a random part).
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.config.worker_id = id.into();
        self
    }

    /// Called with each occurrence's progress as batches of sends finish.
    pub fn on_progress(mut self, hook: ProgressHook) -> Self {
        self.progress = Some(hook);
        self
    }

    /// Journal unreadable recipient records as skipped instead of refusing to run.
    pub fn skip_malformed(mut self, skip: bool) -> Self {
        self.config.skip_malformed = skip;
        self
    }

    /// The notices file: service notices and the permissions to send them.
    pub fn notices(mut self, notices: crate::Notices) -> Self {
        self.config.notices = Some(notices);
        self
    }

    /// How advertising e-mail offers an unsubscribe (its secrets already resolved).
    pub fn unsubscribe(mut self, settings: rassylka_channels::UnsubscribeSettings) -> Self {
        self.config.unsubscribe = settings;
        self
    }

    /// At most `cap.max` advertising occurrences per recipient in any `cap.days` days.
    pub fn frequency_cap(mut self, cap: rassylka_channels::FrequencyCap) -> Self {
        self.config.frequency_cap = Some(cap);
        self
    }

    /// The dispatcher.
    ///
    /// # Errors
    /// [`DispatchError::InvalidMailing`] naming `recipients` or `store` when one is missing.
    pub fn build(self) -> Result<Rassylka, DispatchError> {
        let missing = |what: &str| {
            DispatchError::InvalidMailing(vec![Problem {
                path: what.into(),
                message: "the dispatcher needs one".into(),
            }])
        };
        Ok(Rassylka {
            inner: Arc::new(Inner {
                source: self.source.ok_or_else(|| missing("recipients"))?,
                channels: self.channels,
                store: self.store.ok_or_else(|| missing("store"))?,
                ledger: self.ledger,
                clock: self.clock,
                config: self.config,
                progress: self.progress,
                keys: tokio::sync::OnceCell::new(),
            }),
        })
    }
}
