//! The work queue in memory: the same contract as [`crate::RabbitMq`] (confirmed publish,
//! manual ack, prefetch, release on close, delayed retry, a lost connection) inside one
//! process, so every settle decision can be unit-tested without a broker. Delays run on
//! tokio's clock, so tests with a paused clock control them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::error::BrokerError;
use crate::queue::{Delivery, Meta, Settle, Subscription, WorkQueue};
use crate::queues::Queues;

/// An in-memory queue service; clones share the same queues.
#[derive(Clone)]
pub struct MemoryQueue {
    inner: Arc<Inner>,
    queues: Queues,
}

struct Inner {
    state: Mutex<State>,
    /// Woken on every change a waiting consumer may care about.
    changed: Notify,
}

struct State {
    lanes: HashMap<String, Lane>,
    next_tag: u64,
    connected: bool,
    refuse_publishes: bool,
}

#[derive(Default)]
struct Lane {
    ready: VecDeque<Stored>,
    /// tag → (subscription, item)
    unacked: HashMap<u64, (u64, Stored)>,
    /// Items waiting out a delay: (id, delay, item).
    delayed: Vec<(u64, Duration, Stored)>,
    releases: usize,
}

#[derive(Clone)]
struct Stored {
    body: Bytes,
    meta: Meta,
    redelivered: bool,
}

impl MemoryQueue {
    /// The fleet's queues (retry queues included) for `prefix`, all empty.
    pub fn new(prefix: &str) -> MemoryQueue {
        let queues = Queues::new(prefix);
        let lanes = queues.every().into_iter().map(|name| (name, Lane::default())).collect();
        MemoryQueue {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    lanes,
                    next_tag: 1,
                    connected: true,
                    refuse_publishes: false,
                }),
                changed: Notify::new(),
            }),
            queues,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().expect("memory queue lock")
    }

    /// The items ready in `queue`, in delivery order.
    pub fn ready(&self, queue: &str) -> Vec<(Bytes, Meta)> {
        self.state()
            .lanes
            .get(queue)
            .map(|lane| lane.ready.iter().map(|s| (s.body.clone(), s.meta.clone())).collect())
            .unwrap_or_default()
    }

    /// How many deliveries of `queue` were released (settled as "give it back") so far.
    pub fn releases(&self, queue: &str) -> usize {
        self.state().lanes.get(queue).map_or(0, |lane| lane.releases)
    }

    /// How many deliveries of `queue` are out and unsettled.
    pub fn unacked(&self, queue: &str) -> usize {
        self.state().lanes.get(queue).map_or(0, |lane| lane.unacked.len())
    }

    /// The items of `queue` waiting out a delay, with the delay each was given.
    pub fn delayed(&self, queue: &str) -> Vec<(Duration, Meta)> {
        self.state()
            .lanes
            .get(queue)
            .map(|lane| lane.delayed.iter().map(|(_, d, s)| (*d, s.meta.clone())).collect())
            .unwrap_or_default()
    }

    /// While set, every publish is refused (a negative confirm).
    pub fn refuse_publishes(&self, refuse: bool) {
        self.state().refuse_publishes = refuse;
    }

    /// Loses the connection: subscriptions end with an error, their unsettled items go back
    /// to their queues, and publishing fails until [`MemoryQueue::reconnect`].
    pub fn disconnect(&self) {
        let mut state = self.state();
        state.connected = false;
        for lane in state.lanes.values_mut() {
            let mut out: Vec<(u64, Stored)> = lane.unacked.drain().map(|(tag, (_, s))| (tag, s)).collect();
            requeue(lane, &mut out);
        }
        drop(state);
        self.inner.changed.notify_waiters();
    }

    pub fn reconnect(&self) {
        self.state().connected = true;
        self.inner.changed.notify_waiters();
    }

    fn enqueue(&self, queue: &str, body: &[u8], meta: &Meta) -> Result<(), BrokerError> {
        let mut state = self.state();
        check_publish(&state, queue)?;
        let lane = state.lanes.get_mut(queue).expect("checked");
        lane.ready.push_back(Stored {
            body: Bytes::copy_from_slice(body),
            meta: meta.clone(),
            redelivered: false,
        });
        drop(state);
        self.inner.changed.notify_waiters();
        Ok(())
    }
}

fn check_publish(state: &State, queue: &str) -> Result<(), BrokerError> {
    if !state.connected {
        return Err(BrokerError::Disconnected);
    }
    if state.refuse_publishes {
        return Err(BrokerError::Nacked { queue: queue.into() });
    }
    if !state.lanes.contains_key(queue) {
        return Err(BrokerError::Unroutable { queue: queue.into() });
    }
    Ok(())
}

/// Puts released items back at the front of the lane, oldest delivery first, marked
/// redelivered (RabbitMQ keeps a requeued message's position as far as it can).
fn requeue(lane: &mut Lane, items: &mut [(u64, Stored)]) {
    items.sort_by_key(|(tag, _)| *tag);
    for (_, item) in items.iter().rev() {
        let mut item = item.clone();
        item.redelivered = true;
        lane.ready.push_front(item);
    }
}

#[async_trait::async_trait]
impl WorkQueue for MemoryQueue {
    fn queues(&self) -> &Queues {
        &self.queues
    }

    fn is_connected(&self) -> bool {
        self.state().connected
    }

    async fn publish(&self, queue: &str, body: &[u8], meta: &Meta) -> Result<(), BrokerError> {
        self.enqueue(queue, body, meta)
    }

    async fn publish_later(&self, queue: &str, body: &[u8], meta: &Meta, delay: Duration) -> Result<(), BrokerError> {
        let id = {
            let mut state = self.state();
            check_publish(&state, queue)?;
            let id = state.next_tag;
            state.next_tag += 1;
            let item = Stored {
                body: Bytes::copy_from_slice(body),
                meta: meta.clone(),
                redelivered: false,
            };
            state
                .lanes
                .get_mut(queue)
                .expect("checked")
                .delayed
                .push((id, delay, item));
            id
        };
        let (queue, this) = (queue.to_string(), self.clone());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let mut state = this.state();
            if let Some(lane) = state.lanes.get_mut(&queue)
                && let Some(at) = lane.delayed.iter().position(|(i, _, _)| *i == id)
            {
                let (_, _, item) = lane.delayed.remove(at);
                lane.ready.push_back(item);
            }
            drop(state);
            this.inner.changed.notify_waiters();
        });
        Ok(())
    }

    async fn subscribe(&self, queue: &str, prefetch: u16) -> Result<Box<dyn Subscription>, BrokerError> {
        let mut state = self.state();
        if !state.connected {
            return Err(BrokerError::Disconnected);
        }
        if !state.lanes.contains_key(queue) {
            return Err(BrokerError::Unroutable { queue: queue.into() });
        }
        let id = state.next_tag;
        state.next_tag += 1;
        Ok(Box::new(MemorySubscription {
            queue: self.clone(),
            lane: queue.to_string(),
            id,
            prefetch: prefetch.max(1) as usize,
            stopped: false,
        }))
    }

    async fn ready_count(&self, queue: &str) -> Result<u32, BrokerError> {
        let state = self.state();
        let lane = state
            .lanes
            .get(queue)
            .ok_or_else(|| BrokerError::Unroutable { queue: queue.into() })?;
        Ok(lane.ready.len() as u32)
    }

    async fn ensure_external_queue(&self, queue: &str) -> Result<(), BrokerError> {
        self.state().lanes.entry(queue.to_string()).or_default();
        Ok(())
    }

    async fn close(&self) {
        self.disconnect();
    }
}

struct MemorySubscription {
    queue: MemoryQueue,
    lane: String,
    id: u64,
    prefetch: usize,
    stopped: bool,
}

impl MemorySubscription {
    /// A delivery if one is ready and the prefetch allows it; `Err` if the connection is lost.
    fn take(&self) -> Result<Option<Delivery>, BrokerError> {
        let mut state = self.queue.state();
        if !state.connected {
            return Err(BrokerError::ConsumerClosed);
        }
        let tag = state.next_tag;
        let Some(lane) = state.lanes.get_mut(&self.lane) else {
            return Err(BrokerError::ConsumerClosed);
        };
        let held = lane.unacked.values().filter(|(sub, _)| *sub == self.id).count();
        if held >= self.prefetch {
            return Ok(None);
        }
        let Some(item) = lane.ready.pop_front() else {
            return Ok(None);
        };
        lane.unacked.insert(tag, (self.id, item.clone()));
        state.next_tag += 1;
        Ok(Some(Delivery {
            body: item.body,
            meta: item.meta,
            redelivered: item.redelivered,
            settle: Box::new(MemorySettle {
                queue: self.queue.clone(),
                lane: self.lane.clone(),
                tag,
            }),
        }))
    }

    fn release_all(&self) {
        let mut state = self.queue.state();
        if let Some(lane) = state.lanes.get_mut(&self.lane) {
            let tags: Vec<u64> = lane
                .unacked
                .iter()
                .filter(|(_, (sub, _))| *sub == self.id)
                .map(|(tag, _)| *tag)
                .collect();
            let mut out: Vec<(u64, Stored)> = tags
                .into_iter()
                .filter_map(|tag| lane.unacked.remove(&tag).map(|(_, s)| (tag, s)))
                .collect();
            requeue(lane, &mut out);
        }
        drop(state);
        self.queue.inner.changed.notify_waiters();
    }
}

#[async_trait::async_trait]
impl Subscription for MemorySubscription {
    async fn next(&mut self) -> Option<Result<Delivery, BrokerError>> {
        loop {
            let changed = self.queue.inner.changed.notified();
            tokio::pin!(changed);
            // Registered before looking, so a change between the look and the wait is not missed.
            changed.as_mut().enable();
            if self.stopped {
                return None;
            }
            match self.take() {
                Ok(Some(delivery)) => return Some(Ok(delivery)),
                Ok(None) => changed.await,
                Err(e) => return Some(Err(e)),
            }
        }
    }

    async fn stop(&mut self) {
        self.stopped = true;
    }

    async fn close(self: Box<Self>) {
        // Dropping releases.
    }
}

impl Drop for MemorySubscription {
    fn drop(&mut self) {
        self.release_all();
    }
}

struct MemorySettle {
    queue: MemoryQueue,
    lane: String,
    tag: u64,
}

impl MemorySettle {
    fn settle(&self, release: bool) -> Result<(), BrokerError> {
        let mut state = self.queue.state();
        let unknown = BrokerError::UnknownDelivery { tag: self.tag };
        let lane = state.lanes.get_mut(&self.lane).ok_or(unknown)?;
        let (_, item) = lane
            .unacked
            .remove(&self.tag)
            .ok_or(BrokerError::UnknownDelivery { tag: self.tag })?;
        if release {
            lane.releases += 1;
            requeue(lane, &mut [(self.tag, item)]);
        }
        drop(state);
        self.queue.inner.changed.notify_waiters();
        Ok(())
    }
}

#[async_trait::async_trait]
impl Settle for MemorySettle {
    async fn ack(&self) -> Result<(), BrokerError> {
        self.settle(false)
    }

    async fn release(&self) -> Result<(), BrokerError> {
        self.settle(true)
    }
}

#[cfg(test)]
mod tests;
