//! The manifest: one edit record's body, or a whole MANIFEST file opened as recovery opens
//! it. Decoding never panics and returns a typed error; an edit that decodes re-encodes to the
//! same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringstore_core::storage::SimDisk;
use ringstore_core::storage::manifest::{Edit, MANIFEST_FILE, Manifest};
use ringstore_fuzz::{repair_log_file, split_mode};

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = split_mode(data) else {
        return;
    };
    let mut bytes = rest.to_vec();
    if mode & 1 == 0 {
        if let Ok(edit) = Edit::decode(&bytes) {
            let mut out = Vec::new();
            edit.encode(&mut out);
            assert_eq!(out, bytes, "a manifest edit re-encodes to other bytes");
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
