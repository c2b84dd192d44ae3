//! The write-ahead log: every write is appended here before it touches the memtable, so that a
//! crash loses nothing that was synced.
//!
//! The log is a sequence of segment files `wal-{seq:016}.log`. A new segment starts whenever a
//! memtable is frozen; once that memtable is flushed to an SSTable and the manifest records it,
//! the segments it covered are deleted.
//!
//! Each segment is a [`super::frame`] file header (magic [`WAL_MAGIC`]) followed by framed
//! records. A record's body is a batch of entries applied atomically:
//!
//! ```text
//! offset  size  field
//! 0       8     lsn      u64 LE: log sequence number of this batch; consecutive across segments
//! 8       4     count    u32 LE: number of entries, at least 1
//! 12      ...   entries  count × cell entry (see `cell::encode_entry`)
//! ```
//!
//! **Group commit.** [`WalWriter::append`] only encodes the batch into an in-memory buffer
//! (bounded by [`WAL_BUFFER_BYTES`]: past it, the buffer is written to the disk). A sync writes
//! the buffer and syncs the segment once for every batch appended since the last sync, however
//! many writers they came from. The split [`WalWriter::begin_sync`] / [`WalWriter::complete_sync`]
//! lets a threaded host run the slow `Disk::sync` without holding the engine.
//!
//! **Preallocation.** A new segment asks the disk to reserve [`wal_preallocate_bytes`] (about
//! what it will hold before the memtable rotates it), once its header is durable. On real files
//! each sync then only writes data and need not commit a new file size. A segment that is
//! closed (rotated, or the engine closed) is cut back to what was written before its final
//! sync, so only the newest segment can carry a zero tail after a crash, and recovery cuts that
//! tail like any torn tail: zeros never parse as a record.
//!
//! **Recovery.** Records are replayed in order. The first record that does not parse ends the
//! valid prefix. If no valid record with a later LSN follows it in the last segment, it is a torn
//! tail and the segment is truncated to the valid prefix; otherwise (damage with valid data after
//! it, or damage in an older segment, which was synced when the log rotated) recovery fails with
//! [`StorageError::Corrupt`] rather than silently dropping synced writes.

use super::cell::{Cell, decode_entry, encode_entry};
use super::codec::{Decoder, FormatError, PutLe};
use super::frame;
use super::{Disk, StorageError};

/// Magic number of WAL segments: "RSWAL\0\0\x01".
pub const WAL_MAGIC: u64 = u64::from_le_bytes(*b"RSWAL\0\0\x01");
/// Bytes buffered in memory before they are written to the segment without a sync.
pub const WAL_BUFFER_BYTES: usize = 256 << 10;
/// The most a segment preallocates. 64 MiB, as fjall's journal.
pub const WAL_PREALLOCATE_BYTES_MAX: u64 = 64 << 20;

/// What a new segment preallocates when the memtable rotates the log every `memtable_bytes_max`:
/// about what the segment will hold, at most [`WAL_PREALLOCATE_BYTES_MAX`].
pub fn wal_preallocate_bytes(memtable_bytes_max: usize) -> u64 {
    (memtable_bytes_max as u64).min(WAL_PREALLOCATE_BYTES_MAX)
}

/// A log sequence number: batch `n` of the log. Zero means "nothing".
pub type Lsn = u64;

/// The file name of WAL segment `seq`.
pub fn segment_file_name(seq: u64) -> String {
    format!("wal-{seq:016}.log")
}

/// The sequence number of a WAL segment file name.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    if digits.len() != 16 {
        return None;
    }
    digits.parse().ok()
}

/// Encodes a batch body (without framing).
fn encode_batch(out: &mut Vec<u8>, lsn: Lsn, entries: &[(&[u8], &Cell)]) {
    out.put_u64(lsn);
    out.put_u32(entries.len() as u32);
    for (key, cell) in entries {
        encode_entry(out, key, cell);
    }
}

/// A batch of entries as read back from the log.
pub type Batch = Vec<(Vec<u8>, Cell)>;

/// Decodes a batch body.
pub fn decode_batch(body: &[u8]) -> Result<(Lsn, Batch), FormatError> {
    let mut d = Decoder::new("wal batch", body);
    let lsn = d.u64()?;
    let count = d.u32()? as usize;
    if count == 0 {
        return Err(d.invalid("empty batch"));
    }
    // Each entry takes at least 20 bytes: bound the allocation by what the bytes can hold.
    let mut entries = Vec::with_capacity(count.min(d.remaining() / 20 + 1));
    for _ in 0..count {
        let (key, cell) = decode_entry(&mut d)?;
        entries.push((key.to_vec(), cell));
    }
    d.finish()?;
    Ok((lsn, entries))
}

/// A sync that was started with [`WalWriter::begin_sync`]: sync `segment` on the disk (with no
/// engine lock held), then hand the ticket back to [`WalWriter::complete_sync`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncTicket {
    /// The segment file to sync.
    pub segment: String,
    /// Every batch up to and including this LSN is durable once the sync returns.
    pub upto: Lsn,
    /// Whether the directory must be synced too (a segment was created since the last one).
    pub sync_dir: bool,
}

/// Appends batches to the current segment, buffering and group-committing them.
#[derive(Debug)]
pub struct WalWriter<D: Disk> {
    disk: D,
    seq: u64,
    name: String,
    buffer: Vec<u8>,
    /// Bytes of the current segment already written to the disk.
    written_bytes: u64,
    /// Bytes of all live segments (on disk or buffered).
    live_bytes: u64,
    last_lsn: Lsn,
    /// Highest LSN whose bytes have been handed to `Disk::append`.
    written_lsn: Lsn,
    durable_lsn: Lsn,
    dir_dirty: bool,
    bytes_appended_total: u64,
    /// What each new segment asks [`Disk::preallocate`] for.
    preallocate_bytes: u64,
}

impl<D: Disk> WalWriter<D> {
    /// Starts segment `seq` (a new file) and preallocates `preallocate_bytes` for it (see
    /// [`wal_preallocate_bytes`]); the next batch gets `last_lsn + 1`. The new file's name is not
    /// durable until the first sync (or [`WalWriter::dir_synced`]).
    pub fn create(
        disk: D,
        seq: u64,
        last_lsn: Lsn,
        live_bytes: u64,
        preallocate_bytes: u64,
    ) -> Result<Self, StorageError> {
        let name = segment_file_name(seq);
        disk.create(&name)?;
        let header = frame::encode_header(WAL_MAGIC);
        disk.append(&name, &header)?;
        // A segment is never followed by another whose header is durable while its own is not.
        disk.sync(&name)?;
        // Only now: a crash can never leave a reserved (zero) header, which recovery could not
        // tell from a damaged one; a zero tail after a valid header is cut as a torn tail.
        disk.preallocate(&name, preallocate_bytes)?;
        Ok(WalWriter {
            disk,
            seq,
            name,
            buffer: Vec::with_capacity(WAL_BUFFER_BYTES),
            written_bytes: header.len() as u64,
            live_bytes: live_bytes + header.len() as u64,
            last_lsn,
            written_lsn: last_lsn,
            durable_lsn: last_lsn,
            dir_dirty: true,
            bytes_appended_total: header.len() as u64,
            preallocate_bytes,
        })
    }

    /// Records that the directory was synced since this segment was created (as [`super::Lsm`]
    /// does when it opens), so the next sync need not sync it again.
    pub fn dir_synced(&mut self) {
        self.dir_dirty = false;
    }

    /// The current segment's sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The LSN of the last batch appended.
    pub fn last_lsn(&self) -> Lsn {
        self.last_lsn
    }

    /// The LSN up to which every batch is durable.
    pub fn durable_lsn(&self) -> Lsn {
        self.durable_lsn
    }

    /// Bytes of every live segment, buffered bytes included.
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    /// Bytes this writer has appended to disks since it was created (including rotations).
    pub fn bytes_appended_total(&self) -> u64 {
        self.bytes_appended_total
    }

    /// Appends one batch; returns its LSN. Not durable until a sync covers it.
    pub fn append(&mut self, entries: &[(&[u8], &Cell)]) -> Result<Lsn, StorageError> {
        let lsn = self.last_lsn + 1;
        let before = self.buffer.len();
        let start = frame::begin_record(&mut self.buffer);
        encode_batch(&mut self.buffer, lsn, entries);
        frame::finish_record(&mut self.buffer, start);
        self.live_bytes += (self.buffer.len() - before) as u64;
        self.last_lsn = lsn;
        if self.buffer.len() >= WAL_BUFFER_BYTES {
            self.write_buffer()?;
        }
        Ok(lsn)
    }

    /// Hands buffered bytes to the disk (without syncing).
    pub fn write_buffer(&mut self) -> Result<(), StorageError> {
        if !self.buffer.is_empty() {
            self.disk.append(&self.name, &self.buffer)?;
            self.written_bytes += self.buffer.len() as u64;
            self.bytes_appended_total += self.buffer.len() as u64;
            self.buffer.clear();
        }
        self.written_lsn = self.last_lsn;
        Ok(())
    }

    /// Whether some appended batch is not yet durable.
    pub fn has_unsynced(&self) -> bool {
        self.durable_lsn < self.last_lsn
    }

    /// Writes the buffer and returns what must be synced to make every appended batch durable,
    /// or `None` when everything already is.
    pub fn begin_sync(&mut self) -> Result<Option<SyncTicket>, StorageError> {
        if !self.has_unsynced() {
            return Ok(None);
        }
        self.write_buffer()?;
        let ticket = SyncTicket {
            segment: self.name.clone(),
            upto: self.written_lsn,
            sync_dir: self.dir_dirty,
        };
        self.dir_dirty = false;
        Ok(Some(ticket))
    }

    /// Runs the disk side of a ticket: syncs the segment (and the directory if needed).
    pub fn run_sync(disk: &D, ticket: &SyncTicket) -> Result<(), StorageError> {
        disk.sync(&ticket.segment)?;
        if ticket.sync_dir {
            disk.sync_dir()?;
        }
        Ok(())
    }

    /// Records that a ticket's sync succeeded.
    pub fn complete_sync(&mut self, ticket: &SyncTicket) {
        self.durable_lsn = self.durable_lsn.max(ticket.upto);
    }

    /// Records that a ticket's sync failed: the directory may still need a sync.
    pub fn fail_sync(&mut self, ticket: &SyncTicket) {
        self.dir_dirty |= ticket.sync_dir;
    }

    /// Syncs everything appended so far, in one step.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        if let Some(ticket) = self.begin_sync()? {
            match Self::run_sync(&self.disk, &ticket) {
                Ok(()) => self.complete_sync(&ticket),
                Err(e) => {
                    self.fail_sync(&ticket);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Makes everything appended durable and cuts the segment back to what was written (giving
    /// back the preallocated space), so that a reopen reads it exactly: an older segment must
    /// end with its last record, as only the newest may have a torn tail. Appends may go on
    /// afterwards; they just grow the file.
    pub fn seal(&mut self) -> Result<(), StorageError> {
        self.write_buffer()?;
        self.disk.truncate(&self.name, self.written_bytes)?;
        self.disk.sync(&self.name)?;
        if self.dir_dirty {
            // The segment's name must be as durable as its contents.
            self.disk.sync_dir()?;
            self.dir_dirty = false;
        }
        self.durable_lsn = self.written_lsn;
        Ok(())
    }

    /// Seals the current segment (so that a later segment can never survive a crash that an
    /// earlier one did not) and starts segment `seq`.
    pub fn rotate(&mut self, seq: u64) -> Result<(), StorageError> {
        self.seal()?;
        let next = WalWriter::create(
            self.disk.clone(),
            seq,
            self.last_lsn,
            self.live_bytes,
            self.preallocate_bytes,
        )?;
        let total = self.bytes_appended_total;
        *self = next;
        self.bytes_appended_total += total;
        Ok(())
    }

    /// Forgets `bytes` of deleted segments in the live-bytes count.
    pub fn segments_deleted(&mut self, bytes: u64) {
        self.live_bytes = self.live_bytes.saturating_sub(bytes);
    }
}

/// One segment read back at recovery.
#[derive(Debug, Default)]
pub struct ReplayedSegment {
    /// Batches in order: their LSN and entries.
    pub batches: Vec<(Lsn, Batch)>,
    /// Length of the valid prefix in bytes.
    pub valid_bytes: u64,
    /// Bytes after the valid prefix (a torn tail), zero if none.
    pub torn_bytes: u64,
}

/// Reads segment `name`, checking its LSNs follow `prev_lsn`. `is_last` says whether a torn
/// tail is allowed (only the newest segment can have one).
pub fn replay_segment<D: Disk>(
    disk: &D,
    name: &str,
    prev_lsn: Lsn,
    is_last: bool,
) -> Result<ReplayedSegment, StorageError> {
    let bytes = disk.read_all(name)?;
    let corrupt = |offset: usize, source: FormatError| StorageError::Corrupt {
        file: name.to_string(),
        offset: offset as u64,
        source,
    };
    let mut out = ReplayedSegment::default();
    if bytes.len() < frame::HEADER_BYTES && is_last {
        // A segment whose header never became durable: nothing in it was ever synced.
        out.torn_bytes = bytes.len() as u64;
        return Ok(out);
    }
    frame::decode_header("wal header", WAL_MAGIC, &bytes).map_err(|e| corrupt(0, e))?;
    let mut offset = frame::HEADER_BYTES;
    let mut expected = prev_lsn + 1;
    while offset < bytes.len() {
        let parsed = frame::decode_record("wal record", &bytes[offset..])
            .and_then(|(body, len)| decode_batch(body).map(|batch| (batch, len)));
        match parsed {
            Ok(((lsn, entries), len)) if lsn == expected => {
                expected = lsn + 1;
                out.batches.push((lsn, entries));
                offset += len;
            }
            Ok(((lsn, _), _)) => {
                return Err(corrupt(
                    offset,
                    FormatError::Invalid {
                        what: "wal record",
                        detail: format!("lsn {lsn} where {expected} was expected"),
                    },
                ));
            }
            Err(e) => {
                let later = frame::find_valid_record_after(
                    "wal record",
                    &bytes,
                    offset,
                    |body| matches!(decode_batch(body), Ok((lsn, _)) if lsn >= expected),
                );
                if !is_last || later.is_some() {
                    return Err(corrupt(offset, e));
                }
                out.torn_bytes = (bytes.len() - offset) as u64;
                break;
            }
        }
    }
    out.valid_bytes = offset as u64;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::{Cell, Lsm, LsmConfig, SimDisk, Version};
    use crate::NodeId;

    fn write_one(lsm: &mut Lsm<SimDisk>, ts: u64) {
        let version = Version {
            ts,
            node: NodeId(1),
        };
        lsm.write(b"k", Cell::put(version, b"v".to_vec())).unwrap();
    }

    #[test]
    fn each_synced_write_costs_one_sync_and_no_directory_sync_after_open() {
        let disk = SimDisk::new(7);
        let (mut lsm, _) = Lsm::open(disk.clone(), LsmConfig::small_for_tests()).unwrap();
        let opened = disk.stats();
        for ts in 1..=3 {
            write_one(&mut lsm, ts);
            lsm.sync_wal().unwrap();
        }
        let after = disk.stats();
        assert_eq!(after.syncs - opened.syncs, 3, "{after:?}");
        assert_eq!(
            after.sync_dirs, opened.sync_dirs,
            "open already made the segment's name durable"
        );

        // A rotated segment's name is new again: the next sync makes it durable.
        lsm.freeze_memtable().unwrap();
        let rotated = disk.stats();
        write_one(&mut lsm, 4);
        lsm.sync_wal().unwrap();
        assert_eq!(disk.stats().sync_dirs, rotated.sync_dirs + 1);
    }
}
