//! The history checker, run live: as each client operation completes, whether it is a stale
//! read or a lost update (the same definitions as [`super::history::History::check`]), in
//! bounded memory and constant time per operation, so a page running for hours keeps live
//! counters.
//!
//! Per key it keeps a *staircase* of acknowledged writes: by completion time, each with a
//! larger version than every write acknowledged before it (a write acknowledged after a larger
//! version is never the newest one a later operation must see). For an operation invoked at
//! `t`, the newest write acknowledged before `t` is one binary search away. Steps older than
//! [`HORIZON_MS`] collapse into one (no operation stays in flight that long), and at most
//! [`KEYS_MAX`] keys are tracked (the least recently written go first). One anomaly is counted
//! per operation (against the newest write it missed), and the last [`RECENT_MAX`] are kept
//! with their operations for the page to show.

use super::history::{Anomaly, OpRecord};
use super::log::{OpId, OpKind};
use crate::Millis;
use crate::node::ClientOk;
use crate::storage::Version;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};

/// Steps of a key's staircase older than this collapse into one.
pub const HORIZON_MS: u64 = 60_000;
/// Keys tracked at most.
pub const KEYS_MAX: usize = 10_000;
/// Recent anomalies kept.
pub const RECENT_MAX: usize = 200;

#[derive(Clone, Copy, Debug)]
struct Step {
    done: Millis,
    invoked: Millis,
    version: Version,
    op: OpId,
    strict: bool,
    quorum: usize,
}

/// Live counters of what the checker finds. See the module docs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LiveReport {
    /// Operations that succeeded.
    pub ok: u64,
    /// Operations that failed.
    pub failed: u64,
    /// Reads that missed a write acknowledged before they began.
    pub stale_reads: u64,
    /// Of those, the ones that broke the quorum invariant (quorums that intersect, failures
    /// within tolerance).
    pub strict_violations: u64,
    /// Writes acknowledged after a write with a larger version (LWW discarded them).
    pub lost_updates: u64,
    /// The most recent stale reads, oldest first.
    pub recent_stale: VecDeque<Anomaly>,
    /// The most recent lost updates, oldest first.
    pub recent_lost: VecDeque<Anomaly>,
    #[serde(skip)]
    keys: BTreeMap<Vec<u8>, (u64, Vec<Step>)>,
    #[serde(skip)]
    writes_seen: u64,
}

impl LiveReport {
    /// Records a completed operation of a cluster with `replicas` (N) replicas per key.
    /// `stable(from, to)` says whether failures stayed within the quorum's tolerance over that
    /// span (no data loss, no ring change).
    pub(super) fn complete(
        &mut self,
        op: &OpRecord,
        replicas: usize,
        stable: impl Fn(Millis, Millis) -> bool,
    ) {
        let (Some(done), Some(Ok(ok))) = (op.completed, &op.result) else {
            if op.result.is_some() {
                self.failed += 1;
            }
            return;
        };
        self.ok += 1;
        let version = op.version();
        let newest = self.keys.get(op.key.as_slice()).and_then(|(_, steps)| {
            let i = steps.partition_point(|s| s.done < op.invoked);
            i.checked_sub(1).map(|i| steps[i])
        });
        if let Some(w) = newest {
            let missed = version.is_none_or(|v| v < w.version);
            let anomaly = |w: Step| Anomaly {
                write: w.op,
                other: op.id,
                stable: w.strict && stable(w.invoked, done),
                intersect: w.quorum + op.quorum > replicas,
            };
            match op.kind {
                OpKind::Get if missed => {
                    let a = anomaly(w);
                    self.stale_reads += 1;
                    self.strict_violations += u64::from(a.stable && a.intersect);
                    push_bounded(&mut self.recent_stale, a);
                }
                OpKind::Put | OpKind::Delete if version.is_some_and(|v| v < w.version) => {
                    self.lost_updates += 1;
                    push_bounded(&mut self.recent_lost, anomaly(w));
                }
                _ => {}
            }
        }
        if let (OpKind::Put | OpKind::Delete, Some(version)) = (op.kind, version) {
            let strict = matches!(ok, ClientOk::Written { hinted: 0, .. });
            self.record_write(op, done, version, strict);
        }
    }

    fn record_write(&mut self, op: &OpRecord, done: Millis, version: Version, strict: bool) {
        self.writes_seen += 1;
        let seen = self.writes_seen;
        let entry = self.keys.entry(op.key.clone()).or_default();
        entry.0 = seen;
        let steps = &mut entry.1;
        if steps.last().is_some_and(|s| s.version >= version) {
            return;
        }
        steps.push(Step {
            done,
            invoked: op.invoked,
            version,
            op: op.id,
            strict,
            quorum: op.quorum,
        });
        let old = steps.partition_point(|s| s.done.0 + HORIZON_MS < done.0);
        if old > 1 {
            steps.drain(..old - 1);
        }
        if self.keys.len() > KEYS_MAX
            && let Some(coldest) = self
                .keys
                .iter()
                .min_by_key(|(_, (seen, _))| *seen)
                .map(|(k, _)| k.clone())
        {
            self.keys.remove(&coldest);
        }
    }
}

fn push_bounded(list: &mut VecDeque<Anomaly>, a: Anomaly) {
    if list.len() == RECENT_MAX {
        list.pop_front();
    }
    list.push_back(a);
}
