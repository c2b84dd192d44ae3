//! The node's identity file, `DIR/node.state`: who this node is (id, ring tokens), the cluster
//! settings it was created with, and the last ring it knew, so that a restarted node keeps its
//! id, tokens and data and routes correctly from its first request, before gossip has spoken.
//!
//! # Layout
//!
//! ```text
//! offset  size  field
//! 0       4     magic     "RSND"
//! 4       1     version   STATE_VERSION; other versions are refused
//! 5       3     reserved  zero
//! 8       4     len       u32 LE: payload bytes, at most STATE_BYTES_MAX - 16
//! 12      4     crc32     u32 LE over the payload
//! 16      len   payload   a `NodeState`, encoded with postcard (serde, varint integers)
//! ```
//!
//! The file is replaced atomically: written to `node.state.tmp`, synced, renamed over
//! `node.state`, and the directory synced. A reader therefore sees the old file or the new one,
//! never a mix; bad bytes are a typed [`StateError`], never a panic.
//!
//! The state ([`NodeState`]) holds the node's id, its tokens (drawn from getrandom at the first
//! start), N and the default W and R, the last gossip generation, whether it finished joining,
//! the last ring it knew (members, tokens, addresses), and the removals it knew of (member and
//! generation; the node gossips them again after a restart, so a removal taken through it
//! survives a crash before it had spread). Version 1 files (no removals) are still read. The persister task rewrites it on a
//! blocking thread at start and on every ring change. At start the node refuses a conflicting
//! `--id` or `--n`, takes a generation larger than the last one (its start time in ms, or one
//! more if the clock stepped back), and starts from the remembered ring, so it never streams
//! its ranges away as if it had just lost them; gossip then adds who joined and removes who
//! left meanwhile. A node that never finished joining joins again (it needs `--join`). Beside
//! this file, `DIR/data` and `DIR/hints` hold the two stores, and `DIR/address` the bound
//! address (written atomically after the bind, removed at a clean stop), so tests and the demo
//! use `--listen 127.0.0.1:0` without racing for ports.

use ringstore_core::NodeId;
use ringstore_core::ring::{Ring, Token};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file's name inside the data directory.
pub const STATE_FILE: &str = "node.state";
/// The format version written (version 1, without `removed`, is read too).
pub const STATE_VERSION: u8 = 2;
/// The largest state file accepted (a ring of 4,096 members with 1,024 tokens each fits).
pub const STATE_BYTES_MAX: usize = 64 << 20;
const MAGIC: [u8; 4] = *b"RSND";
const HEADER_BYTES: usize = 16;

/// What a node remembers across restarts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    /// This node's id.
    pub id: NodeId,
    /// Its ring tokens, chosen at its first start.
    pub tokens: Vec<Token>,
    /// Replicas per key the node was created with (a cluster-wide setting).
    pub n: usize,
    /// Default write quorum.
    pub w: usize,
    /// Default read quorum.
    pub r: usize,
    /// When the node was first started (ms since the Unix epoch).
    pub created_ms: u64,
    /// The gossip generation of the last start: each start takes a larger one (its start
    /// time in ms, or one more than the last if the clock stepped back).
    pub last_generation: u64,
    /// Whether the node has finished joining (a node that crashed while joining joins again).
    pub joined: bool,
    /// The ring as this node last knew it: members with their tokens and addresses.
    pub ring: Vec<RingMember>,
    /// Members an operator removed, with the removal's gossip generation (see
    /// `Node::removed`). Absent from version 1 files.
    pub removed: Vec<(NodeId, u64)>,
}

/// A version 1 state: [`NodeState`] without `removed`.
#[derive(Deserialize)]
struct NodeStateV1 {
    id: NodeId,
    tokens: Vec<Token>,
    n: usize,
    w: usize,
    r: usize,
    created_ms: u64,
    last_generation: u64,
    joined: bool,
    ring: Vec<RingMember>,
}

impl From<NodeStateV1> for NodeState {
    fn from(v1: NodeStateV1) -> NodeState {
        NodeState {
            id: v1.id,
            tokens: v1.tokens,
            n: v1.n,
            w: v1.w,
            r: v1.r,
            created_ms: v1.created_ms,
            last_generation: v1.last_generation,
            joined: v1.joined,
            ring: v1.ring,
            removed: Vec::new(),
        }
    }
}

/// One member of a remembered ring.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingMember {
    /// The member.
    pub id: NodeId,
    /// Its tokens.
    pub tokens: Vec<Token>,
    /// How to reach it (`host:port`), if known.
    pub address: String,
}

impl NodeState {
    /// The remembered ring (this node included once it has joined).
    pub fn ring(&self) -> Ring {
        Ring::new(self.ring.iter().map(|m| (m.id, m.tokens.clone())))
    }
}

/// Why the state file could not be read or written. Reading changes nothing.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a ringstore node state file.
    #[error("{path}: not a ringstore node state file (bad magic)")]
    BadMagic {
        /// The file.
        path: PathBuf,
    },
    /// Written by another version of ringstore.
    #[error("{path}: state format version {got} (this build reads {STATE_VERSION})")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        got: u8,
    },
    /// Shorter than its header says, or over the bound.
    #[error("{path}: truncated or oversized ({len} bytes)")]
    BadLength {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// The payload does not match its checksum.
    #[error("{path}: checksum mismatch: stored {expected:#010x}, computed {got:#010x}")]
    ChecksumMismatch {
        /// The file.
        path: PathBuf,
        /// Computed.
        got: u32,
        /// Stored.
        expected: u32,
    },
    /// The state could not be encoded (nothing was written).
    #[error("{path}: cannot encode the state: {message}")]
    Unencodable {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The payload does not decode.
    #[error("{path}: undecodable state: {message}")]
    Payload {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// Encodes a state into the file's bytes. Fails only if postcard cannot encode the state
/// (it cannot, for the types it holds, but an empty payload must never be written).
pub fn encode(state: &NodeState) -> Result<Vec<u8>, postcard::Error> {
    let payload = postcard::to_allocvec(state)?;
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.extend_from_slice(&MAGIC);
    out.push(STATE_VERSION);
    out.extend_from_slice(&[0; 3]);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Decodes the file's bytes (`path` only names the file in errors).
pub fn decode(path: &Path, bytes: &[u8]) -> Result<NodeState, StateError> {
    let path = path.to_path_buf();
    let bad_length = |path: PathBuf| StateError::BadLength {
        path,
        len: bytes.len(),
    };
    if bytes.len() < HEADER_BYTES || bytes.len() > STATE_BYTES_MAX {
        return Err(bad_length(path));
    }
    if bytes[0..4] != MAGIC {
        return Err(StateError::BadMagic { path });
    }
    let version = bytes[4];
    if version != STATE_VERSION && version != 1 {
        return Err(StateError::UnsupportedVersion {
            path,
            got: bytes[4],
        });
    }
    let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    if HEADER_BYTES + len != bytes.len() {
        return Err(bad_length(path));
    }
    let expected = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
    let payload = &bytes[HEADER_BYTES..];
    let got = crc32fast::hash(payload);
    if got != expected {
        return Err(StateError::ChecksumMismatch {
            path,
            got,
            expected,
        });
    }
    let decoded = if version == 1 {
        postcard::take_from_bytes::<NodeStateV1>(payload).map(|(v1, rest)| (v1.into(), rest))
    } else {
        postcard::take_from_bytes::<NodeState>(payload)
    };
    match decoded {
        Ok((state, [])) => Ok(state),
        Ok((_, rest)) => Err(StateError::Payload {
            path,
            message: format!("{} bytes after the state", rest.len()),
        }),
        Err(e) => Err(StateError::Payload {
            path,
            message: e.to_string(),
        }),
    }
}

/// Reads `DIR/node.state`, or `None` if the node has never started in `dir`.
pub fn load(dir: &Path) -> Result<Option<NodeState>, StateError> {
    let path = dir.join(STATE_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => decode(&path, &bytes).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateError::Io { path, source }),
    }
}

/// Replaces `DIR/node.state` atomically and durably (see the module docs).
pub fn store(dir: &Path, state: &NodeState) -> Result<(), StateError> {
    let path = dir.join(STATE_FILE);
    let tmp = dir.join(format!("{STATE_FILE}.tmp"));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StateError::Io { path, source }
    };
    let bytes = encode(state).map_err(|e| StateError::Unencodable {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(&bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_after_the_state_are_refused() {
        // Inside the checksummed payload, so only the payload's decoder can tell.
        let mut bytes = encode(&sample()).unwrap();
        bytes.push(0);
        let len = (bytes.len() - HEADER_BYTES) as u32;
        bytes[8..12].copy_from_slice(&len.to_le_bytes());
        let crc = crc32fast::hash(&bytes[HEADER_BYTES..]);
        bytes[12..16].copy_from_slice(&crc.to_le_bytes());
        let err = decode(Path::new("node.state"), &bytes).unwrap_err();
        assert!(matches!(err, StateError::Payload { .. }), "{err}");
    }

    fn sample() -> NodeState {
        NodeState {
            id: NodeId(3),
            tokens: vec![Token(7), Token(1 << 40)],
            n: 3,
            w: 2,
            r: 2,
            created_ms: 1_700_000_000_000,
            last_generation: 1_700_000_000_001,
            joined: true,
            ring: vec![RingMember {
                id: NodeId(1),
                tokens: vec![Token(9)],
                address: "127.0.0.1:7001".into(),
            }],
            removed: vec![(NodeId(4), 1_700_000_000_002)],
        }
    }

    #[test]
    fn a_version_1_file_reads_with_no_removals() {
        // Version 1's payload is version 2's without the trailing `removed` (an empty list
        // encodes as one zero byte).
        let state = NodeState {
            removed: Vec::new(),
            ..sample()
        };
        let mut bytes = encode(&state).unwrap();
        assert_eq!(bytes.pop(), Some(0));
        bytes[4] = 1;
        let len = (bytes.len() - HEADER_BYTES) as u32;
        bytes[8..12].copy_from_slice(&len.to_le_bytes());
        let crc = crc32fast::hash(&bytes[HEADER_BYTES..]);
        bytes[12..16].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode(Path::new("node.state"), &bytes).unwrap(), state);
    }

    #[test]
    fn a_state_survives_a_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_none());
        store(dir.path(), &sample()).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(sample()));
        let mut changed = sample();
        changed.joined = false;
        store(dir.path(), &changed).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(changed));
        assert!(!dir.path().join("node.state.tmp").exists());
    }

    #[test]
    fn the_layout_is_as_documented() {
        let bytes = encode(&sample()).unwrap();
        assert_eq!(&bytes[0..4], b"RSND");
        assert_eq!(bytes[4], STATE_VERSION);
        let len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
        assert_eq!(len, bytes.len() - HEADER_BYTES);
    }

    #[test]
    fn every_damaged_byte_is_a_typed_error() {
        let bytes = encode(&sample()).unwrap();
        let path = Path::new("node.state");
        for i in 0..bytes.len() {
            if (5..8).contains(&i) {
                continue; // reserved
            }
            let mut bad = bytes.clone();
            bad[i] ^= 0x41;
            assert!(decode(path, &bad).is_err(), "flip at {i} went unnoticed");
        }
        for cut in 0..bytes.len() {
            assert!(decode(path, &bytes[..cut]).is_err());
        }
        let mut bad = bytes.clone();
        bad[4] = 9;
        assert!(matches!(
            decode(path, &bad),
            Err(StateError::UnsupportedVersion { got: 9, .. })
        ));
    }
}
