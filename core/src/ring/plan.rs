//! Planning a membership change: which ranges must be streamed from which node to which, like
//! `riak-admin cluster plan`.
//!
//! [`plan`] is a pure function of two rings. It cuts the token space at every token of either
//! ring, so within each piece both rings agree on a single preference list, and compares them:
//! a node in the new list but not the old one *gains* the piece and must receive it from a node
//! that held it. Nodes in the old list but not the new one may drop the piece once the plan has
//! been carried out; the plan lists only transfers.

use super::{Range, Ring, merge_adjacent};
use crate::NodeId;
use core::fmt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One transfer: `to` must receive every key in `range` from `from`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RangeMove {
    /// The keys to transfer.
    pub range: Range,
    /// A node that holds the range before the change and streams it.
    pub from: NodeId,
    /// The node that gains the range.
    pub to: NodeId,
    /// `range`'s fraction of the ring (the share of all keys it holds).
    pub share: f64,
}

/// The transfers that take a cluster from one ring to another. Moves are sorted by
/// `(from, to, range)`, and adjacent ranges with the same `from` and `to` are merged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Every transfer.
    pub moves: Vec<RangeMove>,
}

/// The transfers that take a cluster from ring `before` to ring `after` at replication factor
/// `n`.
///
/// For each piece of the token space between consecutive tokens of the two rings, every node
/// in `after`'s preference list and not in `before`'s receives the piece exactly once. The
/// sender is chosen deterministically: the gaining nodes, in `after`'s ring order, are paired
/// with the losing nodes (in `before` but not `after`), in `before`'s ring order, so a leaving
/// or displaced node hands over what it held; a gaining node left without a loser (the
/// replica set grows, e.g. a join into a cluster smaller than N) receives from the first node
/// of `before`'s list. Pieces that `before` has no replica of (an empty ring) cannot be
/// streamed and produce no moves.
pub fn plan(before: &Ring, after: &Ring, n: usize) -> Plan {
    let mut cuts: Vec<_> = before
        .tokens()
        .iter()
        .chain(after.tokens())
        .map(|(t, _)| *t)
        .collect();
    cuts.sort_unstable();
    cuts.dedup();

    // Ranges per (from, to), in ring order, to merge afterwards.
    let mut by_pair: BTreeMap<(NodeId, NodeId), Vec<Range>> = BTreeMap::new();
    let mut prev = cuts.last().copied();
    for &cut in &cuts {
        let Some(start) = prev else { break };
        prev = Some(cut);
        let range = Range::new(start, cut);
        let old = before.preference_list(cut, n);
        let Some(&first_old) = old.first() else {
            continue;
        };
        let new = after.preference_list(cut, n);
        let mut losers = old.iter().filter(|node| !new.contains(node));
        for &gainer in new.iter().filter(|node| !old.contains(node)) {
            let from = losers.next().copied().unwrap_or(first_old);
            by_pair.entry((from, gainer)).or_default().push(range);
        }
    }

    Plan {
        moves: merged_moves(by_pair),
    }
}

/// The moves of `by_pair` (ranges per `(from, to)`), adjacent ranges merged, sorted by
/// `(from, to, range)`.
fn merged_moves(by_pair: BTreeMap<(NodeId, NodeId), Vec<Range>>) -> Vec<RangeMove> {
    let mut moves: Vec<RangeMove> = by_pair
        .into_iter()
        .flat_map(|((from, to), ranges)| {
            merge_adjacent(ranges)
                .into_iter()
                .map(move |range| RangeMove {
                    range,
                    from,
                    to,
                    share: range.share(),
                })
        })
        .collect();
    moves.sort_by_key(|m| (m.from, m.to, m.range));
    moves
}

/// The node that receives `node`'s copy of a piece whose preference list goes from `old` to
/// `new`: `None` if `node` keeps the piece (or never held it). A losing node is paired with a
/// gaining node as in [`plan`] (losers in `old`'s order, gainers in `new`'s); a loser left
/// without a gainer (no node gains the piece: the replica set only shrinks, as when N is at
/// least the number of nodes left) hands its copy to the first node of `new`, so that what
/// only it held still reaches a replica.
fn piece_receiver(old: &[NodeId], new: &[NodeId], node: NodeId) -> Option<NodeId> {
    if !old.contains(&node) || new.contains(&node) {
        return None;
    }
    let loser_rank = old
        .iter()
        .filter(|o| !new.contains(o))
        .position(|o| *o == node)?;
    new.iter()
        .filter(|g| !old.contains(g))
        .nth(loser_rank)
        .or_else(|| new.first())
        .copied()
}

/// What `node` must hand over when the ring changes from `before` to `after` at replication
/// factor `n`: every range it replicates in `before` and not in `after`, each with the node
/// that receives it (see [`handover_receiver`]), in `(to, range)` order with adjacent ranges
/// merged. `from` is `node` in every move. Unlike [`plan`], which lists what each gaining node
/// needs, this lists everything a losing node holds, so nothing held only by it is stranded
/// when no node gains its range.
pub fn handover(before: &Ring, after: &Ring, n: usize, node: NodeId) -> Vec<RangeMove> {
    let mut cuts: Vec<_> = before
        .tokens()
        .iter()
        .chain(after.tokens())
        .map(|(t, _)| *t)
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut by_receiver: BTreeMap<(NodeId, NodeId), Vec<Range>> = BTreeMap::new();
    let mut prev = cuts.last().copied();
    for &cut in &cuts {
        let Some(start) = prev else { break };
        prev = Some(cut);
        let old = before.preference_list(cut, n);
        let new = after.preference_list(cut, n);
        if let Some(to) = piece_receiver(&old, &new, node) {
            by_receiver
                .entry((node, to))
                .or_default()
                .push(Range::new(start, cut));
        }
    }
    merged_moves(by_receiver)
}

/// The node that receives `node`'s copy of the key at `token` when the ring changes from
/// `before` to `after` (the same choice as [`handover`] makes for the range holding it), or
/// `None` if `node` keeps it or never held it.
pub fn handover_receiver(
    before: &Ring,
    after: &Ring,
    n: usize,
    node: NodeId,
    token: crate::ring::Token,
) -> Option<NodeId> {
    piece_receiver(
        &before.preference_list(token, n),
        &after.preference_list(token, n),
        node,
    )
}

/// The pieces of `range` that `node` does not replicate in `ring` at replication factor `n`,
/// each with the first node of its preference list (a node that holds it now), in
/// `(to, range)` order with adjacent pieces merged. A node that received a range it no longer
/// replicates (the ring changed while it was streamed) hands these on.
pub fn held_elsewhere(ring: &Ring, n: usize, node: NodeId, range: Range) -> Vec<RangeMove> {
    let mut cuts: Vec<crate::ring::Token> = ring
        .tokens()
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| range.contains(*t) && *t != range.end)
        .collect();
    // In ring order from the range's start.
    cuts.sort_unstable_by_key(|t| t.0.wrapping_sub(range.start.0));
    cuts.dedup();
    cuts.push(range.end);
    let mut by_receiver: BTreeMap<(NodeId, NodeId), Vec<Range>> = BTreeMap::new();
    let mut start = range.start;
    for cut in cuts {
        let piece = Range::new(start, cut);
        start = cut;
        let list = ring.preference_list(cut, n);
        if let Some(&to) = list.first()
            && !list.contains(&node)
        {
            by_receiver.entry((node, to)).or_default().push(piece);
        }
    }
    merged_moves(by_receiver)
}

impl Plan {
    /// Whether nothing moves.
    pub fn is_empty(&self) -> bool {
        self.moves.is_empty()
    }

    /// The share of the ring transferred in total (a key sent to two nodes counts twice).
    pub fn total_share(&self) -> f64 {
        self.moves.iter().map(|m| m.share).sum()
    }

    /// Per `(from, to)`: the number of ranges and the share of the ring transferred.
    pub fn totals(&self) -> BTreeMap<(NodeId, NodeId), (usize, f64)> {
        let mut totals: BTreeMap<(NodeId, NodeId), (usize, f64)> = BTreeMap::new();
        for m in &self.moves {
            let entry = totals.entry((m.from, m.to)).or_default();
            entry.0 += 1;
            entry.1 += m.share;
        }
        totals
    }

    /// The share of the ring `node` receives.
    pub fn received_by(&self, node: NodeId) -> f64 {
        self.moves
            .iter()
            .filter(|m| m.to == node)
            .map(|m| m.share)
            .sum()
    }

    /// The share of the ring `node` sends.
    pub fn sent_by(&self, node: NodeId) -> f64 {
        self.moves
            .iter()
            .filter(|m| m.from == node)
            .map(|m| m.share)
            .sum()
    }
}

/// A table of totals per `(from, to)`; the alternate form (`{:#}`) also lists every range.
///
/// ```text
/// from  to    ranges   share
/// n1    n6        11   6.12%
/// total           11   6.12%
/// ```
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<5} {:<5} {:>6} {:>7}",
            "from", "to", "ranges", "share"
        )?;
        for ((from, to), (count, share)) in self.totals() {
            writeln!(
                f,
                "{:<5} {:<5} {:>6} {:>6.2}%",
                from.to_string(),
                to.to_string(),
                count,
                share * 100.0
            )?;
        }
        write!(
            f,
            "{:<11} {:>6} {:>6.2}%",
            "total",
            self.moves.len(),
            self.total_share() * 100.0
        )?;
        if f.alternate() {
            for m in &self.moves {
                write!(
                    f,
                    "\n{} -> {} {} {:.4}%",
                    m.from,
                    m.to,
                    m.range,
                    m.share * 100.0
                )?;
            }
        }
        Ok(())
    }
}
