//! `Cluster`: the simulated cluster as JavaScript sees it, in one `#[wasm_bindgen]` block.
//! Each method converts at the boundary and calls plain Rust tested on the host: the cluster
//! ([`crate::cluster::SimCluster`]), the views of `page.rs`, the log filter ([`crate::logview`])
//! and, in WebAssembly only, saving to IndexedDB (`persist_js.rs`).

use crate::page::{NetworkKnobs, WorkloadKnobs, checker, config_view, node_detail, op_view};
#[cfg(target_arch = "wasm32")]
use crate::persist_js;
use crate::timeline::{Input, Logged};
use crate::{cluster, logview, page_error, to_js, url};
use ringstore_core::NodeId;
use serde::Serialize;
use wasm_bindgen::prelude::{JsError, JsValue, wasm_bindgen};

/// A simulated cluster, as JavaScript sees it.
#[wasm_bindgen]
pub struct Cluster {
    pub(crate) inner: cluster::SimCluster,
    /// Its database, when made with `Cluster.open` (`persist_js.rs`).
    #[cfg(target_arch = "wasm32")]
    pub(crate) saver: Option<persist_js::Saver>,
}

#[wasm_bindgen]
impl Cluster {
    /// Builds a cluster from an options object (`{seed, nodes, n, w, r, vnodes, gossip, sync,
    /// scenario, lesson}`, all optional; `lesson`: a lesson file's text), in memory only
    /// (`Cluster.open` makes one that saves itself).
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue) -> Result<Cluster, JsError> {
        let options: cluster::ClusterOptions = if options.is_undefined() || options.is_null() {
            cluster::ClusterOptions::default()
        } else {
            serde_wasm_bindgen::from_value(options).map_err(|e| JsError::new(&e.to_string()))?
        };
        let inner = cluster::SimCluster::new(&options).map_err(page_error)?;
        Ok(Cluster {
            inner,
            #[cfg(target_arch = "wasm32")]
            saver: None,
        })
    }

    /// Simulated time in milliseconds.
    pub fn now(&self) -> f64 {
        self.inner.now().0 as f64
    }

    /// The event log's hash, in hex: two runs that did exactly the same have the same one
    /// (the seed sweep's replay check, and the page's tests of going back in a lesson).
    #[wasm_bindgen(js_name = logHash)]
    pub fn log_hash(&self) -> String {
        format!("{:016x}", self.inner.sim().log().hash())
    }

    /// Runs `ms` of simulated time.
    #[wasm_bindgen(js_name = runFor)]
    pub fn run_for(&mut self, ms: u32) {
        self.inner.run_for(u64::from(ms));
    }

    /// Runs the next event; `false` when nothing is scheduled.
    pub fn step(&mut self) -> bool {
        self.inner.step()
    }

    /// Events run so far: the moment on screen (`&at=` in a link).
    #[wasm_bindgen(js_name = eventsRun)]
    pub fn events_run(&self) -> f64 {
        self.inner.sim().events_run() as f64
    }

    /// Shows the moment just before the run's input `index` was given (a marker's `input`).
    #[wasm_bindgen(js_name = goToInput)]
    pub fn go_to_input(&mut self, index: usize) -> Result<(), JsError> {
        self.inner.go_to_input(index).map_err(page_error)
    }

    /// Whether the screen shows a past moment of its run (a lesson waits there).
    #[wasm_bindgen(js_name = inPast)]
    pub fn in_past(&self) -> bool {
        self.inner.in_past()
    }

    /// Shows the moment after `events` events of the branch on screen (clamped to 0 and to
    /// the branch's end), replayed from the nearest snapshot (`timeline.rs`).
    #[wasm_bindgen(js_name = goTo)]
    pub fn go_to(&mut self, events: f64) -> Result<(), JsError> {
        let events = if events.is_finite() {
            events.max(0.0) as u64
        } else {
            0
        };
        self.inner.go_to(events).map_err(page_error)
    }

    /// Back one event (the moment before; nothing at the start).
    #[wasm_bindgen(js_name = stepBack)]
    pub fn step_back(&mut self) -> Result<bool, JsError> {
        let at = self.inner.sim().events_run();
        if at == 0 {
            return Ok(false);
        }
        self.inner.go_to(at - 1).map_err(page_error)?;
        Ok(true)
    }

    /// Shows the first moment at or after simulated time `ms` (a checker anomaly's).
    #[wasm_bindgen(js_name = goToTime)]
    pub fn go_to_time(&mut self, ms: f64) -> Result<(), JsError> {
        let ms = if ms.is_finite() {
            ms.max(0.0) as u64
        } else {
            0
        };
        self.inner.go_to_time(ms).map_err(page_error)
    }

    /// Plays the branch on screen forward at once to the moment after `events` events
    /// (a link to a moment past what ran here), giving its logged inputs on the way and
    /// keeping snapshots; at most `timeline::PLAY_TO_MAX` events.
    #[wasm_bindgen(js_name = playTo)]
    pub fn play_to(&mut self, events: f64) -> Result<(), JsError> {
        let events = if events.is_finite() {
            events.max(0.0) as u64
        } else {
            0
        };
        self.inner.play_to(events).map_err(page_error)
    }

    /// Shows branch `number` of the timeline, at its end.
    #[wasm_bindgen(js_name = switchBranch)]
    pub fn switch_branch(&mut self, number: u32) -> Result<(), JsError> {
        self.inner
            .switch_branch(number as usize)
            .map_err(page_error)
    }

    /// The timeline: `{at, at_ms, end, end_ms, branch, branches: [{number, forkedFrom,
    /// end, inputs}], markers: [{events, ms, kind, label}]}`.
    pub fn timeline(&self) -> Result<JsValue, JsError> {
        to_js(&self.inner.timeline().view(self.inner.now().0))
    }

    /// What the timeline's snapshots cost: `{snapshots, fileBytes, logBytes, every,
    /// branches}`.
    #[wasm_bindgen(js_name = timelineStats)]
    pub fn timeline_stats(&self) -> Result<JsValue, JsError> {
        to_js(&self.inner.timeline().stats(self.inner.sim()))
    }

    /// Turns the timeline's snapshots (beyond the first) on or off (for measuring what they
    /// cost; off, every jump replays from the start).
    #[wasm_bindgen(js_name = keepSnapshots)]
    pub fn keep_snapshots(&mut self, on: bool) {
        self.inner.timeline_mut().keep_snapshots(on);
    }

    /// The inputs of the branch on screen up to the moment on screen, encoded for a link
    /// (`timeline::encode_inputs`: versioned, checksummed; the page deflates it).
    #[wasm_bindgen(js_name = inputsCode)]
    pub fn inputs_code(&self) -> Result<Vec<u8>, JsError> {
        let at = self.inner.sim().events_run();
        let inputs: Vec<Logged> = self
            .inner
            .timeline()
            .inputs()
            .iter()
            .filter(|l| l.events <= at)
            .cloned()
            .collect();
        crate::timeline::encode_inputs(&inputs)
            .map_err(|e| JsError::new(&format!("the inputs cannot be encoded: {e}")))
    }

    /// Takes a link's inputs (as [`Cluster::inputs_code`] gives them) for a cluster that has
    /// not run yet; they are given back as the run reaches them. Damaged bytes are refused
    /// with a message saying what is wrong.
    #[wasm_bindgen(js_name = loadInputs)]
    pub fn load_inputs(&mut self, bytes: &[u8]) -> Result<(), JsError> {
        let inputs =
            crate::timeline::decode_inputs(bytes).map_err(|e| JsError::new(&e.to_string()))?;
        self.inner.load_inputs(inputs).map_err(page_error)
    }

    /// The cluster's state for drawing.
    pub fn snapshot(&self) -> Result<JsValue, JsError> {
        to_js(&self.inner.snapshot())
    }

    /// Log entries from sequence number `seq` on.
    #[wasm_bindgen(js_name = eventsSince)]
    pub fn events_since(&self, seq: f64) -> Result<JsValue, JsError> {
        to_js(&self.inner.events_since(seq as u64))
    }

    /// Sends a client operation (`put`, `get` or `delete`) to node `node`; returns its id.
    pub fn client(
        &mut self,
        node: u32,
        kind: &str,
        key: &str,
        value: &str,
        consistency: &str,
    ) -> Result<f64, JsError> {
        self.inner
            .client(node, kind, key, value, consistency)
            .map(|op| op as f64)
            .map_err(page_error)
    }

    /// A client operation's outcome in words, or `undefined` while it runs.
    #[wasm_bindgen(js_name = resultOf)]
    pub fn result_of(&self, op: f64) -> Option<String> {
        self.inner.result_of(op as u64)
    }

    /// Crashes a node.
    pub fn crash(&mut self, node: u32) {
        self.inner.crash(node);
    }

    /// Restarts a crashed node.
    pub fn restart(&mut self, node: u32) -> Result<(), JsError> {
        self.inner.restart(node).map_err(page_error)
    }

    /// Cuts links between two groups of nodes (only a → b if `one_way`).
    pub fn partition(&mut self, a: Vec<u32>, b: Vec<u32>, one_way: bool) {
        self.inner.partition(&a, &b, one_way);
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.inner.heal();
    }

    /// Sets a node's clock offset in ms.
    #[wasm_bindgen(js_name = setSkew)]
    pub fn set_skew(&mut self, node: u32, ms: i32) {
        self.inner.set_skew(node, i64::from(ms));
    }

    /// Adds a node (the next free id); it joins: streams the ranges it gains, then serves.
    /// Returns its id.
    #[wasm_bindgen(js_name = addNode)]
    pub fn add_node(&mut self) -> Result<u32, JsError> {
        let next = self.inner.sim().node_ids().last().map_or(1, |n| n.0 + 1);
        if next > url::NODES_MAX {
            return Err(JsError::new(&format!("at most {} nodes", url::NODES_MAX)));
        }
        self.inner.give(Input::Join).map_err(page_error)?;
        Ok(next)
    }

    /// Asks `node` to leave gracefully (it hands its ranges over, then stops).
    pub fn leave(&mut self, node: u32) {
        let _ = self.inner.give(Input::Leave { node });
    }

    /// Whether `node` runs.
    #[wasm_bindgen(js_name = isUp)]
    pub fn is_up(&self, node: u32) -> bool {
        self.inner.sim().is_up(NodeId(node))
    }

    /// Node ids (every node ever added, left ones included).
    #[wasm_bindgen(js_name = nodeIds)]
    pub fn node_ids(&self) -> Vec<u32> {
        self.inner.sim().node_ids().iter().map(|n| n.0).collect()
    }

    /// Sets latency and loss: `{latencyMin, latencyMax, lossPct}`, each optional.
    #[wasm_bindgen(js_name = setNetwork)]
    pub fn set_network(&mut self, knobs: JsValue) -> Result<(), JsError> {
        let k: NetworkKnobs =
            serde_wasm_bindgen::from_value(knobs).map_err(|e| JsError::new(&e.to_string()))?;
        self.inner.give(Input::Network(k)).map_err(page_error)?;
        Ok(())
    }

    /// Sets the workload: `{rate, readPct, keys}`, each optional (rate 0 stops it).
    #[wasm_bindgen(js_name = setWorkload)]
    pub fn set_workload(&mut self, knobs: JsValue) -> Result<(), JsError> {
        let k: WorkloadKnobs =
            serde_wasm_bindgen::from_value(knobs).map_err(|e| JsError::new(&e.to_string()))?;
        self.inner.give(Input::Workload(k)).map_err(page_error)?;
        Ok(())
    }

    /// The configuration: `{seed, nodes, n, w, r, vnodes, sync, gossip, latencyMin,
    /// latencyMax, lossPct, rate, readPct, keys}`.
    pub fn config(&self) -> Result<JsValue, JsError> {
        to_js(&config_view(self.inner.sim()))
    }

    /// The checker's live counters and its newest anomalies with their operations.
    pub fn checker(&self) -> Result<JsValue, JsError> {
        to_js(&checker(self.inner.sim()))
    }

    /// One client operation: `{op, kind, key, node, invoked, completed, result}`.
    pub fn op(&self, op: f64) -> Result<JsValue, JsError> {
        to_js(&op_view(self.inner.sim(), op as u64))
    }

    /// The log lines after `seq` that pass `filter` (`{hide: [classes], node, deliveries,
    /// limit}`), the newest `limit` (at most and by default 400):
    /// `{next, lines: [{seq, t, class, nodes, text, op}]}`.
    #[wasm_bindgen(js_name = logSince)]
    pub fn log_since(&self, seq: f64, filter: JsValue) -> Result<JsValue, JsError> {
        let filter: logview::Filter = if filter.is_undefined() || filter.is_null() {
            logview::Filter::default()
        } else {
            serde_wasm_bindgen::from_value(filter).map_err(|e| JsError::new(&e.to_string()))?
        };
        let log = self.inner.sim().log();
        #[derive(Serialize)]
        struct Out {
            next: u64,
            lines: Vec<logview::Line>,
        }
        to_js(&Out {
            next: log.total(),
            lines: logview::since(log.since(seq as u64), &filter),
        })
    }

    /// Node `id` in detail: opinions of it, both stores' statistics, hints, tokens.
    #[wasm_bindgen(js_name = nodeDetail)]
    pub fn node_detail(&self, id: u32) -> Result<JsValue, JsError> {
        to_js(&node_detail(self.inner.sim(), id))
    }

    /// Crashes or restarts `node`, whichever it needs; returns whether it is now up.
    pub fn toggle(&mut self, node: u32) -> Result<bool, JsError> {
        if self.inner.sim().is_up(NodeId(node)) {
            self.inner.crash(node);
            Ok(false)
        } else {
            self.inner.restart(node).map_err(page_error)?;
            Ok(self.inner.sim().is_up(NodeId(node)))
        }
    }

    /// Opens the cluster saved in IndexedDB database `dbName`: resumes it if its options equal
    /// `options` (or `options` is undefined), else deletes it and starts fresh from `options`.
    /// Rejects with a `SavedStateError` if the saved state is damaged or foreign (whatever the
    /// options: damaged state is never deleted without a reset), and with an `Error` if the
    /// options are refused (the database is then left as it was).
    #[cfg(target_arch = "wasm32")]
    pub async fn open(db_name: String, options: JsValue) -> Result<Cluster, JsValue> {
        persist_js::open(db_name, options).await
    }

    /// Deletes the cluster saved in database `dbName`. Clusters still open on it can no longer
    /// save (their `persist()` rejects).
    #[cfg(target_arch = "wasm32")]
    pub async fn reset(db_name: String) -> Result<(), JsValue> {
        persist_js::reset(db_name).await
    }

    /// Writes to IndexedDB everything durable since the last persist, with the configuration
    /// and the clock; resolves once the transaction committed. Calls may overlap: they are
    /// written in order. Rejects for a cluster made with `new Cluster()` (it has no database).
    #[cfg(target_arch = "wasm32")]
    pub fn persist(&mut self) -> js_sys::Promise {
        persist_js::persist(self)
    }

    /// What saving costs: `{resumed, loadedRecords, loadedBytes, openMs, commits, lastRecords,
    /// lastBytes, lastMs, totalBytes, savedBytes, savedRecords, queuedBytes}` (see
    /// `PersistStats`); `undefined` for a cluster without a database.
    #[cfg(target_arch = "wasm32")]
    #[wasm_bindgen(js_name = persistStats)]
    pub fn persist_stats(&self) -> Result<JsValue, JsError> {
        persist_js::persist_stats(self)
    }
}
