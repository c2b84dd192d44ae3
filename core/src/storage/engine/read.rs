//! The engine's read path: point reads ([`Lsm::get`], [`Lsm::get_in_memory`]) and range scans
//! ([`Lsm::scan`], [`Lsm::scan_filtered`]), each reconciling every memtable and table by LWW
//! version (see the engine's module docs).

use super::*;

impl<D: Disk> Lsm<D> {
    /// The newest cell stored for `key` (a tombstone if it was deleted), reconciling every
    /// memtable and table by LWW version.
    pub fn get(&self, key: &[u8]) -> Result<Option<Cell>, StorageError> {
        // Allowed to read the disk, the lookup always answers (`Some`).
        Ok(self.lookup(key, false)?.flatten())
    }

    /// Like [`Lsm::get`], but only from memory (the memtables and the block cache): `Ok(None)`
    /// when answering would read a data block from the disk. A host whose request thread must
    /// never wait on the disk answers from here when it can and hands the rest to a reader
    /// thread.
    pub fn get_in_memory(&self, key: &[u8]) -> Result<Option<Option<Cell>>, StorageError> {
        self.lookup(key, true)
    }

    /// [`Lsm::get`], or with `memory_only` [`Lsm::get_in_memory`]: `None` means a table needed
    /// a block that is not cached.
    fn lookup(&self, key: &[u8], memory_only: bool) -> Result<Option<Option<Cell>>, StorageError> {
        check_key(key)?;
        let mut best: Option<Cell> = self.active.get(key).cloned();
        let beats = |best: &Option<Cell>, newest: Option<Version>| match (best, newest) {
            (Some(b), Some(n)) => b.version >= n,
            (_, None) => true,
            (None, Some(_)) => false,
        };
        for frozen in self.frozen.iter().rev() {
            if beats(&best, frozen.mem.max_version()) {
                continue;
            }
            if let Some(c) = frozen.mem.get(key)
                && best.as_ref().is_none_or(|b| c.version > b.version)
            {
                best = Some(c.clone());
            }
        }
        let hash = key_hash(key);
        // `false`: the table's block is not in memory (only when `memory_only`).
        let consider = |table: &Table<D>, best: &mut Option<Cell>| -> Result<bool, StorageError> {
            let meta = table.meta();
            if key < meta.min_key.as_slice()
                || key > meta.max_key.as_slice()
                || beats(best, Some(meta.max_version))
                || !table.may_contain(hash)
            {
                return Ok(true);
            }
            let found = if memory_only {
                match table.get_cached(key, hash) {
                    Some(found) => found?,
                    None => return Ok(false),
                }
            } else {
                table.get(key, hash)?
            };
            if let Some(c) = found
                && best.as_ref().is_none_or(|b| c.version > b.version)
            {
                *best = Some(c);
            }
            Ok(true)
        };
        for table in self.levels[0].iter().rev() {
            if !consider(table, &mut best)? {
                return Ok(None);
            }
        }
        for level in &self.levels[1..] {
            let idx = level.partition_point(|t| t.meta().max_key.as_slice() < key);
            if let Some(table) = level.get(idx)
                && !consider(table, &mut best)?
            {
                return Ok(None);
            }
        }
        Ok(Some(best))
    }

    /// Up to `limit` (at most [`SCAN_LIMIT_MAX`]) keys in `[start, end)` (no `end`: to the last
    /// key), in order, each with its newest cell. Tombstones are included: anti-entropy and
    /// streaming must carry deletes too.
    pub fn scan(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Cell)>, StorageError> {
        let limit = limit.min(SCAN_LIMIT_MAX);
        let mut sources: Vec<Source<'_>> = Vec::new();
        let mems = std::iter::once(&self.active).chain(self.frozen.iter().map(|f| f.mem.as_ref()));
        for mem in mems {
            sources.push(Box::new(
                mem.range_from(Bound::Included(start))
                    .map(|(k, c)| Ok((k.clone(), c.clone()))),
            ));
        }
        for table in self.levels.iter().flatten() {
            let meta = table.meta();
            let before_end = end.is_none_or(|e| meta.min_key.as_slice() < e);
            if meta.max_key.as_slice() >= start && before_end {
                sources.push(Box::new(table.iter(Some(start), true)));
            }
        }
        let mut out = Vec::new();
        for item in MergeIter::new(sources) {
            let (key, cell) = item?;
            if end.is_some_and(|e| key.as_slice() >= e) || out.len() >= limit {
                break;
            }
            out.push((key, cell));
        }
        Ok(out)
    }

    /// The keys in `[start, end)` for which `keep` holds, with their cells (tombstones
    /// included), examining at most `examine_max` keys of each memtable and table and keeping
    /// at most `keep_max` (of each, and in all); and where to resume: `None` if every source was walked to
    /// `end`, else the key (inclusive) from which the answer is not complete yet. Unlike
    /// [`Lsm::scan`], keys that `keep` refuses are never copied or merged, so looking for the
    /// few keys of a token range (they are spread over the whole key space) costs a walk, not a
    /// copy of the store; and a dense range (every key kept) copies about `keep_max` keys.
    ///
    /// Every source stops after `examine_max` keys or `keep_max` kept ones; the answer is cut
    /// at the smallest key at which a source stopped, so each key returned was reconciled over
    /// every source.
    pub fn scan_filtered(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        examine_max: usize,
        keep_max: usize,
        keep: &dyn Fn(&[u8]) -> bool,
    ) -> Result<FilteredPage, StorageError> {
        let examine_max = examine_max.max(1);
        let keep_max = keep_max.max(1);
        let before_end = |k: &[u8]| end.is_none_or(|e| k < e);
        let mut cut: Option<Vec<u8>> = None;
        let mut note_cut = |last: Vec<u8>| {
            if cut.as_ref().is_none_or(|c| last < *c) {
                cut = Some(last);
            }
        };
        let mut sources: Vec<Source<'_>> = Vec::new();
        let mems = std::iter::once(&self.active).chain(self.frozen.iter().map(|f| f.mem.as_ref()));
        for mem in mems {
            let mut found = Vec::new();
            for (examined, (k, c)) in mem.range_from(Bound::Included(start)).enumerate() {
                if !before_end(k) {
                    break;
                }
                if examined == examine_max || found.len() == keep_max {
                    note_cut(k.clone());
                    break;
                }
                if keep(k) {
                    found.push(Ok((k.clone(), c.clone())));
                }
            }
            sources.push(Box::new(found.into_iter()));
        }
        for table in self.levels.iter().flatten() {
            let meta = table.meta();
            if meta.max_key.as_slice() < start || end.is_some_and(|e| meta.min_key.as_slice() >= e)
            {
                continue;
            }
            let mut found = Vec::new();
            for (examined, item) in table.iter(Some(start), true).enumerate() {
                let (k, c) = item?;
                if !before_end(&k) {
                    break;
                }
                if examined == examine_max || found.len() == keep_max {
                    note_cut(k);
                    break;
                }
                if keep(&k) {
                    found.push(Ok((k, c)));
                }
            }
            sources.push(Box::new(found.into_iter()));
        }
        // A source stopped at `cut` without examining it: keys from `cut` on are incomplete.
        // And at most `keep_max` in all: the next one is where to resume.
        let mut out = Vec::new();
        for item in MergeIter::new(sources) {
            let (key, cell) = item?;
            if cut.as_ref().is_some_and(|c| key >= *c) {
                break;
            }
            if out.len() == keep_max {
                cut = Some(key);
                break;
            }
            out.push((key, cell));
        }
        Ok((out, cut))
    }
}
