//! The records the page keeps in IndexedDB: their keys, their byte layout, and batches of
//! changes to them.
//!
//! The database holds one object store, [`STORE`], mapping binary keys to binary values
//! (`Uint8Array`s), so that it is the same sorted byte map as the in-memory backend the host
//! tests use, and a batch is a plain list of puts and range deletions.
//!
//! # Keys (big-endian, so that one disk's, one inode's records are contiguous)
//!
//! | kind | key bytes |
//! | --- | --- |
//! | cluster | `0x01` |
//! | namespace | `0x02 \| node u32 \| store u8` |
//! | file | `0x03 \| node u32 \| store u8 \| inode u64` |
//! | extent | `0x04 \| node u32 \| store u8 \| inode u64 \| offset u64` |
//!
//! `store` is 0 for a node's data disk and 1 for its hint disk.
//!
//! # Values
//!
//! ```text
//! offset size field
//!      0    4 magic "RSIX"
//!      4    1 kind: 1 cluster, 2 namespace, 3 file, 4 extent (must match the key's first byte)
//!      5    1 format version of the payload (FORMAT_VERSION)
//!      6    2 reserved, zero
//!      8    4 payload length, u32 little-endian
//!     12    4 CRC32 (IEEE) of the key bytes, then value bytes 0..12, then the payload
//!     16    n payload
//! ```
//!
//! The checksum covers the key, so a value stored under another key is caught too. Payloads:
//!
//! * cluster: the [`crate::persist::ClusterRecord`], postcard-encoded (format version 1);
//! * namespace: `count u32 | count × (name_len u16 | name UTF-8 | inode u64)`, little-endian,
//!   names strictly increasing;
//! * file: `len u64` little-endian, the file's length;
//! * extent: the file's bytes from the key's offset, 1 to
//!   [`crate::idb_disk::EXTENT_BYTES_MAX`] of them.
//!
//! Decoding anything else is a typed [`SavedError`], never a panic.

use crate::idb_disk::{EXTENT_BYTES_MAX, InodeId};
use ringstore_core::NodeId;
use ringstore_core::node::StoreId;
use std::collections::BTreeMap;

/// The IndexedDB object store that holds every record.
pub const STORE: &str = "records";

/// The layout version of every record this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;

const MAGIC: &[u8; 4] = b"RSIX";
const HEADER_BYTES: usize = 16;

/// The largest payload of a cluster or namespace record.
pub const META_PAYLOAD_BYTES_MAX: usize = 4 << 20;

/// Why saved state cannot be used. Loading never changes the database; the page offers a reset
/// (`Cluster.reset`), which deletes it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SavedError {
    /// A record that ringstore did not write: an unknown key, or a value without the magic.
    #[error("record {key} is not a ringstore record: {reason}")]
    Foreign {
        /// The key, in hex.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A ringstore record whose bytes are damaged (checksum, length or payload).
    #[error("record {key} is damaged: {reason}")]
    Corrupt {
        /// The key, in hex.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A record written by a build with another format version.
    #[error("record {key} has format version {version}, this build reads version {FORMAT_VERSION}")]
    Version {
        /// The key, in hex.
        key: String,
        /// The record's version.
        version: u8,
    },
    /// Records that are each sound but do not fit together (a missing extent, a file nobody
    /// names, a disk of an unknown node...).
    #[error("the saved cluster is inconsistent: {0}")]
    Inconsistent(String),
    /// A saved node's storage engine refused its disk (e.g. a damaged WAL record followed by
    /// valid ones).
    #[error("a saved node's storage cannot recover: {0}")]
    Recovery(String),
    /// The saved cluster was made with other options than the ones asked for.
    #[error("the saved cluster was made with other options")]
    OtherOptions,
    /// IndexedDB itself failed (unavailable, quota exceeded, transaction aborted).
    #[error("IndexedDB: {0}")]
    Backend(String),
}

impl SavedError {
    /// A short name for the page: `foreign`, `corrupt`, `version`, `inconsistent`,
    /// `recovery`, `options` or `backend`.
    pub fn kind(&self) -> &'static str {
        match self {
            SavedError::Foreign { .. } => "foreign",
            SavedError::Corrupt { .. } => "corrupt",
            SavedError::Version { .. } => "version",
            SavedError::Inconsistent(_) => "inconsistent",
            SavedError::Recovery(_) => "recovery",
            SavedError::OtherOptions => "options",
            SavedError::Backend(_) => "backend",
        }
    }
}

/// Which disk of which node a record belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DiskKey {
    /// The node.
    pub node: NodeId,
    /// Its data or hint disk.
    pub store: StoreId,
}

impl DiskKey {
    fn store_byte(self) -> u8 {
        match self.store {
            StoreId::Data => 0,
            StoreId::Hints => 1,
        }
    }

    fn encode(self, kind: u8) -> Vec<u8> {
        let mut key = Vec::with_capacity(22);
        key.push(kind);
        key.extend_from_slice(&self.node.0.to_be_bytes());
        key.push(self.store_byte());
        key
    }
}

/// The kinds of record, as their key's first byte and their value's kind byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// The cluster record.
    Cluster = 1,
    /// A disk's namespace.
    Namespace = 2,
    /// A file's length.
    File = 3,
    /// A piece of a file's bytes.
    Extent = 4,
}

/// A decoded key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// The cluster record.
    Cluster,
    /// A disk's namespace.
    Namespace(DiskKey),
    /// A file record.
    File(DiskKey, InodeId),
    /// An extent at an offset.
    Extent(DiskKey, InodeId, u64),
}

/// The cluster record's key.
pub fn cluster_key() -> Vec<u8> {
    vec![Kind::Cluster as u8]
}

fn file_key(disk: DiskKey, inode: InodeId) -> Vec<u8> {
    let mut key = disk.encode(Kind::File as u8);
    key.extend_from_slice(&inode.to_be_bytes());
    key
}

fn extent_key(disk: DiskKey, inode: InodeId, offset: u64) -> Vec<u8> {
    let mut key = disk.encode(Kind::Extent as u8);
    key.extend_from_slice(&inode.to_be_bytes());
    key.extend_from_slice(&offset.to_be_bytes());
    key
}

/// Keys in hex, for errors.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn be_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.try_into().ok()?))
}

fn be_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.try_into().ok()?))
}

impl Key {
    /// Decodes a key; anything ringstore does not write is [`SavedError::Foreign`].
    pub fn decode(key: &[u8]) -> Result<Key, SavedError> {
        let foreign = |reason: &str| SavedError::Foreign {
            key: hex(key),
            reason: reason.to_string(),
        };
        let disk = |key: &[u8]| -> Option<DiskKey> {
            let node = NodeId(be_u32(key.get(1..5)?)?);
            let store = match key.get(5)? {
                0 => StoreId::Data,
                1 => StoreId::Hints,
                _ => return None,
            };
            Some(DiskKey { node, store })
        };
        let decoded = match (key.first(), key.len()) {
            (Some(1), 1) => Some(Key::Cluster),
            (Some(2), 6) => disk(key).map(Key::Namespace),
            (Some(3), 14) => disk(key)
                .zip(be_u64(&key[6..14]))
                .map(|(d, i)| Key::File(d, i)),
            (Some(4), 22) => match (disk(key), be_u64(&key[6..14]), be_u64(&key[14..22])) {
                (Some(d), Some(i), Some(o)) => Some(Key::Extent(d, i, o)),
                _ => None,
            },
            _ => None,
        };
        decoded.ok_or_else(|| foreign("unknown key layout"))
    }

    /// The record kind this key holds.
    pub fn kind(self) -> Kind {
        match self {
            Key::Cluster => Kind::Cluster,
            Key::Namespace(_) => Kind::Namespace,
            Key::File(..) => Kind::File,
            Key::Extent(..) => Kind::Extent,
        }
    }
}

/// Frames `payload` as a record of `kind` stored under `key` (see the module docs).
pub fn encode_value(key: &[u8], kind: Kind, payload: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(HEADER_BYTES + payload.len());
    value.extend_from_slice(MAGIC);
    value.push(kind as u8);
    value.push(FORMAT_VERSION);
    value.extend_from_slice(&[0, 0]);
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    value.extend_from_slice(&len.to_le_bytes());
    let crc = checksum(key, &value[..12], payload);
    value.extend_from_slice(&crc.to_le_bytes());
    value.extend_from_slice(payload);
    value
}

fn checksum(key: &[u8], header: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(key);
    hasher.update(header);
    hasher.update(payload);
    hasher.finalize()
}

/// Checks a record's framing against its key and returns its payload.
pub fn decode_value<'a>(key: &[u8], value: &'a [u8]) -> Result<(Key, &'a [u8]), SavedError> {
    let decoded = Key::decode(key)?;
    let corrupt = |reason: String| SavedError::Corrupt {
        key: hex(key),
        reason,
    };
    if value.len() < HEADER_BYTES || &value[..4] != MAGIC {
        return Err(SavedError::Foreign {
            key: hex(key),
            reason: "no ringstore record header".to_string(),
        });
    }
    let version = value[5];
    if version != FORMAT_VERSION {
        return Err(SavedError::Version {
            key: hex(key),
            version,
        });
    }
    let len = u32::from_le_bytes([value[8], value[9], value[10], value[11]]) as usize;
    let payload = &value[HEADER_BYTES..];
    if payload.len() != len {
        return Err(corrupt(format!(
            "payload of {} bytes, header says {len}",
            payload.len()
        )));
    }
    let expected = u32::from_le_bytes([value[12], value[13], value[14], value[15]]);
    let got = checksum(key, &value[..12], payload);
    if got != expected {
        return Err(corrupt(format!(
            "checksum mismatch: got {got:08x}, expected {expected:08x}"
        )));
    }
    if value[4] != decoded.kind() as u8 || value[6..8] != [0, 0] {
        return Err(corrupt(format!(
            "kind {} or reserved bytes do not match the key",
            value[4]
        )));
    }
    let max = match decoded.kind() {
        Kind::Extent => EXTENT_BYTES_MAX,
        Kind::File => 8,
        Kind::Cluster | Kind::Namespace => META_PAYLOAD_BYTES_MAX,
    };
    if len > max {
        return Err(corrupt(format!("payload of {len} bytes, at most {max}")));
    }
    Ok((decoded, payload))
}

/// Encodes a namespace payload.
pub fn encode_namespace(names: &BTreeMap<String, InodeId>) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(names.len() as u32).to_le_bytes());
    for (name, inode) in names {
        let bytes = name.as_bytes();
        out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        out.extend_from_slice(bytes);
        out.extend_from_slice(&inode.to_le_bytes());
    }
    out
}

/// Decodes a namespace payload (`key` names the record in errors).
pub fn decode_namespace(key: &[u8], mut p: &[u8]) -> Result<BTreeMap<String, InodeId>, SavedError> {
    let corrupt = |reason: &str| SavedError::Corrupt {
        key: hex(key),
        reason: format!("namespace: {reason}"),
    };
    let mut take = |n: usize| -> Result<&[u8], SavedError> {
        if p.len() < n {
            return Err(corrupt("truncated"));
        }
        let (head, rest) = p.split_at(n);
        p = rest;
        Ok(head)
    };
    let count = u32::from_le_bytes(take(4)?.try_into().map_err(|_| corrupt("count"))?);
    let mut names = BTreeMap::new();
    let mut last: Option<String> = None;
    for _ in 0..count {
        let len = u16::from_le_bytes(take(2)?.try_into().map_err(|_| corrupt("name length"))?);
        let name = std::str::from_utf8(take(usize::from(len))?)
            .map_err(|_| corrupt("a name is not UTF-8"))?
            .to_string();
        let inode = u64::from_le_bytes(take(8)?.try_into().map_err(|_| corrupt("inode"))?);
        if last.as_ref().is_some_and(|l| *l >= name) {
            return Err(corrupt("names are not strictly increasing"));
        }
        last = Some(name.clone());
        names.insert(name, inode);
    }
    if !p.is_empty() {
        return Err(corrupt("bytes after the last name"));
    }
    Ok(names)
}

/// Decodes a file record's payload.
pub fn decode_file(key: &[u8], p: &[u8]) -> Result<u64, SavedError> {
    let bytes: [u8; 8] = p.try_into().map_err(|_| SavedError::Corrupt {
        key: hex(key),
        reason: format!("file record of {} bytes, expected 8", p.len()),
    })?;
    Ok(u64::from_le_bytes(bytes))
}

/// One change to the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Deletes every record.
    Clear,
    /// Stores `value` under `key`, replacing any record there.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The framed value.
        value: Vec<u8>,
    },
    /// Deletes every record with `start <= key < end`.
    DeleteRange {
        /// First key deleted.
        start: Vec<u8>,
        /// First key kept.
        end: Vec<u8>,
    },
}

/// Changes to apply in one transaction, in order, with their size.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// The changes.
    pub ops: Vec<Op>,
    /// Bytes of keys and values put.
    pub bytes: u64,
    /// Records put.
    pub puts: u64,
}

impl Batch {
    /// Deletes every record first.
    pub fn clear(&mut self) {
        self.ops.push(Op::Clear);
    }

    /// Adds a put of a framed record.
    pub fn put(&mut self, key: Vec<u8>, kind: Kind, payload: &[u8]) {
        let value = encode_value(&key, kind, payload);
        self.bytes += (key.len() + value.len()) as u64;
        self.puts += 1;
        self.ops.push(Op::Put { key, value });
    }

    /// Puts the extent of `disk`'s `inode` at `offset`.
    pub fn put_extent(&mut self, disk: DiskKey, inode: InodeId, offset: u64, bytes: &[u8]) {
        self.put(extent_key(disk, inode, offset), Kind::Extent, bytes);
    }

    /// Puts the file record of `disk`'s `inode`.
    pub fn put_file(&mut self, disk: DiskKey, inode: InodeId, len: u64) {
        self.put(file_key(disk, inode), Kind::File, &len.to_le_bytes());
    }

    /// Puts `disk`'s namespace record.
    pub fn put_namespace(&mut self, disk: DiskKey, names: &BTreeMap<String, InodeId>) {
        let key = disk.encode(Kind::Namespace as u8);
        self.put(key, Kind::Namespace, &encode_namespace(names));
    }

    /// Deletes the extents of `disk`'s `inode` from `offset` on.
    pub fn delete_extents_from(&mut self, disk: DiskKey, inode: InodeId, offset: u64) {
        let start = extent_key(disk, inode, offset);
        // Past every 8-byte offset of this inode, before the next inode's extents.
        let mut end = file_key(disk, inode);
        end[0] = Kind::Extent as u8;
        end.extend_from_slice(&[0xff; 9]);
        self.ops.push(Op::DeleteRange { start, end });
    }

    /// Deletes the file record and every extent of `disk`'s `inode`.
    pub fn delete_file(&mut self, disk: DiskKey, inode: InodeId) {
        self.delete_extents_from(disk, inode, 0);
        let start = file_key(disk, inode);
        let mut end = start.clone();
        end.push(0);
        self.ops.push(Op::DeleteRange { start, end });
    }

    /// Appends `other`'s changes after this batch's.
    pub fn extend(&mut self, other: Batch) {
        self.ops.extend(other.ops);
        self.bytes += other.bytes;
        self.puts += other.puts;
    }
}

/// The in-memory database the host tests use, with exactly IndexedDB's semantics for what the
/// page does: a sorted map from byte keys to byte values.
pub type MemDb = BTreeMap<Vec<u8>, Vec<u8>>;

/// Applies `batch` to `db`, as one IndexedDB transaction would.
pub fn apply(db: &mut MemDb, batch: &Batch) {
    for op in &batch.ops {
        match op {
            Op::Clear => db.clear(),
            Op::Put { key, value } => {
                db.insert(key.clone(), value.clone());
            }
            Op::DeleteRange { start, end } => {
                let doomed: Vec<Vec<u8>> = db
                    .range(start.clone()..end.clone())
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in doomed {
                    db.remove(&key);
                }
            }
        }
    }
}
