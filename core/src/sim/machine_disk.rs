//! What the simulator needs from a machine's disk beyond [`Disk`]: a power loss, and a way to
//! make the disks of new machines.
//!
//! The simulator runs on [`SimDisk`] by default (its durability model, seeded crashes and torn
//! writes). A host may run the same simulation on another disk: the browser runs it on its
//! IndexedDB-backed disk so that every node's files persist across page reloads. Such a disk
//! implements [`MachineDisk`], and the simulator is built with [`super::Sim::with_disks`] and a
//! [`DiskFactory`] that hands out one disk per machine and store.

use crate::NodeId;
use crate::node::StoreId;
use crate::storage::{Disk, SimDisk};

/// A disk the simulator can run a machine on.
pub trait MachineDisk: Disk {
    /// A power loss of the machine: what the disk's durability model does not keep is lost
    /// (for every implementation at least: nothing that was synced). The simulator drops the
    /// machine's storage engines first and reopens them from the disk when it restarts.
    fn crash(&self);

    /// A separate disk holding a copy of everything this one holds, durable or not, with its
    /// model's state (unlike a clone, which is another handle to the same disk). The two then
    /// go on independently and, given the same calls, alike: [`super::Sim::fork`] copies a
    /// whole cluster this way.
    fn fork(&self) -> Self;
}

impl MachineDisk for SimDisk {
    fn crash(&self) {
        SimDisk::crash(self);
    }

    fn fork(&self) -> Self {
        SimDisk::fork(self)
    }
}

/// Makes the disk of machine `node`'s store `store` when the simulator creates that machine,
/// given a seed drawn from the cluster seed (a disk that draws no randomness ignores it). It is
/// called once per machine and store, when the machine is created (at start, on a join, or when
/// a saved cluster is resumed). It is `Send` so that a simulation can move to another thread.
pub type DiskFactory<D> = Box<dyn FnMut(NodeId, StoreId, u64) -> D + Send>;

/// The default factory: a fresh [`SimDisk`] seeded as given.
pub fn sim_disks() -> DiskFactory<SimDisk> {
    Box::new(|_, _, seed| SimDisk::new(seed))
}
