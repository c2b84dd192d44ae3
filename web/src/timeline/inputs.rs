//! What the timeline logs and what a link carries: the reader's inputs ([`Input`]), each with
//! its moment ([`Logged`]), and their encoding for `&in=` ([`encode_inputs`], [`decode_inputs`]:
//! versioned, checksummed, bounded; bad bytes give an [`InputsError`]).

use super::INPUTS_MAX;
use crate::idb_disk::IdbDisk;
use crate::page::{NetworkKnobs, WorkloadKnobs, apply_network, apply_workload};
use ringstore_core::NodeId;
use ringstore_core::sim::Sim;
use ringstore_core::sim::log::OpId;
use ringstore_core::sim::script::Command;
use serde::{Deserialize, Serialize};

/// The longest value a logged client operation may carry (the console's limit), bytes: with
/// [`INPUTS_MAX`], what a branch's inputs hold is bounded.
pub const INPUT_VALUE_BYTES_MAX: usize = 4_096;
/// The longest key a logged client operation may carry, bytes.
pub const INPUT_KEY_BYTES_MAX: usize = 1_024;

/// Something the reader did to the cluster. See the module docs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Input {
    /// A client operation (`kind`: put, get, delete).
    Client {
        /// Coordinator.
        node: u32,
        /// `put`, `get` or `delete`.
        kind: String,
        /// The key.
        key: String,
        /// The value (puts).
        value: String,
        /// The consistency (empty: the cluster's).
        consistency: String,
    },
    /// A node crashes.
    Crash {
        /// The node.
        node: u32,
    },
    /// A crashed node restarts.
    Restart {
        /// The node.
        node: u32,
    },
    /// Links between `a` and `b` are cut (only a → b if `one_way`).
    Partition {
        /// One side.
        a: Vec<u32>,
        /// The other.
        b: Vec<u32>,
        /// Only a → b.
        one_way: bool,
    },
    /// Every link is restored.
    Heal,
    /// A node's clock offset.
    Skew {
        /// The node.
        node: u32,
        /// Its offset, ms.
        ms: i64,
    },
    /// A node joins (the next free id).
    Join,
    /// A node leaves gracefully.
    Leave {
        /// The node.
        node: u32,
    },
    /// Latency and loss.
    Network(NetworkKnobs),
    /// The workload.
    Workload(WorkloadKnobs),
    /// A lesson's command that changes the cluster, as its line reads (`crash n3`,
    /// `put n2 user123=Alice`, `load n1 100`): [`Command::apply`] on the line parsed again.
    Script {
        /// The line.
        line: String,
    },
    /// A lesson's step began (1-based); changes nothing, marks the timeline.
    LessonStep {
        /// The step.
        step: u32,
    },
}

impl Input {
    /// What a marker on the timeline calls it, if it gets one.
    pub(super) fn marker(&self) -> Option<(&'static str, String)> {
        Some(match self {
            Input::Crash { node } => ("crash", format!("n{node} crashed")),
            Input::Restart { node } => ("restart", format!("n{node} restarted")),
            Input::Partition { a, b, .. } => {
                let show = |g: &[u32]| {
                    g.iter()
                        .map(|n| format!("n{n}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                ("partition", format!("partition {} | {}", show(a), show(b)))
            }
            Input::Heal => ("heal", "heal".to_string()),
            Input::Join => ("join", "a node joins".to_string()),
            Input::Leave { node } => ("leave", format!("n{node} leaves")),
            Input::Client {
                node, kind, key, ..
            } => ("client", format!("{kind} {key} via n{node}")),
            Input::Skew { node, ms } => ("setting", format!("n{node} clock {ms:+} ms")),
            Input::Network(_) => ("setting", "network changed".to_string()),
            Input::Workload(_) => ("setting", "workload changed".to_string()),
            Input::Script { line } => {
                let kind = match Command::parse(line) {
                    Ok(Command::Crash(_)) => "crash",
                    Ok(Command::Restart(_)) => "restart",
                    Ok(Command::Partition { .. }) => "partition",
                    Ok(Command::Heal) => "heal",
                    Ok(Command::Join(_)) => "join",
                    Ok(Command::Leave(_)) => "leave",
                    Ok(Command::Client { .. } | Command::Load { .. }) => "client",
                    _ => "setting",
                };
                (kind, line.clone())
            }
            Input::LessonStep { step } => ("step", format!("lesson step {step} begins")),
        })
    }

    /// Applies the input to `sim`; an error says why it could not be done (nothing changed).
    /// A client input gives its operation's id.
    pub fn apply(&self, sim: &mut Sim<IdbDisk>) -> Result<Option<OpId>, String> {
        let ids = |g: &[u32]| g.iter().map(|n| NodeId(*n)).collect::<Vec<_>>();
        match self {
            Input::Client {
                node,
                kind,
                key,
                value,
                consistency,
            } => {
                let op = crate::cluster::client_op(kind, key, value, consistency)?;
                if !sim.node_ids().contains(&NodeId(*node)) {
                    return Err(format!("no node n{node}"));
                }
                return Ok(Some(sim.client(NodeId(*node), op)));
            }
            Input::Crash { node } => sim.crash(NodeId(*node)),
            Input::Restart { node } => sim.restart(NodeId(*node)).map_err(|e| e.to_string())?,
            Input::Partition { a, b, one_way } => sim.partition(&ids(a), &ids(b), *one_way),
            Input::Heal => sim.heal(),
            Input::Skew { node, ms } => sim.set_skew(NodeId(*node), *ms),
            Input::Join => {
                let next = sim.node_ids().last().map_or(1, |n| n.0 + 1);
                if next > crate::url::NODES_MAX {
                    return Err(format!("at most {} nodes", crate::url::NODES_MAX));
                }
                sim.add_node(NodeId(next)).map_err(|e| e.to_string())?;
            }
            Input::Leave { node } => sim.leave(NodeId(*node)),
            Input::Network(k) => {
                let net = apply_network(sim.config().network.clone(), k);
                sim.set_network(net);
            }
            Input::Workload(k) => {
                let w = apply_workload(sim.config().workload.clone(), k);
                sim.set_workload(w);
            }
            Input::Script { line } => {
                let command = Command::parse(line)?;
                return command
                    .apply(sim)
                    .unwrap_or_else(|| Err(format!("{line:?} changes nothing")));
            }
            Input::LessonStep { .. } => {}
        }
        Ok(None)
    }
}

/// An input with the moment it was given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Logged {
    /// Events run when it was given.
    pub events: u64,
    /// The simulated clock then, ms (the page may have run the clock past the last event).
    pub now_ms: u64,
    /// The input.
    pub input: Input,
}

/// The version of [`encode_inputs`]'s layout.
pub const INPUTS_VERSION: u8 = 1;
/// Bytes of encoded inputs accepted at most (a link's are far fewer).
pub const INPUTS_BYTES_MAX: usize = 256 << 10;
/// The furthest moment a link may name, events (about an hour of a busy 16-node run).
pub const PLAY_TO_MAX: u64 = 50_000_000;

/// Why a link's inputs were refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputsError {
    /// Fewer bytes than the header, or more than [`INPUTS_BYTES_MAX`].
    #[error("the link's inputs have {0} bytes, which is not a valid length")]
    Length(usize),
    /// A version this page does not read.
    #[error("the link's inputs are format version {0}; this page reads version {INPUTS_VERSION}")]
    Version(u8),
    /// The checksum does not match.
    #[error("the link's inputs are damaged (checksum {got:08x}, expected {expected:08x})")]
    Checksum {
        /// Computed over the body.
        got: u32,
        /// Stored in the header.
        expected: u32,
    },
    /// The body does not decode, or holds more than [`INPUTS_MAX`] inputs.
    #[error("the link's inputs are damaged ({0})")]
    Body(String),
}

/// Encodes inputs for a link: `[version: u8 = INPUTS_VERSION][crc32 of the body: u32 LE]
/// [body: postcard encoding of Vec<Logged>]` (postcard: varint lengths and integers; an
/// [`Input`] as its variant index then its fields). The page deflates and base64url-encodes
/// it into `&in=`.
/// Fails only if postcard cannot encode them (it cannot, for these types; an empty body must
/// never stand for them).
pub fn encode_inputs(inputs: &[Logged]) -> Result<Vec<u8>, postcard::Error> {
    let body = postcard::to_allocvec(inputs)?;
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(INPUTS_VERSION);
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes [`encode_inputs`]'s bytes; bad bytes give an [`InputsError`].
pub fn decode_inputs(bytes: &[u8]) -> Result<Vec<Logged>, InputsError> {
    if bytes.len() < 5 || bytes.len() > INPUTS_BYTES_MAX {
        return Err(InputsError::Length(bytes.len()));
    }
    if bytes[0] != INPUTS_VERSION {
        return Err(InputsError::Version(bytes[0]));
    }
    let expected = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    let body = &bytes[5..];
    let got = crc32fast::hash(body);
    if got != expected {
        return Err(InputsError::Checksum { got, expected });
    }
    let inputs: Vec<Logged> =
        postcard::from_bytes(body).map_err(|e| InputsError::Body(e.to_string()))?;
    if inputs.len() > INPUTS_MAX {
        return Err(InputsError::Body(format!(
            "{} inputs, at most {INPUTS_MAX}",
            inputs.len()
        )));
    }
    Ok(inputs)
}
