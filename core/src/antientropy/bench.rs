//! The byte-count benchmark of a repair session: two large replicas of the whole ring that
//! differ in a few keys, repaired by one session, against the bytes of copying everything.
//! Used by `examples/antientropy_bytes.rs` and tested on a small size.

use super::AeError;
use super::msg::postcard_len;
use super::replica::{Replica, SyncReport, sync_pair};
use crate::NodeId;
use crate::ring::{Range, Token};
use crate::storage::{Cell, Version};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{xxh3_64, xxh3_128};

/// Bytes of each benchmark key.
const KEY_BYTES: usize = 16;
/// Bytes of each benchmark value.
const VALUE_BYTES: usize = 100;

/// What one benchmark run measured.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// Keys on each replica.
    pub keys: u64,
    /// Keys that differ between the two.
    pub differing: u64,
    /// The trees' depth.
    pub depth: u8,
    /// Most entries under one leaf.
    pub leaf_entries_max: u32,
    /// Memory of one tree.
    pub tree_bytes: u64,
    /// Postcard-encoded bytes of every `(key, cell)` of one replica: what a full copy sends.
    pub full_copy_bytes: u64,
    /// The session's counts.
    pub sync: SyncReport,
}

impl BenchReport {
    /// Bytes the session exchanged over the bytes of a full copy.
    pub fn ratio(&self) -> f64 {
        self.sync.bytes_exchanged() as f64 / self.full_copy_bytes.max(1) as f64
    }
}

/// Benchmark entry `i`: a 16-byte key and a 100-byte value, both derived from `i`, at a
/// version derived from `i`.
pub fn bench_entry(i: u64) -> (Vec<u8>, Cell) {
    let key = xxh3_128(&i.to_le_bytes()).to_le_bytes().to_vec();
    let seed = xxh3_64(&key).to_le_bytes();
    let value: Vec<u8> = (0..VALUE_BYTES)
        .map(|j| seed[j % 8].wrapping_add(j as u8))
        .collect();
    debug_assert_eq!(key.len(), KEY_BYTES);
    let version = Version {
        ts_micros: 1_000_000 + i,
        node: NodeId(1),
    };
    (key, Cell::put(version, value))
}

/// Two replicas of the whole ring with trees of `depth`, holding `keys` entries that agree
/// except for `differing` of them, spread over the key set and of three kinds in turn: a newer
/// value on `b`, a newer tombstone on `a`, a key only `b` has.
pub fn bench_replicas(keys: u64, differing: u64, depth: u8) -> Result<(Replica, Replica), AeError> {
    let range = Range::full(Token(0));
    let stride = keys / differing.max(1);
    let is_diff =
        |i: u64| differing > 0 && stride > 0 && i.is_multiple_of(stride) && i / stride < differing;
    let a_entries = (0..keys).filter_map(|i| {
        let (key, cell) = bench_entry(i);
        match (is_diff(i), (i / stride.max(1)) % 3) {
            (true, 1) => Some((key, Cell::tombstone(bump(cell.version)))),
            (true, 2) => None,
            _ => Some((key, cell)),
        }
    });
    let a = Replica::from_entries(range, depth, a_entries)?;
    let b_entries = (0..keys).map(|i| {
        let (key, cell) = bench_entry(i);
        match (is_diff(i), (i / stride.max(1)) % 3) {
            (true, 0) => {
                let newer = Cell::put(bump(cell.version), b"newer".to_vec());
                (key, newer)
            }
            _ => (key, cell),
        }
    });
    let b = Replica::from_entries(range, depth, b_entries)?;
    Ok((a, b))
}

fn bump(v: Version) -> Version {
    Version {
        ts_micros: v.ts_micros + 1_000_000_000,
        node: v.node,
    }
}

/// Postcard-encoded bytes of every `(key, cell)` of `replica`.
pub fn full_copy_bytes(replica: &Replica) -> u64 {
    replica
        .entries()
        .map(|(k, c)| postcard_len(&(k, c)) as u64)
        .sum()
}

/// Repairs `a` and `b` with [`sync_pair`] and reports the bytes against a full copy of `a`.
/// Fails if the session fails or if the replicas do not hold the same entries afterwards.
pub fn bench_bytes(
    a: &mut Replica,
    b: &mut Replica,
    differing: u64,
) -> Result<BenchReport, AeError> {
    let full_copy_bytes = full_copy_bytes(a);
    let tree = a.tree().stats();
    let keys = a.len().max(b.len()) as u64;
    let sync = sync_pair(a, b)?;
    if a.tree().root() != b.tree().root() || a.len() != b.len() {
        return Err(AeError::Protocol(
            "replicas differ after the session".into(),
        ));
    }
    Ok(BenchReport {
        keys,
        differing,
        depth: tree.depth,
        leaf_entries_max: tree.leaf_entries_max,
        tree_bytes: tree.bytes,
        full_copy_bytes,
        sync,
    })
}
