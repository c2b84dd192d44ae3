//! The history checker: every client operation with its invocation and completion times, and
//! the promises a Dynamo-style store does (and does not) keep.
//!
//! * **Read-your-acknowledged-writes under strict quorums** (invariant (a)): with W + R > N and
//!   no clock skew, a read that begins after a write was acknowledged returns that write's
//!   version or a later one, *provided the failures stayed within what the quorum tolerates*:
//!   the write's W acks all came from its preference list (none from a stand-in holding a hint:
//!   a sloppy quorum's hinted copies sit where a read does not look until they are handed over),
//!   no replica lost acknowledged data in between (a crash under a sync policy other than
//!   sync-every-write), and the ring did not change around them (a join or leave in progress,
//!   or less than [`TOPOLOGY_SETTLE_MS`] before: coordinators may disagree on the replicas, and
//!   a write can reach a leaving node after it streamed the range; anti-entropy repairs it).
//!   Then any R replicas of the preference list intersect the W that acked.
//!   Stale reads outside those conditions are expected in a Dynamo and are counted separately.
//! * **Durability** (invariant (b)): with a sync-every-write policy, no acknowledged write is
//!   lost while at most N − W replicas crash: checked at the end of a run against what the
//!   nodes' storage holds.
//! * **What LWW costs** (teaching (c)): a *lost update* is a write acknowledged after another
//!   write to the same key was acknowledged (so it came later in real time) but with a smaller
//!   version (a slower or skewed clock): it can never be read. A *stale read* returns a version
//!   older than a write acknowledged before the read began. Both are counted and listed, with
//!   the operations involved.

use super::log::{OpId, OpKind};
use crate::node::{ClientOk, ClientResult};
use crate::storage::Version;
use crate::{Millis, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One client operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpRecord {
    /// Its id.
    pub id: OpId,
    /// PUT, GET or DELETE.
    pub kind: OpKind,
    /// The key.
    pub key: Vec<u8>,
    /// The coordinator.
    pub node: NodeId,
    /// Simulated time it was sent.
    pub invoked: Millis,
    /// Simulated time it completed, if it did.
    pub completed: Option<Millis>,
    /// Its outcome, if it completed.
    pub result: Option<ClientResult>,
    /// The acks (a write) or replies (a read) it asked for: its consistency against N, or the
    /// cluster's W or R (0 for a consistency the node refuses).
    pub quorum: usize,
}

impl OpRecord {
    /// The version a successful write wrote, or a successful read returned (`None` for a read
    /// that found nothing).
    pub fn version(&self) -> Option<Version> {
        match &self.result {
            Some(Ok(ClientOk::Written { version, .. })) => Some(*version),
            Some(Ok(ClientOk::Found { version, .. })) => Some(*version),
            Some(Ok(ClientOk::NotFound { version })) => *version,
            _ => None,
        }
    }

    fn succeeded(&self) -> bool {
        matches!(self.result, Some(Ok(_)))
    }

    fn is_write(&self) -> bool {
        matches!(self.kind, OpKind::Put | OpKind::Delete)
    }
}

/// An anomaly the checker found, with the operations involved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    /// The earlier, acknowledged write.
    pub write: OpId,
    /// The read that missed it, or the later write that lost to it.
    pub other: OpId,
    /// Whether failures stayed within the quorum's tolerance over the two operations (the
    /// write had no hinted acks and no replica lost data in between).
    pub stable: bool,
    /// Whether the two operations' quorums intersect: the write's acks and the read's replies
    /// add up to more than N. Only a stale read that is `stable` and `intersect` breaks the
    /// quorum invariant.
    pub intersect: bool,
}

/// What the checker found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// Operations that completed successfully.
    pub ok: usize,
    /// Operations that failed (quorum unavailable and the like).
    pub failed: usize,
    /// Operations still waiting for an answer.
    pub pending: usize,
    /// Reads that returned a version older than a write acknowledged before they began.
    pub stale_reads: Vec<Anomaly>,
    /// Writes acknowledged after another write to their key but with a smaller version.
    pub lost_updates: Vec<Anomaly>,
}

impl CheckReport {
    /// Stale reads whose quorums intersect and that happened while failures stayed within
    /// tolerance: without clock skew, these break the quorum invariant.
    pub fn strict_violations(&self) -> impl Iterator<Item = &Anomaly> {
        self.stale_reads.iter().filter(|a| a.stable && a.intersect)
    }
}

/// Every client operation of a run, and the times a replica may have lost acknowledged data.
///
/// The operations are in a persistent map ([`imbl::OrdMap`]): a clone shares them and copies
/// only the parts later changed, so the page's snapshots of a long run ([`super::Sim::fork`])
/// do not each copy every operation.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct History {
    /// N, the replicas of every key: two quorums intersect when they add up to more.
    replicas: usize,
    ops: imbl::OrdMap<OpId, OpRecord>,
    data_losses: Vec<Millis>,
    /// Times the ring changed (a join or leave began or ended, an operator removed a node, a
    /// node restarted into a ring that changed while it was down).
    topology_changes: Vec<Millis>,
    /// What the checker finds, kept up to date as operations complete.
    #[serde(skip)]
    live: super::live_check::LiveReport,
}

/// How long after a ring change the nodes' views may still disagree about replicas (gossip
/// spreading the change, streams in flight): quorum reads and writes may miss each other.
pub const TOPOLOGY_SETTLE_MS: u64 = 2_000;

impl History {
    /// An empty history of a cluster with `replicas` (N) replicas per key.
    pub fn new(replicas: usize) -> History {
        History {
            replicas,
            ..History::default()
        }
    }

    /// Records an invocation that asks for `quorum` acks (a write) or replies (a read).
    pub fn invoke(
        &mut self,
        id: OpId,
        kind: OpKind,
        key: Vec<u8>,
        node: NodeId,
        at: Millis,
        quorum: usize,
    ) {
        self.ops.insert(
            id,
            OpRecord {
                id,
                kind,
                key,
                node,
                invoked: at,
                completed: None,
                result: None,
                quorum,
            },
        );
    }

    /// Records a completion.
    pub fn complete(&mut self, id: OpId, at: Millis, result: ClientResult) {
        if let Some(op) = self.ops.get_mut(&id)
            && op.completed.is_none()
        {
            op.completed = Some(at);
            op.result = Some(result);
            let (losses, changes) = (&self.data_losses, &self.topology_changes);
            self.live.complete(op, self.replicas, |from, to| {
                no_data_loss_between(losses, from, to) && ring_stable_between(changes, from, to)
            });
        }
    }

    /// The checker's findings so far, kept as operations complete (bounded; see
    /// [`super::live_check`]).
    pub fn live(&self) -> &super::live_check::LiveReport {
        &self.live
    }

    /// Records that a replica may have lost acknowledged writes at `at` (a crash under a sync
    /// policy that acknowledges before syncing).
    pub fn data_loss(&mut self, at: Millis) {
        self.data_losses.push(at);
    }

    /// Every operation.
    pub fn ops(&self) -> impl Iterator<Item = &OpRecord> {
        self.ops.values()
    }

    /// One operation.
    pub fn op(&self, id: OpId) -> Option<&OpRecord> {
        self.ops.get(&id)
    }

    /// Records a ring change at `at`: a join or leave starting or finishing, a removal, a
    /// node restarting into a ring that changed while it was down.
    pub fn topology_change(&mut self, at: Millis) {
        self.topology_changes.push(at);
    }

    fn ring_stable_between(&self, from: Millis, to: Millis) -> bool {
        ring_stable_between(&self.topology_changes, from, to)
    }

    fn no_data_loss_between(&self, from: Millis, to: Millis) -> bool {
        no_data_loss_between(&self.data_losses, from, to)
    }

    /// Checks the history. Cost: for each key, reads × acknowledged writes.
    pub fn check(&self) -> CheckReport {
        let mut report = CheckReport::default();
        let mut by_key: BTreeMap<&[u8], Vec<&OpRecord>> = BTreeMap::new();
        for op in self.ops.values() {
            match (&op.result, op.completed) {
                (Some(Ok(_)), _) => report.ok += 1,
                (Some(Err(_)), _) => report.failed += 1,
                (None, _) => report.pending += 1,
            }
            by_key.entry(op.key.as_slice()).or_default().push(op);
        }
        for ops in by_key.values() {
            let writes: Vec<&&OpRecord> = ops
                .iter()
                .filter(|o| o.is_write() && o.succeeded())
                .collect();
            for w in &writes {
                let (Some(w_done), Some(w_version)) = (w.completed, w.version()) else {
                    continue;
                };
                for o in ops.iter().filter(|o| o.succeeded() && o.invoked > w_done) {
                    let Some(o_done) = o.completed else { continue };
                    let strict = matches!(w.result, Some(Ok(ClientOk::Written { hinted: 0, .. })));
                    let stable = strict
                        && self.no_data_loss_between(w.invoked, o_done)
                        && self.ring_stable_between(w.invoked, o_done);
                    match o.kind {
                        OpKind::Get if o.version().is_none_or(|v| v < w_version) => {
                            report.stale_reads.push(Anomaly {
                                write: w.id,
                                other: o.id,
                                stable,
                                intersect: w.quorum + o.quorum > self.replicas,
                            });
                        }
                        OpKind::Put | OpKind::Delete
                            if o.version().is_some_and(|v| v < w_version) =>
                        {
                            report.lost_updates.push(Anomaly {
                                write: w.id,
                                other: o.id,
                                stable,
                                intersect: w.quorum + o.quorum > self.replicas,
                            });
                        }
                        _ => {}
                    }
                }
            }
        }
        report
    }
}

/// Whether no ring change happened from `from` (less [`TOPOLOGY_SETTLE_MS`]) to `to`.
fn ring_stable_between(changes: &[Millis], from: Millis, to: Millis) -> bool {
    !changes
        .iter()
        .any(|t| t.0 + TOPOLOGY_SETTLE_MS >= from.0 && *t <= to)
}

/// Whether no replica may have lost acknowledged data from `from` to `to`.
fn no_data_loss_between(losses: &[Millis], from: Millis, to: Millis) -> bool {
    !losses.iter().any(|t| *t >= from && *t <= to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(ts: u64) -> Version {
        Version {
            ts_micros: ts,
            node: NodeId(1),
        }
    }

    fn written(ts: u64) -> ClientResult {
        Ok(ClientOk::Written {
            version: v(ts),
            acks: 2,
            hinted: 0,
        })
    }

    fn found(ts: u64) -> ClientResult {
        Ok(ClientOk::Found {
            version: v(ts),
            value: b"x".to_vec(),
        })
    }

    #[test]
    fn a_read_after_an_acknowledged_write_that_misses_it_is_stale() {
        let mut h = History::new(3);
        h.invoke(1, OpKind::Put, b"k".to_vec(), NodeId(1), Millis(0), 2);
        h.complete(1, Millis(5), written(100));
        h.invoke(2, OpKind::Get, b"k".to_vec(), NodeId(2), Millis(6), 2);
        h.complete(2, Millis(9), Ok(ClientOk::NotFound { version: None }));
        h.invoke(3, OpKind::Get, b"k".to_vec(), NodeId(2), Millis(10), 2);
        h.complete(3, Millis(12), found(100));
        // Concurrent with the write: not stale whatever it returns.
        h.invoke(4, OpKind::Get, b"k".to_vec(), NodeId(2), Millis(3), 2);
        h.complete(4, Millis(8), Ok(ClientOk::NotFound { version: None }));
        let report = h.check();
        assert_eq!(
            report.stale_reads,
            vec![Anomaly {
                write: 1,
                other: 2,
                stable: true,
                intersect: true,
            }]
        );
        assert_eq!(report.strict_violations().count(), 1);
        assert_eq!((report.ok, report.failed, report.pending), (4, 0, 0));
    }

    #[test]
    fn a_stale_read_whose_quorums_do_not_intersect_breaks_nothing() {
        // N = 3, W = 1, R = 1: the read may ask the two replicas the write did not reach.
        let mut h = History::new(3);
        h.invoke(1, OpKind::Put, b"k".to_vec(), NodeId(1), Millis(0), 1);
        h.complete(1, Millis(5), written(100));
        h.invoke(2, OpKind::Get, b"k".to_vec(), NodeId(2), Millis(6), 1);
        h.complete(2, Millis(9), Ok(ClientOk::NotFound { version: None }));
        // The same read at R = 3 intersects the write.
        h.invoke(3, OpKind::Get, b"k".to_vec(), NodeId(2), Millis(10), 3);
        h.complete(3, Millis(12), Ok(ClientOk::NotFound { version: None }));
        let report = h.check();
        assert_eq!(report.stale_reads.len(), 2);
        assert!(report.stale_reads.iter().all(|a| a.stable));
        let strict: Vec<OpId> = report.strict_violations().map(|a| a.other).collect();
        assert_eq!(strict, vec![3]);
        assert_eq!(h.live().strict_violations, 1);
    }

    #[test]
    fn data_loss_and_hinted_writes_make_stale_reads_expected() {
        let mut h = History::new(3);
        h.invoke(5, OpKind::Put, b"h".to_vec(), NodeId(1), Millis(0), 2);
        h.complete(
            5,
            Millis(5),
            Ok(ClientOk::Written {
                version: v(50),
                acks: 2,
                hinted: 1,
            }),
        );
        h.invoke(6, OpKind::Get, b"h".to_vec(), NodeId(2), Millis(8), 2);
        h.complete(6, Millis(9), Ok(ClientOk::NotFound { version: None }));
        h.invoke(1, OpKind::Put, b"k".to_vec(), NodeId(1), Millis(0), 2);
        h.complete(1, Millis(5), written(100));
        h.data_loss(Millis(7));
        h.invoke(2, OpKind::Get, b"k".to_vec(), NodeId(2), Millis(8), 2);
        h.complete(2, Millis(9), found(90));
        let report = h.check();
        assert_eq!(report.stale_reads.len(), 2);
        assert_eq!(report.strict_violations().count(), 0);
    }

    #[test]
    fn the_live_checker_counts_what_the_full_check_finds() {
        let mut h = History::new(3);
        h.invoke(1, OpKind::Put, b"k".to_vec(), NodeId(1), Millis(0), 2);
        h.complete(1, Millis(5), written(100));
        h.invoke(2, OpKind::Get, b"k".to_vec(), NodeId(2), Millis(6), 2);
        h.complete(2, Millis(9), Ok(ClientOk::NotFound { version: None }));
        h.invoke(3, OpKind::Get, b"k".to_vec(), NodeId(2), Millis(10), 2);
        h.complete(3, Millis(12), found(100));
        h.invoke(4, OpKind::Put, b"k".to_vec(), NodeId(2), Millis(13), 2);
        h.complete(4, Millis(14), written(60));
        h.data_loss(Millis(15));
        h.invoke(5, OpKind::Get, b"k".to_vec(), NodeId(2), Millis(16), 2);
        h.complete(5, Millis(18), found(90));
        h.invoke(6, OpKind::Get, b"other".to_vec(), NodeId(2), Millis(16), 2);
        h.complete(6, Millis(18), Err(crate::node::ClientError::NodeDown));
        let full = h.check();
        let live = h.live();
        assert_eq!(live.stale_reads, full.stale_reads.len() as u64);
        assert_eq!(live.lost_updates, full.lost_updates.len() as u64);
        assert_eq!(
            live.strict_violations,
            full.strict_violations().count() as u64
        );
        assert_eq!((live.ok, live.failed), (full.ok as u64, full.failed as u64));
        assert_eq!(
            live.recent_stale
                .iter()
                .map(|a| a.other)
                .collect::<Vec<_>>(),
            vec![2, 5]
        );
        assert_eq!(
            live.recent_lost
                .iter()
                .map(|a| (a.write, a.other))
                .collect::<Vec<_>>(),
            vec![(1, 4)]
        );
    }

    #[test]
    fn a_later_write_with_a_smaller_version_is_a_lost_update() {
        let mut h = History::new(3);
        h.invoke(1, OpKind::Put, b"k".to_vec(), NodeId(1), Millis(0), 2);
        h.complete(1, Millis(5), written(100));
        // n2's clock is behind: its later write gets ts 60 and loses.
        h.invoke(2, OpKind::Put, b"k".to_vec(), NodeId(2), Millis(10), 2);
        h.complete(2, Millis(14), written(60));
        h.invoke(3, OpKind::Get, b"k".to_vec(), NodeId(1), Millis(1), 2);
        let report = h.check();
        assert_eq!(
            report.lost_updates,
            vec![Anomaly {
                write: 1,
                other: 2,
                stable: true,
                intersect: true,
            }]
        );
        assert_eq!(report.pending, 1);
    }
}
