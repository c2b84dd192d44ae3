//! `ringstore-web`: the browser host for `ringstore-core`.
//!
//! Compiled to WebAssembly with wasm-bindgen, it gives the page a whole simulated cluster
//! ([`Cluster`]): build it from a few options, run simulated time, send client operations,
//! inject faults, and read back a snapshot and the event log to draw (structured data crosses
//! to JavaScript with serde-wasm-bindgen); the picture ([`app::View`]): the [`view`] model, its
//! [`layout`] and the canvas [`render`]er, paced by the [`player`], with the [`scenario`]s of
//! the design notes, the page's [`url`] settings and the [`logview`] (the rest of the page's API
//! is in [`page`]). Every machine runs on the browser's disk
//! ([`idb_disk`]), and a cluster opened with `Cluster.open` saves itself to IndexedDB and
//! resumes after a reload ([`persist`]; the bindings are in `persist_js.rs`). The logic lives in
//! [`cluster`], [`idb_disk`], [`records`] and [`persist`], which are tested on the host; the
//! bindings only convert types at the boundary.
#![forbid(unsafe_code)]

pub mod app;
#[cfg(all(test, target_arch = "wasm32"))]
mod browser_tests;
pub mod cluster;
pub mod effects;
#[cfg(target_arch = "wasm32")]
pub mod idb;
pub mod idb_disk;
pub mod layout;
pub mod lesson;
mod lesson_js;
pub mod live;
pub mod logview;
pub mod page;
pub mod persist;
#[cfg(target_arch = "wasm32")]
mod persist_js;
pub mod player;
pub mod records;
pub mod render;
mod render_gossip;
mod render_lsm;
mod render_merkle;
mod render_moving;
mod render_nodes;
mod render_shares;
pub mod ring_layer;
pub mod scenario;
pub mod sprites;
pub mod url;
pub mod view;

use wasm_bindgen::prelude::{JsError, JsValue, wasm_bindgen};

/// The version of ringstore compiled into this module.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Runs a golden-style scenario script (see `ringstore_core::sim::script`) and returns its
/// trace, so the page can play the design notes' scenarios.
#[wasm_bindgen(js_name = runScript)]
pub fn run_script(text: &str) -> Result<String, JsError> {
    ringstore_core::sim::script::run_script(text).map_err(|e| JsError::new(&e.to_string()))
}

/// A lesson file's errors, `[{line, message}]` (empty: it is a good lesson), for the page
/// to show before it tries to play one (see `docs/LESSONS.md`).
#[wasm_bindgen(js_name = checkLesson)]
pub fn check_lesson(text: &str) -> Result<JsValue, JsError> {
    #[derive(serde::Serialize)]
    struct LineError {
        line: usize,
        message: String,
    }
    let errors: Vec<LineError> = ringstore_core::sim::script::lesson_errors(text)
        .into_iter()
        .map(|e| LineError {
            line: e.line,
            message: e.message,
        })
        .collect();
    to_js(&errors)
}

fn to_js<T: serde::Serialize>(value: &T) -> Result<JsValue, JsError> {
    serde_wasm_bindgen::to_value(value).map_err(|e| JsError::new(&e.to_string()))
}

fn page_error(e: cluster::PageError) -> JsError {
    JsError::new(&e.0)
}

/// A simulated cluster, as JavaScript sees it.
#[wasm_bindgen]
pub struct Cluster {
    inner: cluster::Cluster,
    /// Its database, when made with `Cluster.open` (`persist_js.rs`).
    #[cfg(target_arch = "wasm32")]
    saver: Option<persist_js::Saver>,
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
        let inner = cluster::Cluster::new(&options).map_err(page_error)?;
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
}
