//! Streaming token ranges between nodes when one joins or leaves.
//!
//! **Join.** A joining node computes, with the ring's pure [`plan`], which ranges it gains and
//! from whom ([`RangeMove`]s whose `to` is itself), and *pulls* each: a
//! [`Message::StreamRequest`] answered by bounded [`Message::StreamBatch`] pages, each applied
//! through its storage engine (LWW, so streaming never overwrites newer data) before the next
//! page is asked for. When every range has arrived the node is a full member: it serves reads
//! for its ranges only from then on.
//!
//! **Leave.** A leaving node offers each range it hands over ([`Message::StreamOffer`]) to its
//! new owner, which pulls it the same way and answers [`Message::StreamDone`]. When every offer
//! is done the node has left.
//!
//! Every page has a deadline: a stream whose source stops answering is asked again, from
//! another node that held the range if the first is believed down. Bytes and keys moved are
//! counted per range and logged ([`NodeEvent::StreamDone`]), so a test can compare what moved
//! with what the plan predicted.

use super::{Node, NodeEvent, StorageOp, StorageResult, StorageWait, Timer};
use crate::ring::{Range, RangeMove, Ring, plan};
use crate::storage::Cell;
use crate::wire::Message;
use crate::{Millis, NodeId};
use std::collections::BTreeMap;

/// Keys per streamed page.
pub const STREAM_PAGE_KEYS: usize = 256;
/// How long a page may take before it is asked for again.
pub const STREAM_PAGE_TIMEOUT_MS: u64 = 2_000;

/// Where a node is in its life in the cluster.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Lifecycle {
    /// A full member: owns its ranges.
    Normal,
    /// Pulling the ranges it gains; not yet serving reads for them.
    Joining,
    /// Handing its ranges to their new owners.
    Leaving,
    /// Gone from the ring.
    Left,
}

/// One range being received.
#[derive(Debug)]
pub(super) struct Incoming {
    range: Range,
    from: NodeId,
    /// Other nodes that held the range, to ask if `from` fails.
    alternatives: Vec<NodeId>,
    /// The cursor of the page asked for.
    after: Option<Vec<u8>>,
    keys: u64,
    bytes: u64,
    /// Whether the source offered it (a leave) and must be told when it is done.
    offered: bool,
    /// Incremented on every request, so a stale timeout is recognised.
    attempt: u64,
}

/// The node's streams in both directions.
#[derive(Debug, Default)]
pub(super) struct Streams {
    incoming: BTreeMap<u64, Incoming>,
    /// Offers made while leaving: session -> new owner.
    offers: BTreeMap<u64, (Range, NodeId)>,
}

fn entry_bytes(entries: &[(Vec<u8>, Cell)]) -> u64 {
    entries
        .iter()
        .map(|(k, c)| (k.len() + c.footprint()) as u64)
        .sum()
}

impl Node {
    /// Starts joining: pulls every range this node gains when its tokens are added to the ring
    /// it knows. With nothing to pull (an empty ring), it joins at once.
    pub(super) fn start_join(&mut self, now: Millis) {
        let me = self.config.id;
        let before = self.ring.without_node(me);
        let after = before.with_node(me, self.config.tokens.clone());
        let moves: Vec<RangeMove> = plan(&before, &after, self.config.n)
            .moves
            .into_iter()
            .filter(|m| m.to == me)
            .collect();
        self.lifecycle = Lifecycle::Joining;
        self.event(NodeEvent::JoinStarted {
            ranges: moves.len(),
        });
        for m in moves {
            let alternatives = before.preference_list(m.range.end, self.config.n);
            self.pull(now, m.range, m.from, alternatives, false, None);
        }
        self.maybe_finish_join(after);
    }

    /// Starts leaving: offers every range this node holds to the node that gains it.
    pub(super) fn start_leave(&mut self) {
        let me = self.config.id;
        let after = self.ring.without_node(me);
        let moves: Vec<RangeMove> = plan(&self.ring, &after, self.config.n)
            .moves
            .into_iter()
            .collect();
        self.lifecycle = Lifecycle::Leaving;
        self.announce(crate::membership::MemberStatus::Leaving);
        let mine: Vec<&RangeMove> = moves.iter().filter(|m| m.from == me).collect();
        self.event(NodeEvent::LeaveStarted { ranges: mine.len() });
        for m in mine {
            let session = self.next_seq();
            self.streams.offers.insert(session, (m.range, m.to));
            self.send(
                m.to,
                Message::StreamOffer {
                    session,
                    range: m.range,
                },
            );
        }
        self.maybe_finish_leave();
    }

    fn pull(
        &mut self,
        now: Millis,
        range: Range,
        from: NodeId,
        alternatives: Vec<NodeId>,
        offered: bool,
        session: Option<u64>,
    ) {
        let session = session.unwrap_or_else(|| self.next_seq());
        self.event(NodeEvent::StreamStarted {
            range,
            from,
            to: self.config.id,
        });
        self.streams.incoming.insert(
            session,
            Incoming {
                range,
                from,
                alternatives,
                after: None,
                keys: 0,
                bytes: 0,
                offered,
                attempt: 0,
            },
        );
        self.request_page(now, session);
    }

    fn request_page(&mut self, now: Millis, session: u64) {
        let Some(s) = self.streams.incoming.get_mut(&session) else {
            return;
        };
        s.attempt += 1;
        let (to, range, after, attempt) = (s.from, s.range, s.after.clone(), s.attempt);
        self.send(
            to,
            Message::StreamRequest {
                session,
                range,
                after,
            },
        );
        let deadline = Millis(now.0 + STREAM_PAGE_TIMEOUT_MS);
        self.set_timer(deadline, Timer::StreamTimeout { session, attempt });
    }

    pub(super) fn on_stream_timeout(&mut self, now: Millis, session: u64, attempt: u64) {
        let me = self.config.id;
        let Some(s) = self.streams.incoming.get_mut(&session) else {
            return;
        };
        if s.attempt != attempt {
            return;
        }
        // Ask again: the same source if it still looks up, else another that held the range.
        if self.down.contains(&s.from)
            && let Some(other) = s
                .alternatives
                .iter()
                .copied()
                .find(|n| *n != me && !self.down.contains(n))
        {
            s.from = other;
        }
        self.request_page(now, session);
    }

    pub(super) fn on_stream_request(
        &mut self,
        from: NodeId,
        session: u64,
        range: Range,
        after: Option<Vec<u8>>,
    ) {
        let op = StorageOp::ScanRange {
            range,
            after,
            limit: STREAM_PAGE_KEYS,
        };
        self.storage_op(
            op,
            StorageWait::StreamServe {
                to: from,
                session,
                range,
            },
        );
    }

    pub(super) fn on_stream_served(
        &mut self,
        to: NodeId,
        session: u64,
        range: Range,
        result: StorageResult,
    ) {
        if let StorageResult::Range { entries, next } = result {
            self.send(
                to,
                Message::StreamBatch {
                    session,
                    range,
                    entries,
                    next,
                },
            );
        }
        // A failed scan is not answered: the requester's deadline asks again.
    }

    pub(super) fn on_stream_batch(
        &mut self,
        now: Millis,
        from: NodeId,
        session: u64,
        entries: Vec<(Vec<u8>, Cell)>,
        next: Option<Vec<u8>>,
    ) {
        let Some(s) = self.streams.incoming.get_mut(&session) else {
            return;
        };
        if s.from != from {
            return;
        }
        s.keys += entries.len() as u64;
        s.bytes += entry_bytes(&entries);
        if entries.is_empty() {
            self.on_stream_page_stored(now, session, next);
        } else {
            let op = StorageOp::WriteBatch { entries };
            self.storage_op(op, StorageWait::StreamStore { session, next });
        }
    }

    pub(super) fn on_stream_page_stored(
        &mut self,
        now: Millis,
        session: u64,
        next: Option<Vec<u8>>,
    ) {
        let Some(s) = self.streams.incoming.get_mut(&session) else {
            return;
        };
        match next {
            Some(cursor) => {
                s.after = Some(cursor);
                self.request_page(now, session);
            }
            None => {
                let Some(done) = self.streams.incoming.remove(&session) else {
                    return;
                };
                self.event(NodeEvent::StreamDone {
                    range: done.range,
                    from: done.from,
                    to: self.config.id,
                    keys: done.keys,
                    bytes: done.bytes,
                });
                if done.offered {
                    let msg = Message::StreamDone {
                        session,
                        keys: done.keys,
                        bytes: done.bytes,
                    };
                    self.send(done.from, msg);
                }
                if self.lifecycle == Lifecycle::Joining {
                    let after = self
                        .ring
                        .without_node(self.config.id)
                        .with_node(self.config.id, self.config.tokens.clone());
                    self.maybe_finish_join(after);
                }
            }
        }
    }

    pub(super) fn on_stream_offer(
        &mut self,
        now: Millis,
        from: NodeId,
        session: u64,
        range: Range,
    ) {
        if self.streams.incoming.contains_key(&session) {
            return;
        }
        self.pull(now, range, from, Vec::new(), true, Some(session));
    }

    pub(super) fn on_stream_done(&mut self, session: u64) {
        if self.streams.offers.remove(&session).is_some() {
            self.maybe_finish_leave();
        }
    }

    fn maybe_finish_join(&mut self, after: Ring) {
        if self.lifecycle == Lifecycle::Joining && self.streams.incoming.is_empty() {
            self.lifecycle = Lifecycle::Normal;
            self.ring = after;
            self.announce(crate::membership::MemberStatus::Alive);
            self.event(NodeEvent::Joined);
        }
    }

    fn maybe_finish_leave(&mut self) {
        if self.lifecycle == Lifecycle::Leaving && self.streams.offers.is_empty() {
            self.lifecycle = Lifecycle::Left;
            self.ring = self.ring.without_node(self.config.id);
            self.announce(crate::membership::MemberStatus::Left);
            self.event(NodeEvent::Left);
        }
    }
}
