//! Storage of chat conversations and messages, on SQLite and PostgreSQL: one open
//! conversation per (channel, user), WeChat retries stored once, the per-user `seq` cursor
//! across conversations, hand-over, take by one agent only, close and rating, lists.

use hotline_core::SystemRng;
use hotline_integrations::IntegrationError;
use hotline_integrations::chat::store::{self, ListFilter, NewMessage};
use hotline_integrations::chat::{Channel, ConvState, Sender};

const T0: i64 = 1_764_000_000_000;

hotline_testkit::db_test!(conversations_messages_and_states, |t| async move {
    let pool = &t.pool;
    let rng = SystemRng;
    let c = store::open(pool, T0, &rng, Channel::Wechat, "oU1", "contact-1").await?;
    assert_eq!((c.state, c.agent.as_str()), (ConvState::Bot, ""));
    // The same user gets the same open conversation; another channel or user another one.
    let again = store::open(pool, T0 + 1, &rng, Channel::Wechat, "oU1", "").await?;
    assert_eq!(again.id, c.id);
    let web = store::open(pool, T0, &rng, Channel::Web, "oU1", "").await?;
    assert_ne!(web.id, c.id);

    // Messages: seq per user, retries (same external id) stored once.
    let m1 = store::add_message(
        pool,
        T0,
        &rng,
        &c,
        NewMessage {
            sender: Sender::User,
            agent: "",
            body: "保证金",
            external_id: Some("wx:1"),
        },
    )
    .await?;
    assert_eq!(m1.as_ref().map(|m| m.seq), Some(1));
    let dup = store::add_message(
        pool,
        T0,
        &rng,
        &c,
        NewMessage {
            sender: Sender::User,
            agent: "",
            body: "保证金",
            external_id: Some("wx:1"),
        },
    )
    .await?;
    assert!(dup.is_none());
    let m2 = store::add_message(
        pool,
        T0 + 5,
        &rng,
        &c,
        NewMessage {
            sender: Sender::Bot,
            agent: "",
            body: "答复",
            external_id: None,
        },
    )
    .await?;
    assert_eq!(m2.map(|m| m.seq), Some(2));
    let wm = store::add_message(
        pool,
        T0,
        &rng,
        &web,
        NewMessage {
            sender: Sender::User,
            agent: "",
            body: "网页",
            external_id: None,
        },
    )
    .await?;
    assert_eq!(wm.map(|m| m.seq), Some(1), "seq is per (channel, user)");
    let c = store::get(pool, &c.id).await?;
    assert_eq!(
        c.last_user_at, T0,
        "bot messages do not move the user's time"
    );

    // Hand-over, then one agent takes it; the second is refused.
    let c = store::hand_over(pool, T0 + 10, &c.id).await?;
    assert_eq!((c.state, c.queued_at), (ConvState::Queued, T0 + 10));
    let queue = store::list(pool, &ListFilter::Queue, 10).await?;
    assert_eq!(
        queue.iter().map(|q| q.id.as_str()).collect::<Vec<_>>(),
        [c.id.as_str()]
    );
    let taken = store::take(pool, T0 + 20, &c.id, "agent1").await?;
    assert_eq!(
        (taken.state, taken.agent.as_str()),
        (ConvState::Assigned, "agent1")
    );
    match store::take(pool, T0 + 21, &c.id, "agent2").await {
        Err(IntegrationError::Conflict(m)) => assert!(m.contains("agent1"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(store::list(pool, &ListFilter::Queue, 10).await?.is_empty());
    assert_eq!(
        store::list(pool, &ListFilter::Mine("agent1".into()), 10)
            .await?
            .len(),
        1
    );
    assert!(
        store::list(pool, &ListFilter::Mine("agent2".into()), 10)
            .await?
            .is_empty()
    );
    assert_eq!(store::list(pool, &ListFilter::Open, 10).await?.len(), 2);

    // Close: no longer open, asks for a rating; the next conversation is a new one.
    let closed = store::close(pool, T0 + 30, &c.id).await?;
    assert_eq!(
        (closed.state, closed.rating_asked),
        (ConvState::Closed, true)
    );
    assert!(matches!(
        store::close(pool, T0 + 31, &c.id).await,
        Err(IntegrationError::Conflict(_))
    ));
    assert!(
        store::find_open(pool, Channel::Wechat, "oU1")
            .await?
            .is_none()
    );
    let waiting = store::awaiting_rating(pool, Channel::Wechat, "oU1").await?;
    assert_eq!(waiting.map(|w| w.id), Some(c.id.clone()));
    assert!(store::set_rating(pool, T0 + 40, &c.id, 4).await?);
    assert!(
        !store::set_rating(pool, T0 + 41, &c.id, 5).await?,
        "rated once"
    );
    assert!(store::set_rating(pool, T0 + 41, &c.id, 9).await.is_err());
    assert!(
        store::awaiting_rating(pool, Channel::Wechat, "oU1")
            .await?
            .is_none()
    );
    let next = store::open(pool, T0 + 50, &rng, Channel::Wechat, "oU1", "contact-1").await?;
    assert_ne!(next.id, c.id);
    let m3 = store::add_message(
        pool,
        T0 + 50,
        &rng,
        &next,
        NewMessage {
            sender: Sender::User,
            agent: "",
            body: "又来了",
            external_id: None,
        },
    )
    .await?;
    assert_eq!(
        m3.map(|m| m.seq),
        Some(3),
        "the cursor continues across conversations"
    );

    // History, thread and the widget's poll.
    assert_eq!(store::messages(pool, &c.id).await?.len(), 2);
    let history = store::history_before(pool, &next, 100).await?;
    assert_eq!(
        history.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["保证金", "答复"]
    );
    let since = store::messages_since(pool, Channel::Wechat, "oU1", 1, 100).await?;
    assert_eq!(since.iter().map(|m| m.seq).collect::<Vec<_>>(), [2, 3]);
    Ok(())
});
