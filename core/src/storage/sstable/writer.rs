//! Writes a table front to back, one entry at a time, so a flush or a compaction can be run as
//! small steps (the simulator interleaves them with other events).
//!
//! Data blocks are appended to the file as soon as they fill up; the filter, index, meta block
//! and footer are appended together by [`TableWriter::finish`], which then syncs the file.

use super::block::{BlockHandle, DataBlockBuilder, IndexBuilder};
use super::bloom::Bloom;
use super::{
    BLOCK_BYTES_MAX, Footer, TableMeta, TableOptions, encode_meta_block, key_hash, table_file_name,
};
use crate::storage::cell::{VALUE_BYTES_LIMIT, check_key, entry_len};
use crate::storage::{Cell, Disk, StorageError, Version};

/// The smallest block size a writer honours.
const BLOCK_BYTES_MIN: usize = 64;

/// Builds one table file. See the [module docs](super) for the layout.
///
/// After any error the file is in an unspecified state: call [`TableWriter::abandon`].
#[derive(Debug)]
pub struct TableWriter<D: Disk> {
    disk: D,
    id: u64,
    name: String,
    block_bytes: usize,
    bloom_bits_per_key: u32,
    block: DataBlockBuilder,
    index: IndexBuilder,
    /// The hash of every key added, for the bloom filter.
    key_hashes: Vec<u64>,
    /// Bytes appended to the file so far (whole data blocks).
    written: u64,
    entries: u64,
    tombstones: u64,
    min_key: Vec<u8>,
    last_key: Vec<u8>,
    min_version: Version,
    max_version: Version,
}

impl<D: Disk> TableWriter<D> {
    /// Creates the file of table `id` ([`super::table_file_name`]); fails if it exists.
    pub fn create(disk: D, id: u64, options: TableOptions) -> Result<Self, StorageError> {
        let name = table_file_name(id);
        disk.create(&name)?;
        Ok(TableWriter {
            disk,
            id,
            name,
            block_bytes: options.block_bytes.clamp(BLOCK_BYTES_MIN, BLOCK_BYTES_MAX),
            bloom_bits_per_key: options.bloom_bits_per_key,
            block: DataBlockBuilder::default(),
            index: IndexBuilder::default(),
            key_hashes: Vec::new(),
            written: 0,
            entries: 0,
            tombstones: 0,
            min_key: Vec::new(),
            last_key: Vec::new(),
            min_version: Version::default(),
            max_version: Version::default(),
        })
    }

    /// Adds an entry (a tombstone is a cell whose value is `None`).
    ///
    /// Precondition: `key` is strictly greater than every key added before (checked only by a
    /// debug assertion; the engine feeds the writer from sorted memtables and merges). Keys and
    /// values outside the engine's limits are rejected with [`StorageError::KeyEmpty`],
    /// [`StorageError::KeyTooLong`] and [`StorageError::ValueTooLarge`], and nothing is added.
    /// Appends the pending data block to the file first when this entry would take it past
    /// `block_bytes`.
    pub fn add(&mut self, key: &[u8], cell: &Cell) -> Result<(), StorageError> {
        check_key(key)?;
        if let Some(value) = &cell.value
            && value.len() > VALUE_BYTES_LIMIT
        {
            return Err(StorageError::ValueTooLarge {
                len: value.len(),
                max: VALUE_BYTES_LIMIT,
            });
        }
        debug_assert!(
            self.entries == 0 || key > &self.last_key[..],
            "table keys must be strictly increasing"
        );
        // Cut the pending block rather than let this entry (and its offset) take it past
        // `block_bytes`; an entry larger than a block gets a block of its own.
        let grown = self.block.encoded_len() + entry_len(key, cell) + 4;
        if !self.block.is_empty() && grown > self.block_bytes {
            self.flush_block()?;
        }
        if self.entries == 0 {
            self.min_key = key.to_vec();
            self.min_version = cell.version;
            self.max_version = cell.version;
        } else {
            self.min_version = self.min_version.min(cell.version);
            self.max_version = self.max_version.max(cell.version);
        }
        self.block.add(key, cell);
        self.key_hashes.push(key_hash(key));
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.entries += 1;
        self.tombstones += u64::from(cell.is_tombstone());
        Ok(())
    }

    /// Entries added so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Bytes appended to the file so far plus the pending data block: grows with every
    /// [`TableWriter::add`]. The finished file adds the filter, index, meta block and footer.
    pub fn estimated_file_bytes(&self) -> u64 {
        self.written + self.block.encoded_len() as u64
    }

    /// Appends the pending data block, if any, and records it in the index.
    fn flush_block(&mut self) -> Result<(), StorageError> {
        if self.block.is_empty() {
            return Ok(());
        }
        let bytes = self.block.seal();
        let len = bytes.len() as u64;
        self.disk.append(&self.name, bytes)?;
        let handle = BlockHandle {
            offset: self.written,
            len: len as u32,
        };
        self.index.add(&self.last_key, handle);
        self.written += len;
        self.block.clear();
        Ok(())
    }

    /// Writes the last data block, the filter, index and meta blocks and the footer, then syncs
    /// the file (not the directory: the caller syncs it once the table is recorded).
    ///
    /// A table holds at least one entry: with none, the result is
    /// [`StorageError::TableNotWritable`]. On any error the partial file is deleted (best
    /// effort: if that fails too, the engine's cleanup of unrecorded files removes it).
    pub fn finish(mut self) -> Result<TableMeta, StorageError> {
        let result = self.write_tail();
        if result.is_err() {
            // The original error is the one worth reporting.
            let _ = self.disk.delete(&self.name);
        }
        result
    }

    fn write_tail(&mut self) -> Result<TableMeta, StorageError> {
        if self.entries == 0 {
            return Err(self.not_writable("a table needs at least one entry"));
        }
        self.flush_block()?;
        let mut tail = Vec::new();
        let filter_offset = self.written;
        Bloom::build(&self.key_hashes, self.bloom_bits_per_key).encode(&mut tail);
        let filter_len = tail.len();
        let index_offset = filter_offset + filter_len as u64;
        self.index.encode(&mut tail);
        let index_len = tail.len() - filter_len;
        let meta_offset = index_offset + index_len as u64;
        let mut meta = TableMeta {
            id: self.id,
            file_bytes: 0,
            entries: self.entries,
            tombstones: self.tombstones,
            min_key: core::mem::take(&mut self.min_key),
            max_key: core::mem::take(&mut self.last_key),
            min_version: self.min_version,
            max_version: self.max_version,
        };
        // The meta block's length does not depend on the value of `file_bytes`.
        let mut meta_block = Vec::new();
        encode_meta_block(&meta, &mut meta_block);
        let meta_len = meta_block.len();
        meta.file_bytes = meta_offset + (meta_len + Footer::BYTES) as u64;
        encode_meta_block(&meta, &mut tail);
        let too_large = "the filter or index block would pass 4 GiB; split the table";
        let footer = Footer {
            filter_offset,
            filter_len: u32::try_from(filter_len).map_err(|_| self.not_writable(too_large))?,
            index_offset,
            index_len: u32::try_from(index_len).map_err(|_| self.not_writable(too_large))?,
            meta_offset,
            meta_len: meta_len as u32,
        };
        footer.encode(&mut tail);
        debug_assert_eq!(self.written + tail.len() as u64, meta.file_bytes);
        self.disk.append(&self.name, &tail)?;
        self.disk.sync(&self.name)?;
        Ok(meta)
    }

    fn not_writable(&self, reason: &str) -> StorageError {
        StorageError::TableNotWritable {
            file: self.name.clone(),
            reason: reason.to_string(),
        }
    }

    /// Deletes the partial file. Use it after an error, or to cancel a job.
    pub fn abandon(self) -> Result<(), StorageError> {
        self.disk.delete(&self.name)?;
        Ok(())
    }
}
