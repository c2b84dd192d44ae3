//! `ringstore-node`: runs `ringstore-core` on a real machine: real files, real clock, real
//! sockets. How the pieces fit is in [`runtime`].
#![forbid(unsafe_code)]

pub mod bench;
pub mod client;
pub mod disk;
pub mod feed;
pub mod http;
pub mod metrics;
pub mod options;
pub mod origin;
pub mod peer;
pub mod runtime;
pub mod serve;
pub mod state;
pub mod store;
pub mod token_index;
pub mod ui_socket;
pub mod view;

pub use disk::FileDisk;
pub use store::Store;
