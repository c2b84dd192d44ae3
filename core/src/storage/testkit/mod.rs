//! Reusable test suites that other crates run against their own implementations.
//!
//! Compiled for this crate's tests and, for other crates, behind the `testkit` feature
//! (`ringstore-core = { features = ["testkit"] }` in their `[dev-dependencies]`). Each suite
//! panics with a message naming the violated rule, so a failing run says what to fix.
//!
//! * [`disk_suite`]: the [`Disk`](super::Disk) contract, without crashes. Run it on every
//!   implementation: [`SimDisk`](super::SimDisk), the native node's `FileDisk`, the browser's
//!   disk.
//! * [`lsm_suite`]: the storage engine's behaviour, run over each of those disks.

pub mod disk_suite;
pub mod lsm_suite;

pub use disk_suite::disk_conformance;
pub use lsm_suite::lsm_behaviour;
