//! The ring: which nodes store a key, and which ranges move when the membership changes.
//!
//! ringstore partitions keys with consistent hashing (design notes, section 2). Keys and nodes
//! are hashed onto one circular token space; there is no central directory, and a join or a leave
//! only moves the keys next to the tokens that appeared or disappeared.
//!
//! **Token space.** Tokens are `u64` and the ring wraps from `u64::MAX` back to 0. The design
//! notes draw a 2³² circle for teaching; ringstore uses 64 bits because with thousands of nodes
//! × vnodes a 32-bit space makes collisions likely (birthday bound: 16,000 tokens in 2³² collide
//! with probability ≈ 3 %, in 2⁶⁴ ≈ 7 · 10⁻¹²). A key's token is the XXH3-64 hash of its bytes
//! ([`key_token`]); a node's tokens are derived from its id and the cluster seed
//! ([`node_tokens`]), so every member computes the same ring from the same membership.
//!
//! **Ownership rule** (the notes: "very important"): a key belongs to the *first node
//! encountered clockwise* from the key's hash, i.e. the node holding the first ring token
//! `≥ key_token`, wrapping past the top. A ring token therefore owns the range
//! `(previous token, token]` ([`Range`]: start exclusive, end inclusive).
//!
//! **Replication.** Each key is stored on N distinct physical nodes: its *preference list*, the
//! first N distinct nodes met walking clockwise from the key ([`Ring::preference_list`]). With
//! the notes' example ring `A ─ B ─ C ─ D ─ E` and `user123` hashing between B and C, the owner is
//! C and at N = 3 the preference list is `[C, D, E]` (test `design_notes_example_user123`).
//! Walking further ([`Ring::walk`]) yields the fallback nodes a coordinator uses for a sloppy
//! quorum when some of the preference list is down.
//!
//! **Vnodes.** Each node holds [`DEFAULT_VNODES`] tokens, spreading its share of the ring over
//! many small ranges; see that constant for the measurements behind the number.
//!
//! **Membership changes** are planned by the pure function [`plan()`] (like
//! `riak-admin cluster plan`): it compares the preference lists of two rings range by range and
//! lists which node streams which range to which.
//!
//! ```
//! use ringstore_core::NodeId;
//! use ringstore_core::ring::{DEFAULT_VNODES, Ring, key_token, node_tokens};
//!
//! let seed = 7; // the cluster seed: every member derives the same tokens from it
//! let nodes: Vec<NodeId> = (1..=5).map(NodeId).collect();
//! let ring = Ring::build(&nodes, DEFAULT_VNODES, seed);
//!
//! // The three replicas of user123, then the fallbacks for a sloppy quorum.
//! let token = key_token(b"user123");
//! let replicas = ring.preference_list(token, 3);
//! let fallbacks: Vec<NodeId> = ring.walk(token).skip(3).collect();
//! assert_eq!(replicas.len() + fallbacks.len(), 5);
//!
//! // n6 joins: it receives about 3/6 of the keys, each range from a node that held it.
//! let plan = ring.plan_join(NodeId(6), node_tokens(NodeId(6), DEFAULT_VNODES, seed), 3);
//! assert!(plan.moves.iter().all(|m| m.to == NodeId(6)));
//! println!("{plan}");
//! ```
//!
//! Everything here is a pure function of its inputs: rings are immutable values sorted by token,
//! and no hash-map iteration order decides anything.

mod plan;
#[cfg(test)]
mod tests;

pub use plan::{Plan, RangeMove, handover, handover_receiver, held_elsewhere, plan};

use crate::NodeId;
use core::fmt;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// The number of vnodes (tokens) per node when the operator does not choose.
///
/// **Why 16.** Tokens are placed by hashing (no allocation algorithm), so a node's share of
/// the ring is a sum of random gaps and evens out only as its vnode count grows, as 1/√vnodes.
/// Measured with `cargo run -p ringstore-core --example vnode_spread --release` (100 cluster
/// seeds per row; max and min: the most and least loaded node's share over the fair share
/// 1/nodes, averaged over seeds; cv: standard deviation over mean; *replica* is what a node
/// stores at N = 3; *peers*: distinct other nodes a node shares at least one range with at
/// N = 3, the fan-out of its repair and streaming):
///
/// ```text
/// nodes vnodes | primary max  min   cv    | replica(N=3) max  min   cv    | peers
///     5      1 |        2.21  0.24  0.73  |              1.38  0.61  0.29 |   4.0
///     5      4 |        1.61  0.53  0.39  |              1.32  0.68  0.24 |   4.0
///     5     16 |        1.31  0.72  0.21  |              1.17  0.83  0.12 |   4.0
///     5     32 |        1.21  0.81  0.14  |              1.12  0.88  0.09 |   4.0
///     5     64 |        1.15  0.87  0.11  |              1.09  0.91  0.07 |   4.0
///     5    256 |        1.07  0.93  0.05  |              1.04  0.96  0.03 |   4.0
///    16      1 |        3.46  0.05  0.93  |              1.99  0.31  0.50 |   4.0
///    16      4 |        2.01  0.33  0.46  |              1.55  0.55  0.27 |  10.2
///    16     16 |        1.51  0.61  0.24  |              1.27  0.76  0.14 |  14.8
///    16     32 |        1.33  0.71  0.17  |              1.18  0.82  0.10 |  15.0
///    16     64 |        1.22  0.80  0.12  |              1.13  0.87  0.07 |  15.0
///    16    256 |        1.12  0.89  0.06  |              1.07  0.93  0.04 |  15.0
///    64      1 |        4.86  0.02  0.99  |              2.70  0.17  0.56 |   4.0
///    64      4 |        2.55  0.22  0.49  |              1.78  0.44  0.29 |  14.3
///    64     16 |        1.67  0.50  0.25  |              1.37  0.69  0.14 |  40.4
///    64     32 |        1.48  0.63  0.18  |              1.26  0.77  0.10 |  54.9
///    64     64 |        1.32  0.73  0.12  |              1.18  0.84  0.07 |  61.9
///    64    256 |        1.15  0.86  0.06  |              1.08  0.92  0.04 |  63.0
/// ```
///
/// - 1 and 4 vnodes are too uneven: the hottest node stores 1.5–2.7× its share.
/// - 256 (Cassandra's old default) is the most even, but repair and streaming work on
///   N × vnodes = 768 ranges per node, and every node shares ranges with every other, so any
///   two failed nodes take some range below quorum and a rebuild touches the whole cluster.
///   That is why Cassandra moved to 16 (with a token allocation algorithm to keep balance).
/// - The page draws one tick per vnode: 16 nodes × 16 = 256 ticks stay legible, 64 × 16 =
///   1,024 still read as colour bands; at 64 vnodes a 64-node ring would be 4,096 ticks, about
///   two per pixel of a 600-pixel ring.
/// - 16 keeps repair at 48 ranges per node and, at 64 nodes, ties a node to ~40 peers rather
///   than all 63.
///
/// The price, stated plainly: without an allocator the node storing the most holds about
/// 1.17× (5 nodes), 1.27× (16) and 1.37× (64) of the fair share at N = 3, so plan capacity with
/// that headroom. Clusters that care more about balance than about the points above can pass
/// 32 or 64 vnodes (1.18× and 1.13× at 16 nodes); a token allocation algorithm would remove
/// the price and is the natural next step.
pub const DEFAULT_VNODES: u32 = 16;

/// A position on the ring: a point of the 64-bit token space, which wraps at `u64::MAX`.
/// Shown as `0x` and 16 hex digits.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Token(pub u64);

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:016x}", self.0)
    }
}

/// The token of a key: XXH3-64 of its bytes (seed 0, the same on every node and platform).
pub fn key_token(key: &[u8]) -> Token {
    Token(xxh3_64(key))
}

/// The `vnodes` tokens of `node` in a cluster whose token seed is `seed`, sorted.
///
/// Token `i` is XXH3-64 (seeded with `seed`) of `node ‖ i ‖ attempt` (little-endian `u32`s),
/// starting with `attempt = 0`; if it repeats one of this node's earlier tokens (probability
/// ~2⁻⁶⁴), `attempt` counts up until it does not. A collision *between* nodes is settled by
/// [`Ring::new`].
pub fn node_tokens(node: NodeId, vnodes: u32, seed: u64) -> Vec<Token> {
    let mut tokens = BTreeSet::new();
    for i in 0..vnodes {
        let mut attempt: u32 = 0;
        loop {
            let mut input = [0u8; 12];
            input[0..4].copy_from_slice(&node.0.to_le_bytes());
            input[4..8].copy_from_slice(&i.to_le_bytes());
            input[8..12].copy_from_slice(&attempt.to_le_bytes());
            if tokens.insert(Token(xxh3_64_with_seed(&input, seed))) {
                break;
            }
            attempt = attempt.wrapping_add(1);
        }
    }
    tokens.into_iter().collect()
}

/// An arc of the ring: the tokens `t` with `start < t ≤ end`, going clockwise and wrapping past
/// `u64::MAX`. A range whose `start == end` is the whole ring (a ring with a single token owns
/// everything). A range is never empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Range {
    /// Exclusive: the previous ring token.
    pub start: Token,
    /// Inclusive: the ring token that owns the range.
    pub end: Token,
}

/// 2⁶⁴ as a float, to turn widths into shares of the ring.
const RING_SIZE_F64: f64 = 18_446_744_073_709_551_616.0;

impl Range {
    /// The range `(start, end]`.
    pub fn new(start: Token, end: Token) -> Range {
        Range { start, end }
    }

    /// The whole ring, expressed as `(t, t]`.
    pub fn full(t: Token) -> Range {
        Range { start: t, end: t }
    }

    /// Whether this range is the whole ring.
    pub fn is_full(&self) -> bool {
        self.start == self.end
    }

    /// Whether `token` lies in `(start, end]`, clockwise.
    pub fn contains(&self, token: Token) -> bool {
        if self.start < self.end {
            self.start < token && token <= self.end
        } else {
            // Wraps past u64::MAX (or is the whole ring when start == end).
            token > self.start || token <= self.end
        }
    }

    /// The number of tokens in the range, from 1 to 2⁶⁴ (the whole ring).
    pub fn width(&self) -> u128 {
        match self.end.0.wrapping_sub(self.start.0) {
            0 => 1u128 << 64,
            w => u128::from(w),
        }
    }

    /// The range's fraction of the ring, in `(0, 1]`: the share of keys that hash into it.
    pub fn share(&self) -> f64 {
        self.width() as f64 / RING_SIZE_F64
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {}]", self.start, self.end)
    }
}

/// Merges ranges given in ring order (disjoint, each starting at or after the previous one's
/// end) where one ends exactly where the next starts, including across the wrap.
pub(crate) fn merge_adjacent(ranges: Vec<Range>) -> Vec<Range> {
    let mut merged: Vec<Range> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match merged.last_mut() {
            Some(last) if last.end == r.start && !last.is_full() => last.end = r.end,
            _ => merged.push(r),
        }
    }
    if merged.len() > 1
        && let (Some(first), Some(last)) = (merged.first(), merged.last())
        && last.end == first.start
    {
        let start = last.start;
        merged.pop();
        if let Some(first) = merged.first_mut() {
            first.start = start;
        }
    }
    merged
}

/// How much of the ring one node is responsible for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ownership {
    /// Tokens the node holds on the ring.
    pub vnodes: u32,
    /// Share of the token space where this node is the first owner clockwise. Sums to 1 over
    /// all nodes of a non-empty ring.
    pub primary_share: f64,
    /// Share of keys this node stores at replication factor N: the total share of the ranges
    /// whose preference list contains it. Sums to `min(N, nodes)` over all nodes.
    pub replica_share: f64,
}

/// An immutable consistent-hashing ring: every token with the node that holds it, sorted by
/// token. Build it with [`Ring::new`] (explicit tokens) or [`Ring::build`] (derived tokens);
/// change it with [`Ring::with_node`] and [`Ring::without_node`], which return a new ring.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ring {
    /// Sorted by token, tokens unique.
    tokens: Vec<(Token, NodeId)>,
    /// The distinct nodes holding at least one token, sorted.
    nodes: Vec<NodeId>,
}

impl Ring {
    /// A ring from each member's tokens. The argument order does not matter. A node listed
    /// twice keeps the union of its tokens. If two nodes claim the same token, the lower
    /// `NodeId` keeps it and the other node simply has one vnode fewer, so every member
    /// resolves the collision the same way.
    pub fn new(members: impl IntoIterator<Item = (NodeId, Vec<Token>)>) -> Ring {
        let mut tokens: Vec<(Token, NodeId)> = members
            .into_iter()
            .flat_map(|(node, ts)| ts.into_iter().map(move |t| (t, node)))
            .collect();
        tokens.sort_unstable();
        tokens.dedup_by_key(|(t, _)| *t);
        let nodes: BTreeSet<NodeId> = tokens.iter().map(|(_, n)| *n).collect();
        Ring {
            tokens,
            nodes: nodes.into_iter().collect(),
        }
    }

    /// A ring of `nodes`, each with `vnodes` tokens from [`node_tokens`] and the cluster `seed`.
    pub fn build(nodes: &[NodeId], vnodes: u32, seed: u64) -> Ring {
        Ring::new(
            nodes
                .iter()
                .map(|&node| (node, node_tokens(node, vnodes, seed))),
        )
    }

    /// This ring with `node` holding exactly `tokens` (added, or its tokens replaced).
    pub fn with_node(&self, node: NodeId, tokens: Vec<Token>) -> Ring {
        Ring::new(self.members_except(node).chain([(node, tokens)]))
    }

    /// This ring without `node`'s tokens.
    pub fn without_node(&self, node: NodeId) -> Ring {
        Ring::new(self.members_except(node))
    }

    fn members_except(&self, node: NodeId) -> impl Iterator<Item = (NodeId, Vec<Token>)> + '_ {
        self.nodes
            .iter()
            .filter(move |&&m| m != node)
            .map(|&m| (m, self.tokens_of(m)))
    }

    /// Every token on the ring with its node, sorted by token.
    pub fn tokens(&self) -> &[(Token, NodeId)] {
        &self.tokens
    }

    /// The distinct nodes on the ring, sorted.
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }

    /// Whether the ring has no tokens (and so no nodes).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Whether `node` holds a token on the ring.
    pub fn contains_node(&self, node: NodeId) -> bool {
        self.nodes.binary_search(&node).is_ok()
    }

    /// The tokens `node` holds, sorted.
    pub fn tokens_of(&self, node: NodeId) -> Vec<Token> {
        self.tokens
            .iter()
            .filter(|(_, n)| *n == node)
            .map(|(t, _)| *t)
            .collect()
    }

    /// Every node's tokens, sorted: one pass over the ring (where calling [`Ring::tokens_of`]
    /// for each node would walk it once per node).
    pub fn tokens_by_node(&self) -> BTreeMap<NodeId, Vec<Token>> {
        let mut out: BTreeMap<NodeId, Vec<Token>> = BTreeMap::new();
        for &(t, n) in &self.tokens {
            out.entry(n).or_default().push(t);
        }
        out
    }

    /// Index of the first ring token `≥ token`, wrapping to 0 past the last. The ring must not
    /// be empty.
    fn successor_index(&self, token: Token) -> usize {
        let i = self.tokens.partition_point(|(t, _)| *t < token);
        if i == self.tokens.len() { 0 } else { i }
    }

    /// The node that owns `token`: the first node clockwise from it. `None` on an empty ring.
    pub fn owner(&self, token: Token) -> Option<NodeId> {
        if self.tokens.is_empty() {
            return None;
        }
        self.tokens
            .get(self.successor_index(token))
            .map(|(_, node)| *node)
    }

    /// The first `n` distinct physical nodes met clockwise from `token` (starting with the
    /// first ring token `≥ token`), in that order; fewer if the ring has fewer nodes. A binary
    /// search, then a short walk: this runs on every request.
    pub fn preference_list(&self, token: Token, n: usize) -> Vec<NodeId> {
        let want = n.min(self.nodes.len());
        let mut list = Vec::with_capacity(want);
        if want == 0 {
            return list;
        }
        let start = self.successor_index(token);
        let (after, before) = self.tokens.split_at(start);
        for (_, node) in before.iter().chain(after) {
            if !list.contains(node) {
                list.push(*node);
                if list.len() == want {
                    break;
                }
            }
        }
        list
    }

    /// Every distinct node, in the order met walking clockwise from `token`. Its first N items
    /// are the [preference list](Ring::preference_list); the rest are the fallbacks a
    /// coordinator tries, in order, for a sloppy quorum.
    pub fn walk(&self, token: Token) -> impl Iterator<Item = NodeId> + '_ {
        let start = if self.tokens.is_empty() {
            0
        } else {
            self.successor_index(token)
        };
        let (after, before) = self.tokens.split_at(start);
        let mut seen = BTreeSet::new();
        before
            .iter()
            .chain(after)
            .map(|(_, node)| *node)
            .filter(move |node| seen.insert(*node))
            .take(self.nodes.len())
    }

    /// Every range of the ring with its primary owner, in ring order: first the range that
    /// wraps, `(last token, first token]`, then `(tᵢ₋₁, tᵢ]`. A single-token ring is one
    /// [full](Range::is_full) range; an empty ring has none.
    pub fn ranges(&self) -> Vec<(Range, NodeId)> {
        let Some(&(last, _)) = self.tokens.last() else {
            return Vec::new();
        };
        let mut prev = last;
        self.tokens
            .iter()
            .map(|&(t, node)| {
                let range = Range::new(prev, t);
                prev = t;
                (range, node)
            })
            .collect()
    }

    /// Every range `node` stores at replication factor `n` (its own ranges and the ones it
    /// replicates for the nodes counter-clockwise of it), adjacent ranges merged, in ring order.
    pub fn replica_ranges(&self, node: NodeId, n: usize) -> Vec<Range> {
        let ranges = self
            .ranges()
            .into_iter()
            .filter(|(r, _)| self.preference_list(r.end, n).contains(&node))
            .map(|(r, _)| r)
            .collect();
        merge_adjacent(ranges)
    }

    /// Each node's share of the ring as primary owner and as one of `n` replicas.
    pub fn ownership(&self, n: usize) -> BTreeMap<NodeId, Ownership> {
        let mut out: BTreeMap<NodeId, Ownership> = self
            .nodes
            .iter()
            .map(|&node| (node, Ownership::default()))
            .collect();
        for (range, owner) in self.ranges() {
            let share = range.share();
            if let Some(o) = out.get_mut(&owner) {
                o.vnodes += 1;
                o.primary_share += share;
            }
            for replica in self.preference_list(range.end, n) {
                if let Some(o) = out.get_mut(&replica) {
                    o.replica_share += share;
                }
            }
        }
        out
    }

    /// What moves if `node` joins with `tokens`: [`plan()`] from this ring to
    /// [`with_node`](Ring::with_node).
    pub fn plan_join(&self, node: NodeId, tokens: Vec<Token>, n: usize) -> Plan {
        plan(self, &self.with_node(node, tokens), n)
    }

    /// What moves if `node` leaves: [`plan()`] from this ring to
    /// [`without_node`](Ring::without_node).
    pub fn plan_leave(&self, node: NodeId, n: usize) -> Plan {
        plan(self, &self.without_node(node), n)
    }
}
