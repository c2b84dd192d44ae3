//! What a node tells live observers: the subscription point of the UI socket
//! ([`crate::ui_socket`]).
//!
//! Two views, both bounded and both free when nobody watches:
//!
//! - **Events** ([`FeedEvent`]) on a `tokio::sync::broadcast` channel of
//!   [`FEED_CAPACITY`]: protocol events (joined, peer up/down, hint replayed, repair done…) and
//!   individual messages sent, received or dropped. A slow subscriber loses the oldest events
//!   (`RecvError::Lagged` tells it how many) and never slows the node. Individual messages are
//!   published only while someone subscribes and at most [`FEED_MESSAGES_PER_SEC`] a second;
//!   past that they are only counted.
//! - **Counts** ([`Traffic`]): messages per peer and kind, sent, received and dropped, always
//!   kept by the node task and included in every [`crate::view::NodeView`]; a subscriber that
//!   polls the view every interval gets aggregated traffic whatever the rate.

use ringstore_core::NodeId;
use ringstore_core::node::NodeEvent;
use ringstore_core::ui::Direction;
use ringstore_core::ui::DropCause;
use ringstore_core::wire::{Message, MessageKind};
use serde::Serialize;
use std::collections::BTreeMap;
use tokio::sync::broadcast;

/// Events buffered per subscriber before the oldest are dropped.
pub const FEED_CAPACITY: usize = 1024;
/// Individual messages published per second at most (the rest are only counted).
pub const FEED_MESSAGES_PER_SEC: u32 = 200;

/// One thing that happened at this node.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FeedEvent {
    /// A protocol event from the core.
    Node {
        /// This node's clock (ms since the Unix epoch, skew included).
        at_ms: u64,
        /// The event.
        event: NodeEvent,
    },
    /// A message to or from a peer.
    Message {
        /// This node's clock.
        at_ms: u64,
        /// Which way.
        direction: Direction,
        /// The other node.
        peer: NodeId,
        /// The message's kind (the page's colour).
        kind: MessageKind,
        /// A one-line label (`Put user123=Alice ts=100`), as the simulator's log shows it.
        label: String,
        /// Why it was not sent, if it was dropped.
        dropped: Option<DropCause>,
    },
}

/// Messages exchanged with one peer, of one kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TrafficCount {
    /// Sent to the peer.
    pub sent: u64,
    /// Received from the peer.
    pub received: u64,
    /// Meant for the peer but dropped.
    pub dropped: u64,
}

/// Messages per peer and kind since the node started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    counts: BTreeMap<(NodeId, MessageKind), TrafficCount>,
}

impl Traffic {
    fn entry(&mut self, peer: NodeId, kind: MessageKind) -> &mut TrafficCount {
        self.counts.entry((peer, kind)).or_default()
    }

    /// Every count, by peer and kind.
    pub fn counts(&self) -> &BTreeMap<(NodeId, MessageKind), TrafficCount> {
        &self.counts
    }
}

/// The node task's side of the feed.
pub struct Feed {
    tx: broadcast::Sender<FeedEvent>,
    traffic: Traffic,
    window_start_ms: u64,
    window_messages: u32,
}

impl Default for Feed {
    fn default() -> Self {
        Feed::new()
    }
}

impl Feed {
    /// A feed nobody watches yet.
    pub fn new() -> Feed {
        let (tx, _) = broadcast::channel(FEED_CAPACITY);
        Feed {
            tx,
            traffic: Traffic::default(),
            window_start_ms: 0,
            window_messages: 0,
        }
    }

    /// A sender to subscribe from (`sender.subscribe()`), for the HTTP layer.
    pub fn sender(&self) -> broadcast::Sender<FeedEvent> {
        self.tx.clone()
    }

    /// The traffic counts.
    pub fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    /// Publishes a protocol event (if anyone listens).
    pub fn event(&self, at_ms: u64, event: &NodeEvent) {
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(FeedEvent::Node {
                at_ms,
                event: event.clone(),
            });
        }
    }

    /// Counts a message, and publishes it if anyone listens and the rate allows.
    pub fn message(
        &mut self,
        at_ms: u64,
        direction: Direction,
        peer: NodeId,
        msg: &Message,
        dropped: Option<DropCause>,
    ) {
        let kind = msg.kind();
        let count = self.traffic.entry(peer, kind);
        match (direction, dropped) {
            (Direction::Sent, None) => count.sent += 1,
            (Direction::Sent, Some(_)) => count.dropped += 1,
            (Direction::Received, _) => count.received += 1,
        }
        if self.tx.receiver_count() == 0 {
            return;
        }
        if at_ms >= self.window_start_ms + 1000 || at_ms < self.window_start_ms {
            self.window_start_ms = at_ms;
            self.window_messages = 0;
        }
        if self.window_messages >= FEED_MESSAGES_PER_SEC {
            return;
        }
        self.window_messages += 1;
        let _ = self.tx.send(FeedEvent::Message {
            at_ms,
            direction,
            peer,
            kind,
            label: ringstore_core::sim::label(msg),
            dropped,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringstore_core::wire::ReqId;

    fn ack() -> Message {
        Message::ReplicateAck {
            req: ReqId {
                coordinator: NodeId(1),
                seq: 1,
            },
            result: Ok(()),
        }
    }

    #[test]
    fn messages_are_counted_always_and_published_within_the_rate() {
        let mut feed = Feed::new();
        feed.message(0, Direction::Sent, NodeId(2), &ack(), None);
        let mut rx = feed.sender().subscribe();
        for i in 0..FEED_MESSAGES_PER_SEC + 50 {
            feed.message(10, Direction::Received, NodeId(2), &ack(), None);
            feed.message(
                10,
                Direction::Sent,
                NodeId(3),
                &ack(),
                Some(DropCause::Partition),
            );
            let _ = i;
        }
        let n2 = feed.traffic().counts()[&(NodeId(2), MessageKind::Ack)];
        assert_eq!(n2.sent, 1);
        assert_eq!(n2.received, u64::from(FEED_MESSAGES_PER_SEC) + 50);
        let n3 = feed.traffic().counts()[&(NodeId(3), MessageKind::Ack)];
        assert_eq!(
            (n3.sent, n3.dropped),
            (0, u64::from(FEED_MESSAGES_PER_SEC) + 50)
        );
        let mut published = 0;
        while rx.try_recv().is_ok() {
            published += 1;
        }
        assert_eq!(published, FEED_MESSAGES_PER_SEC as usize);
        // A new second, a new budget.
        feed.message(1_010, Direction::Received, NodeId(2), &ack(), None);
        assert!(rx.try_recv().is_ok());
    }
}
