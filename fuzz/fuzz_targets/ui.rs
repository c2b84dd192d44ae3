//! The UI socket's frames, both directions: what a page sends a node (`ToNode`, decoded by the
//! node from any page) and what a node sends a page (`ToPage`, decoded by the page from any
//! node it is pointed at). Decoding never panics and returns a typed error; a frame that
//! decodes re-encodes to a canonical form (see `assert_canonical_form`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringstore_core::ui::{ToNode, ToPage, UiFrame};
use ringstore_fuzz::{assert_canonical_form, repair_frames, split_mode};

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = split_mode(data) else {
        return;
    };
    let mut bytes = rest.to_vec();
    if mode & 2 != 0 {
        repair_frames(&mut bytes);
    }
    if mode & 1 == 0 {
        check::<ToNode>(&bytes);
    } else {
        check::<ToPage>(&bytes);
    }
});

fn check<T: UiFrame>(bytes: &[u8]) {
    if let Ok(frame) = T::decode(bytes) {
        let out = frame.encode().expect("a decoded frame encodes");
        let again = T::decode(&out).ok().map(|f| f.encode().expect("encodes"));
        assert_canonical_form(bytes, &out, again);
    }
}
