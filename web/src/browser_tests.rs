//! Tests in a real headless Chromium against real IndexedDB (wasm-bindgen-test; run by
//! `scripts/test`; the runner is set in `.cargo/config.toml`): the disk's write, sync, save, reopen and crash
//! semantics; damaged records; a whole cluster saved and resumed through the JavaScript API
//! (`Cluster.open`, `persist`, `reset`); and the cost of saving, printed for
//! docs/benchmarks.md.

#![allow(clippy::unwrap_used, reason = "a test fails loudly")]

use crate::idb;
use crate::idb_disk::IdbDisk;
use crate::persist::load_disks;
use crate::records::{Batch, DiskKey, Op};
use crate::{Cluster, cluster};
use ringstore_core::NodeId;
use ringstore_core::node::StoreId;
use ringstore_core::storage::Disk;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const DISK: DiskKey = DiskKey {
    node: NodeId(1),
    store: StoreId::Data,
};

async fn fresh_db(name: &str) -> web_sys::IdbDatabase {
    idb::delete(name).await.unwrap();
    idb::open(name).await.unwrap()
}

/// Creates `name` holding `bytes`, synced and dir-synced.
fn durable_file(disk: &IdbDisk, name: &str, bytes: &[u8]) {
    disk.create(name).unwrap();
    disk.append(name, bytes).unwrap();
    disk.sync(name).unwrap();
    disk.sync_dir().unwrap();
}

async fn save(disk: &IdbDisk, db: &web_sys::IdbDatabase) {
    let mut batch = Batch::default();
    disk.take_changes(DISK, &mut batch);
    idb::write(db, &batch).await.unwrap();
}

/// Reopens database `name` in a new connection and loads its one disk.
async fn reopen_disk(name: &str) -> IdbDisk {
    let db = idb::open(name).await.unwrap();
    let records = idb::read_all(&db).await.unwrap();
    db.close();
    let mut loaded = load_disks(records).unwrap();
    loaded.disks.remove(&DISK).unwrap_or_default()
}

#[wasm_bindgen_test]
async fn the_disk_writes_syncs_and_reopens_from_indexeddb() {
    let name = "ringstore-test-disk";
    let db = fresh_db(name).await;
    let disk = IdbDisk::new();
    durable_file(&disk, "wal", b"synced ");
    let big = vec![7u8; 200_000];
    durable_file(&disk, "sst", &big);
    disk.append("wal", b"unsynced").unwrap();
    save(&disk, &db).await;
    let reopened = reopen_disk(name).await;
    assert_eq!(
        reopened.list().unwrap(),
        vec!["sst".to_string(), "wal".to_string()]
    );
    assert_eq!(reopened.read_all("wal").unwrap(), b"synced ");
    assert_eq!(reopened.read_all("sst").unwrap(), big);
    // Incremental: the next save adds the synced tail, a rename moves no data.
    disk.sync("wal").unwrap();
    disk.rename("sst", "sst-renamed").unwrap();
    disk.sync_dir().unwrap();
    save(&disk, &db).await;
    let reopened = reopen_disk(name).await;
    assert_eq!(reopened.read_all("wal").unwrap(), b"synced unsynced");
    assert_eq!(reopened.read_all("sst-renamed").unwrap(), big);
    assert_eq!(reopened.durable_image(), disk.durable_image());
    db.close();
}

#[wasm_bindgen_test]
async fn a_crash_loses_what_was_not_synced_and_a_reload_what_was_not_saved() {
    let name = "ringstore-test-crash";
    let db = fresh_db(name).await;
    let disk = IdbDisk::new();
    durable_file(&disk, "wal", b"one");
    save(&disk, &db).await;
    disk.append("wal", b" two").unwrap();
    disk.create("new").unwrap();
    disk.crash();
    assert_eq!(disk.read_all("wal").unwrap(), b"one");
    assert_eq!(disk.list().unwrap(), vec!["wal".to_string()]);
    // Synced but not saved: the reload (a crash at the last save) does not have it.
    disk.append("wal", b" three").unwrap();
    disk.sync("wal").unwrap();
    assert_eq!(reopen_disk(name).await.read_all("wal").unwrap(), b"one");
    save(&disk, &db).await;
    assert_eq!(
        reopen_disk(name).await.read_all("wal").unwrap(),
        b"one three"
    );
    db.close();
}

#[wasm_bindgen_test]
async fn damaged_and_foreign_records_are_typed_errors() {
    let name = "ringstore-test-damage";
    let db = fresh_db(name).await;
    let disk = IdbDisk::new();
    durable_file(&disk, "f", b"contents");
    let mut batch = Batch::default();
    disk.take_changes(DISK, &mut batch);
    idb::write(&db, &batch).await.unwrap();
    let Some(Op::Put { key, value }) = batch
        .ops
        .iter()
        .find(|op| matches!(op, Op::Put { key, .. } if key[0] == 4))
        .cloned()
    else {
        panic!("an extent was written: {:?}", batch.ops);
    };
    let mut damaged = value.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    let put = |value: Vec<u8>| Batch {
        ops: vec![Op::Put {
            key: key.clone(),
            value,
        }],
        ..Batch::default()
    };
    idb::write(&db, &put(damaged)).await.unwrap();
    let records = idb::read_all(&db).await.unwrap();
    assert_eq!(load_disks(records).unwrap_err().kind(), "corrupt");
    idb::write(&db, &put(b"not ours".to_vec())).await.unwrap();
    let records = idb::read_all(&db).await.unwrap();
    assert_eq!(load_disks(records).unwrap_err().kind(), "foreign");
    db.close();
    // Through the JavaScript API: `Cluster.open` rejects with a SavedStateError.
    let error = match Cluster::open(name.to_string(), JsValue::UNDEFINED).await {
        Ok(_) => panic!("a damaged database opened"),
        Err(e) => e,
    };
    let kind = js_sys::Reflect::get(&error, &JsValue::from_str("kind")).unwrap();
    assert_eq!(kind.as_string().as_deref(), Some("foreign"));
    Cluster::reset(name.to_string()).await.unwrap();
    assert!(
        Cluster::open(name.to_string(), JsValue::UNDEFINED)
            .await
            .is_ok()
    );
}

async fn persist(cluster: &mut Cluster) {
    JsFuture::from(cluster.persist()).await.unwrap();
}

fn finish(cluster: &mut Cluster, op: f64) -> String {
    crate::persist::finish(&mut cluster.inner, op as u64)
}

#[wasm_bindgen_test]
async fn a_whole_cluster_is_saved_and_resumed() {
    let name = "ringstore-test-cluster";
    Cluster::reset(name.to_string()).await.unwrap();
    let options = serde_wasm_bindgen::to_value(&cluster::ClusterOptions {
        seed: 21,
        ..cluster::ClusterOptions::default()
    })
    .unwrap();
    let mut c = Cluster::open(name.to_string(), options.clone())
        .await
        .unwrap();
    let put = c.client(2, "put", "user123", "Alice", "").unwrap();
    assert!(finish(&mut c, put).starts_with("ok"));
    c.set_skew(4, -40);
    c.crash(5);
    c.run_for(100);
    let now = c.now();
    // Two overlapping persists are written in order and both resolve.
    let first = c.persist();
    c.run_for(50);
    let second = c.persist();
    JsFuture::from(first).await.unwrap();
    JsFuture::from(second).await.unwrap();
    let now_saved = c.now();
    assert!(now_saved > now);
    drop(c);

    let mut r = Cluster::open(name.to_string(), options.clone())
        .await
        .unwrap();
    assert_eq!(r.now(), now_saved, "the clock resumes");
    let stats = r.inner.snapshot();
    assert!(!stats.nodes.iter().find(|n| n.id.0 == 5).unwrap().up);
    assert_eq!(
        stats.nodes.iter().find(|n| n.id.0 == 4).unwrap().skew_ms,
        -40
    );
    let get = r.client(1, "get", "user123", "", "quorum").unwrap();
    assert!(
        finish(&mut r, get).starts_with("Alice"),
        "the key reads back after a reopen"
    );
    persist(&mut r).await;

    // Refused options leave the saved cluster alone.
    let refused = serde_wasm_bindgen::to_value(&cluster::ClusterOptions {
        n: 3,
        w: 4,
        ..cluster::ClusterOptions::default()
    })
    .unwrap();
    assert!(Cluster::open(name.to_string(), refused).await.is_err());
    // Undefined options resume whatever is saved; other options start fresh.
    let same = Cluster::open(name.to_string(), JsValue::UNDEFINED)
        .await
        .unwrap();
    assert!(same.now() >= now_saved);
    let other = serde_wasm_bindgen::to_value(&cluster::ClusterOptions {
        seed: 22,
        ..cluster::ClusterOptions::default()
    })
    .unwrap();
    let fresh = Cluster::open(name.to_string(), other).await.unwrap();
    assert_eq!(fresh.now(), 0.0);
    let mut again = Cluster::open(name.to_string(), options).await.unwrap();
    assert_eq!(again.now(), 0.0, "the stale cluster was deleted");
    let get = again.client(1, "get", "user123", "", "").unwrap();
    assert!(finish(&mut again, get).starts_with("not found"));
    Cluster::reset(name.to_string()).await.unwrap();
}

/// Persist cost under load, one persist per simulated second: prints the bytes and time of each
/// (docs/benchmarks.md has the figures) and checks what they are for: every persist commits;
/// saving is incremental (once the database holds more than a few seconds of writes, a persist
/// writes what became durable in its second, so the later persists cost no more than the early
/// ones, and each far less than the database); and reopening reads back exactly the records
/// saved and resumes.
async fn measure(nodes: u32, seconds: u32) {
    let name = format!("ringstore-measure-{nodes}");
    Cluster::reset(name.clone()).await.unwrap();
    let options = serde_wasm_bindgen::to_value(&cluster::ClusterOptions {
        seed: 42,
        nodes,
        ..cluster::ClusterOptions::default()
    })
    .unwrap();
    let mut c = Cluster::open(name.clone(), options.clone()).await.unwrap();
    let mut workload = c.inner.sim.config().workload.clone();
    workload.ops_per_sec = 200;
    c.inner.sim.set_workload(workload);
    let mut bytes = Vec::new();
    let mut ms = Vec::new();
    for _ in 0..seconds {
        c.run_for(1_000);
        persist(&mut c).await;
        let stats = c.saver.as_ref().unwrap().borrow().stats_snapshot();
        bytes.push(stats.last_bytes);
        ms.push(stats.last_ms);
    }
    let saved = crate::persist::saved_size(&c.inner);
    let commits = c.saver.as_ref().unwrap().borrow().stats_snapshot().commits;
    assert_eq!(commits, u64::from(seconds), "every persist committed");
    drop(c);
    let started = js_sys::Date::now();
    let r = Cluster::open(name.clone(), options).await.unwrap();
    let open_ms = js_sys::Date::now() - started;
    let stats = r.saver.as_ref().unwrap().borrow().stats_snapshot();
    assert!(stats.resumed);
    assert_eq!(
        stats.loaded_records, saved.records,
        "reopening reads every saved record"
    );
    let steady = &bytes[1..];
    let third = steady.len() / 3;
    let early: u64 = steady[..third].iter().sum();
    let late: u64 = steady[steady.len() - third..].iter().sum();
    // A save of everything would grow with the database (tenfold here from the early to the
    // late persists); an incremental one stays with the write rate.
    assert!(
        late < 2 * early,
        "later persists cost {late} bytes against {early} for as many early ones"
    );
    assert!(
        steady.iter().all(|b| *b < saved.bytes / 4),
        "a persist wrote a quarter of the database or more: {steady:?} of {}",
        saved.bytes
    );
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let steady_ms: Vec<f64> = ms[1..].to_vec();
    console_log!(
        "persist cost: {nodes} nodes, 200 client ops/s, one persist per simulated second: first {} bytes in {:.1} ms; then mean {:.0} bytes (max {}) in mean {:.1} ms (max {:.1}); database {} file bytes in {} records; open/resume {:.0} ms ({} records, {} bytes read)",
        bytes[0],
        ms[0],
        mean(&steady.iter().map(|b| *b as f64).collect::<Vec<_>>()),
        steady.iter().max().unwrap(),
        mean(&steady_ms),
        steady_ms.iter().cloned().fold(0.0, f64::max),
        saved.bytes,
        saved.records,
        open_ms,
        stats.loaded_records,
        stats.loaded_bytes,
    );
    Cluster::reset(name).await.unwrap();
}

#[wasm_bindgen_test]
async fn persist_cost_5_nodes() {
    measure(5, 30).await;
}

#[wasm_bindgen_test]
async fn persist_cost_16_nodes() {
    measure(16, 30).await;
}
