//! The simulated cluster as the page drives it, in plain Rust types: options with defaults, and
//! the operations the page's controls call. `lib.rs` wraps it for JavaScript; keeping the logic
//! here lets it be tested on the host without a browser.

use crate::idb_disk::IdbDisk;
use crate::timeline::{Input, Timeline};
use ringstore_core::node::{ClientOp, Consistency, check_quorums};
use ringstore_core::sim::log::{LogEntry, OpId};
use ringstore_core::sim::{ClusterSnapshot, Sim, SimConfig};
use ringstore_core::{Millis, NodeId};
use serde::{Deserialize, Serialize};

/// The console's client operation, for the simulated cluster and live mode alike: `kind` is
/// `put`, `get` or `delete`; `consistency` is `one`, `quorum`, `all`, a number, or empty for
/// the cluster's W or R. The node checks the key and value bounds.
pub fn client_op(
    kind: &str,
    key: &str,
    value: &str,
    consistency: &str,
) -> Result<ClientOp, String> {
    let consistency = match consistency {
        "" => None,
        other => Some(other.parse::<Consistency>()?),
    };
    let key = key.as_bytes().to_vec();
    Ok(match kind {
        "put" => ClientOp::Put {
            key,
            value: value.as_bytes().to_vec(),
            consistency,
        },
        "get" => ClientOp::Get { key, consistency },
        "delete" => ClientOp::Delete { key, consistency },
        other => return Err(format!("unknown operation {other:?}")),
    })
}

/// What the page can choose when it builds a cluster; everything else takes the simulator's
/// defaults. Every field is optional in JavaScript.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterOptions {
    /// The seed of the whole run (0: the simulator's default).
    pub seed: u64,
    /// Nodes (0: the default, 5).
    pub nodes: u32,
    /// Replicas per key, and the write and read quorums (0: the defaults, 3/2/2).
    pub n: usize,
    /// Write quorum.
    pub w: usize,
    /// Read quorum.
    pub r: usize,
    /// Tokens per node (0: the default).
    pub vnodes: u32,
    /// Gossip membership with phi-accrual detection instead of the oracle.
    pub gossip: bool,
    /// When replicas sync their WAL: `always`, `never` or `interval:MS` (empty: always).
    pub sync: String,
    /// A scenario's name (see `scenario::SCENARIOS`): its cluster line decides everything
    /// else, and the fields above are ignored.
    pub scenario: String,
    /// A lesson's text (a teacher's file, at most `script::lesson::LESSON_BYTES_MAX` bytes):
    /// its cluster line decides everything else, as a scenario's does.
    pub lesson: String,
}

impl ClusterOptions {
    /// The simulator configuration these options describe.
    pub fn config(&self) -> SimConfig {
        if let Some(Ok(config)) = crate::scenario::find(&self.scenario).map(crate::scenario::config)
        {
            return config;
        }
        if !self.lesson.is_empty()
            && let Ok(lesson) = ringstore_core::sim::script::parse_lesson(&self.lesson)
        {
            return lesson.cluster;
        }
        let mut config = SimConfig::default();
        let pick = |v: usize, default: usize| if v == 0 { default } else { v };
        if self.seed != 0 {
            config.seed = self.seed;
        }
        if self.nodes != 0 {
            config.nodes = self.nodes;
        }
        if self.vnodes != 0 {
            config.vnodes = self.vnodes;
        }
        config.n = pick(self.n, config.n);
        config.w = pick(self.w, config.w);
        config.r = pick(self.r, config.r);
        if self.gossip {
            config.gossip = Some(SimConfig::fast_gossip());
        }
        if let Some(sync) = crate::page::parse_sync(&self.sync) {
            config.sync = sync;
        }
        config
    }
}

/// Why the page's request could not be done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageError(pub String);

/// A simulated cluster driven by the page. Its machines run on [`IdbDisk`]s, which the page
/// may save to IndexedDB ([`crate::persist`]).
pub struct SimCluster {
    pub(crate) sim: Sim<IdbDisk>,
    /// The options it was built with.
    pub(crate) options: ClusterOptions,
    /// Saves taken so far.
    pub(crate) saves: u64,
    /// The run's inputs and snapshots ([`crate::timeline`]).
    pub(crate) timeline: Timeline,
    /// The simulation was replaced by one from the timeline: the next save rewrites
    /// everything ([`crate::persist::take_batch`]).
    pub(crate) rewrite_saved: bool,
}

impl SimCluster {
    /// Builds a cluster; refuses quorums outside 1 ≤ W, R ≤ N ≤ nodes.
    pub fn new(options: &ClusterOptions) -> Result<SimCluster, PageError> {
        if !options.lesson.is_empty() {
            let errors = ringstore_core::sim::script::lesson_errors(&options.lesson);
            if !errors.is_empty() {
                let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
                return Err(PageError(lines.join("\n")));
            }
        }
        let config = options.config();
        check_quorums(config.n, config.w, config.r).map_err(|e| PageError(e.to_string()))?;
        if config.nodes == 0 || config.nodes > 256 {
            return Err(PageError(format!(
                "nodes must be 1 to 256, got {}",
                config.nodes
            )));
        }
        if !options.scenario.is_empty() && crate::scenario::find(&options.scenario).is_none() {
            return Err(PageError(format!("no scenario {:?}", options.scenario)));
        }
        if !options.sync.is_empty() && crate::page::parse_sync(&options.sync).is_none() {
            return Err(PageError(format!(
                "sync must be always, never or interval:MS, got {:?}",
                options.sync
            )));
        }
        let mut sim = Sim::with_disks(config, Box::new(|_, _, _| IdbDisk::new()))
            .map_err(|e| PageError(e.to_string()))?;
        if !options.scenario.is_empty() || !options.lesson.is_empty() {
            // As the golden scripts do: the story starts at t = 100 ms (the notes' ts=100).
            sim.run_for(ringstore_core::sim::script::START_MS);
        }
        Ok(SimCluster::from_sim(options.clone(), sim))
    }

    /// Wraps a running simulation (a resumed one) built with `options`.
    pub(crate) fn from_sim(options: ClusterOptions, sim: Sim<IdbDisk>) -> SimCluster {
        SimCluster {
            timeline: Timeline::new(&sim),
            sim,
            options,
            saves: 0,
            rewrite_saved: false,
        }
    }

    /// The simulation, to draw.
    pub fn sim(&self) -> &Sim<IdbDisk> {
        &self.sim
    }

    /// The simulation, to drive.
    pub fn sim_mut(&mut self) -> &mut Sim<IdbDisk> {
        &mut self.sim
    }

    /// Simulated time.
    pub fn now(&self) -> Millis {
        self.sim.now()
    }

    /// Runs `ms` of simulated time (giving back the branch's logged inputs on the way when it
    /// replays a stretch of its timeline).
    pub fn run_for(&mut self, ms: u64) {
        let t = self.sim.now().0 + ms;
        self.run_until(t);
    }

    /// Runs every event up to simulated time `t` ms, then sets the clock to `t`, giving back
    /// the timeline's logged inputs at their event counts; notes the moment on the timeline.
    pub fn run_until(&mut self, t: u64) {
        loop {
            let Some(due) = self.timeline.next_input_at() else {
                self.sim.run_until(Millis(t));
                break;
            };
            let events = self.sim.events_run();
            if events == due {
                if !self.give_due(t) {
                    self.sim.run_until(Millis(t));
                    break;
                }
                continue;
            }
            // Step up to the input's event count, or to `t`.
            if due < events || self.sim.next_event_at().is_none_or(|at| at.0 > t) {
                self.sim.run_until(Millis(t));
                break;
            }
            self.sim.step();
        }
        self.timeline.ran(&self.sim);
    }

    /// Gives back the timeline's inputs due at this event count whose clock is at most `t`;
    /// `false` if one is due later than `t` (the clock then stops at `t`).
    fn give_due(&mut self, t: u64) -> bool {
        while let Some(l) = self.timeline.pending(self.sim.events_run()).cloned() {
            if l.now_ms > t {
                return false;
            }
            if self.sim.now().0 < l.now_ms {
                self.sim.run_until(Millis(l.now_ms));
            }
            // It applied when it was logged, and the state is the same.
            let _ = l.input.apply(&mut self.sim);
            self.timeline.gave_pending();
        }
        true
    }

    /// Runs the next event (and the inputs logged right after it, when replaying); `false`
    /// when nothing is scheduled.
    pub fn step(&mut self) -> bool {
        // Inputs still due at this count first (the screen may show the moment before them).
        self.give_due(u64::MAX);
        let ran = self.sim.step();
        if ran {
            self.give_due(u64::MAX);
        }
        self.timeline.ran(&self.sim);
        ran
    }

    /// The reader's input, given now and logged on the timeline (forking a new branch when
    /// the screen shows a past moment); returns the client operation's id for a client input.
    pub fn give(&mut self, input: Input) -> Result<Option<OpId>, PageError> {
        self.timeline.give(&mut self.sim, input).map_err(PageError)
    }

    /// Logs on the timeline what a lesson did to the cluster ([`crate::lesson`]), and notes
    /// the moment.
    pub fn log_lesson(&mut self, changes: Vec<crate::timeline::Logged>) {
        self.timeline.log_given(&self.sim, changes);
    }

    /// Whether the screen shows a past moment of its branch (inputs or events logged after it).
    pub fn in_past(&self) -> bool {
        self.timeline.in_past(&self.sim)
    }

    /// Shows the moment after `events` events of the branch on screen (clamped to its end).
    pub fn go_to(&mut self, events: u64) -> Result<(), PageError> {
        let target = events.min(self.timeline.end());
        let at = self.sim.events_run();
        if target >= at && target - at <= target - self.timeline.start_events(target) {
            // Ahead on the same branch, and nearer than any snapshot: step there (inputs still
            // due at this count first).
            self.give_due(u64::MAX);
            while self.sim.events_run() < target && self.sim.step() {
                self.give_due(u64::MAX);
            }
            self.timeline.ran(&self.sim);
            return Ok(());
        }
        let sim = self.timeline.reach(events).map_err(PageError)?;
        self.replace_sim(sim);
        Ok(())
    }

    /// Shows the moment just before the branch's input `index` was given (a lesson step's
    /// marker: where the step before it was read).
    pub fn go_to_input(&mut self, index: usize) -> Result<(), PageError> {
        let sim = self.timeline.reach_input(index).map_err(PageError)?;
        self.replace_sim(sim);
        Ok(())
    }

    /// Shows the first moment at or after simulated time `ms` on the branch on screen.
    pub fn go_to_time(&mut self, ms: u64) -> Result<(), PageError> {
        let sim = self.timeline.reach_time(ms).map_err(PageError)?;
        self.replace_sim(sim);
        Ok(())
    }

    /// Shows branch `number` at its end.
    pub fn switch_branch(&mut self, number: usize) -> Result<(), PageError> {
        let sim = self.timeline.switch(number).map_err(PageError)?;
        self.replace_sim(sim);
        Ok(())
    }

    /// Plays the branch on screen forward at once to the moment after `events` events (at
    /// most [`crate::timeline::PLAY_TO_MAX`]), giving back its inputs and keeping snapshots.
    pub fn play_to(&mut self, events: u64) -> Result<(), PageError> {
        if events > crate::timeline::PLAY_TO_MAX {
            return Err(PageError(format!(
                "a moment is at most {} events into the run, got {events}",
                crate::timeline::PLAY_TO_MAX
            )));
        }
        // Notes the moment now and then, so that snapshots are taken on the way.
        const NOTE_EVERY: u64 = 256;
        while self.sim.events_run() < events {
            if !self.sim.step() {
                break;
            }
            self.give_due(u64::MAX);
            if self.sim.events_run().is_multiple_of(NOTE_EVERY) {
                self.timeline.ran(&self.sim);
            }
        }
        self.timeline.ran(&self.sim);
        Ok(())
    }

    /// Takes a link's inputs, before the cluster ran: they are given back as the run reaches
    /// them. Refused if the cluster ran already or an input comes before the one it follows.
    pub fn load_inputs(&mut self, inputs: Vec<crate::timeline::Logged>) -> Result<(), PageError> {
        if self.timeline.end() > self.sim.events_run() || !self.timeline.inputs().is_empty() {
            return Err(PageError(
                "inputs are taken before the cluster runs".to_string(),
            ));
        }
        if inputs.windows(2).any(|w| {
            w[1].events < w[0].events || (w[1].events == w[0].events && w[1].now_ms < w[0].now_ms)
        }) {
            return Err(PageError("the link's inputs are out of order".to_string()));
        }
        if inputs
            .first()
            .is_some_and(|l| l.events < self.sim.events_run())
        {
            return Err(PageError(
                "the link's first input comes before the run starts".to_string(),
            ));
        }
        let oversized = inputs.iter().any(|l| {
            matches!(&l.input, Input::Client { key, value, .. }
                if key.len() > crate::timeline::INPUT_KEY_BYTES_MAX
                    || value.len() > crate::timeline::INPUT_VALUE_BYTES_MAX)
        });
        if oversized {
            return Err(PageError(
                "the link's inputs hold a key or a value over the page's limits".to_string(),
            ));
        }
        self.timeline.set_inputs(inputs);
        // Inputs due right at the start.
        self.give_due(u64::MAX);
        Ok(())
    }

    fn replace_sim(&mut self, sim: Sim<IdbDisk>) {
        self.sim = sim;
        self.rewrite_saved = true;
    }

    /// The timeline.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// The timeline, to change.
    pub fn timeline_mut(&mut self) -> &mut Timeline {
        &mut self.timeline
    }

    /// The cluster's state for drawing.
    pub fn snapshot(&self) -> ClusterSnapshot {
        self.sim.snapshot()
    }

    /// Log entries with sequence numbers from `seq` that the log still holds.
    pub fn events_since(&self, seq: u64) -> Vec<LogEntry> {
        self.sim.log().since(seq).cloned().collect()
    }

    /// Sends a client operation to `node`: `kind` is `put`, `get` or `delete`; `consistency` is
    /// `one`, `quorum`, `all`, a number, or empty for the cluster's W or R.
    pub fn client(
        &mut self,
        node: u32,
        kind: &str,
        key: &str,
        value: &str,
        consistency: &str,
    ) -> Result<OpId, PageError> {
        client_op(kind, key, value, consistency).map_err(PageError)?;
        if !self.sim.node_ids().contains(&NodeId(node)) {
            return Err(PageError(format!("no node n{node}")));
        }
        let op = self.give(Input::Client {
            node,
            kind: kind.to_string(),
            key: key.to_string(),
            value: value.to_string(),
            consistency: consistency.to_string(),
        })?;
        op.ok_or_else(|| PageError("the operation was not sent".to_string()))
    }

    /// A client operation's outcome in words, once it completed.
    pub fn result_of(&self, op: OpId) -> Option<String> {
        let result = self.sim.history().op(op)?.result.clone()?;
        Some(ringstore_core::sim::log::show_result(&result))
    }

    /// Crashes `node` (its unsynced writes are lost).
    pub fn crash(&mut self, node: u32) {
        let _ = self.give(Input::Crash { node });
    }

    /// Restarts a crashed `node` from its disks.
    pub fn restart(&mut self, node: u32) -> Result<(), PageError> {
        self.give(Input::Restart { node }).map(|_| ())
    }

    /// Cuts the links between groups `a` and `b` (only a → b if `one_way`).
    pub fn partition(&mut self, a: &[u32], b: &[u32], one_way: bool) {
        let _ = self.give(Input::Partition {
            a: a.to_vec(),
            b: b.to_vec(),
            one_way,
        });
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        let _ = self.give(Input::Heal);
    }

    /// Sets `node`'s clock offset.
    pub fn set_skew(&mut self, node: u32, ms: i64) {
        let _ = self.give(Input::Skew { node, ms });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_default_to_the_simulator_and_quorums_are_checked() {
        let c = ClusterOptions::default().config();
        assert_eq!((c.nodes, c.n, c.w, c.r), (5, 3, 2, 2));
        let bad = ClusterOptions {
            n: 3,
            w: 4,
            ..ClusterOptions::default()
        };
        assert!(SimCluster::new(&bad).is_err());
    }

    #[test]
    fn the_page_can_put_and_read_back_and_sees_a_crash() {
        let mut cluster = SimCluster::new(&ClusterOptions {
            seed: 9,
            ..ClusterOptions::default()
        })
        .unwrap();
        let put = cluster.client(2, "put", "user123", "Alice", "").unwrap();
        cluster.run_for(200);
        assert!(cluster.result_of(put).unwrap().starts_with("ok"));
        cluster.crash(3);
        cluster.run_for(200);
        let get = cluster.client(1, "get", "user123", "", "quorum").unwrap();
        cluster.run_for(1_000);
        assert!(cluster.result_of(get).unwrap().starts_with("Alice"));
        let snapshot = cluster.snapshot();
        assert_eq!(snapshot.nodes.iter().filter(|n| !n.up).count(), 1);
        assert!(!cluster.events_since(0).is_empty());
        assert!(cluster.client(9, "put", "k", "v", "").is_err());
        assert!(cluster.client(1, "scan", "k", "", "").is_err());
        assert!(cluster.client(1, "get", "k", "", "most").is_err());
    }
}
