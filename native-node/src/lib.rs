//! `ringstore-node`: runs `ringstore-core` on a real machine: real files, real clock, real sockets.
#![forbid(unsafe_code)]

pub mod disk;
pub mod store;

pub use disk::FileDisk;
pub use store::Store;
