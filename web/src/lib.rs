//! `ringstore-web`: the browser host for `ringstore-core`.
//!
//! Compiled to WebAssembly with wasm-bindgen, it gives the page a whole simulated cluster
//! ([`Cluster`]): build it from a few options, run simulated time, send client operations,
//! inject faults, and read back a snapshot and the event log to draw (structured data crosses
//! to JavaScript with serde-wasm-bindgen); the picture ([`app::View`]): the [`view`] model, its
//! [`layout`] and the canvas [`render`]er, paced by the [`player`], with the [`scenario`]s of
//! the design notes, the page's [`url`] settings and the [`logview`] (`Cluster`'s methods are in
//! `cluster_js.rs`, the views they return in [`page`]). Every machine runs on the browser's disk
//! ([`idb_disk`]), and a cluster opened with `Cluster.open` saves itself to IndexedDB and
//! resumes after a reload ([`persist`]; the bindings are in `persist_js.rs`). The logic lives in
//! [`cluster`], [`idb_disk`], [`records`] and [`persist`], which are tested on the host; the
//! bindings only convert types at the boundary.
//!
//! # One frame
//!
//! ```text
//!  requestAnimationFrame ─► View.frame(cluster, t)         (wasm, every frame)
//!                             ├─ LessonPlay       a lesson: issue the next command when ready
//!                             ├─ Player.frame     run the Sim for dt × speed, within 10 ms
//!                             │                   (behind: up to 40 ms, aiming at 20 fps)
//!                             ├─ SimSource        Sim ─► ViewModel (messages, effects; nodes at 10 Hz)
//!                             └─ render::draw     ViewModel + Scene (layout) ─► canvas 2D
//!                                  ├─ RingLayer   background + ring: offscreen, redrawn on change, copied
//!                                  └─ effects     disk flashes coalesced into ≤ ~96 rings
//!  every 250 ms ──────────► panels: View.panel, Cluster.checker / logSince / nodeDetail  (JSON)
//! ```
//!
//! The renderer's cost is what a canvas without a GPU rasterises (headless Chromium, browsers
//! whose GPU is blocklisted): a stroked path costs ~35 µs there, an anti-aliased circle ~40 µs,
//! so the ring is a cached layer ([`ring_layer`]), disk flashes are coalesced ([`effects`]), and
//! circles are pre-drawn sprites ([`sprites`]). `tests/browser/profile.mjs` summarises a CDP
//! trace of the page per thread and per frame (raster, script, style/layout/paint; p50/p99; by
//! which panel job ran in the frame), which is how these costs were found. The DOM panels
//! (`www/app.js`) update in rounds every 250 ms split into one job per animation frame.
//!
//! **Time travel** ([`timeline`], `www/timeline.js`): every input the page gives the cluster
//! goes through [`cluster::SimCluster`], which logs it with its event count and keeps
//! snapshots ([`ringstore_core::sim::Sim::fork`]); any moment is replayed from the nearest one,
//! a change in the past forks a new branch, and a link carries the moment and the inputs.
//!
//! **Saving** (`www/cluster.js`, the one place the page meets it): `openCluster` calls
//! `Cluster.open` (resume if the saved configuration matches the URL's, else fresh), `persist()`
//! runs every 500 ms and on `pagehide` and `visibilitychange`, and "Reset" calls
//! `Cluster.reset`. The URL's runtime knobs (latency, loss, workload) are applied after opening,
//! so a reload keeps what the link says. Lesson runs are not saved.
//!
//! **The JavaScript API the page uses**: `new Cluster(options)` with `{seed, nodes, n, w, r,
//! vnodes, gossip, sync, scenario}`; `cluster.client(node, kind, key, value, consistency)`,
//! `resultOf(op)`, `crash`, `restart`, `toggle`, `partition(a, b, oneWay)`, `heal`, `setSkew`,
//! `addNode`, `leave`, `setNetwork({latencyMin, latencyMax, lossPct})`,
//! `setWorkload({rate, readPct, keys})`, `config()`, `checker()`, `op(id)`,
//! `logSince(seq, {hide, node, deliveries, limit})`, `nodeDetail(id)`, `nodeIds()`, `isUp`;
//! the [`timeline`]'s `eventsRun()`, `goTo(events)`, `stepBack()`, `goToTime(ms)`,
//! `playTo(events)`, `switchBranch(n)`, `timeline()`, `timelineStats()`, `inputsCode()`,
//! `loadInputs(bytes)`, `keepSnapshots(on)`;
//! `new View(canvas)` with `attach`, `resize`, `frame`, `setPlaying`, `setSpeed`, `nudgeSpeed`,
//! `stepOne`, `pointer`, `select`, `setKey`, `keyInfo`, `follow`, `startScenario`, `nextStep`,
//! `scenarioState`, `panel`, `stats`, `resetStats`, `setDark`, `setShowGossip`; and
//! `parseQuery`, `toQuery`, `scenarios`, `version`. `tests/browser/` uses the same API.
//!
//! **Tests**: the view model, layout, pacing, URL, lessons, log filter, disk and saving on the
//! host (`cargo test -p ringstore-web`); the disk and saving against real IndexedDB in headless
//! Chromium (`browser_tests.rs`, wasm-bindgen-test; the runner is set in
//! `.cargo/config.toml`, Chromium's arguments in `web/webdriver.json`); the page end to end in
//! `tests/browser/page.test.mjs`.
#![forbid(unsafe_code)]

pub mod app;
#[cfg(all(test, target_arch = "wasm32"))]
mod browser_tests;
pub mod cluster;
mod cluster_js;
pub mod effects;
pub mod heap;
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
pub mod timeline;
pub mod url;
pub mod view;

pub use cluster_js::Cluster;
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
