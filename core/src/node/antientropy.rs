//! The node's side of Merkle-tree anti-entropy: which range to repair next, with whom, and the
//! plumbing between a repair [`Session`] and the node's storage and network.
//!
//! Every `anti_entropy_interval_ms` the node picks the next of the ranges it replicates
//! (round-robin) and another live replica of it (the next one on every pass over the ranges:
//! `repair_choice`), builds the range's [`MerkleTree`] from a
//! range scan of its data store, and initiates a session. The peer builds its own tree the same
//! way when the first message arrives (buffering it meanwhile) and answers. Leaves that differ
//! are read through the same range scans; the newer cells found are written through the
//! storage engine with LWW (tombstones too). Trees are rebuilt for every session rather than
//! kept up to date, which costs one scan of the range per repair.
//!
//! A session this node initiated that fails (messages are lost, or duplicated out of place:
//! sessions do not retransmit) is tried again, same range and peer, at the next round.
//!
//! Bounds: one session initiated at a time, at most [`RESPONDER_SESSIONS_MAX`] answered at a
//! time (more are refused with an abort), [`AE_BUFFERED_MAX`] messages buffered per session
//! while its tree builds, and a deadline per session.
//!
//! **Budget** (`NodeConfig::anti_entropy_keys_per_sec`, like Cassandra's repair throughput
//! throttle or Riak's limit on tree builds): every key a repair scan loads (building a tree,
//! loading a leaf; as initiator or responder) is charged to a bucket that refills at that rate
//! and holds at most one second of it. When the interval's timer finds the bucket in debt, the
//! next session starts only once the debt is paid. So on average the keys this node loads for
//! the sessions it starts and answers stay within the budget, unless its peers' sessions alone
//! exceed it (each peer is bounded by its own budget), and a session in progress is never
//! slowed (its messages keep their deadlines). A whole-ring session over `K` keys costs about
//! `2K` on each side (the tree, then the leaves that differ), so it runs at most every
//! `2K / budget` seconds on a node that only starts sessions. Scans are still walks of the
//! store when a range is wide (see the native node's scanner): the budget counts keys loaded,
//! which is what the node task hashes and compares.
//!
//! **Tombstone grace against the repair interval.** A replica that missed a delete keeps the old
//! value; if the other replicas purge their tombstone before anti-entropy has carried it over,
//! the old value comes back (`core/tests/anti_entropy.rs` shows it happening with a 5 s grace and
//! no repair). The grace period (`LsmConfig::tombstone_grace_ms`: 10 days by default, an hour in
//! the simulator) must therefore exceed a full repair cycle: `anti_entropy_interval_ms` × the
//! node's repair ranges, plus the longest a replica may stay down. Hints are bounded by
//! `hint_ttl_ms`, which must not exceed the grace period, for the same reason (3 hours
//! against 10 days by default; an hour each in the simulator).
//!
//! Under a write load, at 3 nodes and 100,000 keys, a node that starts one whole-ring session a
//! cycle and answers its two peers' loads about 600,000 keys a cycle, so at the native node's
//! default budget (10,000 keys a second) a cycle takes about a minute instead of the 10 s
//! interval. A tree is built page by page without hashing ([`MerkleTree::insert_unhashed`]) and
//! hashed once after the last page.

use super::{Node, NodeEvent, StorageOp, StorageResult, StorageWait, StoreId, Timer};
use crate::antientropy::{AeMsg, AeOutput, MerkleTree, Role, Session};
use crate::ring::Range;
use crate::storage::Cell;
use crate::wire::Message;
use crate::{Millis, NodeId};
use std::collections::BTreeMap;

/// Sessions this node answers at once.
pub const RESPONDER_SESSIONS_MAX: usize = 4;
/// Messages kept for a session whose tree is still being built.
pub const AE_BUFFERED_MAX: usize = 64;
/// Keys per page when scanning a range.
pub const AE_SCAN_PAGE_KEYS: usize = 1024;
/// The default for how long a session may go without a message before it is given up (a lost
/// message would otherwise stall it; the next interval starts a fresh one).
pub const AE_SESSION_TIMEOUT_MS: u64 = 10_000;

/// A session's identity: who initiated it, and their number for it.
pub(super) type SessionKey = (NodeId, u64);

/// What a range scan is for.
#[derive(Debug, Clone)]
pub(super) enum ScanPurpose {
    /// Building the session's tree.
    Tree,
    /// Loading leaf `leaf` for the session.
    Leaf(u32),
}

/// One session, while its tree builds and after.
#[derive(Clone, Debug)]
struct Repair {
    peer: NodeId,
    range: Range,
    role: Role,
    tree: MerkleTree,
    /// `None` while the tree is being built.
    session: Option<Session>,
    buffered: Vec<AeMsg>,
    /// Entries of leaves being loaded.
    loading: BTreeMap<u32, Vec<(Vec<u8>, Cell)>>,
    /// The session is given up if nothing happens before this (local time).
    deadline: Millis,
}

/// Totals for metrics and the UI.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AntiEntropyStats {
    /// Sessions completed.
    pub sessions_done: u64,
    /// Sessions failed or timed out.
    pub sessions_failed: u64,
    /// Bytes of anti-entropy messages sent and received.
    pub bytes: u64,
    /// Keys written because a replica had a newer version.
    pub keys_repaired: u64,
}

/// The node's anti-entropy state.
#[derive(Clone, Debug, Default)]
pub(super) struct AntiEntropy {
    /// Rounds started: which range and peer come next ([`repair_choice`]).
    next: usize,
    /// A session this node initiated that failed (a message lost, a duplicate it could not
    /// place): its range and peer are tried again at the next round, before the rotation.
    retry: Option<(Range, NodeId)>,
    repairs: BTreeMap<SessionKey, Repair>,
    stats: AntiEntropyStats,
    budget: ScanBudget,
}

/// Which of its `peers` range number `range` is compared with on pass `pass` over the ranges
/// (one range a round): the next one on every pass, so every pair of replicas of every range
/// is compared within `peers` passes. (Choosing the range and the peer by one shared counter
/// instead pairs a range with the same peer on every pass whenever the number of ranges and
/// of peers have a common factor, and two replicas of a range may then never compare it.)
fn repair_choice(range: usize, pass: usize, peers: usize) -> usize {
    range.wrapping_add(pass) % peers.max(1)
}

impl AntiEntropy {
    pub(super) fn stats(&self) -> AntiEntropyStats {
        self.stats
    }
}

/// The bucket of the anti-entropy budget, in thousandths of a key (a budget of `r` keys a
/// second refills `r` of them per millisecond, so the arithmetic stays in integers and a
/// simulation replays it exactly).
#[derive(Clone, Debug, Default)]
struct ScanBudget {
    milli_keys: i64,
    /// When it was last refilled; `None` before the first use (it starts full).
    at: Option<Millis>,
    /// Keys loaded by repair scans since the start.
    scanned: u64,
}

impl ScanBudget {
    /// Brings the bucket up to `now` at `rate` keys a second; at most one second's worth.
    fn refill(&mut self, now: Millis, rate: u64) {
        let cap = i64::try_from(rate.saturating_mul(1_000)).unwrap_or(i64::MAX);
        let filled = match self.at {
            None => cap,
            Some(at) => {
                let elapsed = now.0.saturating_sub(at.0);
                let add = i64::try_from(elapsed.saturating_mul(rate)).unwrap_or(i64::MAX);
                self.milli_keys.saturating_add(add).min(cap)
            }
        };
        self.milli_keys = filled;
        self.at = Some(now);
    }

    fn charge(&mut self, keys: usize) {
        self.scanned = self.scanned.saturating_add(keys as u64);
        let milli = i64::try_from(keys)
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000);
        self.milli_keys = self.milli_keys.saturating_sub(milli);
    }

    /// Milliseconds until the debt is paid at `rate` keys a second (0: not in debt).
    fn debt_ms(&self, rate: u64) -> u64 {
        if self.milli_keys >= 0 || rate == 0 {
            return 0;
        }
        self.milli_keys.unsigned_abs().div_ceil(rate)
    }
}

impl Node {
    /// Anti-entropy totals.
    pub fn anti_entropy_stats(&self) -> AntiEntropyStats {
        self.ae.stats()
    }

    /// Keys loaded by anti-entropy's range scans since the start (what its budget counts).
    pub fn anti_entropy_keys_scanned(&self) -> u64 {
        self.ae.budget.scanned
    }

    pub(super) fn on_anti_entropy_timer(&mut self, now: Millis) {
        let interval = self.config.anti_entropy_interval_ms;
        if interval == 0 {
            return;
        }
        let rate = self.config.anti_entropy_keys_per_sec;
        if rate > 0 {
            self.ae.budget.refill(now, rate);
            let debt = self.ae.budget.debt_ms(rate);
            if debt > 0 {
                // Over budget: the next session waits until the debt is paid.
                return self.set_timer(Millis(now.0 + debt), Timer::AntiEntropy);
            }
        }
        self.set_timer(Millis(now.0 + interval), Timer::AntiEntropy);
        let me = self.config.id;
        if self
            .ae
            .repairs
            .keys()
            .any(|(initiator, _)| *initiator == me)
        {
            return;
        }
        let ranges = self.repair_ranges();
        if ranges.is_empty() {
            return;
        }
        if let Some((range, peer)) = self.ae.retry.take()
            && self.believes_up(peer)
            && ranges
                .iter()
                .any(|(r, replicas)| *r == range && replicas.contains(&peer))
        {
            let id = self.next_seq();
            return self.begin_repair(now, (me, id), peer, range, Role::Initiator);
        }
        let round = self.ae.next;
        self.ae.next = round.wrapping_add(1);
        let (range_index, pass) = (round % ranges.len(), round / ranges.len());
        let (range, replicas) = ranges[range_index].clone();
        let peers: Vec<NodeId> = replicas
            .into_iter()
            .filter(|p| *p != me && self.believes_up(*p))
            .collect();
        if peers.is_empty() {
            return;
        }
        let peer = peers[repair_choice(range_index, pass, peers.len())];
        let id = self.next_seq();
        self.begin_repair(now, (me, id), peer, range, Role::Initiator);
    }

    /// The ranges this node replicates, each with its replica set: adjacent ranges are merged
    /// only when they have the same replicas, so a peer holds every key of the range it is
    /// asked to compare.
    fn repair_ranges(&self) -> Vec<(Range, Vec<NodeId>)> {
        let me = self.config.id;
        let mut out: Vec<(Range, Vec<NodeId>)> = Vec::new();
        for (range, _) in self.ring.ranges() {
            let mut replicas = self.ring.preference_list(range.end, self.config.n);
            if !replicas.contains(&me) {
                continue;
            }
            replicas.sort_unstable();
            match out.last_mut() {
                Some((last, set)) if *set == replicas && last.end == range.start => {
                    last.end = range.end;
                }
                _ => out.push((range, replicas)),
            }
        }
        out
    }

    fn begin_repair(
        &mut self,
        now: Millis,
        key: SessionKey,
        peer: NodeId,
        range: Range,
        role: Role,
    ) {
        let Ok(tree) = MerkleTree::new(range, self.config.merkle_depth) else {
            return;
        };
        let repair = Repair {
            peer,
            range,
            role,
            tree,
            session: None,
            buffered: Vec::new(),
            loading: BTreeMap::new(),
            deadline: Millis(now.0 + self.config.anti_entropy_idle_timeout_ms),
        };
        self.ae.repairs.insert(key, repair);
        self.set_timer(
            Millis(now.0 + self.config.anti_entropy_idle_timeout_ms),
            Timer::AntiEntropyTimeout {
                initiator: key.0,
                session: key.1,
            },
        );
        self.scan_for_repair(key, range, None, ScanPurpose::Tree);
    }

    fn scan_for_repair(
        &mut self,
        key: SessionKey,
        range: Range,
        after: Option<Vec<u8>>,
        purpose: ScanPurpose,
    ) {
        let op = StorageOp::ScanRange {
            range,
            after,
            limit: AE_SCAN_PAGE_KEYS,
        };
        self.storage_op(
            op,
            StorageWait::RepairScan {
                key,
                range,
                purpose,
            },
        );
    }

    pub(super) fn on_repair_scan(
        &mut self,
        key: SessionKey,
        range: Range,
        purpose: ScanPurpose,
        result: StorageResult,
    ) {
        let StorageResult::Range { entries, next } = result else {
            return self.end_repair(key, Err("a range scan failed".to_string()));
        };
        self.ae.budget.charge(entries.len());
        let Some(repair) = self.ae.repairs.get_mut(&key) else {
            return;
        };
        match purpose {
            ScanPurpose::Tree => {
                for (k, cell) in &entries {
                    // A key outside the tree's range cannot be in a range scan. Hashed once,
                    // after the last page (below).
                    let _ = repair.tree.insert_unhashed(k, cell);
                }
            }
            ScanPurpose::Leaf(leaf) => repair.loading.entry(leaf).or_default().extend(entries),
        }
        if next.is_some() {
            return self.scan_for_repair(key, range, next, purpose);
        }
        let outputs = match purpose {
            ScanPurpose::Tree => {
                repair.tree.rehash();
                let mut outputs = Vec::new();
                let session = match repair.role {
                    Role::Initiator => {
                        let (s, out) = Session::initiate(&repair.tree);
                        outputs = out;
                        s
                    }
                    Role::Responder => Session::respond(&repair.tree),
                };
                let mut session = session;
                for msg in std::mem::take(&mut repair.buffered) {
                    outputs.extend(session.handle(&repair.tree, msg));
                }
                repair.session = Some(session);
                outputs
            }
            ScanPurpose::Leaf(leaf) => {
                let entries = repair.loading.remove(&leaf).unwrap_or_default();
                match repair.session.as_mut() {
                    Some(s) => s.leaf_loaded(&repair.tree, leaf, entries),
                    None => Vec::new(),
                }
            }
        };
        self.repair_outputs(key, outputs);
    }

    pub(super) fn on_anti_entropy_message(
        &mut self,
        now: Millis,
        from: NodeId,
        initiator: NodeId,
        session: u64,
        msg: AeMsg,
    ) {
        let key = (initiator, session);
        let me = self.config.id;
        if !self.ae.repairs.contains_key(&key) {
            let responders = self.ae.repairs.keys().filter(|(i, _)| *i != me).count();
            let first = matches!(msg, AeMsg::Request { level: 0, .. });
            if initiator == me || initiator != from || !first {
                return;
            }
            if responders >= RESPONDER_SESSIONS_MAX {
                let abort = AeMsg::Abort {
                    range: msg.range(),
                    reason: "busy".to_string(),
                };
                return self.send(
                    from,
                    Message::AntiEntropy {
                        initiator,
                        session,
                        msg: abort,
                    },
                );
            }
            self.begin_repair(now, key, from, msg.range(), Role::Responder);
        }
        let Some(repair) = self.ae.repairs.get_mut(&key) else {
            return;
        };
        if repair.peer != from {
            return;
        }
        let outputs = match repair.session.as_mut() {
            Some(s) => s.handle(&repair.tree, msg),
            None => {
                if repair.buffered.len() < AE_BUFFERED_MAX {
                    repair.buffered.push(msg);
                }
                Vec::new()
            }
        };
        self.repair_outputs(key, outputs);
    }

    fn repair_outputs(&mut self, key: SessionKey, outputs: Vec<AeOutput>) {
        let Some(repair) = self.ae.repairs.get(&key) else {
            return;
        };
        let (peer, range) = (repair.peer, repair.range);
        for output in outputs {
            match output {
                AeOutput::Send(msg) => {
                    self.send(
                        peer,
                        Message::AntiEntropy {
                            initiator: key.0,
                            session: key.1,
                            msg,
                        },
                    );
                }
                AeOutput::LoadLeaf {
                    leaf,
                    range: leaf_range,
                } => {
                    self.scan_for_repair(key, leaf_range, None, ScanPurpose::Leaf(leaf));
                }
                AeOutput::Apply { key: k, cell } => {
                    self.ae.stats.keys_repaired += 1;
                    let op = StorageOp::Write {
                        store: StoreId::Data,
                        key: k,
                        cell,
                    };
                    self.storage_op(op, StorageWait::RepairWrite);
                }
                AeOutput::Finished(stats) => {
                    self.ae.stats.bytes += stats.bytes_sent + stats.bytes_received;
                    self.event(NodeEvent::RepairDone {
                        range,
                        peer,
                        bytes: stats.bytes_sent + stats.bytes_received,
                        keys_repaired: stats.keys_applied,
                    });
                    self.end_repair(key, Ok(()));
                }
                AeOutput::Failed(e) => self.end_repair(key, Err(e.to_string())),
            }
        }
    }

    fn end_repair(&mut self, key: SessionKey, outcome: Result<(), String>) {
        let Some(repair) = self.ae.repairs.remove(&key) else {
            return;
        };
        match outcome {
            Ok(()) => self.ae.stats.sessions_done += 1,
            Err(reason) => {
                self.ae.stats.sessions_failed += 1;
                if key.0 == self.config.id {
                    self.ae.retry = Some((repair.range, repair.peer));
                }
                if let Some(s) = &repair.session {
                    let st = s.stats();
                    self.ae.stats.bytes += st.bytes_sent + st.bytes_received;
                }
                self.event(NodeEvent::RepairFailed {
                    range: repair.range,
                    peer: repair.peer,
                    reason,
                });
            }
        }
    }

    pub(super) fn on_anti_entropy_timeout(&mut self, now: Millis, initiator: NodeId, session: u64) {
        let key = (initiator, session);
        let Some(repair) = self.ae.repairs.get(&key) else {
            return;
        };
        if now < repair.deadline {
            // Messages arrived since the timer was set: wait until the new deadline.
            let at = repair.deadline;
            return self.set_timer(at, Timer::AntiEntropyTimeout { initiator, session });
        }
        self.end_repair(key, Err("no message in time (lost?)".to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{Input, NodeConfig, Output};
    use crate::ring::{Ring, Token};

    #[test]
    fn every_range_is_compared_with_every_peer_within_as_many_passes_as_peers() {
        for ranges in 1..12usize {
            for peers in 1..5usize {
                let mut seen = std::collections::BTreeSet::new();
                for round in 0..ranges * peers {
                    let (range, pass) = (round % ranges, round / ranges);
                    seen.insert((range, super::repair_choice(range, pass, peers)));
                }
                assert_eq!(seen.len(), ranges * peers, "{ranges} ranges, {peers} peers");
            }
        }
        // The first pass pairs range i with peer i, as a single counter would.
        assert_eq!(super::repair_choice(3, 0, 2), 1);
    }

    #[test]
    fn the_budget_refills_at_its_rate_and_saves_up_at_most_one_second() {
        let mut b = ScanBudget::default();
        b.refill(Millis(0), 1_000);
        assert_eq!(b.debt_ms(1_000), 0, "it starts full");
        b.charge(3_000);
        assert_eq!(b.debt_ms(1_000), 2_000, "1,000 held, 3,000 loaded");
        b.refill(Millis(500), 1_000);
        assert_eq!(b.debt_ms(1_000), 1_500);
        b.refill(Millis(2_000), 1_000);
        assert_eq!(b.debt_ms(1_000), 0);
        b.refill(Millis(60_000), 1_000);
        b.charge(1_001);
        assert_eq!(b.debt_ms(1_000), 1, "a minute idle saves up one second");
        assert_eq!(b.scanned, 4_001);
    }

    fn two_nodes(rate: u64) -> Node {
        let ring = Ring::new([
            (NodeId(1), vec![Token(0)]),
            (NodeId(2), vec![Token(1 << 63)]),
        ]);
        let mut config = NodeConfig::new(NodeId(1), 2, 1, 1).unwrap();
        config.anti_entropy_interval_ms = 1_000;
        config.anti_entropy_keys_per_sec = rate;
        Node::new(config, ring, Millis(0)).unwrap().0
    }

    fn scans_and_timers(out: &[Output]) -> (usize, Vec<Millis>) {
        let scans = out
            .iter()
            .filter(|o| {
                matches!(
                    o,
                    Output::Storage {
                        storage: StorageOp::ScanRange { .. },
                        ..
                    }
                )
            })
            .count();
        let timers = out
            .iter()
            .filter_map(|o| match o {
                Output::SetTimer {
                    at,
                    timer: Timer::AntiEntropy,
                } => Some(*at),
                _ => None,
            })
            .collect();
        (scans, timers)
    }

    #[test]
    fn a_node_over_its_budget_starts_its_next_session_once_the_debt_is_paid() {
        let mut node = two_nodes(1_000);
        node.ae.budget.refill(Millis(0), 1_000);
        node.ae.budget.charge(6_000);
        let out = node.handle(Millis(1_000), Input::Timer(Timer::AntiEntropy));
        assert_eq!(
            scans_and_timers(&out),
            (0, vec![Millis(5_000)]),
            "5,000 keys in debt less one second's refill: 4 s more"
        );
        let out = node.handle(Millis(5_000), Input::Timer(Timer::AntiEntropy));
        assert_eq!(
            scans_and_timers(&out),
            (1, vec![Millis(6_000)]),
            "paid: the session starts (its tree's scan) and the interval resumes"
        );
    }

    #[test]
    fn without_a_budget_the_interval_alone_decides() {
        let mut node = two_nodes(0);
        node.ae.budget.charge(1_000_000);
        let out = node.handle(Millis(1_000), Input::Timer(Timer::AntiEntropy));
        assert_eq!(scans_and_timers(&out), (1, vec![Millis(2_000)]));
    }
}
