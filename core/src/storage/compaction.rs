//! Leveled compaction: which tables to merge next (a pure function of the level layout), and
//! the k-way merge that keeps one version per key.
//!
//! L0 holds flushed tables whose key ranges overlap. L1 and deeper each hold tables with
//! disjoint key ranges, and level `n` may hold about `l1_bytes_max × multiplierⁿ⁻¹` bytes. When
//! L0 has `l0_trigger` tables, all of them merge with the L1 tables they overlap; when a deeper
//! level is over its size, one of its tables (chosen round-robin by key) merges with the
//! overlapping tables one level down. A table with nothing to overlap is moved down without
//! rewriting it. `ARCHITECTURE.md` says why leveled rather than size-tiered.
//!
//! The merge keeps, per key, the cell with the greatest version among its inputs, so shadowed
//! versions disappear. A tombstone is dropped only when its grace period has passed *and* no
//! table or memtable outside the compaction that could hold the key has a version as old as it
//! (the `purge_below` horizon): otherwise an older value could reappear.

use super::StorageError;
use super::cell::{Cell, Version};
use super::manifest::LEVELS;
use super::sstable::TableMeta;
use std::cmp::Ordering;
use std::collections::{BTreeSet, BinaryHeap};

/// Knobs of the leveled policy.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CompactionConfig {
    /// L0 tables that trigger an L0 → L1 compaction.
    pub l0_trigger: usize,
    /// Target size of L1, in bytes.
    pub l1_bytes_max: u64,
    /// Each level is this many times larger than the one above.
    pub level_multiplier: u64,
    /// Compaction outputs are cut into tables of about this size.
    pub table_bytes_target: u64,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        CompactionConfig {
            l0_trigger: 4,
            l1_bytes_max: 64 << 20,
            level_multiplier: 10,
            table_bytes_target: 8 << 20,
        }
    }
}

impl CompactionConfig {
    /// The size target of `level` (≥ 1).
    pub fn level_bytes_max(&self, level: usize) -> u64 {
        let mut target = self.l1_bytes_max;
        for _ in 1..level {
            target = target.saturating_mul(self.level_multiplier);
        }
        target
    }
}

/// A compaction chosen by [`pick_compaction`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactionTask {
    /// The level the inputs come from.
    pub level: usize,
    /// The level outputs go to (`level + 1`).
    pub output_level: usize,
    /// Input table ids at `level`.
    pub inputs: Vec<u64>,
    /// Input table ids at `output_level` that overlap the inputs.
    pub overlapping: Vec<u64>,
    /// The level's score that triggered it (count or size over its target), ×100.
    pub score_percent: u64,
}

impl CompactionTask {
    /// A single table with nothing below to merge with: it can move without being rewritten.
    pub fn is_trivial_move(&self) -> bool {
        self.inputs.len() == 1 && self.overlapping.is_empty()
    }

    /// Every input table id.
    pub fn all_inputs(&self) -> impl Iterator<Item = u64> + '_ {
        self.inputs.iter().chain(&self.overlapping).copied()
    }
}

fn overlaps(t: &TableMeta, min: &[u8], max: &[u8]) -> bool {
    t.min_key.as_slice() <= max && t.max_key.as_slice() >= min
}

/// Chooses the next compaction for `levels` (L0 oldest first, deeper levels sorted by key), or
/// `None` when every level is within its target. Tables in `busy` belong to a running job.
/// `cursors[level]` is the largest key last compacted out of that level (round-robin).
pub fn pick_compaction(
    levels: &[Vec<TableMeta>],
    busy: &BTreeSet<u64>,
    config: &CompactionConfig,
    cursors: &[Vec<u8>],
) -> Option<CompactionTask> {
    let mut scores: Vec<(u64, usize)> = Vec::new();
    if let Some(l0) = levels.first() {
        let score = (l0.len() as u64 * 100) / config.l0_trigger.max(1) as u64;
        scores.push((score, 0));
    }
    for (level, tables) in levels.iter().enumerate().take(LEVELS - 1).skip(1) {
        let bytes: u64 = tables.iter().map(|t| t.file_bytes).sum();
        scores.push((
            bytes.saturating_mul(100) / config.level_bytes_max(level).max(1),
            level,
        ));
    }
    // Highest score first; on ties the shallower level.
    scores.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (score, level) in scores {
        if score < 100 {
            break;
        }
        let tables = &levels[level];
        let next = levels.get(level + 1)?;
        let inputs: Vec<&TableMeta> = if level == 0 {
            if tables.iter().any(|t| busy.contains(&t.id)) {
                continue;
            }
            tables.iter().collect()
        } else {
            let cursor = cursors.get(level).map(Vec::as_slice).unwrap_or(&[]);
            let start = tables
                .iter()
                .position(|t| t.min_key.as_slice() > cursor)
                .unwrap_or(0);
            let candidate = (0..tables.len())
                .map(|i| &tables[(start + i) % tables.len()])
                .find(|t| {
                    !busy.contains(&t.id)
                        && !next
                            .iter()
                            .any(|n| busy.contains(&n.id) && overlaps(n, &t.min_key, &t.max_key))
                });
            match candidate {
                Some(t) => vec![t],
                None => continue,
            }
        };
        let Some(min) = inputs.iter().map(|t| t.min_key.as_slice()).min() else {
            continue;
        };
        let Some(max) = inputs.iter().map(|t| t.max_key.as_slice()).max() else {
            continue;
        };
        let overlapping: Vec<u64> = next
            .iter()
            .filter(|t| overlaps(t, min, max))
            .map(|t| t.id)
            .collect();
        if overlapping.iter().any(|id| busy.contains(id)) {
            continue;
        }
        return Some(CompactionTask {
            level,
            output_level: level + 1,
            inputs: inputs.iter().map(|t| t.id).collect(),
            overlapping,
            score_percent: score,
        });
    }
    None
}

/// A boxed source of a merge: an ordered stream of entries.
pub type Source<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Cell), StorageError>> + 'a>;

struct HeapItem {
    key: Vec<u8>,
    cell: Cell,
    source: usize,
}

impl PartialEq for HeapItem {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for HeapItem {}
impl PartialOrd for HeapItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for HeapItem {
    // BinaryHeap is a max-heap: reverse so the smallest key (then lowest source) pops first.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .key
            .cmp(&self.key)
            .then(other.source.cmp(&self.source))
    }
}

/// Merges ordered sources into one ordered stream with one entry per key: the greatest version.
pub struct MergeIter<I> {
    sources: Vec<I>,
    heap: BinaryHeap<HeapItem>,
    failed: bool,
    started: bool,
}

impl<I> MergeIter<I>
where
    I: Iterator<Item = Result<(Vec<u8>, Cell), StorageError>>,
{
    /// Merges `sources`.
    pub fn new(sources: Vec<I>) -> Self {
        MergeIter {
            sources,
            heap: BinaryHeap::new(),
            failed: false,
            started: false,
        }
    }

    fn pull(&mut self, source: usize) -> Result<(), StorageError> {
        if let Some(next) = self.sources[source].next() {
            let (key, cell) = next?;
            self.heap.push(HeapItem { key, cell, source });
        }
        Ok(())
    }
}

impl<I> Iterator for MergeIter<I>
where
    I: Iterator<Item = Result<(Vec<u8>, Cell), StorageError>>,
{
    type Item = Result<(Vec<u8>, Cell), StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let step = (|| {
            if !self.started {
                self.started = true;
                for i in 0..self.sources.len() {
                    self.pull(i)?;
                }
            }
            let Some(first) = self.heap.pop() else {
                return Ok(None);
            };
            self.pull(first.source)?;
            let mut best = first.cell;
            while self.heap.peek().is_some_and(|top| top.key == first.key) {
                if let Some(dup) = self.heap.pop() {
                    self.pull(dup.source)?;
                    if dup.cell.version > best.version {
                        best = dup.cell;
                    }
                }
            }
            Ok(Some((first.key, best)))
        })();
        match step {
            Ok(item) => item.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Whether a tombstone may be dropped by a compaction running at `now_ms`.
pub fn tombstone_purgeable(
    cell: &Cell,
    purge_below: Option<Version>,
    now_ms: u64,
    grace_ms: u64,
) -> bool {
    cell.is_tombstone()
        && cell.version.ts_micros / 1000 + grace_ms <= now_ms
        && purge_below.is_none_or(|horizon| cell.version < horizon)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeId;

    fn meta(id: u64, min: &str, max: &str, bytes: u64) -> TableMeta {
        TableMeta {
            id,
            file_bytes: bytes,
            entries: 1,
            tombstones: 0,
            min_key: min.as_bytes().to_vec(),
            max_key: max.as_bytes().to_vec(),
            min_version: Version::default(),
            max_version: Version::default(),
        }
    }

    fn config() -> CompactionConfig {
        CompactionConfig {
            l0_trigger: 2,
            l1_bytes_max: 100,
            level_multiplier: 10,
            table_bytes_target: 50,
        }
    }

    fn levels(l0: Vec<TableMeta>, l1: Vec<TableMeta>, l2: Vec<TableMeta>) -> Vec<Vec<TableMeta>> {
        let mut levels = vec![Vec::new(); LEVELS];
        levels[0] = l0;
        levels[1] = l1;
        levels[2] = l2;
        levels
    }

    #[test]
    fn nothing_to_do_below_targets() {
        let l = levels(
            vec![meta(1, "a", "z", 10)],
            vec![meta(2, "a", "m", 50)],
            vec![],
        );
        assert_eq!(pick_compaction(&l, &BTreeSet::new(), &config(), &[]), None);
    }

    #[test]
    fn full_l0_merges_all_of_it_with_overlapping_l1() {
        let l = levels(
            vec![meta(5, "c", "f", 10), meta(6, "e", "h", 10)],
            vec![
                meta(1, "a", "b", 10),
                meta(2, "d", "g", 10),
                meta(3, "x", "z", 10),
            ],
            vec![],
        );
        let task = pick_compaction(&l, &BTreeSet::new(), &config(), &[]).unwrap();
        assert_eq!(
            (task.level, task.inputs.clone(), task.overlapping.clone()),
            (0, vec![5, 6], vec![2])
        );
        assert!(!task.is_trivial_move());
    }

    #[test]
    fn busy_tables_are_left_alone() {
        let l = levels(
            vec![meta(5, "c", "f", 10), meta(6, "e", "h", 10)],
            vec![meta(2, "d", "g", 10)],
            vec![],
        );
        assert_eq!(
            pick_compaction(&l, &BTreeSet::from([2]), &config(), &[]),
            None
        );
        assert_eq!(
            pick_compaction(&l, &BTreeSet::from([5]), &config(), &[]),
            None
        );
    }

    #[test]
    fn oversized_level_compacts_round_robin_and_moves_when_nothing_overlaps() {
        let l = levels(
            vec![],
            vec![meta(1, "a", "c", 60), meta(2, "d", "f", 60)],
            vec![meta(9, "e", "e", 10)],
        );
        let first = pick_compaction(&l, &BTreeSet::new(), &config(), &[]).unwrap();
        assert_eq!((first.level, first.inputs.clone()), (1, vec![1]));
        assert!(first.is_trivial_move());
        let cursors = vec![Vec::new(), b"c".to_vec()];
        let second = pick_compaction(&l, &BTreeSet::new(), &config(), &cursors).unwrap();
        assert_eq!(
            (second.inputs.clone(), second.overlapping.clone()),
            (vec![2], vec![9])
        );
    }

    fn v(ts: u64) -> Version {
        Version {
            ts_micros: ts,
            node: NodeId(1),
        }
    }

    fn src(entries: Vec<(&'static str, Cell)>) -> Source<'static> {
        Box::new(
            entries
                .into_iter()
                .map(|(k, c)| Ok((k.as_bytes().to_vec(), c))),
        )
    }

    #[test]
    fn merge_keeps_the_greatest_version_whatever_the_source() {
        let merged: Vec<_> = MergeIter::new(vec![
            src(vec![
                ("a", Cell::put(v(1), b"old".to_vec())),
                ("c", Cell::tombstone(v(9))),
            ]),
            src(vec![
                ("a", Cell::put(v(5), b"new".to_vec())),
                ("b", Cell::put(v(2), b"b".to_vec())),
            ]),
            src(vec![("c", Cell::put(v(3), b"c".to_vec()))]),
        ])
        .map(Result::unwrap)
        .collect();
        assert_eq!(
            merged,
            vec![
                (b"a".to_vec(), Cell::put(v(5), b"new".to_vec())),
                (b"b".to_vec(), Cell::put(v(2), b"b".to_vec())),
                (b"c".to_vec(), Cell::tombstone(v(9))),
            ]
        );
    }

    #[test]
    fn merge_stops_after_a_source_error() {
        let failing: Source<'static> = Box::new(
            vec![
                Err(StorageError::StaleJob),
                Ok((b"z".to_vec(), Cell::tombstone(v(1)))),
            ]
            .into_iter(),
        );
        let mut merged = MergeIter::new(vec![failing]);
        assert!(merged.next().unwrap().is_err());
        assert!(merged.next().is_none());
    }

    #[test]
    fn tombstones_purge_only_after_grace_and_below_the_horizon() {
        let t = Cell::tombstone(v(10_000)); // written at 10 ms
        assert!(!tombstone_purgeable(&t, None, 15, 10));
        assert!(tombstone_purgeable(&t, None, 20, 10));
        assert!(!tombstone_purgeable(&t, Some(v(10_000)), 20, 10));
        assert!(tombstone_purgeable(&t, Some(v(10_001)), 20, 10));
        assert!(!tombstone_purgeable(&Cell::put(v(1), vec![]), None, 99, 0));
    }
}
