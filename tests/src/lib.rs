//! End-to-end tests across ringstore's crates. The tests themselves live in `tests/tests/`:
//! `storage_on_files.rs` runs the storage engine's behaviour suite over real files and drives
//! the native `Store` from many threads; `e2e.rs` runs clusters of real `ringstore node`
//! processes on 127.0.0.1 (kill -9, restarts, partitions, a join, bad input), with the
//! harness in [`cluster`].

pub mod cluster;
