//! SSTables: the immutable, sorted, checksummed files a memtable is flushed into and that
//! compaction merges.
//!
//! A table is written once, front to back, by a [`TableWriter`] (so a flush or a compaction can
//! be stepped one entry at a time), and read by a [`Table`], which loads and verifies the footer,
//! index, bloom filter and meta block when it opens and reads data blocks lazily through a
//! shared [`BlockCache`]. A point lookup costs one bloom probe, a binary search of the in-memory
//! index, and a binary search of one (usually cached) data block's offsets array.
//!
//! # File layout
//!
//! Every integer is little-endian. Every block ends with a CRC32 of its own preceding bytes, so
//! a flipped bit anywhere is detected before the bytes are trusted.
//!
//! ```text
//! [data block 0] ... [data block n-1] [filter block] [index block] [meta block] [footer]
//! ```
//!
//! * data blocks ([`block::DataBlock`]): entries in strictly increasing key order, in the entry
//!   layout shared with the WAL (`cell::encode_entry`), then an offsets array;
//! * filter block ([`bloom::Bloom`]): a bloom filter over [`key_hash`] of every key;
//! * index block ([`block::Index`]): the last key, offset and length of each data block;
//! * meta block: the [`TableMeta`] encoding followed by a CRC32;
//! * footer ([`Footer`]): fixed size, at the very end; it locates the three blocks before it.
//!
//! The data blocks start at byte 0 and are contiguous; the filter block follows the last one
//! directly, and so on: [`Table::open`] rejects any gap or overlap.
//!
//! A table holds at least one entry: [`TableWriter::finish`] refuses to write an empty one.
//!
//! # Naming
//!
//! Table `id` lives in the file [`table_file_name`]`(id)` = `sst-{id:016}.sst`. The meta block
//! repeats the id, so a file renamed by mistake is rejected at open. The [`BlockCache`] keys
//! blocks by table id, so ids must never be reused while a cache that saw the old table lives.

pub mod block;
pub mod bloom;
mod cache;
mod reader;
mod writer;

#[cfg(test)]
pub(crate) mod mem_disk;
#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests;

pub use cache::BlockCache;
pub use reader::{Table, TableIter};
pub use writer::TableWriter;

use super::cell::{KEY_BYTES_MAX, Version};
use super::codec::{Decoder, FormatError, PutLe, crc32, verify_crc};
use crate::NodeId;
use serde::{Deserialize, Serialize};

/// The file name of table `id`: `sst-{id:016}.sst` (ids of 17 digits or more are not padded).
pub fn table_file_name(id: u64) -> String {
    format!("sst-{id:016}.sst")
}

/// The id of a table file named by [`table_file_name`], or `None` for any other name.
pub fn parse_table_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("sst-")?.strip_suffix(".sst")?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Only the canonical spelling: zero-padded to 16 digits, wider for ids >= 10^16.
    let id = digits.parse().ok()?;
    (table_file_name(id) == name).then_some(id)
}

/// The 64-bit hash of a key that the bloom filters are built from (XXH3-64, seed 0). A lookup
/// across many tables computes it once and passes it to [`Table::may_contain`] and
/// [`Table::get`].
pub fn key_hash(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

/// How a [`TableWriter`] lays out a table.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableOptions {
    /// The most bytes a data block takes, unless a single entry is larger (it then gets a
    /// block of its own). Clamped to `64..=`[`BLOCK_BYTES_MAX`].
    pub block_bytes: usize,
    /// Bloom filter bits per key; 10 gives about 1% false positives. 0 disables the filter
    /// (every lookup reads a block). Clamped to at most 64.
    pub bloom_bits_per_key: u32,
}

/// The largest `block_bytes` a writer honours: with the largest entry (a 16 MiB value) a block
/// stays well within the `u32` its offsets and length are stored in.
pub const BLOCK_BYTES_MAX: usize = 64 << 20;

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions {
            block_bytes: 4096,
            bloom_bits_per_key: 10,
        }
    }
}

/// What the engine's manifest records about a table, and what the table's meta block stores.
///
/// Encoded by [`TableMeta::encode`] (the manifest adds its own framing and checksum):
///
/// ```text
/// offset   size         field
/// 0        8            id           u64, the table id (its file is table_file_name(id))
/// 8        8            file_bytes   u64, the length of the whole file
/// 16       8            entries      u64, number of entries (>= 1)
/// 24       8            tombstones   u64, how many of them are tombstones (<= entries)
/// 32       2            min_key_len  u16, 1..=1024
/// 34       min_key_len  min_key      the first key
/// +0       2            max_key_len  u16, 1..=1024
/// +2       max_key_len  max_key      the last key (>= min_key)
/// +0       8            min_ts       u64 \ min_version: the smallest version of any entry
/// +8       4            min_node     u32 /
/// +12      8            max_ts       u64 \ max_version: the greatest version (>= min_version)
/// +20      4            max_node     u32 /
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableMeta {
    /// The table id.
    pub id: u64,
    /// The length of the table file in bytes.
    pub file_bytes: u64,
    /// Number of entries (puts and tombstones).
    pub entries: u64,
    /// Number of tombstones among them.
    pub tombstones: u64,
    /// The smallest key.
    pub min_key: Vec<u8>,
    /// The largest key.
    pub max_key: Vec<u8>,
    /// The smallest version of any entry.
    pub min_version: Version,
    /// The greatest version of any entry.
    pub max_version: Version,
}

impl TableMeta {
    /// Appends the layout documented on [`TableMeta`].
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.id);
        out.put_u64(self.file_bytes);
        out.put_u64(self.entries);
        out.put_u64(self.tombstones);
        put_key(out, &self.min_key);
        put_key(out, &self.max_key);
        put_version(out, self.min_version);
        put_version(out, self.max_version);
    }

    /// Decodes the layout documented on [`TableMeta`], checking that its fields are consistent.
    pub fn decode(d: &mut Decoder<'_>) -> Result<TableMeta, FormatError> {
        let id = d.u64()?;
        let file_bytes = d.u64()?;
        let entries = d.u64()?;
        let tombstones = d.u64()?;
        let min_key = get_key(d)?;
        let max_key = get_key(d)?;
        let min_version = get_version(d)?;
        let max_version = get_version(d)?;
        if entries == 0 {
            return Err(d.invalid("a table with no entries"));
        }
        if tombstones > entries {
            return Err(d.invalid(format!("{tombstones} tombstones among {entries} entries")));
        }
        if min_key > max_key {
            return Err(d.invalid("min_key is greater than max_key"));
        }
        if min_version > max_version {
            return Err(d.invalid("min_version is greater than max_version"));
        }
        Ok(TableMeta {
            id,
            file_bytes,
            entries,
            tombstones,
            min_key,
            max_key,
            min_version,
            max_version,
        })
    }
}

fn put_key(out: &mut Vec<u8>, key: &[u8]) {
    debug_assert!(!key.is_empty() && key.len() <= KEY_BYTES_MAX);
    out.put_u16(key.len() as u16);
    out.extend_from_slice(key);
}

fn get_key<'a>(d: &mut Decoder<'a>) -> Result<Vec<u8>, FormatError> {
    Ok(get_key_slice(d)?.to_vec())
}

/// Reads a `key_len u16 | key` pair, checking the length against the key limit.
fn get_key_slice<'a>(d: &mut Decoder<'a>) -> Result<&'a [u8], FormatError> {
    let len = usize::from(d.u16()?);
    if len == 0 || len > KEY_BYTES_MAX {
        return Err(d.invalid(format!("key length {len} outside 1..={KEY_BYTES_MAX}")));
    }
    d.bytes(len)
}

fn put_version(out: &mut Vec<u8>, v: Version) {
    out.put_u64(v.ts_micros);
    out.put_u32(v.node.0);
}

fn get_version(d: &mut Decoder<'_>) -> Result<Version, FormatError> {
    Ok(Version {
        ts_micros: d.u64()?,
        node: NodeId(d.u32()?),
    })
}

/// Appends the meta block: the [`TableMeta`] encoding, then a CRC32 of it.
pub fn encode_meta_block(meta: &TableMeta, out: &mut Vec<u8>) {
    let start = out.len();
    meta.encode(out);
    let crc = crc32(&out[start..]);
    out.put_u32(crc);
}

/// Verifies and decodes a meta block written by [`encode_meta_block`].
pub fn decode_meta_block(bytes: &[u8]) -> Result<TableMeta, FormatError> {
    let (body, crc) = split_tail_u32("meta block", bytes)?;
    verify_crc("meta block", body, crc)?;
    let mut d = Decoder::new("meta block", body);
    let meta = TableMeta::decode(&mut d)?;
    d.finish()?;
    Ok(meta)
}

/// A [`FormatError::Invalid`] about `what`.
fn invalid(what: &'static str, detail: impl Into<String>) -> FormatError {
    FormatError::Invalid {
        what,
        detail: detail.into(),
    }
}

/// Splits `bytes` into its body and the u32 stored in its last four bytes (a block's CRC32,
/// or a count).
fn split_tail_u32<'a>(what: &'static str, bytes: &'a [u8]) -> Result<(&'a [u8], u32), FormatError> {
    let Some(body_len) = bytes.len().checked_sub(4) else {
        return Err(FormatError::Truncated {
            what,
            needed: 4,
            available: bytes.len(),
        });
    };
    let (body, tail) = bytes.split_at(body_len);
    let crc = Decoder::new(what, tail).u32()?;
    Ok((body, crc))
}

/// The magic number at the end of every table's footer: `"RSSSTBL1"` read as a u64 LE.
pub const TABLE_MAGIC: u64 = u64::from_le_bytes(*b"RSSSTBL1");
/// The table format this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;

/// The fixed-size footer at the end of every table, read first when a table opens.
///
/// ```text
/// offset  size  field
/// 0       8     filter_offset   u64, where the filter block starts
/// 8       4     filter_len      u32, its length including its CRC
/// 12      8     index_offset    u64
/// 20      4     index_len       u32
/// 24      8     meta_offset     u64
/// 32      4     meta_len        u32
/// 36      2     format_version  u16, FORMAT_VERSION (1)
/// 38      8     magic           u64, TABLE_MAGIC ("RSSSTBL1")
/// 46      4     crc32           u32, over bytes 0..46
/// ```
///
/// Decoding checks the magic first (is this a table at all?), then the version (a newer
/// footer may not be laid out like this one), then the checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footer {
    /// Offset of the filter block.
    pub filter_offset: u64,
    /// Length of the filter block.
    pub filter_len: u32,
    /// Offset of the index block.
    pub index_offset: u64,
    /// Length of the index block.
    pub index_len: u32,
    /// Offset of the meta block.
    pub meta_offset: u64,
    /// Length of the meta block.
    pub meta_len: u32,
}

impl Footer {
    /// The encoded size of a footer.
    pub const BYTES: usize = 50;
    const VERSION_AT: usize = 36;
    const MAGIC_AT: usize = 38;
    const CRC_AT: usize = 46;

    /// Appends the layout documented on [`Footer`].
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u64(self.filter_offset);
        out.put_u32(self.filter_len);
        out.put_u64(self.index_offset);
        out.put_u32(self.index_len);
        out.put_u64(self.meta_offset);
        out.put_u32(self.meta_len);
        out.put_u16(FORMAT_VERSION);
        out.put_u64(TABLE_MAGIC);
        let crc = crc32(&out[start..]);
        out.put_u32(crc);
    }

    /// Decodes a footer from exactly [`Footer::BYTES`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Footer, FormatError> {
        const WHAT: &str = "footer";
        if bytes.len() != Self::BYTES {
            return Err(FormatError::Truncated {
                what: WHAT,
                needed: Self::BYTES,
                available: bytes.len(),
            });
        }
        let field = |at: usize, len: usize| {
            let mut d = Decoder::new(WHAT, bytes);
            d.bytes(at)?;
            d.bytes(len)
        };
        let magic = Decoder::new(WHAT, field(Self::MAGIC_AT, 8)?).u64()?;
        if magic != TABLE_MAGIC {
            return Err(FormatError::BadMagic {
                what: WHAT,
                got: magic,
            });
        }
        let version = Decoder::new(WHAT, field(Self::VERSION_AT, 2)?).u16()?;
        if version != FORMAT_VERSION {
            return Err(FormatError::UnsupportedVersion {
                what: WHAT,
                got: version,
                supported: FORMAT_VERSION,
            });
        }
        let (body, crc) = split_tail_u32(WHAT, bytes)?;
        debug_assert_eq!(body.len(), Self::CRC_AT);
        verify_crc(WHAT, body, crc)?;
        let mut d = Decoder::new(WHAT, body);
        Ok(Footer {
            filter_offset: d.u64()?,
            filter_len: d.u32()?,
            index_offset: d.u64()?,
            index_len: d.u32()?,
            meta_offset: d.u64()?,
            meta_len: d.u32()?,
        })
    }
}
