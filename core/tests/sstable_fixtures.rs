//! Committed SSTable files: one good table and four damaged copies of it.
//!
//! They pin the on-disk format: `good.sst` must open and yield exactly the known entries, and
//! the writer must still produce it byte for byte, so a format change cannot slip in unnoticed.
//! Each damaged file must fail with its typed error. After a deliberate format change,
//! regenerate them with `UPDATE_FIXTURES=1 cargo test -p ringstore-core --test sstable_fixtures`
//! (and bump the format version).
#![allow(clippy::unwrap_used, reason = "a test fails loudly")]

use ringstore_core::NodeId;
use ringstore_core::storage::codec::{FormatError, crc32};
use ringstore_core::storage::{
    BlockCache, Cell, Disk, DiskError, StorageError, Table, TableOptions, TableWriter, Version,
    key_hash, table_file_name,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// TEST-ONLY: files in memory, no durability or fault model.
#[derive(Clone, Default)]
struct MemDisk {
    files: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl MemDisk {
    fn files(&self) -> MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn file<T>(&self, name: &str, f: impl FnOnce(&mut Vec<u8>) -> T) -> Result<T, DiskError> {
        let mut files = self.files();
        let file = files.get_mut(name).ok_or(DiskError::NotFound {
            name: name.to_string(),
        })?;
        Ok(f(file))
    }
}

impl Disk for MemDisk {
    fn create(&self, name: &str) -> Result<(), DiskError> {
        let mut files = self.files();
        if files.contains_key(name) {
            return Err(DiskError::AlreadyExists {
                name: name.to_string(),
            });
        }
        files.insert(name.to_string(), Vec::new());
        Ok(())
    }
    fn append(&self, name: &str, data: &[u8]) -> Result<(), DiskError> {
        self.file(name, |f| f.extend_from_slice(data))
    }
    fn sync(&self, name: &str) -> Result<(), DiskError> {
        self.file(name, |_| ())
    }
    fn sync_dir(&self) -> Result<(), DiskError> {
        Ok(())
    }
    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        self.file(name, |f| {
            let file_len = f.len() as u64;
            let src = usize::try_from(offset)
                .ok()
                .and_then(|start| f.get(start..start.checked_add(buf.len())?));
            match src {
                Some(src) => {
                    buf.copy_from_slice(src);
                    Ok(())
                }
                None => Err(DiskError::OutOfBounds {
                    name: name.to_string(),
                    offset,
                    len: buf.len() as u64,
                    file_len,
                }),
            }
        })?
    }
    fn len(&self, name: &str) -> Result<u64, DiskError> {
        self.file(name, |f| f.len() as u64)
    }
    fn list(&self) -> Result<Vec<String>, DiskError> {
        Ok(self.files().keys().cloned().collect())
    }
    fn rename(&self, from: &str, to: &str) -> Result<(), DiskError> {
        let data = self.file(from, std::mem::take)?;
        let mut files = self.files();
        files.remove(from);
        files.insert(to.to_string(), data);
        Ok(())
    }
    fn delete(&self, name: &str) -> Result<(), DiskError> {
        self.files()
            .remove(name)
            .map(drop)
            .ok_or(DiskError::NotFound {
                name: name.to_string(),
            })
    }
    fn truncate(&self, name: &str, len: u64) -> Result<(), DiskError> {
        self.file(name, |f| f.truncate(len as usize))
    }
}

/// The table id every fixture is loaded as.
const ID: u64 = 1;
/// Footer size and field offsets within it (format version 1).
const FOOTER_BYTES: usize = 50;
const FOOTER_VERSION_AT: usize = 36;
const FOOTER_MAGIC_AT: usize = 38;
const FOOTER_CRC_AT: usize = 46;

fn v(ts: u64, node: u32) -> Version {
    Version {
        ts_micros: ts,
        node: NodeId(node),
    }
}

/// The entries of `good.sst`, a tombstone and an empty value among them.
fn known_entries() -> Vec<(Vec<u8>, Cell)> {
    vec![
        (b"apple".to_vec(), Cell::put(v(100, 1), b"red".to_vec())),
        (b"banana".to_vec(), Cell::tombstone(v(101, 2))),
        (
            b"cherry".to_vec(),
            Cell::put(v(102, 1), b"dark red".to_vec()),
        ),
        (b"date".to_vec(), Cell::put(v(103, 3), Vec::new())),
        (
            b"elderberry".to_vec(),
            Cell::put(v(99, 2), b"purple".to_vec()),
        ),
    ]
}

/// Writes `good.sst` with small blocks, so it has several data blocks.
fn build_good() -> Vec<u8> {
    let disk = MemDisk::default();
    let options = TableOptions {
        block_bytes: 64,
        bloom_bits_per_key: 10,
    };
    let mut w = TableWriter::create(disk.clone(), ID, options).unwrap();
    for (k, c) in known_entries() {
        w.add(&k, &c).unwrap();
    }
    w.finish().unwrap();
    disk.read_all(&table_file_name(ID)).unwrap()
}

/// Every fixture, derived from the good table.
fn build_all() -> BTreeMap<&'static str, Vec<u8>> {
    let good = build_good();
    let footer = good.len() - FOOTER_BYTES;

    let mut bad_block_crc = good.clone();
    bad_block_crc[2] ^= 0x20; // "apple" -> "Apple", in data block 0

    let mut bad_magic = good.clone();
    bad_magic[footer + FOOTER_MAGIC_AT] ^= 0x01;

    let truncated = good[..40].to_vec();

    // A well-formed footer from a future format: right checksum, unknown version.
    let mut bad_version = good.clone();
    bad_version[footer + FOOTER_VERSION_AT..][..2].copy_from_slice(&2u16.to_le_bytes());
    let crc = crc32(&bad_version[footer..footer + FOOTER_CRC_AT]);
    bad_version[footer + FOOTER_CRC_AT..].copy_from_slice(&crc.to_le_bytes());

    BTreeMap::from([
        ("good.sst", good),
        ("bad-block-crc.sst", bad_block_crc),
        ("bad-magic.sst", bad_magic),
        ("truncated.sst", truncated),
        ("bad-version.sst", bad_version),
    ])
}

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sstable")
}

/// Whether this run rewrites the fixtures (`UPDATE_FIXTURES=1`).
fn updating() -> bool {
    std::env::var_os("UPDATE_FIXTURES").is_some_and(|v| v == "1")
}

/// The committed fixture `name` (or, while updating, the one about to be written), loaded into
/// a fresh disk as table [`ID`].
fn load(name: &str) -> MemDisk {
    let bytes = if updating() {
        build_all().remove(name).unwrap()
    } else {
        std::fs::read(fixture_dir().join(name)).unwrap()
    };
    let disk = MemDisk::default();
    disk.files().insert(table_file_name(ID), bytes);
    disk
}

fn open(disk: &MemDisk) -> Result<Arc<Table<MemDisk>>, StorageError> {
    Table::open(disk.clone(), ID, Arc::new(BlockCache::new(1 << 20))).map(Arc::new)
}

/// Reads every known key and scans the table: the first error, if any.
fn read_everything(table: &Arc<Table<MemDisk>>) -> Result<Vec<(Vec<u8>, Cell)>, StorageError> {
    for (k, _) in known_entries() {
        table.get(&k, key_hash(&k))?;
    }
    table.iter(None, true).collect()
}

/// The source of the `Corrupt` error opening or reading a fixture gives, and its offset.
fn corruption(name: &str) -> (FormatError, u64) {
    let disk = load(name);
    let err = match open(&disk) {
        Ok(table) => read_everything(&table).unwrap_err(),
        Err(e) => e,
    };
    match err {
        StorageError::Corrupt {
            file,
            offset,
            source,
        } => {
            assert_eq!(file, table_file_name(ID));
            (source, offset)
        }
        other => panic!("{name}: expected Corrupt, got {other:?}"),
    }
}

#[test]
fn fixtures_match_what_the_writer_produces() {
    let all = build_all();
    if updating() {
        std::fs::create_dir_all(fixture_dir()).unwrap();
        for (name, bytes) in &all {
            std::fs::write(fixture_dir().join(name), bytes).unwrap();
        }
    }
    for (name, bytes) in &all {
        let committed = std::fs::read(fixture_dir().join(name)).unwrap();
        assert!(
            committed == *bytes,
            "{name} differs from what this build writes: the format changed. If on purpose, bump \
             FORMAT_VERSION and rerun with UPDATE_FIXTURES=1."
        );
    }
}

#[test]
fn good_fixture_yields_exactly_the_known_entries() {
    let disk = load("good.sst");
    let table = open(&disk).unwrap();
    let meta = table.meta();
    assert_eq!((meta.id, meta.entries, meta.tombstones), (ID, 5, 1));
    assert_eq!(
        (&meta.min_key[..], &meta.max_key[..]),
        (&b"apple"[..], &b"elderberry"[..])
    );
    assert_eq!((meta.min_version, meta.max_version), (v(99, 2), v(103, 3)));
    assert_eq!(meta.file_bytes, disk.len(&table_file_name(ID)).unwrap());
    assert!(
        table.data_blocks() > 1,
        "the fixture should span several blocks"
    );

    assert_eq!(read_everything(&table).unwrap(), known_entries());
    for (k, c) in known_entries() {
        assert_eq!(table.get(&k, key_hash(&k)).unwrap(), Some(c));
    }
    for absent in [&b"aardvark"[..], b"blueberry", b"fig"] {
        assert_eq!(table.get(absent, key_hash(absent)).unwrap(), None);
    }
}

#[test]
fn bad_block_crc_fixture_fails_when_the_block_is_read() {
    // Data blocks are verified when read, not at open.
    assert!(open(&load("bad-block-crc.sst")).is_ok());
    let (source, offset) = corruption("bad-block-crc.sst");
    assert!(
        matches!(
            source,
            FormatError::ChecksumMismatch {
                what: "data block",
                ..
            }
        ),
        "{source:?}"
    );
    assert_eq!(offset, 0);
}

#[test]
fn bad_magic_fixture_fails_at_open() {
    let len = load("bad-magic.sst").len(&table_file_name(ID)).unwrap();
    let (source, offset) = corruption("bad-magic.sst");
    assert!(
        matches!(source, FormatError::BadMagic { what: "footer", .. }),
        "{source:?}"
    );
    assert_eq!(offset, len - FOOTER_BYTES as u64);
}

#[test]
fn truncated_fixture_fails_at_open() {
    let (source, offset) = corruption("truncated.sst");
    assert_eq!(
        source,
        FormatError::Truncated {
            what: "footer",
            needed: FOOTER_BYTES,
            available: 40
        }
    );
    assert_eq!(offset, 0);
}

#[test]
fn bad_version_fixture_fails_at_open() {
    let (source, _) = corruption("bad-version.sst");
    assert_eq!(
        source,
        FormatError::UnsupportedVersion {
            what: "footer",
            got: 2,
            supported: 1
        }
    );
}
