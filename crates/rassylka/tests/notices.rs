//! Service notices through the public API (SPEC §7g): permissions, departments, order status,
//! once per event id, priority fallback, the seed's texts exactly, refusals journaled.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rassylka::channels::{Channel, ErrorClass, MemoryChannel};
use rassylka::model::{Address, ChannelKind, PhoneNumber, Recipient};
use rassylka::store::DeliveryStatus;
use rassylka::store::prelude::*;
use rassylka::{
    DispatchError, Dispatcher, ManualClock, MemorySource, NoticeEvent, Notices, Rassylka, Sender,
    SqliteStore,
};

const NOTICES: &str = r#"{"channels": ["sms", "email"], "mode": "priority",
 "templates": {
   "order_ready":   {"dialect": "itigris", "text": ":Уваж: :И: :О:, ваш заказ :ID: готов. Тел. :Tel:",
                     "email": {"subject": "Заказ :ID: готов"}},
   "bonus_accrued": {"dialect": "itigris", "text": ":И:, начислено :НачисленоБонусов: бонусов до :ДатаСгорания:. Баланс: :БалансБонусов:"},
   "personal":      {"dialect": "itigris", "text": ":Уваж: :И:! :text:"}},
 "permissions": {"seller": ["personal", "order_ready"],
                 "manager": ["personal", "order_ready", "bonus_accrued", "other_departments"]}}"#;

fn people() -> Vec<Recipient> {
    [
        // No advertising consent and «no mailings»: a service notice still reaches her.
        r#"{"id": "c-1", "first_name": "Анна", "middle_name": "Сергеевна", "gender": "female", "balance": 1250,
            "consent": {"advertising": false}, "no_mailings": true,
            "contacts": {"phone": "+79161234567", "email": "anna@example.com"}}"#,
        r#"{"id": "c-2", "first_name": "Пётр", "gender": "male", "contacts": {}}"#,
    ]
    .iter()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect()
}

struct World {
    dispatcher: Rassylka,
    store: Arc<SqliteStore>,
    sms: Arc<MemoryChannel>,
    email: Arc<MemoryChannel>,
}

async fn world() -> World {
    let store = Arc::new(SqliteStore::temporary().await.unwrap());
    let sms = Arc::new(MemoryChannel::new(ChannelKind::Sms));
    let email = Arc::new(MemoryChannel::new(ChannelKind::Email));
    let now: DateTime<Utc> = "2026-12-01T09:00:00Z".parse().unwrap();
    let dispatcher = Rassylka::builder()
        .recipients(MemorySource::new(people()))
        .store_shared(store.clone())
        .clock(Arc::new(ManualClock::starting_at(now)))
        .channel(sms.clone() as Arc<dyn Channel>)
        .channel(email.clone() as Arc<dyn Channel>)
        .tariff(ChannelKind::Sms, "4.5".parse().unwrap())
        .notices(Notices::from_json(NOTICES).unwrap())
        .build()
        .unwrap();
    World {
        dispatcher,
        store,
        sms,
        email,
    }
}

fn event(json: &str) -> NoticeEvent {
    NoticeEvent::from_json(json).unwrap()
}

fn sender(role: &str, department: &str) -> Sender {
    Sender::from_json(&format!(
        r#"{{"user": "u-7", "role": "{role}", "department": "{department}"}}"#
    ))
    .unwrap()
}

const ORDER_READY: &str = r#"{"id": "ev-1", "event": "order_ready", "recipient_id": "c-1",
    "order": {"id": "A-553", "status": "ready", "department": "salon-1", "salon_phone": "+7 343 000-00-00"}}"#;

#[tokio::test]
async fn an_order_ready_goes_once_by_sms_in_the_seeds_words() {
    let w = world().await;
    let result = w
        .dispatcher
        .notify(&event(ORDER_READY), &sender("seller", "salon-1"))
        .await
        .unwrap();
    assert_eq!(
        result.to_json(),
        serde_json::json!({"event": "ev-1", "status": "sent", "channel": "sms",
            "key": "notice:ev-1/v1/2026-12-01T12:00/c-1/sms", "cost": 4.5})
    );
    let sent = w.sms.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].message.text,
        "Уважаемая Анна Сергеевна, ваш заказ A-553 готов. Тел. +7 343 000-00-00"
    );
    // The same event again: the same answer, nothing sent.
    let again = w
        .dispatcher
        .notify(&event(ORDER_READY), &sender("seller", "salon-1"))
        .await
        .unwrap();
    assert_eq!(again, result);
    assert_eq!(w.sms.sent().len(), 1);
    assert!(w.email.sent().is_empty());
}

#[tokio::test]
async fn priority_falls_back_from_sms_to_email_with_its_subject() {
    let w = world().await;
    w.sms.fail_for(
        Address::Phone(PhoneNumber::parse("+79161234567").unwrap()),
        ErrorClass::Rejected,
    );
    let result = w
        .dispatcher
        .notify(&event(ORDER_READY), &sender("seller", "salon-1"))
        .await
        .unwrap();
    assert_eq!(result.status, DeliveryStatus::Sent);
    assert_eq!(result.channel, Some(ChannelKind::Email));
    assert_eq!(result.cost, rust_decimal::Decimal::ZERO);
    let mail = &w.email.sent()[0].message;
    assert_eq!(mail.subject.as_deref(), Some("Заказ A-553 готов"));
    assert_eq!(
        mail.text,
        "Уважаемая Анна Сергеевна, ваш заказ A-553 готов. Тел. +7 343 000-00-00"
    );
}

#[tokio::test]
async fn bonus_and_personal_notices_render_their_event_values() {
    let w = world().await;
    let bonus = event(
        r#"{"id": "ev-2", "event": "bonus_accrued", "recipient_id": "c-1", "amount": 300,
            "expires_on": "2027-01-01", "balance": 1550, "expiring": 200}"#,
    );
    w.dispatcher
        .notify(&bonus, &sender("manager", "salon-1"))
        .await
        .unwrap();
    let personal = event(
        r#"{"id": "ev-3", "event": "personal", "recipient_id": "c-1", "text": "Ваши линзы пришли, ждём вас в салоне."}"#,
    );
    w.dispatcher
        .notify(&personal, &sender("seller", "salon-1"))
        .await
        .unwrap();
    let texts: Vec<String> = w.sms.sent().into_iter().map(|s| s.message.text).collect();
    assert_eq!(
        texts,
        [
            "Анна, начислено 300 бонусов до 01.01.2027. Баланс: 1 550",
            "Уважаемая Анна! Ваши линзы пришли, ждём вас в салоне."
        ]
    );
}

#[tokio::test]
async fn refusals_send_nothing_are_journaled_and_leave_the_event_id_unused() {
    let w = world().await;
    let bonus =
        event(r#"{"id": "ev-2", "event": "bonus_accrued", "recipient_id": "c-1", "amount": 300}"#);
    let refused = w
        .dispatcher
        .notify(&bonus, &sender("seller", "salon-1"))
        .await;
    let Err(DispatchError::Refused(reason)) = refused else {
        panic!("a seller sent bonuses: {refused:?}");
    };
    assert!(reason.contains("bonus_accrued"), "{reason}");

    let elsewhere = event(
        r#"{"id": "ev-4", "event": "order_ready", "recipient_id": "c-1",
            "order": {"id": "B-1", "status": "ready", "department": "salon-2"}}"#,
    );
    let refused = w
        .dispatcher
        .notify(&elsewhere, &sender("seller", "salon-1"))
        .await;
    assert!(
        matches!(&refused, Err(DispatchError::Refused(r)) if r.contains("other_departments")),
        "{refused:?}"
    );
    let not_ready = event(
        r#"{"id": "ev-5", "event": "order_ready", "recipient_id": "c-1",
            "order": {"id": "B-2", "status": "in_work", "department": "salon-1"}}"#,
    );
    let refused = w
        .dispatcher
        .notify(&not_ready, &sender("manager", "salon-1"))
        .await;
    assert!(
        matches!(&refused, Err(DispatchError::Refused(r)) if r.contains("not ready")),
        "{refused:?}"
    );
    let stranger =
        event(r#"{"id": "ev-6", "event": "personal", "recipient_id": "c-9", "text": "?"}"#);
    assert!(
        w.dispatcher
            .notify(&stranger, &sender("seller", "salon-1"))
            .await
            .is_err()
    );
    let nobody =
        event(r#"{"id": "ev-7", "event": "personal", "recipient_id": "c-1", "text": "?"}"#);
    assert!(
        w.dispatcher
            .notify(&nobody, &sender("intern", "salon-1"))
            .await
            .is_err()
    );
    let order_by_intern = w
        .dispatcher
        .notify(&event(ORDER_READY), &sender("intern", "salon-1"))
        .await;
    assert!(
        matches!(&order_by_intern, Err(DispatchError::Refused(r)) if r.contains("`order_ready`")),
        "{order_by_intern:?}"
    );
    assert!(w.sms.sent().is_empty() && w.email.sent().is_empty());
    let journaled = w.store.refusals(None).await.unwrap();
    let ids: Vec<&str> = journaled.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(ids, ["ev-2", "ev-4", "ev-5", "ev-6", "ev-7", "ev-1"]);
    assert_eq!(journaled[0].user, "u-7");
    assert_eq!(journaled[0].role, "seller");
    assert!(w.store.mailing("notice:ev-2").await.unwrap().is_none());

    // Allowed now: the event id was not used up; another department's order with the
    // permission for it.
    let sent = w
        .dispatcher
        .notify(&bonus, &sender("manager", "salon-1"))
        .await
        .unwrap();
    assert_eq!(sent.status, DeliveryStatus::Sent);
    let sent = w
        .dispatcher
        .notify(&elsewhere, &sender("manager", "salon-1"))
        .await
        .unwrap();
    assert_eq!(sent.status, DeliveryStatus::Sent);
    assert_eq!(w.sms.sent().len(), 2);
}

#[tokio::test]
async fn a_recipient_without_a_contact_is_journaled_skipped() {
    let w = world().await;
    let personal = event(
        r#"{"id": "ev-8", "event": "personal", "recipient_id": "c-2", "text": "Здравствуйте"}"#,
    );
    let result = w
        .dispatcher
        .notify(&personal, &sender("seller", "salon-1"))
        .await
        .unwrap();
    assert_eq!(result.status, DeliveryStatus::Skipped);
    assert!(w.sms.sent().is_empty());
}

#[test]
fn bad_notices_events_and_senders_say_where() {
    let bad = |e: DispatchError| e.to_string();
    let unknown = bad(Notices::from_json(&NOTICES.replace("\"mode\"", "\"moda\"")).unwrap_err());
    assert!(unknown.contains("moda: unknown key"), "{unknown}");
    let template = bad(Notices::from_json(&NOTICES.replace(":Tel:", ":Телефон:")).unwrap_err());
    assert!(
        template.contains("templates.order_ready.text: 1:"),
        "{template}"
    );
    let permission = bad(Notices::from_json(
        &NOTICES.replace("\"bonus_accrued\", \"other", "\"bonus\", \"other"),
    )
    .unwrap_err());
    assert!(
        permission.contains("permissions.manager[2]"),
        "{permission}"
    );
    let event = bad(
        NoticeEvent::from_json(r#"{"id": "ev-1", "event": "order_ready", "recipient_id": "c-1", "order": {"id": "A", "status": "ready", "colour": "red"}}"#)
            .unwrap_err(),
    );
    assert!(event.contains("order.colour: unknown key"), "{event}");
    let kind = bad(NoticeEvent::from_json(
        r#"{"id": "ev-1", "event": "party", "recipient_id": "c-1"}"#,
    )
    .unwrap_err());
    assert!(kind.contains("event: required"), "{kind}");
    let sender = bad(Sender::from_json(r#"{"user": "u-7"}"#).unwrap_err());
    assert!(sender.contains("role: required"), "{sender}");
}

#[tokio::test]
async fn an_sms_gateway_out_of_money_pauses_the_notice_with_the_reason() {
    let w = world().await;
    w.sms.fail_always(Some(ErrorClass::Quota));
    let result = w
        .dispatcher
        .notify(&event(ORDER_READY), &sender("seller", "salon-1"))
        .await
        .unwrap();
    assert_eq!(result.status, DeliveryStatus::Queued, "{result:?}");
    assert!(result.reason.is_some(), "{result:?}");
    assert!(
        w.email.sent().is_empty(),
        "a pause is not a reason to fall back"
    );
    // Asked again before the pause ends: still waiting, nothing sent twice or elsewhere.
    w.sms.fail_always(None);
    let again = w
        .dispatcher
        .notify(&event(ORDER_READY), &sender("seller", "salon-1"))
        .await
        .unwrap();
    assert_eq!(again.status, DeliveryStatus::Queued);
    assert!(w.sms.sent().is_empty() && w.email.sent().is_empty());
}
