//! Unsubscribes, links and frequency caps through the public API (SPEC §7c), on a real
//! SQLite journal and the in-memory channels.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rassylka::channels::{MemoryChannel, Secret, UnsubscribeSettings};
use rassylka::model::{ChannelKind, Recipient};
use rassylka::store::DeliveryStatus;
use rassylka::store::prelude::*;
use rassylka::{
    DispatchError, Dispatcher, Mailing, ManualClock, MemorySource, Rassylka, RassylkaBuilder,
    RecipientSource, SqliteStore, UnsubscribeKeys, UnsubscribeSource,
};

pub(crate) fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn people() -> Vec<Recipient> {
    [
        r#"{"id": "a", "first_name": "Анна", "consent": {"advertising": true}, "contacts": {"email": "anna@example.com", "phone": "+79160000001"}}"#,
        r#"{"id": "b", "first_name": "Борис", "timezone": "Asia/Kamchatka", "consent": {"advertising": true}, "contacts": {"email": "boris@example.com"}}"#,
        r#"{"id": "c", "first_name": "Вера", "consent": {"advertising": true}, "contacts": {"email": "vera@example.com"}}"#,
    ]
    .iter()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect()
}

pub(crate) struct World {
    pub(crate) dispatcher: Rassylka,
    store: Arc<SqliteStore>,
    pub(crate) clock: Arc<ManualClock>,
    email: Arc<MemoryChannel>,
    sms: Arc<MemoryChannel>,
    source: Arc<MemorySource>,
}

pub(crate) async fn world(tweak: impl FnOnce(RassylkaBuilder) -> RassylkaBuilder) -> World {
    let store = Arc::new(SqliteStore::temporary().await.unwrap());
    let clock = Arc::new(ManualClock::starting_at(at("2026-12-01T12:00:00+03:00")));
    let email = Arc::new(MemoryChannel::new(ChannelKind::Email));
    let sms = Arc::new(MemoryChannel::new(ChannelKind::Sms));
    let source = Arc::new(MemorySource::new(people()));
    let builder = Rassylka::builder()
        .recipients_shared(source.clone())
        .store_shared(store.clone())
        .clock(clock.clone())
        .channel(email.clone())
        .channel(sms.clone());
    World {
        dispatcher: tweak(builder).build().unwrap(),
        store,
        clock,
        email,
        sms,
        source,
    }
}

/// A one-time mailing `id` of `class` at `start` (Moscow time) by e-mail, with `content`.
pub(crate) fn mailing(id: &str, class: &str, start: &str, content: &str) -> Mailing {
    Mailing::from_json(&format!(
        r#"{{"id": "{id}", "class": "{class}", "channels": ["email"],
            "schedule": {{"start": "{start}", "tz": "Europe/Moscow", "every": "once"}},
            "content": {{"email": {content}}}}}"#
    ))
    .unwrap()
}

pub(crate) const LETTER: &str =
    r#"{"subject": "Скидки", "html": "<html><body><p>{first_name}, скидка 20%</p></body></html>"}"#;

pub(crate) async fn send(w: &World, m: &Mailing, now: &str) {
    w.clock.set(at(now));
    w.dispatcher.save(m).await.unwrap();
    w.dispatcher.confirm(&m.id).await.unwrap();
    w.dispatcher.run_mailing(&m.id).await.unwrap();
}

/// (recipient, status, reason) of a mailing's only occurrence.
pub(crate) async fn journal(
    w: &World,
    mailing_id: &str,
) -> Vec<(String, DeliveryStatus, Option<String>)> {
    let occurrence = w
        .dispatcher
        .occurrences(mailing_id)
        .await
        .unwrap()
        .remove(0);
    w.store
        .deliveries(occurrence.id, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.planned.recipient_id, d.planned.status, d.planned.error))
        .collect()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn advertising_email_carries_the_headers_and_the_footer_and_service_email_none() {
    let w = world(|b| {
        b.unsubscribe(UnsubscribeSettings {
            url: Some("https://shop.example/u/{token}".into()),
            mailto: Some("unsubscribe@shop.example".into()),
            ..UnsubscribeSettings::default()
        })
    })
    .await;
    send(
        &w,
        &mailing("ads", "advertising", "2026-12-01T10:00", LETTER),
        "2026-12-01T10:01:00+03:00",
    )
    .await;
    let sent = w.email.sent();
    assert_eq!(sent.len(), 3);
    let anna = sent
        .iter()
        .find(|s| s.to.to_string() == "anna@example.com")
        .unwrap();
    let link = w.dispatcher.unsubscribe_link("ads", "a").await.unwrap();
    assert!(link.starts_with("https://shop.example/u/"), "{link}");
    let headers = &anna.message.headers;
    let list = header(headers, "List-Unsubscribe").unwrap();
    assert!(
        list.starts_with(&format!(
            "<{link}>, <mailto:unsubscribe@shop.example?subject=unsubscribe-"
        )),
        "{list}"
    );
    assert_eq!(
        header(headers, "List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    assert_eq!(header(headers, "List-Id"), Some("ads"));
    let html = anna.message.html.as_deref().unwrap();
    assert!(html.contains(&format!("<a href=\"{link}\">")), "{html}");
    assert!(
        html.ends_with("</p></body></html>"),
        "the footer goes inside the body: {html}"
    );
    // Each recipient's link is their own.
    let boris = sent
        .iter()
        .find(|s| s.to.to_string() == "boris@example.com")
        .unwrap();
    assert!(!boris.message.html.as_deref().unwrap().contains(&link));

    send(
        &w,
        &mailing("receipt", "service", "2026-12-01T11:00", LETTER),
        "2026-12-01T11:01:00+03:00",
    )
    .await;
    let receipt = w.email.sent().into_iter().skip(3).collect::<Vec<_>>();
    assert_eq!(receipt.len(), 3);
    for s in receipt {
        assert!(
            s.message.headers.is_empty(),
            "service e-mail: {:?}",
            s.message.headers
        );
        assert!(!s.message.html.as_deref().unwrap().contains("Отписаться"));
    }
}

#[tokio::test]
async fn a_template_that_places_the_link_gets_no_footer_and_every_channel_can_place_it() {
    let w = world(|b| b).await;
    let own = r#"{"subject": "Скидки", "text": "Скидка 20%. Отписаться: {unsubscribe_url}", "html": "<p>Скидка 20%</p><p><a href=\"{unsubscribe_url}\">отписаться</a></p>"}"#;
    send(
        &w,
        &mailing("ads", "advertising", "2026-12-01T10:00", own),
        "2026-12-01T10:01:00+03:00",
    )
    .await;
    let link = w.dispatcher.unsubscribe_link("ads", "a").await.unwrap();
    assert!(
        link.starts_with("http://localhost:8080/u/"),
        "the default: {link}"
    );
    let anna = w
        .email
        .sent()
        .into_iter()
        .find(|s| s.to.to_string() == "anna@example.com")
        .unwrap();
    assert_eq!(anna.message.text, format!("Скидка 20%. Отписаться: {link}"));
    let html = anna.message.html.unwrap();
    assert_eq!(
        html,
        format!("<p>Скидка 20%</p><p><a href=\"{link}\">отписаться</a></p>")
    );
    assert!(header(&anna.message.headers, "List-Unsubscribe").is_some());

    let sms = Mailing::from_json(
        r#"{"id": "sms-ads", "class": "advertising", "channels": ["sms"],
            "schedule": {"start": "2026-12-01T10:30", "tz": "Europe/Moscow", "every": "once"},
            "content": {"default": {"dialect": "bonusplus", "text": "Скидка! Отписка: [ОТПИСКА]"}}}"#,
    )
    .unwrap();
    send(&w, &sms, "2026-12-01T10:31:00+03:00").await;
    let link = w.dispatcher.unsubscribe_link("sms-ads", "a").await.unwrap();
    assert_eq!(
        w.sms.sent()[0].message.text,
        format!("Скидка! Отписка: {link}")
    );
}

#[tokio::test]
async fn an_unsubscribe_suppresses_advertising_from_the_next_freeze_until_resubscribed() {
    let w = world(|b| b).await;
    send(
        &w,
        &mailing("first", "advertising", "2026-12-01T10:00", LETTER),
        "2026-12-01T10:01:00+03:00",
    )
    .await;
    let link = w.dispatcher.unsubscribe_link("first", "b").await.unwrap();
    let token = link.rsplit('/').next().unwrap();

    let page = w.dispatcher.unsubscribe_page(token).await.unwrap();
    assert_eq!(page.masked_address.as_deref(), Some("b***@example.com"));
    assert!(!page.unsubscribed);
    assert!(
        w.dispatcher.unsubscribes(None).await.unwrap().is_empty(),
        "a look changes nothing"
    );

    w.clock.set(at("2026-12-01T10:30:00+03:00"));
    let done = w
        .dispatcher
        .unsubscribe(token, UnsubscribeSource::OneClick)
        .await
        .unwrap();
    assert!(done.new);
    assert_eq!(done.record.channel, Some(ChannelKind::Email));
    assert_eq!(done.record.source, "one_click");
    assert_eq!(done.source_error, None);
    assert!(
        w.source
            .recipients()
            .iter()
            .any(|r| r.id == "b" && r.no_mailings)
    );
    // A repeat is harmless: the first is kept.
    w.clock.set(at("2026-12-01T10:40:00+03:00"));
    let again = w
        .dispatcher
        .unsubscribe(token, UnsubscribeSource::Link)
        .await
        .unwrap();
    assert!(!again.new);
    assert_eq!(again.record, done.record);
    assert_eq!(
        w.dispatcher.unsubscribes(None).await.unwrap(),
        vec![done.record.clone()]
    );

    // The source forgot the flag (a CRM reloaded it): the journal still suppresses.
    w.source.set_no_mailings("b", false).await.unwrap();
    let second = mailing("second", "advertising", "2026-12-02T10:00", LETTER);
    w.clock.set(at("2026-12-02T10:01:00+03:00"));
    w.dispatcher.save(&second).await.unwrap();
    let preview = w.dispatcher.preview(&second, None).await.unwrap();
    assert_eq!(preview.per_channel.get(&ChannelKind::Email), Some(&2));
    send(&w, &second, "2026-12-02T10:01:00+03:00").await;
    let rows = journal(&w, "second").await;
    assert!(
        rows.contains(&(
            "b".into(),
            DeliveryStatus::Skipped,
            Some("unsubscribed".into())
        )),
        "{rows:?}"
    );
    assert_eq!(
        rows.iter().filter(|r| r.1 == DeliveryStatus::Sent).count(),
        2
    );
    // Service mail still reaches them.
    send(
        &w,
        &mailing("service", "service", "2026-12-02T11:00", LETTER),
        "2026-12-02T11:01:00+03:00",
    )
    .await;
    assert!(
        journal(&w, "service")
            .await
            .contains(&("b".into(), DeliveryStatus::Sent, None))
    );

    assert!(w.dispatcher.resubscribe("b").await.unwrap());
    assert!(!w.dispatcher.resubscribe("b").await.unwrap());
    assert!(w.dispatcher.unsubscribes(None).await.unwrap().is_empty());
    send(
        &w,
        &mailing("third", "advertising", "2026-12-03T10:00", LETTER),
        "2026-12-03T10:01:00+03:00",
    )
    .await;
    assert!(
        journal(&w, "third")
            .await
            .contains(&("b".into(), DeliveryStatus::Sent, None))
    );
}

#[tokio::test]
async fn an_unsubscribe_after_the_freeze_stops_what_is_still_queued() {
    let w = world(|b| b).await;
    // Boris lives in Kamchatka: at 10:01 in Moscow it is evening there, outside the window,
    // so his e-mail is frozen and waits for his morning.
    let m = Mailing::from_json(&format!(
        r#"{{"id": "windowed", "class": "advertising", "channels": ["email"],
            "send_window": {{"from": "09:00", "to": "18:00"}},
            "schedule": {{"start": "2026-12-01T10:00", "tz": "Europe/Moscow", "every": "once"}},
            "content": {{"email": {LETTER}}}}}"#
    ))
    .unwrap();
    send(&w, &m, "2026-12-01T10:01:00+03:00").await;
    assert_eq!(w.email.sent().len(), 2);
    let rows = journal(&w, "windowed").await;
    assert!(
        rows.contains(&("b".into(), DeliveryStatus::Queued, None)),
        "{rows:?}"
    );
    let link = w
        .dispatcher
        .unsubscribe_link("windowed", "b")
        .await
        .unwrap();
    let token = link.rsplit('/').next().unwrap();
    w.dispatcher
        .unsubscribe(token, UnsubscribeSource::Link)
        .await
        .unwrap();
    // His morning: the run finds him unsubscribed and sends nothing.
    w.clock.set(at("2026-12-02T09:30:00+12:00"));
    w.dispatcher.run_mailing("windowed").await.unwrap();
    assert_eq!(w.email.sent().len(), 2, "nothing more was sent");
    let rows = journal(&w, "windowed").await;
    assert!(
        rows.contains(&(
            "b".into(),
            DeliveryStatus::Skipped,
            Some("unsubscribed".into())
        )),
        "{rows:?}"
    );
}

#[tokio::test]
async fn a_reply_to_the_mailto_unsubscribes_with_its_subjects_token() {
    let w = world(|b| {
        b.unsubscribe(UnsubscribeSettings {
            mailto: Some("unsubscribe@shop.example".into()),
            ..UnsubscribeSettings::default()
        })
    })
    .await;
    send(
        &w,
        &mailing("ads", "advertising", "2026-12-01T10:00", LETTER),
        "2026-12-01T10:01:00+03:00",
    )
    .await;
    let vera = w
        .email
        .sent()
        .into_iter()
        .find(|s| s.to.to_string() == "vera@example.com")
        .unwrap();
    let list = header(&vera.message.headers, "List-Unsubscribe")
        .unwrap()
        .to_owned();
    let subject = list
        .split("?subject=")
        .nth(1)
        .unwrap()
        .trim_end_matches('>');
    let reply = format!("Re: {subject}");
    let token = rassylka::mailto_token(&reply).unwrap();
    let done = w
        .dispatcher
        .unsubscribe(token, UnsubscribeSource::Mailto)
        .await
        .unwrap();
    assert_eq!(
        (
            done.record.recipient_id.as_str(),
            done.record.source.as_str()
        ),
        ("c", "mailto")
    );
}

#[tokio::test]
async fn bad_tokens_are_refused_and_record_nothing() {
    let w = world(|b| b).await;
    send(
        &w,
        &mailing("first", "advertising", "2026-12-01T10:00", LETTER),
        "2026-12-01T10:01:00+03:00",
    )
    .await;
    let link = w.dispatcher.unsubscribe_link("first", "a").await.unwrap();
    let token = link.rsplit('/').next().unwrap().to_owned();
    let other_key = UnsubscribeKeys::new(&["another secret, long enough"]).unwrap();
    let mut altered = token.clone().into_bytes();
    let last = altered.len() - 5;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    let bad = [
        "".to_owned(),
        "not-a-token".to_owned(),
        token[..token.len() - 3].to_owned(),
        String::from_utf8(altered).unwrap(),
        other_key.sign("first", "a"),
        format!("{token}A"),
    ];
    for token in &bad {
        let page = w.dispatcher.unsubscribe_page(token).await;
        assert!(
            matches!(page, Err(DispatchError::BadToken(_))),
            "{token}: {page:?}"
        );
        let done = w
            .dispatcher
            .unsubscribe(token, UnsubscribeSource::OneClick)
            .await;
        assert!(
            matches!(done, Err(DispatchError::BadToken(_))),
            "{token}: {done:?}"
        );
        assert!(done.unwrap_err().is_bad_input());
    }
    assert!(w.dispatcher.unsubscribes(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_generated_secret_is_kept_in_the_journal_and_a_given_one_is_used() {
    let w = world(|b| b).await;
    let first = w.dispatcher.unsubscribe_link("m", "a").await.unwrap();
    // A second dispatcher on the same journal (another process) signs the same way.
    let same_journal = Rassylka::builder()
        .recipients(MemorySource::default())
        .store_shared(w.store.clone())
        .build()
        .unwrap();
    assert_eq!(
        same_journal.unsubscribe_link("m", "a").await.unwrap(),
        first
    );
    let elsewhere = world(|b| b).await;
    assert_ne!(
        elsewhere
            .dispatcher
            .unsubscribe_link("m", "a")
            .await
            .unwrap(),
        first
    );

    let given = world(|b| {
        b.unsubscribe(UnsubscribeSettings {
            secret: Some(Secret::new("a secret from the settings")),
            previous_secrets: vec![Secret::new("the secret before it, rotated")],
            ..UnsubscribeSettings::default()
        })
    })
    .await;
    let link = given.dispatcher.unsubscribe_link("m", "a").await.unwrap();
    let token = link.rsplit('/').next().unwrap();
    let keys = UnsubscribeKeys::new(&["a secret from the settings"]).unwrap();
    assert_eq!(keys.verify(token).unwrap().recipient_id, "a");
    let old = UnsubscribeKeys::new(&["the secret before it, rotated"]).unwrap();
    let unresolved = world(|b| {
        b.unsubscribe(UnsubscribeSettings {
            secret: Some(Secret::new("env:UNSUB_SECRET")),
            ..UnsubscribeSettings::default()
        })
    })
    .await;
    let refused = unresolved
        .dispatcher
        .unsubscribe_link("m", "a")
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("`env:UNSUB_SECRET` was not read"),
        "{refused}"
    );
    assert!(refused.is_bad_input());
    assert!(
        given
            .dispatcher
            .unsubscribe_page(&old.sign("m", "a"))
            .await
            .is_ok(),
        "rotation"
    );
}

#[tokio::test]
async fn links_signed_before_a_secret_was_configured_stay_good() {
    let w = world(|b| b).await;
    send(
        &w,
        &mailing("ads", "advertising", "2026-12-01T10:00", LETTER),
        "2026-12-01T10:01:00+03:00",
    )
    .await;
    let old_link = w.dispatcher.unsubscribe_link("ads", "a").await.unwrap();
    // The operator now names a secret: a new dispatcher on the same journal.
    let configured = Rassylka::builder()
        .recipients(MemorySource::default())
        .store_shared(w.store.clone())
        .unsubscribe(UnsubscribeSettings {
            secret: Some(Secret::new("the secret the operator chose")),
            ..UnsubscribeSettings::default()
        })
        .build()
        .unwrap();
    let new_link = configured.unsubscribe_link("ads", "a").await.unwrap();
    assert_ne!(
        new_link, old_link,
        "new links are signed with the configured secret"
    );
    let token = old_link.rsplit('/').next().unwrap();
    assert!(
        configured.unsubscribe_page(token).await.is_ok(),
        "the old link still works"
    );
}

#[tokio::test]
async fn the_page_names_the_address_the_mailing_reached() {
    let w = world(|b| b).await;
    // Priority: e-mail first, SMS on standby. Anna's e-mail is sent; her SMS row is skipped.
    let m = Mailing::from_json(
        r#"{"id": "both", "class": "advertising", "channels": ["email", "sms"], "mode": "priority",
            "schedule": {"start": "2026-12-01T10:00", "tz": "Europe/Moscow", "every": "once"},
            "content": {"default": {"text": "Скидка"}, "email": {"subject": "Скидка", "html": "<p>Скидка</p>"}}}"#,
    )
    .unwrap();
    send(&w, &m, "2026-12-01T10:01:00+03:00").await;
    let token = w.dispatcher.unsubscribe_link("both", "a").await.unwrap();
    let token = token.rsplit('/').next().unwrap();
    let page = w.dispatcher.unsubscribe_page(token).await.unwrap();
    assert_eq!(page.masked_address.as_deref(), Some("a***@example.com"));
    let done = w
        .dispatcher
        .unsubscribe(token, UnsubscribeSource::OneClick)
        .await
        .unwrap();
    assert_eq!(done.record.channel, Some(ChannelKind::Email));
}
