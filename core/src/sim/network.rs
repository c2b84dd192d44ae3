//! The simulated network: seeded latency, loss, duplication and reordering, and symmetric or
//! one-way partitions.
//!
//! Every draw uses integer arithmetic only, so a seed gives the same run natively and in
//! WebAssembly. Latency is uniform in `[latency_min_ms, latency_max_ms]`, plus, with
//! probability `tail_ppm`, an extra delay uniform in `[0, tail_ms]`: a long tail that reorders
//! messages. A message to oneself is delivered at once and never lost.
//!
//! Between two nodes a message travels as it does on a native link ([`carry`]): encoded into an
//! envelope by the wire's encoder, under the same frame bound, and split and decoded on arrival
//! by the same [`crate::wire::unpack`] the native node's inbound connections run. A message the
//! encoder refuses is dropped with [`DropReason::TooLarge`], the reason a native link counts
//! (`too_large`); the receiver gets the decoded message, not the sender's value. A message to
//! oneself is not encoded (a native node hands those to itself directly).

use crate::DetRng;
use crate::NodeId;
use crate::wire::{Envelope, Message};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The network's behaviour.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// Smallest one-way latency.
    pub latency_min_ms: u64,
    /// Largest one-way latency (before the tail).
    pub latency_max_ms: u64,
    /// Probability (per million) of an extra tail delay.
    pub tail_ppm: u32,
    /// The largest tail delay.
    pub tail_ms: u64,
    /// Probability (per million) that a message is lost.
    pub loss_ppm: u32,
    /// Probability (per million) that a message is delivered twice.
    pub duplicate_ppm: u32,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            latency_min_ms: 2,
            latency_max_ms: 8,
            tail_ppm: 10_000,
            tail_ms: 40,
            loss_ppm: 0,
            duplicate_ppm: 0,
        }
    }
}

/// Why a message did not arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DropReason {
    /// Lost at random.
    Loss,
    /// A partition separates sender and receiver.
    Partition,
    /// The receiver was down when it arrived.
    NodeDown,
    /// The message's encoding is over the wire's frame bound: the sender's link drops it.
    TooLarge,
    /// The receiver could not decode what arrived (a codec that does not round-trip).
    Undecodable,
}

impl DropReason {
    /// Lower-case name for traces.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Loss => "lost",
            DropReason::Partition => "partitioned",
            DropReason::NodeDown => "receiver down",
            DropReason::TooLarge => "too large for a frame",
            DropReason::Undecodable => "undecodable",
        }
    }
}

/// What the wire does to `msg` between two nodes: encodes it as a native link does, then splits
/// and decodes the frame as the receiving node does. Returns the message the receiver gets, and
/// its size on the wire, or why it is dropped.
pub fn carry(msg: &Message) -> Result<(Message, usize), DropReason> {
    let frame = Envelope::encode(msg).map_err(|_| DropReason::TooLarge)?;
    let mut msgs = crate::wire::unpack(&frame).map_err(|_| DropReason::Undecodable)?;
    match (msgs.pop(), msgs.is_empty()) {
        (Some(received), true) => Ok((received, frame.len())),
        _ => Err(DropReason::Undecodable),
    }
}

/// Directed links that drop everything: `(from, to)` is cut.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partitions {
    cut: BTreeSet<(NodeId, NodeId)>,
}

impl Partitions {
    /// Cuts every link between `a` and `b`; both ways unless `one_way` (then only a → b).
    pub fn split(&mut self, a: &[NodeId], b: &[NodeId], one_way: bool) {
        for &x in a {
            for &y in b {
                if x != y {
                    self.cut.insert((x, y));
                    if !one_way {
                        self.cut.insert((y, x));
                    }
                }
            }
        }
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Whether `from → to` is cut.
    pub fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        self.cut.contains(&(from, to))
    }

    /// Whether any link is cut.
    pub fn any(&self) -> bool {
        !self.cut.is_empty()
    }

    /// The cut links.
    pub fn links(&self) -> impl Iterator<Item = &(NodeId, NodeId)> {
        self.cut.iter()
    }
}

/// What the network decided for one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fate {
    /// Milliseconds until it arrives (or would have).
    pub latency_ms: u64,
    /// Why it is dropped, if it is.
    pub dropped: Option<DropReason>,
    /// Milliseconds until a duplicate arrives, if one is made.
    pub duplicate_ms: Option<u64>,
}

/// Draws the fate of a message from `from` to `to`.
pub fn fate(
    config: &NetworkConfig,
    partitions: &Partitions,
    rng: &mut DetRng,
    from: NodeId,
    to: NodeId,
) -> Fate {
    if from == to {
        return Fate {
            latency_ms: 0,
            dropped: None,
            duplicate_ms: None,
        };
    }
    let draw_latency = |rng: &mut DetRng| {
        let lo = config.latency_min_ms;
        let hi = config.latency_max_ms.max(lo);
        let mut ms = rng.random_range(lo..=hi);
        if config.tail_ppm > 0 && rng.random_range(0..1_000_000) < config.tail_ppm {
            ms += rng.random_range(0..=config.tail_ms);
        }
        ms
    };
    let latency_ms = draw_latency(rng);
    let lost = config.loss_ppm > 0 && rng.random_range(0..1_000_000) < config.loss_ppm;
    let dropped = if partitions.is_cut(from, to) {
        Some(DropReason::Partition)
    } else if lost {
        Some(DropReason::Loss)
    } else {
        None
    };
    let duplicate = dropped.is_none()
        && config.duplicate_ppm > 0
        && rng.random_range(0..1_000_000) < config.duplicate_ppm;
    let duplicate_ms = if duplicate {
        Some(draw_latency(rng))
    } else {
        None
    };
    Fate {
        latency_ms,
        dropped,
        duplicate_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_wire_carries_what_fits_in_a_frame_and_drops_the_rest_as_too_large() {
        use crate::storage::{Cell, Version};
        use crate::wire::{MESSAGE_BYTES_MAX, ReqId, WritePurpose};
        let write = |len: usize| Message::Replicate {
            req: ReqId {
                coordinator: NodeId(1),
                seq: 1,
            },
            key: b"k".to_vec(),
            cell: Cell::put(
                Version {
                    ts_micros: 1,
                    node: NodeId(1),
                },
                vec![7; len],
            ),
            hint_for: None,
            purpose: WritePurpose::Client,
        };
        let small = write(10);
        let (received, bytes) = carry(&small).unwrap();
        assert_eq!(received, small);
        assert!(bytes > 10 && bytes < 64, "{bytes}");
        let limit = crate::storage::VALUE_BYTES_LIMIT;
        assert!(carry(&write(limit)).is_ok(), "a value at the limit fits");
        assert_eq!(
            carry(&write(MESSAGE_BYTES_MAX)).map(|_| ()),
            Err(DropReason::TooLarge)
        );
    }

    #[test]
    fn partitions_cut_both_ways_or_one() {
        let mut p = Partitions::default();
        p.split(&[NodeId(1)], &[NodeId(2), NodeId(3)], false);
        assert!(p.is_cut(NodeId(1), NodeId(2)) && p.is_cut(NodeId(3), NodeId(1)));
        assert!(!p.is_cut(NodeId(2), NodeId(3)));
        p.heal();
        p.split(&[NodeId(1)], &[NodeId(2)], true);
        assert!(p.is_cut(NodeId(1), NodeId(2)) && !p.is_cut(NodeId(2), NodeId(1)));
    }

    #[test]
    fn latency_stays_in_bounds_and_loss_follows_its_rate() {
        let config = NetworkConfig {
            loss_ppm: 250_000,
            ..NetworkConfig::default()
        };
        let mut rng = DetRng::seed_from_u64(1);
        let p = Partitions::default();
        let fates: Vec<Fate> = (0..10_000)
            .map(|_| fate(&config, &p, &mut rng, NodeId(1), NodeId(2)))
            .collect();
        assert!(
            fates
                .iter()
                .all(|f| f.latency_ms >= 2 && f.latency_ms <= 8 + 40)
        );
        let lost = fates
            .iter()
            .filter(|f| f.dropped == Some(DropReason::Loss))
            .count();
        assert!(
            (2_000..3_000).contains(&lost),
            "{lost} lost of 10,000 at 25%"
        );
        assert_eq!(
            fate(&config, &p, &mut rng, NodeId(4), NodeId(4)).latency_ms,
            0
        );
    }
}
