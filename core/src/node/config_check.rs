//! What a node's configuration must hold before the node starts, checked here once for every
//! host: N, W and R (how many nodes hold each key, and how many of them must answer a write or
//! a read), and, under gossip, a membership the gossiper accepts. The simulator
//! ([`crate::sim::Sim::with_disks`]), the native node and the page build their nodes through
//! [`super::NodeConfig::new`] and [`super::Node::new`], which refuse what cannot work.

use crate::membership::GossipError;

/// Why a node cannot start with its configuration. Nothing was started when one is returned.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum NodeError {
    /// N, W and R do not fit together.
    #[error(transparent)]
    Quorum(#[from] QuorumError),
    /// The gossiper refused the membership settings (its configuration, this node's address
    /// or tokens).
    #[error("gossip cannot start: {0}")]
    Gossip(#[from] GossipError),
}

/// Why an N/W/R triple cannot work. Nothing was changed when one is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuorumError {
    /// N is zero: no node would hold a key.
    #[error("N must be at least 1")]
    NoReplicas,
    /// W is zero or over N: a write could never be, or always be, acknowledged.
    #[error("W={w} must be between 1 and N={n}")]
    WriteQuorum {
        /// The write quorum given.
        w: usize,
        /// The replica count.
        n: usize,
    },
    /// R is zero or over N.
    #[error("R={r} must be between 1 and N={n}")]
    ReadQuorum {
        /// The read quorum given.
        r: usize,
        /// The replica count.
        n: usize,
    },
}

/// Checks that `n` nodes per key can acknowledge a write at `w` and answer a read at `r`:
/// `1 ≤ W ≤ N` and `1 ≤ R ≤ N`.
pub fn check_quorums(n: usize, w: usize, r: usize) -> Result<(), QuorumError> {
    if n == 0 {
        return Err(QuorumError::NoReplicas);
    }
    if !(1..=n).contains(&w) {
        return Err(QuorumError::WriteQuorum { w, n });
    }
    if !(1..=n).contains(&r) {
        return Err(QuorumError::ReadQuorum { r, n });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{QuorumError, check_quorums};

    #[test]
    fn a_quorum_must_fit_the_replicas() {
        assert_eq!(check_quorums(3, 2, 2), Ok(()));
        assert_eq!(check_quorums(1, 1, 1), Ok(()));
        assert_eq!(check_quorums(3, 3, 1), Ok(()));
        assert_eq!(check_quorums(0, 0, 0), Err(QuorumError::NoReplicas));
        assert_eq!(
            check_quorums(3, 4, 2),
            Err(QuorumError::WriteQuorum { w: 4, n: 3 })
        );
        assert_eq!(
            check_quorums(3, 0, 2),
            Err(QuorumError::WriteQuorum { w: 0, n: 3 })
        );
        assert_eq!(
            check_quorums(3, 2, 4),
            Err(QuorumError::ReadQuorum { r: 4, n: 3 })
        );
        assert_eq!(
            check_quorums(3, 2, 0),
            Err(QuorumError::ReadQuorum { r: 0, n: 3 })
        );
    }
}
