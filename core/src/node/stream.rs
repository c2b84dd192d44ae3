//! Streaming token ranges between nodes when one joins or leaves, and handing over what a node
//! no longer replicates.
//!
//! **Join.** A joining node computes, with the ring's pure [`plan`], which ranges it gains and
//! from whom ([`RangeMove`]s whose `to` is itself), and *pulls* each: a
//! [`Message::StreamRequest`] answered by bounded [`Message::StreamBatch`] pages, each applied
//! through its storage engine (LWW, so streaming never overwrites newer data) before the next
//! page is asked for. When every range has arrived the node is a full member: it serves reads
//! for its ranges only from then on.
//!
//! **Handover.** A node that stops replicating a range, because it leaves or because the ring
//! changed under it (a join took the range, or it restarts into a ring that changed while it
//! was down), hands its copy over, so that a write only it acknowledged is not stranded where
//! no read or repair looks. [`handover`] names, for each range it loses, one node that
//! replicates the range afterwards: the node that gains it or, when none does (N at least the
//! nodes left), the first remaining replica. The node *offers* each range
//! ([`Message::StreamOffer`]); the receiver pulls it the same way as a join and answers
//! [`Message::StreamDone`]. An offer is repeated every [`OFFER_RETRY_MS`] until that answer
//! arrives (a receiver that already pulls it ignores the repeat; one that finished and whose
//! answer was lost pulls it again, which LWW makes harmless), and dropped only if its receiver
//! leaves the ring.
//!
//! **Writes during a handover.** A write that reaches a node for a key it is handing over
//! (it is leaving), or for a key it no longer replicates at all (a coordinator, or a hint,
//! still routing by an older ring), is stored here *and* kept as a hint for the node that now
//! holds the key (see [`Node::handover_receivers`]); the replica acknowledges only once both
//! are durable. Hinted handoff then delivers it, with retries, so no acknowledged write
//! depends on a message that may be lost.
//!
//! **Leave.** A leaving node has left only once every offer is answered, every hint it holds
//! (for its receivers, and those it held for other owners: to the owner when up, otherwise to
//! another stand-in) is handed on, and no replica write is still in flight. From then on it
//! refuses writes ([`ReplicaError::Left`]). What the cluster then promises is stated in
//! ARCHITECTURE.md ("Fault model").
//!
//! **Pages.** A page holds at most [`STREAM_PAGE_KEYS`] keys and about
//! [`STREAM_PAGE_BYTES_TARGET`] bytes of keys and cells (an entry larger than that travels
//! alone), so a page of large values stays far below the wire's frame bound
//! ([`crate::wire::MESSAGE_BYTES_MAX`]). A source that holds an entry no frame can carry
//! answers [`Message::StreamRefused`] instead of a page; the receiver then asks another node
//! that held the range and, when every one refused, gives the range up with
//! [`NodeEvent::StreamFailed`], once: a joining node then stays joining (it never serves a
//! range it does not hold), and a range offered in a handover is not pulled again, so its
//! leaving node stays leaving. Either way an operator has to act; nothing retries silently.
//!
//! Every page has a deadline: a stream whose source stops answering is asked again, from
//! another node that held the range if the first is believed down. Bytes and keys moved are
//! counted per range and logged ([`NodeEvent::StreamDone`]), so a test can compare what moved
//! with what the plan predicted.

use super::{Node, NodeEvent, RangePage, StorageOp, StorageResult, StorageWait, Timer};
use crate::ring::{
    Range, RangeMove, Ring, handover, handover_receiver, held_elsewhere, key_token, plan,
};
use crate::storage::Cell;
use crate::wire::Message;
#[cfg(doc)]
use crate::wire::ReplicaError;
use crate::{Millis, NodeId};
use std::collections::BTreeMap;

/// Keys per streamed page at most.
pub const STREAM_PAGE_KEYS: usize = 256;
/// Bytes of keys and cells per streamed page, about: a page stops at the entry that would take
/// it past this (an entry larger than it travels alone).
pub const STREAM_PAGE_BYTES_TARGET: usize = 1 << 20;
/// How long a page may take before it is asked for again.
pub const STREAM_PAGE_TIMEOUT_MS: u64 = 2_000;
/// How long an offered range waits for its receiver's [`Message::StreamDone`] before it is
/// offered again.
pub const OFFER_RETRY_MS: u64 = 2_000;

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

impl Lifecycle {
    /// Lower-case name, as the node's `/cluster` shows it.
    pub fn name(&self) -> &'static str {
        match self {
            Lifecycle::Normal => "normal",
            Lifecycle::Joining => "joining",
            Lifecycle::Leaving => "leaving",
            Lifecycle::Left => "left",
        }
    }
}

/// One range being received.
#[derive(Clone, Debug)]
pub(super) struct Incoming {
    range: Range,
    from: NodeId,
    /// Other nodes that held the range, to ask if `from` fails.
    alternatives: Vec<NodeId>,
    /// The cursor of the page asked for.
    after: Option<Vec<u8>>,
    keys: u64,
    bytes: u64,
    /// The source's session number, if the source offered the range (a handover): it is told
    /// with [`Message::StreamDone`] when the range is stored.
    offer: Option<u64>,
    /// Incremented on every request, so a stale timeout is recognised.
    attempt: u64,
    /// Sources that refused the range ([`Message::StreamRefused`]).
    refused: Vec<NodeId>,
}

/// A range this node offered, until its receiver confirms it.
#[derive(Clone, Debug)]
pub(super) struct Offer {
    range: Range,
    to: NodeId,
    /// Incremented on every repeat, so a stale retry timer is recognised.
    attempt: u64,
}

/// The node's streams in both directions. Sessions are numbered by this node (an offered
/// range is pulled under a session of the receiver's own, so numbers never collide).
#[derive(Clone, Debug, Default)]
pub(super) struct Streams {
    incoming: BTreeMap<u64, Incoming>,
    /// Ranges offered (leaving, or lost in a ring change), until the receiver confirms them.
    offers: BTreeMap<u64, Offer>,
    /// Every `(range, receiver)` offered while leaving, so that a leave re-planned after a
    /// ring change offers only what is new.
    leave_offered: std::collections::BTreeSet<(Range, NodeId)>,
    /// Ranges given up because every source refused them: a join does not finish without them,
    /// and an offer of one is not pulled again (at most one entry per range).
    failed: std::collections::BTreeSet<Range>,
}

fn entry_bytes(entries: &[(Vec<u8>, Cell)]) -> u64 {
    entries
        .iter()
        .map(|(k, c)| (k.len() + c.footprint()) as u64)
        .sum()
}

/// Cuts a scanned page to about [`STREAM_PAGE_BYTES_TARGET`] bytes (at least one entry); a cut
/// page's cursor is its last key, so the next request resumes after it.
fn bound_page(mut entries: Vec<(Vec<u8>, Cell)>, next: Option<Vec<u8>>) -> RangePage {
    let mut bytes = 0;
    let keep = entries
        .iter()
        .position(|(k, c)| {
            bytes += k.len() + c.footprint();
            bytes > STREAM_PAGE_BYTES_TARGET
        })
        .map_or(entries.len(), |over| over.max(1));
    if keep == entries.len() {
        return (entries, next);
    }
    entries.truncate(keep);
    let cursor = entries.last().map(|(k, _)| k.clone());
    (entries, cursor)
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
            self.pull(now, m.range, m.from, alternatives, None);
        }
        self.maybe_finish_join(after);
    }

    /// Starts leaving: offers every range this node replicates to the node that holds it
    /// after the leave ([`handover`]).
    pub(super) fn start_leave(&mut self, now: Millis) {
        if self.lifecycle != Lifecycle::Normal {
            return;
        }
        let me = self.config.id;
        let after = self.ring.without_node(me);
        let moves = handover(&self.ring, &after, self.config.n, me);
        self.lifecycle = Lifecycle::Leaving;
        self.announce(crate::membership::MemberStatus::Leaving);
        self.event(NodeEvent::LeaveStarted {
            ranges: moves.len(),
        });
        for m in moves {
            self.streams.leave_offered.insert((m.range, m.to));
            self.offer(now, m.range, m.to);
        }
        self.maybe_finish_leave();
    }

    /// Offers `range` to `to`, and arms the timer that offers it again until `to` confirms.
    fn offer(&mut self, now: Millis, range: Range, to: NodeId) {
        let session = self.next_seq();
        self.streams.offers.insert(
            session,
            Offer {
                range,
                to,
                attempt: 0,
            },
        );
        self.send_offer(now, session);
    }

    fn send_offer(&mut self, now: Millis, session: u64) {
        let Some(o) = self.streams.offers.get_mut(&session) else {
            return;
        };
        o.attempt += 1;
        let (to, range, attempt) = (o.to, o.range, o.attempt);
        self.send(to, Message::StreamOffer { session, range });
        self.set_timer(
            Millis(now.0 + OFFER_RETRY_MS),
            Timer::OfferRetry { session, attempt },
        );
    }

    /// An offer's receiver has not confirmed in time: offer it again, unless the receiver
    /// is no longer in the ring (then nothing is owed to it).
    pub(super) fn on_offer_retry(&mut self, now: Millis, session: u64, attempt: u64) {
        let Some(o) = self.streams.offers.get(&session) else {
            return;
        };
        if o.attempt != attempt {
            return;
        }
        if !self.ring.contains_node(o.to) {
            self.streams.offers.remove(&session);
            return self.maybe_finish_leave();
        }
        self.send_offer(now, session);
    }

    /// The nodes that must also get a write for `key` that reaches this node as a replica:
    /// none while this node replicates the key and stays; the key's receiver ([`handover`])
    /// while this node is leaving; every replica of the key when this node no longer
    /// replicates it (its sender routes by an older ring).
    pub(super) fn handover_receivers(&self, key: &[u8]) -> Vec<NodeId> {
        let me = self.config.id;
        let n = self.config.n;
        let token = key_token(key);
        let others = |ring: &Ring| -> Vec<NodeId> {
            let mut list = ring.preference_list(token, n);
            list.retain(|node| *node != me);
            list
        };
        match self.lifecycle {
            Lifecycle::Joining | Lifecycle::Left => Vec::new(),
            Lifecycle::Leaving => {
                let after = self.ring.without_node(me);
                if self.ring.preference_list(token, n).contains(&me) {
                    handover_receiver(&self.ring, &after, n, me, token)
                        .into_iter()
                        .collect()
                } else {
                    others(&after)
                }
            }
            Lifecycle::Normal => {
                if self.ring.preference_list(token, n).contains(&me) {
                    Vec::new()
                } else {
                    others(&self.ring)
                }
            }
        }
    }

    fn pull(
        &mut self,
        now: Millis,
        range: Range,
        from: NodeId,
        alternatives: Vec<NodeId>,
        offer: Option<u64>,
    ) {
        let session = self.next_seq();
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
                offer,
                attempt: 0,
                refused: Vec::new(),
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
        // A failed scan is not answered: the requester's deadline asks again.
        let StorageResult::Range { entries, next } = result else {
            return;
        };
        let (entries, next) = bound_page(entries, next);
        let lone_bytes = match entries.as_slice() {
            [(k, c)] if k.len() + c.footprint() > STREAM_PAGE_BYTES_TARGET => {
                Some(k.len() + c.footprint())
            }
            _ => None,
        };
        let msg = Message::StreamBatch {
            session,
            range,
            entries,
            next,
        };
        // Only a lone entry past the target can be over the frame bound: check it with the
        // encoder the links use.
        if let Some(bytes) = lone_bytes
            && let Err(e) = crate::wire::Envelope::encode(&msg)
        {
            let reason = format!("an entry of {bytes} bytes does not fit in a frame: {e}");
            return self.send(
                to,
                Message::StreamRefused {
                    session,
                    range,
                    reason,
                },
            );
        }
        self.send(to, msg);
    }

    /// The source refused the page: ask another node that held the range, or give it up.
    pub(super) fn on_stream_refused(
        &mut self,
        now: Millis,
        from: NodeId,
        session: u64,
        reason: String,
    ) {
        let me = self.config.id;
        let Some(s) = self.streams.incoming.get_mut(&session) else {
            return;
        };
        if s.from != from {
            return;
        }
        s.refused.push(from);
        let other = s
            .alternatives
            .iter()
            .copied()
            .find(|n| *n != me && !s.refused.contains(n));
        if let Some(other) = other {
            s.from = other;
            return self.request_page(now, session);
        }
        let Some(gone) = self.streams.incoming.remove(&session) else {
            return;
        };
        self.streams.failed.insert(gone.range);
        self.event(NodeEvent::StreamFailed {
            range: gone.range,
            from,
            to: me,
            reason,
        });
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
                if let Some(offered) = done.offer {
                    let msg = Message::StreamDone {
                        session: offered,
                        keys: done.keys,
                        bytes: done.bytes,
                    };
                    self.send(done.from, msg);
                    self.hand_on_received(now, done.from, done.range);
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
        let pulling = self
            .streams
            .incoming
            .values()
            .any(|s| s.from == from && s.offer == Some(session));
        // A node that has left takes nothing more (it would have to hand it on again), and a
        // range that could not be streamed is not asked for again at every repeated offer.
        if !pulling && self.lifecycle != Lifecycle::Left && !self.streams.failed.contains(&range) {
            self.pull(now, range, from, Vec::new(), Some(session));
        }
    }

    /// After the ring changed from `old` to `new`: offers every range this node no longer
    /// replicates to the node that holds it now ([`handover`]). The node that joined (or the
    /// plan's chosen source) already streamed the range, but from one replica: this node may
    /// hold a newer version (a write acknowledged only here), which would otherwise be
    /// stranded where no repair looks. A leaving node also plans its leave again against the
    /// new ring (a node that joined meanwhile may now be the one to receive a range) and
    /// offers what it has not offered yet; offers already made stand.
    pub(super) fn hand_over_lost_ranges(&mut self, now: Millis, old: &Ring, new: &Ring) {
        let me = self.config.id;
        let n = self.config.n;
        match self.lifecycle {
            Lifecycle::Normal if new.contains_node(me) => {
                for m in handover(old, new, n, me) {
                    self.offer(now, m.range, m.to);
                }
            }
            Lifecycle::Leaving => {
                // What the change took from it, and what it still hands over to leave.
                let mut moves = handover(old, new, n, me);
                moves.extend(handover(new, &new.without_node(me), n, me));
                for m in moves {
                    if self.streams.leave_offered.insert((m.range, m.to)) {
                        self.offer(now, m.range, m.to);
                    }
                }
            }
            _ => {}
        }
    }

    /// After storing `range`, offered by `from`: hands on the pieces this node does not
    /// replicate once `from` is gone (the ring changed while it streamed, or this node is
    /// leaving too), so that what `from` handed over is not stranded here.
    fn hand_on_received(&mut self, now: Millis, from: NodeId, range: Range) {
        let me = self.config.id;
        let mut view = self.ring.without_node(from);
        match self.lifecycle {
            Lifecycle::Normal => {}
            Lifecycle::Leaving => view = view.without_node(me),
            Lifecycle::Joining | Lifecycle::Left => return,
        }
        for m in held_elsewhere(&view, self.config.n, me, range) {
            if m.to != me && m.to != from {
                self.offer(now, m.range, m.to);
            }
        }
    }

    pub(super) fn on_stream_done(&mut self, from: NodeId, session: u64) {
        if self
            .streams
            .offers
            .get(&session)
            .is_some_and(|o| o.to == from)
        {
            self.streams.offers.remove(&session);
            self.maybe_finish_leave();
        }
    }

    fn maybe_finish_join(&mut self, after: Ring) {
        if self.lifecycle == Lifecycle::Joining
            && self.streams.incoming.is_empty()
            && self.streams.failed.is_empty()
        {
            self.lifecycle = Lifecycle::Normal;
            self.ring = after;
            self.announce(crate::membership::MemberStatus::Alive);
            self.event(NodeEvent::Joined);
        }
    }

    /// Leaves once nothing this node holds is still owed to another node: every offer
    /// confirmed, every hint handed on (the hint count known), no replica write in flight.
    pub(super) fn maybe_finish_leave(&mut self) {
        // Called after every replica write: only a leaving node looks further.
        if self.lifecycle != Lifecycle::Leaving {
            return;
        }
        let owed = !self.streams.offers.is_empty()
            || !self.hints.handed_on()
            || self.storage.values().any(|w| {
                matches!(
                    w,
                    StorageWait::ReplicaWrite { .. } | StorageWait::HandOnCheck { .. }
                )
            });
        if !owed {
            self.lifecycle = Lifecycle::Left;
            self.ring = self.ring.without_node(self.config.id);
            self.announce(crate::membership::MemberStatus::Left);
            self.event(NodeEvent::Left);
        }
    }
}
