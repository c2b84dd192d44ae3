//! Running the node's [`StorageOp`]s on its two engines: the part every driver shares.
//!
//! A driver decides *when* and *on which thread* a storage operation runs (the simulator after
//! a modelled latency, the native node on its node task or its storage threads), but what an
//! operation does and how it completes is decided once, here:
//!
//! * [`run_read`] answers the operations that only read.
//! * [`StorageOp::into_write`] gives the batch of a writing one, and [`apply_write`] applies
//!   it: [`WriteOutcome::Applied`] says whether the write completes now or once a sync of its
//!   store covers it (the [`SyncPolicy`](crate::storage::SyncPolicy) decides);
//!   [`WriteOutcome::Stalled`] hands the batch back when writes wait for flushes
//!   (back-pressure: the driver retries it once a background job is installed, it never
//!   compacts inline); [`WriteOutcome::Failed`] refuses it.
//! * [`SyncWaiters`] keeps, per store, the writes waiting for that store's next sync (group
//!   commit), and [`sync_completions`] completes them with the outcome of *their* store's sync:
//!   one store's failed sync never fails the other store's writes.
//!
//! What differs between drivers is only time and threads: the simulator runs a sync as an event
//! after a modelled latency, the native node runs the `fdatasync` on a storage thread.

use super::{StorageOp, StorageResult, StoreId, split_hint_key};
use crate::ring::{Range, key_token};
use crate::storage::{Cell, Disk, Lsm, Lsn, StorageError, StorageFailure};
use std::collections::BTreeSet;

/// Keys examined per scan step when looking for a range's keys (keys are ordered by bytes, not
/// by token, so a range's keys are spread over the whole key space).
const SCAN_STEP_KEYS: usize = 4096;

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

    /// The keys from `start` on for which `keep` holds, examining a bounded number of keys
    /// (about `examine_max`) and keeping at most `keep_max`, and the key (inclusive) to
    /// resume from, `None` at the end of the key space: as [`Lsm::scan_filtered`]. The default
    /// filters a plain scan; engines override it to skip copying the keys they refuse.
    fn scan_filtered(
        &self,
        start: &[u8],
        examine_max: usize,
        keep_max: usize,
        keep: &dyn Fn(&[u8]) -> bool,
    ) -> Result<RangePage, StorageError> {
        let examine_max = examine_max.max(1);
        let mut page = self.scan(start, None, examine_max.saturating_add(1))?;
        let mut resume = (page.len() > examine_max)
            .then(|| page.pop().map(|(k, _)| k))
            .flatten();
        page.retain(|(k, _)| keep(k));
        if page.len() > keep_max.max(1) {
            resume = page.drain(keep_max.max(1)..).next().map(|(k, _)| k);
        }
        Ok((page, resume))
    }
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

    fn scan_filtered(
        &self,
        start: &[u8],
        examine_max: usize,
        keep_max: usize,
        keep: &dyn Fn(&[u8]) -> bool,
    ) -> Result<RangePage, StorageError> {
        Lsm::scan_filtered(self, start, None, examine_max, keep_max, keep)
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

/// What [`apply_write`] did with a batch.
#[derive(Debug)]
pub enum WriteOutcome {
    /// Applied (WAL and memtable) with this LSN. With `await_sync` the write completes once a
    /// sync of its store covers `lsn` ([`SyncWaiters`]); without, it completes now
    /// ([`StorageResult::Written`]).
    Applied {
        /// The batch's LSN.
        lsn: Lsn,
        /// Whether the write waits for a sync before it completes.
        await_sync: bool,
    },
    /// Not applied: writes are stalled behind flushes. The batch, back: apply it again once a
    /// background job has been installed.
    Stalled(Vec<(Vec<u8>, Cell)>),
    /// Refused: nothing was applied, unless the error says state may have changed.
    Failed(StorageError),
}

/// Applies a writing operation's batch to `lsm`: the one decision of what a write does and how
/// it completes, for every driver. `new_key` is called for each key the active memtable did not
/// hold before (a host's own key index).
pub fn apply_write<D: Disk>(
    lsm: &mut Lsm<D>,
    batch: Vec<(Vec<u8>, Cell)>,
    new_key: impl FnMut(&[u8]),
) -> WriteOutcome {
    if lsm.write_stalled() {
        return WriteOutcome::Stalled(batch);
    }
    match lsm.write_batch_noting_new(batch, new_key) {
        Ok(lsn) => WriteOutcome::Applied {
            lsn,
            await_sync: lsm.config().sync.acks_after_sync(),
        },
        Err(e) => WriteOutcome::Failed(e),
    }
}

/// The writes waiting for each store's next sync, with the LSN that sync must reach.
#[derive(Clone, Debug, Default)]
pub struct SyncWaiters {
    data: (Vec<u64>, Lsn),
    hints: (Vec<u64>, Lsn),
}

impl SyncWaiters {
    fn of(&mut self, store: StoreId) -> &mut (Vec<u64>, Lsn) {
        match store {
            StoreId::Data => &mut self.data,
            StoreId::Hints => &mut self.hints,
        }
    }

    /// Operation `op` applied a batch with `lsn` to `store` and waits for a sync covering it.
    pub fn wait(&mut self, store: StoreId, op: u64, lsn: Lsn) {
        let (ops, upto) = self.of(store);
        ops.push(op);
        *upto = (*upto).max(lsn);
    }

    /// Whether writes of `store` are waiting.
    pub fn waiting(&self, store: StoreId) -> bool {
        match store {
            StoreId::Data => !self.data.0.is_empty(),
            StoreId::Hints => !self.hints.0.is_empty(),
        }
    }

    /// The writes waiting for `store`'s sync and the LSN it must reach; none wait afterwards.
    pub fn take(&mut self, store: StoreId) -> (Vec<u64>, Lsn) {
        std::mem::take(self.of(store))
    }

    /// Forgets every waiting write (the engines are gone: a crash).
    pub fn clear(&mut self) {
        *self = SyncWaiters::default();
    }
}

/// Completes the writes that waited for one store's sync with that sync's outcome.
pub fn sync_completions(
    ops: Vec<u64>,
    result: &Result<(), StorageError>,
) -> Vec<(u64, StorageResult)> {
    let result = match result {
        Ok(()) => StorageResult::Written,
        Err(e) => StorageResult::Failed(StorageFailure::from(e)),
    };
    ops.into_iter().map(|op| (op, result.clone())).collect()
}

/// Runs an operation that only reads, on the node's data and hint stores. A writing operation
/// is answered with [`StorageResult::Failed`] (drivers apply those themselves).
pub fn run_read(data: &impl ReadStore, hints: &impl ReadStore, op: StorageOp) -> StorageResult {
    let failed = |e: StorageError| StorageResult::Failed(StorageFailure::from(&e));
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
        StorageOp::CountHints => StorageResult::HintKeys(live_hint_keys(hints)),
        StorageOp::Write { .. } | StorageOp::WriteBatch { .. } => {
            StorageResult::Failed(StorageFailure::Refused("a write is not a read".to_string()))
        }
    }
}

/// The hint-store keys of the live hints (a store that cannot be scanned counts as empty:
/// handoff then resumes as hints are written).
fn live_hint_keys(hints: &impl ReadStore) -> BTreeSet<Vec<u8>> {
    let live = hints.scan(&[0], None, usize::MAX).unwrap_or_default();
    live.into_iter()
        .filter(|(key, cell)| !cell.is_tombstone() && split_hint_key(key).is_some())
        .map(|(key, _)| key)
        .collect()
}

/// One page of the keys of `store` whose token is in `range`, after `after`: at most `limit`
/// keys, and the cursor to continue from (`None` when the key space is exhausted).
pub fn scan_range(
    store: &impl ReadStore,
    range: Range,
    after: Option<Vec<u8>>,
    limit: usize,
) -> Result<RangePage, StorageError> {
    let mut pages = scan_ranges(store, vec![(range, after, limit)])?;
    Ok(pages.pop().unwrap_or((Vec::new(), None)))
}

/// What [`scan_range`] answers for each `(range, after, limit)` of `scans`, in order, from one
/// walk of the key space for all of them: a token range's keys are spread over the whole key
/// space, so every range scan walks all of it, and a host holding several scans at once (an
/// anti-entropy session loads several leaves together) pays for one walk instead of one each.
pub fn scan_ranges(
    store: &impl ReadStore,
    scans: Vec<(Range, Option<Vec<u8>>, usize)>,
) -> Result<Vec<RangePage>, StorageError> {
    struct Scan {
        range: Range,
        /// Keys from this one on (inclusive) belong to the page.
        start: Vec<u8>,
        limit: usize,
        out: Vec<(Vec<u8>, Cell)>,
        cursor: Option<Vec<u8>>,
        done: bool,
    }
    let mut scans: Vec<Scan> = scans
        .into_iter()
        .map(|(range, after, limit)| Scan {
            range,
            // Just after the cursor: the smallest key greater than it is cursor ++ [0].
            start: match after {
                Some(mut k) => {
                    k.push(0);
                    k
                }
                None => vec![0],
            },
            limit,
            out: Vec::new(),
            cursor: None,
            done: false,
        })
        .collect();
    let mut at = scans.iter().map(|s| s.start.clone()).min();
    while let Some(from) = at.take() {
        let wanted = |key: &[u8]| {
            let token = key_token(key);
            scans
                .iter()
                .any(|s| !s.done && key >= s.start.as_slice() && s.range.contains(token))
        };
        // Enough for the scan that wants the most: a dense range (every key kept) copies about
        // one page, not a whole step.
        let keep_max = scans
            .iter()
            .filter(|s| !s.done)
            .map(|s| s.limit.max(1).saturating_sub(s.out.len()))
            .max()
            .unwrap_or(1);
        let (page, resume) = store.scan_filtered(&from, SCAN_STEP_KEYS, keep_max, &wanted)?;
        for (key, cell) in page {
            let token = key_token(&key);
            for s in &mut scans {
                if s.done || key < s.start || !s.range.contains(token) {
                    continue;
                }
                s.out.push((key.clone(), cell.clone()));
                if s.out.len() >= s.limit {
                    s.cursor = Some(key.clone());
                    s.done = true;
                }
            }
        }
        match resume {
            Some(next) if scans.iter().any(|s| !s.done) => at = Some(next),
            _ => {}
        }
    }
    Ok(scans.into_iter().map(|s| (s.out, s.cursor)).collect())
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

    #[test]
    fn apply_write_says_how_a_write_completes_and_hands_back_a_stalled_batch() {
        let put = |i: u64| {
            let version = Version {
                ts_micros: i,
                node: NodeId(1),
            };
            (
                format!("k{i:04}").into_bytes(),
                Cell::put(version, vec![7; 300]),
            )
        };
        for (sync, await_sync) in [
            (crate::storage::SyncPolicy::Always, true),
            (crate::storage::SyncPolicy::Never, false),
        ] {
            let config = LsmConfig {
                sync,
                ..LsmConfig::small_for_tests()
            };
            let (mut lsm, _) = Lsm::open(SimDisk::new(1), config).unwrap();
            let mut stalled = None;
            for i in 0..10_000 {
                match apply_write(&mut lsm, vec![put(i)], |_| {}) {
                    WriteOutcome::Applied { lsn, await_sync: a } => {
                        assert_eq!((lsn, a), (i + 1, await_sync));
                    }
                    WriteOutcome::Stalled(batch) => {
                        stalled = Some((i, batch));
                        break;
                    }
                    WriteOutcome::Failed(e) => panic!("{e}"),
                }
            }
            // No inline compaction: the batch comes back, unapplied, until a flush is installed.
            let (i, batch) = stalled.expect("writes stall behind flushes");
            assert_eq!(batch, vec![put(i)]);
            assert_eq!(lsm.get(&put(i).0).unwrap(), None);
            lsm.run_background(crate::Millis(0)).unwrap();
            assert!(matches!(
                apply_write(&mut lsm, batch, |_| {}),
                WriteOutcome::Applied { .. }
            ));
        }
    }

    #[test]
    fn a_failed_sync_completes_only_its_own_stores_writes() {
        let mut waiters = SyncWaiters::default();
        waiters.wait(StoreId::Data, 1, 10);
        waiters.wait(StoreId::Hints, 2, 4);
        waiters.wait(StoreId::Data, 3, 12);
        let (data_ops, upto) = waiters.take(StoreId::Data);
        assert_eq!((data_ops.clone(), upto), (vec![1, 3], 12));
        assert!(!waiters.waiting(StoreId::Data) && waiters.waiting(StoreId::Hints));
        let failed = sync_completions(data_ops, &Err(StorageError::Poisoned("sync".into())));
        assert!(
            failed
                .iter()
                .all(|(_, r)| matches!(r, StorageResult::Failed(StorageFailure::Poisoned(_))))
        );
        let (hint_ops, _) = waiters.take(StoreId::Hints);
        assert_eq!(
            sync_completions(hint_ops, &Ok(())),
            vec![(2, StorageResult::Written)]
        );
    }

    fn v(ts: u64) -> Version {
        Version {
            ts_micros: ts,
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
        let expected: BTreeSet<Vec<u8>> =
            [hint_key(NodeId(5), b"h1"), hint_key(NodeId(6), b"h3")].into();
        assert_eq!(counts, StorageResult::HintKeys(expected));
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
    fn scans_walked_together_answer_as_each_alone() {
        let mut data = lsm(5);
        let keys: Vec<Vec<u8>> = (0..3000).map(|i| format!("key{i}").into_bytes()).collect();
        for k in &keys {
            data.write(k, Cell::put(v(1), b"v".to_vec())).unwrap();
            data.run_background(crate::Millis(0)).unwrap();
        }
        let mut sorted = keys.clone();
        sorted.sort();
        let third = u64::MAX / 3;
        let scans = vec![
            (Range::new(Token(0), Token(third)), None, 100),
            (
                Range::new(Token(third), Token(2 * third)),
                Some(b"key2".to_vec()),
                5000,
            ),
            (
                Range::new(Token(2 * third), Token(0)),
                Some(b"key1500".to_vec()),
                7,
            ),
            (Range::new(Token(5), Token(5)), None, 1),
            (
                Range::new(Token(0), Token(third)),
                Some(b"key999".to_vec()),
                0,
            ),
        ];
        let together = scan_ranges(&data, scans.clone()).unwrap();
        assert_eq!(together.len(), scans.len());
        for ((range, after, limit), got) in scans.into_iter().zip(together) {
            // What one page must be: the range's keys after `after`, the first `limit`, and a
            // cursor (the last of them) when the limit was reached.
            let matching: Vec<&Vec<u8>> = sorted
                .iter()
                .filter(|k| after.as_ref().is_none_or(|a| *k > a))
                .filter(|k| range.contains(key_token(k)))
                .collect();
            let take = matching.len().min(limit.max(1));
            let cursor = (matching.len() >= limit.max(1)).then(|| matching[take - 1].clone());
            let expected: Vec<&Vec<u8>> = matching[..take].to_vec();
            let got_keys: Vec<&Vec<u8>> = got.0.iter().map(|(k, _)| k).collect();
            assert_eq!(got_keys, expected, "{range:?} after {after:?}");
            assert_eq!(got.1, cursor, "{range:?} after {after:?}");
            assert_eq!(got, scan_range(&data, range, after, limit).unwrap());
        }
    }

    /// A store with only `get` and `scan`: the trait's default `scan_filtered`.
    struct Plain<'a>(&'a Lsm<SimDisk>);

    impl ReadStore for Plain<'_> {
        fn get(&self, key: &[u8]) -> Result<Option<Cell>, StorageError> {
            self.0.get(key)
        }
        fn scan(
            &self,
            start: &[u8],
            end: Option<&[u8]>,
            limit: usize,
        ) -> Result<Vec<(Vec<u8>, Cell)>, StorageError> {
            self.0.scan(start, end, limit)
        }
    }

    /// Walks `store` with `scan_filtered` in steps of `step` keys, keeping `keep_max` at most,
    /// from the start.
    fn filtered_walk(
        store: &impl ReadStore,
        step: usize,
        keep_max: usize,
        keep: &dyn Fn(&[u8]) -> bool,
    ) -> Vec<(Vec<u8>, Cell)> {
        let mut start = vec![0];
        let mut out = Vec::new();
        loop {
            let (page, resume) = store.scan_filtered(&start, step, keep_max, keep).unwrap();
            assert!(
                page.len() <= keep_max.max(1),
                "at most keep_max keys per step"
            );
            out.extend(page);
            match resume {
                Some(next) => start = next,
                None => return out,
            }
        }
    }

    #[test]
    fn a_filtered_scan_reconciles_every_source_whatever_its_step() {
        // Versions of the same keys in two tables, a frozen memtable and the active one, some
        // older than what an earlier source holds (a replayed hint) and some tombstones.
        let config = LsmConfig {
            memtable_bytes_max: 1 << 20,
            ..LsmConfig::small_for_tests()
        };
        let mut data = Lsm::open(SimDisk::new(4), config).unwrap().0;
        for round in 0..4u64 {
            for i in 0..300u64 {
                if (i + round) % 3 == 0 {
                    continue;
                }
                let ts = if i % 7 == 0 { 10 - round } else { 10 + round };
                let cell = if (i + round) % 11 == 0 {
                    Cell::tombstone(v(ts))
                } else {
                    Cell::put(v(ts), format!("r{round}").into_bytes())
                };
                data.write(format!("k{i:03}").as_bytes(), cell).unwrap();
            }
            match round {
                0 | 1 => data.flush_all(crate::Millis(0)).unwrap(),
                2 => data.freeze_memtable().unwrap(),
                _ => {}
            }
        }
        let keep = |k: &[u8]| !key_token(k).0.is_multiple_of(3);
        let mut expected = data.scan(&[0], None, usize::MAX).unwrap();
        expected.retain(|(k, _)| keep(k));
        assert!(expected.len() > 100);
        for step in [1, 2, 3, 7, 64, 10_000] {
            for keep_max in [1, 5, 64, usize::MAX] {
                assert_eq!(
                    filtered_walk(&data, step, keep_max, &keep),
                    expected,
                    "step {step}, keep_max {keep_max}"
                );
                assert_eq!(
                    filtered_walk(&Plain(&data), step, keep_max, &keep),
                    expected,
                    "default, step {step}, keep_max {keep_max}"
                );
            }
        }
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
