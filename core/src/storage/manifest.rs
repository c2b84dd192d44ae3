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
    fn encode(&self, out: &mut Vec<u8>) {
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

    fn decode(body: &[u8]) -> Result<Edit, FormatError> {
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
#[derive(Debug)]
pub struct Manifest<D: Disk> {
    disk: D,
    state: ManifestState,
    file_bytes: u64,
}

impl<D: Disk> Manifest<D> {
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
                    let edit = Edit::decode(body).map_err(|e| corrupt(offset, e))?;
                    state.apply(&edit).map_err(|e| corrupt(offset, e))?;
                    offset += len;
                }
                Err(e) => {
                    let later =
                        frame::find_valid_record_after("manifest record", &bytes, offset, |body| {
                            Edit::decode(body).is_ok()
                        });
                    if later.is_some() {
                        return Err(corrupt(offset, e));
                    }
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
        let mut record = Vec::with_capacity(body.len() + frame::RECORD_HEADER_BYTES);
        frame::encode_record(&mut record, &body);
        self.disk.append(MANIFEST_FILE, &record)?;
        self.disk.sync(MANIFEST_FILE)?;
        self.file_bytes += record.len() as u64;
        self.state = next;
        Ok(())
    }
}
