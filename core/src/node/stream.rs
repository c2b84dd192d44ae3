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
/// How long a node forwards writes for a range it lost in a ring change.
pub const HANDOVER_FORWARD_MS: u64 = 30_000;
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
    /// Ranges this node handed over (leaving, or losing them in a ring change), with their new
    /// owner and until when (local time; `None`: for good): writes that still arrive for them,
    /// from coordinators that have not heard of the change, are forwarded.
    pub(super) handed: Vec<(Range, NodeId, Option<Millis>)>,
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
            self.streams.handed.push((m.range, m.to, None));
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

    /// Forwards a write this leaving node received to the new owners of its key, so that a
    /// write racing the handover (after the range was streamed) is not lost with this node.
    pub(super) fn forward_if_handed_over(&mut self, now: Millis, key: &[u8], cell: &Cell) {
        if self.streams.handed.is_empty() {
            return;
        }
        self.streams
            .handed
            .retain(|(_, _, until)| until.is_none_or(|u| now <= u));
        let token = crate::ring::key_token(key);
        let owners: Vec<NodeId> = self
            .streams
            .handed
            .iter()
            .filter(|(range, _, _)| range.contains(token))
            .map(|(_, to, _)| *to)
            .collect();
        for to in owners {
            let req = self.req_id();
            let msg = Message::Replicate {
                req,
                key: key.to_vec(),
                cell: cell.clone(),
                hint_for: None,
                purpose: crate::wire::WritePurpose::HintReplay,
            };
            self.send(to, msg);
        }
    }

    /// After the ring changed from `old` to `new`: offers every range this node no longer
    /// replicates to each node that gains it, and forwards writes for it for a while. The
    /// node that joined (or the plan's chosen source) already streamed the range, but from one
    /// replica: this node may hold a newer version (a write acknowledged only here), which
    /// would otherwise be stranded where no repair looks.
    pub(super) fn hand_over_lost_ranges(&mut self, now: Millis, old: &Ring, new: &Ring) {
        let me = self.config.id;
        if self.lifecycle != Lifecycle::Normal || !new.contains_node(me) {
            return;
        }
        let n = self.config.n;
        let until = Millis(now.0 + HANDOVER_FORWARD_MS);
        for m in plan(old, new, n).moves {
            let lost = old.preference_list(m.range.end, n).contains(&me)
                && !new.preference_list(m.range.end, n).contains(&me);
            if lost && m.to != me {
                let session = self.next_seq();
                self.streams.handed.push((m.range, m.to, Some(until)));
                self.send(
                    m.to,
                    Message::StreamOffer {
                        session,
                        range: m.range,
                    },
                );
            }
        }
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
