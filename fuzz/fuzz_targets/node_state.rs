//! The identity file (`DIR/node.state`), read at every start. Decoding never panics and
//! returns a typed error; a file that decodes re-encodes to a canonical form (see
//! `assert_canonical_form`), and a version 1 file to the current version, reading back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringstore_fuzz::{assert_canonical_form, split_mode};
use ringstore_node::state::{decode, encode};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = split_mode(data) else {
        return;
    };
    let mut bytes = rest.to_vec();
    // The header: "RSND" | version u8 | reserved 3 | len u32 LE | crc32 u32 LE | payload.
    if mode & 2 != 0 && bytes.len() >= 16 {
        let len = (bytes.len() - 16) as u32;
        bytes[8..12].copy_from_slice(&len.to_le_bytes());
        let crc = crc32fast::hash(&bytes[16..]);
        bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    }
    if let Ok(state) = decode(Path::new("node.state"), &bytes) {
        let out = encode(&state).expect("a decoded state encodes");
        if bytes.get(4) == Some(&1) {
            // A version 1 file is upgraded: it re-encodes as the current version (one byte
            // longer, the empty list of removals) and reads back as the same state.
            let upgraded = decode(Path::new("node.state"), &out);
            assert_eq!(upgraded.ok(), Some(state), "an upgraded state reads back");
            return;
        }
        let again = decode(Path::new("node.state"), &out)
            .ok()
            .map(|s| encode(&s).expect("a decoded state encodes"));
        assert_canonical_form(&bytes, &out, again);
    }
});
