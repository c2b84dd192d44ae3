//! Peer choice: which members a gossip round talks to, as a pure function of the membership
//! and the round's random draws, so that it is table-tested without a gossiper.

use crate::DetRng;
use crate::NodeId;
use rand::Rng;
use std::collections::BTreeSet;

/// Chooses the peers to gossip with this round (pure: the same inputs and RNG state give the
/// same answer).
///
/// - Up to `fanout` distinct members of `live`, uniformly at random.
/// - Then, with probability `|unreachable| / (|live| + 1)`, one member of `unreachable`
///   (suspected or dead): without it a node that recovers, or the other side of a healed
///   partition, would only be found again by chance through a third party. Cassandra uses the
///   same probability.
/// - Then, if no seed was chosen, one seed: always when no live peer is known (that is how a
///   new node joins, and how an isolated node keeps retrying), otherwise with probability
///   `|seeds| / (|live| + |unreachable|)` (Cassandra's rule), so seeds stay well informed and
///   a cluster split into islands that each lost every live link still meets at the seeds.
///
/// `me` is never chosen. Inputs are sorted and deduplicated first, so their order does not
/// matter. At most `fanout + 2` peers are returned, in the order they were chosen.
pub fn choose_peers(
    live: &[NodeId],
    unreachable: &[NodeId],
    seeds: &[NodeId],
    me: NodeId,
    fanout: usize,
    rng: &mut DetRng,
) -> Vec<NodeId> {
    let clean = |nodes: &[NodeId]| -> Vec<NodeId> {
        // Callers nearly always pass sorted lists (a node asks every round): then filtering
        // `me` out is the whole cleaning, without building a set.
        if nodes.windows(2).all(|p| p[0] < p[1]) {
            return nodes.iter().copied().filter(|&n| n != me).collect();
        }
        let set: BTreeSet<NodeId> = nodes.iter().copied().filter(|&n| n != me).collect();
        set.into_iter().collect()
    };
    let mut live = clean(live);
    let unreachable = clean(unreachable);
    let seeds = clean(seeds);
    let live_count = live.len();

    // Partial Fisher–Yates: the first `take` entries become a uniform sample.
    let take = fanout.min(live.len());
    for i in 0..take {
        let j = rng.random_range(i..live.len());
        live.swap(i, j);
    }
    let mut chosen: Vec<NodeId> = live[..take].to_vec();

    if !unreachable.is_empty() && rng.random_range(0..=live_count) < unreachable.len() {
        let pick = unreachable[rng.random_range(0..unreachable.len())];
        if !chosen.contains(&pick) {
            chosen.push(pick);
        }
    }

    let seed_chosen = chosen.iter().any(|n| seeds.binary_search(n).is_ok());
    if !seeds.is_empty() && !seed_chosen {
        let known = live_count + unreachable.len();
        let go = live_count == 0 || rng.random_range(0..known) < seeds.len();
        if go {
            let pick = seeds[rng.random_range(0..seeds.len())];
            if !chosen.contains(&pick) {
                chosen.push(pick);
            }
        }
    }
    chosen
}
