//! IndexedDB itself (WebAssembly only): open the page's database, read every record, apply a
//! [`Batch`] in one transaction, delete the database.
//!
//! Written directly over web-sys: the page needs five calls, and each IndexedDB request or
//! transaction becomes a future through one small helper ([`settled`]) that listens for its
//! success and failure events and removes its listeners afterwards. The database has one
//! object store, [`STORE`], whose keys and values are `Uint8Array`s (binary keys sort as
//! bytes, exactly like the host tests' `MemDb`).

use crate::records::{Batch, Op, STORE, SavedError};
use js_sys::{Array, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    DomException, Event, EventTarget, IdbDatabase, IdbFactory, IdbKeyRange, IdbObjectStore,
    IdbOpenDbRequest, IdbRequest, IdbTransaction, IdbTransactionMode,
};

/// The database schema version: one object store of binary records.
const SCHEMA_VERSION: u32 = 1;

/// Words for a JavaScript error value (a `DOMException`, an `Error`, or anything).
pub fn js_text(value: &JsValue) -> String {
    if let Some(e) = value.dyn_ref::<DomException>() {
        return format!("{}: {}", e.name(), e.message());
    }
    if let Some(e) = value.dyn_ref::<js_sys::Error>() {
        return String::from(e.message());
    }
    value.as_string().unwrap_or_else(|| format!("{value:?}"))
}

fn backend(what: &str, value: &JsValue) -> SavedError {
    SavedError::Backend(format!("{what}: {}", js_text(value)))
}

/// An event listener, kept alive while it is registered.
type Listener = Closure<dyn FnMut(Event)>;

/// Waits until `target` fires one of `ok` (resolves) or `failed` (rejects with the event).
async fn settled(target: &EventTarget, ok: &[&str], failed: &[&str]) -> Result<(), JsValue> {
    let mut listeners: Vec<(String, Listener)> = Vec::new();
    let promise = js_sys::Promise::new(&mut |resolve, reject| {
        for (names, settle) in [(ok, resolve), (failed, reject)] {
            for name in names {
                let settle = settle.clone();
                let listener = Listener::new(move |event: Event| {
                    let _ = settle.call1(&JsValue::UNDEFINED, &event);
                });
                let _ = target
                    .add_event_listener_with_callback(name, listener.as_ref().unchecked_ref());
                listeners.push((name.to_string(), listener));
            }
        }
    });
    let result = JsFuture::from(promise).await;
    for (name, listener) in &listeners {
        let _ = target.remove_event_listener_with_callback(name, listener.as_ref().unchecked_ref());
    }
    result.map(|_| ())
}

fn factory() -> Result<IdbFactory, SavedError> {
    let global = js_sys::global();
    let idb = js_sys::Reflect::get(&global, &JsValue::from_str("indexedDB"))
        .map_err(|e| backend("no IndexedDB", &e))?;
    idb.dyn_into::<IdbFactory>()
        .map_err(|_| SavedError::Backend("this browser has no IndexedDB".to_string()))
}

/// Opens (creating if needed) database `name`. The connection closes itself when another page
/// or a reset wants to delete or upgrade the database, so that a reset is never blocked.
pub async fn open(name: &str) -> Result<IdbDatabase, SavedError> {
    let request: IdbOpenDbRequest = factory()?
        .open_with_u32(name, SCHEMA_VERSION)
        .map_err(|e| backend("open", &e))?;
    let upgrade_request = request.clone();
    let on_upgrade = Closure::<dyn FnMut(Event)>::new(move |_event: Event| {
        if let Ok(result) = upgrade_request.result()
            && let Ok(db) = result.dyn_into::<IdbDatabase>()
            && !db.object_store_names().contains(STORE)
        {
            let _ = db.create_object_store(STORE);
        }
    });
    request.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
    let outcome = settled(&request, &["success"], &["error"]).await;
    request.set_onupgradeneeded(None);
    drop(on_upgrade);
    outcome.map_err(|_| backend("open", &request.error().ok().flatten().into()))?;
    let db: IdbDatabase = request
        .result()
        .and_then(|r| r.dyn_into())
        .map_err(|e| backend("open", &e))?;
    if !db.object_store_names().contains(STORE) {
        return Err(SavedError::Foreign {
            key: String::new(),
            reason: format!("database {name:?} has no {STORE:?} object store"),
        });
    }
    let closing = db.clone();
    let on_version_change = Closure::<dyn FnMut(Event)>::new(move |_event: Event| closing.close());
    db.set_onversionchange(Some(on_version_change.as_ref().unchecked_ref()));
    // Lives as long as the page: one small closure per opened database.
    on_version_change.forget();
    Ok(db)
}

fn store(
    db: &IdbDatabase,
    mode: IdbTransactionMode,
) -> Result<(IdbTransaction, IdbObjectStore), SavedError> {
    let tx = db
        .transaction_with_str_and_mode(STORE, mode)
        .map_err(|e| backend("transaction", &e))?;
    let store = tx
        .object_store(STORE)
        .map_err(|e| backend("object store", &e))?;
    Ok((tx, store))
}

async fn committed(tx: &IdbTransaction, what: &str) -> Result<(), SavedError> {
    settled(tx, &["complete"], &["error", "abort"])
        .await
        .map_err(|_| {
            backend(
                what,
                &tx.error().map(JsValue::from).unwrap_or(JsValue::NULL),
            )
        })
}

fn bytes_of(value: &JsValue) -> Option<Vec<u8>> {
    if let Some(a) = value.dyn_ref::<Uint8Array>() {
        return Some(a.to_vec());
    }
    value
        .dyn_ref::<js_sys::ArrayBuffer>()
        .map(|b| Uint8Array::new(b).to_vec())
}

/// Every record, in key order, read in one transaction. A key or value that is not binary is
/// reported as a foreign record.
pub async fn read_all(db: &IdbDatabase) -> Result<Vec<(Vec<u8>, Vec<u8>)>, SavedError> {
    let (tx, store) = store(db, IdbTransactionMode::Readonly)?;
    let keys: IdbRequest = store.get_all_keys().map_err(|e| backend("read keys", &e))?;
    let values: IdbRequest = store.get_all().map_err(|e| backend("read values", &e))?;
    committed(&tx, "read").await?;
    let as_array = |r: &IdbRequest| -> Result<Array, SavedError> {
        r.result()
            .map_err(|e| backend("read", &e))?
            .dyn_into::<Array>()
            .map_err(|e| backend("read", &e))
    };
    let (keys, values) = (as_array(&keys)?, as_array(&values)?);
    let mut out = Vec::with_capacity(keys.length() as usize);
    for (key, value) in keys.iter().zip(values.iter()) {
        let key = bytes_of(&key).ok_or_else(|| SavedError::Foreign {
            key: js_text(&key),
            reason: "the key is not binary".to_string(),
        })?;
        // A non-binary value reads as empty, which decoding reports as foreign.
        out.push((key, bytes_of(&value).unwrap_or_default()));
    }
    Ok(out)
}

/// Applies `batch` in one readwrite transaction; resolves once it committed.
pub async fn write(db: &IdbDatabase, batch: &Batch) -> Result<(), SavedError> {
    let (tx, store) = store(db, IdbTransactionMode::Readwrite)?;
    for op in &batch.ops {
        let issued = match op {
            Op::Clear => store.clear().map(drop),
            Op::Put { key, value } => store
                .put_with_key(&Uint8Array::from(&value[..]), &Uint8Array::from(&key[..]))
                .map(drop),
            Op::DeleteRange { start, end } => IdbKeyRange::bound_with_lower_open_and_upper_open(
                &Uint8Array::from(&start[..]),
                &Uint8Array::from(&end[..]),
                false,
                true,
            )
            .and_then(|range| store.delete(&range))
            .map(drop),
        };
        if let Err(e) = issued {
            let _ = tx.abort();
            return Err(backend("write", &e));
        }
    }
    committed(&tx, "write").await
}

/// Deletes database `name` (its open connections close themselves first).
pub async fn delete(name: &str) -> Result<(), SavedError> {
    let request = factory()?
        .delete_database(name)
        .map_err(|e| backend("delete", &e))?;
    settled(&request, &["success"], &["error"])
        .await
        .map_err(|_| backend("delete", &request.error().ok().flatten().into()))
}
