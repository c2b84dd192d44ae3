//! The checksummed record framing shared by the WAL and the manifest, and their file headers.
//!
//! Both logs are a header followed by records:
//!
//! ```text
//! file header (20 bytes)
//! offset  size  field
//! 0       8     magic     u64 LE: WAL_MAGIC or MANIFEST_MAGIC
//! 8       2     version   u16 LE: FORMAT_VERSION
//! 10      6     reserved  zero
//! 16      4     crc32     u32 LE over bytes 0..16
//!
//! record
//! offset  size  field
//! 0       4     len       u32 LE: length of body, at most RECORD_BYTES_MAX
//! 4       4     crc32     u32 LE over the 4 len bytes followed by the body
//! 8       len   body      meaning depends on the log
//! ```
//!
//! A reader walks records until the end. The first record that does not parse (short header,
//! length over the bound or past the end, checksum mismatch) ends the valid prefix; what
//! follows is either a torn tail (nothing valid after it) or corruption, which the log's owner
//! tells apart with [`find_valid_record_after`].

use super::codec::{Decoder, FormatError, PutLe, crc32};

/// Size of a log file header.
pub const HEADER_BYTES: usize = 20;
/// Size of a record's framing before its body.
pub const RECORD_HEADER_BYTES: usize = 8;
/// The largest record body: a batch of entries, each at most a key and a value at the limit.
pub const RECORD_BYTES_MAX: usize = 64 << 20;
/// The on-disk format version written by this build.
pub const FORMAT_VERSION: u16 = 1;

/// Reads `name` again and checks it holds exactly `bytes`, the first read: a log's owner
/// calls it before it cuts a torn tail, which destroys what follows for good, so that a read
/// that was damaged on the way from the device (a transient fault, not the stored bytes) never
/// cuts valid records. Two reads that differ are a read error (nothing was changed; retry).
pub fn confirm_read<D: super::Disk>(
    disk: &D,
    name: &str,
    bytes: &[u8],
) -> Result<(), super::StorageError> {
    if disk.read_all(name)? == bytes {
        return Ok(());
    }
    Err(super::StorageError::Disk(super::DiskError::Io {
        op: super::DiskOp::Read,
        name: name.to_string(),
        message: "two reads of the file differ: not cutting its tail on an unstable read".into(),
    }))
}

/// Encodes a log file header.
pub fn encode_header(magic: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES);
    out.put_u64(magic);
    out.put_u16(FORMAT_VERSION);
    out.extend_from_slice(&[0; 6]);
    let crc = crc32(&out);
    out.put_u32(crc);
    out
}

/// Checks a log file header.
pub fn decode_header(what: &'static str, magic: u64, bytes: &[u8]) -> Result<(), FormatError> {
    let mut d = Decoder::new(what, bytes);
    let head = d.bytes(16)?;
    let stored = d.u32()?;
    let mut h = Decoder::new(what, head);
    let got_magic = h.u64()?;
    if got_magic != magic {
        return Err(FormatError::BadMagic {
            what,
            got: got_magic,
        });
    }
    super::codec::verify_crc(what, head, stored)?;
    let version = h.u16()?;
    if version != FORMAT_VERSION {
        return Err(FormatError::UnsupportedVersion {
            what,
            got: version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(())
}

/// Appends a framed record holding `body` to `out`.
pub fn encode_record(out: &mut Vec<u8>, body: &[u8]) {
    let len = (body.len() as u32).to_le_bytes();
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len);
    hasher.update(body);
    out.extend_from_slice(&len);
    out.put_u32(hasher.finalize());
    out.extend_from_slice(body);
}

/// Starts a framed record in `out` whose body the caller appends next; finish it with
/// [`finish_record`]. Avoids copying large bodies.
pub fn begin_record(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; RECORD_HEADER_BYTES]);
    start
}

/// Fills in the length and checksum of a record begun at `start`.
pub fn finish_record(out: &mut [u8], start: usize) {
    let body_len = out.len() - start - RECORD_HEADER_BYTES;
    let len = (body_len as u32).to_le_bytes();
    out[start..start + 4].copy_from_slice(&len);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len);
    hasher.update(&out[start + RECORD_HEADER_BYTES..]);
    let crc = hasher.finalize().to_le_bytes();
    out[start + 4..start + 8].copy_from_slice(&crc);
}

/// Parses the record at the start of `bytes`: its body and its total framed length.
pub fn decode_record<'a>(
    what: &'static str,
    bytes: &'a [u8],
) -> Result<(&'a [u8], usize), FormatError> {
    let mut d = Decoder::new(what, bytes);
    let len_bytes = d.bytes(4)?;
    let stored = d.u32()?;
    let len = u32::from_le_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
    if len > RECORD_BYTES_MAX {
        return Err(d.invalid(format!("record length {len} over {RECORD_BYTES_MAX}")));
    }
    let body = d.bytes(len)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(len_bytes);
    hasher.update(body);
    let got = hasher.finalize();
    if got != stored {
        return Err(FormatError::ChecksumMismatch {
            what,
            got,
            expected: stored,
        });
    }
    Ok((body, RECORD_HEADER_BYTES + len))
}

/// After a bad record at `bad_offset`, looks for any later offset where a whole valid record
/// starts and `accept(body)` holds. Finding one means the damage is not a torn tail: valid data
/// follows it. Returns that offset.
///
/// Only offsets up to the last non-zero byte are tried: a record lying wholly in zeros would
/// have length 0 and so checksum `crc32([0; 4])`, which is not zero. That keeps recovery of a
/// preallocated WAL segment (a few records, then megabytes of zeros) linear in what was written.
pub fn find_valid_record_after(
    what: &'static str,
    bytes: &[u8],
    bad_offset: usize,
    accept: impl Fn(&[u8]) -> bool,
) -> Option<usize> {
    (bad_offset + 1..record_scan_end(bytes))
        .find(|&off| matches!(decode_record(what, &bytes[off..]), Ok((body, _)) if accept(body)))
}

/// The end of the offsets where a valid record could start: none fits in the last 7 bytes, and
/// none starts in a run of zeros that reaches the end (see [`find_valid_record_after`]).
fn record_scan_end(bytes: &[u8]) -> usize {
    let fits = bytes.len().saturating_sub(RECORD_HEADER_BYTES - 1);
    let nonzero = bytes
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |last| last + 1);
    fits.min(nonzero)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_damage() {
        let h = encode_header(0x1234);
        assert_eq!(h.len(), HEADER_BYTES);
        decode_header("log", 0x1234, &h).unwrap();
        assert!(matches!(
            decode_header("log", 0x9999, &h),
            Err(FormatError::BadMagic { .. })
        ));
        let mut bad = h.clone();
        bad[9] ^= 1;
        assert!(matches!(
            decode_header("log", 0x1234, &bad),
            Err(FormatError::ChecksumMismatch { .. })
        ));
    }

    #[test]
    fn record_round_trips_both_ways_of_encoding() {
        let mut a = Vec::new();
        encode_record(&mut a, b"hello");
        let mut b = Vec::new();
        let start = begin_record(&mut b);
        b.extend_from_slice(b"hello");
        finish_record(&mut b, start);
        assert_eq!(a, b);
        let (body, len) = decode_record("rec", &a).unwrap();
        assert_eq!((body, len), (&b"hello"[..], a.len()));
    }

    #[test]
    fn record_damage_is_detected() {
        let mut a = Vec::new();
        encode_record(&mut a, b"hello world");
        for i in 0..a.len() {
            let mut bad = a.clone();
            bad[i] ^= 0x40;
            assert!(
                decode_record("rec", &bad).is_err(),
                "flip at {i} undetected"
            );
        }
        assert!(matches!(
            decode_record("rec", &a[..a.len() - 1]),
            Err(FormatError::Truncated { .. })
        ));
    }

    #[test]
    fn valid_record_after_damage_is_found() {
        let mut a = Vec::new();
        encode_record(&mut a, b"first");
        let second = a.len();
        encode_record(&mut a, b"second");
        a[2] ^= 0xff;
        assert_eq!(
            find_valid_record_after("rec", &a, 0, |_| true),
            Some(second)
        );
        assert_eq!(find_valid_record_after("rec", &a, second, |_| true), None);
    }

    #[test]
    fn no_record_is_all_zeros() {
        assert!(decode_record("rec", &[0; RECORD_HEADER_BYTES]).is_err());
        assert_ne!(crc32(&[0; 4]), 0);
    }

    #[test]
    fn a_long_zero_tail_is_scanned_only_up_to_its_start() {
        // A preallocated log: records, a torn one, then 64 MiB of zeros.
        let mut a = Vec::new();
        encode_record(&mut a, b"synced");
        let torn = a.len();
        encode_record(&mut a, b"torn record");
        a.truncate(a.len() - 3);
        let written = a.len();
        a.resize(64 << 20, 0);
        assert_eq!(record_scan_end(&a), written, "the zeros are not scanned");
        assert_eq!(find_valid_record_after("rec", &a, torn, |_| true), None);

        // A valid record after the damage is still found, zeros or not.
        let mut b = a[..written].to_vec();
        let later = b.len();
        encode_record(&mut b, b"later");
        b.resize(1 << 20, 0);
        assert_eq!(
            find_valid_record_after("rec", &b, torn, |_| true),
            Some(later)
        );

        // All zeros after the bad offset, even a short file.
        assert_eq!(find_valid_record_after("rec", &[0; 100], 0, |_| true), None);
    }
}
