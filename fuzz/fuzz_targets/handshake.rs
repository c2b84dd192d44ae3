//! The peer handshake's frames (`Hello`, `Auth`, `Welcome`, `Refused`), read from anyone who
//! connects to `/ws/peer` before they have proved anything. Decoding never panics and returns a
//! typed error; a frame that decodes re-encodes to a canonical form (see
//! `assert_canonical_form`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringstore_fuzz::{assert_canonical_form, repair_frames, split_mode};
use ringstore_node::peer::handshake::Handshake;

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = split_mode(data) else {
        return;
    };
    let mut bytes = rest.to_vec();
    if mode & 2 != 0 {
        repair_frames(&mut bytes);
    }
    if let Ok(msg) = Handshake::decode(&bytes) {
        let out = msg.encode().expect("a decoded handshake encodes");
        let again = Handshake::decode(&out)
            .ok()
            .map(|m| m.encode().expect("encodes"));
        assert_canonical_form(&bytes, &out, again);
    }
});
