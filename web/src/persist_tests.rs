//! Saving and resuming a whole cluster over the in-memory database: data, clock and
//! configuration come back, unsynced writes do not, damaged or foreign records give typed
//! errors (never a panic), and failed writes lose nothing.

#![allow(clippy::unwrap_used, reason = "a test fails loudly")]

use super::*;
use crate::records::{MemDb, apply};
use ringstore_core::storage::SyncPolicy;

fn cluster(seed: u64) -> SimCluster {
    SimCluster::new(&ClusterOptions {
        seed,
        ..ClusterOptions::default()
    })
    .unwrap()
}

fn save(cluster: &mut SimCluster, db: &mut MemDb) -> Batch {
    let batch = take_batch(cluster, false).unwrap();
    apply(db, &batch);
    batch
}

fn reopen(db: &MemDb) -> SimCluster {
    resume(load(db.iter()).unwrap().expect("a saved cluster")).unwrap()
}

#[test]
fn a_saved_cluster_resumes_with_its_data_clock_and_configuration() {
    let mut c = cluster(9);
    let mut db = MemDb::new();
    let put = c.client(2, "put", "user123", "Alice", "").unwrap();
    assert!(finish(&mut c, put).starts_with("ok"), "the put succeeded");
    c.set_skew(3, 25);
    c.crash(5);
    c.run_for(100);
    let now = c.now();
    save(&mut c, &mut db);
    let mut r = reopen(&db);
    assert_eq!(r.now(), now);
    assert_eq!(r.options, c.options);
    assert_eq!(r.saves, 1);
    let snap = r.snapshot();
    assert!(!snap.nodes.iter().find(|n| n.id.0 == 5).unwrap().up);
    assert_eq!(snap.nodes.iter().find(|n| n.id.0 == 3).unwrap().skew_ms, 25);
    let get = r.client(1, "get", "user123", "", "quorum").unwrap();
    assert!(
        finish(&mut r, get).starts_with("Alice"),
        "read back after reload"
    );
    // The resumed cluster saves incrementally into the same database and resumes again.
    let put = r.client(1, "put", "k2", "v2", "").unwrap();
    finish(&mut r, put);
    let b = save(&mut r, &mut db);
    assert!(b.bytes < 64 << 10, "an incremental save: {} bytes", b.bytes);
    let mut again = reopen(&db);
    let get = again.client(4, "get", "k2", "", "").unwrap();
    assert!(finish(&mut again, get).starts_with("v2"));
}

#[test]
fn what_was_not_synced_is_lost_in_a_reload() {
    // Under SyncPolicy::Never a write reaches no disk's durable state before the WAL rotates.
    let mut config = ClusterOptions::default().config();
    config.sync = SyncPolicy::Never;
    let sim = ringstore_core::sim::Sim::with_disks(config, Box::new(|_, _, _| IdbDisk::new()));
    let mut c = SimCluster::from_sim(ClusterOptions::default(), sim.unwrap());
    let mut db = MemDb::new();
    let put = c.client(1, "put", "k", "v", "").unwrap();
    assert!(finish(&mut c, put).starts_with("ok"));
    save(&mut c, &mut db);
    let r = reopen(&db);
    for id in r.sim.node_ids() {
        assert_eq!(r.sim.stored(id, b"k"), None, "{id} kept an unsynced write");
    }
}

#[test]
fn an_empty_database_is_no_saved_cluster_and_a_database_without_the_cluster_record_is_refused() {
    assert!(load(MemDb::new().iter()).unwrap().is_none());
    let mut c = cluster(1);
    let mut db = MemDb::new();
    save(&mut c, &mut db);
    db.remove(&crate::records::cluster_key());
    assert!(matches!(load(db.iter()), Err(SavedError::Inconsistent(_))));
}

#[test]
fn every_damaged_byte_is_a_typed_error() {
    let mut c = cluster(2);
    let put = c.client(1, "put", "user123", "Alice", "").unwrap();
    finish(&mut c, put);
    let mut db = MemDb::new();
    save(&mut c, &mut db);
    let keys: Vec<Vec<u8>> = db.keys().cloned().collect();
    for key in keys.iter().step_by(3) {
        let len = db[key].len();
        for at in [0, 4, 5, 8, 13, 16, len / 2, len - 1] {
            let mut damaged = db.clone();
            damaged.get_mut(key).unwrap()[at] ^= 0x10;
            let err = load(damaged.iter()).expect_err("damage is detected");
            assert!(
                matches!(
                    err,
                    SavedError::Corrupt { .. }
                        | SavedError::Foreign { .. }
                        | SavedError::Version { .. }
                ),
                "byte {at} of {}: {err}",
                hex(key)
            );
        }
        // A value moved under another key is caught by the checksum over the key.
        let mut moved = db.clone();
        let other = keys.iter().find(|k| *k != key && k[0] == key[0]);
        if let Some(other) = other {
            let value = moved[key].clone();
            moved.insert(other.clone(), value);
            assert!(
                load(moved.iter()).is_err(),
                "value of {} under {}",
                hex(key),
                hex(other)
            );
        }
    }
}

#[test]
fn foreign_records_missing_extents_and_other_versions_are_named() {
    let mut c = cluster(3);
    let mut db = MemDb::new();
    save(&mut c, &mut db);
    let mut foreign = db.clone();
    foreign.insert(b"someone else's".to_vec(), b"data".to_vec());
    assert_eq!(load(foreign.iter()).unwrap_err().kind(), "foreign");

    let mut version = db.clone();
    let key = crate::records::cluster_key();
    let payload = &db[&key][16..];
    let mut value = crate::records::encode_value(&key, crate::records::Kind::Cluster, payload);
    value[5] = 9;
    version.insert(key, value);
    assert_eq!(load(version.iter()).unwrap_err().kind(), "version");

    let mut missing = db.clone();
    let extent = missing.keys().find(|k| k[0] == 4).cloned().unwrap();
    missing.remove(&extent);
    let err = load(missing.iter()).unwrap_err();
    assert_eq!(err.kind(), "inconsistent", "{err}");
}

#[test]
fn a_failed_write_goes_back_in_front_of_the_queue_and_loses_nothing() {
    let mut c = cluster(5);
    let mut db = MemDb::new();
    let mut queue = SaveQueue::default();
    queue.push(take_batch(&mut c, false).unwrap());
    let first = queue.take().unwrap();
    // The write fails; meanwhile the cluster changes and saves again.
    let put = c.client(1, "put", "k", "v", "").unwrap();
    finish(&mut c, put);
    queue.push(take_batch(&mut c, false).unwrap());
    queue.failed(first);
    apply(&mut db, &queue.take().unwrap());
    let mut r = reopen(&db);
    let get = r.client(2, "get", "k", "", "").unwrap();
    assert!(finish(&mut r, get).starts_with("v"));
    assert!(queue.take().is_none());
}

#[test]
fn past_its_bound_the_queue_is_dropped_and_everything_is_rewritten() {
    let mut c = cluster(6);
    let mut db = MemDb::new();
    let mut queue = SaveQueue::default();
    let huge = Batch {
        bytes: QUEUE_BYTES_MAX + 1,
        ..Batch::default()
    };
    queue.push(take_batch(&mut c, false).unwrap());
    queue.failed(huge);
    assert_eq!(queue.bytes(), 0);
    assert!(queue.take().is_none());
    assert!(queue.must_rewrite_everything());
    assert!(
        !queue.must_rewrite_everything(),
        "the flag is cleared once read"
    );
    db.insert(vec![4, 0, 0, 0, 1, 0], b"stale".to_vec());
    let everything = take_batch(&mut c, true).unwrap();
    apply(&mut db, &everything);
    let r = reopen(&db);
    assert_eq!(r.now(), c.now());
    assert_eq!(saved_size(&c).records, db.len() as u64);
}
