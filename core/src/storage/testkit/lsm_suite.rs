//! The storage engine's behaviour suite: the same scenarios run on every [`Disk`]
//! implementation (the simulated disk in this crate's tests, real files in `ringstore-node`).
//!
//! Each scenario starts from a fresh, empty disk and may close and reopen the engine on it.
//! Crash semantics are not part of this suite (a real file system cannot be crashed from a
//! test); the simulated disk's crash behaviour is covered by the model-based test.

use crate::storage::{Cell, Disk, Lsm, LsmConfig, StorageError, Version};
use crate::{Millis, NodeId};
use std::collections::BTreeMap;

fn v(ts: u64, node: u32) -> Version {
    Version {
        ts_micros: ts,
        node: NodeId(node),
    }
}

fn open<D: Disk>(disk: &D) -> Lsm<D> {
    match Lsm::open(disk.clone(), LsmConfig::small_for_tests()) {
        Ok((lsm, _)) => lsm,
        Err(e) => panic!("lsm suite: open failed: {e}"),
    }
}

fn reopen<D: Disk>(lsm: Lsm<D>, disk: &D) -> Lsm<D> {
    if let Err(e) = lsm.close() {
        panic!("lsm suite: close failed: {e}");
    }
    open(disk)
}

fn value_of<D: Disk>(lsm: &Lsm<D>, key: &[u8]) -> Option<Vec<u8>> {
    match lsm.get(key) {
        Ok(cell) => cell.and_then(|c| c.value),
        Err(e) => panic!("lsm suite: get {key:?} failed: {e}"),
    }
}

/// Writes a cell, running background work whenever the engine asks for it (a stall), as every
/// host does.
fn write<D: Disk>(lsm: &mut Lsm<D>, key: &[u8], cell: Cell) {
    loop {
        match lsm.write(key, cell.clone()) {
            Ok(_) => return,
            Err(StorageError::WriteStall { .. }) => {
                must(lsm.run_background(Millis(0)), "background")
            }
            Err(e) => panic!("lsm suite: write {key:?} failed: {e}"),
        }
    }
}

fn put<D: Disk>(lsm: &mut Lsm<D>, key: &[u8], ts: u64, value: &[u8]) {
    write(lsm, key, Cell::put(v(ts, 1), value.to_vec()));
}

fn must<T>(result: Result<T, StorageError>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("lsm suite: {what} failed: {e}"))
}

/// Runs every scenario, each on a fresh disk from `make_empty`.
pub fn lsm_behaviour<D: Disk>(make_empty: impl Fn() -> D) {
    lww_keeps_the_newest_version(&make_empty());
    deletes_are_timestamped_tombstones(&make_empty());
    bad_keys_and_values_are_refused_and_change_nothing(&make_empty());
    everything_survives_flush_compaction_and_reopen(&make_empty());
    memory_only_reads_answer_from_memtables_and_cache_or_not_at_all(&make_empty());
    scans_merge_every_source_in_order(&make_empty());
    tombstones_are_purged_only_after_their_grace_period(&make_empty());
    group_commit_covers_many_writes_with_one_sync(&make_empty());
    statistics_follow_the_data(&make_empty());
    overwrites_of_one_key_keep_the_wal_bounded(&make_empty());
}

/// A put older than the stored version does not win, wherever the stored version lives; equal
/// timestamps are ordered by node id.
pub fn lww_keeps_the_newest_version<D: Disk>(disk: &D) {
    let mut lsm = open(disk);
    put(&mut lsm, b"user123", 100, b"Alice");
    put(&mut lsm, b"user123", 90, b"stale");
    assert_eq!(
        value_of(&lsm, b"user123").as_deref(),
        Some(&b"Alice"[..]),
        "older put won in memtable"
    );
    must(lsm.flush_all(Millis(0)), "flush");
    put(&mut lsm, b"user123", 95, b"stale again");
    assert_eq!(
        value_of(&lsm, b"user123").as_deref(),
        Some(&b"Alice"[..]),
        "older put beat a table"
    );
    must(
        lsm.write(b"user123", Cell::put(v(100, 2), b"Bob".to_vec())),
        "tie put",
    );
    assert_eq!(
        value_of(&lsm, b"user123").as_deref(),
        Some(&b"Bob"[..]),
        "higher node id lost a tie"
    );
    let lsm = reopen(lsm, disk);
    assert_eq!(
        value_of(&lsm, b"user123").as_deref(),
        Some(&b"Bob"[..]),
        "lost after reopen"
    );
}

/// A delete is a tombstone with its own version: it hides older puts and loses to newer ones.
pub fn deletes_are_timestamped_tombstones<D: Disk>(disk: &D) {
    let mut lsm = open(disk);
    put(&mut lsm, b"k", 10, b"x");
    must(lsm.write(b"k", Cell::tombstone(v(20, 1))), "delete");
    let cell = must(lsm.get(b"k"), "get").unwrap_or_else(|| panic!("lsm suite: tombstone missing"));
    assert!(
        cell.is_tombstone() && cell.version == v(20, 1),
        "delete not stored as tombstone: {cell:?}"
    );
    must(lsm.flush_all(Millis(0)), "flush");
    put(&mut lsm, b"k", 15, b"older than the delete");
    assert_eq!(
        value_of(&lsm, b"k"),
        None,
        "a put older than the delete came back"
    );
    put(&mut lsm, b"k", 30, b"newer");
    assert_eq!(value_of(&lsm, b"k").as_deref(), Some(&b"newer"[..]));
    must(
        lsm.write(b"gone", Cell::tombstone(v(5, 1))),
        "delete of an absent key",
    );
    assert!(must(lsm.get(b"gone"), "get").is_some_and(|c| c.is_tombstone()));
}

/// Empty, oversize keys and oversize values give typed errors and write nothing.
pub fn bad_keys_and_values_are_refused_and_change_nothing<D: Disk>(disk: &D) {
    let mut lsm = open(disk);
    let before = lsm.last_lsn();
    assert!(matches!(
        lsm.write(b"", Cell::put(v(1, 1), vec![])),
        Err(StorageError::KeyEmpty)
    ));
    let long = vec![b'k'; crate::storage::KEY_BYTES_MAX + 1];
    assert!(matches!(
        lsm.write(&long, Cell::put(v(1, 1), vec![])),
        Err(StorageError::KeyTooLong { .. })
    ));
    let max = lsm.config().value_bytes_max;
    let err = lsm.write(b"k", Cell::put(v(1, 1), vec![0; max + 1]));
    assert!(
        matches!(err, Err(StorageError::ValueTooLarge { .. })),
        "{err:?}"
    );
    assert_eq!(lsm.last_lsn(), before, "a refused write reached the WAL");
    assert!(must(lsm.get(b"k"), "get").is_none());
    let exact = vec![0; max];
    must(
        lsm.write(b"k", Cell::put(v(1, 1), exact.clone())),
        "value at the limit",
    );
    assert_eq!(value_of(&lsm, b"k"), Some(exact));
}

/// Thousands of writes and overwrites go through flushes, compactions on several levels and a
/// reopen, and every key still reads its newest value.
pub fn everything_survives_flush_compaction_and_reopen<D: Disk>(disk: &D) {
    let mut lsm = open(disk);
    let mut model = BTreeMap::new();
    for round in 0..3u64 {
        for i in 0..700u64 {
            let key = format!("key{:05}", (i * 7919) % 1000).into_bytes();
            let value = format!("value {i} round {round}").into_bytes();
            put(&mut lsm, &key, round * 10_000 + i + 1, &value);
            model.insert(key, value);
            if i % 50 == 0 {
                must(lsm.run_background(Millis(0)), "background");
            }
        }
    }
    must(lsm.run_background(Millis(0)), "background");
    let stats = lsm.stats();
    assert!(stats.flushes > 3, "expected several flushes: {stats:?}");
    assert!(
        stats.compactions + stats.trivial_moves > 0,
        "expected compactions: {stats:?}"
    );
    assert!(
        stats.levels.iter().skip(1).filter(|l| l.tables > 0).count() >= 1,
        "{stats:?}"
    );
    for (k, val) in &model {
        assert_eq!(
            value_of(&lsm, k).as_ref(),
            Some(val),
            "key {k:?} before reopen"
        );
    }
    let lsm = reopen(lsm, disk);
    for (k, val) in &model {
        assert_eq!(
            value_of(&lsm, k).as_ref(),
            Some(val),
            "key {k:?} after reopen"
        );
    }
    assert_eq!(value_of(&lsm, b"key99999"), None);
}

/// `get_in_memory` answers from the memtables and from cached blocks exactly as `get` does,
/// and declines (`None`) only when a data block would have to be read from the disk.
pub fn memory_only_reads_answer_from_memtables_and_cache_or_not_at_all<D: Disk>(disk: &D) {
    let mut lsm = open(disk);
    for i in 0..300u64 {
        put(
            &mut lsm,
            format!("old{i:04}").as_bytes(),
            i + 1,
            b"on disk after reopen",
        );
    }
    must(lsm.flush_all(Millis(0)), "flush");
    // A fresh engine has an empty block cache: the flushed keys are on the disk only.
    let mut lsm = reopen(lsm, disk);
    put(&mut lsm, b"new", 1_000, b"in the memtable");
    let in_memory = |lsm: &Lsm<D>, key: &[u8]| must(lsm.get_in_memory(key), "get_in_memory");
    assert_eq!(
        in_memory(&lsm, b"new").map(|c| c.and_then(|c| c.value)),
        Some(Some(b"in the memtable".to_vec()))
    );
    // Outside every table's key range, and so certainly absent, without a disk read.
    assert_eq!(in_memory(&lsm, b"zzz"), Some(None));
    assert_eq!(
        in_memory(&lsm, b"old0042"),
        None,
        "its block is not cached yet"
    );
    assert_eq!(
        value_of(&lsm, b"old0042").as_deref(),
        Some(&b"on disk after reopen"[..])
    );
    // The full read cached the block, so the memory-only one now answers, with the same cell.
    assert_eq!(
        in_memory(&lsm, b"old0042"),
        Some(must(lsm.get(b"old0042"), "get"))
    );
    // A newer version in the memtable wins over the table without reading it.
    put(&mut lsm, b"old0100", 2_000, b"newer");
    assert_eq!(
        in_memory(&lsm, b"old0100").map(|c| c.and_then(|c| c.value)),
        Some(Some(b"newer".to_vec()))
    );
    // Bad keys are refused as by `get`.
    assert!(lsm.get_in_memory(b"").is_err());
}

/// Range scans see the memtable, frozen memtables and tables of every level, newest version per
/// key, in key order, bounded by `end` and `limit`.
pub fn scans_merge_every_source_in_order<D: Disk>(disk: &D) {
    let mut lsm = open(disk);
    let mut model = BTreeMap::new();
    for i in 0..400u64 {
        let key = format!("s{:04}", i % 250).into_bytes();
        let cell = if i % 9 == 0 {
            Cell::tombstone(v(i + 1, 1))
        } else {
            Cell::put(v(i + 1, 1), vec![i as u8; 40])
        };
        write(&mut lsm, &key, cell.clone());
        model.insert(key, cell);
        if i == 200 {
            must(lsm.flush_all(Millis(0)), "flush");
        }
    }
    let all = must(lsm.scan(b"s", None, 10_000), "scan all");
    let want: Vec<_> = model.iter().map(|(k, c)| (k.clone(), c.clone())).collect();
    assert_eq!(all, want, "full scan differs from the model");
    let part = must(lsm.scan(b"s0100", Some(b"s0150"), 20), "bounded scan");
    let want: Vec<_> = model
        .range(b"s0100".to_vec()..b"s0150".to_vec())
        .take(20)
        .map(|(k, c)| (k.clone(), c.clone()))
        .collect();
    assert_eq!(part, want, "bounded scan differs from the model");
    assert!(must(lsm.scan(b"t", None, 10), "empty scan").is_empty());
}

/// A tombstone survives compaction inside its grace period, and is dropped after it without
/// letting the older value it shadowed reappear.
pub fn tombstones_are_purged_only_after_their_grace_period<D: Disk>(disk: &D) {
    let mut lsm = open(disk);
    let grace = lsm.config().tombstone_grace_ms;
    put(&mut lsm, b"doomed", 1_000_000, b"old value"); // written at t = 1 s
    must(lsm.flush_all(Millis(1_000)), "flush");
    must(
        lsm.write(b"doomed", Cell::tombstone(v(2_000_000, 1))),
        "delete at t = 2 s",
    );
    put(&mut lsm, b"kept", 2_000_000, b"live");
    must(
        lsm.compact_all(Millis(2_000 + grace - 1)),
        "compaction inside grace",
    );
    assert!(
        must(lsm.get(b"doomed"), "get").is_some_and(|c| c.is_tombstone()),
        "tombstone dropped too early"
    );
    must(
        lsm.compact_all(Millis(2_000 + grace)),
        "compaction after grace",
    );
    assert_eq!(
        must(lsm.get(b"doomed"), "get"),
        None,
        "expired tombstone not purged (or value came back)"
    );
    assert!(lsm.stats().tombstones_purged >= 1);
    assert_eq!(value_of(&lsm, b"kept").as_deref(), Some(&b"live"[..]));
    let lsm = reopen(lsm, disk);
    assert_eq!(
        must(lsm.get(b"doomed"), "get"),
        None,
        "deleted key came back after reopen"
    );
}

/// Many writes made durable by one sync: that is group commit.
pub fn group_commit_covers_many_writes_with_one_sync<D: Disk>(disk: &D) {
    let mut lsm = open(disk);
    let syncs_before = lsm.stats().wal_syncs;
    for i in 0..10u64 {
        put(&mut lsm, format!("g{i}").as_bytes(), i + 1, b"v");
    }
    assert!(lsm.durable_lsn() < lsm.last_lsn());
    must(lsm.sync_wal(), "sync");
    assert_eq!(lsm.durable_lsn(), lsm.last_lsn());
    assert_eq!(
        lsm.stats().wal_syncs,
        syncs_before + 1,
        "ten writes should share one sync"
    );
    must(lsm.sync_wal(), "idle sync");
    assert_eq!(
        lsm.stats().wal_syncs,
        syncs_before + 1,
        "a sync with nothing to sync touched the disk"
    );
}

/// The statistics the UI draws follow what happens to the data.
pub fn statistics_follow_the_data<D: Disk>(disk: &D) {
    let mut lsm = open(disk);
    let empty = lsm.stats();
    assert_eq!((empty.memtable_entries, empty.flushes), (0, 0));
    for i in 0..50u64 {
        put(&mut lsm, format!("st{i:03}").as_bytes(), i + 1, &[7; 30]);
    }
    let written = lsm.stats();
    assert!(written.wal_bytes > 50 * 30, "{written:?}");
    assert!(written.memtable_entries + written.frozen_entries == 50 || written.flushes == 0);
    must(lsm.compact_all(Millis(0)), "compact");
    let done = lsm.stats();
    assert_eq!(
        (done.memtable_entries, done.frozen_memtables),
        (0, 0),
        "{done:?}"
    );
    assert_eq!(
        done.levels.iter().map(|l| l.entries).sum::<u64>(),
        50,
        "{done:?}"
    );
    assert!(done.write_amplification > 1.0, "{done:?}");
    assert!(
        done.flush_bytes_written > 0 && done.compaction_bytes_written > 0,
        "{done:?}"
    );
}

/// Overwriting a few keys keeps the memtable small, yet the WAL logs every write: the memtable
/// is frozen when its WAL segment is full too, so the WAL stays within about two memtables'
/// worth (the active segment and one frozen) and reopening replays little.
pub fn overwrites_of_one_key_keep_the_wal_bounded<D: Disk>(disk: &D) {
    let mut lsm = open(disk);
    let max = LsmConfig::small_for_tests().memtable_bytes_max as u64;
    for i in 0..2_000u64 {
        put(&mut lsm, b"hot", i + 1, &[i as u8; 40]);
        if i % 10 == 0 {
            must(lsm.run_background(Millis(0)), "background");
        }
        let stats = lsm.stats();
        assert!(
            stats.memtable_bytes < 200,
            "one key's memtable stays small: {stats:?}"
        );
        assert!(
            stats.wal_bytes <= 3 * max,
            "after write {i} the WAL holds {} bytes, bound {}",
            stats.wal_bytes,
            3 * max
        );
    }
    must(lsm.run_background(Millis(0)), "background");
    assert!(lsm.stats().flushes > 10, "{:?}", lsm.stats());
    let lsm = reopen(lsm, disk);
    assert_eq!(value_of(&lsm, b"hot"), Some(vec![1_999u64 as u8; 40]));
}
