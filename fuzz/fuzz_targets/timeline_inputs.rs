//! A link's time-travel inputs (`&in=`, `ringstore_web::timeline::decode_inputs`), which anyone
//! can put in a link. Decoding never panics and returns a typed error; inputs that decode
//! re-encode to a canonical form (see `assert_canonical_form`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringstore_fuzz::{assert_canonical_form, split_mode};
use ringstore_web::timeline::{decode_inputs, encode_inputs};

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = split_mode(data) else {
        return;
    };
    let mut bytes = rest.to_vec();
    // The layout: version u8 | crc32 of the body u32 LE | body.
    if mode & 2 != 0 && bytes.len() >= 5 {
        let crc = crc32fast::hash(&bytes[5..]);
        bytes[1..5].copy_from_slice(&crc.to_le_bytes());
    }
    if let Ok(inputs) = decode_inputs(&bytes) {
        let out = encode_inputs(&inputs).expect("decoded inputs encode");
        let again = decode_inputs(&out)
            .ok()
            .map(|i| encode_inputs(&i).expect("decoded inputs encode"));
        assert_canonical_form(&bytes, &out, again);
    }
});
