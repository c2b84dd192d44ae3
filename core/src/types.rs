//! Small value types shared by every subsystem: simulated or real time, and node identity.
//!
//! They live here so that the storage engine, the ring and the protocols agree on one
//! representation without depending on each other.

use core::fmt;
use serde::{Deserialize, Serialize};

/// The random generator of every seeded decision in the core: Xoshiro256++, the same sequence on
/// every platform. (`rand`'s `SmallRng` is not: it is a different algorithm on 32-bit targets
/// such as wasm32, so a seed would replay differently in the browser.)
pub type DetRng = rand_xoshiro::Xoshiro256PlusPlus;

/// A point in time, or a duration, in milliseconds. Core code never reads a clock: the driver
/// (tokio node, browser, simulator) passes `Millis` in.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Millis(pub u64);

impl Millis {
    /// `self - earlier`, or zero when `earlier` is later (clocks may be skewed).
    pub fn saturating_sub(self, earlier: Millis) -> Millis {
        Millis(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// A node's identity in the cluster. Shown as `n3`; it breaks LWW timestamp ties.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct NodeId(pub u32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl core::str::FromStr for NodeId {
    type Err = String;

    /// Accepts `n3` or `3`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix('n').unwrap_or(s);
        digits
            .parse::<u32>()
            .map(NodeId)
            .map_err(|_| format!("node id must look like `n3` or `3`, got {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_round_trips_through_display() {
        let id: NodeId = "n42".parse().unwrap();
        assert_eq!(id, NodeId(42));
        assert_eq!(id.to_string(), "n42");
        assert_eq!("7".parse::<NodeId>().unwrap(), NodeId(7));
        assert!("x7".parse::<NodeId>().is_err());
    }
}
