//! `ringstore-web`: the browser host for `ringstore-core`.
//!
//! Compiled to WebAssembly with wasm-bindgen. It will run the simulator over an
//! IndexedDB-backed disk and draw the cluster on a canvas (see ARCHITECTURE.md); today it
//! proves that the core builds and links for `wasm32-unknown-unknown` and reports its version
//! to the page.
#![forbid(unsafe_code)]

use wasm_bindgen::prelude::wasm_bindgen;

/// The version of ringstore compiled into this module.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
