//! Model-based property test of the storage engine: random sequences of put, delete, get, scan,
//! sync, flush, compaction steps, crash and reopen against the simulated disk, every result
//! compared with a `BTreeMap` model that applies LWW.
//!
//! Durability is checked exactly: after a crash, the engine's whole contents must equal the
//! model replayed up to some prefix of the writes that starts no earlier than the last durable
//! LSN, so every write acknowledged after a sync survives, and nothing appears from nowhere.
//!
//! `PROPTEST_CASES` sets the number of cases (CI runs 1,000). Every case it once failed on is a
//! named test at the end of this file; a new one goes there too, named after what it catches
//! (proptest writes it to `lsm_model.proptest-regressions` first).

use proptest::prelude::*;
use ringstore_core::storage::{Cell, Disk, Job, Lsm, LsmConfig, SimDisk, StorageError, Version};
use ringstore_core::{Millis, NodeId};
use std::collections::BTreeMap;

const KEYS: u8 = 160;

#[derive(Clone, Debug)]
enum Op {
    Put {
        key: u8,
        age_ms: u64,
        node: u32,
        len: usize,
    },
    Delete {
        key: u8,
        age_ms: u64,
        node: u32,
    },
    Get {
        key: u8,
    },
    Scan {
        start: u8,
        end: u8,
        limit: usize,
    },
    Sync,
    Tick {
        ms: u64,
    },
    /// Take a background job if none is running, and advance it by one step.
    StepJob,
    /// Freeze the memtable and run all background work.
    Flush,
    Crash,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        30 => (0..KEYS, 0..40u64, 1..4u32, 0..300usize)
            .prop_map(|(key, age_ms, node, len)| Op::Put { key, age_ms, node, len }),
        8 => (0..KEYS, 0..40u64, 1..4u32).prop_map(|(key, age_ms, node)| Op::Delete { key, age_ms, node }),
        15 => (0..KEYS).prop_map(|key| Op::Get { key }),
        4 => (0..KEYS, 0..KEYS, 1..20usize).prop_map(|(start, end, limit)| Op::Scan { start, end, limit }),
        6 => Just(Op::Sync),
        6 => (1..800u64).prop_map(|ms| Op::Tick { ms }),
        12 => Just(Op::StepJob),
        2 => Just(Op::Flush),
        3 => Just(Op::Crash),
        2 => Just(Op::Reopen),
    ]
}

fn key(k: u8) -> Vec<u8> {
    format!("key{k:03}").into_bytes()
}

/// The model: every write in order, with its LSN, and the LWW map they produce.
#[derive(Default)]
struct Model {
    map: BTreeMap<Vec<u8>, Cell>,
    /// Writes since the last point known durable, with their LSNs.
    pending: Vec<(u64, Vec<u8>, Cell)>,
    /// The map as of the last point known durable.
    durable_map: BTreeMap<Vec<u8>, Cell>,
}

fn apply(map: &mut BTreeMap<Vec<u8>, Cell>, key: &[u8], cell: &Cell) {
    match map.get(key) {
        Some(existing) if existing.version >= cell.version => {}
        _ => {
            map.insert(key.to_vec(), cell.clone());
        }
    }
}

impl Model {
    fn write(&mut self, lsn: u64, key: Vec<u8>, cell: Cell) {
        apply(&mut self.map, &key, &cell);
        self.pending.push((lsn, key, cell));
    }

    /// Folds writes up to `durable_lsn` into the durable map.
    fn durable_upto(&mut self, durable_lsn: u64) {
        let split = self
            .pending
            .partition_point(|(lsn, _, _)| *lsn <= durable_lsn);
        for (_, k, c) in self.pending.drain(..split) {
            apply(&mut self.durable_map, &k, &c);
        }
    }
}

/// Whether the engine's answer for a key agrees with the model's cell at `now`: equal, or the
/// model's tombstone has passed its grace period and compaction may have dropped it.
fn agrees(engine: Option<&Cell>, model: Option<&Cell>, now: Millis, grace_ms: u64) -> bool {
    match (engine, model) {
        (a, b) if a == b => true,
        (None, Some(m)) => m.is_tombstone() && m.version.ts_micros / 1000 + grace_ms <= now.0,
        _ => false,
    }
}

fn describe_diff(engine: &BTreeMap<Vec<u8>, Cell>, model: &BTreeMap<Vec<u8>, Cell>) -> String {
    let keys: std::collections::BTreeSet<&Vec<u8>> = engine.keys().chain(model.keys()).collect();
    keys.into_iter()
        .filter(|k| engine.get(*k) != model.get(*k))
        .map(|k| {
            let show = |c: Option<&Cell>| {
                c.map(|c| {
                    format!(
                        "{:?}{}",
                        c.version,
                        if c.is_tombstone() { " tombstone" } else { "" }
                    )
                })
            };
            format!(
                "{}: engine {:?} model {:?}",
                String::from_utf8_lossy(k),
                show(engine.get(k)),
                show(model.get(k))
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn full_scan(lsm: &Lsm<SimDisk>) -> BTreeMap<Vec<u8>, Cell> {
    lsm.scan(b"\0", None, usize::MAX)
        .expect("scan")
        .into_iter()
        .collect()
}

fn maps_agree(
    engine: &BTreeMap<Vec<u8>, Cell>,
    model: &BTreeMap<Vec<u8>, Cell>,
    now: Millis,
    grace_ms: u64,
) -> bool {
    let keys: std::collections::BTreeSet<&Vec<u8>> = engine.keys().chain(model.keys()).collect();
    keys.into_iter()
        .all(|k| agrees(engine.get(k), model.get(k), now, grace_ms))
}

fn run(ops: Vec<Op>, seed: u64) -> Result<(), TestCaseError> {
    // Tiny sizes, so that a few hundred writes reach L3 and compaction runs often.
    let mut config = LsmConfig::small_for_tests();
    config.memtable_bytes_max = 2 << 10;
    config.compaction.l0_trigger = 2;
    config.compaction.l1_bytes_max = 2 << 10;
    config.compaction.level_multiplier = 2;
    config.compaction.table_bytes_target = 1 << 10;
    config.table.block_bytes = 256;
    let grace = config.tombstone_grace_ms;
    let disk = SimDisk::new(seed);
    let (mut lsm, _) = Lsm::open(disk.clone(), config.clone()).expect("open");
    let mut model = Model::default();
    let mut job: Option<Job<SimDisk>> = None;
    let mut now = Millis(10_000);
    let mut value_counter = 0u64;

    for op in ops {
        match op {
            Op::Put {
                key: k,
                age_ms,
                node,
                len,
            } => {
                value_counter += 1;
                let mut value = value_counter.to_le_bytes().to_vec();
                value.resize(len.max(4), k);
                // A coordinator never issues the same version twice: the counter keeps them apart.
                let version = Version {
                    ts_micros: (now.0 - age_ms) * 1000 + value_counter,
                    node: NodeId(node),
                };
                let cell = Cell::put(version, value);
                match lsm.write(&key(k), cell.clone()) {
                    Ok(lsn) => model.write(lsn, key(k), cell),
                    Err(StorageError::WriteStall { .. }) => {}
                    Err(e) => return Err(TestCaseError::fail(format!("put: {e}"))),
                }
            }
            Op::Delete {
                key: k,
                age_ms,
                node,
            } => {
                value_counter += 1;
                let version = Version {
                    ts_micros: (now.0 - age_ms) * 1000 + value_counter,
                    node: NodeId(node),
                };
                let cell = Cell::tombstone(version);
                match lsm.write(&key(k), cell.clone()) {
                    Ok(lsn) => model.write(lsn, key(k), cell),
                    Err(StorageError::WriteStall { .. }) => {}
                    Err(e) => return Err(TestCaseError::fail(format!("delete: {e}"))),
                }
            }
            Op::Get { key: k } => {
                // A memory-only read answers as a full one would, or not at all; answered
                // first, it must not be what fills the cache.
                let in_memory = lsm.get_in_memory(&key(k)).expect("get_in_memory");
                let got = lsm.get(&key(k)).expect("get");
                if let Some(in_memory) = in_memory {
                    prop_assert_eq!(&in_memory, &got, "get_in_memory key{:03}", k);
                }
                let want = model.map.get(&key(k));
                prop_assert!(
                    agrees(got.as_ref(), want, now, grace),
                    "get key{k:03}: engine {got:?}, model {want:?}"
                );
            }
            Op::Scan { start, end, limit } => {
                let (start, end) = (key(start.min(end)), key(start.max(end)));
                let got = lsm.scan(&start, Some(&end), limit).expect("scan");
                prop_assert!(got.len() <= limit);
                let got_map: BTreeMap<_, _> = got.iter().cloned().collect();
                prop_assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "scan out of order");
                // Every key returned is in range and agrees with the model.
                for (k, c) in &got {
                    prop_assert!(k >= &start && k < &end);
                    prop_assert!(
                        agrees(Some(c), model.map.get(k), now, grace),
                        "scan {k:?}: {c:?}"
                    );
                }
                // When the scan was not cut by its limit, it missed nothing the model has live.
                if got.len() < limit {
                    for (k, c) in model.map.range(start.clone()..end.clone()) {
                        prop_assert!(
                            agrees(got_map.get(k), Some(c), now, grace),
                            "scan missed {k:?}"
                        );
                    }
                }
            }
            Op::Sync => {
                lsm.sync_wal().expect("sync");
            }
            Op::Tick { ms } => now = Millis(now.0 + ms),
            Op::StepJob => {
                if job.is_none() {
                    job = lsm.next_job(now).expect("next_job");
                }
                if let Some(mut j) = job.take() {
                    if j.step().expect("step") {
                        lsm.install(j).expect("install");
                    } else {
                        job = Some(j);
                    }
                }
            }
            Op::Flush => {
                if let Some(j) = job.take() {
                    lsm.abort(j);
                }
                lsm.flush_all(now).expect("flush_all");
            }
            Op::Crash => {
                model.durable_upto(lsm.durable_lsn());
                drop(job.take());
                drop(lsm);
                disk.crash();
                let (reopened, report) =
                    Lsm::open(disk.clone(), config.clone()).expect("reopen after crash");
                if std::env::var("MODEL_DEBUG").is_ok() {
                    eprintln!(
                        "crash: durable_lsn was {}, report {report:?}, files {:?}",
                        model.pending.len(),
                        disk.list()
                    );
                }
                lsm = reopened;
                let engine = full_scan(&lsm);
                // The engine must equal the durable model plus some prefix of the pending writes.
                let mut candidate = model.durable_map.clone();
                let mut matched = maps_agree(&engine, &candidate, now, grace);
                let mut kept = 0;
                for (i, (_, k, c)) in model.pending.iter().enumerate() {
                    if matched {
                        break;
                    }
                    apply(&mut candidate, k, c);
                    if maps_agree(&engine, &candidate, now, grace) {
                        matched = true;
                        kept = i + 1;
                    }
                }
                prop_assert!(
                    matched,
                    "after crash the engine holds no prefix of the writes ({} pending)\nengine: {:?}",
                    model.pending.len(),
                    describe_diff(&engine, &candidate)
                );
                // Adopt the surviving prefix as the new truth.
                let survivors: Vec<_> = model.pending.drain(..kept).collect();
                for (_, k, c) in &survivors {
                    apply(&mut model.durable_map, k, c);
                }
                model.pending.clear();
                model.map = model.durable_map.clone();
            }
            Op::Reopen => {
                if let Some(j) = job.take() {
                    lsm.abort(j);
                }
                lsm.close().expect("close");
                let (reopened, report) = Lsm::open(disk.clone(), config.clone()).expect("reopen");
                prop_assert_eq!(report.torn_bytes_truncated, 0);
                lsm = reopened;
                model.durable_upto(u64::MAX);
                let engine = full_scan(&lsm);
                prop_assert!(
                    maps_agree(&engine, &model.map, now, grace),
                    "clean reopen lost data"
                );
            }
        }
        model.durable_upto(lsm.durable_lsn());
    }
    if std::env::var("MODEL_DEBUG").is_ok() {
        let s = lsm.stats();
        eprintln!(
            "flushes={} compactions={} moves={} purged={} levels={:?}",
            s.flushes,
            s.compactions,
            s.trivial_moves,
            s.tombstones_purged,
            s.levels.iter().map(|l| l.tables).collect::<Vec<_>>()
        );
    }
    // Finally everything still reads back.
    let engine = full_scan(&lsm);
    prop_assert!(
        maps_agree(&engine, &model.map, now, grace),
        "final contents differ"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn lsm_matches_a_btreemap_model(ops in proptest::collection::vec(op(), 1..400), seed in any::<u64>()) {
        run(ops, seed)?;
    }
}

// The cases the model test once failed on, each a named test (and no longer anonymous
// `cc` hashes in lsm_model.proptest-regressions).

/// Durability bug found by the model test: a crash of a new database, then another right after
/// its recovery, leaves a WAL segment whose header never became durable, behind a newer one.
/// Recovery took it for damage followed by valid records (corruption) and refused to open.
/// Fixed twice over (each fix alone passes this test; removing both fails it): a new segment's
/// header is synced before anything can follow it, and recovery deletes a segment without a
/// durable header, which never held a synced write.
#[test]
fn a_segment_whose_header_never_became_durable_does_not_stop_recovery() {
    use Op::*;
    run(vec![Crash, Crash], 749373827260740639).unwrap();
}

/// Clean reopens and crashes in a row around a few writes, jobs and syncs: recovery returns
/// exactly the synced writes each time. The model test first found the segment-header bug
/// above with this case; the engine has changed since (segments are preallocated and sealed),
/// and today the shorter case above is the one that fails without that fix.
#[test]
fn reopens_and_crashes_in_a_row_keep_exactly_the_synced_writes() {
    use Op::*;
    run(
        vec![
            Reopen,
            Crash,
            Reopen,
            Crash,
            Reopen,
            Crash,
            StepJob,
            Put {
                key: 7,
                age_ms: 38,
                node: 3,
                len: 170,
            },
            StepJob,
            Tick { ms: 705 },
            Get { key: 34 },
            StepJob,
            Put {
                key: 38,
                age_ms: 9,
                node: 1,
                len: 190,
            },
            Get { key: 28 },
            Get { key: 29 },
            Sync,
            StepJob,
            Reopen,
            Sync,
            Get { key: 25 },
            Put {
                key: 17,
                age_ms: 2,
                node: 2,
                len: 49,
            },
            Put {
                key: 7,
                age_ms: 4,
                node: 3,
                len: 252,
            },
            Get { key: 9 },
            Put {
                key: 35,
                age_ms: 17,
                node: 1,
                len: 97,
            },
            StepJob,
            Delete {
                key: 3,
                age_ms: 37,
                node: 2,
            },
            Put {
                key: 8,
                age_ms: 8,
                node: 1,
                len: 184,
            },
        ],
        10424190060187137037,
    )
    .unwrap();
}

/// Durability bug found by the model test: a segment rotated after a sync held synced writes,
/// but its name was not yet durable (no directory sync since it was created), so a crash could
/// lose the whole segment and writes acknowledged as durable with it. Fixed by syncing the
/// directory before a rotated segment counts as durable.
#[test]
fn a_rotated_segment_is_durable_only_once_its_name_is() {
    use Op::*;
    run(
        vec![
            Put {
                key: 92,
                age_ms: 6,
                node: 3,
                len: 252,
            },
            Put {
                key: 145,
                age_ms: 18,
                node: 2,
                len: 195,
            },
            Put {
                key: 116,
                age_ms: 16,
                node: 1,
                len: 240,
            },
            Put {
                key: 106,
                age_ms: 11,
                node: 3,
                len: 173,
            },
            Put {
                key: 99,
                age_ms: 28,
                node: 3,
                len: 180,
            },
            Put {
                key: 19,
                age_ms: 20,
                node: 3,
                len: 67,
            },
            Put {
                key: 104,
                age_ms: 29,
                node: 3,
                len: 160,
            },
            Put {
                key: 2,
                age_ms: 13,
                node: 3,
                len: 215,
            },
            StepJob,
            StepJob,
            Crash,
            Put {
                key: 69,
                age_ms: 20,
                node: 1,
                len: 159,
            },
            Tick { ms: 102 },
            Tick { ms: 429 },
            Sync,
            Scan {
                start: 98,
                end: 17,
                limit: 8,
            },
            Put {
                key: 151,
                age_ms: 22,
                node: 2,
                len: 225,
            },
            Put {
                key: 142,
                age_ms: 33,
                node: 1,
                len: 137,
            },
            Tick { ms: 233 },
            StepJob,
            StepJob,
            Flush,
            Reopen,
            StepJob,
            Get { key: 26 },
            Tick { ms: 57 },
            StepJob,
            Scan {
                start: 90,
                end: 79,
                limit: 16,
            },
            Scan {
                start: 146,
                end: 13,
                limit: 16,
            },
            Delete {
                key: 104,
                age_ms: 21,
                node: 1,
            },
            StepJob,
            Put {
                key: 3,
                age_ms: 3,
                node: 3,
                len: 105,
            },
            Sync,
            Sync,
            Get { key: 32 },
            Crash,
            Sync,
            StepJob,
            Put {
                key: 56,
                age_ms: 2,
                node: 2,
                len: 38,
            },
            Put {
                key: 67,
                age_ms: 15,
                node: 2,
                len: 172,
            },
            Crash,
            Tick { ms: 429 },
            Delete {
                key: 43,
                age_ms: 39,
                node: 2,
            },
            Get { key: 99 },
            Get { key: 26 },
            Get { key: 113 },
            Sync,
            Flush,
            Tick { ms: 35 },
            Put {
                key: 150,
                age_ms: 1,
                node: 2,
                len: 181,
            },
            Get { key: 115 },
            Delete {
                key: 158,
                age_ms: 22,
                node: 1,
            },
            Put {
                key: 82,
                age_ms: 19,
                node: 1,
                len: 105,
            },
            Put {
                key: 33,
                age_ms: 5,
                node: 2,
                len: 172,
            },
            Get { key: 44 },
            StepJob,
            Flush,
            Get { key: 47 },
            Put {
                key: 62,
                age_ms: 1,
                node: 1,
                len: 184,
            },
            Sync,
            Sync,
            Get { key: 50 },
            Sync,
            Put {
                key: 22,
                age_ms: 5,
                node: 2,
                len: 265,
            },
            Put {
                key: 117,
                age_ms: 4,
                node: 1,
                len: 210,
            },
            Get { key: 159 },
            Scan {
                start: 9,
                end: 104,
                limit: 6,
            },
            StepJob,
            Get { key: 34 },
            Get { key: 83 },
            Crash,
            StepJob,
            Sync,
            Scan {
                start: 93,
                end: 140,
                limit: 13,
            },
            Put {
                key: 145,
                age_ms: 13,
                node: 3,
                len: 126,
            },
            Sync,
            StepJob,
            StepJob,
            Put {
                key: 138,
                age_ms: 8,
                node: 3,
                len: 270,
            },
            Reopen,
            Put {
                key: 95,
                age_ms: 3,
                node: 2,
                len: 198,
            },
            Put {
                key: 112,
                age_ms: 39,
                node: 3,
                len: 287,
            },
            Put {
                key: 158,
                age_ms: 32,
                node: 1,
                len: 243,
            },
            Put {
                key: 141,
                age_ms: 33,
                node: 1,
                len: 98,
            },
            Tick { ms: 423 },
            StepJob,
            StepJob,
            Put {
                key: 139,
                age_ms: 8,
                node: 3,
                len: 206,
            },
            Put {
                key: 42,
                age_ms: 25,
                node: 1,
                len: 232,
            },
            Put {
                key: 137,
                age_ms: 23,
                node: 1,
                len: 48,
            },
            Delete {
                key: 94,
                age_ms: 6,
                node: 2,
            },
            Put {
                key: 32,
                age_ms: 22,
                node: 1,
                len: 214,
            },
            Put {
                key: 96,
                age_ms: 38,
                node: 1,
                len: 175,
            },
            Delete {
                key: 112,
                age_ms: 23,
                node: 1,
            },
            Get { key: 80 },
            Put {
                key: 90,
                age_ms: 18,
                node: 2,
                len: 140,
            },
            Put {
                key: 21,
                age_ms: 4,
                node: 3,
                len: 115,
            },
            Get { key: 107 },
            Scan {
                start: 119,
                end: 36,
                limit: 7,
            },
            StepJob,
            Tick { ms: 630 },
            Put {
                key: 33,
                age_ms: 20,
                node: 1,
                len: 211,
            },
            Put {
                key: 129,
                age_ms: 26,
                node: 1,
                len: 163,
            },
            Put {
                key: 79,
                age_ms: 36,
                node: 3,
                len: 57,
            },
            Put {
                key: 125,
                age_ms: 19,
                node: 1,
                len: 169,
            },
            Tick { ms: 715 },
            Delete {
                key: 124,
                age_ms: 5,
                node: 2,
            },
            Scan {
                start: 5,
                end: 21,
                limit: 3,
            },
            Get { key: 13 },
            Put {
                key: 106,
                age_ms: 23,
                node: 1,
                len: 184,
            },
            Tick { ms: 439 },
            Put {
                key: 46,
                age_ms: 22,
                node: 1,
                len: 287,
            },
            Get { key: 107 },
            Scan {
                start: 45,
                end: 95,
                limit: 12,
            },
            Tick { ms: 781 },
            Put {
                key: 110,
                age_ms: 25,
                node: 1,
                len: 5,
            },
            Put {
                key: 70,
                age_ms: 26,
                node: 1,
                len: 226,
            },
            Delete {
                key: 28,
                age_ms: 32,
                node: 2,
            },
            Delete {
                key: 81,
                age_ms: 18,
                node: 2,
            },
            Get { key: 159 },
            Tick { ms: 406 },
            Crash,
            Put {
                key: 95,
                age_ms: 17,
                node: 3,
                len: 262,
            },
            Put {
                key: 70,
                age_ms: 25,
                node: 2,
                len: 255,
            },
            Put {
                key: 102,
                age_ms: 30,
                node: 3,
                len: 3,
            },
            Put {
                key: 43,
                age_ms: 11,
                node: 3,
                len: 297,
            },
            Get { key: 26 },
            Sync,
            Put {
                key: 142,
                age_ms: 23,
                node: 3,
                len: 267,
            },
            StepJob,
            Put {
                key: 41,
                age_ms: 11,
                node: 3,
                len: 145,
            },
            Put {
                key: 62,
                age_ms: 2,
                node: 3,
                len: 253,
            },
            Tick { ms: 791 },
            Sync,
            Put {
                key: 15,
                age_ms: 35,
                node: 2,
                len: 182,
            },
            StepJob,
            Reopen,
            Put {
                key: 101,
                age_ms: 26,
                node: 1,
                len: 76,
            },
            StepJob,
            Get { key: 149 },
            Put {
                key: 97,
                age_ms: 1,
                node: 3,
                len: 136,
            },
            Get { key: 11 },
            Put {
                key: 107,
                age_ms: 22,
                node: 1,
                len: 220,
            },
        ],
        7151969235121639383,
    )
    .unwrap();
}
