//! `ringstore-core`: every piece of ringstore's logic, with no I/O of its own.
//!
//! The crate is *sans-IO*: it never reads a clock, opens a socket or file, spawns a thread or draws
//! ambient randomness. Time arrives as [`Millis`] values, randomness as seeded generators, and
//! storage through the [`storage::Disk`] trait. The same code therefore runs inside the tokio
//! node (`ringstore-node`), inside the browser (`ringstore-web`) and inside the deterministic
//! simulator, and a seeded simulation replays exactly.
//!
//! # The storage engine's drive loop
//!
//! The LSM engine ([`storage::Lsm`]) is driven the same way by every host: apply writes, make the
//! WAL durable when the sync policy says so, and run background work (flushes and compactions) as
//! steppable jobs that hold no borrow of the engine while they run.
//!
//! ```
//! use ringstore_core::storage::{Cell, Lsm, LsmConfig, SimDisk, Version};
//! use ringstore_core::{Millis, NodeId};
//!
//! let disk = SimDisk::new(7);
//! let (mut lsm, _report) = Lsm::open(disk.clone(), LsmConfig::small_for_tests()).unwrap();
//! let v = Version { ts_micros: 100, node: NodeId(2) };
//! lsm.write(b"user123", Cell::put(v, b"Alice".to_vec())).unwrap();
//! lsm.sync_wal().unwrap(); // durable from here on
//!
//! // Background work: take a job, run its steps (no borrow of `lsm`), install it.
//! while let Some(mut job) = lsm.next_job(Millis(0)).unwrap() {
//!     while !job.step().unwrap() {}
//!     lsm.install(job).unwrap();
//! }
//! assert_eq!(lsm.get(b"user123").unwrap().unwrap().value.as_deref(), Some(&b"Alice"[..]));
//!
//! // A simulated crash loses what was not synced; reopening replays the WAL.
//! drop(lsm);
//! disk.crash();
//! let (lsm, _report) = Lsm::open(disk, LsmConfig::small_for_tests()).unwrap();
//! assert!(lsm.get(b"user123").unwrap().is_some());
//! ```
//!
//! # The cluster's drive loop
//!
//! A [`node::Node`] is a state machine: `node.handle(local_now, input)` returns the
//! [`node::Output`]s it wants done (messages, client replies, timers, storage operations, events)
//! and never performs them itself; see [`node`] for the loop every host runs. The simulator
//! ([`sim::Sim`]) is one such host, with a seeded network, simulated disks and clocks:
//!
//! ```
//! use ringstore_core::node::{ClientOk, ClientOp};
//! use ringstore_core::sim::{Sim, SimConfig};
//! use ringstore_core::NodeId;
//!
//! let mut sim = Sim::new(SimConfig { nodes: 5, seed: 7, ..SimConfig::default() }).unwrap();
//! let put = ClientOp::Put { key: b"user123".to_vec(), value: b"Alice".to_vec(), consistency: None };
//! let op = sim.client(NodeId(2), put);
//! assert!(sim.run_until_done(op, 1_000));
//! let get = sim.client(NodeId(4), ClientOp::Get { key: b"user123".to_vec(), consistency: None });
//! sim.run_until_done(get, 1_000);
//! let result = sim.history().op(get).unwrap().result.clone().unwrap();
//! assert!(matches!(result, Ok(ClientOk::Found { value, .. }) if value == b"Alice"));
//! // Every message, disk write and client operation is in the log, ready to draw or print.
//! assert!(sim.log().entries().iter().any(|e| e.event.trace().contains("Put user123=Alice")));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod antientropy;
pub mod framing;
pub mod membership;
pub mod node;
pub mod ring;
pub mod sim;
pub mod storage;
mod types;
pub mod ui;
pub mod wire;

pub use types::{DetRng, Millis, NodeId};
