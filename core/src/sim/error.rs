//! Why the simulator could not build a cluster or (re)start a machine.

use crate::node::NodeError;
use crate::storage::StorageError;

/// Why a cluster or a machine could not start. Nothing was started when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The configuration cannot work: N/W/R that do not fit, or gossip settings the gossiper
    /// refuses. Checked before any machine starts.
    #[error("bad configuration: {0}")]
    Config(#[from] NodeError),
    /// A machine's storage engine could not open its disk.
    #[error(transparent)]
    Storage(#[from] StorageError),
}
