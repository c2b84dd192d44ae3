//! `ringstore storage-demo`: one node's LSM storage engine, step by step, on real files.
//!
//! It follows the design notes' write path (WAL, memtable, flush to SSTable, compaction) with
//! the notes' own example, `PUT("user123", "Alice")`, then loads enough keys to fill several
//! memtables, and finally restarts the engine to show recovery.

use ringstore_core::NodeId;
use ringstore_core::storage::{Cell, LsmConfig, LsmStats, SyncPolicy, Version};
use ringstore_node::Store;
use ringstore_node::store::wall_clock;
use std::path::PathBuf;
use std::time::Instant;

fn print_stats(title: &str, s: &LsmStats) {
    println!("  {title}");
    println!(
        "    WAL: {} bytes in {} segment(s), last LSN {}, durable LSN {}, {} syncs",
        s.wal_bytes, s.wal_segments, s.last_lsn, s.durable_lsn, s.wal_syncs
    );
    println!(
        "    memtable: {} keys, {} bytes; frozen: {}",
        s.memtable_entries, s.memtable_bytes, s.frozen_memtables
    );
    let levels: Vec<String> = s
        .levels
        .iter()
        .enumerate()
        .filter(|(_, l)| l.tables > 0)
        .map(|(i, l)| {
            format!(
                "L{i}: {} tables, {:.1} MiB",
                l.tables,
                l.bytes as f64 / 1048576.0
            )
        })
        .collect();
    let levels = if levels.is_empty() {
        "none".to_string()
    } else {
        levels.join("; ")
    };
    println!("    SSTables: {levels}");
    println!(
        "    flushes {}, compactions {}, trivial moves {}, write amplification {:.2}",
        s.flushes, s.compactions, s.trivial_moves, s.write_amplification
    );
}

fn version(ts: u64) -> Version {
    Version {
        ts_micros: ts,
        node: NodeId(2),
    }
}

/// Runs the demo.
pub fn run(data_dir: Option<PathBuf>, keys: u64, value_bytes: usize) -> anyhow::Result<()> {
    let _temp;
    let dir = match data_dir {
        Some(d) => d,
        None => {
            let t = tempfile::TempDir::new()?;
            let p = t.path().to_path_buf();
            _temp = t;
            p
        }
    };
    let config = LsmConfig {
        memtable_bytes_max: 4 << 20,
        sync: SyncPolicy::Always,
        ..LsmConfig::default()
    };
    println!(
        "ringstore storage demo: one node's LSM engine in {}",
        dir.display()
    );
    println!();

    let store = Store::open(&dir, config.clone())?;
    let report = store.recovery_report().clone();
    if report.created {
        println!("1. Opened a new, empty database (MANIFEST created).");
    } else {
        println!(
            "1. Reopened existing data: {} tables, {} WAL batches replayed, {} torn bytes cut.",
            report.tables, report.batches_replayed, report.torn_bytes_truncated
        );
    }
    println!();

    let ts0 = wall_clock().0 * 1000;
    println!("2. PUT(\"user123\", \"Alice\") as a replica would apply it (sync policy: always):");
    let lsn = store.write(b"user123", Cell::put(version(ts0), b"Alice".to_vec()))?;
    println!("   WAL: PUT user123 = Alice   (batch LSN {lsn}, synced before the ACK)");
    println!("   MemTable: user123 -> Alice  (ts={ts0}, coordinator n2)");
    let stale = store.write(b"user123", Cell::put(version(ts0 - 10), b"Stale".to_vec()))?;
    let now = store
        .get(b"user123")?
        .and_then(|c| c.value)
        .unwrap_or_default();
    println!(
        "   An older PUT (ts={}, LSN {stale}) is logged but does not win: user123 -> {}",
        ts0 - 10,
        String::from_utf8_lossy(&now)
    );
    print_stats("engine now:", &store.stats());
    println!();

    println!("3. Loading {keys} keys of {value_bytes} bytes. Every write is synced before it is");
    println!("   acknowledged, but concurrent writers share one sync (group commit).");
    let started = Instant::now();
    let store = std::sync::Arc::new(store);
    let writers = 16u64;
    std::thread::scope(|s| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let store = store.clone();
                s.spawn(move || -> anyhow::Result<()> {
                    let mut i = w;
                    while i < keys {
                        let key = format!("key{i:08}");
                        let cell = Cell::put(version(ts0 + 1 + i), vec![b'v'; value_bytes]);
                        store.write(key.as_bytes(), cell)?;
                        i += writers;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("writer panicked"))??;
        }
        Ok(())
    })?;
    let secs = started.elapsed().as_secs_f64();
    let stats = store.stats();
    println!(
        "   {keys} synced writes from {writers} threads in {secs:.2} s ({:.0} writes/s, {:.1} writes per sync)",
        keys as f64 / secs,
        keys as f64 / stats.wal_syncs.max(1) as f64
    );
    print_stats("engine now:", &stats);
    println!();

    println!("4. Deleting every tenth key, in one atomic batch: each delete is a timestamped");
    println!("   tombstone.");
    let delete_ts = wall_clock().0 * 1000 + keys + 10;
    let batch = (0..keys)
        .step_by(10)
        .map(|i| {
            (
                format!("key{i:08}").into_bytes(),
                Cell::tombstone(version(delete_ts + i)),
            )
        })
        .collect();
    store.write_batch(batch)?;
    println!("5. Flushing the memtable to an SSTable and letting compaction settle:");
    store.flush()?;
    print_stats("engine now:", &store.stats());
    println!();

    let store =
        std::sync::Arc::into_inner(store).ok_or_else(|| anyhow::anyhow!("store still shared"))?;
    store.close()?;
    println!("6. Closed and reopened the engine (recovery from MANIFEST, SSTables and WAL):");
    let store = Store::open(&dir, config)?;
    let report = store.recovery_report();
    println!(
        "   {} tables opened, {} WAL batches replayed, {} orphan files deleted.",
        report.tables,
        report.batches_replayed,
        report.orphans_deleted.len()
    );
    let mut present = 0;
    let mut deleted = 0;
    for i in 0..keys {
        match store.get(format!("key{i:08}").as_bytes())? {
            Some(c) if c.is_tombstone() => deleted += 1,
            Some(_) => present += 1,
            None => anyhow::bail!("key{i:08} was lost"),
        }
    }
    println!("   Every key is back: {present} live, {deleted} deleted (tombstones).");
    let alice = store
        .get(b"user123")?
        .and_then(|c| c.value)
        .unwrap_or_default();
    println!("   user123 -> {}", String::from_utf8_lossy(&alice));
    store.close()?;
    Ok(())
}
