//! `LiveCluster`: [`Live`] as JavaScript sees it (`www/live.js` owns the sockets). Its method
//! names match the simulated `Cluster`'s where the page's panels call both (`nodeIds`,
//! `nodeDetail`, `logSince`, `client`, `resultOf`, `partition`, `heal`, `setSkew`), so the
//! panels work unchanged in both modes. Each method only converts at the boundary.

use super::{Live, parse_address};
use crate::app::View;
use crate::{Cluster, to_js};
use serde::Serialize;
use wasm_bindgen::prelude::{JsError, JsValue, wasm_bindgen};

fn now_real() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

/// Checks what a user typed as a node's address: the `host:port` to dial, or an error saying
/// what is wrong with it.
#[wasm_bindgen(js_name = parseNodeAddress)]
pub fn parse_node_address(input: &str) -> Result<String, JsError> {
    parse_address(input).map_err(|e| JsError::new(&e.0))
}

/// One connection, for the page's status line.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConnView {
    address: String,
    node: Option<u32>,
    open: bool,
    fresh: bool,
    updates: u64,
    lost_events: u64,
    lost_messages: u64,
    lost_updates: u64,
    bad_frames: u64,
    error: Option<String>,
    fault_injection: bool,
    silent_ms: f64,
}

/// The live cluster. See the module docs.
#[wasm_bindgen]
pub struct LiveCluster {
    inner: Live,
}

#[wasm_bindgen]
impl LiveCluster {
    /// Live state that starts from the node at `address` (`host:port`, or a URL).
    #[wasm_bindgen(constructor)]
    pub fn new(address: &str) -> Result<LiveCluster, JsError> {
        let seed = parse_address(address).map_err(|e| JsError::new(&e.0))?;
        Ok(LiveCluster {
            inner: Live::new(seed, now_real()),
        })
    }

    /// The address it started from.
    pub fn seed(&self) -> String {
        self.inner.seed.clone()
    }

    /// The addresses to hold a socket to (`ws://ADDRESS/ws/ui`).
    pub fn wanted(&self) -> Vec<String> {
        self.inner.wanted()
    }

    /// The socket to `address` opened.
    pub fn opened(&mut self, address: &str) {
        self.inner.opened(address, now_real());
    }

    /// The socket to `address` closed or failed, `why` in words.
    pub fn closed(&mut self, address: &str, why: &str) {
        self.inner.closed(address, why, now_real());
    }

    /// A binary frame from `address`; returns why it was refused, if it was.
    pub fn feed(&mut self, address: &str, bytes: &[u8]) -> Option<String> {
        self.inner.feed(address, bytes, now_real()).err()
    }

    /// The frames to send: `[[address, Uint8Array], ...]`.
    #[wasm_bindgen(js_name = takeOutbox)]
    pub fn take_outbox(&mut self) -> js_sys::Array {
        let out = js_sys::Array::new();
        for (address, bytes) in self.inner.take_outbox() {
            let pair = js_sys::Array::new();
            pair.push(&JsValue::from_str(&address));
            pair.push(&js_sys::Uint8Array::from(bytes.as_slice()));
            out.push(&pair);
        }
        out
    }

    /// Problems to show (refused fault commands, frames a node refused).
    #[wasm_bindgen(js_name = takeNotices)]
    pub fn take_notices(&mut self) -> Vec<String> {
        self.inner.take_notices()
    }

    /// Fills `view`'s model from the live state and draws it (one animation frame).
    pub fn frame(&mut self, view: &mut View, real_ms: f64) -> Result<(), JsError> {
        let live = &mut self.inner;
        view.frame_with(real_ms, |model| live.fill(model, now_real()))
    }

    /// Node ids, sorted.
    #[wasm_bindgen(js_name = nodeIds)]
    pub fn node_ids(&self) -> Vec<u32> {
        self.inner.node_ids()
    }

    /// Node `id` in detail (the simulated `Cluster.nodeDetail`'s shape).
    #[wasm_bindgen(js_name = nodeDetail)]
    pub fn node_detail(&self, id: u32) -> Result<JsValue, JsError> {
        to_js(&self.inner.node_detail(id, now_real()))
    }

    /// Log lines after `seq` passing `filter`: `{next, lines}` (as `Cluster.logSince`).
    #[wasm_bindgen(js_name = logSince)]
    pub fn log_since(&self, seq: f64, filter: JsValue) -> Result<JsValue, JsError> {
        let filter: crate::logview::Filter = if filter.is_undefined() || filter.is_null() {
            crate::logview::Filter::default()
        } else {
            serde_wasm_bindgen::from_value(filter).map_err(|e| JsError::new(&e.to_string()))?
        };
        let (next, lines) = self.inner.log_since(seq as u64, &filter);
        #[derive(Serialize)]
        struct Out {
            next: u64,
            lines: Vec<crate::logview::Line>,
        }
        to_js(&Out { next, lines })
    }

    /// A client operation through `node`; returns its id (the outcome: `resultOf`).
    pub fn client(
        &mut self,
        node: u32,
        kind: &str,
        key: &str,
        value: &str,
        consistency: &str,
    ) -> Result<f64, JsError> {
        self.inner
            .client(node, kind, key, value, consistency, now_real())
            .map(|op| op as f64)
            .map_err(|e| JsError::new(&e))
    }

    /// An operation's outcome in words, or `undefined` while it runs.
    #[wasm_bindgen(js_name = resultOf)]
    pub fn result_of(&self, op: f64) -> Option<String> {
        self.inner.result_of(op as u64)
    }

    /// Follows operation `op` (negative: none).
    pub fn follow(&mut self, op: f64) {
        self.inner.follow = (op >= 0.0).then_some(op as u64);
    }

    /// Cuts every link between `a` and `b` (a one-way cut has no live equivalent and is
    /// refused); returns the commands sent.
    pub fn partition(&mut self, a: Vec<u32>, b: Vec<u32>, one_way: bool) -> Result<u32, JsError> {
        if one_way {
            return Err(JsError::new(
                "a live node cuts a peer both ways: one-way partitions exist only in the simulation",
            ));
        }
        self.inner
            .partition(&a, &b, now_real())
            .map(|n| n as u32)
            .map_err(|e| JsError::new(&e))
    }

    /// Restores every link on every reachable node.
    pub fn heal(&mut self) -> Result<u32, JsError> {
        self.inner
            .heal(now_real())
            .map(|n| n as u32)
            .map_err(|e| JsError::new(&e))
    }

    /// Sets node `node`'s clock skew in ms.
    #[wasm_bindgen(js_name = setSkew)]
    pub fn set_skew(&mut self, node: u32, ms: i32) -> Result<(), JsError> {
        self.inner
            .set_skew(node, i64::from(ms), now_real())
            .map_err(|e| JsError::new(&e))
    }

    /// Why fault injection is off for the connected nodes (`undefined` when it is on).
    #[wasm_bindgen(js_name = faultsOff)]
    pub fn faults_off(&self) -> Option<String> {
        let ids: Vec<u32> = self
            .inner
            .node_ids()
            .into_iter()
            .filter(|id| {
                self.inner
                    .conn_of(*id)
                    .is_some_and(|c| c.open && c.hello.is_some())
            })
            .collect();
        super::commands::faults_allowed(&self.inner, &ids).err()
    }

    /// The connections: `[{address, node, open, fresh, updates, lostEvents, lostMessages,
    /// lostUpdates, badFrames, error, faultInjection, silentMs}]`.
    pub fn connections(&self) -> Result<JsValue, JsError> {
        let now = now_real();
        let out: Vec<ConnView> = self
            .inner
            .conns
            .values()
            .filter(|c| !c.duplicate)
            .map(|c| ConnView {
                address: c.address.clone(),
                node: c.node(),
                open: c.open,
                fresh: c.fresh(now),
                updates: c.updates,
                lost_events: c.lost.events,
                lost_messages: c.lost.messages,
                lost_updates: c.lost.updates,
                bad_frames: c.bad_frames,
                error: c.error.clone(),
                fault_injection: c.hello.as_ref().is_some_and(|h| h.fault_injection),
                silent_ms: now - c.last_frame_ms,
            })
            .collect();
        to_js(&out)
    }

    /// The cut links the page shows: `[[from, to]]` (both directions of each cut).
    #[wasm_bindgen(js_name = cutLinks)]
    pub fn cut_links(&self) -> Result<JsValue, JsError> {
        let mut model = crate::view::ViewModel::default();
        self.inner.merge_into(&mut model, now_real());
        to_js(&model.cut)
    }

    /// The busiest links: `[[from, to, kind, perSecond, total]]`, at most `max`.
    pub fn traffic(&self, max: usize) -> Result<JsValue, JsError> {
        let mut t = self.inner.traffic(now_real());
        t.truncate(max);
        let out: Vec<(u32, u32, &str, f64, u64)> = t
            .into_iter()
            .map(|(a, b, k, rate, total)| (a, b, k.name(), rate, total))
            .collect();
        to_js(&out)
    }

    /// A new simulation of the live cluster (its members, ring tokens and N/W/R).
    #[wasm_bindgen(js_name = whatIf)]
    pub fn what_if(&self) -> Result<Cluster, JsError> {
        let w = self
            .inner
            .what_if(now_real())
            .map_err(|e| JsError::new(&e))?;
        let inner = super::what_if::build(w.config).map_err(|e| JsError::new(&e))?;
        Ok(Cluster {
            inner,
            #[cfg(target_arch = "wasm32")]
            saver: None,
        })
    }

    /// What `whatIf` would build, in a sentence.
    #[wasm_bindgen(js_name = whatIfDescription)]
    pub fn what_if_description(&self) -> Result<String, JsError> {
        self.inner
            .what_if(now_real())
            .map(|w| w.description)
            .map_err(|e| JsError::new(&e))
    }
}
