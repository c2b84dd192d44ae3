//! Committed whole-database directories: one healthy database and copies of it with a torn or
//! damaged WAL, SSTable or manifest, each with what recovery must do about it.
//!
//! Each fixture is a directory under `tests/fixtures/db/` holding exactly the files `Lsm` wrote
//! on a [`SimDisk`] (MANIFEST, `wal-*.log`, `sst-*.sst`), plus a README.md. They are built
//! deterministically from the fixed writes below (fixed versions, a fixed `now`,
//! `LsmConfig::small_for_tests`), and `fixtures_match_what_the_engine_writes` checks that today's
//! engine still writes the committed bytes, so they pin the WAL, manifest and table formats
//! together. After a deliberate format change, regenerate them with
//! `UPDATE_FIXTURES=1 cargo test -p ringstore-core --test recovery_fixtures` (and bump the
//! format version).
//!
//! The healthy database (`good/`), as built:
//!
//! * tables 1, 2, 3 flushed to L0 (keys `k00`..`k19`, with overwrites, a stale write that must
//!   lose by version, and a tombstone), then compacted by L0 -> L1 into table 4;
//! * table 5 flushed to L0 (keys `k15`..`k24`, a tombstone);
//! * four unflushed, synced WAL batches in the last segment: a put, a tombstone, a two-entry
//!   batch, and a stale put that must lose by version.
#![allow(clippy::unwrap_used, reason = "a test fails loudly")]

use ringstore_core::storage::codec::FormatError;
use ringstore_core::storage::frame::{self, HEADER_BYTES, RECORD_HEADER_BYTES};
use ringstore_core::storage::manifest::{MANIFEST_FILE, Manifest};
use ringstore_core::storage::wal::parse_segment_file_name;
use ringstore_core::storage::{
    Cell, Disk, JobKind, Lsm, LsmConfig, RecoveryReport, SCAN_LIMIT_MAX, SimDisk, StorageError,
    Version, table_file_name,
};
use ringstore_core::{Millis, NodeId};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A database directory: file name -> contents.
type Image = BTreeMap<String, Vec<u8>>;
type Batch = Vec<(Vec<u8>, Cell)>;

const SEED: u64 = 0x5eed;
/// The `now` every background job runs at.
const NOW: Millis = Millis(1_000_000);
/// Versions are microseconds; every one is after `NOW` minus the tombstone grace, so no
/// compaction purges a tombstone and the expected contents are plain last-writer-wins.
const BASE_TS_US: u64 = 1_000_000_000;
/// The tail of `torn-wal-garbage/`: fixed bytes that frame no record.
const GARBAGE: [u8; 29] = [
    0x9e, 0x37, 0x79, 0xb9, 0x7f, 0x4a, 0x7c, 0x15, 0xf3, 0x9c, 0xc0, 0x60, 0x5c, 0xed, 0xc8, 0x34,
    0x10, 0x82, 0x27, 0x6b, 0xf3, 0xa2, 0x72, 0x51, 0xd1, 0x1e, 0x98, 0x6c, 0x3a,
];

// ---------------------------------------------------------------------------------------------
// The writes

fn v(offset: u64, node: u32) -> Version {
    Version {
        ts_micros: BASE_TS_US + offset,
        node: NodeId(node),
    }
}

fn put(key: &str, offset: u64, node: u32, value: &str) -> (Vec<u8>, Cell) {
    let cell = Cell::put(v(offset, node), value.as_bytes().to_vec());
    (key.as_bytes().to_vec(), cell)
}

fn del(key: &str, offset: u64, node: u32) -> (Vec<u8>, Cell) {
    (key.as_bytes().to_vec(), Cell::tombstone(v(offset, node)))
}

fn key(i: u64) -> String {
    format!("k{i:02}")
}

/// The batches of each flushed table, in order: tables 1, 2 and 3 (compacted into table 4),
/// then table 5.
fn table_batches() -> [Vec<Batch>; 4] {
    let t1 = (0..10)
        .map(|i| vec![put(&key(i), i, 1, &format!("t1-{}", key(i)))])
        .collect();
    let mut t2: Vec<Batch> = (5..15)
        .map(|i| vec![put(&key(i), 100 + i, 2, &format!("t2-{}", key(i)))])
        .collect();
    t2.push(vec![del("k01", 150, 2)]);
    let t3 = (10..20)
        .map(|i| {
            // k12 is older here than in table 2: it must lose although written later.
            let offset = if i == 12 { 50 } else { 200 + i };
            vec![put(&key(i), offset, 3, &format!("t3-{}", key(i)))]
        })
        .collect();
    let mut t5: Vec<Batch> = (15..25)
        .map(|i| vec![put(&key(i), 300 + i, 1, &format!("t5-{}", key(i)))])
        .collect();
    t5.push(vec![del("k20", 350, 1)]);
    [t1, t2, t3, t5]
}

/// The synced, unflushed batches in the last WAL segment of `good/`.
fn wal_batches() -> Vec<Batch> {
    vec![
        vec![put("k03", 400, 2, "wal-a")],
        vec![del("k07", 410, 3)],
        vec![put("k30", 420, 1, "wal-c0"), put("k31", 421, 1, "wal-c1")],
        // Older than table 5's k24: logged, but must not win.
        vec![put("k24", 250, 2, "stale-d")],
    ]
}

/// The batch torn in half in `torn-wal-tail/`: it must not appear after recovery.
fn torn_batch() -> Batch {
    vec![put("k30", 500, 2, "torn"), put("k40", 501, 2, "torn")]
}

/// Last-writer-wins over `batches`: what the database must hold.
fn model<'a>(batches: impl IntoIterator<Item = &'a Batch>) -> BTreeMap<Vec<u8>, Cell> {
    let mut map: BTreeMap<Vec<u8>, Cell> = BTreeMap::new();
    for (k, c) in batches.into_iter().flatten() {
        if map.get(k).is_none_or(|old| old.version < c.version) {
            map.insert(k.clone(), c.clone());
        }
    }
    map
}

/// What `good/` holds.
fn good_model() -> BTreeMap<Vec<u8>, Cell> {
    let tables = table_batches();
    model(tables.iter().flatten().chain(&wal_batches()))
}

/// What tables 1, 2 and 3 hold: the state before the compaction.
fn pre_compaction_model() -> BTreeMap<Vec<u8>, Cell> {
    model(table_batches()[..3].iter().flatten())
}

// ---------------------------------------------------------------------------------------------
// Building the fixtures

/// Snapshots of the database as it is built.
struct Stages {
    /// After tables 1, 2, 3 were flushed, before their compaction.
    pre_compaction: Image,
    /// Right after the compaction into table 4.
    post_compaction: Image,
    /// Closed after the WAL batches (and the torn batch, if asked for).
    closed: Image,
}

/// Makes everything durable (as a clean shutdown whose directory the OS synced) and returns it.
fn image_of(disk: &SimDisk, lsm: &mut Lsm<SimDisk>) -> Image {
    lsm.sync_wal().unwrap();
    disk.sync_dir().unwrap();
    disk.durable_image()
}

fn write_all(lsm: &mut Lsm<SimDisk>, batches: &[Batch]) {
    for batch in batches {
        lsm.write_batch(batch.clone()).unwrap();
    }
}

/// Freezes the memtable and runs exactly its flush (no compaction).
fn flush_one(lsm: &mut Lsm<SimDisk>) {
    lsm.freeze_memtable().unwrap();
    let job = lsm.next_job(NOW).unwrap().unwrap();
    assert!(
        matches!(job.kind(), JobKind::Flush { .. }),
        "{:?}",
        job.kind()
    );
    lsm.run_job(job).unwrap();
}

fn build(with_torn_batch: bool) -> Stages {
    let disk = SimDisk::new(SEED);
    let (mut lsm, report) = Lsm::open(disk.clone(), LsmConfig::small_for_tests()).unwrap();
    assert!(report.created);
    let [t1, t2, t3, t5] = table_batches();
    for batches in [t1, t2, t3] {
        write_all(&mut lsm, &batches);
        flush_one(&mut lsm);
    }
    let pre_compaction = image_of(&disk, &mut lsm);
    lsm.run_background(NOW).unwrap();
    let stats = lsm.stats();
    assert_eq!((stats.compactions, stats.trivial_moves), (1, 0));
    let post_compaction = image_of(&disk, &mut lsm);
    write_all(&mut lsm, &t5);
    flush_one(&mut lsm);
    write_all(&mut lsm, &wal_batches());
    if with_torn_batch {
        write_all(&mut lsm, &[torn_batch()]);
    }
    lsm.close().unwrap();
    disk.sync_dir().unwrap();
    Stages {
        pre_compaction,
        post_compaction,
        closed: disk.durable_image(),
    }
}

/// The name of the only WAL segment of an image.
fn wal_segment(image: &Image) -> String {
    let mut segments = image
        .keys()
        .filter(|name| parse_segment_file_name(name).is_some());
    let name = segments.next().unwrap().clone();
    assert!(segments.next().is_none(), "more than one WAL segment");
    name
}

/// The offsets of the whole records at the start of a WAL or manifest file, and where they end.
fn records(bytes: &[u8]) -> (Vec<usize>, usize) {
    let mut offsets = Vec::new();
    let mut at = HEADER_BYTES;
    while let Ok((_, len)) = frame::decode_record("record", &bytes[at..]) {
        offsets.push(at);
        at += len;
    }
    (offsets, at)
}

/// The offsets of the records of an undamaged WAL or manifest file.
fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let (offsets, end) = records(bytes);
    assert_eq!(end, bytes.len(), "damaged log");
    offsets
}

/// The table at `level` of an image's manifest (the first one if several).
fn table_at(image: &Image, level: usize) -> String {
    let disk = SimDisk::from_image(SEED, image.clone());
    let manifest = Manifest::open(disk).unwrap().unwrap();
    table_file_name(manifest.state().levels[level][0].id)
}

fn flip(image: &mut Image, file: &str, at: usize, mask: u8) {
    image.get_mut(file).unwrap()[at] ^= mask;
}

/// Where `corrupt-wal-middle/` is damaged: the first key byte of the second of four records.
fn corrupt_wal_at(good: &Image) -> (String, usize, usize) {
    let segment = wal_segment(good);
    let record = record_offsets(&good[&segment])[1];
    // Body: lsn u64, count u32, then the first entry: key_len u16, key.
    (segment, record, record + RECORD_HEADER_BYTES + 8 + 4 + 2)
}

/// Where `corrupt-wal-last/` is damaged: from the first key byte of the last record on.
fn corrupt_wal_last_at(good: &Image) -> (String, usize, usize) {
    let segment = wal_segment(good);
    let record = *record_offsets(&good[&segment]).last().unwrap();
    (segment, record, record + RECORD_HEADER_BYTES + 8 + 4 + 2)
}

/// Where `corrupt-manifest/` is damaged: the compaction's record, followed by table 5's flush.
fn corrupt_manifest_at(good: &Image) -> (usize, usize) {
    let records = record_offsets(&good[MANIFEST_FILE]);
    assert_eq!(
        records.len(),
        7,
        "snapshot, 3 flushes, compaction, flush, WAL seal"
    );
    let record = records[4];
    (record, (record + records[5]) / 2)
}

/// Every fixture: name, README paragraph, contents.
fn build_all() -> Vec<(&'static str, &'static str, Image)> {
    let stages = build(false);
    let good = stages.closed;
    let segment = wal_segment(&good);

    // The same database with one more batch, cut in the middle of that batch's record.
    let with_torn = build(true).closed;
    let mut torn_tail = with_torn.clone();
    // `good`'s manifest: its seal covers `good`'s records; the torn batch came after it.
    torn_tail.insert(MANIFEST_FILE.to_string(), good[MANIFEST_FILE].clone());
    let full = &with_torn[&segment];
    let good_len = good[&segment].len();
    assert_eq!(&full[..good_len], &good[&segment][..]);
    torn_tail
        .get_mut(&segment)
        .unwrap()
        .truncate(good_len + (full.len() - good_len) / 2);
    for (name, bytes) in &good {
        if *name != segment {
            assert_eq!(torn_tail.get(name), Some(bytes), "{name}");
        }
    }

    let mut torn_garbage = good.clone();
    torn_garbage
        .get_mut(&segment)
        .unwrap()
        .extend_from_slice(&GARBAGE);

    let mut corrupt_wal = good.clone();
    let (segment_name, _, at) = corrupt_wal_at(&good);
    flip(&mut corrupt_wal, &segment_name, at, 0x01);

    let mut corrupt_wal_last = good.clone();
    let (segment_name, _, at) = corrupt_wal_last_at(&good);
    for i in 0..3 {
        flip(&mut corrupt_wal_last, &segment_name, at + i, 0x5a);
    }

    // Byte 2 is the first key byte of the first data block: "k00" becomes "K00".
    let mut corrupt_block = good.clone();
    flip(&mut corrupt_block, &table_at(&good, 1), 2, 0x20);

    let mut corrupt_footer = good.clone();
    let l0 = table_at(&good, 0);
    let footer = good[&l0].len() - 50;
    flip(&mut corrupt_footer, &l0, footer, 0x01);

    let mut corrupt_manifest = good.clone();
    let (_, at) = corrupt_manifest_at(&good);
    flip(&mut corrupt_manifest, MANIFEST_FILE, at, 0x01);

    // A crash while the compaction's manifest record was being appended: its output and its
    // inputs are all on disk, and half the record is.
    let pre = stages.pre_compaction;
    let post = stages.post_compaction;
    let mut torn_manifest = post.clone();
    for (name, bytes) in &pre {
        if name != MANIFEST_FILE {
            assert_eq!(torn_manifest.get(name).unwrap_or(bytes), bytes, "{name}");
            torn_manifest.insert(name.clone(), bytes.clone());
        }
    }
    let (old, new) = (&pre[MANIFEST_FILE], &post[MANIFEST_FILE]);
    assert_eq!(&new[..old.len()], &old[..]);
    let cut = old.len() + (new.len() - old.len()) / 2;
    torn_manifest.insert(MANIFEST_FILE.to_string(), new[..cut].to_vec());

    let mut missing_manifest = good.clone();
    missing_manifest.remove(MANIFEST_FILE);

    vec![
        (
            "good",
            "A healthy database: tables 1-3 flushed and compacted into table 4 (L1), table 5 \
             flushed to L0, and four synced, unflushed batches (one a tombstone) in the last WAL \
             segment. It must open with nothing torn and no orphans, every known key must read \
             back its exact cell, and a full scan must equal the known map.",
            good,
        ),
        (
            "torn-wal-tail",
            "`good` with a fifth batch, appended after `good`'s clean close sealed the segment, \
             whose WAL record was cut in the middle (a crash during an unsynced append past the \
             seal). It must open, report the cut bytes as torn, hold every batch \
             before the tear and nothing of the torn one, and leave the segment truncated to \
             exactly `good`'s segment, so that a second open finds nothing torn.",
            torn_tail,
        ),
        (
            "torn-wal-garbage",
            "`good` with 29 fixed garbage bytes after the last WAL record. Recovery must treat \
             them as a torn tail, as in `torn-wal-tail`.",
            torn_garbage,
        ),
        (
            "corrupt-wal-middle",
            "`good` with one bit flipped in the first key of the second of the four WAL records, \
             with valid records after it. Synced writes follow the damage, so open must fail \
             with `Corrupt` naming the segment and that record's offset (a checksum mismatch), \
             and change nothing.",
            corrupt_wal,
        ),
        (
            "corrupt-wal-last",
            "`good` with 3 bytes flipped in the last record of its WAL segment, which `good`'s \
             clean close sealed (recorded in MANIFEST). A sealed segment has no torn tail, so \
             open must fail with `Corrupt` naming the segment and that record's offset (a \
             checksum mismatch), and change nothing, rather than cut an acknowledged write.",
            corrupt_wal_last,
        ),
        (
            "corrupt-sst-block",
            "`good` with one bit flipped in the first key of the first data block of table 4 \
             (L1). Blocks are checked when read, so open succeeds; reading a key of that block \
             (or a scan over it) must fail with `Corrupt` naming the table, never return wrong \
             data, while keys outside the table still read back exactly.",
            corrupt_block,
        ),
        (
            "corrupt-sst-footer",
            "`good` with one bit flipped in the footer of table 5 (L0). Open must fail with \
             `Corrupt` naming that table at its footer (a checksum mismatch), and change nothing.",
            corrupt_footer,
        ),
        (
            "corrupt-manifest",
            "`good` with one bit flipped in the middle of the MANIFEST record of the compaction, \
             which table 5's flush record follows. Open must fail with `Corrupt` naming MANIFEST \
             at that record's offset, and change nothing.",
            corrupt_manifest,
        ),
        (
            "torn-manifest",
            "The database right after tables 1-3 were flushed, crashed while the compaction's \
             MANIFEST record was being appended: half of the record is there, and both the \
             compaction's inputs (tables 1-3) and its output (table 4). Open must cut the torn \
             record, keep tables 1-3 live, delete table 4 as an orphan, and read back the \
             contents of tables 1-3 exactly.",
            torn_manifest,
        ),
        (
            "missing-manifest",
            "`good` without its MANIFEST. Open must fail with `Corrupt` naming MANIFEST instead \
             of creating an empty database over the data files, and change nothing.",
            missing_manifest,
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Loading and checking

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/db")
}

/// Whether this run rewrites the fixtures (`UPDATE_FIXTURES=1`).
fn updating() -> bool {
    std::env::var_os("UPDATE_FIXTURES").is_some_and(|v| v == "1")
}

fn readme(name: &str, paragraph: &str) -> Vec<u8> {
    format!(
        "# {name}\n\nGenerated by `core/tests/recovery_fixtures.rs` (rerun it with \
         `UPDATE_FIXTURES=1` to regenerate; do not edit by hand).\n\n{paragraph}\n"
    )
    .into_bytes()
}

/// Every file of a committed fixture directory, README included.
fn read_dir(name: &str) -> Image {
    let dir = fixture_dir().join(name);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let file = path.file_name().unwrap().to_str().unwrap().to_string();
            (file, std::fs::read(&path).unwrap())
        })
        .collect()
}

/// The database files of fixture `name` (or, while updating, of the one about to be written).
fn fixture(name: &str) -> Image {
    let mut image = if updating() {
        let all = build_all();
        all.into_iter().find(|f| f.0 == name).unwrap().2
    } else {
        read_dir(name)
    };
    image.remove("README.md");
    image
}

/// A fresh disk holding fixture `name` as durable files.
fn load(name: &str) -> SimDisk {
    SimDisk::from_image(SEED, fixture(name))
}

/// What the disk holds now (not only what is durable).
fn contents(disk: &SimDisk) -> Image {
    disk.list()
        .unwrap()
        .into_iter()
        .map(|name| {
            let bytes = disk.read_all(&name).unwrap();
            (name, bytes)
        })
        .collect()
}

fn open(disk: &SimDisk) -> Result<(Lsm<SimDisk>, RecoveryReport), StorageError> {
    Lsm::open(disk.clone(), LsmConfig::small_for_tests())
}

/// Opening fixture `name` fails with `Corrupt`, and leaves the disk as it was.
fn open_fails(name: &str) -> (String, u64, FormatError) {
    let disk = load(name);
    let before = contents(&disk);
    let err = open(&disk).map(|_| ()).unwrap_err();
    assert_eq!(
        contents(&disk),
        before,
        "{name}: a failed open changed files"
    );
    match err {
        StorageError::Corrupt {
            file,
            offset,
            source,
        } => (file, offset, source),
        other => panic!("{name}: expected Corrupt, got {other:?}"),
    }
}

/// Every key of `expected` reads back its exact cell, a few others read as absent, and a full
/// scan equals `expected`.
fn assert_holds(lsm: &Lsm<SimDisk>, expected: &BTreeMap<Vec<u8>, Cell>) {
    for (k, c) in expected {
        let key = String::from_utf8_lossy(k);
        assert_eq!(lsm.get(k).unwrap().as_ref(), Some(c), "{key}");
    }
    for absent in ["a", "k", "k025", "k99", "z"] {
        assert!(
            !expected.contains_key(absent.as_bytes()),
            "{absent} is in the model"
        );
        assert_eq!(lsm.get(absent.as_bytes()).unwrap(), None, "{absent}");
    }
    let scanned: BTreeMap<_, _> = lsm
        .scan(b"", None, SCAN_LIMIT_MAX)
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(&scanned, expected);
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn fixtures_match_what_the_engine_writes() {
    let all = build_all();
    for (name, paragraph, image) in &all {
        let mut expected = image.clone();
        expected.insert("README.md".to_string(), readme(name, paragraph));
        let dir = fixture_dir().join(name);
        if updating() {
            if dir.exists() {
                std::fs::remove_dir_all(&dir).unwrap();
            }
            std::fs::create_dir_all(&dir).unwrap();
            for (file, bytes) in &expected {
                std::fs::write(dir.join(file), bytes).unwrap();
            }
        }
        let committed = read_dir(name);
        assert_eq!(
            committed.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "{name}: the files differ"
        );
        for (file, bytes) in &expected {
            assert!(
                committed[file] == *bytes,
                "{name}/{file} differs from what this build writes: the format changed. If on \
                 purpose, bump the format version and rerun with UPDATE_FIXTURES=1."
            );
        }
        let total: usize = image.values().map(Vec::len).sum();
        assert!(
            total < 8 << 10,
            "{name} is {total} bytes: keep fixtures small"
        );
    }
    let names: Vec<_> = all.iter().map(|f| f.0).collect();
    let mut committed: Vec<_> = std::fs::read_dir(fixture_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    committed.sort();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(committed, sorted, "stale or missing fixture directories");
}

#[test]
fn good_opens_cleanly_and_reads_back_every_cell() {
    let disk = load("good");
    let (lsm, report) = open(&disk).unwrap();
    assert_eq!(
        report,
        RecoveryReport {
            created: false,
            tables: 2,
            wal_segments: 1,
            batches_replayed: wal_batches().len() as u64,
            torn_bytes_truncated: 0,
            orphans_deleted: Vec::new(),
        }
    );
    let stats = lsm.stats();
    let tables: Vec<usize> = stats.levels.iter().map(|l| l.tables).collect();
    assert_eq!(
        tables,
        [1, 1, 0, 0, 0, 0, 0],
        "table 5 in L0, table 4 in L1"
    );
    let expected = good_model();
    // The model has what the fixture was built to exercise.
    assert!(expected[&b"k01"[..]].is_tombstone() && expected[&b"k07"[..]].is_tombstone());
    assert_eq!(expected[&b"k12"[..]], put("k12", 112, 2, "t2-k12").1);
    assert_eq!(expected[&b"k24"[..]], put("k24", 324, 1, "t5-k24").1);
    assert_holds(&lsm, &expected);
}

/// Opens a fixture whose last WAL segment has a torn tail after `good`'s records, and checks
/// recovery cut exactly that tail and kept everything before it.
fn assert_torn_tail_recovered(name: &str) {
    let good = fixture("good");
    let segment = wal_segment(&good);
    let fixture = fixture(name);
    let torn_bytes = (fixture[&segment].len() - good[&segment].len()) as u64;
    assert!(torn_bytes > 0);

    let disk = SimDisk::from_image(SEED, fixture);
    let (lsm, report) = open(&disk).unwrap();
    assert_eq!(report.torn_bytes_truncated, torn_bytes);
    assert_eq!(
        lsm.stats().wal_torn_bytes_cut,
        torn_bytes,
        "counted in a stat"
    );
    assert_eq!(report.batches_replayed, wal_batches().len() as u64);
    assert_eq!(report.orphans_deleted, Vec::<String>::new());
    assert_holds(&lsm, &good_model());
    for (k, c) in torn_batch() {
        assert_ne!(lsm.get(&k).unwrap(), Some(c));
    }
    assert_eq!(disk.read_all(&segment).unwrap(), good[&segment]);
    lsm.close().unwrap();

    disk.crash();
    let (lsm, report) = open(&disk).unwrap();
    assert_eq!(report.torn_bytes_truncated, 0);
    assert_eq!(report.batches_replayed, wal_batches().len() as u64);
    assert_holds(&lsm, &good_model());
}

#[test]
fn torn_wal_tail_is_cut_and_only_the_torn_batch_is_lost() {
    let torn = fixture("torn-wal-tail");
    let segment = wal_segment(&torn);
    // The tail really is half a record: it starts with a plausible length that runs past the end.
    let good_len = fixture("good")[&segment].len();
    let tail = &torn[&segment][good_len..];
    let body_len = u32::from_le_bytes(tail[..4].try_into().unwrap()) as usize;
    assert_eq!(tail.len(), (RECORD_HEADER_BYTES + body_len) / 2);
    assert_torn_tail_recovered("torn-wal-tail");
}

#[test]
fn torn_wal_garbage_is_cut_like_a_torn_tail() {
    assert_torn_tail_recovered("torn-wal-garbage");
}

#[test]
fn corrupt_wal_middle_fails_open_at_the_damaged_record() {
    let (segment, record, _) = corrupt_wal_at(&fixture("good"));
    let (file, offset, source) = open_fails("corrupt-wal-middle");
    assert_eq!((file, offset), (segment, record as u64));
    assert!(
        matches!(
            source,
            FormatError::ChecksumMismatch {
                what: "wal record",
                ..
            }
        ),
        "{source:?}"
    );
}

#[test]
fn damage_in_the_last_record_of_a_sealed_segment_fails_open() {
    let (segment, record, _) = corrupt_wal_last_at(&fixture("good"));
    let (file, offset, source) = open_fails("corrupt-wal-last");
    assert_eq!((file, offset), (segment, record as u64));
    assert!(
        matches!(
            source,
            FormatError::ChecksumMismatch {
                what: "wal record",
                ..
            }
        ),
        "{source:?}"
    );
}

#[test]
fn corrupt_sst_block_fails_reads_of_that_block_only() {
    let good = fixture("good");
    let damaged = table_at(&good, 1);
    let disk = load("corrupt-sst-block");
    let (lsm, report) = open(&disk).unwrap();
    assert_eq!((report.tables, report.torn_bytes_truncated), (2, 0));

    let is_damage = |err: &StorageError| {
        matches!(
            err,
            StorageError::Corrupt {
                file,
                offset: 0,
                source: FormatError::ChecksumMismatch { what: "data block", .. },
            } if *file == damaged
        )
    };
    // k00 is only in table 4, in its first block.
    let err = lsm.get(b"k00").unwrap_err();
    assert!(is_damage(&err), "{err:?}");
    let err = lsm.scan(b"", None, SCAN_LIMIT_MAX).unwrap_err();
    assert!(is_damage(&err), "{err:?}");

    let mut failed = 0;
    for (k, c) in good_model() {
        let key = String::from_utf8_lossy(&k).into_owned();
        match lsm.get(&k) {
            Ok(got) => assert_eq!(got, Some(c), "{key}: wrong data instead of an error"),
            Err(e) => {
                assert!(is_damage(&e), "{key}: {e:?}");
                // Only keys table 4 holds (k00..k19) can need its block.
                assert!(key.as_str() < "k20", "{key} read table 4");
                failed += 1;
            }
        }
    }
    assert!(failed >= 1);
    // Keys table 4 does not hold, and keys whose newer versions in the WAL (k03, k07) or in
    // table 5 (k15..k19) make reading table 4 needless.
    for key in [
        "k03", "k07", "k15", "k19", "k20", "k21", "k24", "k30", "k31",
    ] {
        assert_eq!(
            lsm.get(key.as_bytes()).unwrap().as_ref(),
            good_model().get(key.as_bytes()),
            "{key}"
        );
    }
    let after: BTreeMap<_, _> = lsm
        .scan(b"k20", None, SCAN_LIMIT_MAX)
        .unwrap()
        .into_iter()
        .collect();
    let expected: BTreeMap<_, _> = good_model().split_off(&b"k20"[..]);
    assert_eq!(after, expected);
}

#[test]
fn corrupt_sst_footer_fails_open_naming_the_table() {
    let good = fixture("good");
    let table = table_at(&good, 0);
    let (file, offset, source) = open_fails("corrupt-sst-footer");
    assert_eq!(file, table);
    assert_eq!(offset, good[&table].len() as u64 - 50);
    assert!(
        matches!(source, FormatError::ChecksumMismatch { what: "footer", .. }),
        "{source:?}"
    );
}

#[test]
fn corrupt_manifest_middle_fails_open() {
    let (record, _) = corrupt_manifest_at(&fixture("good"));
    let (file, offset, source) = open_fails("corrupt-manifest");
    assert_eq!((file.as_str(), offset), (MANIFEST_FILE, record as u64));
    assert!(
        matches!(
            source,
            FormatError::ChecksumMismatch {
                what: "manifest record",
                ..
            }
        ),
        "{source:?}"
    );
}

#[test]
fn torn_manifest_rolls_back_to_the_previous_table_set() {
    let fixture = fixture("torn-manifest");
    let output = table_file_name(4);
    assert!(fixture.contains_key(&output));
    let (whole, valid_bytes) = records(&fixture[MANIFEST_FILE]);
    assert_eq!(whole.len(), 4, "the snapshot and three flushes are whole");
    let valid_manifest = fixture[MANIFEST_FILE][..valid_bytes].to_vec();

    let disk = SimDisk::from_image(SEED, fixture);
    let (lsm, report) = open(&disk).unwrap();
    assert_eq!(
        report,
        RecoveryReport {
            created: false,
            tables: 3,
            wal_segments: 1,
            batches_replayed: 0,
            torn_bytes_truncated: 0,
            orphans_deleted: vec![output.clone()],
        }
    );
    let tables: Vec<usize> = lsm.stats().levels.iter().map(|l| l.tables).collect();
    assert_eq!(tables, [3, 0, 0, 0, 0, 0, 0], "tables 1-3 in L0");
    assert!(!disk.exists(&output).unwrap());
    assert_eq!(disk.read_all(MANIFEST_FILE).unwrap(), valid_manifest);
    assert_holds(&lsm, &pre_compaction_model());
    lsm.close().unwrap();

    disk.crash();
    let (lsm, report) = open(&disk).unwrap();
    assert_eq!((report.tables, report.orphans_deleted), (3, Vec::new()));
    assert_holds(&lsm, &pre_compaction_model());
}

#[test]
fn missing_manifest_fails_open_without_creating_a_database() {
    let (file, offset, source) = open_fails("missing-manifest");
    assert_eq!((file.as_str(), offset), (MANIFEST_FILE, 0));
    assert!(
        matches!(
            source,
            FormatError::Invalid {
                what: "manifest",
                ..
            }
        ),
        "{source:?}"
    );
}
