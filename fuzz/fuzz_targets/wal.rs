//! The write-ahead log: a whole segment file (header and records, as recovery reads it), or
//! one batch body. Decoding never panics and returns a typed error; a batch that decodes
//! re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringstore_core::storage::wal::{decode_batch, encode_batch, replay_segment, segment_file_name};
use ringstore_core::storage::{Cell, SimDisk};
use ringstore_fuzz::{repair_log_file, split_mode};

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = split_mode(data) else {
        return;
    };
    let mut bytes = rest.to_vec();
    if mode & 1 == 0 {
        if mode & 2 != 0 {
            repair_log_file(&mut bytes);
        }
        let name = segment_file_name(1);
        let disk = SimDisk::new(0);
        disk.insert_durable_file(&name, bytes);
        let is_last = mode & 4 != 0;
        if let Ok(segment) = replay_segment(&disk, &name, 0, is_last, 0) {
            for (lsn, batch) in &segment.batches {
                check_batch(*lsn, batch, None);
            }
        }
    } else if let Ok((lsn, batch)) = decode_batch(&bytes) {
        check_batch(lsn, &batch, Some(&bytes));
    }
});

/// A decoded batch re-encodes to the bytes it came from, and those decode to it again.
fn check_batch(lsn: u64, batch: &[(Vec<u8>, Cell)], original: Option<&[u8]>) {
    let entries: Vec<(&[u8], &Cell)> = batch.iter().map(|(k, c)| (k.as_slice(), c)).collect();
    let mut out = Vec::new();
    encode_batch(&mut out, lsn, &entries);
    if let Some(original) = original {
        assert_eq!(out, original, "a WAL batch re-encodes to other bytes");
    }
    let (lsn2, batch2) = decode_batch(&out).expect("a re-encoded batch decodes");
    assert_eq!((lsn2, batch2.as_slice()), (lsn, batch));
}
