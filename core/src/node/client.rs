//! What clients ask of a node and what they get back: the operation ([`ClientOp`]), its
//! consistency level, its success ([`ClientOk`]) or typed failure ([`ClientError`]), and the
//! key limits every coordinator checks before it starts a request.

use crate::NodeId;
use crate::storage::{CLIENT_KEY_BYTES_MAX, StorageFailure, Version};
use serde::{Deserialize, Serialize};

/// A consistency level for one request: how many replicas must answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Consistency {
    /// One replica.
    One,
    /// A majority of the N replicas: N/2 + 1.
    Quorum,
    /// All N replicas.
    All,
    /// Exactly this many (1 to N).
    Count(u32),
}

impl Consistency {
    /// The number of answers this level needs with `n` replicas.
    pub fn required(self, n: usize) -> Result<usize, ClientError> {
        match self {
            Consistency::One => Ok(1),
            Consistency::Quorum => Ok(n / 2 + 1),
            Consistency::All => Ok(n),
            Consistency::Count(k) if k >= 1 && (k as usize) <= n => Ok(k as usize),
            Consistency::Count(k) => Err(ClientError::BadRequest(format!(
                "a consistency of {k} is outside 1..={n} (N)"
            ))),
        }
    }
}

impl core::str::FromStr for Consistency {
    type Err = String;

    /// `one`, `quorum`, `all` (any case), or a number of replicas.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.to_ascii_lowercase().as_str() {
            "one" => Ok(Consistency::One),
            "quorum" => Ok(Consistency::Quorum),
            "all" => Ok(Consistency::All),
            n => n
                .parse::<u32>()
                .map(Consistency::Count)
                .map_err(|_| format!("bad consistency {value:?}: one, quorum, all or a number")),
        }
    }
}

impl core::fmt::Display for Consistency {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Consistency::One => f.write_str("ONE"),
            Consistency::Quorum => f.write_str("QUORUM"),
            Consistency::All => f.write_str("ALL"),
            Consistency::Count(k) => write!(f, "{k}"),
        }
    }
}

/// A client's operation, as any node accepts it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientOp {
    /// Store `value` under `key`.
    Put {
        /// The key, 1 to 1,024 bytes.
        key: Vec<u8>,
        /// The value, at most the node's `value_bytes_max`.
        value: Vec<u8>,
        /// Acks required, or the cluster's W.
        consistency: Option<Consistency>,
    },
    /// Read the newest value of `key`.
    Get {
        /// The key.
        key: Vec<u8>,
        /// Replies required, or the cluster's R.
        consistency: Option<Consistency>,
    },
    /// Delete `key` (a timestamped tombstone).
    Delete {
        /// The key.
        key: Vec<u8>,
        /// Acks required, or the cluster's W.
        consistency: Option<Consistency>,
    },
}

impl ClientOp {
    /// `put`, `get` or `delete`, as the HTTP API's metrics and the page's console name it.
    pub fn name(&self) -> &'static str {
        match self {
            ClientOp::Put { .. } => "put",
            ClientOp::Get { .. } => "get",
            ClientOp::Delete { .. } => "delete",
        }
    }

    /// The key the operation is about.
    pub fn key(&self) -> &[u8] {
        match self {
            ClientOp::Put { key, .. }
            | ClientOp::Get { key, .. }
            | ClientOp::Delete { key, .. } => key,
        }
    }
}

/// A successful client operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientOk {
    /// A put or delete reached its write quorum.
    Written {
        /// The LWW version written.
        version: Version,
        /// Replicas that acknowledged before the reply (at least W).
        acks: usize,
        /// How many of those acks came from stand-ins holding a hint (a sloppy quorum): such a
        /// write does not promise that a quorum read sees it until the hints are handed over.
        hinted: usize,
    },
    /// A read found a live value.
    Found {
        /// The newest version among the replies.
        version: Version,
        /// Its value.
        value: Vec<u8>,
    },
    /// A read found nothing, or a tombstone (whose version is given).
    NotFound {
        /// The tombstone's version, if the key was deleted.
        version: Option<Version>,
    },
}

/// Why a client operation failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ClientError {
    /// A bad key, value or parameter. Nothing was written.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The value is over the node's limit. Nothing was written.
    #[error("value of {len} bytes is over the limit of {max}")]
    TooLarge {
        /// The value's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Fewer than the required replicas answered in time. A write may still have reached some
    /// replicas (and may become visible later): the outcome is unknown, as in any Dynamo.
    #[error("quorum unavailable: needed {needed} replicas, got {got}")]
    QuorumUnavailable {
        /// Answers required.
        needed: usize,
        /// Answers received.
        got: usize,
    },
    /// Fewer than the required replicas stored the write, and some refused it because of
    /// their storage (a full disk, a poisoned engine): the failures name the replicas and the
    /// cause. As with [`ClientError::QuorumUnavailable`], the write may still have reached
    /// other replicas; a replica whose failure says nothing changed did not store it.
    #[error(
        "storage unavailable: needed {needed} replicas, got {got}; {}",
        describe_failures(failures)
    )]
    StorageUnavailable {
        /// Acknowledgements required.
        needed: usize,
        /// Acknowledgements received.
        got: usize,
        /// The replicas whose storage refused the write, and why.
        failures: Vec<(NodeId, StorageFailure)>,
    },
    /// The node the client contacted is down (the client could not reach a coordinator).
    #[error("the coordinator is down")]
    NodeDown,
    /// The coordinator has too many requests in flight. Nothing was sent.
    #[error("overloaded: {in_flight} requests in flight")]
    Overloaded {
        /// Requests in flight.
        in_flight: usize,
    },
}

/// `n1: disk full: ...; n2: ...`, for [`ClientError::StorageUnavailable`]'s message.
fn describe_failures(failures: &[(NodeId, StorageFailure)]) -> String {
    let parts: Vec<String> = failures.iter().map(|(n, f)| format!("{n}: {f}")).collect();
    parts.join("; ")
}

/// The outcome of a client operation.
pub type ClientResult = Result<ClientOk, ClientError>;

/// A client request's identity, chosen by the driver.
pub type ClientId = u64;

/// Checks a client key against the limits.
pub(super) fn check_client_key(key: &[u8]) -> Result<(), ClientError> {
    if key.is_empty() || key.len() > CLIENT_KEY_BYTES_MAX {
        return Err(ClientError::BadRequest(format!(
            "key of {} bytes is outside 1..={CLIENT_KEY_BYTES_MAX}",
            key.len()
        )));
    }
    Ok(())
}
