//! Data blocks and the index block: the two block formats that hold keys.
//!
//! A data block holds a run of entries in strictly increasing key order, followed by an array of
//! their offsets, so a lookup binary-searches the offsets and decodes only the keys it compares
//! (and the value of the entry it finds). The index block holds, for each data block, its last
//! key and where it lies in the file; it is decoded once, when the table opens, into an [`Index`]
//! kept in memory.

use super::{get_key_slice, invalid, put_key, split_tail_u32};
use crate::storage::cell::{Cell, decode_entry, encode_entry};
use crate::storage::codec::{Decoder, FormatError, PutLe, crc32, verify_crc};

const DATA_BLOCK: &str = "data block";
const INDEX_BLOCK: &str = "index block";

/// Bytes a data block's trailer (count and CRC) adds besides the offsets array.
const DATA_TRAILER_BYTES: usize = 8;

/// Accumulates one data block. The encoded block is:
///
/// ```text
/// offset     size       field
/// 0          e          entries      count entries, each in the layout of cell::encode_entry
///                                    (key_len u16 | key | ts u64 | node u32 | kind u8 |
///                                    value_len u32 | value), keys strictly increasing
/// e          4 * count  offsets      u32 each: where entry i starts (0 for the first)
/// e+4*count  4          count        u32, number of entries (>= 1)
/// +4         4          crc32        u32, over every preceding byte of the block
/// ```
#[derive(Debug, Default)]
pub struct DataBlockBuilder {
    buf: Vec<u8>,
    offsets: Vec<u32>,
}

impl DataBlockBuilder {
    /// Appends an entry. The caller keeps keys strictly increasing and the block under
    /// `u32::MAX` bytes (the writer's blocks are at most [`super::BLOCK_BYTES_MAX`], or one
    /// entry).
    pub fn add(&mut self, key: &[u8], cell: &Cell) {
        self.offsets.push(self.buf.len() as u32);
        encode_entry(&mut self.buf, key, cell);
    }

    /// Whether no entry was added since the last [`DataBlockBuilder::clear`].
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// The size the block will have once sealed (0 when empty).
    pub fn encoded_len(&self) -> usize {
        if self.is_empty() {
            0
        } else {
            self.buf.len() + 4 * self.offsets.len() + DATA_TRAILER_BYTES
        }
    }

    /// Appends the offsets, count and checksum, and returns the whole encoded block. Call
    /// [`DataBlockBuilder::clear`] before adding to the next block.
    pub fn seal(&mut self) -> &[u8] {
        for i in 0..self.offsets.len() {
            let offset = self.offsets[i];
            self.buf.put_u32(offset);
        }
        self.buf.put_u32(self.offsets.len() as u32);
        let crc = crc32(&self.buf);
        self.buf.put_u32(crc);
        &self.buf
    }

    /// Empties the builder, keeping its allocations.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.offsets.clear();
    }
}

/// A verified data block (see [`DataBlockBuilder`] for the layout). Decoding checks the CRC and
/// that the offsets array is well formed, so later lookups only decode entries, and even those
/// decodes are bounds-checked.
#[derive(Debug)]
pub struct DataBlock {
    bytes: Vec<u8>,
    /// Where the entries end and the offsets array begins.
    entries_end: usize,
    count: usize,
}

impl DataBlock {
    /// Verifies and decodes an encoded data block.
    pub fn decode(bytes: Vec<u8>) -> Result<DataBlock, FormatError> {
        let (body, crc) = split_tail_u32(DATA_BLOCK, &bytes)?;
        verify_crc(DATA_BLOCK, body, crc)?;
        let (rest, count) = split_tail_u32(DATA_BLOCK, body)?;
        let count = count as usize;
        let offsets_len =
            count
                .checked_mul(4)
                .filter(|&n| n <= rest.len())
                .ok_or(FormatError::Truncated {
                    what: DATA_BLOCK,
                    needed: count.saturating_mul(4),
                    available: rest.len(),
                })?;
        if count == 0 {
            return Err(invalid(DATA_BLOCK, "a block with no entries"));
        }
        let entries_end = rest.len() - offsets_len;
        let block = DataBlock {
            entries_end,
            count,
            bytes,
        };
        let mut previous = None;
        for i in 0..count {
            let offset = block.offset(i)?;
            let ok = match previous {
                None => offset == 0 && entries_end > 0,
                Some(p) => offset > p && offset < entries_end,
            };
            if !ok {
                return Err(invalid(
                    DATA_BLOCK,
                    format!("entry {i} has bad offset {offset}"),
                ));
            }
            previous = Some(offset);
        }
        Ok(block)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Always `false`: a decoded block holds at least one entry.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes held in memory (the cache's weight).
    pub fn weight(&self) -> usize {
        self.bytes.len()
    }

    fn offset(&self, i: usize) -> Result<usize, FormatError> {
        let at = i
            .checked_mul(4)
            .and_then(|n| n.checked_add(self.entries_end));
        let bytes = at.and_then(|at| self.bytes.get(at..at.checked_add(4)?));
        match bytes {
            Some(b) => Ok(Decoder::new(DATA_BLOCK, b).u32()? as usize),
            None => Err(invalid(DATA_BLOCK, format!("no offset for entry {i}"))),
        }
    }

    /// The bytes of entry `i`.
    fn entry_bytes(&self, i: usize) -> Result<&[u8], FormatError> {
        let start = self.offset(i)?;
        let end = if i + 1 < self.count {
            self.offset(i + 1)?
        } else {
            self.entries_end
        };
        self.bytes
            .get(start..end)
            .ok_or_else(|| invalid(DATA_BLOCK, format!("entry {i} lies outside the block")))
    }

    /// The key of entry `i`, without decoding its value.
    pub fn key_at(&self, i: usize) -> Result<&[u8], FormatError> {
        // The entry layout starts with `key_len u16 | key`, as `encode_entry` documents.
        get_key_slice(&mut Decoder::new(DATA_BLOCK, self.entry_bytes(i)?))
    }

    /// Entry `i`, which must fill exactly the bytes its offsets give it.
    pub fn entry_at(&self, i: usize) -> Result<(&[u8], Cell), FormatError> {
        let mut d = Decoder::new(DATA_BLOCK, self.entry_bytes(i)?);
        let entry = decode_entry(&mut d)?;
        d.finish()?;
        Ok(entry)
    }

    /// The index of the first entry whose key is `>= key` (`len()` if there is none).
    pub fn lower_bound(&self, key: &[u8]) -> Result<usize, FormatError> {
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.key_at(mid)? < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// The cell stored under `key`, if any.
    pub fn get(&self, key: &[u8]) -> Result<Option<Cell>, FormatError> {
        let i = self.lower_bound(key)?;
        if i == self.count || self.key_at(i)? != key {
            return Ok(None);
        }
        let (_, cell) = self.entry_at(i)?;
        Ok(Some(cell))
    }
}

/// Where a block lies in the table file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockHandle {
    /// Offset of its first byte.
    pub offset: u64,
    /// Its length, CRC included.
    pub len: u32,
}

/// Accumulates the index block:
///
/// ```text
/// size          field          (repeated count times, once per data block, in file order)
/// 2             last_key_len   u16, 1..=1024
/// last_key_len  last_key       the block's last (greatest) key
/// 8             offset         u64, where the block starts
/// 4             len            u32, its length including its CRC
/// then:
/// 4             count          u32, number of data blocks (>= 1)
/// 4             crc32          u32, over every preceding byte of the index block
/// ```
#[derive(Debug, Default)]
pub struct IndexBuilder {
    buf: Vec<u8>,
    count: u32,
}

impl IndexBuilder {
    /// Records a data block and its last key.
    pub fn add(&mut self, last_key: &[u8], handle: BlockHandle) {
        put_key(&mut self.buf, last_key);
        self.buf.put_u64(handle.offset);
        self.buf.put_u32(handle.len);
        self.count += 1;
    }

    /// Appends the encoded index block to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&self.buf);
        out.put_u32(self.count);
        let crc = crc32(&out[start..]);
        out.put_u32(crc);
    }

    /// Bytes the encoded block will take.
    pub fn encoded_len(&self) -> usize {
        self.buf.len() + 8
    }
}

/// The decoded index, kept in memory by an open table: the data blocks' last keys (in one
/// buffer) and their handles.
#[derive(Clone, Debug)]
pub struct Index {
    keys: Vec<u8>,
    /// Per block: where its last key ends in `keys`, and the block's handle.
    blocks: Vec<(usize, BlockHandle)>,
}

impl Index {
    /// Verifies and decodes an index block. The data blocks must be contiguous, start at byte
    /// 0 and end at `data_end` (where the filter block starts), and their last keys must be
    /// strictly increasing.
    pub fn decode(bytes: &[u8], data_end: u64) -> Result<Index, FormatError> {
        let (body, crc) = split_tail_u32(INDEX_BLOCK, bytes)?;
        verify_crc(INDEX_BLOCK, body, crc)?;
        let (entries, count) = split_tail_u32(INDEX_BLOCK, body)?;
        if count == 0 {
            return Err(invalid(INDEX_BLOCK, "a table with no data blocks"));
        }
        // Each entry takes at least 15 bytes: never allocate for more than the bytes allow.
        let capacity = (count as usize).min(entries.len() / 15);
        let mut index = Index {
            keys: Vec::new(),
            blocks: Vec::with_capacity(capacity),
        };
        let mut d = Decoder::new(INDEX_BLOCK, entries);
        let mut expected_offset = 0u64;
        for i in 0..count {
            let key = get_key_slice(&mut d)?;
            let handle = BlockHandle {
                offset: d.u64()?,
                len: d.u32()?,
            };
            if handle.offset != expected_offset || (handle.len as usize) < DATA_TRAILER_BYTES {
                return Err(d.invalid(format!("block {i} at {handle:?} is out of place")));
            }
            if index.last_key().is_some_and(|last| last >= key) {
                return Err(d.invalid(format!("block {i}'s last key is out of order")));
            }
            expected_offset = handle
                .offset
                .checked_add(u64::from(handle.len))
                .ok_or_else(|| d.invalid("block end overflows"))?;
            index.keys.extend_from_slice(key);
            index.blocks.push((index.keys.len(), handle));
        }
        d.finish()?;
        if expected_offset != data_end {
            return Err(invalid(
                INDEX_BLOCK,
                format!("data blocks end at {expected_offset}, filter starts at {data_end}"),
            ));
        }
        Ok(index)
    }

    /// Number of data blocks.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Always `false` for a decoded index.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// The last key of block `i`.
    pub fn last_key_of(&self, i: usize) -> Option<&[u8]> {
        let end = self.blocks.get(i)?.0;
        let start = match i.checked_sub(1) {
            Some(prev) => self.blocks.get(prev)?.0,
            None => 0,
        };
        self.keys.get(start..end)
    }

    /// The last key of the last block: the table's greatest key.
    pub fn last_key(&self) -> Option<&[u8]> {
        self.last_key_of(self.blocks.len().checked_sub(1)?)
    }

    /// Where block `i` lies.
    pub fn handle(&self, i: usize) -> Option<BlockHandle> {
        self.blocks.get(i).map(|&(_, h)| h)
    }

    /// The first block that may hold `key` (whose last key is `>= key`), if any.
    pub fn find(&self, key: &[u8]) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.blocks.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.last_key_of(mid).is_some_and(|last| last < key) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo < self.blocks.len()).then_some(lo)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use crate::NodeId;
    use crate::storage::Version;

    fn cell(i: u64) -> Cell {
        let version = Version {
            ts_micros: i,
            node: NodeId(1),
        };
        if i.is_multiple_of(3) {
            Cell::tombstone(version)
        } else {
            Cell::put(version, vec![i as u8; 5])
        }
    }

    fn key(i: u64) -> Vec<u8> {
        format!("key{i:04}").into_bytes()
    }

    fn encoded_block(n: u64) -> Vec<u8> {
        let mut b = DataBlockBuilder::default();
        for i in 0..n {
            b.add(&key(i * 2), &cell(i));
        }
        let len = b.encoded_len();
        let bytes = b.seal().to_vec();
        assert_eq!(bytes.len(), len);
        bytes
    }

    #[test]
    fn data_block_round_trips_and_finds_keys() {
        let block = DataBlock::decode(encoded_block(20)).unwrap();
        assert_eq!(block.len(), 20);
        for i in 0..20 {
            assert_eq!(block.get(&key(i * 2)).unwrap(), Some(cell(i)));
            assert_eq!(block.get(&key(i * 2 + 1)).unwrap(), None);
            let (k, c) = block.entry_at(i as usize).unwrap();
            assert_eq!((k, c), (&key(i * 2)[..], cell(i)));
        }
        assert_eq!(block.get(b"a").unwrap(), None);
        assert_eq!(block.lower_bound(b"a").unwrap(), 0);
        assert_eq!(block.lower_bound(b"z").unwrap(), 20);
        assert_eq!(block.lower_bound(&key(3)).unwrap(), 2);
    }

    #[test]
    fn data_block_detects_every_flipped_byte() {
        let bytes = encoded_block(5);
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x01;
            let err = DataBlock::decode(bad).unwrap_err();
            assert!(
                matches!(err, FormatError::ChecksumMismatch { .. }),
                "at {at}: {err:?}"
            );
        }
    }

    #[test]
    fn data_block_with_bad_offsets_but_good_crc_is_invalid() {
        let mut b = DataBlockBuilder::default();
        b.add(b"a", &cell(1));
        b.add(b"b", &cell(2));
        let mut bytes = b.seal().to_vec();
        // Point entry 1 past the entries, then re-checksum, as a buggy writer would.
        let at = bytes.len() - 12;
        bytes[at..at + 4].copy_from_slice(&1000u32.to_le_bytes());
        let body = bytes.len() - 4;
        let crc = crc32(&bytes[..body]);
        bytes[body..].copy_from_slice(&crc.to_le_bytes());
        let err = DataBlock::decode(bytes).unwrap_err();
        assert!(matches!(err, FormatError::Invalid { .. }), "{err:?}");
    }

    #[test]
    fn data_block_with_huge_count_is_truncated_not_a_panic() {
        let mut bytes = vec![0u8; 4];
        bytes.put_u32(u32::MAX);
        let crc = crc32(&bytes);
        bytes.put_u32(crc);
        let err = DataBlock::decode(bytes).unwrap_err();
        assert!(matches!(err, FormatError::Truncated { .. }), "{err:?}");
    }

    fn encoded_index() -> Vec<u8> {
        let mut b = IndexBuilder::default();
        b.add(
            b"c",
            BlockHandle {
                offset: 0,
                len: 100,
            },
        );
        b.add(
            b"f",
            BlockHandle {
                offset: 100,
                len: 50,
            },
        );
        b.add(
            b"k",
            BlockHandle {
                offset: 150,
                len: 70,
            },
        );
        let mut out = Vec::new();
        b.encode(&mut out);
        assert_eq!(out.len(), b.encoded_len());
        out
    }

    #[test]
    fn index_block_round_trips_and_finds_blocks() {
        let index = Index::decode(&encoded_index(), 220).unwrap();
        assert_eq!(index.len(), 3);
        assert_eq!(index.last_key(), Some(&b"k"[..]));
        assert_eq!(
            index.handle(1),
            Some(BlockHandle {
                offset: 100,
                len: 50
            })
        );
        assert_eq!(index.find(b"a"), Some(0));
        assert_eq!(index.find(b"c"), Some(0));
        assert_eq!(index.find(b"d"), Some(1));
        assert_eq!(index.find(b"k"), Some(2));
        assert_eq!(index.find(b"l"), None);
    }

    #[test]
    fn index_block_detects_every_flipped_byte() {
        let bytes = encoded_index();
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x80;
            let err = Index::decode(&bad, 220).unwrap_err();
            assert!(
                matches!(err, FormatError::ChecksumMismatch { .. }),
                "at {at}: {err:?}"
            );
        }
    }

    #[test]
    fn index_block_rejects_a_gap_before_the_filter() {
        let err = Index::decode(&encoded_index(), 221).unwrap_err();
        assert!(matches!(err, FormatError::Invalid { .. }), "{err:?}");
    }
}
