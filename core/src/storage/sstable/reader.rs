//! Reads an open table: point lookups and ordered scans.
//!
//! [`Table::open`] reads the footer and then the filter, index and meta blocks in one read,
//! verifies all of them and keeps them in memory; data blocks are read on demand, verified, and
//! shared through the [`BlockCache`]. Every bad byte the reader meets becomes a
//! [`StorageError::Corrupt`] naming the file and the offset of the structure it was in.

use super::block::{DataBlock, Index};
use super::bloom::Bloom;
use super::cache::BlockCache;
use super::{Footer, TableMeta, decode_meta_block, invalid, table_file_name};
use crate::storage::codec::FormatError;
use crate::storage::{Cell, Disk, StorageError};
use std::sync::Arc;

/// An open, immutable table. `Send + Sync` when its disk is, so a request thread and a
/// compaction thread can share it through an `Arc`.
#[derive(Debug)]
pub struct Table<D: Disk> {
    disk: D,
    name: String,
    meta: TableMeta,
    index: Index,
    bloom: Bloom,
    cache: Arc<BlockCache>,
}

impl<D: Disk> Table<D> {
    /// The same open table over `disk` (a copy of its disk) and `cache`: for
    /// [`crate::storage::Lsm::fork`].
    pub(crate) fn with_disk(&self, disk: D, cache: Arc<BlockCache>) -> Table<D> {
        Table {
            disk,
            name: self.name.clone(),
            meta: self.meta.clone(),
            index: self.index.clone(),
            bloom: self.bloom.clone(),
            cache,
        }
    }

    /// Opens table `id`, reading and verifying its footer, filter, index and meta blocks.
    ///
    /// Any checksum, magic, version or layout problem is a [`StorageError::Corrupt`]; a file
    /// shorter than a footer is `Corrupt` with a [`FormatError::Truncated`] source.
    pub fn open(disk: D, id: u64, cache: Arc<BlockCache>) -> Result<Table<D>, StorageError> {
        let name = table_file_name(id);
        let corrupt = |offset: u64, source: FormatError| StorageError::Corrupt {
            file: name.clone(),
            offset,
            source,
        };
        let file_len = disk.len(&name)?;
        let footer_bytes = Footer::BYTES as u64;
        let Some(footer_offset) = file_len.checked_sub(footer_bytes) else {
            let available = file_len as usize;
            let source = FormatError::Truncated {
                what: "footer",
                needed: Footer::BYTES,
                available,
            };
            return Err(corrupt(0, source));
        };
        let bytes = disk.read_vec(&name, footer_offset, Footer::BYTES)?;
        let footer = Footer::decode(&bytes).map_err(|e| corrupt(footer_offset, e))?;

        // The filter, index and meta blocks must tile the bytes before the footer.
        let end = |offset: u64, len: u32| offset.checked_add(u64::from(len));
        let tiled = end(footer.filter_offset, footer.filter_len) == Some(footer.index_offset)
            && end(footer.index_offset, footer.index_len) == Some(footer.meta_offset)
            && end(footer.meta_offset, footer.meta_len) == Some(footer_offset);
        if !tiled {
            let detail = format!("blocks {footer:?} do not end at the footer ({footer_offset})");
            return Err(corrupt(footer_offset, invalid("footer", detail)));
        }
        let tail_len = usize::try_from(footer_offset - footer.filter_offset).map_err(|_| {
            let detail = "filter, index and meta blocks do not fit in memory";
            corrupt(footer_offset, invalid("footer", detail))
        })?;
        let tail = disk.read_vec(&name, footer.filter_offset, tail_len)?;
        let filter_len = footer.filter_len as usize;
        let (filter, rest) = tail.split_at_checked(filter_len).unwrap_or((&tail, &[]));
        let (index, meta) = rest
            .split_at_checked(footer.index_len as usize)
            .unwrap_or((rest, &[]));

        let bloom = Bloom::decode(filter).map_err(|e| corrupt(footer.filter_offset, e))?;
        let index = Index::decode(index, footer.filter_offset)
            .map_err(|e| corrupt(footer.index_offset, e))?;
        let meta = decode_meta_block(meta).map_err(|e| corrupt(footer.meta_offset, e))?;
        let mismatch = if meta.id != id {
            Some(format!("holds table {} instead", meta.id))
        } else if meta.file_bytes != file_len {
            Some(format!(
                "says the file has {} bytes, not {file_len}",
                meta.file_bytes
            ))
        } else if index.last_key() != Some(&meta.max_key[..]) {
            Some("max_key is not the index's last key".to_string())
        } else {
            None
        };
        if let Some(detail) = mismatch {
            return Err(corrupt(footer.meta_offset, invalid("meta block", detail)));
        }
        Ok(Table {
            disk,
            name,
            meta,
            index,
            bloom,
            cache,
        })
    }

    /// What the table holds.
    pub fn meta(&self) -> &TableMeta {
        &self.meta
    }

    /// The table id.
    pub fn id(&self) -> u64 {
        self.meta.id
    }

    /// Number of data blocks.
    pub fn data_blocks(&self) -> usize {
        self.index.len()
    }

    /// Whether the table may hold a key with this [`super::key_hash`] (`false`: certainly not).
    pub fn may_contain(&self, key_hash: u64) -> bool {
        self.bloom.may_contain(key_hash)
    }

    /// The cell stored under `key` (a tombstone is a cell whose value is `None`). `key_hash` is
    /// [`super::key_hash`]`(key)`, computed once by the caller for every table it asks.
    pub fn get(&self, key: &[u8], key_hash: u64) -> Result<Option<Cell>, StorageError> {
        let Some(i) = self.block_of(key, key_hash) else {
            return Ok(None);
        };
        let (block, offset) = self.block(i, true)?;
        block.get(key).map_err(|e| self.corrupt(offset, e))
    }

    /// Like [`Table::get`], but only from memory: `None` when the data block that may hold the
    /// key is not in the block cache, so answering would read the disk. (RocksDB's
    /// `kBlockCacheTier` reads: a thread that must not block asks this first.)
    pub fn get_cached(
        &self,
        key: &[u8],
        key_hash: u64,
    ) -> Option<Result<Option<Cell>, StorageError>> {
        let Some(i) = self.block_of(key, key_hash) else {
            return Some(Ok(None));
        };
        let block = self.cache.get(self.meta.id, i as u32)?;
        let offset = self.index.handle(i).map_or(0, |h| h.offset);
        Some(block.get(key).map_err(|e| self.corrupt(offset, e)))
    }

    /// The data block that may hold `key`, if any (the key range, the filter, the index).
    fn block_of(&self, key: &[u8], key_hash: u64) -> Option<usize> {
        if key < &self.meta.min_key[..] || key > &self.meta.max_key[..] {
            return None;
        }
        if !self.bloom.may_contain(key_hash) {
            return None;
        }
        self.index.find(key)
    }

    /// An iterator over the entries with keys `>= start` (all of them for `None`), in key order.
    /// With `fill_cache` false, blocks it reads are not added to the cache (a compaction's
    /// one-pass scan should not evict the blocks point reads need).
    pub fn iter(self: &Arc<Self>, start: Option<&[u8]>, fill_cache: bool) -> TableIter<D> {
        let block = match start {
            Some(start) => self.index.find(start).unwrap_or(self.index.len()),
            None => 0,
        };
        TableIter {
            table: Arc::clone(self),
            start: start.map(<[u8]>::to_vec),
            next_block: block,
            current: None,
            fill_cache,
            done: false,
        }
    }

    /// Data block `i`, verified, from the cache or the disk, with its offset in the file.
    fn block(&self, i: usize, fill_cache: bool) -> Result<(Arc<DataBlock>, u64), StorageError> {
        let Some(handle) = self.index.handle(i) else {
            let detail = format!("no data block {i}");
            return Err(self.corrupt(0, invalid("index block", detail)));
        };
        // The index holds at most u32::MAX blocks (its count is a u32); `get_cached` keys the
        // cache the same way.
        let cache_key = i as u32;
        if let Some(block) = self.cache.get(self.meta.id, cache_key) {
            return Ok((block, handle.offset));
        }
        let bytes = self
            .disk
            .read_vec(&self.name, handle.offset, handle.len as usize)?;
        let block = DataBlock::decode(bytes).map_err(|e| self.corrupt(handle.offset, e))?;
        // The index promised this block's last key; a mismatch means one of them lies.
        let last = block.len().checked_sub(1).map(|last| block.key_at(last));
        match (last, self.index.last_key_of(i)) {
            (Some(Ok(got)), Some(want)) if got == want => {}
            (Some(Err(e)), _) => return Err(self.corrupt(handle.offset, e)),
            _ => {
                let source = invalid("data block", "last key differs from the index");
                return Err(self.corrupt(handle.offset, source));
            }
        }
        let block = Arc::new(block);
        if fill_cache {
            self.cache
                .insert(self.meta.id, cache_key, Arc::clone(&block));
        }
        Ok((block, handle.offset))
    }

    fn corrupt(&self, offset: u64, source: FormatError) -> StorageError {
        StorageError::Corrupt {
            file: self.name.clone(),
            offset,
            source,
        }
    }
}

/// An ordered scan of one table, created by [`Table::iter`]. It owns an `Arc` of the table and
/// reads one data block at a time. After yielding an error it yields `None`.
#[derive(Debug)]
pub struct TableIter<D: Disk> {
    table: Arc<Table<D>>,
    /// The lower bound, applied within the first block read and then dropped.
    start: Option<Vec<u8>>,
    /// The block to read when `current` is used up.
    next_block: usize,
    /// The block being read, its offset in the file and the next entry in it.
    current: Option<(Arc<DataBlock>, u64, usize)>,
    fill_cache: bool,
    done: bool,
}

impl<D: Disk> TableIter<D> {
    fn advance(&mut self) -> Result<Option<(Vec<u8>, Cell)>, StorageError> {
        loop {
            if let Some((block, offset, pos)) = &mut self.current {
                if *pos < block.len() {
                    let at = *pos;
                    *pos += 1;
                    let (key, cell) = block
                        .entry_at(at)
                        .map_err(|e| self.table.corrupt(*offset, e))?;
                    return Ok(Some((key.to_vec(), cell)));
                }
                self.current = None;
            }
            if self.next_block >= self.table.index.len() {
                return Ok(None);
            }
            let (block, offset) = self.table.block(self.next_block, self.fill_cache)?;
            self.next_block += 1;
            let pos = match self.start.take() {
                Some(start) => block
                    .lower_bound(&start)
                    .map_err(|e| self.table.corrupt(offset, e))?,
                None => 0,
            };
            self.current = Some((block, offset, pos));
        }
    }
}

impl<D: Disk> Iterator for TableIter<D> {
    type Item = Result<(Vec<u8>, Cell), StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.advance().transpose();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}
