//! Tests of the browser's disk on the host, over the in-memory database (`records::MemDb`):
//! the core's Disk conformance and storage behaviour suites, crash semantics, incremental
//! saves, and a model-based property test that whatever was saved loads back as the disk's
//! durable state.

#![allow(clippy::unwrap_used, reason = "a test fails loudly")]

use super::*;
use crate::persist::load;
use crate::records::{Key, MemDb, apply, decode_value};
use proptest::prelude::*;
use ringstore_core::NodeId;
use ringstore_core::node::StoreId;
use ringstore_core::storage::testkit::{disk_conformance, lsm_behaviour};
use ringstore_core::storage::{Cell, Lsm, LsmConfig, Version};

const DISK: DiskKey = DiskKey {
    node: NodeId(1),
    store: StoreId::Data,
};

/// Saves `disk` into `db`, as one committed transaction; returns the batch's size.
fn save(disk: &IdbDisk, db: &mut MemDb) -> Batch {
    let mut batch = Batch::default();
    disk.take_changes(DISK, &mut batch);
    apply(db, &batch);
    batch
}

/// Loads `db` (with a cluster record-free check: disk records only) back into a disk.
fn reload(db: &MemDb) -> IdbDisk {
    let mut names = BTreeMap::new();
    let mut files: BTreeMap<InodeId, (Vec<u8>, Vec<u64>)> = BTreeMap::new();
    let mut lens = BTreeMap::new();
    for (k, v) in db {
        match decode_value(k, v).unwrap() {
            (Key::Namespace(_), p) => names = crate::records::decode_namespace(k, p).unwrap(),
            (Key::File(_, inode), p) => {
                lens.insert(inode, crate::records::decode_file(k, p).unwrap());
            }
            (Key::Extent(_, inode, offset), p) => {
                let file = files.entry(inode).or_default();
                assert_eq!(offset, file.0.len() as u64, "extents tile the file");
                file.0.extend_from_slice(p);
                file.1.push(offset);
            }
            (Key::Cluster, _) => {}
        }
    }
    for (inode, len) in &lens {
        let file = files.entry(*inode).or_default();
        assert_eq!(
            file.0.len() as u64,
            *len,
            "inode {inode}: extents cover its length"
        );
    }
    for inode in files.keys() {
        assert!(names.values().any(|i| i == inode), "inode {inode} is named");
    }
    IdbDisk::loaded(names, files)
}

#[test]
fn idb_disk_passes_disk_conformance() {
    disk_conformance(IdbDisk::new);
}

#[test]
fn idb_disk_passes_the_storage_behaviour_suite() {
    lsm_behaviour(IdbDisk::new);
}

#[test]
fn a_crash_loses_exactly_what_was_not_synced() {
    let disk = IdbDisk::new();
    disk.create("a").unwrap();
    disk.append("a", b"synced").unwrap();
    disk.sync("a").unwrap();
    disk.sync_dir().unwrap();
    disk.append("a", b" lost").unwrap();
    disk.create("b").unwrap();
    disk.append("b", b"named but not dir-synced").unwrap();
    disk.sync("b").unwrap();
    disk.rename("a", "c").unwrap();
    disk.crash();
    assert_eq!(disk.list().unwrap(), vec!["a".to_string()]);
    assert_eq!(disk.read_all("a").unwrap(), b"synced");
    // A truncate below the synced length is undone by a crash too.
    disk.truncate("a", 2).unwrap();
    assert_eq!(disk.read_all("a").unwrap(), b"sy");
    disk.crash();
    assert_eq!(disk.read_all("a").unwrap(), b"synced");
    disk.truncate("a", 2).unwrap();
    disk.append("a", b"!").unwrap();
    disk.sync("a").unwrap();
    disk.crash();
    assert_eq!(disk.read_all("a").unwrap(), b"sy!");
}

#[test]
fn a_reload_sees_the_saved_durable_state_and_nothing_unsynced() {
    let disk = IdbDisk::new();
    let mut db = MemDb::new();
    disk.create("wal").unwrap();
    disk.append("wal", b"one").unwrap();
    disk.sync("wal").unwrap();
    disk.sync_dir().unwrap();
    disk.append("wal", b"two").unwrap(); // never synced
    save(&disk, &mut db);
    let reloaded = reload(&db);
    assert_eq!(reloaded.list().unwrap(), vec!["wal".to_string()]);
    assert_eq!(reloaded.read_all("wal").unwrap(), b"one");
    // Synced after the save: not in the database until the next save.
    disk.sync("wal").unwrap();
    assert_eq!(reload(&db).read_all("wal").unwrap(), b"one");
    save(&disk, &mut db);
    assert_eq!(reload(&db).read_all("wal").unwrap(), b"onetwo");
    assert_eq!(reload(&db).durable_image(), disk.durable_image());
}

#[test]
fn saves_write_only_what_changed() {
    let disk = IdbDisk::new();
    let mut db = MemDb::new();
    disk.create("wal").unwrap();
    disk.sync_dir().unwrap();
    let first = vec![7u8; 3 * EXTENT_BYTES_MAX + 100];
    disk.append("wal", &first).unwrap();
    disk.sync("wal").unwrap();
    let b = save(&disk, &mut db);
    // Four extents, a file record and the namespace.
    assert_eq!(b.puts, 6);
    assert!(b.bytes < first.len() as u64 + 300, "{} bytes", b.bytes);
    // Nothing changed: nothing written.
    assert_eq!(save(&disk, &mut db).puts, 0);
    // A small append to a file whose last extent is short extends (rewrites) that extent only.
    disk.append("wal", b"x").unwrap();
    disk.sync("wal").unwrap();
    let b = save(&disk, &mut db);
    assert_eq!(b.puts, 2, "the last extent and the file record");
    assert!(b.bytes < 300, "{} bytes", b.bytes);
    // Appends past a long last extent start a new extent: only the new bytes are written.
    disk.append("wal", &vec![1u8; EXTENT_MERGE_BYTES]).unwrap();
    disk.sync("wal").unwrap();
    save(&disk, &mut db);
    disk.append("wal", &vec![2u8; 1000]).unwrap();
    disk.sync("wal").unwrap();
    let b = save(&disk, &mut db);
    assert_eq!(b.puts, 2);
    assert!(b.bytes < 1000 + 100, "{} bytes", b.bytes);
    // A rename rewrites no data: only the namespace record.
    disk.rename("wal", "old.log").unwrap();
    disk.sync_dir().unwrap();
    let b = save(&disk, &mut db);
    assert_eq!(b.puts, 1);
    assert!(b.bytes < 100);
    assert_eq!(reload(&db).durable_image(), disk.durable_image());
    // A deleted file's records go.
    disk.delete("old.log").unwrap();
    disk.sync_dir().unwrap();
    save(&disk, &mut db);
    assert_eq!(
        db.len(),
        1,
        "only the (empty) namespace is left: {:?}",
        db.keys()
    );
}

#[test]
fn an_engine_on_the_disk_recovers_from_a_reload() {
    let disk = IdbDisk::new();
    let mut db = MemDb::new();
    let (mut lsm, _) = Lsm::open(disk.clone(), LsmConfig::small_for_tests()).unwrap();
    let v = |ts| Version {
        ts_micros: ts,
        node: NodeId(2),
    };
    for i in 0..2_000u64 {
        let key = format!("key{i:05}");
        let cell = Cell::put(v(i + 1), vec![b'v'; 40]);
        if lsm.write(key.as_bytes(), cell.clone()).is_err() {
            lsm.run_background(ringstore_core::Millis(0)).unwrap();
            lsm.write(key.as_bytes(), cell).unwrap();
        }
        if i % 100 == 0 {
            lsm.sync_wal().unwrap();
            save(&disk, &mut db);
        }
    }
    lsm.sync_wal().unwrap();
    save(&disk, &mut db);
    lsm.write(b"unsynced", Cell::put(v(9_999), b"gone".to_vec()))
        .unwrap();
    save(&disk, &mut db);
    drop(lsm);
    let (lsm, _) = Lsm::open(reload(&db), LsmConfig::small_for_tests()).unwrap();
    assert!(
        lsm.stats().levels.iter().any(|l| l.tables > 0),
        "flushed tables reloaded"
    );
    for i in (0..2_000u64).step_by(37) {
        let key = format!("key{i:05}");
        assert!(lsm.get(key.as_bytes()).unwrap().is_some(), "{key} survives");
    }
    assert_eq!(lsm.get(b"unsynced").unwrap(), None);
}

#[derive(Clone, Debug)]
enum Op {
    Create(u8),
    Append(u8, usize),
    Sync(u8),
    SyncDir,
    Truncate(u8, usize),
    Rename(u8, u8),
    Delete(u8),
    Crash,
    Save,
}

fn op() -> impl Strategy<Value = Op> {
    let name = 0u8..3;
    prop_oneof![
        1 => name.clone().prop_map(Op::Create),
        3 => (name.clone(), 1usize..6_000).prop_map(|(n, l)| Op::Append(n, l)),
        2 => name.clone().prop_map(Op::Sync),
        1 => Just(Op::SyncDir),
        1 => (name.clone(), 0usize..12_000).prop_map(|(n, l)| Op::Truncate(n, l)),
        1 => (name.clone(), name.clone()).prop_map(|(a, b)| Op::Rename(a, b)),
        1 => name.prop_map(Op::Delete),
        1 => Just(Op::Crash),
        2 => Just(Op::Save),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Whatever the sequence of operations, crashes and saves, reloading the database gives
    /// exactly the durable state as of the last save, and a crash then reload of a fresh save
    /// equals the crashed disk.
    #[test]
    fn what_is_saved_loads_back_as_the_durable_state(ops in proptest::collection::vec(op(), 1..100)) {
        let disk = IdbDisk::new();
        let mut db = MemDb::new();
        let mut image = BTreeMap::new();
        let name = |n: u8| format!("f{n}");
        let mut fill = 0u8;
        for op in ops {
            // Errors (a missing file...) are part of the contract and change nothing.
            let _ = match op {
                Op::Create(n) => disk.create(&name(n)),
                Op::Append(n, len) => {
                    fill = fill.wrapping_add(1);
                    disk.append(&name(n), &vec![fill; len])
                }
                Op::Sync(n) => disk.sync(&name(n)),
                Op::SyncDir => disk.sync_dir(),
                Op::Truncate(n, len) => disk.truncate(&name(n), len as u64),
                Op::Rename(a, b) => disk.rename(&name(a), &name(b)),
                Op::Delete(n) => disk.delete(&name(n)),
                Op::Crash => {
                    disk.crash();
                    Ok(())
                }
                Op::Save => {
                    save(&disk, &mut db);
                    image = disk.durable_image();
                    Ok(())
                }
            };
            prop_assert_eq!(reload(&db).durable_image(), image.clone());
        }
        save(&disk, &mut db);
        disk.crash();
        let reloaded = reload(&db);
        prop_assert_eq!(reloaded.list().unwrap(), disk.list().unwrap());
        for file in disk.list().unwrap() {
            prop_assert_eq!(reloaded.read_all(&file).unwrap(), disk.read_all(&file).unwrap());
        }
        // A loaded disk saves nothing until it changes.
        let mut batch = Batch::default();
        reloaded.take_changes(DISK, &mut batch);
        prop_assert_eq!(batch.puts, 0);
        // And the full loader accepts it (disk records alone lack the cluster record).
        prop_assert!(load(db.iter()).is_err() || db.is_empty());
    }
}

#[test]
fn a_truncate_below_the_saved_length_rewrites_from_the_cut() {
    let disk = IdbDisk::new();
    let mut db = MemDb::new();
    disk.create("wal").unwrap();
    let long = 2 * EXTENT_MERGE_BYTES;
    disk.append("wal", &vec![b'a'; long]).unwrap();
    disk.sync("wal").unwrap();
    disk.sync_dir().unwrap();
    save(&disk, &mut db);
    disk.truncate("wal", 50).unwrap();
    disk.append("wal", &vec![b'b'; long]).unwrap();
    disk.sync("wal").unwrap();
    save(&disk, &mut db);
    assert_eq!(
        reload(&db).read_all("wal").unwrap(),
        disk.read_all("wal").unwrap()
    );
}
