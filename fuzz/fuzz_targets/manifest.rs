//! The manifest: one record's body (an edit or a WAL seal), or a whole MANIFEST file opened as
//! recovery opens it. Decoding never panics and returns a typed error; a record that decodes
//! re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringstore_core::storage::SimDisk;
use ringstore_core::storage::manifest::{MANIFEST_FILE, Manifest, Record};
use ringstore_fuzz::{repair_log_file, split_mode};

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = split_mode(data) else {
        return;
    };
    let mut bytes = rest.to_vec();
    if mode & 1 == 0 {
        if let Ok(record) = Record::decode(&bytes) {
            let mut out = Vec::new();
            match record {
                Record::Edit(edit) => edit.encode(&mut out),
                Record::WalSealed(seal) => seal.encode(&mut out),
            }
            assert_eq!(out, bytes, "a manifest record re-encodes to other bytes");
        }
    } else {
        if mode & 2 != 0 {
            repair_log_file(&mut bytes);
        }
        let disk = SimDisk::new(0);
        disk.insert_durable_file(MANIFEST_FILE, bytes);
        let _ = Manifest::open(disk);
    }
});
