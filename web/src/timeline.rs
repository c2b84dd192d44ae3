//! Time travel: the page's simulated run as a timeline that can be scrubbed, stepped back and
//! forked, resting on the simulator being deterministic.
//!
//! A run is decided by its cluster options and the inputs given so far. The [`Timeline`] logs
//! every input (a client operation, a crash, a restart, a partition, a heal, a clock skew, a
//! join, a leave, a network or workload change: [`Input`]) with the number of simulator events
//! run when it was given and the clock then ([`Logged`]), and keeps snapshots: whole copies of
//! the simulator ([`Sim::fork`]) taken at least every [`Timeline::every`] events. A moment is an
//! event count `E`; the cluster at `E` is reached by forking the nearest snapshot at or before
//! `E` and stepping forward, giving each logged input back when its event count comes up
//! ([`Timeline::reach`]). The replay is exact: the same event-log hash and clock as the
//! original run at `E` (tested here and in `core/tests/fork.rs`). Inputs logged at `E` are part
//! of moment `E`. A replay also keeps one extra snapshot [`NEAR_BACK_EVENTS`] before the moment
//! it reached, so that stepping back again is short, and the page steps the cluster on screen
//! forward instead of replaying when the moment is ahead of it and nearer than any snapshot
//! ([`crate::cluster::SimCluster::go_to`]).
//!
//! Why not the IndexedDB save format ([`crate::persist`]): it holds the machines' durable
//! files and the cluster's settings, and resuming from it is a crash of the whole cluster
//! (messages in flight, timers, unsynced writes and the checker are gone, by design), so a
//! resumed run is not the original run. A snapshot here is an in-memory copy of everything.
//!
//! Bounds: at most [`INPUTS_MAX`] inputs per branch (more are refused with a message; a
//! client operation's key and value at most [`INPUT_KEY_BYTES_MAX`] and
//! [`INPUT_VALUE_BYTES_MAX`] bytes), at most [`SNAPSHOTS_MAX`] snapshots per branch (when full,
//! every other one is dropped and the spacing doubles, so they always cover the whole run) and
//! the one extra, each holding at most [`SNAPSHOT_LOG_KEEP`] log entries, and at most
//! [`BRANCHES_MAX`] branches (the oldest not on screen goes first). [`Timeline::stats`] reports
//! their size; `docs/benchmarks.md` has the figures of a long run.
//!
//! Scope: free play. A lesson's commands drive the simulator themselves and are not logged, so
//! the page hides the timeline in lessons (they go back a step by rebuilding, `lesson.rs`). A
//! cluster saved in IndexedDB and replaced by a moment of its timeline is saved whole at the
//! next save ([`crate::persist::take_batch`]): its disks' record of what was saved belongs to
//! another moment.
//!
//! **Branches.** Going back and giving an input forks the run: a new branch takes the inputs
//! before that moment and the new one, and the old branch is kept as it was, to switch back to
//! ([`Timeline::switch`]). Going back alone forks nothing: playing forward again replays the
//! branch's own inputs ([`Timeline::pending`]).

use crate::idb_disk::IdbDisk;
use crate::page::{NetworkKnobs, WorkloadKnobs, apply_network, apply_workload};
use ringstore_core::sim::log::OpId;
use ringstore_core::sim::{DiskFactory, Sim};
use ringstore_core::{Millis, NodeId};
use serde::{Deserialize, Serialize};
use std::rc::Rc;

/// Inputs a branch logs at most.
pub const INPUTS_MAX: usize = 2_000;
/// The longest value a logged client operation may carry (the console's limit), bytes: with
/// [`INPUTS_MAX`], what a branch's inputs hold is bounded.
pub const INPUT_VALUE_BYTES_MAX: usize = 4_096;
/// The longest key a logged client operation may carry, bytes.
pub const INPUT_KEY_BYTES_MAX: usize = 1_024;
/// Snapshots a branch keeps at most.
pub const SNAPSHOTS_MAX: usize = 24;
/// Branches kept at most.
pub const BRANCHES_MAX: usize = 8;
/// Log entries a snapshot keeps (the page's log panel shows the newest few hundred).
pub const SNAPSHOT_LOG_KEEP: usize = 1_000;
/// The first spacing of snapshots, in events.
pub const EVERY_EVENTS: u64 = 4_000;
/// Anomaly markers a branch keeps at most.
pub const ANOMALY_MARKERS_MAX: usize = 500;
/// How far before a moment a replay to it keeps its extra snapshot ([`Timeline`]'s `near`),
/// events.
pub const NEAR_BACK_EVENTS: u64 = 2_000;
/// Position samples `(events, ms)` kept per branch at most (for the slider's time labels and
/// for finding the moment of a time).
const TICKS_MAX: usize = 4_096;

/// Something the reader did to the cluster. See the module docs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Input {
    /// A client operation (`kind`: put, get, delete).
    Client {
        /// Coordinator.
        node: u32,
        /// `put`, `get` or `delete`.
        kind: String,
        /// The key.
        key: String,
        /// The value (puts).
        value: String,
        /// The consistency (empty: the cluster's).
        consistency: String,
    },
    /// A node crashes.
    Crash {
        /// The node.
        node: u32,
    },
    /// A crashed node restarts.
    Restart {
        /// The node.
        node: u32,
    },
    /// Links between `a` and `b` are cut (only a → b if `one_way`).
    Partition {
        /// One side.
        a: Vec<u32>,
        /// The other.
        b: Vec<u32>,
        /// Only a → b.
        one_way: bool,
    },
    /// Every link is restored.
    Heal,
    /// A node's clock offset.
    Skew {
        /// The node.
        node: u32,
        /// Its offset, ms.
        ms: i64,
    },
    /// A node joins (the next free id).
    Join,
    /// A node leaves gracefully.
    Leave {
        /// The node.
        node: u32,
    },
    /// Latency and loss.
    Network(NetworkKnobs),
    /// The workload.
    Workload(WorkloadKnobs),
}

impl Input {
    /// What a marker on the timeline calls it, if it gets one.
    fn marker(&self) -> Option<(&'static str, String)> {
        Some(match self {
            Input::Crash { node } => ("crash", format!("n{node} crashed")),
            Input::Restart { node } => ("restart", format!("n{node} restarted")),
            Input::Partition { a, b, .. } => {
                let show = |g: &[u32]| {
                    g.iter()
                        .map(|n| format!("n{n}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                ("partition", format!("partition {} | {}", show(a), show(b)))
            }
            Input::Heal => ("heal", "heal".to_string()),
            Input::Join => ("join", "a node joins".to_string()),
            Input::Leave { node } => ("leave", format!("n{node} leaves")),
            Input::Client {
                node, kind, key, ..
            } => ("client", format!("{kind} {key} via n{node}")),
            Input::Skew { node, ms } => ("setting", format!("n{node} clock {ms:+} ms")),
            Input::Network(_) => ("setting", "network changed".to_string()),
            Input::Workload(_) => ("setting", "workload changed".to_string()),
        })
    }

    /// Applies the input to `sim`; an error says why it could not be done (nothing changed).
    /// A client input gives its operation's id.
    pub fn apply(&self, sim: &mut Sim<IdbDisk>) -> Result<Option<OpId>, String> {
        let ids = |g: &[u32]| g.iter().map(|n| NodeId(*n)).collect::<Vec<_>>();
        match self {
            Input::Client {
                node,
                kind,
                key,
                value,
                consistency,
            } => {
                let op = crate::cluster::client_op(kind, key, value, consistency)?;
                if !sim.node_ids().contains(&NodeId(*node)) {
                    return Err(format!("no node n{node}"));
                }
                return Ok(Some(sim.client(NodeId(*node), op)));
            }
            Input::Crash { node } => sim.crash(NodeId(*node)),
            Input::Restart { node } => sim.restart(NodeId(*node)).map_err(|e| e.to_string())?,
            Input::Partition { a, b, one_way } => sim.partition(&ids(a), &ids(b), *one_way),
            Input::Heal => sim.heal(),
            Input::Skew { node, ms } => sim.set_skew(NodeId(*node), *ms),
            Input::Join => {
                let next = sim.node_ids().last().map_or(1, |n| n.0 + 1);
                if next > crate::url::NODES_MAX {
                    return Err(format!("at most {} nodes", crate::url::NODES_MAX));
                }
                sim.add_node(NodeId(next)).map_err(|e| e.to_string())?;
            }
            Input::Leave { node } => sim.leave(NodeId(*node)),
            Input::Network(k) => {
                let net = apply_network(sim.config().network.clone(), k);
                sim.set_network(net);
            }
            Input::Workload(k) => {
                let w = apply_workload(sim.config().workload.clone(), k);
                sim.set_workload(w);
            }
        }
        Ok(None)
    }
}

/// An input with the moment it was given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Logged {
    /// Events run when it was given.
    pub events: u64,
    /// The simulated clock then, ms (the page may have run the clock past the last event).
    pub now_ms: u64,
    /// The input.
    pub input: Input,
}

/// The version of [`encode_inputs`]'s layout.
pub const INPUTS_VERSION: u8 = 1;
/// Bytes of encoded inputs accepted at most (a link's are far fewer).
pub const INPUTS_BYTES_MAX: usize = 256 << 10;
/// The furthest moment a link may name, events (about an hour of a busy 16-node run).
pub const PLAY_TO_MAX: u64 = 50_000_000;

/// Why a link's inputs were refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputsError {
    /// Fewer bytes than the header, or more than [`INPUTS_BYTES_MAX`].
    #[error("the link's inputs have {0} bytes, which is not a valid length")]
    Length(usize),
    /// A version this page does not read.
    #[error("the link's inputs are format version {0}; this page reads version {INPUTS_VERSION}")]
    Version(u8),
    /// The checksum does not match.
    #[error("the link's inputs are damaged (checksum {got:08x}, expected {expected:08x})")]
    Checksum {
        /// Computed over the body.
        got: u32,
        /// Stored in the header.
        expected: u32,
    },
    /// The body does not decode, or holds more than [`INPUTS_MAX`] inputs.
    #[error("the link's inputs are damaged ({0})")]
    Body(String),
}

/// Encodes inputs for a link: `[version: u8 = INPUTS_VERSION][crc32 of the body: u32 LE]
/// [body: postcard encoding of Vec<Logged>]` (postcard: varint lengths and integers; an
/// [`Input`] as its variant index then its fields). The page deflates and base64url-encodes
/// it into `&in=`.
pub fn encode_inputs(inputs: &[Logged]) -> Vec<u8> {
    let body = postcard::to_allocvec(inputs).unwrap_or_default();
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(INPUTS_VERSION);
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Decodes [`encode_inputs`]'s bytes; bad bytes give an [`InputsError`].
pub fn decode_inputs(bytes: &[u8]) -> Result<Vec<Logged>, InputsError> {
    if bytes.len() < 5 || bytes.len() > INPUTS_BYTES_MAX {
        return Err(InputsError::Length(bytes.len()));
    }
    if bytes[0] != INPUTS_VERSION {
        return Err(InputsError::Version(bytes[0]));
    }
    let expected = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    let body = &bytes[5..];
    let got = crc32fast::hash(body);
    if got != expected {
        return Err(InputsError::Checksum { got, expected });
    }
    let inputs: Vec<Logged> =
        postcard::from_bytes(body).map_err(|e| InputsError::Body(e.to_string()))?;
    if inputs.len() > INPUTS_MAX {
        return Err(InputsError::Body(format!(
            "{} inputs, at most {INPUTS_MAX}",
            inputs.len()
        )));
    }
    Ok(inputs)
}

/// A copy of the simulator at a moment, and how many of its branch's inputs it has had.
struct Snapshot {
    events: u64,
    inputs_applied: usize,
    sim: Sim<IdbDisk>,
}

/// One run: its inputs, snapshots and how far it got.
struct Branch {
    inputs: Vec<Logged>,
    snapshots: Vec<Rc<Snapshot>>,
    /// The furthest moment run: events, clock.
    end: (u64, u64),
    /// The moment it was forked from its parent (events), and the parent's number.
    forked: Option<(usize, u64)>,
    /// The branch's number on the page (1, 2, …).
    number: usize,
    /// `(events, ms)` samples, increasing.
    ticks: Vec<(u64, u64)>,
    /// The checker's anomalies as they happened (at most [`ANOMALY_MARKERS_MAX`]).
    anomalies: Vec<Marker>,
    /// Stale reads and lost updates the checker had counted at the branch's end.
    counted: (u64, u64),
    /// The spacing of its snapshots, events.
    every: u64,
}

impl Branch {
    /// Marks the anomalies the checker found since the branch's end last moved (the run on
    /// screen just passed it, at moment `at`).
    fn note_anomalies(&mut self, sim: &Sim<IdbDisk>, at: u64) {
        let live = sim.history().live();
        let (stale, lost) = self.counted;
        self.counted = (live.stale_reads, live.lost_updates);
        let new_stale = live.stale_reads.saturating_sub(stale) as usize;
        let new_lost = live.lost_updates.saturating_sub(lost) as usize;
        let newest = |list: &std::collections::VecDeque<ringstore_core::sim::history::Anomaly>,
                      n: usize| {
            list.iter()
                .skip(list.len().saturating_sub(n))
                .cloned()
                .collect::<Vec<_>>()
        };
        let found = newest(&live.recent_stale, new_stale)
            .into_iter()
            .map(|a| ("stale", a))
            .chain(
                newest(&live.recent_lost, new_lost)
                    .into_iter()
                    .map(|a| ("lost", a)),
            );
        for (kind, a) in found {
            if self.anomalies.len() >= ANOMALY_MARKERS_MAX {
                break;
            }
            let Some(op) = sim.history().op(a.other) else {
                continue;
            };
            let key = String::from_utf8_lossy(&op.key);
            let label = if kind == "stale" {
                format!("stale read: #{} get {key} missed #{}", a.other, a.write)
            } else {
                format!("lost update: #{} to {key} lost to #{}", a.other, a.write)
            };
            self.anomalies.push(Marker {
                events: at,
                ms: op.completed.map_or(0, |t| t.0),
                kind,
                label,
            });
        }
    }

    fn tick(&mut self, events: u64, ms: u64) {
        if self.ticks.last().is_some_and(|(e, _)| *e >= events) {
            return;
        }
        if self.ticks.len() >= TICKS_MAX {
            // Every other sample goes; the first stays.
            let kept: Vec<(u64, u64)> = self.ticks.iter().copied().step_by(2).collect();
            self.ticks = kept;
        }
        self.ticks.push((events, ms));
    }
}

/// A marker on the timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Marker {
    /// Its moment, events.
    pub events: u64,
    /// Its clock, ms.
    pub ms: u64,
    /// `crash`, `restart`, `partition`, `heal`, `join`, `leave`, `client`, `setting`, `stale`
    /// (a stale read) or `lost` (a lost update); an anomaly's `events` is where the run was
    /// when the checker found it (the end of that frame), its `ms` when it completed.
    pub kind: &'static str,
    /// In words.
    pub label: String,
}

/// What the timeline shows: the branch on screen, the moment, the markers, the branches.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelineView {
    /// The moment on screen, events.
    pub at: u64,
    /// Its clock, ms.
    pub at_ms: u64,
    /// The furthest moment of this branch, events.
    pub end: u64,
    /// Its clock, ms.
    pub end_ms: u64,
    /// The branch on screen's number.
    pub branch: usize,
    /// Every branch kept: `{number, forkedFrom, at, end}`.
    pub branches: Vec<BranchView>,
    /// Markers of the branch on screen.
    pub markers: Vec<Marker>,
}

/// A branch in [`TimelineView`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BranchView {
    /// Its number.
    pub number: usize,
    /// The branch it was forked from, and the moment (events), if any.
    pub forked_from: Option<(usize, u64)>,
    /// Its furthest moment, events.
    pub end: u64,
    /// Inputs logged.
    pub inputs: usize,
}

/// What the snapshots cost.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineStats {
    /// Snapshots kept (shared ones once).
    pub snapshots: usize,
    /// Bytes of file contents the snapshots hold that the cluster on screen does not share
    /// (exact; contents shared between snapshots count once).
    pub file_bytes: u64,
    /// Bytes of the snapshots' log entries, at their inline size (their heap parts, and the
    /// nodes' state and the operations, are not counted: the operations are shared, see
    /// `History`). The page's browser test measures the whole by the wasm memory.
    pub log_bytes: u64,
    /// The spacing of the branch on screen's snapshots, events.
    pub every: u64,
    /// Branches kept.
    pub branches: usize,
}

/// The disks of machines a copy adds later.
fn disks() -> DiskFactory<IdbDisk> {
    Box::new(|_, _, _| IdbDisk::new())
}

/// Bytes of `sim`'s log entries at their inline size.
fn log_bytes(sim: &Sim<IdbDisk>) -> u64 {
    sim.log().held() as u64 * std::mem::size_of::<ringstore_core::sim::log::LogEntry>() as u64
}

/// The run's timeline. See the module docs.
pub struct Timeline {
    branches: Vec<Branch>,
    current: usize,
    next_number: usize,
    /// Events run by the cluster on screen.
    at: u64,
    /// Inputs of the branch on screen already given to the cluster on screen.
    applied: usize,
    /// Whether snapshots are taken after the first (off: only to measure what they cost).
    keeping: bool,
    /// One more snapshot, [`NEAR_BACK_EVENTS`] before the last moment reached by a replay, and
    /// the number of its branch: going back again from there (one event at a time, or a drag
    /// to the left) replays from it instead of from the branch's snapshots, far apart in a long
    /// run.
    near: Option<(usize, Rc<Snapshot>)>,
}

impl Timeline {
    /// A timeline starting at `sim` (its first snapshot).
    pub fn new(sim: &Sim<IdbDisk>) -> Timeline {
        let mut first = Branch {
            inputs: Vec::new(),
            snapshots: Vec::new(),
            end: (sim.events_run(), sim.now().0),
            forked: None,
            number: 1,
            ticks: Vec::new(),
            anomalies: Vec::new(),
            counted: (0, 0),
            every: EVERY_EVENTS,
        };
        first.tick(sim.events_run(), sim.now().0);
        let mut t = Timeline {
            branches: vec![first],
            current: 0,
            next_number: 2,
            at: sim.events_run(),
            applied: 0,
            keeping: true,
            near: None,
        };
        t.snapshot(sim);
        t
    }

    fn branch(&self) -> &Branch {
        &self.branches[self.current]
    }

    fn branch_mut(&mut self) -> &mut Branch {
        &mut self.branches[self.current]
    }

    /// The spacing of the branch on screen's snapshots.
    pub fn every(&self) -> u64 {
        self.branch().every
    }

    /// Turns taking snapshots (beyond the first) on or off; off, every moment is replayed from
    /// the start. Only the browser test's memory figure turns them off.
    pub fn keep_snapshots(&mut self, on: bool) {
        self.keeping = on;
    }

    /// Takes a snapshot of `sim` (the cluster on screen) if the last one is `every` events
    /// back or more and no flush or compaction runs; `true` if it took one.
    pub fn snapshot(&mut self, sim: &Sim<IdbDisk>) -> bool {
        let events = sim.events_run();
        let applied = self.applied;
        let keeping = self.keeping;
        let b = self.branch_mut();
        if let Some(last) = b.snapshots.last()
            && (events < last.events + b.every || events <= last.events || !keeping)
        {
            return false;
        }
        let Some(mut copy) = sim.fork(disks()) else {
            return false;
        };
        copy.trim_log(SNAPSHOT_LOG_KEEP);
        b.snapshots.push(Rc::new(Snapshot {
            events,
            inputs_applied: applied,
            sim: copy,
        }));
        if b.snapshots.len() > SNAPSHOTS_MAX {
            // Keep the first, then every other one: the spacing doubles.
            let kept: Vec<Rc<Snapshot>> = b
                .snapshots
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 2 == 0)
                .map(|(_, s)| s.clone())
                .collect();
            b.snapshots = kept;
            b.every *= 2;
        }
        true
    }

    /// After the cluster on screen ran: notes the moment (and extends the branch when it
    /// passed its end) and takes a snapshot when one is due.
    pub fn ran(&mut self, sim: &Sim<IdbDisk>) {
        self.at = sim.events_run();
        let now = sim.now().0;
        let at = self.at;
        let b = self.branch_mut();
        if (at, now) > b.end {
            b.end = (at, now);
            b.note_anomalies(sim, at);
        }
        b.tick(at, now);
        self.snapshot(sim);
    }

    /// The branch's next input not yet given to the cluster on screen, if it is due at
    /// `events`: the page gives it back while it plays a stretch of the branch it is
    /// replaying.
    pub fn pending(&self, events: u64) -> Option<&Logged> {
        self.branch()
            .inputs
            .get(self.applied)
            .filter(|l| l.events == events)
    }

    /// The next moment (events) at which an input is due, if any.
    pub fn next_input_at(&self) -> Option<u64> {
        self.branch().inputs.get(self.applied).map(|l| l.events)
    }

    /// The pending input was given.
    pub fn gave_pending(&mut self) {
        self.applied += 1;
    }

    /// The reader gives `input` to `sim` (the cluster on screen) now. In the middle of the
    /// branch (inputs logged after this moment), this forks a new branch first. The input is
    /// applied and logged; refused (nothing changed) if applying fails or the branch is full.
    pub fn give(&mut self, sim: &mut Sim<IdbDisk>, input: Input) -> Result<Option<OpId>, String> {
        let events = sim.events_run();
        let now = sim.now().0;
        if let Input::Client { key, value, .. } = &input
            && (key.len() > INPUT_KEY_BYTES_MAX || value.len() > INPUT_VALUE_BYTES_MAX)
        {
            return Err(format!(
                "the page sends keys of at most {INPUT_KEY_BYTES_MAX} bytes and values of at most {INPUT_VALUE_BYTES_MAX}"
            ));
        }
        if self.branch().inputs.len() >= INPUTS_MAX {
            return Err(format!(
                "this run has {INPUTS_MAX} inputs, the most a timeline keeps: rebuild the cluster to go on"
            ));
        }
        let later = self.branch().inputs.len() > self.applied || self.branch().end.0 > events;
        if later {
            self.fork_here(sim);
        }
        let op = input.apply(sim)?;
        self.branch_mut().inputs.push(Logged {
            events,
            now_ms: now,
            input,
        });
        self.applied = self.branch().inputs.len();
        Ok(op)
    }

    /// Starts a new branch at the moment of `sim` (the cluster on screen) from the branch on
    /// screen: its inputs and snapshots up to now.
    fn fork_here(&mut self, sim: &Sim<IdbDisk>) {
        let events = sim.events_run();
        let old = self.branch();
        let b = Branch {
            inputs: old.inputs[..self.applied].to_vec(),
            snapshots: old
                .snapshots
                .iter()
                .filter(|s| s.events <= events && s.inputs_applied <= self.applied)
                .cloned()
                .collect(),
            end: (events, sim.now().0),
            forked: Some((old.number, events)),
            number: self.next_number,
            ticks: old
                .ticks
                .iter()
                .copied()
                .filter(|(e, _)| *e <= events)
                .collect(),
            anomalies: old
                .anomalies
                .iter()
                .filter(|m| m.events <= events)
                .cloned()
                .collect(),
            counted: {
                let live = sim.history().live();
                (live.stale_reads, live.lost_updates)
            },
            every: old.every,
        };
        self.next_number += 1;
        if self.branches.len() >= BRANCHES_MAX {
            // The oldest branch not on screen goes.
            let current = self.current;
            if let Some(i) = (0..self.branches.len()).find(|i| *i != current) {
                self.branches.remove(i);
                if i < self.current {
                    self.current -= 1;
                }
            }
        }
        self.branches.push(b);
        self.current = self.branches.len() - 1;
    }

    /// The cluster of the branch on screen at moment `events` (clamped to the branch's end):
    /// the nearest snapshot at or before it, forked, then stepped forward giving back the
    /// logged inputs. The timeline's position becomes that moment.
    pub fn reach(&mut self, events: u64) -> Result<Sim<IdbDisk>, String> {
        let target = events.min(self.branch().end.0);
        let snap = self.start_for(target);
        let from = snap.as_ref().map_or(0, |s| s.events);
        let sim = snap.and_then(|snap| Some((snap.sim.fork(disks())?, snap.inputs_applied)));
        let Some((mut sim, mut i)) = sim else {
            return Err("the timeline has no snapshot to start from".to_string());
        };
        let number = self.branch().number;
        let near_at = target.saturating_sub(NEAR_BACK_EVENTS);
        let mut near = None;
        let inputs = &self.branches[self.current].inputs;
        loop {
            while let Some(l) = inputs.get(i).filter(|l| l.events == sim.events_run()) {
                if sim.now().0 < l.now_ms {
                    sim.run_until(Millis(l.now_ms));
                }
                // It applied when it was logged; the same state gives the same outcome.
                let _ = l.input.apply(&mut sim);
                i += 1;
            }
            let at = sim.events_run();
            // The extra snapshot for going back again, at the first boundary past `near_at`
            // where no flush or compaction runs.
            if near.is_none()
                && at >= near_at
                && at > from
                && at < target
                && let Some(mut copy) = sim.fork(disks())
            {
                copy.trim_log(SNAPSHOT_LOG_KEEP);
                near = Some(Rc::new(Snapshot {
                    events: at,
                    inputs_applied: i,
                    sim: copy,
                }));
            }
            if at >= target || !sim.step() {
                break;
            }
        }
        if let Some(near) = near {
            self.near = Some((number, near));
        }
        self.at = sim.events_run();
        self.applied = i;
        Ok(sim)
    }

    /// The snapshot a replay to `target` on the branch on screen starts from: the latest at or
    /// before it, the extra one (`near`) included.
    fn start_for(&self, target: u64) -> Option<Rc<Snapshot>> {
        let b = self.branch();
        let kept = b
            .snapshots
            .iter()
            .rev()
            .find(|s| s.events <= target)
            .or(b.snapshots.first())
            .cloned();
        match &self.near {
            Some((number, near))
                if *number == b.number
                    && near.events <= target
                    && kept.as_ref().is_none_or(|k| k.events < near.events) =>
            {
                Some(near.clone())
            }
            _ => kept,
        }
    }

    /// Where a replay to `target` would start from, events (the page steps the cluster on
    /// screen forward instead when it is nearer).
    pub fn start_events(&self, target: u64) -> u64 {
        self.start_for(target).map_or(0, |s| s.events)
    }

    /// The first moment (events) of the branch on screen whose clock is at `ms` or later, by
    /// its samples: exact to a sample; [`Timeline::reach_time`] goes the rest of the way.
    fn events_near(&self, ms: u64) -> u64 {
        let b = self.branch();
        let i = b.ticks.partition_point(|(_, t)| *t < ms);
        i.checked_sub(1).map_or(0, |i| b.ticks[i].0)
    }

    /// The cluster at the first event at or after simulated time `ms` on the branch on
    /// screen (a checker anomaly's moment).
    pub fn reach_time(&mut self, ms: u64) -> Result<Sim<IdbDisk>, String> {
        let from = self.events_near(ms);
        let mut sim = self.reach(from)?;
        let end = self.branch().end.0;
        while sim.now().0 < ms && sim.events_run() < end {
            if let Some(l) = self.pending(sim.events_run()).cloned() {
                if sim.now().0 < l.now_ms {
                    sim.run_until(Millis(l.now_ms));
                }
                let _ = l.input.apply(&mut sim);
                self.applied += 1;
                continue;
            }
            if !sim.step() {
                break;
            }
        }
        self.at = sim.events_run();
        Ok(sim)
    }

    /// Shows branch `number` at its end; `None` if there is no such branch.
    pub fn switch(&mut self, number: usize) -> Result<Sim<IdbDisk>, String> {
        let i = self
            .branches
            .iter()
            .position(|b| b.number == number)
            .ok_or_else(|| format!("no branch {number}"))?;
        self.current = i;
        let end = self.branch().end.0;
        self.reach(end)
    }

    /// The logged inputs of the branch on screen (for a link).
    pub fn inputs(&self) -> &[Logged] {
        &self.branch().inputs
    }

    /// Replaces the branch on screen's inputs (a link's), before anything ran.
    pub fn set_inputs(&mut self, inputs: Vec<Logged>) {
        let mut inputs = inputs;
        inputs.truncate(INPUTS_MAX);
        self.branch_mut().inputs = inputs;
        self.applied = 0;
    }

    /// The furthest moment of the branch on screen, events.
    pub fn end(&self) -> u64 {
        self.branch().end.0
    }

    /// Extends the branch on screen's end to `events` (a link to a moment past what this page
    /// ran: the run is played to there).
    pub fn extend_to(&mut self, events: u64) {
        let b = self.branch_mut();
        if events > b.end.0 {
            b.end.0 = events;
        }
    }

    /// What the timeline shows (see [`TimelineView`]); `at_ms` is the cluster's clock.
    pub fn view(&self, at_ms: u64) -> TimelineView {
        let b = self.branch();
        let mut markers: Vec<Marker> = b
            .inputs
            .iter()
            .filter_map(|l| {
                let (kind, label) = l.input.marker()?;
                Some(Marker {
                    events: l.events,
                    ms: l.now_ms,
                    kind,
                    label,
                })
            })
            .collect();
        markers.extend(b.anomalies.iter().cloned());
        markers.sort_by_key(|m| m.events);
        TimelineView {
            at: self.at,
            at_ms,
            end: b.end.0,
            end_ms: b.end.1,
            branch: b.number,
            branches: self
                .branches
                .iter()
                .map(|b| BranchView {
                    number: b.number,
                    forked_from: b.forked,
                    end: b.end.0,
                    inputs: b.inputs.len(),
                })
                .collect(),
            markers,
        }
    }

    /// The moment (events) of clock `ms` on the branch on screen, by its samples.
    pub fn events_at_ms(&self, ms: u64) -> u64 {
        self.events_near(ms)
    }

    /// What the snapshots cost beside `live`, the cluster on screen (see [`TimelineStats`]).
    pub fn stats(&self, live: &Sim<IdbDisk>) -> TimelineStats {
        let mut seen: Vec<*const Snapshot> = Vec::new();
        let mut contents = std::collections::BTreeSet::new();
        for (_, data, hints) in live.disks() {
            data.unshared_bytes(&mut contents);
            hints.unshared_bytes(&mut contents);
        }
        let (mut file_bytes, mut log) = (0, 0);
        for b in &self.branches {
            for s in &b.snapshots {
                let p = Rc::as_ptr(s);
                if !seen.contains(&p) {
                    seen.push(p);
                    for (_, data, hints) in s.sim.disks() {
                        file_bytes += data.unshared_bytes(&mut contents);
                        file_bytes += hints.unshared_bytes(&mut contents);
                    }
                    log += log_bytes(&s.sim);
                }
            }
        }
        TimelineStats {
            snapshots: seen.len(),
            file_bytes,
            log_bytes: log,
            every: self.branch().every,
            branches: self.branches.len(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use crate::cluster::{ClusterOptions, SimCluster};
    use std::collections::BTreeMap;

    /// A xorshift generator for the test's choices.
    struct Draw(u64);
    impl Draw {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    fn fresh_seed() -> u64 {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(1);
        h.finish() % 1_000_000
    }

    fn cluster(seed: u64) -> SimCluster {
        let mut c = SimCluster::new(&ClusterOptions {
            seed,
            nodes: 5,
            sync: "interval:50".to_string(),
            ..ClusterOptions::default()
        })
        .unwrap();
        c.give(Input::Workload(WorkloadKnobs {
            rate: Some(300),
            ..WorkloadKnobs::default()
        }))
        .unwrap();
        c
    }

    /// A random input to the cluster, as the page's controls give them.
    fn some_input(d: &mut Draw) -> Input {
        let node = 1 + d.below(5) as u32;
        match d.below(8) {
            0 => Input::Crash { node },
            1 => Input::Restart { node },
            2 => Input::Partition {
                a: vec![node],
                b: (1..=5).filter(|n| *n != node).collect(),
                one_way: d.below(2) == 0,
            },
            3 => Input::Heal,
            4 => Input::Skew {
                node,
                ms: d.below(200) as i64 - 100,
            },
            5 => Input::Network(NetworkKnobs {
                loss_pct: Some(d.below(10) as f64),
                ..NetworkKnobs::default()
            }),
            _ => Input::Client {
                node,
                kind: ["put", "get", "delete"][d.below(3) as usize].to_string(),
                key: format!("k{}", d.below(20)),
                value: "v".to_string(),
                consistency: String::new(),
            },
        }
    }

    /// Runs `c` as the page does (frames of `run_until`, single steps) with random inputs;
    /// returns each moment's hash, and its clock where the moment's clock is the last event's
    /// or the last input's (after a bare `run_until` the page's clock runs ahead of both).
    fn drive(
        c: &mut SimCluster,
        d: &mut Draw,
        iterations: usize,
    ) -> BTreeMap<u64, (u64, Option<u64>)> {
        let mut seen = BTreeMap::new();
        for _ in 0..iterations {
            let stepped = if d.below(3) == 0 {
                c.step();
                true
            } else {
                let t = c.now().0 + 1 + d.below(40);
                c.run_until(t);
                false
            };
            let gave = d.below(6) == 0 && c.give(some_input(d)).is_ok();
            let clock = (stepped || gave).then(|| c.now().0);
            let events = c.sim().events_run();
            match seen.get(&events) {
                // A later run_until at the same moment moved only the clock.
                Some((_, Some(_))) if clock.is_none() && !gave => {}
                _ => {
                    seen.insert(events, (c.sim().log().hash(), clock));
                }
            }
        }
        seen
    }

    fn check(seed: u64) {
        let mut d = Draw(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut c = cluster(seed);
        let seen = drive(&mut c, &mut d, 3_000);
        let end = c.sim().events_run();
        assert!(end > 3 * EVERY_EVENTS, "seed {seed}: only {end} events");
        assert!(c.timeline().stats(c.sim()).snapshots >= 3, "seed {seed}");
        let moments: Vec<u64> = seen.keys().copied().collect();
        let mut targets: Vec<u64> = (0..20)
            .map(|_| moments[d.below(moments.len() as u64) as usize])
            .collect();
        targets.extend([moments[0], end]);
        for target in targets {
            c.go_to(target).unwrap();
            let (hash, clock) = seen[&target];
            assert_eq!(
                (c.sim().events_run(), c.sim().log().hash()),
                (target, hash),
                "seed {seed}: moment {target}"
            );
            if let Some(clock) = clock {
                assert_eq!(
                    c.now().0,
                    clock,
                    "seed {seed}: the clock at moment {target}"
                );
            }
        }
        // Back at the end and on: the same as the run that never went back.
        c.go_to(end).unwrap();
        assert_eq!(c.sim().log().hash(), seen[&end].0, "seed {seed}");
    }

    #[test]
    fn any_moment_is_replayed_exactly_from_the_nearest_snapshot() {
        let fresh = fresh_seed();
        println!("timeline seeds: 3, 11 and fresh seed {fresh}");
        for seed in [3, 11, fresh] {
            check(seed);
        }
    }

    #[test]
    fn stepping_back_then_forward_returns_to_the_same_moment() {
        let mut c = cluster(5);
        c.run_until(2_000);
        for _ in 0..50 {
            c.step();
        }
        let (events, hash, now) = (c.sim().events_run(), c.sim().log().hash(), c.now());
        for back in 1..=20 {
            c.go_to(events - back).unwrap();
            assert_eq!(c.sim().events_run(), events - back);
        }
        for _ in 0..20 {
            c.step();
        }
        assert_eq!(
            (c.sim().events_run(), c.sim().log().hash(), c.now()),
            (events, hash, now)
        );
    }

    #[test]
    fn playing_a_stretch_again_gives_its_inputs_back() {
        let mut c = cluster(8);
        c.run_until(500);
        c.crash(2);
        c.run_until(900);
        c.partition(&[1], &[3, 4, 5], false);
        c.run_until(1_500);
        let (events, hash) = (c.sim().events_run(), c.sim().log().hash());
        c.go_to(10).unwrap();
        // Played forward in frames, as the page plays: the crash and the partition come back.
        c.run_until(1_500);
        assert_eq!((c.sim().events_run(), c.sim().log().hash()), (events, hash));
        assert!(!c.sim().is_up(NodeId(2)));
    }

    #[test]
    fn a_change_in_the_past_forks_and_the_original_run_is_kept() {
        let mut c = cluster(13);
        c.run_until(800);
        c.crash(3);
        c.run_until(2_000);
        let (end, hash) = (c.sim().events_run(), c.sim().log().hash());
        let crashed_at = c.timeline().inputs()[1].events;
        c.go_to(crashed_at - 1).unwrap();
        c.crash(4);
        c.run_until(2_000);
        let view = c.timeline().view(c.now().0);
        assert_eq!(view.branch, 2);
        assert_eq!(view.branches.len(), 2);
        assert_eq!(view.branches[1].forked_from, Some((1, crashed_at - 1)));
        assert!(c.sim().is_up(NodeId(3)) && !c.sim().is_up(NodeId(4)));
        assert_ne!(c.sim().log().hash(), hash);
        c.switch_branch(1).unwrap();
        assert_eq!((c.sim().events_run(), c.sim().log().hash()), (end, hash));
        assert!(!c.sim().is_up(NodeId(3)));
    }

    #[test]
    fn snapshots_stay_within_their_bound_and_cover_the_run() {
        let mut c = cluster(21);
        c.give(Input::Workload(WorkloadKnobs {
            rate: Some(1_000),
            ..WorkloadKnobs::default()
        }))
        .unwrap();
        let mut t = 0;
        while c.sim().events_run() < 40 * EVERY_EVENTS {
            t += 50;
            c.run_until(t);
        }
        let stats = c.timeline().stats(c.sim());
        assert!(stats.snapshots <= SNAPSHOTS_MAX, "{stats:?}");
        assert!(stats.every > EVERY_EVENTS, "{stats:?}");
        assert!(stats.file_bytes > 0);
        // Still exact, from the thinned snapshots.
        let (events, hash) = (c.sim().events_run(), c.sim().log().hash());
        c.go_to(events / 3).unwrap();
        c.go_to(events).unwrap();
        assert_eq!(c.sim().log().hash(), hash);
    }

    #[test]
    fn a_links_inputs_round_trip_and_bad_bytes_are_refused() {
        let inputs = vec![
            Logged {
                events: 10,
                now_ms: 12,
                input: Input::Crash { node: 2 },
            },
            Logged {
                events: 90,
                now_ms: 140,
                input: Input::Network(NetworkKnobs {
                    loss_pct: Some(5.0),
                    ..NetworkKnobs::default()
                }),
            },
        ];
        let bytes = encode_inputs(&inputs);
        assert_eq!(decode_inputs(&bytes).unwrap(), inputs);
        let mut flipped = bytes.clone();
        flipped[7] ^= 1;
        assert!(matches!(
            decode_inputs(&flipped),
            Err(InputsError::Checksum { .. })
        ));
        let mut version = bytes.clone();
        version[0] = 9;
        assert_eq!(decode_inputs(&version), Err(InputsError::Version(9)));
        assert_eq!(decode_inputs(&bytes[..3]), Err(InputsError::Length(3)));
        // A link's inputs replay the run: a fresh cluster given them reaches the same moment.
        let mut a = cluster(2);
        a.run_until(300);
        a.crash(2);
        a.run_until(700);
        let code = encode_inputs(a.timeline().inputs());
        let mut b = SimCluster::new(&ClusterOptions {
            seed: 2,
            nodes: 5,
            sync: "interval:50".to_string(),
            ..ClusterOptions::default()
        })
        .unwrap();
        b.load_inputs(decode_inputs(&code).unwrap()).unwrap();
        b.play_to(a.sim().events_run()).unwrap();
        assert_eq!(b.sim().log().hash(), a.sim().log().hash());
    }
}
