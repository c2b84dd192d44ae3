//! End-to-end tests across ringstore's crates. The tests themselves live in `tests/tests/`:
//! `storage_on_files.rs` runs the storage engine's behaviour suite over real files and drives
//! the native `Store` from many threads.
