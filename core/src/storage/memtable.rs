//! The memtable: recent writes, sorted in memory, until they are flushed to an SSTable.
//!
//! Each key holds only the greatest [`Version`] written to it here (LWW within the memtable);
//! versions across the memtable and SSTables are reconciled by the reads and compactions in
//! [`super::Lsm`]. The memtable also tracks the bounds the read path uses to skip it: its key
//! range and its oldest and newest versions.

use super::cell::{Cell, Version};
use std::collections::BTreeMap;
use std::ops::Bound;

/// A sorted map from key to its newest cell, with size accounting.
#[derive(Debug, Default, Clone)]
pub struct Memtable {
    map: BTreeMap<Vec<u8>, Cell>,
    bytes: usize,
    tombstones: usize,
    min_version: Option<Version>,
    max_version: Option<Version>,
    last_lsn: u64,
}

/// Bytes charged per entry for the map's own overhead.
const ENTRY_OVERHEAD_BYTES: usize = 48;

impl Memtable {
    /// An empty memtable.
    pub fn new() -> Self {
        Memtable::default()
    }

    /// Inserts `cell` under `key` unless a newer version is already here. Returns whether it won.
    pub fn insert(&mut self, key: &[u8], cell: Cell, lsn: u64) -> bool {
        self.last_lsn = self.last_lsn.max(lsn);
        let version = cell.version;
        let won = match self.map.get_mut(key) {
            Some(existing) if existing.version >= version => false,
            Some(existing) => {
                self.bytes = self.bytes - existing.footprint() + cell.footprint();
                self.tombstones = self.tombstones - usize::from(existing.is_tombstone())
                    + usize::from(cell.is_tombstone());
                *existing = cell;
                true
            }
            None => {
                self.bytes += key.len() + cell.footprint() + ENTRY_OVERHEAD_BYTES;
                self.tombstones += usize::from(cell.is_tombstone());
                self.map.insert(key.to_vec(), cell);
                true
            }
        };
        self.min_version = Some(self.min_version.map_or(version, |v| v.min(version)));
        self.max_version = Some(self.max_version.map_or(version, |v| v.max(version)));
        won
    }

    /// The newest cell for `key` in this memtable.
    pub fn get(&self, key: &[u8]) -> Option<&Cell> {
        self.map.get(key)
    }

    /// Entries with keys from `start` (inclusive), in order.
    pub fn range_from<'a>(
        &'a self,
        start: Bound<&'a [u8]>,
    ) -> impl Iterator<Item = (&'a Vec<u8>, &'a Cell)> + 'a {
        self.map.range::<[u8], _>((start, Bound::Unbounded))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Approximate bytes used.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Number of tombstones.
    pub fn tombstones(&self) -> usize {
        self.tombstones
    }

    /// The oldest version written here, if any.
    pub fn min_version(&self) -> Option<Version> {
        self.min_version
    }

    /// The newest version written here, if any.
    pub fn max_version(&self) -> Option<Version> {
        self.max_version
    }

    /// The LSN of the last batch applied.
    pub fn last_lsn(&self) -> u64 {
        self.last_lsn
    }

    /// The smallest and largest keys, if any.
    pub fn key_range(&self) -> Option<(&[u8], &[u8])> {
        let first = self.map.first_key_value()?.0;
        let last = self.map.last_key_value()?.0;
        Some((first, last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeId;

    fn v(ts: u64) -> Version {
        Version {
            ts_micros: ts,
            node: NodeId(1),
        }
    }

    #[test]
    fn older_put_does_not_win() {
        let mut m = Memtable::new();
        assert!(m.insert(b"k", Cell::put(v(10), b"new".to_vec()), 1));
        assert!(!m.insert(b"k", Cell::put(v(5), b"old".to_vec()), 2));
        assert_eq!(m.get(b"k").unwrap().value.as_deref(), Some(&b"new"[..]));
        assert_eq!(m.last_lsn(), 2);
    }

    #[test]
    fn delete_is_a_newer_tombstone() {
        let mut m = Memtable::new();
        m.insert(b"k", Cell::put(v(10), b"x".to_vec()), 1);
        assert!(m.insert(b"k", Cell::tombstone(v(11)), 2));
        assert!(m.get(b"k").unwrap().is_tombstone());
        assert_eq!(m.tombstones(), 1);
        assert_eq!(
            (m.min_version(), m.max_version()),
            (Some(v(10)), Some(v(11)))
        );
    }

    #[test]
    fn sizes_track_replacements() {
        let mut m = Memtable::new();
        m.insert(b"k", Cell::put(v(1), vec![0; 100]), 1);
        let one = m.bytes();
        m.insert(b"k", Cell::put(v(2), vec![0; 10]), 2);
        assert_eq!(m.bytes(), one - 90);
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn range_is_sorted_from_start() {
        let mut m = Memtable::new();
        for k in [&b"c"[..], b"a", b"b"] {
            m.insert(k, Cell::put(v(1), k.to_vec()), 1);
        }
        let keys: Vec<_> = m
            .range_from(Bound::Included(&b"b"[..]))
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(keys, vec![b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(m.key_range(), Some((&b"a"[..], &b"c"[..])));
    }
}
