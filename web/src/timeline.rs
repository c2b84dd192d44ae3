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
//! [`INPUT_VALUE_BYTES_MAX`] bytes), at most [`BRANCHES_MAX`] branches (the oldest not on
//! screen goes first), and snapshots within two limits: at most [`SNAPSHOTS_MAX`] per branch,
//! and, in the browser, the module's heap ([`crate::heap::in_use`]) within
//! [`HEAP_BUDGET_BYTES`]. Past either, the branch with the most snapshots keeps every other
//! one and its spacing doubles, so they always cover the whole run; for memory, no branch
//! below [`SNAPSHOTS_MIN`], and the extra snapshot for going back goes first. The count alone
//! is no bound on memory: a snapshot of a 16-node cluster costs about 1 MiB, of a 64-node one
//! several times that (each node's failure detector keeps a window per peer). Each snapshot holds
//! at most [`SNAPSHOT_LOG_KEEP`] log entries. [`Timeline::stats`] reports their size;
//! `docs/benchmarks.md` has the figures of a long run.
//!
//! What a snapshot shares with the cluster on screen and with the other snapshots, until
//! either side changes it: file contents, in chunks (an append copies only a file's last
//! chunk), the history of client operations, and each failure detector's arrival windows
//! (in chunks too); the rest is copied.
//!
//! **Lessons.** A lesson's player drives the simulator itself ([`crate::lesson`]); what it
//! does is logged too ([`Timeline::log_given`]): each step's start ([`Input::LessonStep`], a
//! marker that changes nothing) and each command that changes the cluster, as its script line
//! ([`Input::Script`], replayed by the core's `Command::apply`, the code the player ran). So a
//! lesson's run replays exactly like free play's (tested in `lesson/tests.rs` on every
//! built-in lesson), and its step markers show on the timeline. While the screen shows the
//! lesson's past the lesson waits (`crate::app::View::frame`); at the latest moment it goes
//! on. A change in its past forks a branch, and the page then leaves the lesson.
//!
//! A cluster saved in IndexedDB and replaced by a moment of its timeline is saved whole at the
//! next save ([`crate::persist::take_batch`]): its disks' record of what was saved belongs to
//! another moment.
//!
//! **Branches.** Going back and giving an input forks the run: a new branch takes the inputs
//! before that moment and the new one, and the old branch is kept as it was, to switch back to
//! ([`Timeline::switch`]). Going back alone forks nothing: playing forward again replays the
//! branch's own inputs ([`Timeline::pending`]).

use crate::idb_disk::IdbDisk;
use ringstore_core::Millis;
use ringstore_core::sim::log::OpId;
use ringstore_core::sim::{DiskFactory, Sim};
use serde::Serialize;
use std::rc::Rc;

mod inputs;
pub use inputs::{
    INPUT_KEY_BYTES_MAX, INPUT_VALUE_BYTES_MAX, INPUTS_BYTES_MAX, INPUTS_VERSION, Input,
    InputsError, Logged, PLAY_TO_MAX, decode_inputs, encode_inputs,
};

/// Inputs a branch logs at most.
pub const INPUTS_MAX: usize = 2_000;
/// Snapshots a branch keeps at most.
pub const SNAPSHOTS_MAX: usize = 192;
/// A branch is thinned for memory down to this many snapshots, not below.
pub const SNAPSHOTS_MIN: usize = 4;
/// The module's heap in use ([`crate::heap::in_use`]) above which snapshots are thinned.
pub const HEAP_BUDGET_BYTES: u64 = 256 << 20;
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
    /// Why its past cannot be replayed, if it cannot (see [`Timeline::log_given`]).
    unreplayable: Option<String>,
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
                input: None,
            });
        }
    }

    /// Keeps the first snapshot, then every other one: the spacing doubles.
    fn thin(&mut self) {
        let kept: Vec<Rc<Snapshot>> = self.snapshots.iter().step_by(2).cloned().collect();
        self.snapshots = kept;
        self.every *= 2;
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
    /// The logged input it marks (its index on the branch), for a marker of one: the page
    /// goes to the moment just before it ([`Timeline::reach_input`]) when several share an
    /// event count (a lesson's step begins where the step before it was read).
    pub input: Option<usize>,
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
    /// The module's heap in use, bytes, where it is counted (the browser).
    pub heap_bytes: Option<u64>,
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
    /// Reads the heap in use, where it can be read (see [`Timeline::thin_for_memory`]).
    heap: Option<Box<dyn Fn() -> u64>>,
    /// Snapshots a branch keeps at most: [`SNAPSHOTS_MAX`] (tests set fewer).
    snapshots_max: usize,
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
            unreplayable: None,
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
            heap: crate::heap::in_use()
                .map(|_| Box::new(|| crate::heap::in_use().unwrap_or(0)) as Box<dyn Fn() -> u64>),
            snapshots_max: SNAPSHOTS_MAX,
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
        let max = self.snapshots_max;
        let b = self.branch_mut();
        if let Some(last) = b.snapshots.last()
            && (events < last.events + b.every || events <= last.events || !keeping)
        {
            return false;
        }
        let Some(copy) = sim.fork_keeping_log(disks(), SNAPSHOT_LOG_KEEP) else {
            return false;
        };
        b.snapshots.push(Rc::new(Snapshot {
            events,
            inputs_applied: applied,
            sim: copy,
        }));
        if b.snapshots.len() > max {
            b.thin();
        }
        self.thin_for_memory();
        true
    }

    /// While the heap is over [`HEAP_BUDGET_BYTES`], thins the branch holding the most
    /// snapshots (above [`SNAPSHOTS_MIN`]); the extra snapshot for going back goes first.
    fn thin_for_memory(&mut self) {
        let Some(heap) = &self.heap else {
            return;
        };
        while heap() > HEAP_BUDGET_BYTES {
            if self.near.take().is_some() {
                continue;
            }
            let Some(b) = self
                .branches
                .iter_mut()
                .filter(|b| b.snapshots.len() > SNAPSHOTS_MIN)
                .max_by_key(|b| b.snapshots.len())
            else {
                break;
            };
            b.thin();
        }
    }

    /// Takes snapshots every `every` events at first and keeps at most `max` per branch, so
    /// that a short test run thins them.
    #[cfg(test)]
    pub(crate) fn limit_snapshots(&mut self, every: u64, max: usize) {
        self.snapshots_max = max;
        self.branch_mut().every = every;
    }

    /// Replaces how the heap in use is read (the page's is [`crate::heap::in_use`]; the
    /// host has none, so only [`SNAPSHOTS_MAX`] bounds the snapshots there unless a test sets
    /// one).
    pub fn set_heap_probe(&mut self, probe: Option<Box<dyn Fn() -> u64>>) {
        self.heap = probe;
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
        self.fork_if_past(sim, events);
        let op = input.apply(sim)?;
        self.push_given(Logged {
            events,
            now_ms: now,
            input,
        });
        Ok(op)
    }

    /// Forks a new branch at `sim`'s moment when `events` is in the branch's past (inputs
    /// logged after the screen's moment, or the branch ran further).
    fn fork_if_past(&mut self, sim: &Sim<IdbDisk>, events: u64) {
        let b = self.branch();
        if b.inputs.len() > self.applied || b.end.0 > events {
            self.fork_here(sim);
        }
    }

    /// Logs an input given to the cluster on screen.
    fn push_given(&mut self, l: Logged) {
        self.branch_mut().inputs.push(l);
        self.applied = self.branch().inputs.len();
    }

    /// Whether `sim` (the cluster on screen) is at a past moment of the branch on screen.
    pub fn in_past(&self, sim: &Sim<IdbDisk>) -> bool {
        let b = self.branch();
        sim.events_run() < b.end.0 || self.applied < b.inputs.len()
    }

    /// Logs what a lesson did to `sim` (the cluster on screen) already, each at its moment
    /// ([`crate::lesson::LessonPlay::take_changes`]), as [`Timeline::give`] logs the reader's
    /// inputs (forking first if the screen shows the past), then notes the moment. Past
    /// [`INPUTS_MAX`] the branch cannot be replayed: it is marked so, and going back in it is
    /// refused with the reason.
    pub fn log_given(&mut self, sim: &Sim<IdbDisk>, changes: Vec<Logged>) {
        for l in changes {
            if self.branch().inputs.len() >= INPUTS_MAX {
                self.branch_mut().unreplayable = Some(format!(
                    "this lesson made more than {INPUTS_MAX} changes, the most a timeline keeps, so its past cannot be replayed"
                ));
                break;
            }
            self.fork_if_past(sim, l.events);
            self.push_given(l);
        }
        self.ran(sim);
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
            unreplayable: old.unreplayable.clone(),
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
        self.reach_until(events, usize::MAX)
    }

    /// The cluster of the branch on screen just before its input `index` was given: at that
    /// input's event count, with the inputs before it given and not it (nor any after). Other
    /// moments with that event count include every input logged at it ([`Timeline::reach`]).
    pub fn reach_input(&mut self, index: usize) -> Result<Sim<IdbDisk>, String> {
        let events = self
            .branch()
            .inputs
            .get(index)
            .map(|l| l.events)
            .ok_or_else(|| format!("this run has no input {index}"))?;
        self.reach_until(events, index)
    }

    /// [`Timeline::reach`], giving only the first `inputs_max` inputs of the branch.
    fn reach_until(&mut self, events: u64, inputs_max: usize) -> Result<Sim<IdbDisk>, String> {
        if let Some(why) = &self.branch().unreplayable {
            return Err(why.clone());
        }
        let target = events.min(self.branch().end.0);
        let snap = self.start_for(target, inputs_max);
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
                    // The clock when it was given (a lesson's `run` may have moved it with no
                    // event), also when stopping just before it.
                    sim.run_until(Millis(l.now_ms));
                }
                if i >= inputs_max {
                    break;
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
                && let Some(copy) = sim.fork_keeping_log(disks(), SNAPSHOT_LOG_KEEP)
            {
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
    /// before it that has had at most `inputs_max` inputs, the extra one (`near`) included.
    fn start_for(&self, target: u64, inputs_max: usize) -> Option<Rc<Snapshot>> {
        let b = self.branch();
        let kept = b
            .snapshots
            .iter()
            .rev()
            .find(|s| s.events <= target && s.inputs_applied <= inputs_max)
            .or(b.snapshots.first())
            .cloned();
        match &self.near {
            Some((number, near))
                if *number == b.number
                    && near.events <= target
                    && near.inputs_applied <= inputs_max
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
        self.start_for(target, usize::MAX).map_or(0, |s| s.events)
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
            .enumerate()
            .filter_map(|(i, l)| {
                let (kind, label) = l.input.marker()?;
                Some(Marker {
                    events: l.events,
                    ms: l.now_ms,
                    kind,
                    label,
                    input: Some(i),
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
            heap_bytes: crate::heap::in_use(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests;
