//! `Cluster`: the simulated cluster as JavaScript sees it, in one `#[wasm_bindgen]` block.
//! Each method converts at the boundary and calls plain Rust tested on the host: the cluster
//! ([`crate::cluster::SimCluster`]), the views of `page.rs`, the log filter ([`crate::logview`])
//! and, in WebAssembly only, saving to IndexedDB (`persist_js.rs`).

use crate::page::{
    NetworkKnobs, WorkloadKnobs, apply_network, apply_workload, checker, config_view, node_detail,
    op_view,
};
#[cfg(target_arch = "wasm32")]
use crate::persist_js;
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
        let sim = self.inner.sim_mut();
        let next = sim.node_ids().last().map_or(1, |n| n.0 + 1);
        if next > url::NODES_MAX {
            return Err(JsError::new(&format!("at most {} nodes", url::NODES_MAX)));
        }
        sim.add_node(NodeId(next))
            .map_err(|e| JsError::new(&e.to_string()))?;
        Ok(next)
    }

    /// Asks `node` to leave gracefully (it hands its ranges over, then stops).
    pub fn leave(&mut self, node: u32) {
        self.inner.sim_mut().leave(NodeId(node));
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
        let sim = self.inner.sim_mut();
        let net = apply_network(sim.config().network.clone(), &k);
        sim.set_network(net);
        Ok(())
    }

    /// Sets the workload: `{rate, readPct, keys}`, each optional (rate 0 stops it).
    #[wasm_bindgen(js_name = setWorkload)]
    pub fn set_workload(&mut self, knobs: JsValue) -> Result<(), JsError> {
        let k: WorkloadKnobs =
            serde_wasm_bindgen::from_value(knobs).map_err(|e| JsError::new(&e.to_string()))?;
        let sim = self.inner.sim_mut();
        let w = apply_workload(sim.config().workload.clone(), &k);
        sim.set_workload(w);
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
