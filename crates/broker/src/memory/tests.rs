use super::*;

const WAIT: Duration = Duration::from_millis(50);

async fn filled(items: &[&str]) -> (MemoryQueue, String) {
    let q = MemoryQueue::new("t");
    let chunks = q.queues().chunks.clone();
    for id in items {
        q.publish(&chunks, id.as_bytes(), &Meta::new(*id)).await.unwrap();
    }
    (q, chunks)
}

#[tokio::test]
async fn a_published_item_is_delivered_with_its_meta_and_gone_once_acked() {
    let (q, chunks) = filled(&["a"]).await;
    let mut sub = q.subscribe(&chunks, 1).await.unwrap();
    let d = sub.next().await.unwrap().unwrap();
    assert_eq!(
        (&d.body[..], d.meta.message_id.as_str(), d.meta.attempt),
        (&b"a"[..], "a", 1)
    );
    assert!(!d.redelivered);
    assert_eq!((q.ready_count(&chunks).await.unwrap(), q.unacked(&chunks)), (0, 1));
    d.ack().await.unwrap();
    assert_eq!((q.ready_count(&chunks).await.unwrap(), q.unacked(&chunks)), (0, 0));
}

#[tokio::test]
async fn a_released_item_comes_back_first_and_marked_redelivered() {
    let (q, chunks) = filled(&["a", "b"]).await;
    let mut sub = q.subscribe(&chunks, 1).await.unwrap();
    sub.next().await.unwrap().unwrap().release().await.unwrap();
    assert_eq!(q.releases(&chunks), 1);
    let again = sub.next().await.unwrap().unwrap();
    assert_eq!(again.meta.message_id, "a");
    assert!(again.redelivered);
}

#[tokio::test]
async fn prefetch_bounds_the_unsettled_deliveries_a_subscription_holds() {
    let (q, chunks) = filled(&["a", "b", "c"]).await;
    let mut sub = q.subscribe(&chunks, 2).await.unwrap();
    let first = sub.next().await.unwrap().unwrap();
    let _second = sub.next().await.unwrap().unwrap();
    assert!(tokio::time::timeout(WAIT, sub.next()).await.is_err(), "a third waits");
    first.ack().await.unwrap();
    let third = tokio::time::timeout(WAIT, sub.next()).await.expect("a slot is free");
    assert_eq!(third.unwrap().unwrap().meta.message_id, "c");
}

#[tokio::test]
async fn a_waiting_consumer_wakes_when_an_item_is_published() {
    let (q, chunks) = filled(&[]).await;
    let mut sub = q.subscribe(&chunks, 1).await.unwrap();
    let publisher = q.clone();
    let queue = chunks.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        publisher.publish(&queue, b"late", &Meta::new("late")).await.unwrap();
    });
    let got = tokio::time::timeout(Duration::from_secs(2), sub.next()).await.unwrap();
    assert_eq!(got.unwrap().unwrap().meta.message_id, "late");
}

#[tokio::test]
async fn closing_a_subscription_returns_its_unsettled_items_in_order() {
    let (q, chunks) = filled(&["a", "b", "c"]).await;
    let mut sub = q.subscribe(&chunks, 2).await.unwrap();
    let _a = sub.next().await.unwrap().unwrap();
    let _b = sub.next().await.unwrap().unwrap();
    sub.close().await;
    let order: Vec<String> = q.ready(&chunks).into_iter().map(|(_, m)| m.message_id).collect();
    assert_eq!(order, ["a", "b", "c"]);
    assert_eq!(q.unacked(&chunks), 0);
}

#[tokio::test]
async fn a_delivery_settled_after_its_subscription_closed_is_refused_and_not_lost() {
    let (q, chunks) = filled(&["a"]).await;
    let mut sub = q.subscribe(&chunks, 1).await.unwrap();
    let a = sub.next().await.unwrap().unwrap();
    sub.close().await;
    assert!(matches!(a.ack().await, Err(BrokerError::UnknownDelivery { .. })));
    assert_eq!(q.ready_count(&chunks).await.unwrap(), 1);
}

#[tokio::test]
async fn a_stopped_subscription_delivers_nothing_more_but_can_still_settle() {
    let (q, chunks) = filled(&["a", "b"]).await;
    let mut sub = q.subscribe(&chunks, 2).await.unwrap();
    let a = sub.next().await.unwrap().unwrap();
    sub.stop().await;
    assert!(sub.next().await.is_none());
    a.ack().await.unwrap();
    assert_eq!(q.ready_count(&chunks).await.unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_delayed_item_becomes_deliverable_only_after_its_delay() {
    let (q, chunks) = filled(&[]).await;
    let meta = Meta::new("r").next_attempt(2);
    q.publish_later(&chunks, b"r", &meta, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(q.delayed(&chunks), vec![(Duration::from_secs(30), meta.clone())]);
    let mut sub = q.subscribe(&chunks, 1).await.unwrap();
    assert!(tokio::time::timeout(Duration::from_secs(29), sub.next()).await.is_err());
    let got = tokio::time::timeout(Duration::from_secs(2), sub.next()).await.unwrap();
    assert_eq!(got.unwrap().unwrap().meta, meta);
    assert!(q.delayed(&chunks).is_empty());
}

#[tokio::test]
async fn publishing_to_a_queue_that_does_not_exist_is_an_error() {
    let q = MemoryQueue::new("t");
    let err = q.publish("t.nope", b"x", &Meta::new("x")).await.unwrap_err();
    assert!(matches!(err, BrokerError::Unroutable { .. }));
    q.ensure_external_queue("t.nope").await.unwrap();
    q.publish("t.nope", b"x", &Meta::new("x")).await.unwrap();
}

#[tokio::test]
async fn a_refused_publish_is_an_error_and_queues_nothing() {
    let (q, chunks) = filled(&[]).await;
    q.refuse_publishes(true);
    let err = q.publish(&chunks, b"x", &Meta::new("x")).await.unwrap_err();
    assert!(matches!(err, BrokerError::Nacked { .. }));
    assert_eq!(q.ready_count(&chunks).await.unwrap(), 0);
}

#[tokio::test]
async fn a_lost_connection_ends_subscriptions_and_returns_their_items() {
    let (q, chunks) = filled(&["a"]).await;
    let mut sub = q.subscribe(&chunks, 1).await.unwrap();
    let a = sub.next().await.unwrap().unwrap();
    q.disconnect();
    assert!(matches!(sub.next().await, Some(Err(BrokerError::ConsumerClosed))));
    assert!(a.ack().await.is_err());
    assert!(!q.is_connected());
    q.reconnect();
    assert_eq!(q.ready(&chunks).len(), 1);
}
