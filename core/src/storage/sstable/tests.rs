//! Tests of whole tables: the footer and meta formats, writer/reader round trips, corruption
//! and a property test against a `BTreeMap` model.

use super::mem_disk::MemDisk;
use super::*;
use crate::storage::codec::FormatError;
use crate::storage::{Cell, Disk, StorageError};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

fn version(ts: u64, node: u32) -> Version {
    Version {
        ts_micros: ts,
        node: NodeId(node),
    }
}

fn key(i: u64) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

/// Every fifth cell is a tombstone; values vary in length.
fn cell(i: u64) -> Cell {
    if i.is_multiple_of(5) {
        Cell::tombstone(version(1000 + i, 2))
    } else {
        Cell::put(version(1000 + i, 1), vec![b'v'; (i % 37) as usize])
    }
}

fn small_blocks() -> TableOptions {
    TableOptions {
        block_bytes: 256,
        ..TableOptions::default()
    }
}

/// Writes keys `key(0), key(2), ...` (even numbers only, so odd ones are absent).
fn write_table(disk: &MemDisk, id: u64, n: u64, options: TableOptions) -> TableMeta {
    let mut w = TableWriter::create(disk.clone(), id, options).unwrap();
    for i in 0..n {
        w.add(&key(i * 2), &cell(i)).unwrap();
    }
    w.finish().unwrap()
}

fn open(disk: &MemDisk, id: u64) -> Arc<Table<MemDisk>> {
    Arc::new(Table::open(disk.clone(), id, Arc::new(BlockCache::new(1 << 20))).unwrap())
}

fn get(table: &Table<MemDisk>, k: &[u8]) -> Result<Option<Cell>, StorageError> {
    table.get(k, key_hash(k))
}

#[test]
fn table_file_names_round_trip() {
    assert_eq!(table_file_name(42), "sst-0000000000000042.sst");
    assert_eq!(parse_table_file_name(&table_file_name(42)), Some(42));
    assert_eq!(
        parse_table_file_name(&table_file_name(u64::MAX)),
        Some(u64::MAX)
    );
    for bad in [
        "sst-42.sst",
        "sst-000000000000004x.sst",
        "wal-0000000000000042.log",
        "MANIFEST",
    ] {
        assert_eq!(parse_table_file_name(bad), None, "{bad}");
    }
}

#[test]
fn table_meta_round_trips() {
    let meta = TableMeta {
        id: 7,
        file_bytes: 12345,
        entries: 10,
        tombstones: 3,
        min_key: b"a".to_vec(),
        max_key: b"zz".to_vec(),
        min_version: version(5, 1),
        max_version: version(9, 2),
    };
    let mut buf = Vec::new();
    meta.encode(&mut buf);
    let mut d = Decoder::new("meta", &buf);
    assert_eq!(TableMeta::decode(&mut d).unwrap(), meta);
    d.finish().unwrap();
    for cut in 0..buf.len() {
        let err = TableMeta::decode(&mut Decoder::new("meta", &buf[..cut])).unwrap_err();
        assert!(
            matches!(err, FormatError::Truncated { .. }),
            "cut at {cut}: {err:?}"
        );
    }
}

#[test]
fn table_meta_with_inconsistent_fields_is_invalid() {
    let good = TableMeta {
        id: 1,
        file_bytes: 100,
        entries: 2,
        tombstones: 0,
        min_key: b"a".to_vec(),
        max_key: b"b".to_vec(),
        min_version: version(1, 1),
        max_version: version(2, 1),
    };
    let bad = [
        TableMeta {
            entries: 0,
            ..good.clone()
        },
        TableMeta {
            tombstones: 3,
            ..good.clone()
        },
        TableMeta {
            min_key: b"c".to_vec(),
            ..good.clone()
        },
        TableMeta {
            min_version: version(3, 1),
            ..good.clone()
        },
    ];
    for meta in bad {
        let mut buf = Vec::new();
        meta.encode(&mut buf);
        let err = TableMeta::decode(&mut Decoder::new("meta", &buf)).unwrap_err();
        assert!(
            matches!(err, FormatError::Invalid { .. }),
            "{meta:?}: {err:?}"
        );
    }
}

#[test]
fn footer_round_trips_and_checks_magic_version_and_crc() {
    let footer = Footer {
        filter_offset: 1000,
        filter_len: 20,
        index_offset: 1020,
        index_len: 40,
        meta_offset: 1060,
        meta_len: 70,
    };
    let mut buf = Vec::new();
    footer.encode(&mut buf);
    assert_eq!(buf.len(), Footer::BYTES);
    assert_eq!(Footer::decode(&buf).unwrap(), footer);

    let mut bad = buf.clone();
    bad[Footer::MAGIC_AT] ^= 1;
    assert!(matches!(
        Footer::decode(&bad),
        Err(FormatError::BadMagic { .. })
    ));
    let mut bad = buf.clone();
    bad[Footer::VERSION_AT] = 2;
    let err = Footer::decode(&bad).unwrap_err();
    assert_eq!(
        err,
        FormatError::UnsupportedVersion {
            what: "footer",
            got: 2,
            supported: FORMAT_VERSION
        }
    );
    let mut bad = buf.clone();
    bad[3] ^= 1;
    assert!(matches!(
        Footer::decode(&bad),
        Err(FormatError::ChecksumMismatch { .. })
    ));
    assert!(matches!(
        Footer::decode(&buf[1..]),
        Err(FormatError::Truncated { .. })
    ));
}

#[test]
fn table_round_trips_over_many_blocks() {
    let disk = MemDisk::new();
    let meta = write_table(&disk, 3, 500, small_blocks());
    assert_eq!(meta.id, 3);
    assert_eq!(meta.entries, 500);
    assert_eq!(meta.tombstones, 100);
    assert_eq!(meta.min_key, key(0));
    assert_eq!(meta.max_key, key(998));
    assert_eq!(
        (meta.min_version, meta.max_version),
        (version(1000, 2), version(1499, 1))
    );
    assert_eq!(
        meta.file_bytes,
        disk.bytes(&table_file_name(3)).len() as u64
    );

    let table = open(&disk, 3);
    assert_eq!(table.meta(), &meta);
    assert!(
        table.data_blocks() > 10,
        "only {} blocks",
        table.data_blocks()
    );
    for i in 0..500 {
        assert_eq!(get(&table, &key(i * 2)).unwrap(), Some(cell(i)), "key {i}");
        assert_eq!(
            get(&table, &key(i * 2 + 1)).unwrap(),
            None,
            "absent key {i}"
        );
    }
    assert_eq!(get(&table, b"a").unwrap(), None);
    assert_eq!(get(&table, b"zzz").unwrap(), None);
}

#[test]
fn table_returns_tombstones_as_cells_without_values() {
    let disk = MemDisk::new();
    write_table(&disk, 1, 20, TableOptions::default());
    let table = open(&disk, 1);
    let found = get(&table, &key(10)).unwrap().unwrap();
    assert!(found.is_tombstone());
    assert_eq!(found.version, version(1005, 2));
}

#[test]
fn table_iter_scans_everything_or_from_a_start_key() {
    let disk = MemDisk::new();
    write_table(&disk, 1, 300, small_blocks());
    let table = open(&disk, 1);
    let all: Vec<_> = table.iter(None, true).map(Result::unwrap).collect();
    let expected: Vec<_> = (0..300).map(|i| (key(i * 2), cell(i))).collect();
    assert_eq!(all, expected);

    // From a present key, an absent key, before the first and after the last.
    for (start, skip) in [
        (key(100), 50),
        (key(101), 51),
        (b"a".to_vec(), 0),
        (key(999), 300),
    ] {
        let got: Vec<_> = table
            .iter(Some(&start), false)
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            got,
            expected[skip..],
            "from {:?}",
            String::from_utf8_lossy(&start)
        );
    }
}

#[test]
fn table_iter_without_fill_cache_leaves_the_cache_empty() {
    let disk = MemDisk::new();
    write_table(&disk, 1, 100, small_blocks());
    let cache = Arc::new(BlockCache::new(1 << 20));
    let table = Arc::new(Table::open(disk.clone(), 1, Arc::clone(&cache)).unwrap());
    assert_eq!(table.iter(None, false).count(), 100);
    let misses = cache.misses();
    assert_eq!(table.iter(None, false).count(), 100);
    assert_eq!(cache.hits(), 0);
    assert_eq!(cache.misses(), 2 * misses);
    get(&table, &key(0)).unwrap();
    get(&table, &key(0)).unwrap();
    assert_eq!(cache.hits(), 1);
}

#[test]
fn bloom_lets_get_skip_absent_keys() {
    let disk = MemDisk::new();
    write_table(&disk, 1, 1000, TableOptions::default());
    let table = open(&disk, 1);
    assert!((0..1000).all(|i| table.may_contain(key_hash(&key(i * 2)))));
    let maybe = (0..1000)
        .filter(|&i| table.may_contain(key_hash(&key(i * 2 + 1))))
        .count();
    assert!(maybe < 30, "{maybe} false positives in 1000");
}

#[test]
fn estimated_file_bytes_grows_with_every_add() {
    let disk = MemDisk::new();
    let mut w = TableWriter::create(disk.clone(), 1, small_blocks()).unwrap();
    let mut last = w.estimated_file_bytes();
    assert_eq!(last, 0);
    for i in 0..200 {
        w.add(&key(i), &cell(i)).unwrap();
        let now = w.estimated_file_bytes();
        assert!(now > last, "after {i}: {now} <= {last}");
        last = now;
    }
    assert_eq!(w.entries(), 200);
    let meta = w.finish().unwrap();
    assert!(meta.file_bytes > last);
}

#[test]
fn finishing_an_empty_table_is_an_error_and_leaves_no_file() {
    let disk = MemDisk::new();
    let w = TableWriter::create(disk.clone(), 1, TableOptions::default()).unwrap();
    let err = w.finish().unwrap_err();
    assert!(
        matches!(err, StorageError::TableNotWritable { .. }),
        "{err:?}"
    );
    assert_eq!(disk.list().unwrap(), Vec::<String>::new());
}

#[test]
fn abandon_deletes_the_partial_file() {
    let disk = MemDisk::new();
    let mut w = TableWriter::create(disk.clone(), 1, small_blocks()).unwrap();
    for i in 0..100 {
        w.add(&key(i), &cell(i)).unwrap();
    }
    assert!(disk.len(&table_file_name(1)).unwrap() > 0);
    w.abandon().unwrap();
    assert!(!disk.exists(&table_file_name(1)).unwrap());
}

#[test]
fn writer_rejects_keys_over_the_limit_and_existing_files() {
    let disk = MemDisk::new();
    let mut w = TableWriter::create(disk.clone(), 1, TableOptions::default()).unwrap();
    let err = w.add(&[b'k'; KEY_BYTES_MAX + 1], &cell(1)).unwrap_err();
    assert!(matches!(err, StorageError::KeyTooLong { .. }), "{err:?}");
    assert_eq!(w.entries(), 0);
    let err = TableWriter::create(disk.clone(), 1, TableOptions::default()).unwrap_err();
    assert!(matches!(err, StorageError::Disk(_)), "{err:?}");
}

#[test]
fn open_rejects_a_table_under_another_id() {
    let disk = MemDisk::new();
    write_table(&disk, 1, 10, TableOptions::default());
    disk.rename(&table_file_name(1), &table_file_name(2))
        .unwrap();
    let err = Table::open(disk, 2, Arc::new(BlockCache::new(0))).unwrap_err();
    assert!(
        matches!(
            &err,
            StorageError::Corrupt {
                source: FormatError::Invalid { .. },
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn table_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Table<MemDisk>>();
    assert_send_sync::<TableIter<MemDisk>>();
}

/// Checks everything a reader can see of a table whose bytes may have been damaged: each
/// answer must be the right one or a `Corrupt` error, never a wrong answer.
fn check_damaged(disk: &MemDisk, id: u64, expected: &BTreeMap<Vec<u8>, Cell>, absent: &[Vec<u8>]) {
    let is_corrupt = |e: &StorageError| matches!(e, StorageError::Corrupt { .. });
    let table = match Table::open(disk.clone(), id, Arc::new(BlockCache::new(1 << 20))) {
        Ok(t) => Arc::new(t),
        Err(e) => return assert!(is_corrupt(&e), "open: {e:?}"),
    };
    assert_eq!(table.meta().entries, expected.len() as u64);
    for (k, c) in expected {
        match get(&table, k) {
            Ok(found) => assert_eq!(found.as_ref(), Some(c)),
            Err(e) => assert!(is_corrupt(&e), "get: {e:?}"),
        }
    }
    for k in absent {
        match get(&table, k) {
            Ok(found) => assert_eq!(found, None),
            Err(e) => assert!(is_corrupt(&e), "get absent: {e:?}"),
        }
    }
    let mut want = expected.iter();
    let mut iter = table.iter(None, false);
    while let Some(item) = iter.next() {
        match item {
            Ok((k, c)) => assert_eq!(Some((&k, &c)), want.next()),
            Err(e) => {
                assert!(is_corrupt(&e), "iter: {e:?}");
                return assert!(iter.next().is_none(), "iter went on after an error");
            }
        }
    }
    assert_eq!(want.next(), None, "iter ended early without an error");
}

#[test]
fn flipping_any_byte_is_detected_and_never_panics() {
    let disk = MemDisk::new();
    write_table(&disk, 1, 40, small_blocks());
    let name = table_file_name(1);
    let good = disk.bytes(&name);
    let expected: BTreeMap<_, _> = (0..40).map(|i| (key(i * 2), cell(i))).collect();
    let absent: Vec<_> = (0..40).map(|i| key(i * 2 + 1)).collect();
    for at in 0..good.len() {
        for mask in [0x01, 0x80] {
            let mut bad = good.clone();
            bad[at] ^= mask;
            disk.put(&name, bad);
            check_damaged(&disk, 1, &expected, &absent);
        }
    }
}

#[test]
fn truncating_a_table_anywhere_is_detected() {
    let disk = MemDisk::new();
    write_table(&disk, 1, 40, small_blocks());
    let name = table_file_name(1);
    let good = disk.bytes(&name);
    let expected: BTreeMap<_, _> = (0..40).map(|i| (key(i * 2), cell(i))).collect();
    for len in 0..good.len() {
        disk.put(&name, good[..len].to_vec());
        let err = Table::open(disk.clone(), 1, Arc::new(BlockCache::new(0))).unwrap_err();
        assert!(
            matches!(err, StorageError::Corrupt { .. }),
            "len {len}: {err:?}"
        );
    }
    disk.put(&name, good);
    check_damaged(&disk, 1, &expected, &[]);
}

fn arb_cell() -> impl Strategy<Value = Cell> {
    let v = (0u64..1000, 0u32..4).prop_map(|(ts, node)| version(ts, node));
    (
        v,
        proptest::option::weighted(0.8, proptest::collection::vec(any::<u8>(), 0..40)),
    )
        .prop_map(|(version, value)| Cell { version, value })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn table_matches_a_sorted_map(
        map in proptest::collection::btree_map(
            proptest::collection::vec(any::<u8>(), 1..12), arb_cell(), 1..200),
        probes in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..12), 0..20),
        block_bytes in 64usize..600,
        bloom_bits_per_key in 0u32..12,
    ) {
        let disk = MemDisk::new();
        let options = TableOptions { block_bytes, bloom_bits_per_key };
        let mut w = TableWriter::create(disk.clone(), 9, options).unwrap();
        for (k, c) in &map {
            w.add(k, c).unwrap();
        }
        let meta = w.finish().unwrap();
        prop_assert_eq!(meta.entries, map.len() as u64);
        prop_assert_eq!(meta.tombstones, map.values().filter(|c| c.is_tombstone()).count() as u64);
        let table = open(&disk, 9);
        for (k, c) in &map {
            let found = get(&table, k).unwrap();
            prop_assert_eq!(found.as_ref(), Some(c));
        }
        for p in &probes {
            let found = get(&table, p).unwrap();
            prop_assert_eq!(found.as_ref(), map.get(p));
            let got: Vec<_> = table.iter(Some(p), true).map(Result::unwrap).collect();
            let want: Vec<_> = map.range(p.clone()..).map(|(k, c)| (k.clone(), c.clone())).collect();
            prop_assert_eq!(got, want);
        }
        let all: Vec<_> = table.iter(None, false).map(Result::unwrap).collect();
        let want: Vec<_> = map.into_iter().collect();
        prop_assert_eq!(all, want);
    }
}
