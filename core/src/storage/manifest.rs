//! The manifest: the durable record of which SSTables are live, at which level, and where the
//! WAL resumes. Changing it is the single atomic step that commits a flush or a compaction.
//!
//! `MANIFEST` is a [`super::frame`] log (magic [`MANIFEST_MAGIC`]) of edits. Each record's body:
//!
//! ```text
//! offset  size  field
//! 0       1     kind            u8: 1 = edit
//! 1       8     next_table_id   u64 LE: table ids below this may exist
//! 9       8     wal_start       u64 LE: first live WAL segment; older ones are obsolete
//! 17      8     flushed_lsn     u64 LE: every batch up to here is in an SSTable
//! 25      4     added           u32 LE: count, then per table: level u8, TableMeta encoding
//! ...     4     removed         u32 LE: count, then per table: id u64 LE
//! ```
//!
//! or, written by a clean close ([`Manifest::seal_wal`]):
//!
//! ```text
//! offset  size  field
//! 0       1     kind            u8: 2 = WAL sealed
//! 1       8     seq             u64 LE: the WAL segment a clean close sealed
//! 9       8     bytes           u64 LE: its length then, every byte synced
//! ```
//!
//! The kind byte versions the body: a reader refuses a kind it does not know with a typed
//! error. A seal tells recovery that the first `bytes` bytes of segment `seq` were whole on
//! disk, so damage there is corruption, not a torn tail (see [`super::wal`]). The latest seal
//! wins; a snapshot carries it on as a second record.
//!
//! A record is appended and synced as one write, so a crash leaves either the old or the new
//! set of tables (a torn last record is ignored, as in the WAL). The first record of a file
//! adds every live table: a snapshot. When the log grows past [`MANIFEST_REWRITE_BYTES`], a
//! fresh snapshot is written to `MANIFEST.tmp`, synced, renamed over `MANIFEST` and the
//! directory synced: again atomic.

use super::codec::{Decoder, FormatError, PutLe};
use super::frame;
use super::sstable::TableMeta;
use super::{Disk, StorageError};

/// The manifest's file name.
pub const MANIFEST_FILE: &str = "MANIFEST";
/// The temporary name a rewritten manifest is built under.
pub const MANIFEST_TMP_FILE: &str = "MANIFEST.tmp";
/// Magic number of the manifest: "RSMANIF\x01".
pub const MANIFEST_MAGIC: u64 = u64::from_le_bytes(*b"RSMANIF\x01");
/// Past this size the manifest is rewritten as one snapshot.
pub const MANIFEST_REWRITE_BYTES: u64 = 4 << 20;
/// The number of levels, L0 to L6.
pub const LEVELS: usize = 7;

const KIND_EDIT: u8 = 1;
const KIND_WAL_SEALED: u8 = 2;

/// A WAL segment's prefix that a clean close synced whole (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalSeal {
    /// The segment.
    pub seq: u64,
    /// Its length when sealed.
    pub bytes: u64,
}

impl WalSeal {
    /// Appends the record body documented at the top of this module.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(KIND_WAL_SEALED);
        out.put_u64(self.seq);
        out.put_u64(self.bytes);
    }

    /// How many of segment `seq`'s first bytes this seal covers (zero for another segment).
    pub fn sealed_bytes(seal: Option<WalSeal>, seq: u64) -> u64 {
        seal.filter(|s| s.seq == seq).map_or(0, |s| s.bytes)
    }
}

/// One manifest record, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// A change to the live tables.
    Edit(Edit),
    /// A clean close sealed a WAL segment.
    WalSealed(WalSeal),
}

impl Record {
    /// Decodes one record body (the checksum was checked by the record's frame).
    pub fn decode(body: &[u8]) -> Result<Record, FormatError> {
        if body.first() == Some(&KIND_WAL_SEALED) {
            let mut d = Decoder::new("manifest wal seal", body);
            d.u8()?;
            let seal = WalSeal {
                seq: d.u64()?,
                bytes: d.u64()?,
            };
            d.finish()?;
            return Ok(Record::WalSealed(seal));
        }
        Edit::decode(body).map(Record::Edit)
    }
}

/// The live set of tables and the WAL position, as recorded in the manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManifestState {
    /// Table ids below this may be in use.
    pub next_table_id: u64,
    /// First live WAL segment.
    pub wal_start: u64,
    /// Every WAL batch up to this LSN is in an SSTable.
    pub flushed_lsn: u64,
    /// Tables per level. L0 in flush order (oldest first); deeper levels sorted by key.
    pub levels: Vec<Vec<TableMeta>>,
    /// The last WAL segment a clean close sealed, if any.
    pub wal_sealed: Option<WalSeal>,
}

/// One atomic change to the manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Edit {
    /// New `next_table_id`.
    pub next_table_id: u64,
    /// New `wal_start`.
    pub wal_start: u64,
    /// New `flushed_lsn`.
    pub flushed_lsn: u64,
    /// Tables added, with their level.
    pub added: Vec<(u8, TableMeta)>,
    /// Ids of tables removed.
    pub removed: Vec<u64>,
}

impl Edit {
    /// Appends the record body documented at the top of this module.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(KIND_EDIT);
        out.put_u64(self.next_table_id);
        out.put_u64(self.wal_start);
        out.put_u64(self.flushed_lsn);
        out.put_u32(self.added.len() as u32);
        for (level, meta) in &self.added {
            out.push(*level);
            meta.encode(out);
        }
        out.put_u32(self.removed.len() as u32);
        for id in &self.removed {
            out.put_u64(*id);
        }
    }

    /// Decodes one record body (the checksum was checked by the record's frame).
    pub fn decode(body: &[u8]) -> Result<Edit, FormatError> {
        let mut d = Decoder::new("manifest edit", body);
        let kind = d.u8()?;
        if kind != KIND_EDIT {
            return Err(d.invalid(format!("unknown record kind {kind}")));
        }
        let mut edit = Edit {
            next_table_id: d.u64()?,
            wal_start: d.u64()?,
            flushed_lsn: d.u64()?,
            ..Edit::default()
        };
        let added = d.u32()? as usize;
        for _ in 0..added {
            let level = d.u8()?;
            if usize::from(level) >= LEVELS {
                return Err(d.invalid(format!("level {level} out of range")));
            }
            edit.added.push((level, TableMeta::decode(&mut d)?));
        }
        let removed = d.u32()? as usize;
        for _ in 0..removed {
            edit.removed.push(d.u64()?);
        }
        d.finish()?;
        Ok(edit)
    }
}

impl ManifestState {
    /// An empty database.
    pub fn empty() -> Self {
        ManifestState {
            levels: vec![Vec::new(); LEVELS],
            ..ManifestState::default()
        }
    }

    /// Applies `edit`; fails without changing anything if it removes a table that is not live.
    pub fn apply(&mut self, edit: &Edit) -> Result<(), FormatError> {
        let mut next = self.clone();
        for id in &edit.removed {
            let found = next.levels.iter_mut().any(|level| {
                let before = level.len();
                level.retain(|t| t.id != *id);
                level.len() != before
            });
            if !found {
                return Err(FormatError::Invalid {
                    what: "manifest edit",
                    detail: format!("removes table {id}, which is not live"),
                });
            }
        }
        for (level, meta) in &edit.added {
            let level = next
                .levels
                .get_mut(usize::from(*level))
                .ok_or(FormatError::Invalid {
                    what: "manifest edit",
                    detail: format!("level {level} out of range"),
                })?;
            level.push(meta.clone());
        }
        for (i, level) in next.levels.iter_mut().enumerate() {
            if i == 0 {
                level.sort_by_key(|t| t.id);
            } else {
                level.sort_by(|a, b| a.min_key.cmp(&b.min_key));
            }
        }
        next.next_table_id = edit.next_table_id;
        next.wal_start = edit.wal_start;
        next.flushed_lsn = edit.flushed_lsn;
        *self = next;
        Ok(())
    }

    /// The edit that recreates this state from nothing.
    fn snapshot_edit(&self) -> Edit {
        Edit {
            next_table_id: self.next_table_id,
            wal_start: self.wal_start,
            flushed_lsn: self.flushed_lsn,
            added: self
                .levels
                .iter()
                .enumerate()
                .flat_map(|(l, tables)| tables.iter().map(move |t| (l as u8, t.clone())))
                .collect(),
            removed: Vec::new(),
        }
    }
}

/// The open manifest: its state and its file.
#[derive(Clone, Debug)]
pub struct Manifest<D: Disk> {
    disk: D,
    state: ManifestState,
    file_bytes: u64,
}

impl<D: Disk> Manifest<D> {
    /// The same manifest over `disk`, a copy of its disk: for [`super::Lsm::fork`].
    pub(super) fn with_disk(&self, disk: D) -> Manifest<D> {
        Manifest {
            disk,
            ..self.clone()
        }
    }

    /// Reads the manifest if there is one. A torn last record is dropped (and cut off).
    pub fn open(disk: D) -> Result<Option<Manifest<D>>, StorageError> {
        if disk.exists(MANIFEST_TMP_FILE)? {
            disk.delete(MANIFEST_TMP_FILE)?;
        }
        if !disk.exists(MANIFEST_FILE)? {
            return Ok(None);
        }
        let bytes = disk.read_all(MANIFEST_FILE)?;
        let corrupt = |offset: usize, source: FormatError| StorageError::Corrupt {
            file: MANIFEST_FILE.to_string(),
            offset: offset as u64,
            source,
        };
        frame::decode_header("manifest header", MANIFEST_MAGIC, &bytes)
            .map_err(|e| corrupt(0, e))?;
        let mut state = ManifestState::empty();
        let mut offset = frame::HEADER_BYTES;
        while offset < bytes.len() {
            match frame::decode_record("manifest record", &bytes[offset..]) {
                Ok((body, len)) => {
                    match Record::decode(body).map_err(|e| corrupt(offset, e))? {
                        Record::Edit(edit) => {
                            state.apply(&edit).map_err(|e| corrupt(offset, e))?;
                        }
                        Record::WalSealed(seal) => state.wal_sealed = Some(seal),
                    }
                    offset += len;
                }
                Err(e) => {
                    let later =
                        frame::find_valid_record_after("manifest record", &bytes, offset, |body| {
                            Record::decode(body).is_ok()
                        });
                    if later.is_some() || offset == frame::HEADER_BYTES {
                        // A manifest starts with a snapshot, synced before it got its name:
                        // damage there is no torn tail (and must not be cut).
                        return Err(corrupt(offset, e));
                    }
                    frame::confirm_read(&disk, MANIFEST_FILE, &bytes)?;
                    disk.truncate(MANIFEST_FILE, offset as u64)?;
                    disk.sync(MANIFEST_FILE)?;
                    break;
                }
            }
        }
        if offset == frame::HEADER_BYTES {
            // Every manifest starts with a snapshot record, synced before it got its name.
            return Err(corrupt(
                offset,
                FormatError::Truncated {
                    what: "manifest",
                    needed: 1,
                    available: 0,
                },
            ));
        }
        Ok(Some(Manifest {
            disk,
            state,
            file_bytes: offset as u64,
        }))
    }

    /// Creates a manifest holding `state`, atomically replacing any existing one.
    pub fn create(disk: D, state: ManifestState) -> Result<Manifest<D>, StorageError> {
        let mut bytes = frame::encode_header(MANIFEST_MAGIC);
        let mut body = Vec::new();
        state.snapshot_edit().encode(&mut body);
        frame::encode_record(&mut bytes, &body);
        if let Some(seal) = state.wal_sealed {
            body.clear();
            seal.encode(&mut body);
            frame::encode_record(&mut bytes, &body);
        }
        if disk.exists(MANIFEST_TMP_FILE)? {
            disk.delete(MANIFEST_TMP_FILE)?;
        }
        disk.create(MANIFEST_TMP_FILE)?;
        disk.append(MANIFEST_TMP_FILE, &bytes)?;
        disk.sync(MANIFEST_TMP_FILE)?;
        disk.rename(MANIFEST_TMP_FILE, MANIFEST_FILE)?;
        disk.sync_dir()?;
        Ok(Manifest {
            disk,
            state,
            file_bytes: bytes.len() as u64,
        })
    }

    /// The live state.
    pub fn state(&self) -> &ManifestState {
        &self.state
    }

    /// Size of the manifest file.
    pub fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    /// Durably records that a clean close sealed WAL segment `seq` at `bytes` (see the module
    /// docs). On error the file may hold the record: the caller must treat the engine as
    /// poisoned.
    pub fn seal_wal(&mut self, seq: u64, bytes: u64) -> Result<(), StorageError> {
        let seal = WalSeal { seq, bytes };
        let mut body = Vec::new();
        seal.encode(&mut body);
        self.append_record(&body)?;
        self.state.wal_sealed = Some(seal);
        Ok(())
    }

    fn append_record(&mut self, body: &[u8]) -> Result<(), StorageError> {
        let mut record = Vec::with_capacity(body.len() + frame::RECORD_HEADER_BYTES);
        frame::encode_record(&mut record, body);
        self.disk.append(MANIFEST_FILE, &record)?;
        self.disk.sync(MANIFEST_FILE)?;
        self.file_bytes += record.len() as u64;
        Ok(())
    }

    /// Durably applies `edit`. On error the state in memory is unchanged, but the file may hold
    /// the edit: the caller must treat the engine as poisoned.
    pub fn apply(&mut self, edit: Edit) -> Result<(), StorageError> {
        let mut next = self.state.clone();
        next.apply(&edit).map_err(|source| StorageError::Corrupt {
            file: MANIFEST_FILE.to_string(),
            offset: self.file_bytes,
            source,
        })?;
        if self.file_bytes > MANIFEST_REWRITE_BYTES {
            *self = Manifest::create(self.disk.clone(), next)?;
            return Ok(());
        }
        let mut body = Vec::new();
        edit.encode(&mut body);
        self.append_record(&body)?;
        self.state = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeId;
    use crate::storage::{SimDisk, Version};

    fn version(ts: u64) -> Version {
        Version {
            ts_micros: ts,
            node: NodeId(2),
        }
    }

    /// Table `id` over `[min, max]`.
    fn meta(id: u64, min: &[u8], max: &[u8]) -> TableMeta {
        TableMeta {
            id,
            file_bytes: 1000 + id,
            entries: 10,
            tombstones: 1,
            min_key: min.to_vec(),
            max_key: max.to_vec(),
            min_version: version(id),
            max_version: version(id + 5),
        }
    }

    fn decode_encoded(edit: &Edit) -> Result<Edit, FormatError> {
        let mut body = Vec::new();
        edit.encode(&mut body);
        Edit::decode(&body)
    }

    /// Tables 1 and 2 in L0, 3 and 4 in L1.
    fn state() -> ManifestState {
        let mut state = ManifestState::empty();
        state
            .apply(&Edit {
                next_table_id: 5,
                wal_start: 3,
                flushed_lsn: 40,
                added: vec![
                    (1, meta(4, b"m", b"p")),
                    (0, meta(2, b"a", b"z")),
                    (1, meta(3, b"a", b"f")),
                    (0, meta(1, b"c", b"d")),
                ],
                removed: Vec::new(),
            })
            .unwrap();
        state
    }

    #[test]
    fn edit_round_trips() {
        let edit = Edit {
            next_table_id: 9,
            wal_start: 4,
            flushed_lsn: 77,
            added: vec![(0, meta(7, b"a", b"k")), (6, meta(8, b"l", b"z"))],
            removed: vec![1, 2, 5],
        };
        assert_eq!(decode_encoded(&edit).unwrap(), edit);
        assert_eq!(decode_encoded(&Edit::default()).unwrap(), Edit::default());
    }

    #[test]
    fn edit_decode_rejects_bad_bytes_with_typed_errors() {
        let edit = Edit {
            added: vec![(1, meta(7, b"a", b"k"))],
            ..Edit::default()
        };
        let mut body = Vec::new();
        edit.encode(&mut body);

        let mut kind = body.clone();
        kind[0] = 2;
        let mut level = body.clone();
        level[29] = LEVELS as u8;
        let mut trailing = body.clone();
        trailing.push(0);
        for bad in [kind, level, trailing] {
            let err = Edit::decode(&bad).unwrap_err();
            assert!(matches!(err, FormatError::Invalid { .. }), "{err:?}");
        }
        for cut in 0..body.len() {
            assert!(Edit::decode(&body[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn apply_keeps_l0_in_id_order_and_deeper_levels_in_key_order() {
        let state = state();
        let ids = |level: usize| -> Vec<u64> { state.levels[level].iter().map(|t| t.id).collect() };
        assert_eq!((ids(0), ids(1)), (vec![1, 2], vec![3, 4]));
        assert_eq!(
            (state.next_table_id, state.wal_start, state.flushed_lsn),
            (5, 3, 40)
        );
        // The snapshot edit rebuilds the same state from nothing.
        let mut rebuilt = ManifestState::empty();
        rebuilt.apply(&state.snapshot_edit()).unwrap();
        assert_eq!(rebuilt, state);
    }

    #[test]
    fn apply_rejects_removing_a_table_that_is_not_live_and_changes_nothing() {
        let mut state = state();
        let before = state.clone();
        // Table 3 is live and is removed first; table 9 is not: the whole edit must fail.
        let edit = Edit {
            next_table_id: 10,
            wal_start: 8,
            flushed_lsn: 90,
            added: vec![(2, meta(9, b"a", b"f"))],
            removed: vec![3, 9],
        };
        let err = state.apply(&edit).unwrap_err();
        assert!(
            matches!(err, FormatError::Invalid { ref detail, .. } if detail.contains("table 9")),
            "{err:?}"
        );
        assert_eq!(state, before);
        // The same through a manifest on disk: the file is not touched either.
        let disk = SimDisk::new(1);
        let mut manifest = Manifest::create(disk.clone(), before.clone()).unwrap();
        let bytes = disk.read_all(MANIFEST_FILE).unwrap();
        let err = manifest.apply(edit).unwrap_err();
        assert!(matches!(err, StorageError::Corrupt { .. }), "{err:?}");
        assert_eq!(manifest.state(), &before);
        assert_eq!(disk.read_all(MANIFEST_FILE).unwrap(), bytes);
    }

    #[test]
    fn edits_survive_reopen_and_a_torn_last_edit_is_dropped() {
        let disk = SimDisk::new(1);
        let mut manifest = Manifest::create(disk.clone(), state()).unwrap();
        let edit = Edit {
            next_table_id: 6,
            wal_start: 3,
            flushed_lsn: 40,
            added: vec![(1, meta(5, b"g", b"h"))],
            removed: vec![1, 2],
        };
        manifest.apply(edit.clone()).unwrap();
        let expected = manifest.state().clone();
        let reopened = Manifest::open(disk.clone()).unwrap().unwrap();
        assert_eq!(reopened.state(), &expected);
        assert_eq!(reopened.file_bytes(), manifest.file_bytes());

        // Half of a further edit: dropped and cut off at open.
        let mut body = Vec::new();
        Edit {
            removed: vec![5],
            ..edit
        }
        .encode(&mut body);
        let mut record = Vec::new();
        frame::encode_record(&mut record, &body);
        disk.append(MANIFEST_FILE, &record[..record.len() / 2])
            .unwrap();
        let reopened = Manifest::open(disk.clone()).unwrap().unwrap();
        assert_eq!(reopened.state(), &expected);
        assert_eq!(disk.len(MANIFEST_FILE).unwrap(), manifest.file_bytes());
    }

    #[test]
    fn rewrite_past_the_size_limit_keeps_the_same_state() {
        let disk = SimDisk::new(7);
        let mut manifest = Manifest::create(disk.clone(), state()).unwrap();
        let mut expected = state();
        // Each edit replaces the previous L2 table by one with 1 KiB keys: ~2 KiB per record.
        let long_key = |c: u8| vec![c; crate::storage::KEY_BYTES_MAX];
        let mut previous: Option<u64> = None;
        let mut rewritten = false;
        let mut id = 100;
        while !rewritten {
            let before = manifest.file_bytes();
            let edit = Edit {
                next_table_id: id + 1,
                wal_start: 3 + id,
                flushed_lsn: 40 + id,
                added: vec![(2, meta(id, &long_key(b'a'), &long_key(b'b')))],
                removed: previous.into_iter().collect(),
            };
            expected.apply(&edit).unwrap();
            manifest.apply(edit).unwrap();
            assert_eq!(manifest.state(), &expected);
            rewritten = manifest.file_bytes() < before;
            if rewritten {
                assert!(before > MANIFEST_REWRITE_BYTES);
            }
            previous = Some(id);
            id += 1;
        }
        assert!(id > 1000, "the limit took {id} edits to reach");
        // One snapshot record: header, framing, a snapshot of five tables.
        assert!(manifest.file_bytes() < 8 << 10, "{}", manifest.file_bytes());
        assert!(!disk.exists(MANIFEST_TMP_FILE).unwrap());
        assert_eq!(disk.len(MANIFEST_FILE).unwrap(), manifest.file_bytes());

        // The rewrite is durable, and later edits append to it as before.
        disk.crash();
        let mut reopened = Manifest::open(disk.clone()).unwrap().unwrap();
        assert_eq!(reopened.state(), &expected);
        assert_eq!(reopened.file_bytes(), manifest.file_bytes());
        let edit = Edit {
            next_table_id: id + 1,
            wal_start: 3 + id,
            flushed_lsn: 40 + id,
            added: Vec::new(),
            removed: previous.into_iter().collect(),
        };
        expected.apply(&edit).unwrap();
        reopened.apply(edit).unwrap();
        disk.crash();
        let reopened = Manifest::open(disk).unwrap().unwrap();
        assert_eq!(reopened.state(), &expected);
    }
}
