//! The JavaScript side of saving (WebAssembly only): `Cluster.open`, `cluster.persist()`,
//! `Cluster.reset` and `cluster.persistStats()`, over [`crate::persist`] and [`crate::idb`].
//!
//! ```js
//! const cluster = await Cluster.open("ringstore", { seed: 7, nodes: 5 }); // resumes or starts fresh
//! cluster.client(2, "put", "user123", "Alice", "");
//! cluster.runFor(200);
//! await cluster.persist();        // the durable state and the clock are in IndexedDB
//! await Cluster.reset("ringstore"); // deletes it
//! ```
//!
//! Errors are `Error` objects named `SavedStateError` with a `kind` (see
//! [`SavedError::kind`]) and `resettable: true`: the page shows the message and offers a reset.
//!
//! `persist()` takes its batch at once (the simulation can run on while it is written) and
//! writes batches one transaction at a time, in order, coalescing those that wait (see
//! [`SaveQueue`]); its promise resolves once a transaction holding its batch committed.

use crate::cluster::{self, ClusterOptions};
use crate::persist::{self, PersistStats, SaveQueue};
use crate::records::{Batch, Op, SavedError};
use crate::{Cluster, idb, to_js};
use js_sys::Promise;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{JsFuture, future_to_promise};
use web_sys::IdbDatabase;

/// A cluster's link to its database.
pub(crate) type Saver = Rc<RefCell<SaverState>>;

pub(crate) struct SaverState {
    db: IdbDatabase,
    queue: SaveQueue,
    /// The last write in line; it never rejects (a failure resolves to the error value).
    tail: Promise,
    stats: PersistStats,
}

impl SaverState {
    /// What saving has cost so far (without the sizes `persistStats` adds).
    #[cfg(test)]
    pub(crate) fn stats_snapshot(&self) -> PersistStats {
        self.stats.clone()
    }
}

/// The page's error object for a [`SavedError`].
fn saved_error(e: &SavedError) -> JsValue {
    let error = js_sys::Error::new(&e.to_string());
    error.set_name("SavedStateError");
    let set = |k: &str, v: JsValue| js_sys::Reflect::set(&error, &JsValue::from_str(k), &v);
    let _ = set("kind", JsValue::from_str(e.kind()));
    let _ = set("resettable", JsValue::TRUE);
    error.into()
}

fn now_ms() -> f64 {
    let performance = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("performance"));
    performance
        .ok()
        .and_then(|p| {
            let now = js_sys::Reflect::get(&p, &JsValue::from_str("now")).ok()?;
            let now: js_sys::Function = now.dyn_into().ok()?;
            now.call0(&p).ok()?.as_f64()
        })
        .unwrap_or_else(js_sys::Date::now)
}

fn options_from(options: JsValue) -> Result<Option<ClusterOptions>, JsValue> {
    if options.is_undefined() || options.is_null() {
        return Ok(None);
    }
    serde_wasm_bindgen::from_value(options)
        .map(Some)
        .map_err(|e| js_sys::Error::new(&e.to_string()).into())
}

async fn open_cluster(name: &str, options: Option<ClusterOptions>) -> Result<Cluster, JsValue> {
    let started = now_ms();
    let db = idb::open(name).await.map_err(|e| saved_error(&e))?;
    let records = idb::read_all(&db).await.map_err(|e| saved_error(&e))?;
    let saved = persist::load(records).map_err(|e| saved_error(&e))?;
    let mut stats = PersistStats::default();
    let matching = saved.filter(|s| options.as_ref().is_none_or(|o| *o == s.record.options));
    let inner = match matching {
        Some(saved) => {
            stats.resumed = true;
            stats.loaded_records = saved.records;
            stats.loaded_bytes = saved.bytes;
            persist::resume(saved).map_err(|e| saved_error(&e))?
        }
        None => {
            // No saved cluster, or one made with other options: start fresh (options refused
            // leave the database alone), and delete the stale state now rather than at the
            // first save.
            let fresh = cluster::SimCluster::new(&options.unwrap_or_default())
                .map_err(crate::page_error)?;
            let clear = Batch {
                ops: vec![Op::Clear],
                ..Batch::default()
            };
            idb::write(&db, &clear).await.map_err(|e| saved_error(&e))?;
            fresh
        }
    };
    stats.open_ms = now_ms() - started;
    let saver = SaverState {
        db,
        queue: SaveQueue::default(),
        tail: Promise::resolve(&JsValue::UNDEFINED),
        stats,
    };
    Ok(Cluster {
        inner,
        saver: Some(Rc::new(RefCell::new(saver))),
    })
}

/// `Cluster.open` (its contract is at the method, in `cluster_js.rs`).
pub(crate) async fn open(db_name: String, options: JsValue) -> Result<Cluster, JsValue> {
    let options = options_from(options)?;
    open_cluster(&db_name, options).await
}

/// `Cluster.reset`.
pub(crate) async fn reset(db_name: String) -> Result<(), JsValue> {
    idb::delete(&db_name).await.map_err(|e| saved_error(&e))
}

/// `cluster.persist()`: takes the batch at once, writes batches in order (see [`SaveQueue`]).
pub(crate) fn persist(cluster: &mut Cluster) -> Promise {
    let Some(saver) = cluster.saver.clone() else {
        let e = SavedError::Backend("this cluster was made without a database".to_string());
        return Promise::reject(&saved_error(&e));
    };
    let everything = saver.borrow_mut().queue.must_rewrite_everything();
    let batch = match persist::take_batch(&mut cluster.inner, everything) {
        Ok(batch) => batch,
        Err(e) => return Promise::reject(&saved_error(&e)),
    };
    saver.borrow_mut().queue.push(batch);
    let previous = saver.borrow().tail.clone();
    let state = saver.clone();
    let run = future_to_promise(async move {
        let _ = JsFuture::from(previous).await;
        let (db, batch) = {
            let mut s = state.borrow_mut();
            (s.db.clone(), s.queue.take())
        };
        let Some(batch) = batch else {
            return Ok(JsValue::UNDEFINED);
        };
        let started = now_ms();
        match idb::write(&db, &batch).await {
            Ok(()) => {
                state
                    .borrow_mut()
                    .stats
                    .committed(&batch, now_ms() - started);
                Ok(JsValue::UNDEFINED)
            }
            Err(e) => {
                state.borrow_mut().queue.failed(batch);
                Ok(saved_error(&e))
            }
        }
    });
    saver.borrow_mut().tail = run.clone();
    future_to_promise(async move {
        let outcome = JsFuture::from(run).await?;
        if outcome.is_undefined() {
            Ok(JsValue::UNDEFINED)
        } else {
            Err(outcome)
        }
    })
}

/// `cluster.persistStats()`.
pub(crate) fn persist_stats(cluster: &Cluster) -> Result<JsValue, wasm_bindgen::JsError> {
    let Some(saver) = &cluster.saver else {
        return Ok(JsValue::UNDEFINED);
    };
    let mut stats = saver.borrow().stats.clone();
    let size = persist::saved_size(&cluster.inner);
    stats.saved_bytes = size.bytes;
    stats.saved_records = size.records;
    stats.queued_bytes = saver.borrow().queue.bytes();
    to_js(&stats)
}
