//! [`Store`]: the storage engine made thread-safe for a native node, with group commit and
//! background flushes and compactions.
//!
//! `ringstore-core`'s [`Lsm`] is a synchronous state machine; this is its tokio-free native
//! driver. Requests call [`Store::write`] and [`Store::get`] from any thread:
//!
//! * Reads take a shared lock; writes take the exclusive lock only to append to the WAL buffer
//!   and the memtable (microseconds).
//! * **Non-blocking tries.** [`Store::try_append`], [`Store::try_get_in_memory`] and
//!   [`Store::try_begin_sync`] never wait: not for the lock, a stalled memtable or the disk.
//!   The node task runs its storage operations through them and hands only what they decline,
//!   and the `fdatasync` half of a sync ([`Store::finish_sync`]), to the storage threads.
//! * **Group commit.** Under [`SyncPolicy::Always`] a writer waits until its LSN is durable. The
//!   first waiter becomes the *leader*: it takes a [`SyncTicket`] from the engine (which writes
//!   the WAL buffer), runs the slow `fdatasync` with no lock held, and records the result; every
//!   write that arrived meanwhile is covered by the next leader's single sync.
//! * **Background work.** Two threads take flush and compaction jobs from the engine, step them
//!   without holding its lock, and install them. A sync or a compaction therefore never stalls
//!   request handling; only a write that finds the memtable budget exhausted waits for a flush.
//! * [`SyncPolicy::IntervalMs`] syncs run on the background threads' timer.
//! * **Write health.** A write the disk has no space for fails with nothing changed (see
//!   [`StorageError::is_disk_full`]); the store remembers it ([`Store::unwritable`], which a
//!   readiness check reports), logs one line, and takes writes again, logging one more line,
//!   as soon as one succeeds: no restart. An engine poisoned by a failed sync or a panic while
//!   it was held refuses writes until the node restarts and recovers from its files.

use crate::disk::FileDisk;
use crate::token_index::{INDEXED_SCAN_KEYS_MAX, TokenIndex};
use ringstore_core::Millis;
use ringstore_core::node::{RangePage, WriteOutcome, apply_write};
use ringstore_core::ring::Range;
use ringstore_core::storage::{
    Cell, Lsm, LsmConfig, LsmStats, RecoveryReport, StorageError, SyncPolicy, SyncTicket, WalWriter,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{
    Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError,
};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Background threads running flushes and compactions.
const BACKGROUND_THREADS: usize = 2;
/// How often idle background threads look for due work (compactions, interval syncs).
const BACKGROUND_TICK: Duration = Duration::from_millis(50);

/// The wall clock in milliseconds since the Unix epoch: the time base of LWW timestamps.
pub fn wall_clock() -> Millis {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Millis(since.as_millis() as u64)
}

#[derive(Default)]
struct SyncState {
    durable: u64,
    syncing: bool,
}

struct Inner {
    lsm: RwLock<Lsm<FileDisk>>,
    disk: FileDisk,
    sync_policy: SyncPolicy,
    sync: Mutex<SyncState>,
    synced: Condvar,
    /// Signalled when a memtable is frozen or work may be due, and when a job is installed.
    work: Mutex<u64>,
    work_cv: Condvar,
    installed_cv: Condvar,
    shutdown: AtomicBool,
    /// The store's directory, named in log lines.
    dir: PathBuf,
    /// Set while the last write found the disk full (see the module docs).
    full: AtomicBool,
    full_reason: Mutex<Option<String>>,
    /// Whether a disk failure that poisoned the engine was logged.
    poison_logged: AtomicBool,
}

/// What [`Store::try_append`] did with a batch.
#[derive(Debug)]
pub enum TryAppend {
    /// Appended (WAL and memtable) with this LSN; not yet durable. With `await_sync` the write
    /// completes once a sync covers it, else now (the core's
    /// [`ringstore_core::node::apply_write`] decides, by the sync policy).
    Appended {
        /// The batch's LSN.
        lsn: u64,
        /// Whether the write waits for a sync before it completes.
        await_sync: bool,
    },
    /// Refused: a bad key or value, or an engine that can no longer write.
    Failed(StorageError),
    /// Not attempted (the engine was locked or writes are stalled): the batch, back.
    Busy(Vec<(Vec<u8>, Cell)>),
}

/// A thread-safe storage engine on real files. See the module docs.
pub struct Store {
    inner: Arc<Inner>,
    threads: Vec<JoinHandle<()>>,
    report: RecoveryReport,
    /// Every key by ring token, for narrow range scans (a node's data store keeps one).
    index: Option<TokenIndex>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why a store whose lock was poisoned refuses writes.
const PANICKED: &str = "a thread panicked while holding the storage engine: a batch may be half applied; restart the node to recover from the files";

/// The engine behind a lock a panicking thread left poisoned: the engine is poisoned
/// ([`Lsm::poison_for`]), so it refuses every later write rather than write after a batch that
/// may be half applied, and the lock's flag is cleared (the engine itself now says so).
fn poisoned_by_panic<'a>(
    lsm: &RwLock<Lsm<FileDisk>>,
    mut guard: RwLockWriteGuard<'a, Lsm<FileDisk>>,
) -> RwLockWriteGuard<'a, Lsm<FileDisk>> {
    if guard.poisoned().is_none() {
        tracing::error!("storage engine poisoned: {PANICKED}");
    }
    guard.poison_for(PANICKED);
    lsm.clear_poison();
    guard
}

impl Inner {
    fn read(&self) -> RwLockReadGuard<'_, Lsm<FileDisk>> {
        loop {
            match self.lsm.read() {
                Ok(guard) => return guard,
                // Only a writer poisons the lock: mark the engine, then read.
                Err(_) => drop(self.write()),
            }
        }
    }

    fn write(&self) -> RwLockWriteGuard<'_, Lsm<FileDisk>> {
        self.lsm
            .write()
            .unwrap_or_else(|e| poisoned_by_panic(&self.lsm, e.into_inner()))
    }

    /// [`RwLock::try_write`], marking the engine if the lock was poisoned. `None`: taken.
    fn try_write(&self) -> Option<RwLockWriteGuard<'_, Lsm<FileDisk>>> {
        match self.lsm.try_write() {
            Ok(lsm) => Some(lsm),
            Err(TryLockError::Poisoned(e)) => Some(poisoned_by_panic(&self.lsm, e.into_inner())),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Notes what a write or sync did for [`Store::unwritable`], logging one line when the
    /// store stops and starts taking writes.
    fn note<T>(&self, result: Result<T, StorageError>) -> Result<T, StorageError> {
        match &result {
            Ok(_) if self.full.load(Ordering::Acquire) => {
                if lock(&self.full_reason).take().is_some() {
                    tracing::info!("{}: storage takes writes again", self.dir.display());
                }
                self.full.store(false, Ordering::Release);
            }
            Ok(_) => {}
            Err(e) if e.is_disk_full() => {
                let mut reason = lock(&self.full_reason);
                if reason.is_none() {
                    tracing::error!(
                        "{}: storage cannot take writes: {e} (writes fail with nothing stored until space is freed)",
                        self.dir.display()
                    );
                }
                *reason = Some(e.to_string());
                self.full.store(true, Ordering::Release);
            }
            Err(e @ StorageError::Disk(_)) => {
                if !self.poison_logged.swap(true, Ordering::AcqRel) {
                    tracing::error!(
                        "{}: storage engine poisoned, refusing writes until a restart: {e}",
                        self.dir.display()
                    );
                }
            }
            Err(_) => {}
        }
        result
    }

    /// Waits until a background job is installed, or a tick passes.
    fn wait_for_install(&self) {
        let guard = lock(&self.work);
        let _ = self
            .installed_cv
            .wait_timeout(guard, BACKGROUND_TICK)
            .unwrap_or_else(|e| e.into_inner());
    }

    fn kick(&self) {
        *lock(&self.work) += 1;
        self.work_cv.notify_all();
    }

    /// Blocks until `lsn` is durable, leading a group sync when nobody else is.
    fn wait_durable(&self, lsn: u64) -> Result<(), StorageError> {
        let mut state = lock(&self.sync);
        loop {
            if state.durable >= lsn {
                return Ok(());
            }
            if state.syncing {
                state = self.synced.wait(state).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            let result;
            (state, result) = self.lead_sync_as_leader(state);
            result?;
        }
    }

    /// Leads one group sync, given the sync state with nobody syncing; marks it as syncing for
    /// the duration (with the lock released), then wakes every waiter.
    fn lead_sync_as_leader<'a>(
        &'a self,
        mut state: MutexGuard<'a, SyncState>,
    ) -> (MutexGuard<'a, SyncState>, Result<u64, StorageError>) {
        state.syncing = true;
        drop(state);
        let result = self.lead_sync();
        let mut state = lock(&self.sync);
        state.syncing = false;
        if let Ok(durable) = result {
            state.durable = state.durable.max(durable);
        }
        self.synced.notify_all();
        (state, result)
    }

    /// One group sync: returns the durable LSN after it.
    fn lead_sync(&self) -> Result<u64, StorageError> {
        let ticket: Option<SyncTicket> = self.write().begin_sync()?;
        if let Some(ticket) = ticket {
            let result = WalWriter::run_sync(&self.disk, &ticket);
            self.write().complete_sync(&ticket, result)?;
        }
        Ok(self.read().durable_lsn())
    }

    fn background(&self) {
        while !self.shutdown.load(Ordering::Acquire) {
            let now = wall_clock();
            // Under SyncPolicy::Always every writer waits for its write's sync and leads one
            // when nobody is syncing: a timer sync would only add fdatasyncs, racing theirs.
            if !self.sync_policy.acks_after_sync() && self.read().sync_due(now) {
                let state = lock(&self.sync);
                // A sync already running covers what the timer would. A failed sync poisons
                // the engine, which every later write reports.
                if !state.syncing {
                    drop(self.lead_sync_as_leader(state));
                } else {
                    drop(state);
                }
                self.write().note_sync(now);
            }
            let job = self.write().next_job(now);
            match job {
                Ok(Some(mut job)) => {
                    let outcome = loop {
                        match job.step() {
                            Ok(true) => break Ok(()),
                            Ok(false) if self.shutdown.load(Ordering::Acquire) => {
                                break Err(None);
                            }
                            Ok(false) => {}
                            Err(e) => break Err(Some(e)),
                        }
                    };
                    let mut lsm = self.write();
                    match outcome {
                        Ok(()) => {
                            if let Err(e) = lsm.install(job) {
                                eprintln!("ringstore: installing background job failed: {e}");
                            }
                        }
                        Err(e) => {
                            if let Some(e) = e {
                                eprintln!("ringstore: background job failed: {e}");
                            }
                            lsm.abort(job);
                        }
                    }
                    drop(lsm);
                    let _guard = lock(&self.work);
                    self.installed_cv.notify_all();
                }
                Ok(None) | Err(_) => {
                    let guard = lock(&self.work);
                    let seen = *guard;
                    let (_guard, _) = self
                        .work_cv
                        .wait_timeout_while(guard, BACKGROUND_TICK, |g| *g == seen)
                        .unwrap_or_else(|e| e.into_inner());
                }
            }
        }
    }
}

impl Store {
    /// Opens (or creates) the store in `dir`, recovers it, and starts its background threads.
    pub fn open(dir: &Path, config: LsmConfig) -> anyhow::Result<Store> {
        let disk = FileDisk::open(dir)?;
        let sync_policy = config.sync;
        let (lsm, report) = Lsm::open(disk.clone(), config).map_err(|e| {
            let advice = match e {
                StorageError::Corrupt { .. } => {
                    ". The store is damaged, and starting on it would drop writes it acknowledged; \
                     move the damaged file aside to start anyway (this replica then loses what it \
                     alone held; anti-entropy restores what other replicas hold)"
                }
                _ => "",
            };
            anyhow::anyhow!("opening the store in {}: {e}{advice}", dir.display())
        })?;
        if report.torn_bytes_truncated > 0 {
            tracing::warn!(
                "{}: cut {} bytes of torn WAL tail (preallocated space never written, or writes that never became durable)",
                dir.display(),
                report.torn_bytes_truncated
            );
        }
        let durable = lsm.durable_lsn();
        let inner = Arc::new(Inner {
            lsm: RwLock::new(lsm),
            disk,
            sync_policy,
            sync: Mutex::new(SyncState {
                durable,
                syncing: false,
            }),
            synced: Condvar::new(),
            work: Mutex::new(0),
            work_cv: Condvar::new(),
            installed_cv: Condvar::new(),
            shutdown: AtomicBool::new(false),
            dir: dir.to_path_buf(),
            full: AtomicBool::new(false),
            full_reason: Mutex::new(None),
            poison_logged: AtomicBool::new(false),
        });
        let threads = (0..BACKGROUND_THREADS)
            .map(|i| {
                let inner = inner.clone();
                std::thread::Builder::new()
                    .name(format!("ringstore-bg-{i}"))
                    .spawn(move || inner.background())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Store {
            inner,
            threads,
            report,
            index: None,
        })
    }

    /// Opens the store as [`Store::open`] and keeps a [`TokenIndex`] of its keys (built now
    /// from a full scan), so [`Store::scan_range_indexed`] can answer narrow range scans.
    pub fn open_indexed(dir: &Path, config: LsmConfig) -> anyhow::Result<Store> {
        let mut store = Store::open(dir, config)?;
        let index = TokenIndex::default();
        let mut start = vec![0u8];
        loop {
            let page = store.scan(&start, None, 4096)?;
            index.insert(page.iter().map(|(k, _)| k.as_slice()));
            match page.last() {
                Some((k, _)) if page.len() == 4096 => {
                    start = k.clone();
                    start.push(0);
                }
                _ => break,
            }
        }
        store.index = Some(index);
        Ok(store)
    }

    /// What [`scan_range`](ringstore_core::node::scan_range) answers, from the token index:
    /// `None` if the store keeps no index or the range holds more than
    /// [`INDEXED_SCAN_KEYS_MAX`] keys (then walk the store).
    pub fn scan_range_indexed(
        &self,
        range: Range,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Option<Result<RangePage, StorageError>> {
        let keys = self.index.as_ref()?.keys_in(range, INDEXED_SCAN_KEYS_MAX)?;
        let limit = limit.max(1);
        let mut out = Vec::new();
        let lsm = self.inner.read();
        for key in keys {
            if after.is_some_and(|a| key.as_slice() <= a) {
                continue;
            }
            match lsm.get(&key) {
                Ok(Some(cell)) => out.push((key, cell)),
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
            if out.len() >= limit {
                let cursor = out.last().map(|(k, _)| k.clone());
                return Some(Ok((out, cursor)));
            }
        }
        Some(Ok((out, None)))
    }

    /// What recovery found when the store was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// Writes `cell` under `key`. Under [`SyncPolicy::Always`] it returns once the write is
    /// durable. If flushes are behind, it waits for them (bounded memory) rather than failing.
    pub fn write(&self, key: &[u8], cell: Cell) -> Result<u64, StorageError> {
        self.write_batch(vec![(key.to_vec(), cell)])
    }

    /// Writes a batch atomically (one WAL record), with the same durability as [`Store::write`].
    pub fn write_batch(&self, batch: Vec<(Vec<u8>, Cell)>) -> Result<u64, StorageError> {
        let lsn = self.append(batch)?;
        if self.inner.sync_policy.acks_after_sync() {
            self.inner.note(self.inner.wait_durable(lsn))?;
        }
        Ok(lsn)
    }

    /// Applies a batch (one WAL record, then the memtable) without waiting for it to be
    /// durable, and returns its LSN: a host that applies many batches and then calls
    /// [`Store::wait_durable`] once for the last one shares one sync between all of them. If
    /// flushes are behind, it waits for them (bounded memory) rather than failing.
    pub fn append(&self, mut batch: Vec<(Vec<u8>, Cell)>) -> Result<u64, StorageError> {
        loop {
            match self.apply_locked(self.inner.write(), batch) {
                WriteOutcome::Applied { lsn, .. } => return Ok(lsn),
                WriteOutcome::Failed(e) => return Err(e),
                WriteOutcome::Stalled(back) => {
                    batch = back;
                    self.inner.kick();
                    self.inner.wait_for_install();
                }
            }
        }
    }

    /// [`Store::append`] for a thread that must not wait: it appends only if the engine's lock
    /// is free at once and writes are not stalled behind flushes, and otherwise gives the batch
    /// back ([`TryAppend::Busy`]) for a thread that may wait.
    pub fn try_append(&self, batch: Vec<(Vec<u8>, Cell)>) -> TryAppend {
        let Some(lsm) = self.inner.try_write() else {
            return TryAppend::Busy(batch);
        };
        match self.apply_locked(lsm, batch) {
            WriteOutcome::Applied { lsn, await_sync } => TryAppend::Appended { lsn, await_sync },
            WriteOutcome::Failed(e) => TryAppend::Failed(e),
            WriteOutcome::Stalled(batch) => {
                self.inner.kick();
                TryAppend::Busy(batch)
            }
        }
    }

    /// Applies a batch with the core's [`apply_write`], keeping the token index and waking
    /// the background threads when a memtable froze.
    fn apply_locked(
        &self,
        mut lsm: RwLockWriteGuard<'_, Lsm<FileDisk>>,
        batch: Vec<(Vec<u8>, Cell)>,
    ) -> WriteOutcome {
        let frozen_before = lsm.frozen_memtables();
        // A key the memtable already held is indexed already: only new ones cost a lookup.
        let outcome = apply_write(&mut lsm, batch, |key| {
            if let Some(index) = &self.index {
                index.insert_key(key);
            }
        });
        match &outcome {
            WriteOutcome::Applied { .. } => drop(self.inner.note(Ok(()))),
            WriteOutcome::Failed(e) => drop(self.inner.note::<()>(Err(e.clone()))),
            WriteOutcome::Stalled(_) => {}
        }
        let froze = lsm.frozen_memtables() > frozen_before;
        drop(lsm);
        if froze {
            self.inner.kick();
        }
        outcome
    }

    /// The first half of a group sync, for a thread that must not wait: if the engine's lock is
    /// free at once, writes the WAL buffer to the OS (a write, not a sync) and returns what to
    /// sync, `Ok(None)` when everything is durable already. `None`: the lock was taken.
    /// [`Store::finish_sync`] on another thread does the slow half.
    pub fn try_begin_sync(&self) -> Option<Result<Option<SyncTicket>, StorageError>> {
        let mut lsm = self.inner.try_write()?;
        Some(self.inner.note(lsm.begin_sync()))
    }

    /// The second half: runs the ticket's `fdatasync` with no lock held and records it. Writes
    /// waiting in [`Store::wait_durable`] see it too.
    pub fn finish_sync(&self, ticket: &SyncTicket) -> Result<(), StorageError> {
        let result = WalWriter::run_sync(&self.inner.disk, ticket);
        let result = self.inner.write().complete_sync(ticket, result);
        self.inner.note(result)?;
        let mut state = lock(&self.inner.sync);
        state.durable = state.durable.max(ticket.upto);
        self.inner.synced.notify_all();
        Ok(())
    }

    /// Blocks until every batch up to `lsn` is durable, leading a group sync if nobody else
    /// is syncing (writes that arrive meanwhile share the next one).
    pub fn wait_durable(&self, lsn: u64) -> Result<(), StorageError> {
        self.inner.note(self.inner.wait_durable(lsn))
    }

    /// Why the store cannot take writes now, if it cannot: its engine is poisoned (until a
    /// restart), or the last write found the disk full (until a write succeeds).
    pub fn unwritable(&self) -> Option<String> {
        if let Some(why) = self.inner.read().poisoned() {
            return Some(format!("storage engine poisoned: {why}"));
        }
        if !self.inner.full.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.inner.full_reason).clone()
    }

    /// The policy this store syncs by.
    pub fn sync_policy(&self) -> SyncPolicy {
        self.inner.sync_policy
    }

    /// The newest cell for `key` (a tombstone if deleted).
    pub fn get(&self, key: &[u8]) -> Result<Option<Cell>, StorageError> {
        self.inner.read().get(key)
    }

    /// [`Store::get`] for a thread that must not wait: `None` when the engine's lock is taken or
    /// the answer needs a read from the disk ([`Lsm::get_in_memory`]); ask [`Store::get`] on
    /// another thread then.
    pub fn try_get_in_memory(&self, key: &[u8]) -> Option<Result<Option<Cell>, StorageError>> {
        let lsm = match self.inner.lsm.try_read() {
            Ok(lsm) => lsm,
            // A writer panicked: mark the engine (blocking briefly), then answer.
            Err(TryLockError::Poisoned(_)) => self.inner.read(),
            Err(TryLockError::WouldBlock) => return None,
        };
        lsm.get_in_memory(key).transpose()
    }

    /// Up to `limit` keys in `[start, end)` with their cells, tombstones included.
    pub fn scan(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Cell)>, StorageError> {
        self.inner.read().scan(start, end, limit)
    }

    /// Makes every write so far durable.
    pub fn sync(&self) -> Result<(), StorageError> {
        let lsn = self.inner.read().last_lsn();
        self.inner.wait_durable(lsn)
    }

    /// Freezes the memtable and waits until every flush and due compaction has been installed.
    pub fn flush(&self) -> Result<(), StorageError> {
        self.inner.write().freeze_memtable()?;
        self.inner.kick();
        loop {
            {
                let lsm = self.inner.read();
                if let Some(why) = lsm.poisoned() {
                    return Err(StorageError::Poisoned(why.to_string()));
                }
                if !lsm.background_pending() {
                    return Ok(());
                }
            }
            self.inner.wait_for_install();
        }
    }

    /// The engine's statistics.
    pub fn stats(&self) -> LsmStats {
        self.inner.read().stats()
    }

    /// Stops the background threads and seals the WAL (syncs it and gives back its
    /// preallocated space, so that a reopen finds no zero tail to cut).
    pub fn close(mut self) -> Result<(), StorageError> {
        self.stop_threads();
        self.inner.write().seal_wal()
    }

    fn stop_threads(&mut self) {
        self.inner.shutdown.store(true, Ordering::Release);
        self.inner.kick();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl ringstore_core::node::ReadStore for Store {
    fn get(&self, key: &[u8]) -> Result<Option<Cell>, StorageError> {
        Store::get(self, key)
    }

    fn scan(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Cell)>, StorageError> {
        Store::scan(self, start, end, limit)
    }

    fn scan_filtered(
        &self,
        start: &[u8],
        examine_max: usize,
        keep_max: usize,
        keep: &dyn Fn(&[u8]) -> bool,
    ) -> Result<RangePage, StorageError> {
        // The lock is held for one bounded step; writers get in between steps.
        self.inner
            .read()
            .scan_filtered(start, None, examine_max, keep_max, keep)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringstore_core::NodeId;
    use ringstore_core::storage::Version;

    fn cell(ts: u64) -> Cell {
        Cell::put(
            Version {
                ts_micros: ts,
                node: NodeId(1),
            },
            b"v".to_vec(),
        )
    }

    #[test]
    fn panic_while_holding_the_engine_poisons_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path(), LsmConfig::default()).unwrap());
        store.write(b"before", cell(1)).unwrap();
        let holder = store.clone();
        let panicked = std::thread::spawn(move || {
            let _guard = holder.inner.lsm.write();
            panic!("a bug while a batch is half applied");
        })
        .join();
        assert!(panicked.is_err());

        // The write after the panic is refused, not applied after a half-written batch.
        let err = store.write(b"after", cell(2)).unwrap_err();
        assert!(matches!(err, StorageError::Poisoned(_)), "{err:?}");
        assert!(matches!(
            store.try_append(vec![(b"after".to_vec(), cell(3))]),
            TryAppend::Failed(StorageError::Poisoned(_))
        ));
        assert!(store.stats().poisoned.is_some());
        // Reads go on: what was written before is there, the refused write is not.
        assert_eq!(store.get(b"before").unwrap(), Some(cell(1)));
        assert_eq!(store.get(b"after").unwrap(), None);
    }
}
