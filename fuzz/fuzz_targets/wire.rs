//! The wire envelope and every message in it: one envelope, or a WebSocket message of
//! envelopes packed back to back as a peer sends them (`ringstore_node::peer::unpack`).
//! Decoding never panics and returns a typed error; what decodes re-encodes to a canonical
//! form (see `assert_canonical_form`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringstore_core::wire::Envelope;
use ringstore_fuzz::{assert_canonical_form, repair_frames, split_mode};
use ringstore_node::peer::unpack;

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = split_mode(data) else {
        return;
    };
    let mut bytes = rest.to_vec();
    if mode & 2 != 0 {
        repair_frames(&mut bytes);
    }
    if mode & 1 == 0 {
        if let Ok(msg) = Envelope::decode(&bytes) {
            let out = Envelope::encode(&msg).expect("a decoded message encodes");
            let again = Envelope::decode(&out)
                .ok()
                .map(|m| Envelope::encode(&m).expect("encodes"));
            assert_canonical_form(&bytes, &out, again);
        }
    } else if let Ok(msgs) = unpack(&bytes) {
        let mut out = Vec::new();
        for msg in &msgs {
            Envelope::encode_into(msg, &mut out).expect("a decoded message encodes");
        }
        let again = unpack(&out).ok().map(|msgs| {
            let mut again = Vec::new();
            for msg in &msgs {
                Envelope::encode_into(msg, &mut again).expect("encodes");
            }
            again
        });
        assert_canonical_form(&bytes, &out, again);
    }
});
