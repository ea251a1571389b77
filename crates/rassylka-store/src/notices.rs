//! Refused service notices: who tried to send what, and why it was refused.

use chrono::{DateTime, Utc};

/// A service notice that was refused: nothing was sent, and its event id stays unused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeRefusal {
    /// The event's id.
    pub event_id: String,
    /// The event's kind (`order_ready`, `bonus_accrued`, `personal`).
    pub event: String,
    /// Whom it was for.
    pub recipient_id: String,
    /// Who tried to send it.
    pub user: String,
    /// Their role.
    pub role: String,
    /// Their department, when they have one.
    pub department: Option<String>,
    /// Why it was refused.
    pub reason: String,
    /// When.
    pub at: DateTime<Utc>,
}
