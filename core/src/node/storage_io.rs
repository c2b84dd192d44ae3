//! Running the node's [`StorageOp`]s on its two engines: the part every driver shares.
//!
//! A driver decides *when* and *on which thread* a storage operation runs (the simulator after
//! a modelled latency, the native node on its storage threads), but what an operation reads
//! and what it answers is defined once, here: [`run_read`] for the operations that only read,
//! [`StorageOp::into_write`] for the ones that write (each driver applies the batch its own way,
//! because durability is where drivers differ: the simulator models group commit, the native
//! node runs it with real `fdatasync`s).

use super::{StorageOp, StorageResult, StoreId, split_hint_key};
use crate::ring::{Range, key_token};
use crate::storage::{Cell, Disk, Lsm, StorageError};
use std::collections::BTreeMap;

/// Keys examined per scan step when looking for a range's keys (keys are ordered by bytes, not
/// by token, so a range's keys are spread over the whole key space).
const SCAN_STEP_KEYS: usize = 1024;

/// A page of a range scan: keys with their cells, and the cursor to continue from.
pub type RangePage = (Vec<(Vec<u8>, Cell)>, Option<Vec<u8>>);

/// What a writing [`StorageOp`] applies: the store, and the batch of keys and cells.
pub type WriteBatch = (StoreId, Vec<(Vec<u8>, Cell)>);

/// What the shared storage code needs to read from an engine: implemented by [`Lsm`] and by
/// hosts' thread-safe wrappers of it (which take their lock per call, so a long scan never
/// holds it throughout).
pub trait ReadStore {
    /// The newest cell for `key` (a tombstone if deleted), as [`Lsm::get`].
    fn get(&self, key: &[u8]) -> Result<Option<Cell>, StorageError>;
    /// Up to `limit` keys in `[start, end)` with their cells, tombstones included, as
    /// [`Lsm::scan`].
    fn scan(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Cell)>, StorageError>;
}

impl<D: Disk> ReadStore for Lsm<D> {
    fn get(&self, key: &[u8]) -> Result<Option<Cell>, StorageError> {
        Lsm::get(self, key)
    }

    fn scan(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Cell)>, StorageError> {
        Lsm::scan(self, start, end, limit)
    }
}

impl StorageOp {
    /// Whether the operation writes (then [`StorageOp::into_write`] gives its batch).
    pub fn is_write(&self) -> bool {
        matches!(self, StorageOp::Write { .. } | StorageOp::WriteBatch { .. })
    }

    /// The store and batch a writing operation applies, or the operation back if it only
    /// reads (run it with [`run_read`]).
    pub fn into_write(self) -> Result<WriteBatch, StorageOp> {
        match self {
            StorageOp::Write { store, key, cell } => Ok((store, vec![(key, cell)])),
            StorageOp::WriteBatch { entries } => Ok((StoreId::Data, entries)),
            other => Err(other),
        }
    }
}

/// Runs an operation that only reads, on the node's data and hint stores. A writing operation
/// is answered with [`StorageResult::Failed`] (drivers apply those themselves).
pub fn run_read(data: &impl ReadStore, hints: &impl ReadStore, op: StorageOp) -> StorageResult {
    let failed = |e: StorageError| StorageResult::Failed(e.to_string());
    match op {
        StorageOp::Read { key } => data.get(&key).map_or_else(failed, StorageResult::Read),
        StorageOp::ScanRange {
            range,
            after,
            limit,
        } => match scan_range(data, range, after, limit) {
            Ok((entries, next)) => StorageResult::Range { entries, next },
            Err(e) => failed(e),
        },
        StorageOp::ScanHints { owner, limit } => {
            let start = owner.0.to_be_bytes();
            let end = owner.0.checked_add(1).map(|e| e.to_be_bytes());
            match hints.scan(&start, end.as_ref().map(|e| &e[..]), usize::MAX) {
                Ok(entries) => {
                    let live = entries.into_iter().filter(|(_, c)| !c.is_tombstone());
                    StorageResult::Hints(live.take(limit).collect())
                }
                Err(e) => failed(e),
            }
        }
        StorageOp::CountHints => StorageResult::HintCounts(count_hints(hints)),
        StorageOp::Write { .. } | StorageOp::WriteBatch { .. } => {
            StorageResult::Failed("a write is not a read".to_string())
        }
    }
}

/// Live hints per owner (a store that cannot be scanned counts as empty: handoff then resumes
/// as hints are written).
fn count_hints(hints: &impl ReadStore) -> BTreeMap<crate::NodeId, u64> {
    let mut counts = BTreeMap::new();
    for (key, cell) in hints.scan(&[0], None, usize::MAX).unwrap_or_default() {
        if let (false, Some((owner, _))) = (cell.is_tombstone(), split_hint_key(&key)) {
            *counts.entry(owner).or_insert(0u64) += 1;
        }
    }
    counts
}

/// One page of the keys of `store` whose token is in `range`, after `after`: at most `limit`
/// keys, and the cursor to continue from (`None` when the key space is exhausted).
pub fn scan_range(
    store: &impl ReadStore,
    range: Range,
    after: Option<Vec<u8>>,
    limit: usize,
) -> Result<RangePage, StorageError> {
    let mut cursor = after;
    let mut out = Vec::new();
    loop {
        // Start just after the cursor: the smallest key greater than it is cursor ++ [0].
        let start = match &cursor {
            Some(k) => {
                let mut s = k.clone();
                s.push(0);
                s
            }
            None => vec![0],
        };
        let page = store.scan(&start, None, SCAN_STEP_KEYS)?;
        let exhausted = page.len() < SCAN_STEP_KEYS;
        for (key, cell) in page {
            cursor = Some(key.clone());
            if range.contains(key_token(&key)) {
                out.push((key, cell));
                if out.len() >= limit {
                    return Ok((out, cursor));
                }
            }
        }
        if exhausted {
            return Ok((out, None));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeId;
    use crate::node::hint_key;
    use crate::ring::Token;
    use crate::storage::{LsmConfig, SimDisk, Version};

    fn lsm(seed: u64) -> Lsm<SimDisk> {
        Lsm::open(SimDisk::new(seed), LsmConfig::small_for_tests())
            .unwrap()
            .0
    }

    fn v(ts: u64) -> Version {
        Version {
            ts,
            node: NodeId(1),
        }
    }

    #[test]
    fn reads_answer_from_the_right_store() {
        let mut data = lsm(1);
        let mut hints = lsm(2);
        data.write(b"k", Cell::put(v(1), b"data".to_vec())).unwrap();
        hints
            .write(&hint_key(NodeId(5), b"h1"), Cell::put(v(1), b"x".to_vec()))
            .unwrap();
        hints
            .write(&hint_key(NodeId(5), b"h2"), Cell::tombstone(v(2)))
            .unwrap();
        hints
            .write(&hint_key(NodeId(6), b"h3"), Cell::put(v(3), b"y".to_vec()))
            .unwrap();
        let read = run_read(&data, &hints, StorageOp::Read { key: b"k".to_vec() });
        assert_eq!(
            read,
            StorageResult::Read(Some(Cell::put(v(1), b"data".to_vec())))
        );
        let counts = run_read(&data, &hints, StorageOp::CountHints);
        let expected: BTreeMap<NodeId, u64> = [(NodeId(5), 1), (NodeId(6), 1)].into();
        assert_eq!(counts, StorageResult::HintCounts(expected));
        let scan = StorageOp::ScanHints {
            owner: NodeId(5),
            limit: 10,
        };
        let StorageResult::Hints(live) = run_read(&data, &hints, scan) else {
            panic!("not hints");
        };
        assert_eq!(live.len(), 1, "the consumed hint is not offered again");
        assert_eq!(split_hint_key(&live[0].0), Some((NodeId(5), &b"h1"[..])));
        let write = StorageOp::Write {
            store: StoreId::Data,
            key: b"k".to_vec(),
            cell: Cell::tombstone(v(9)),
        };
        assert!(write.is_write());
        assert!(matches!(
            run_read(&data, &hints, write),
            StorageResult::Failed(_)
        ));
    }

    #[test]
    fn a_range_scan_pages_through_exactly_the_range() {
        let mut data = lsm(3);
        let keys: Vec<Vec<u8>> = (0..3000).map(|i| format!("key{i}").into_bytes()).collect();
        for k in &keys {
            data.write(k, Cell::put(v(1), b"v".to_vec())).unwrap();
            data.run_background(crate::Millis(0)).unwrap();
        }
        let range = Range::new(Token(0), Token(u64::MAX / 3));
        let mut expected: Vec<&Vec<u8>> = keys
            .iter()
            .filter(|k| range.contains(key_token(k)))
            .collect();
        expected.sort();
        let mut got = Vec::new();
        let mut after = None;
        loop {
            let (page, next) = scan_range(&data, range, after, 100).unwrap();
            assert!(page.len() <= 100);
            got.extend(page.into_iter().map(|(k, _)| k));
            match next {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        let got: Vec<&Vec<u8>> = got.iter().collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn into_write_gives_the_batch_and_store() {
        let cell = Cell::put(v(1), b"v".to_vec());
        let op = StorageOp::Write {
            store: StoreId::Hints,
            key: b"k".to_vec(),
            cell: cell.clone(),
        };
        assert_eq!(
            op.into_write(),
            Ok((StoreId::Hints, vec![(b"k".to_vec(), cell.clone())]))
        );
        let batch = StorageOp::WriteBatch {
            entries: vec![(b"a".to_vec(), cell.clone())],
        };
        assert_eq!(
            batch.into_write(),
            Ok((StoreId::Data, vec![(b"a".to_vec(), cell)]))
        );
        assert_eq!(
            StorageOp::CountHints.into_write(),
            Err(StorageOp::CountHints)
        );
    }
}
