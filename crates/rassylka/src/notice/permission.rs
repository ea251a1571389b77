//! Who may send which notice (the ITigris seed's three permissions, and `bonus_accrued`).

use super::{EventKind, NoticeEvent, Notices, Permission, Sender};

/// `Ok` when `sender` may send `event`, else why not.
pub(super) fn check(notices: &Notices, event: &NoticeEvent, sender: &Sender) -> Result<(), String> {
    let needed = match event.kind {
        EventKind::OrderReady => Permission::OrderReady,
        EventKind::BonusAccrued => Permission::BonusAccrued,
        EventKind::Personal => Permission::Personal,
    };
    if !notices.allows(&sender.role, needed) {
        return Err(format!(
            "{} ({}) may not send {}: the role lacks the `{}` permission",
            sender.user,
            sender.role,
            event.kind.as_str(),
            needed.as_str()
        ));
    }
    if let Some(order) = &event.order {
        if order.status != "ready" {
            return Err(format!(
                "the order {} is not ready (its status is `{}`)",
                order.id, order.status
            ));
        }
        let other = match (&order.department, &sender.department) {
            (Some(of_order), Some(of_sender)) => of_order != of_sender,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if other && !notices.allows(&sender.role, Permission::OtherDepartments) {
            return Err(format!(
                "the order {} belongs to {}, not to {}'s department: the role {} lacks the `other_departments` permission",
                order.id,
                order.department.as_deref().unwrap_or_default(),
                sender.user,
                sender.role
            ));
        }
    }
    Ok(())
}
