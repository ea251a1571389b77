//! The contract's own values: stored names, errors, the key-order watch.

use rassylka_model::ChannelKind;
use rassylka_store::{
    DeliveryStatus, KeyOrder, MailingState, NewDelivery, OccurrenceState, StoreError,
    StoreErrorKind,
};

#[test]
fn stored_names_read_back_and_unknown_ones_are_refused() {
    for status in DeliveryStatus::ALL {
        assert_eq!(
            status.to_string().parse::<DeliveryStatus>().unwrap(),
            status
        );
    }
    for state in MailingState::ALL {
        assert_eq!(state.to_string().parse::<MailingState>().unwrap(), state);
    }
    for state in OccurrenceState::ALL {
        assert_eq!(state.to_string().parse::<OccurrenceState>().unwrap(), state);
    }
    let refused = "delivered".parse::<DeliveryStatus>().unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("unknown delivery status `delivered`"),
        "{refused}"
    );
    assert_eq!(refused.kind(), StoreErrorKind::Invalid);
    assert!(!refused.is_transient());
}

fn planned(recipient: &str, channel: &str) -> NewDelivery {
    NewDelivery {
        delivery_key: format!("m/o/{recipient}/{channel}"),
        recipient_id: recipient.into(),
        channel: channel.parse::<ChannelKind>().ok(),
        address: None,
        booking_id: None,
        group_key: recipient.into(),
        rank: 0,
        status: DeliveryStatus::Queued,
        not_before: None,
        subject: None,
        text: None,
        html: None,
        image: None,
        units: 1,
        cost: None,
        error: None,
    }
}

#[test]
fn key_order_knows_ascending_ids_are_unique_and_doubts_anything_else() {
    let mut order = KeyOrder::default();
    for (r, c) in [("9", "sms"), ("9", "email"), ("10", "sms"), ("11", "sms")] {
        order.observe(&planned(r, c));
    }
    assert!(order.unique(), "shorter ids first, then by text");
    order.observe(&planned("10", "sms"));
    assert!(!order.unique(), "an id seen before");

    let mut twice = KeyOrder::default();
    twice.observe(&planned("a", "sms"));
    twice.observe(&planned("a", "sms"));
    assert!(!twice.unique(), "one recipient with one key twice");
}

#[test]
fn store_errors_say_what_kind_they_are() {
    let busy = StoreError::unavailable("sqlite: database is locked");
    assert!(busy.is_transient() && !busy.is_conflict());
    let lost = StoreError::conflict("the queue changed");
    assert!(lost.is_conflict() && !lost.is_transient());
    let io = std::io::Error::other("disk gone");
    let backend = StoreError::backend("postgres: disk gone").with_source(io);
    assert_eq!(backend.kind(), StoreErrorKind::Backend);
    assert_eq!(
        std::error::Error::source(&backend).map(ToString::to_string),
        Some("disk gone".to_owned())
    );
    assert_eq!(backend.to_string(), "postgres: disk gone");
}
