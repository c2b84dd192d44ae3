//! Copying a whole simulated cluster: [`Sim::fork`] gives a second simulation in exactly the
//! same state, which then goes on independently and, given the same calls, exactly alike (the
//! same event log, hash and clock). The page's timeline keeps such copies as snapshots and
//! reaches any past moment by forking the nearest one and stepping forward.
//!
//! Everything is copied: every node's state machine, both storage engines of every machine
//! over a copy of its disks ([`MachineDisk::fork`], [`crate::storage::Lsm::fork`]), the event
//! queue, the network's messages in flight and partitions, the random generator, the event log,
//! the history checker and the client operations in progress. Two things are not: the disk
//! factory (the caller passes one for machines added later, as to [`Sim::with_disks`]), and a
//! flush or compaction in progress, so a cluster with one running on any machine is not copied
//! ([`Sim::fork`] answers `None`; a later event boundary usually has none).
//!
//! [`Sim::events_run`] counts the events run so far: with the clock, it names a moment of a
//! run (the page's `&at=` links and the timeline's positions are event counts).

use super::{DiskFactory, MachineDisk, Sim, SimNode};

impl<D: MachineDisk> Sim<D> {
    /// Events run so far (every [`Sim::step`] that ran one). Every scheduled event is taken
    /// from the queue once, and run, so this is what was scheduled minus what still waits.
    pub fn events_run(&self) -> u64 {
        self.seq - self.queue.len() as u64
    }

    /// Bytes in the files of every machine's disks (what a fork copies of them, at least).
    pub fn disk_bytes(&self) -> u64 {
        let size = |disk: &D| {
            disk.list()
                .unwrap_or_default()
                .iter()
                .map(|name| disk.len(name).unwrap_or(0))
                .sum::<u64>()
        };
        self.nodes
            .values()
            .map(|n| size(&n.data_disk) + size(&n.hint_disk))
            .sum()
    }

    /// When the next scheduled event is due, if one is.
    pub fn next_event_at(&self) -> Option<crate::Millis> {
        self.queue.peek().map(|s| s.0.at)
    }

    /// A separate simulation in exactly this state (see the module docs), with `disks` making
    /// the disks of machines added from now on; `None` while a flush or compaction runs on
    /// some machine.
    pub fn fork(&self, disks: DiskFactory<D>) -> Option<Sim<D>> {
        self.fork_keeping_log(disks, usize::MAX)
    }

    /// [`Sim::fork`], with only the newest `keep` entries of the event log copied (its hash
    /// and count are whole): a copy kept as a snapshot holds less, and what it and its forks go
    /// on to do is unchanged.
    pub fn fork_keeping_log(&self, disks: DiskFactory<D>, keep: usize) -> Option<Sim<D>> {
        let mut nodes = std::collections::BTreeMap::new();
        for (id, n) in &self.nodes {
            if n.job.is_some() {
                return None;
            }
            let data_disk = n.data_disk.fork();
            let hint_disk = n.hint_disk.fork();
            let data = match &n.data {
                Some(lsm) => Some(lsm.fork(data_disk.clone())?),
                None => None,
            };
            let hints = match &n.hints {
                Some(lsm) => Some(lsm.fork(hint_disk.clone())?),
                None => None,
            };
            let copy = SimNode {
                node: n.node.clone(),
                incarnation: n.incarnation,
                data,
                hints,
                data_disk,
                hint_disk,
                skew_ms: n.skew_ms,
                sync_waiting: n.sync_waiting.clone(),
                sync_scheduled: n.sync_scheduled,
                stalled: n.stalled.clone(),
                job: None,
                left: n.left,
                joining: n.joining,
                last_ring: n.last_ring.clone(),
                last_removed: n.last_removed.clone(),
            };
            nodes.insert(*id, copy);
        }
        let log = self.log.copy_newest(keep);
        let oldest = log.entries().front().map_or(log.total(), |e| e.seq);
        Some(Sim {
            config: self.config.clone(),
            now: self.now,
            seq: self.seq,
            queue: self.queue.clone(),
            nodes,
            disks,
            ring: self.ring.clone(),
            rng: self.rng.clone(),
            tags: self.tags.copy_since(oldest),
            log,
            history: self.history.clone(),
            partitions: self.partitions.clone(),
            told: self.told.clone(),
            flying: self.flying.clone(),
            next_msg: self.next_msg,
            next_op: self.next_op,
            workload_ops: self.workload_ops,
        })
    }
}
