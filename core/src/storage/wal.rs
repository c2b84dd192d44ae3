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
//!
//! **Sealed segments.** A clean close ([`super::Lsm::close`]) seals the newest segment: it
//! syncs it, cuts it to what was written, and records its length in the manifest
//! ([`super::manifest::WalSeal`]). A sealed prefix has no torn tail, so damage inside it, even
//! in its last record, is [`StorageError::Corrupt`] too. Only bytes past the seal (appended
//! after it and never sealed again) can be a torn tail. The engine counts the torn bytes it
//! cuts ([`super::LsmStats::wal_torn_bytes_cut`]) so a host can log and export them.

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

/// Encodes a batch body (without framing): `lsn u64 LE | count u32 LE | count entries`, each
/// in the layout of `cell::encode_entry`.
pub fn encode_batch(out: &mut Vec<u8>, lsn: Lsn, entries: &[(&[u8], &Cell)]) {
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
#[derive(Clone, Debug)]
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
    /// The same writer (its buffer, positions and LSNs) over `disk`, a copy of its disk: for
    /// [`super::Lsm::fork`].
    pub(super) fn with_disk(&self, disk: D) -> WalWriter<D> {
        WalWriter {
            disk,
            ..self.clone()
        }
    }

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

    /// Bytes of the current segment handed to the disk (after [`WalWriter::seal`]: its length).
    pub fn written_bytes(&self) -> u64 {
        self.written_bytes
    }

    /// Bytes this writer has appended to disks since it was created (including rotations).
    pub fn bytes_appended_total(&self) -> u64 {
        self.bytes_appended_total
    }

    /// Appends one batch; returns its LSN. Not durable until a sync covers it. With
    /// `write_through` the batch is handed to the disk at once (still without a sync), so that
    /// a full disk is found before the caller applies the batch anywhere else.
    ///
    /// If the disk is full ([`DiskError::Full`](super::DiskError::Full)), the batch is taken
    /// back: the writer is as before the call (batches buffered earlier stay buffered, and are
    /// written by a later append or sync).
    pub fn append(
        &mut self,
        entries: &[(&[u8], &Cell)],
        write_through: bool,
    ) -> Result<Lsn, StorageError> {
        let lsn = self.last_lsn + 1;
        let before = self.buffer.len();
        let start = frame::begin_record(&mut self.buffer);
        encode_batch(&mut self.buffer, lsn, entries);
        frame::finish_record(&mut self.buffer, start);
        let grown = (self.buffer.len() - before) as u64;
        self.live_bytes += grown;
        self.last_lsn = lsn;
        if (write_through || self.buffer.len() >= WAL_BUFFER_BYTES)
            && let Err(e) = self.write_buffer()
        {
            if e.is_disk_full() {
                self.buffer.truncate(before);
                self.live_bytes -= grown;
                self.last_lsn = lsn - 1;
            }
            return Err(e);
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
/// tail is allowed (only the newest segment can have one), and then only after its first
/// `sealed_bytes` (what a clean close sealed, see the module docs; zero if it did not).
pub fn replay_segment<D: Disk>(
    disk: &D,
    name: &str,
    prev_lsn: Lsn,
    is_last: bool,
    sealed_bytes: u64,
) -> Result<ReplayedSegment, StorageError> {
    let bytes = disk.read_all(name)?;
    let corrupt = |offset: usize, source: FormatError| StorageError::Corrupt {
        file: name.to_string(),
        offset: offset as u64,
        source,
    };
    let mut out = ReplayedSegment::default();
    if (bytes.len() as u64) < sealed_bytes {
        return Err(corrupt(
            bytes.len(),
            FormatError::Truncated {
                what: "sealed wal segment",
                needed: (sealed_bytes - bytes.len() as u64) as usize,
                available: 0,
            },
        ));
    }
    if bytes.len() < frame::HEADER_BYTES && is_last && sealed_bytes == 0 {
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
                if !is_last || later.is_some() || (offset as u64) < sealed_bytes {
                    return Err(corrupt(offset, e));
                }
                // Cutting is for good: only on bytes a second read confirms (a read that
                // flipped a bit on the way must not cut synced records).
                frame::confirm_read(disk, name, &bytes)?;
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
    use super::*;
    use crate::NodeId;
    use crate::storage::{SimDisk, Version};

    fn cell(ts: u64, value: Option<&[u8]>) -> Cell {
        let version = Version {
            ts_micros: ts,
            node: NodeId(1),
        };
        match value {
            Some(v) => Cell::put(version, v.to_vec()),
            None => Cell::tombstone(version),
        }
    }

    /// Batch `lsn`: one put of `k{lsn}`.
    fn entry(lsn: Lsn) -> (Vec<u8>, Cell) {
        (format!("k{lsn}").into_bytes(), cell(lsn, Some(b"value")))
    }

    /// A framed record holding batch `lsn`.
    fn record(lsn: Lsn) -> Vec<u8> {
        let (key, cell) = entry(lsn);
        let mut body = Vec::new();
        encode_batch(&mut body, lsn, &[(&key, &cell)]);
        let mut out = Vec::new();
        frame::encode_record(&mut out, &body);
        out
    }

    /// A segment: header, then one record per LSN.
    fn segment(lsns: impl IntoIterator<Item = Lsn>) -> Vec<u8> {
        let mut out = frame::encode_header(WAL_MAGIC);
        for lsn in lsns {
            out.extend(record(lsn));
        }
        out
    }

    fn disk_with(name: &str, bytes: Vec<u8>) -> SimDisk {
        let disk = SimDisk::new(1);
        disk.insert_durable_file(name, bytes);
        disk
    }

    fn replay(
        bytes: Vec<u8>,
        prev_lsn: Lsn,
        is_last: bool,
    ) -> Result<ReplayedSegment, StorageError> {
        let name = segment_file_name(3);
        replay_segment(&disk_with(&name, bytes), &name, prev_lsn, is_last, 0)
    }

    fn lsns(replayed: &ReplayedSegment) -> Vec<Lsn> {
        replayed.batches.iter().map(|(lsn, _)| *lsn).collect()
    }

    /// The file, offset and source of a `Corrupt` error.
    fn corrupt(result: Result<ReplayedSegment, StorageError>) -> (String, u64, FormatError) {
        match result {
            Err(StorageError::Corrupt {
                file,
                offset,
                source,
            }) => (file, offset, source),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(segment_file_name(42), "wal-0000000000000042.log");
        assert_eq!(parse_segment_file_name(&segment_file_name(42)), Some(42));
        for bad in [
            "wal-42.log",
            "wal-000000000000004x.log",
            "sst-0000000000000042.sst",
        ] {
            assert_eq!(parse_segment_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn batch_round_trips() {
        let entries = [
            (b"a".to_vec(), cell(7, Some(b"x"))),
            (b"b".to_vec(), cell(8, None)),
            (b"c".to_vec(), cell(9, Some(b""))),
        ];
        let refs: Vec<(&[u8], &Cell)> = entries.iter().map(|(k, c)| (k.as_slice(), c)).collect();
        let mut body = Vec::new();
        encode_batch(&mut body, 12, &refs);
        assert_eq!(decode_batch(&body).unwrap(), (12, entries.to_vec()));
    }

    #[test]
    fn empty_batch_is_a_typed_error() {
        let mut body = Vec::new();
        encode_batch(&mut body, 12, &[]);
        assert!(matches!(
            decode_batch(&body),
            Err(FormatError::Invalid {
                what: "wal batch",
                ..
            })
        ));
    }

    #[test]
    fn batch_with_trailing_bytes_is_a_typed_error() {
        let (key, cell) = entry(1);
        let mut body = Vec::new();
        encode_batch(&mut body, 1, &[(&key, &cell)]);
        body.push(0);
        let err = decode_batch(&body).unwrap_err();
        assert!(
            matches!(
                err,
                FormatError::Invalid {
                    what: "wal batch",
                    ..
                }
            ),
            "{err:?}"
        );
        // A count larger than the entries present is a truncation, not a panic.
        let mut short = Vec::new();
        encode_batch(&mut short, 1, &[(&key, &cell)]);
        short[8..12].copy_from_slice(&2u32.to_le_bytes());
        assert!(matches!(
            decode_batch(&short),
            Err(FormatError::Truncated { .. })
        ));
    }

    #[test]
    fn clean_segment_replays_every_batch() {
        let bytes = segment(5..9);
        let len = bytes.len() as u64;
        for is_last in [false, true] {
            let replayed = replay(bytes.clone(), 4, is_last).unwrap();
            assert_eq!(lsns(&replayed), [5, 6, 7, 8]);
            assert_eq!(replayed.batches[0].1, vec![entry(5)]);
            assert_eq!((replayed.valid_bytes, replayed.torn_bytes), (len, 0));
        }
        // A segment holding only its header is valid and empty.
        let replayed = replay(segment([]), 4, false).unwrap();
        assert_eq!(lsns(&replayed), Vec::<Lsn>::new());
        assert_eq!(replayed.valid_bytes, frame::HEADER_BYTES as u64);
    }

    #[test]
    fn torn_tail_of_the_last_segment_is_reported_not_an_error() {
        let valid = segment(1..3);
        let last = record(3);
        for cut in 1..last.len() {
            let mut bytes = valid.clone();
            bytes.extend_from_slice(&last[..cut]);
            let replayed = replay(bytes, 0, true).unwrap();
            assert_eq!(lsns(&replayed), [1, 2], "cut at {cut}");
            assert_eq!(replayed.valid_bytes, valid.len() as u64);
            assert_eq!(replayed.torn_bytes, cut as u64);
        }
    }

    #[test]
    fn damaged_record_followed_by_valid_ones_is_corruption() {
        let bytes = segment(1..5);
        let second = frame::HEADER_BYTES + record(1).len();
        // Inside the second record's body, with records 3 and 4 after it.
        let mut damaged = bytes.clone();
        damaged[second + frame::RECORD_HEADER_BYTES + 3] ^= 0x10;
        let (file, offset, source) = corrupt(replay(damaged, 0, true));
        assert_eq!(
            (file.as_str(), offset),
            ("wal-0000000000000003.log", second as u64)
        );
        assert!(
            matches!(source, FormatError::ChecksumMismatch { .. }),
            "{source:?}"
        );
    }

    #[test]
    fn out_of_sequence_lsn_is_corruption() {
        // A gap inside the segment.
        let mut bytes = segment(1..3);
        let third = bytes.len();
        bytes.extend(record(4));
        let (_, offset, source) = corrupt(replay(bytes, 0, true));
        assert_eq!(offset, third as u64);
        assert!(matches!(source, FormatError::Invalid { .. }), "{source:?}");
        // A segment that does not continue the previous one.
        let (_, offset, _) = corrupt(replay(segment(7..9), 4, true));
        assert_eq!(offset, frame::HEADER_BYTES as u64);
        // A repeated LSN.
        let (_, offset, _) = corrupt(replay(segment([1, 2, 2]), 0, true));
        assert_eq!(offset, (frame::HEADER_BYTES + 2 * record(1).len()) as u64);
    }

    #[test]
    fn torn_header_of_the_last_segment_is_reported_not_an_error() {
        let header = frame::encode_header(WAL_MAGIC);
        for cut in 0..header.len() {
            let replayed = replay(header[..cut].to_vec(), 9, true).unwrap();
            assert_eq!(lsns(&replayed), Vec::<Lsn>::new());
            assert_eq!((replayed.valid_bytes, replayed.torn_bytes), (0, cut as u64));
        }
    }

    #[test]
    fn damage_in_an_older_segment_is_corruption() {
        // An older segment was synced before the log rotated: a torn tail there is damage.
        let mut bytes = segment(1..3);
        let end = bytes.len();
        bytes.extend_from_slice(&record(3)[..5]);
        let (_, offset, source) = corrupt(replay(bytes, 0, false));
        assert_eq!(offset, end as u64);
        assert!(
            matches!(source, FormatError::Truncated { .. }),
            "{source:?}"
        );
        // So is a short header.
        let header = frame::encode_header(WAL_MAGIC);
        let (_, offset, _) = corrupt(replay(header[..10].to_vec(), 0, false));
        assert_eq!(offset, 0);
        // And a damaged header, in any segment.
        let mut bad_header = segment(1..2);
        bad_header[3] ^= 1;
        let (_, offset, source) = corrupt(replay(bad_header, 0, true));
        assert_eq!(offset, 0);
        assert!(matches!(source, FormatError::BadMagic { .. }), "{source:?}");
    }

    #[test]
    fn writer_output_replays() {
        let disk = SimDisk::new(1);
        let mut w = WalWriter::create(disk.clone(), 1, 0, 0, 0).unwrap();
        let (key, cell) = entry(1);
        assert_eq!(w.append(&[(&key, &cell)], false).unwrap(), 1);
        assert_eq!(w.append(&[(&key, &cell)], false).unwrap(), 2);
        assert!(w.has_unsynced());
        w.sync().unwrap();
        assert_eq!(w.durable_lsn(), 2);
        w.rotate(2).unwrap();
        w.append(&[(&key, &cell)], false).unwrap();
        w.sync().unwrap();
        let first = replay_segment(&disk, &segment_file_name(1), 0, false, 0).unwrap();
        assert_eq!(lsns(&first), [1, 2]);
        let second = replay_segment(&disk, &segment_file_name(2), 2, true, 0).unwrap();
        assert_eq!(lsns(&second), [3]);
        assert_eq!(
            first.valid_bytes + second.valid_bytes,
            w.live_bytes(),
            "live bytes count every segment"
        );
    }
}

#[cfg(test)]
mod sync_tests {
    use super::super::{Cell, Lsm, LsmConfig, SimDisk, Version};
    use crate::NodeId;

    fn write_one(lsm: &mut Lsm<SimDisk>, ts: u64) {
        let version = Version {
            ts_micros: ts,
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
