//! Storage engine benchmark: ringstore's `Store` against fjall, side by side in one process.
//!
//! A plain `main()` (no criterion) that runs the same workloads, on the same pre-generated keys
//! and values, against both engines and prints ops/s for each and the ratio ringstore/fjall:
//!
//! - `fillseq`: every key inserted in key order, no sync per write;
//! - `fillrandom`: every key inserted in a seeded random order, no sync per write;
//! - `readrandom (existing)`: after `fillrandom` and a flush of everything to tables, point
//!   reads of random existing keys, one thread;
//! - `readrandom (missing)`: point reads of keys that are not there (they fall between
//!   existing keys, so only filters, not key ranges, can rule them out);
//! - `synced writes, 1 writer`: each write durable before the next;
//! - `synced writes, N writers`: many threads doing synced writes at once, where group commit
//!   pays off; compared with the disk's raw fsync rate measured in the same directory.
//!
//! Keys are 16 ASCII digits (existing keys are the even numbers, missing ones the odd numbers),
//! values are 100 seeded random bytes (incompressible). Both engines get a 32 MiB block cache
//! and otherwise their defaults, and each workload group gets a fresh directory per engine under
//! one parent. The engine that runs first alternates from one workload group to the next; the
//! `first` column says which.
//!
//! ```text
//! cargo bench -p ringstore-node --bench storage -- [--quick] [--keys N] [--markdown]
//!     [--dir PARENT] [--seed S] [--only ringstore|fjall]
//! ```
//!
//! `--quick` (100,000 keys, 1,000 synced writes, 64 × 50 concurrent) is what CI runs.

use anyhow::{Context, Result, bail, ensure};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use ringstore_core::NodeId;
use ringstore_core::storage::{Cell, LsmConfig, SyncPolicy, Version};
use ringstore_node::store::Store;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::{Duration, Instant};

const KEY_BYTES: usize = 16;
const VALUE_BYTES: usize = 100;
const BLOCK_CACHE_BYTES: u64 = 32 << 20;

/// What the command line asked for.
struct Args {
    keys: usize,
    reads: usize,
    synced_writes: usize,
    writers: usize,
    writes_per_writer: usize,
    fsync_count_max: usize,
    fsync_time_max: Duration,
    markdown: bool,
    parent: PathBuf,
    seed: u64,
    only: Option<Which>,
}

impl Args {
    /// Parses `std::env::args` by hand; unknown arguments (cargo bench passes `--bench`) are
    /// ignored.
    fn parse() -> Result<Args> {
        let mut quick = false;
        let mut keys = None;
        let mut markdown = false;
        let mut parent = std::env::temp_dir();
        let mut seed = 0x5eed_u64;
        let mut only = None;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value =
                |name: &str| args.next().with_context(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--quick" => quick = true,
                "--markdown" => markdown = true,
                "--keys" => keys = Some(value("--keys")?.parse().context("--keys")?),
                "--dir" => parent = PathBuf::from(value("--dir")?),
                "--seed" => seed = value("--seed")?.parse().context("--seed")?,
                "--only" => {
                    only = Some(match value("--only")?.as_str() {
                        "ringstore" => Which::Ringstore,
                        "fjall" => Which::Fjall,
                        other => bail!("--only takes ringstore or fjall, not {other:?}"),
                    })
                }
                _ => {}
            }
        }
        let keys: usize = keys.unwrap_or(if quick { 100_000 } else { 1_000_000 });
        ensure!(keys > 0, "--keys must be at least 1");
        let (synced_writes, writes_per_writer, fsync_count_max, fsync_time_max) = if quick {
            (1_000, 50, 500, Duration::from_secs(1))
        } else {
            (10_000, 500, 2_000, Duration::from_secs(2))
        };
        Ok(Args {
            keys,
            reads: keys,
            synced_writes: synced_writes.min(keys),
            writers: 64,
            writes_per_writer: writes_per_writer.min(keys / 64).max(1),
            fsync_count_max,
            fsync_time_max,
            markdown,
            parent,
            seed,
            only,
        })
    }
}

/// The same keys, values and access orders for both engines.
struct Data {
    /// Existing keys in key order: `format!("{:016}", 2 * i)`.
    keys: Vec<[u8; KEY_BYTES]>,
    /// Keys that are never written, each between two existing ones: `2 * i + 1`.
    missing: Vec<[u8; KEY_BYTES]>,
    /// `keys.len()` values of `VALUE_BYTES` random bytes, back to back.
    values: Vec<u8>,
    /// A random permutation of `0..keys.len()`: the order of `fillrandom` and synced writes.
    random_order: Vec<u32>,
    /// Indexes into `keys` for `readrandom (existing)`.
    reads_existing: Vec<u32>,
    /// Indexes into `missing` for `readrandom (missing)`.
    reads_missing: Vec<u32>,
}

impl Data {
    fn generate(args: &Args) -> Data {
        let mut rng = SmallRng::seed_from_u64(args.seed);
        let key = |n: usize| -> [u8; KEY_BYTES] {
            let mut key = [0; KEY_BYTES];
            key.copy_from_slice(format!("{n:016}").as_bytes());
            key
        };
        let keys = (0..args.keys).map(|i| key(2 * i)).collect();
        let missing = (0..args.keys).map(|i| key(2 * i + 1)).collect();
        let mut values = vec![0; args.keys * VALUE_BYTES];
        rng.fill_bytes(&mut values);
        let index_max = u32::try_from(args.keys).expect("--keys fits in u32");
        let mut random_order: Vec<u32> = (0..index_max).collect();
        random_order.shuffle(&mut rng);
        let reads_existing = (0..args.reads)
            .map(|_| rng.random_range(0..index_max))
            .collect();
        let reads_missing = (0..args.reads)
            .map(|_| rng.random_range(0..index_max))
            .collect();
        Data {
            keys,
            missing,
            values,
            random_order,
            reads_existing,
            reads_missing,
        }
    }

    fn value(&self, i: usize) -> &[u8] {
        &self.values[i * VALUE_BYTES..(i + 1) * VALUE_BYTES]
    }
}

/// Whether each write must be durable before it returns.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// The engine's default buffering; nothing is synced per write.
    Buffered,
    /// Each write returns only once it is on disk (fdatasync or the engine's group commit).
    SyncEachWrite,
}

/// The operations the benchmark needs from an engine.
trait Engine: Sync + Sized {
    const NAME: &'static str;
    fn open(dir: &Path, durability: Durability) -> Result<Self>;
    /// Writes `value` under `key`; `ts` grows with each write so later writes win.
    fn put(&self, ts: u64, key: &[u8], value: &[u8]) -> Result<()>;
    /// The length of the value under `key`, if there is one.
    fn get(&self, key: &[u8]) -> Result<Option<usize>>;
    /// Moves everything written so far into tables and waits for background work to settle.
    fn flush(&self) -> Result<()>;
    /// One line of engine statistics for the log, if the engine has any.
    fn stats_line(&self) -> Option<String> {
        None
    }
    fn close(self) -> Result<()>;
}

/// fjall with a 32 MiB block cache, one keyspace, and otherwise defaults.
struct Fjall {
    db: fjall::Database,
    keyspace: fjall::Keyspace,
    durability: Durability,
}

impl Engine for Fjall {
    const NAME: &'static str = "fjall";

    fn open(dir: &Path, durability: Durability) -> Result<Self> {
        let db = fjall::Database::builder(dir)
            .cache_size(BLOCK_CACHE_BYTES)
            .open()?;
        let keyspace = db.keyspace("bench", fjall::KeyspaceCreateOptions::default)?;
        Ok(Fjall {
            db,
            keyspace,
            durability,
        })
    }

    fn put(&self, _ts: u64, key: &[u8], value: &[u8]) -> Result<()> {
        self.keyspace.insert(key, value)?;
        if self.durability == Durability::SyncEachWrite {
            // `SyncData` is fdatasync on the journal, as ringstore's `SyncPolicy::Always` is.
            self.db.persist(fjall::PersistMode::SyncData)?;
        }
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<usize>> {
        Ok(self.keyspace.get(key)?.map(|value| value.len()))
    }

    fn flush(&self) -> Result<()> {
        // Seal the active memtable and wait until it is written as a table (fjall's own tests use
        // this), then wait until no flush or compaction has run for a while: compactions are
        // started by a message after a flush, so one idle look is not enough.
        self.keyspace.rotate_memtable_and_wait()?;
        let mut idle_polls = 0;
        while idle_polls < 10 {
            std::thread::sleep(Duration::from_millis(20));
            if self.db.active_compactions() == 0 && self.db.outstanding_flushes() == 0 {
                idle_polls += 1;
            } else {
                idle_polls = 0;
            }
        }
        Ok(())
    }

    fn stats_line(&self) -> Option<String> {
        Some(format!(
            "tables {} (L0 {}), compactions completed {}",
            self.keyspace.table_count(),
            self.keyspace.l0_table_count(),
            self.db.compactions_completed()
        ))
    }

    fn close(self) -> Result<()> {
        drop(self.keyspace);
        drop(self.db);
        Ok(())
    }
}

/// ringstore's native `Store` with its default config (32 MiB block cache).
struct Ringstore {
    store: Store,
    stalls_before: u64,
}

impl Engine for Ringstore {
    const NAME: &'static str = "ringstore";

    fn open(dir: &Path, durability: Durability) -> Result<Self> {
        let config = LsmConfig {
            block_cache_bytes: BLOCK_CACHE_BYTES,
            sync: match durability {
                Durability::Buffered => SyncPolicy::Never,
                Durability::SyncEachWrite => SyncPolicy::Always,
            },
            ..LsmConfig::default()
        };
        let store = Store::open(dir, config)?;
        let stalls_before = store.stats().write_stalls;
        Ok(Ringstore {
            store,
            stalls_before,
        })
    }

    fn put(&self, ts: u64, key: &[u8], value: &[u8]) -> Result<()> {
        let version = Version {
            ts_micros: ts,
            node: NodeId(1),
        };
        self.store.write(key, Cell::put(version, value.to_vec()))?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<usize>> {
        Ok(self
            .store
            .get(key)?
            .and_then(|cell| cell.value.map(|value| value.len())))
    }

    fn flush(&self) -> Result<()> {
        Ok(self.store.flush()?)
    }

    fn stats_line(&self) -> Option<String> {
        let stats = self.store.stats();
        let tables: Vec<String> = stats
            .levels
            .iter()
            .map(|level| level.tables.to_string())
            .collect();
        Some(format!(
            "tables per level [{}], flushes {}, compactions {}, trivial moves {}, \
             write amplification {:.2}, write stalls {}, WAL syncs {}",
            tables.join(" "),
            stats.flushes,
            stats.compactions,
            stats.trivial_moves,
            stats.write_amplification,
            stats.write_stalls - self.stalls_before,
            stats.wal_syncs
        ))
    }

    fn close(self) -> Result<()> {
        Ok(self.store.close()?)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Which {
    Ringstore,
    Fjall,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Ringstore => "ringstore",
            Which::Fjall => "fjall",
        }
    }

    fn index(self) -> usize {
        match self {
            Which::Ringstore => 0,
            Which::Fjall => 1,
        }
    }
}

/// A group of workloads that share one database per engine.
#[derive(Clone, Copy)]
enum Group {
    FillSeq,
    FillRandomThenRead,
    SyncedOneWriter,
    SyncedManyWriters,
}

/// One line of the results table: ops/s per engine, indexed by `Which::index`.
struct Row {
    workload: String,
    ops_per_sec: [Option<f64>; 2],
    first: Which,
}

fn main() -> Result<()> {
    let args = Args::parse()?;
    let root = tempfile::Builder::new()
        .prefix("ringstore-bench-")
        .tempdir_in(&args.parent)
        .with_context(|| format!("creating a directory under {}", args.parent.display()))?;
    println!(
        "storage bench: {} keys ({KEY_BYTES} B keys, {VALUE_BYTES} B values), {} reads, seed {:#x}, \
         block cache {} MiB, {} cores, dir {}",
        args.keys,
        args.reads,
        args.seed,
        BLOCK_CACHE_BYTES >> 20,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        root.path().display()
    );
    let data = Data::generate(&args);

    let groups = [
        Group::FillSeq,
        Group::FillRandomThenRead,
        Group::SyncedOneWriter,
        Group::SyncedManyWriters,
    ];
    let mut rows: Vec<Row> = Vec::new();
    let mut fsync = None;
    for (number, &group) in groups.iter().enumerate() {
        if matches!(group, Group::SyncedOneWriter) {
            fsync = Some(raw_fsync_rates(root.path(), &args)?);
        }
        let order = if number % 2 == 0 {
            [Which::Ringstore, Which::Fjall]
        } else {
            [Which::Fjall, Which::Ringstore]
        };
        let order: Vec<Which> = order
            .into_iter()
            .filter(|which| args.only.is_none_or(|only| only == *which))
            .collect();
        let first_row = rows.len();
        for &which in &order {
            let dir = tempfile::Builder::new()
                .prefix(which.name())
                .tempdir_in(root.path())?;
            let results = match which {
                Which::Ringstore => run_group::<Ringstore>(group, dir.path(), &data, &args),
                Which::Fjall => run_group::<Fjall>(group, dir.path(), &data, &args),
            }
            .with_context(|| format!("{} failed", which.name()))?;
            for (i, (workload, ops_per_sec)) in results.into_iter().enumerate() {
                if rows.len() <= first_row + i {
                    rows.push(Row {
                        workload,
                        ops_per_sec: [None, None],
                        first: order[0],
                    });
                }
                rows[first_row + i].ops_per_sec[which.index()] = Some(ops_per_sec);
            }
        }
    }

    print_table(&rows, fsync, &args);
    Ok(())
}

/// Runs one workload group on a fresh database of engine `E` in `dir`; returns (workload,
/// ops/s) for each workload in the group.
fn run_group<E: Engine>(
    group: Group,
    dir: &Path,
    data: &Data,
    args: &Args,
) -> Result<Vec<(String, f64)>> {
    let name = E::NAME;
    let mut results = Vec::new();
    let mut record = |workload: String, ops: usize, elapsed: Duration| {
        let ops_per_sec = ops as f64 / elapsed.as_secs_f64();
        eprintln!(
            "  {name:<10} {workload:<34} {ops:>9} ops in {:>8.3} s = {:>12} ops/s",
            elapsed.as_secs_f64(),
            format_ops(ops_per_sec)
        );
        results.push((workload, ops_per_sec));
    };
    match group {
        Group::FillSeq => {
            let engine = E::open(dir, Durability::Buffered)?;
            let start = Instant::now();
            for (i, key) in data.keys.iter().enumerate() {
                engine.put(i as u64 + 1, key, data.value(i))?;
            }
            record("fillseq".into(), data.keys.len(), start.elapsed());
            close(engine)?;
        }
        Group::FillRandomThenRead => {
            let engine = E::open(dir, Durability::Buffered)?;
            let start = Instant::now();
            for (n, &i) in data.random_order.iter().enumerate() {
                let i = i as usize;
                engine.put(n as u64 + 1, &data.keys[i], data.value(i))?;
            }
            record("fillrandom".into(), data.keys.len(), start.elapsed());

            let start = Instant::now();
            engine.flush()?;
            eprintln!(
                "  {name:<10} {:<34} took {:.3} s{}",
                "flush (not in the table)",
                start.elapsed().as_secs_f64(),
                engine
                    .stats_line()
                    .map(|line| format!("; {line}"))
                    .unwrap_or_default()
            );

            let start = Instant::now();
            let mut found = 0usize;
            for &i in &data.reads_existing {
                if engine.get(&data.keys[i as usize])? == Some(VALUE_BYTES) {
                    found += 1;
                }
            }
            record(
                "readrandom (existing)".into(),
                data.reads_existing.len(),
                start.elapsed(),
            );
            ensure!(
                found == data.reads_existing.len(),
                "readrandom (existing) found {found} of {} keys",
                data.reads_existing.len()
            );

            let start = Instant::now();
            let mut found = 0usize;
            for &i in &data.reads_missing {
                if engine.get(&data.missing[i as usize])?.is_some() {
                    found += 1;
                }
            }
            record(
                "readrandom (missing)".into(),
                data.reads_missing.len(),
                start.elapsed(),
            );
            ensure!(found == 0, "readrandom (missing) found {found} keys");
            close(engine)?;
        }
        Group::SyncedOneWriter => {
            let engine = E::open(dir, Durability::SyncEachWrite)?;
            let start = Instant::now();
            for (n, &i) in data.random_order[..args.synced_writes].iter().enumerate() {
                let i = i as usize;
                engine.put(n as u64 + 1, &data.keys[i], data.value(i))?;
            }
            record(
                "synced writes, 1 writer".into(),
                args.synced_writes,
                start.elapsed(),
            );
            close(engine)?;
        }
        Group::SyncedManyWriters => {
            let engine = E::open(dir, Durability::SyncEachWrite)?;
            let per = args.writes_per_writer;
            let barrier = Barrier::new(args.writers + 1);
            let elapsed = std::thread::scope(|scope| -> Result<Duration> {
                let handles: Vec<_> = (0..args.writers)
                    .map(|writer| {
                        let (engine, barrier) = (&engine, &barrier);
                        scope.spawn(move || -> Result<()> {
                            barrier.wait();
                            for n in writer * per..(writer + 1) * per {
                                // Writers share the key set, so some keys are written twice.
                                let i = data.random_order[n % data.keys.len()] as usize;
                                engine.put(n as u64 + 1, &data.keys[i], data.value(i))?;
                            }
                            Ok(())
                        })
                    })
                    .collect();
                barrier.wait();
                let start = Instant::now();
                for handle in handles {
                    handle
                        .join()
                        .map_err(|_| anyhow::anyhow!("a writer panicked"))??;
                }
                Ok(start.elapsed())
            })?;
            record(
                format!("synced writes, {} writers", args.writers),
                args.writers * per,
                elapsed,
            );
            close(engine)?;
        }
    }
    Ok(results)
}

/// Logs the engine's statistics, then closes it.
fn close<E: Engine>(engine: E) -> Result<()> {
    if let Some(line) = engine.stats_line() {
        eprintln!("  {:<10} at close: {line}", E::NAME);
    }
    engine.close()
}

/// The disk's raw fsync rates, in syncs per second.
#[derive(Clone, Copy)]
struct FsyncRates {
    /// Appending to a file: each `sync_data` must also commit the file's new size, as a WAL
    /// that grows its segment does. The group-commit multiples are against this.
    append: f64,
    /// Writing into a file already extended with `set_len`, as a WAL that preallocates its
    /// segment does (fjall's journal does): the size no longer changes on each sync.
    preallocated: f64,
}

/// Writes `VALUE_BYTES` and `sync_data`s a plain file in `dir`, until `fsync_count_max` syncs or
/// `fsync_time_max` have passed, once appending and once into a preallocated file.
fn raw_fsync_rates(dir: &Path, args: &Args) -> Result<FsyncRates> {
    let rate = |preallocate: bool| -> Result<f64> {
        let path = dir.join("raw-fsync");
        let mut file = std::fs::File::create(&path)?;
        if preallocate {
            file.set_len((args.fsync_count_max * VALUE_BYTES) as u64)?;
            file.sync_all()?;
        }
        let record = [0x5a_u8; VALUE_BYTES];
        let start = Instant::now();
        let mut count = 0usize;
        while count < args.fsync_count_max && start.elapsed() < args.fsync_time_max {
            file.write_all(&record)?;
            file.sync_data()?;
            count += 1;
        }
        let elapsed = start.elapsed();
        std::fs::remove_file(&path)?;
        let per_sec = count as f64 / elapsed.as_secs_f64();
        eprintln!(
            "  raw fsync ({}): {count} writes of {VALUE_BYTES} B + sync_data in {:.3} s = {} /s",
            if preallocate {
                "preallocated"
            } else {
                "append"
            },
            elapsed.as_secs_f64(),
            format_ops(per_sec)
        );
        Ok(per_sec)
    };
    Ok(FsyncRates {
        append: rate(false)?,
        preallocated: rate(true)?,
    })
}

fn print_table(rows: &[Row], fsync: Option<FsyncRates>, args: &Args) {
    let cell = |ops: Option<f64>| ops.map_or_else(|| "-".to_string(), format_ops);
    let ratio = |row: &Row| match row.ops_per_sec {
        [Some(ringstore), Some(fjall)] => format!("{:.2}x", ringstore / fjall),
        _ => "-".to_string(),
    };
    println!();
    println!(
        "{:<28} {:>16} {:>14} {:>16}  first",
        "workload", "ringstore ops/s", "fjall ops/s", "ringstore/fjall"
    );
    for row in rows {
        println!(
            "{:<28} {:>16} {:>14} {:>16}  {}",
            row.workload,
            cell(row.ops_per_sec[0]),
            cell(row.ops_per_sec[1]),
            ratio(row),
            row.first.name()
        );
    }
    let multiples = rows
        .iter()
        .find(|row| row.workload.contains(&format!("{} writers", args.writers)))
        .and_then(|row| fsync.map(|fsync| (row, fsync.append)));
    if let Some(fsync) = fsync {
        println!();
        println!(
            "raw fsync ({VALUE_BYTES} B append + sync_data, same directory): {} /s \
             (into a preallocated file: {} /s)",
            format_ops(fsync.append),
            format_ops(fsync.preallocated)
        );
    }
    let multiple = |ops: Option<f64>, fsync: f64| {
        ops.map_or_else(|| "-".to_string(), |ops| format!("{:.1}x", ops / fsync))
    };
    if let Some((row, fsync)) = multiples {
        println!(
            "group-commit multiple ({} writers ops/s / raw fsync/s): ringstore {}, fjall {}",
            args.writers,
            multiple(row.ops_per_sec[0], fsync),
            multiple(row.ops_per_sec[1], fsync)
        );
    }

    if args.markdown {
        println!();
        println!("| workload | ringstore ops/s | fjall ops/s | ringstore/fjall | ran first |");
        println!("| --- | ---: | ---: | ---: | --- |");
        for row in rows {
            println!(
                "| {} | {} | {} | {} | {} |",
                row.workload,
                cell(row.ops_per_sec[0]),
                cell(row.ops_per_sec[1]),
                ratio(row),
                row.first.name()
            );
        }
        if let Some(fsync) = fsync {
            println!(
                "| raw fsync ({VALUE_BYTES} B append + sync_data) | {} /s | | | |",
                format_ops(fsync.append)
            );
            println!(
                "| raw fsync ({VALUE_BYTES} B into a preallocated file + sync_data) | {} /s | | | |",
                format_ops(fsync.preallocated)
            );
        }
        if let Some((row, fsync)) = multiples {
            println!(
                "| group-commit multiple ({} writers / raw fsync) | {} | {} | | |",
                args.writers,
                multiple(row.ops_per_sec[0], fsync),
                multiple(row.ops_per_sec[1], fsync)
            );
        }
    }
}

/// `1234567.8` as `"1,234,568"`.
fn format_ops(ops_per_sec: f64) -> String {
    let digits = format!("{:.0}", ops_per_sec);
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
