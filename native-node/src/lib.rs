//! `ringstore-node`: runs `ringstore-core` on a real machine: real files, real clock, real sockets.
#![forbid(unsafe_code)]

pub mod disk;

pub use disk::FileDisk;
