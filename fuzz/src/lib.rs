//! What the fuzz targets share: repairing checksums, so that the fuzzer gets past them.
//!
//! Every format here is checksummed, and a random mutation almost never keeps a CRC32 right:
//! without help the fuzzer would only ever explore the checksum's refusal. So each target
//! reads a mode byte first; with its repair bit set, the target recomputes the checksums
//! (and, for framed formats, the length fields) of the mutated bytes before decoding them, so
//! the decoders behind the checksum see hostile bytes too. With the bit clear the bytes go in
//! as they are, and the checksum paths are exercised. The decoders themselves are never
//! changed for fuzzing (no `cfg(fuzzing)` in the crates under test).

/// The shared frame header of the wire envelope, UI frames and the handshake
/// (`ringstore_core::framing`): magic 2, version 1, tag 1, len u32 LE, crc32 u32 LE.
pub const FRAME_HEADER_BYTES: usize = 12;

fn get_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn put_u32(bytes: &mut [u8], at: usize, v: u32) {
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Repairs the length and checksum of every frame packed back to back in `bytes` (header
/// [`FRAME_HEADER_BYTES`] long, len at 4, crc32 of the payload at 8); a length past the end
/// is cut to what is left.
pub fn repair_frames(bytes: &mut [u8]) {
    repair_framed(bytes, 0, FRAME_HEADER_BYTES, 4, 8, false);
}

/// Repairs a log file of `ringstore_core::storage::frame` (the WAL and the manifest): the
/// 20-byte header's crc32 (over its first 16 bytes), then every record's length and crc32
/// (`len u32 | crc32 u32 over len and body | body`).
pub fn repair_log_file(bytes: &mut [u8]) {
    const HEADER_BYTES: usize = 20;
    if bytes.len() < HEADER_BYTES {
        return;
    }
    let crc = crc32fast::hash(&bytes[..16]);
    put_u32(bytes, 16, crc);
    repair_framed(bytes, HEADER_BYTES, 8, 0, 4, true);
}

/// Walks frames of `header` bytes from `start`: the length at `len_at` in the header, the
/// crc32 at `crc_at`, over the payload (and over the length field first, if `crc_covers_len`).
fn repair_framed(
    bytes: &mut [u8],
    start: usize,
    header: usize,
    len_at: usize,
    crc_at: usize,
    crc_covers_len: bool,
) {
    let mut at = start;
    while bytes.len() - at >= header {
        let left = bytes.len() - at - header;
        let len = (get_u32(bytes, at + len_at) as usize).min(left);
        put_u32(bytes, at + len_at, len as u32);
        let body = at + header..at + header + len;
        let mut hasher = crc32fast::Hasher::new();
        if crc_covers_len {
            hasher.update(&bytes[at + len_at..at + len_at + 4]);
        }
        hasher.update(&bytes[body.clone()]);
        let crc = hasher.finalize();
        put_u32(bytes, at + crc_at, crc);
        at = body.end;
    }
}

/// Repairs a block whose last four bytes are the crc32 of all the bytes before them (SSTable
/// data, index, filter and meta blocks).
pub fn repair_tail_crc(bytes: &mut [u8]) {
    if let Some(body) = bytes.len().checked_sub(4) {
        let crc = crc32fast::hash(&bytes[..body]);
        put_u32(bytes, body, crc);
    }
}

/// Repairs the region `start..end` of `bytes` as a block with a trailing crc32, if it lies
/// inside `bytes`.
pub fn repair_tail_crc_at(bytes: &mut [u8], start: u64, end: u64) {
    let (Ok(start), Ok(end)) = (usize::try_from(start), usize::try_from(end)) else {
        return;
    };
    if start <= end && end <= bytes.len() {
        repair_tail_crc(&mut bytes[start..end]);
    }
}

/// The re-encoding property of the postcard formats (wire envelopes, UI frames, the
/// handshake, the identity file). Their bytes are not canonical: postcard accepts overlong
/// varints, and the frame header's reserved byte is not checked (a later version may use it).
/// So the property is that encoding is a canonical form: `first`, the encoding of what
/// `original` decoded to, is no longer than `original`, decodes, and re-encodes to itself.
pub fn assert_canonical_form(original: &[u8], first: &[u8], again: Option<Vec<u8>>) {
    assert!(
        first.len() <= original.len(),
        "the canonical encoding ({} bytes) is longer than what decoded ({} bytes)",
        first.len(),
        original.len()
    );
    let again = again.expect("the canonical encoding decodes");
    assert_eq!(again, first, "the canonical encoding is not a fixed point");
}

/// The mode byte of an input and the rest.
pub fn split_mode(data: &[u8]) -> Option<(u8, &[u8])> {
    data.split_first().map(|(&m, rest)| (m, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repaired_frames_have_right_lengths_and_checksums() {
        let mut bytes = vec![b'R', b'S', 1, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 7, 8, 9];
        repair_frames(&mut bytes);
        assert_eq!(get_u32(&bytes, 4), 3);
        assert_eq!(get_u32(&bytes, 8), crc32fast::hash(&[7, 8, 9]));
    }
}
