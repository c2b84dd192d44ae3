//! Versioned values: what the engine stores under each key, and the limits on keys and values.
//!
//! Every value carries an LWW [`Version`], `(ts_micros, node)`, ordered by timestamp and then by the
//! writing coordinator's node id. The engine keeps, for each key, the cell with the greatest
//! version it has seen: a put older than the stored version does not win, and a delete is a
//! [`Cell`] whose value is `None` (a tombstone) with its own version.

use super::codec::{Decoder, FormatError, PutLe};
use crate::NodeId;
use serde::{Deserialize, Serialize};

/// The largest key the engine accepts, in bytes. Keys are 1 to `KEY_BYTES_MAX` bytes: a
/// client key of at most [`CLIENT_KEY_BYTES_MAX`] plus room for an internal prefix (the hint
/// store prefixes keys with the owner's id).
pub const KEY_BYTES_MAX: usize = CLIENT_KEY_BYTES_MAX + 16;
/// The largest key a client may use, in bytes.
pub const CLIENT_KEY_BYTES_MAX: usize = 1024;
/// The hard upper bound on a value, in bytes, whatever a node is configured with.
pub const VALUE_BYTES_LIMIT: usize = 16 << 20;

/// An LWW version: ordered by `ts_micros`, then by `node`, so that two different writes never tie.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Version {
    /// The coordinator's timestamp, in microseconds of its (possibly skewed) clock.
    pub ts_micros: u64,
    /// The coordinator that assigned `ts_micros`.
    pub node: NodeId,
}

/// What the engine stores for a key: a version and a value, or a tombstone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// The LWW version of this write.
    pub version: Version,
    /// The value, or `None` for a delete (a tombstone).
    pub value: Option<Vec<u8>>,
}

impl Cell {
    /// A put of `value` at `version`.
    pub fn put(version: Version, value: Vec<u8>) -> Cell {
        Cell {
            version,
            value: Some(value),
        }
    }

    /// A delete at `version`.
    pub fn tombstone(version: Version) -> Cell {
        Cell {
            version,
            value: None,
        }
    }

    /// Whether this cell is a tombstone.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }

    /// Bytes this cell takes in memory and in formats, besides its key (an estimate used for
    /// memtable sizing).
    pub fn footprint(&self) -> usize {
        ENTRY_FIXED_BYTES + self.value.as_ref().map_or(0, Vec::len)
    }
}

/// Fixed bytes of an encoded entry besides its key and value.
pub const ENTRY_FIXED_BYTES: usize = 2 + 8 + 4 + 1 + 4;

const KIND_PUT: u8 = 0;
const KIND_TOMBSTONE: u8 = 1;

/// Appends one entry in the layout shared by WAL records and SSTable data blocks:
///
/// ```text
/// offset        size      field
/// 0             2         key_len    u16 LE, 1..=1024
/// 2             key_len   key
/// +0            8         ts         u64 LE, version timestamp (µs)
/// +8            4         node       u32 LE, version node id
/// +12           1         kind       0 = put, 1 = tombstone
/// +13           4         value_len  u32 LE (0 for a tombstone)
/// +17           value_len value
/// ```
pub fn encode_entry(out: &mut Vec<u8>, key: &[u8], cell: &Cell) {
    debug_assert!(!key.is_empty() && key.len() <= KEY_BYTES_MAX);
    out.put_u16(key.len() as u16);
    out.extend_from_slice(key);
    out.put_u64(cell.version.ts_micros);
    out.put_u32(cell.version.node.0);
    match &cell.value {
        Some(v) => {
            out.push(KIND_PUT);
            out.put_u32(v.len() as u32);
            out.extend_from_slice(v);
        }
        None => {
            out.push(KIND_TOMBSTONE);
            out.put_u32(0);
        }
    }
}

/// The encoded size of an entry.
pub fn entry_len(key: &[u8], cell: &Cell) -> usize {
    key.len() + cell.footprint()
}

/// Decodes one entry written by [`encode_entry`].
pub fn decode_entry<'a>(d: &mut Decoder<'a>) -> Result<(&'a [u8], Cell), FormatError> {
    let key_len = d.u16()? as usize;
    if key_len == 0 || key_len > KEY_BYTES_MAX {
        return Err(d.invalid(format!("key length {key_len} outside 1..={KEY_BYTES_MAX}")));
    }
    let key = d.bytes(key_len)?;
    let version = Version {
        ts_micros: d.u64()?,
        node: NodeId(d.u32()?),
    };
    let kind = d.u8()?;
    let value_len = d.u32()? as usize;
    let value = match kind {
        KIND_PUT => {
            if value_len > VALUE_BYTES_LIMIT {
                return Err(d.invalid(format!("value length {value_len} over the limit")));
            }
            Some(d.bytes(value_len)?.to_vec())
        }
        KIND_TOMBSTONE if value_len == 0 => None,
        KIND_TOMBSTONE => return Err(d.invalid("tombstone with a value")),
        other => return Err(d.invalid(format!("unknown entry kind {other}"))),
    };
    Ok((key, Cell { version, value }))
}

/// Whether `key` is within the engine's limits.
pub fn check_key(key: &[u8]) -> Result<(), super::StorageError> {
    if key.is_empty() {
        return Err(super::StorageError::KeyEmpty);
    }
    if key.len() > KEY_BYTES_MAX {
        return Err(super::StorageError::KeyTooLong {
            len: key.len(),
            max: KEY_BYTES_MAX,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(ts: u64, node: u32) -> Version {
        Version {
            ts_micros: ts,
            node: NodeId(node),
        }
    }

    #[test]
    fn versions_order_by_timestamp_then_node() {
        assert!(v(10, 9) < v(11, 1));
        assert!(v(10, 1) < v(10, 2));
    }

    #[test]
    fn entry_round_trips() {
        for cell in [
            Cell::put(v(5, 3), b"Alice".to_vec()),
            Cell::tombstone(v(6, 1)),
        ] {
            let mut buf = Vec::new();
            encode_entry(&mut buf, b"user123", &cell);
            assert_eq!(buf.len(), entry_len(b"user123", &cell));
            let mut d = Decoder::new("entry", &buf);
            let (key, decoded) = decode_entry(&mut d).unwrap();
            assert_eq!(key, b"user123");
            assert_eq!(decoded, cell);
            d.finish().unwrap();
        }
    }

    #[test]
    fn entry_with_bad_kind_is_a_typed_error() {
        let mut buf = Vec::new();
        encode_entry(&mut buf, b"k", &Cell::tombstone(v(1, 1)));
        buf[2 + 1 + 12] = 7;
        let err = decode_entry(&mut Decoder::new("entry", &buf)).unwrap_err();
        assert!(matches!(err, FormatError::Invalid { .. }), "{err:?}");
    }

    #[test]
    fn entry_with_empty_key_is_rejected() {
        let buf = [0u8, 0, 1, 2, 3];
        assert!(decode_entry(&mut Decoder::new("entry", &buf)).is_err());
    }
}
