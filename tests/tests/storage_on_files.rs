//! The storage engine on real files: the shared behaviour suite over `FileDisk`, and the native
//! `Store` (group commit, background flushes and compactions) under concurrent writers.

use ringstore_core::NodeId;
use ringstore_core::storage::testkit::lsm_behaviour;
use ringstore_core::storage::{Cell, Lsm, LsmConfig, SyncPolicy, Version, frame, wal};
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
                            ts_micros: i + 1,
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
                        ts_micros: i + 1,
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

fn wal_files(dir: &std::path::Path) -> Vec<(String, u64)> {
    let mut files: Vec<(String, u64)> = std::fs::read_dir(dir)
        .expect("list the directory")
        .map(|entry| entry.expect("a directory entry"))
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("wal-"))
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, entry.metadata().expect("a WAL file's size").len())
        })
        .collect();
    files.sort();
    files
}

fn put_synced(lsm: &mut Lsm<FileDisk>, i: u64) {
    let key = format!("k{i:05}");
    let cell = Cell::put(
        Version {
            ts_micros: i + 1,
            node: NodeId(1),
        },
        vec![i as u8; 100],
    );
    lsm.write(key.as_bytes(), cell).expect("write");
    lsm.sync_wal().expect("sync");
}

fn assert_all_there(lsm: &Lsm<FileDisk>, keys: std::ops::Range<u64>) {
    for i in keys {
        let cell = lsm
            .get(format!("k{i:05}").as_bytes())
            .expect("get")
            .unwrap_or_else(|| panic!("synced write k{i:05} lost"));
        assert_eq!(cell.value, Some(vec![i as u8; 100]));
    }
}

/// The WAL preallocates its segment; a crash (dropping the engine and its disk without closing)
/// leaves the file at its preallocated size with a zero tail, which recovery must cut as a torn
/// tail, keeping every synced write; older segments, sealed when the log rotated, must be exact.
#[test]
fn preallocated_wal_segment_recovers_after_a_crash_and_its_zero_tail_is_cut() {
    let dir = tempfile::TempDir::new().unwrap();
    let config = LsmConfig {
        memtable_bytes_max: 64 << 20,
        ..LsmConfig::small_for_tests()
    };
    let preallocated = wal::wal_preallocate_bytes(config.memtable_bytes_max);
    assert_eq!(preallocated, 64 << 20);
    let open = || Lsm::open(FileDisk::open(dir.path()).unwrap(), config.clone()).unwrap();

    let (mut lsm, report) = open();
    assert!(report.created);
    for i in 0..100 {
        put_synced(&mut lsm, i);
    }
    lsm.freeze_memtable().unwrap(); // a sealed segment, then a new preallocated one
    for i in 100..200 {
        put_synced(&mut lsm, i);
    }
    let wal_bytes = lsm.stats().wal_bytes;
    assert!(
        wal_bytes < 100_000,
        "stats count written bytes: {wal_bytes}"
    );
    drop(lsm); // the crash
    let files = wal_files(dir.path());
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(
        files[0].1 < 100_000,
        "a rotated segment is cut back: {files:?}"
    );
    assert_eq!(files[1].1, preallocated, "{files:?}");

    let started = std::time::Instant::now();
    let (lsm, report) = open();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "recovering a preallocated segment took {:?}",
        started.elapsed()
    );
    assert_eq!(report.batches_replayed, 200, "{report:?}");
    assert_eq!(report.wal_segments, 2, "{report:?}");
    assert!(report.torn_bytes_truncated > preallocated / 2, "{report:?}");
    assert_all_there(&lsm, 0..200);
    assert_eq!(
        lsm.stats().wal_bytes,
        wal_bytes + frame::HEADER_BYTES as u64,
        "live WAL bytes count what was written (and the new segment's header), not zeros"
    );
    let files = wal_files(dir.path());
    assert!(
        files[..2].iter().all(|(_, len)| *len < 100_000),
        "the torn zero tail is cut: {files:?}"
    );

    // A second crash, with nothing written: the cut segment now reads as an older one.
    drop(lsm);
    let (mut lsm, report) = open();
    assert_eq!(report.batches_replayed, 200, "{report:?}");
    assert_all_there(&lsm, 0..200);
    for i in 200..210 {
        put_synced(&mut lsm, i);
    }
    lsm.close().unwrap();

    // A clean close gives the space back: reopening finds nothing torn.
    let (lsm, report) = open();
    assert_eq!(report.torn_bytes_truncated, 0, "{report:?}");
    assert_eq!(report.batches_replayed, 210, "{report:?}");
    assert_all_there(&lsm, 0..210);
    lsm.close().unwrap();
    let (_lsm, report) = open();
    assert_eq!(report.torn_bytes_truncated, 0, "{report:?}");
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
                ts_micros: writes + 1,
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
