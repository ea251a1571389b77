use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;
use rassylka_model::{Address, ChannelKind};

use crate::segments::sms_segments;
use crate::{Channel, ChannelError, CostEstimate, ErrorClass, Message, Receipt, Verification};

/// A message the [`MemoryChannel`] accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// Where it went.
    pub to: Address,
    /// What was sent.
    pub message: Message,
}

#[derive(Default)]
struct MemoryState {
    sent: Vec<SentMessage>,
    fail_next: VecDeque<ErrorClass>,
    fail_always: Option<ErrorClass>,
    fail_for: HashMap<Address, ErrorClass>,
}

/// A channel that keeps what it is given in memory, for the tests of applications that use the
/// dispatcher. It can be told to fail with a given class: for the next sends, for every send,
/// or for one address.
pub struct MemoryChannel {
    kind: ChannelKind,
    state: Mutex<MemoryState>,
}

impl MemoryChannel {
    /// An empty channel of `kind` that accepts everything.
    pub fn new(kind: ChannelKind) -> Self {
        MemoryChannel {
            kind,
            state: Mutex::new(MemoryState::default()),
        }
    }

    /// Every message accepted so far, in order.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.state.lock().unwrap().sent.clone()
    }

    /// Makes the next send fail with `class`; calls queue up.
    pub fn fail_next(&self, class: ErrorClass) {
        self.state.lock().unwrap().fail_next.push_back(class);
    }

    /// Makes every send fail with `class`, or succeed again with `None`.
    pub fn fail_always(&self, class: Option<ErrorClass>) {
        self.state.lock().unwrap().fail_always = class;
    }

    /// Makes every send to `to` fail with `class`.
    pub fn fail_for(&self, to: Address, class: ErrorClass) {
        self.state.lock().unwrap().fail_for.insert(to, class);
    }
}

impl std::fmt::Debug for MemoryChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryChannel")
            .field("kind", &self.kind)
            .field("sent", &self.state.lock().unwrap().sent.len())
            .finish()
    }
}

#[async_trait]
impl Channel for MemoryChannel {
    fn kind(&self) -> ChannelKind {
        self.kind
    }

    async fn send(&self, to: &Address, message: &Message) -> Result<Receipt, ChannelError> {
        let mut state = self.state.lock().unwrap();
        let failure = state
            .fail_next
            .pop_front()
            .or(state.fail_always)
            .or_else(|| state.fail_for.get(to).copied());
        if let Some(class) = failure {
            return Err(ChannelError::new(class, "failure requested by the test"));
        }
        state.sent.push(SentMessage {
            to: to.clone(),
            message: message.clone(),
        });
        let mut receipt = Receipt::new(format!("memory-{}", state.sent.len()));
        receipt.parts = Some(self.estimate(message).units);
        Ok(receipt)
    }

    async fn verify(&self) -> Result<Verification, ChannelError> {
        Ok(Verification::default())
    }

    fn estimate(&self, message: &Message) -> CostEstimate {
        if self.kind == ChannelKind::Sms {
            CostEstimate::units(sms_segments(&message.text).parts)
        } else {
            CostEstimate::units(1)
        }
    }
}
