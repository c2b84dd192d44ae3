//! What one UI connection gathers between two updates, within the protocol's bounds: the
//! first [`MESSAGES_PER_UPDATE`] messages and the first events of the interval individually,
//! everything else counted. Pure (no sockets, no clock), so the bounds are tested on the host.
//!
//! Aggregated counts come from the node's traffic counters (kept for every message whatever
//! the feed's rate), not from the feed: per peer, kind and direction, the connection keeps
//! what it has already accounted for (the counters when it opened, plus every message sent
//! individually, plus every count sent aggregated), and each update aggregates the
//! difference. So `individual + aggregated` is exactly what the node counted, whether a message
//! was over the per-update bound, over the feed's rate, or skipped because this connection
//! fell behind the feed. A message published just after the counters were read makes the
//! difference negative for one update; it is taken as zero and caught up in the next.

use crate::feed::FeedEvent;
use crate::metrics::KINDS;
use crate::view::NodeView;
use ringstore_core::NodeId;
use ringstore_core::node::NodeEvent;
use ringstore_core::storage::LsmStats;
use ringstore_core::ui::{
    Aggregate, Direction, EVENTS_PER_UPDATE, Hello, Lost, MESSAGES_PER_UPDATE, Member, MessageSeen,
    NodeState, REQUESTS_PER_UPDATE, RingToken, Snapshot, UPDATE_MS, Update,
};
use ringstore_core::wire::MessageKind;
use std::collections::BTreeMap;

/// Sent, received and dropped counts of one peer and kind.
type Counts = [u64; 3];

/// The ring of a view, as the protocol sends it.
pub fn ring_of(view: &NodeView) -> Vec<RingToken> {
    view.ring.iter().map(|t| (t.value, t.node)).collect()
}

/// The protocol's state of a node, from its view and its stores' statistics.
pub fn node_state(view: &NodeView, data: LsmStats, hints: LsmStats) -> NodeState {
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    NodeState {
        now_ms: view.now_ms,
        lifecycle: view.lifecycle.clone(),
        skew_ms: view.clock_skew_ms,
        n: count(view.n),
        w: count(view.w),
        r: count(view.r),
        members: view
            .members
            .iter()
            .map(|m| Member {
                id: m.id,
                address: m.address.clone(),
                verdict: m.verdict,
                status: m.status,
                phi: m.phi,
                in_ring: m.in_ring,
                tokens: m.tokens,
                primary_share: m.primary_share,
                replica_share: m.replica_share,
                partitioned: m.partitioned,
            })
            .collect(),
        hints_held: view.hints_held.iter().map(|(&k, &v)| (k, v)).collect(),
        in_flight: view.in_flight as u64,
        anti_entropy: view.anti_entropy,
        data,
        hints,
    }
}

/// The first frame of a connection.
pub fn snapshot(
    view: &NodeView,
    data: LsmStats,
    hints: LsmStats,
    fault_injection: bool,
    value_bytes_max: usize,
) -> Snapshot {
    Snapshot {
        hello: Hello {
            node: view.node,
            address: view.address.clone(),
            generation: view.generation,
            fault_injection,
            value_bytes_max: value_bytes_max as u64,
            update_ms: UPDATE_MS,
        },
        state: node_state(view, data, hints),
        ring: ring_of(view),
    }
}

fn direction_index(m: &MessageSeen) -> usize {
    match (m.direction, m.dropped) {
        (Direction::Sent, None) => 0,
        (Direction::Received, _) => 1,
        (Direction::Sent, Some(_)) => 2,
    }
}

fn traffic_of(view: &NodeView) -> BTreeMap<(NodeId, MessageKind), Counts> {
    view.traffic
        .iter()
        .filter_map(|t| {
            let kind = *KINDS.iter().find(|k| k.name() == t.kind)?;
            Some(((t.peer, kind), [t.sent, t.received, t.dropped]))
        })
        .collect()
}

/// One connection's gatherer (see the module docs).
pub struct Collector {
    messages: Vec<MessageSeen>,
    events: Vec<(u64, NodeEvent)>,
    requests: usize,
    others: usize,
    lost: Lost,
    accounted: BTreeMap<(NodeId, MessageKind), Counts>,
    ring: Vec<RingToken>,
}

impl Collector {
    /// A gatherer for a connection whose snapshot was built from `view`.
    pub fn new(view: &NodeView) -> Collector {
        Collector {
            messages: Vec::with_capacity(MESSAGES_PER_UPDATE),
            events: Vec::new(),
            requests: 0,
            others: 0,
            lost: Lost::default(),
            accounted: traffic_of(view),
            ring: ring_of(view),
        }
    }

    /// Takes one item of the node's feed.
    pub fn push(&mut self, item: FeedEvent) {
        match item {
            FeedEvent::Message {
                at_ms,
                direction,
                peer,
                kind,
                label,
                dropped,
            } => {
                if self.messages.len() < MESSAGES_PER_UPDATE {
                    self.messages.push(MessageSeen {
                        at_ms,
                        direction,
                        peer,
                        kind,
                        label,
                        dropped,
                    });
                } else {
                    // Still counted: it will be in the aggregated counts.
                    self.lost.messages += 1;
                }
            }
            FeedEvent::Node { at_ms, event } => {
                let (taken, bound) = if matches!(event, NodeEvent::RequestStarted { .. }) {
                    (&mut self.requests, REQUESTS_PER_UPDATE)
                } else {
                    (&mut self.others, EVENTS_PER_UPDATE)
                };
                if *taken < bound {
                    *taken += 1;
                    self.events.push((at_ms, event));
                } else {
                    self.lost.events += 1;
                }
            }
        }
    }

    /// This connection fell `n` items behind the node's feed: they are gone. Events and
    /// messages cannot be told apart there, so all `n` count as lost events; the messages
    /// among them are still in the aggregated counts.
    pub fn lagged(&mut self, n: u64) {
        self.lost.events += n;
    }

    /// An update was not sent because the page had not read the previous ones. What was
    /// gathered stays for the next one (within the bounds).
    pub fn skipped(&mut self) {
        self.lost.updates += 1;
    }

    /// What was lost so far.
    pub fn lost(&self) -> Lost {
        self.lost
    }

    /// The update to send now, built from the node's current view; starts a new interval.
    pub fn take(&mut self, view: &NodeView, data: LsmStats, hints: LsmStats) -> Update {
        let messages = std::mem::take(&mut self.messages);
        for m in &messages {
            self.accounted.entry((m.peer, m.kind)).or_default()[direction_index(m)] += 1;
        }
        let mut aggregated = Vec::new();
        for (key, total) in traffic_of(view) {
            let done = self.accounted.entry(key).or_default();
            let mut fresh = [0; 3];
            for i in 0..3 {
                fresh[i] = total[i].saturating_sub(done[i]);
                done[i] += fresh[i];
            }
            if fresh != [0; 3] {
                aggregated.push(Aggregate {
                    peer: key.0,
                    kind: key.1,
                    sent: fresh[0],
                    received: fresh[1],
                    dropped: fresh[2],
                });
            }
        }
        let ring = ring_of(view);
        let ring = (ring != self.ring).then(|| {
            self.ring = ring.clone();
            ring
        });
        self.requests = 0;
        self.others = 0;
        Update {
            state: node_state(view, data, hints),
            ring,
            messages,
            aggregated,
            events: std::mem::take(&mut self.events),
            lost: self.lost,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::view::{TokenView, TrafficView};
    use ringstore_core::membership::GossipEvent;
    use ringstore_core::node::{AntiEntropyStats, Lifecycle};
    use ringstore_core::ui::DropCause;

    /// A view with these traffic counts and ring.
    pub(crate) fn view(traffic: &[(u32, MessageKind, Counts)], ring: &[(u64, u32)]) -> NodeView {
        NodeView {
            node: NodeId(1),
            address: "127.0.0.1:7001".into(),
            generation: 5,
            lifecycle: Lifecycle::Normal,
            now_ms: 1_000,
            clock_skew_ms: 0,
            n: 3,
            w: 2,
            r: 2,
            members: Vec::new(),
            ring: ring
                .iter()
                .map(|&(t, n)| TokenView {
                    token: t.to_string(),
                    position: 0.0,
                    node: NodeId(n),
                    value: t,
                })
                .collect(),
            hints_held: BTreeMap::new(),
            in_flight: 0,
            anti_entropy: AntiEntropyStats::default(),
            fault_injection: false,
            traffic: traffic
                .iter()
                .map(|&(peer, kind, [sent, received, dropped])| TrafficView {
                    peer: NodeId(peer),
                    kind: kind.name(),
                    sent,
                    received,
                    dropped,
                })
                .collect(),
        }
    }

    /// A write message with `peer`.
    pub(crate) fn message(
        peer: u32,
        direction: Direction,
        dropped: Option<DropCause>,
    ) -> FeedEvent {
        FeedEvent::Message {
            at_ms: 900,
            direction,
            peer: NodeId(peer),
            kind: MessageKind::Write,
            label: "Put k=v ts=1".into(),
            dropped,
        }
    }

    fn take(c: &mut Collector, v: &NodeView) -> Update {
        c.take(v, LsmStats::default(), LsmStats::default())
    }

    fn agg(u: &Update) -> Vec<(u32, MessageKind, Counts)> {
        u.aggregated
            .iter()
            .map(|a| (a.peer.0, a.kind, [a.sent, a.received, a.dropped]))
            .collect()
    }

    #[test]
    fn messages_past_the_bound_are_aggregated_per_peer_and_kind() {
        let w = MessageKind::Write;
        let g = MessageKind::Gossip;
        let mut c = Collector::new(&view(&[(2, w, [10, 0, 0])], &[]));
        for _ in 0..100 {
            c.push(message(2, Direction::Sent, None));
        }
        // The node counted 100 more writes to n2, 5 gossip from n3, 2 writes dropped for n3
        // (the feed published none of those: over its rate).
        let now = view(
            &[(2, w, [110, 0, 0]), (3, g, [0, 5, 0]), (3, w, [0, 0, 2])],
            &[],
        );
        let u = take(&mut c, &now);
        assert_eq!(u.messages.len(), MESSAGES_PER_UPDATE);
        assert_eq!(u.lost.messages, 100 - MESSAGES_PER_UPDATE as u64);
        assert_eq!(
            agg(&u),
            [
                (2, w, [100 - MESSAGES_PER_UPDATE as u64, 0, 0]),
                (3, w, [0, 0, 2]),
                (3, g, [0, 5, 0])
            ]
        );
        // Nothing new: nothing sent, nothing aggregated; what was lost stays counted.
        let again = take(&mut c, &now);
        assert!(again.messages.is_empty() && again.aggregated.is_empty());
        assert_eq!(again.lost, u.lost);
    }

    #[test]
    fn a_message_seen_before_it_is_counted_is_not_aggregated_twice() {
        let w = MessageKind::Write;
        let mut c = Collector::new(&view(&[], &[]));
        for _ in 0..3 {
            c.push(message(2, Direction::Received, None));
        }
        c.push(message(2, Direction::Sent, Some(DropCause::Partition)));
        // The view was read before two of the three arrived.
        let u = take(&mut c, &view(&[(2, w, [0, 1, 1])], &[]));
        assert_eq!(u.messages.len(), 4);
        assert!(u.aggregated.is_empty());
        assert_eq!(u.messages[3].dropped, Some(DropCause::Partition));
        // They are counted now: still nothing to aggregate.
        let u = take(&mut c, &view(&[(2, w, [0, 3, 1])], &[]));
        assert!(u.aggregated.is_empty(), "{:?}", u.aggregated);
        // Two more, not published: aggregated.
        let u = take(&mut c, &view(&[(2, w, [0, 5, 1])], &[]));
        assert_eq!(agg(&u), [(2, w, [0, 2, 0])]);
    }

    #[test]
    fn events_are_bounded_per_update_and_the_rest_counted() {
        let mut c = Collector::new(&view(&[], &[]));
        for i in 0..100 {
            c.push(FeedEvent::Node {
                at_ms: i,
                event: NodeEvent::RequestStarted {
                    client: i,
                    targets: Vec::new(),
                    preference: Vec::new(),
                },
            });
            c.push(FeedEvent::Node {
                at_ms: i,
                event: NodeEvent::Membership(GossipEvent::PeerUp { node: NodeId(2) }),
            });
        }
        c.lagged(7);
        c.skipped();
        let u = take(&mut c, &view(&[], &[]));
        assert_eq!(u.events.len(), REQUESTS_PER_UPDATE + EVENTS_PER_UPDATE);
        let requests = u
            .events
            .iter()
            .filter(|(_, e)| matches!(e, NodeEvent::RequestStarted { .. }))
            .count();
        assert_eq!(requests, REQUESTS_PER_UPDATE);
        let over = 200 - (REQUESTS_PER_UPDATE + EVENTS_PER_UPDATE) as u64;
        assert_eq!(
            u.lost,
            Lost {
                events: over + 7,
                messages: 0,
                updates: 1
            }
        );
        // A new interval, a new budget; the losses are cumulative.
        c.push(FeedEvent::Node {
            at_ms: 200,
            event: NodeEvent::Joined,
        });
        let u = take(&mut c, &view(&[], &[]));
        assert_eq!(u.events, [(200, NodeEvent::Joined)]);
        assert_eq!(u.lost.events, over + 7);
    }

    #[test]
    fn the_ring_is_sent_only_when_it_changed() {
        let one = view(&[], &[(5, 1), (9, 2)]);
        let mut c = Collector::new(&one);
        assert_eq!(take(&mut c, &one).ring, None);
        let two = view(&[], &[(5, 1), (7, 3), (9, 2)]);
        let u = take(&mut c, &two);
        assert_eq!(
            u.ring,
            Some(vec![(5, NodeId(1)), (7, NodeId(3)), (9, NodeId(2))])
        );
        assert_eq!(take(&mut c, &two).ring, None);
    }
}
