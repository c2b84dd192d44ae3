//! The storage engine on real files: the shared behaviour suite over `FileDisk`, and the native
//! `Store` (group commit, background flushes and compactions) under concurrent writers.

use ringstore_core::NodeId;
use ringstore_core::storage::testkit::lsm_behaviour;
use ringstore_core::storage::{Cell, LsmConfig, SyncPolicy, Version};
use ringstore_node::{FileDisk, Store};
use std::sync::Arc;

#[test]
fn storage_engine_behaviour_suite_passes_on_real_files() {
    let dirs = std::cell::RefCell::new(Vec::new());
    lsm_behaviour(|| {
        let dir = tempfile::TempDir::new().expect("temporary directory");
        let disk = FileDisk::open(dir.path()).expect("open a fresh FileDisk");
        dirs.borrow_mut().push(dir);
        disk
    });
}

fn small_config(sync: SyncPolicy) -> LsmConfig {
    LsmConfig {
        sync,
        ..LsmConfig::small_for_tests()
    }
}

#[test]
fn concurrent_synced_writers_share_syncs_and_lose_nothing() {
    let dir = tempfile::TempDir::new().unwrap();
    let store = Arc::new(Store::open(dir.path(), small_config(SyncPolicy::Always)).unwrap());
    let writers = 8;
    let per_writer = 100u64;
    std::thread::scope(|s| {
        for w in 0..writers {
            let store = store.clone();
            s.spawn(move || {
                for i in 0..per_writer {
                    let key = format!("w{w}-{i:04}");
                    let cell = Cell::put(
                        Version {
                            ts: i + 1,
                            node: NodeId(w),
                        },
                        key.clone().into_bytes(),
                    );
                    let lsn = store.write(key.as_bytes(), cell).unwrap();
                    // Acknowledged means durable.
                    assert!(store.stats().durable_lsn >= lsn);
                }
            });
        }
    });
    let stats = store.stats();
    let writes = u64::from(writers) * per_writer;
    assert!(
        stats.wal_syncs < writes,
        "group commit should share syncs: {} syncs for {writes} writes",
        stats.wal_syncs
    );
    let store = Arc::into_inner(store).unwrap();
    store.close().unwrap();
    let store = Store::open(dir.path(), small_config(SyncPolicy::Always)).unwrap();
    for w in 0..writers {
        for i in 0..per_writer {
            let key = format!("w{w}-{i:04}");
            let cell = store
                .get(key.as_bytes())
                .unwrap()
                .expect("acknowledged write lost");
            assert_eq!(cell.value.as_deref(), Some(key.as_bytes()));
        }
    }
}

#[test]
fn background_threads_flush_and_compact_while_writes_go_on() {
    let dir = tempfile::TempDir::new().unwrap();
    let store = Store::open(dir.path(), small_config(SyncPolicy::Never)).unwrap();
    for i in 0..5_000u64 {
        let key = format!("bg{:05}", (i * 7919) % 3000);
        store
            .write(
                key.as_bytes(),
                Cell::put(
                    Version {
                        ts: i + 1,
                        node: NodeId(1),
                    },
                    vec![1; 64],
                ),
            )
            .unwrap();
    }
    store.flush().unwrap();
    let stats = store.stats();
    assert!(stats.flushes > 10, "{stats:?}");
    assert!(stats.compactions > 0, "{stats:?}");
    assert_eq!(
        (stats.frozen_memtables, stats.running_jobs),
        (0, 0),
        "{stats:?}"
    );
    for k in 0..3000u64 {
        assert!(
            store.get(format!("bg{k:05}").as_bytes()).unwrap().is_some(),
            "bg{k:05} lost"
        );
    }
}

/// Under `SyncPolicy::Always` a lone writer's write is made durable by exactly one sync (the
/// background threads do not sync on their timer too).
#[test]
fn a_lone_synced_writer_costs_one_wal_sync_per_write() {
    let dir = tempfile::TempDir::new().unwrap();
    let config = LsmConfig {
        memtable_bytes_max: 1 << 20,
        ..small_config(SyncPolicy::Always)
    };
    let store = Store::open(dir.path(), config).unwrap();
    let syncs_before = store.stats().wal_syncs;
    // Long enough for the background threads' 50 ms timer to fire several times mid-write.
    let started = std::time::Instant::now();
    let mut writes = 0u64;
    while writes < 100 || started.elapsed() < std::time::Duration::from_millis(400) {
        let cell = Cell::put(
            Version {
                ts: writes + 1,
                node: NodeId(1),
            },
            vec![1; 100],
        );
        store
            .write(format!("k{writes:05}").as_bytes(), cell)
            .unwrap();
        writes += 1;
    }
    assert_eq!(store.stats().wal_syncs - syncs_before, writes);
    store.close().unwrap();
}
