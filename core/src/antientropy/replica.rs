//! An in-memory replica of one range and a driver that repairs two of them: the test harness
//! and benchmark of the repair protocol, and a worked example of what a host does with
//! [`AeOutput`]s.

use super::AeError;
use super::merkle::MerkleTree;
use super::msg::AeMsg;
use super::session::{AeOutput, Session, SessionStats};
use crate::ring::{Range, Token, key_token};
use crate::storage::Cell;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// The most messages [`sync_pair`] delivers before it gives up (a bound, not an expected
/// figure: a session over 1,000,000 differing keys needs about 10,000).
const SYNC_MESSAGES_MAX: u64 = 10_000_000;

/// The entries of one range held in memory with their Merkle tree, kept in step on every
/// write. Entries are keyed by `(token, key)` rather than by key alone so that the entries of a
/// leaf (a token sub-range) are one ordered range scan; the storage engine orders by key, so
/// a node reads a leaf by scanning its range instead.
#[derive(Clone, Debug)]
pub struct Replica {
    data: BTreeMap<(Token, Vec<u8>), Cell>,
    tree: MerkleTree,
}

impl Replica {
    /// An empty replica of `range` with a tree of `depth`.
    pub fn new(range: Range, depth: u8) -> Result<Replica, AeError> {
        Ok(Replica {
            data: BTreeMap::new(),
            tree: MerkleTree::new(range, depth)?,
        })
    }

    /// A replica holding the LWW merge of `entries` (all in `range`), its tree built once.
    pub fn from_entries(
        range: Range,
        depth: u8,
        entries: impl IntoIterator<Item = (Vec<u8>, Cell)>,
    ) -> Result<Replica, AeError> {
        let mut data: BTreeMap<(Token, Vec<u8>), Cell> = BTreeMap::new();
        for (key, cell) in entries {
            let token = key_token(&key);
            if !range.contains(token) {
                return Err(AeError::TokenOutOfRange);
            }
            match data.get_mut(&(token, key.clone())) {
                Some(old) if old.version >= cell.version => {}
                Some(old) => *old = cell,
                None => {
                    data.insert((token, key), cell);
                }
            }
        }
        let tree = MerkleTree::build(range, depth, data.iter().map(|((_, k), c)| (k, c.clone())))?;
        Ok(Replica { data, tree })
    }

    /// Writes `cell` under `key` with LWW: it replaces the stored cell only if its version is
    /// greater. Returns whether it did. Fails, changing nothing, if the key is outside the
    /// range.
    pub fn put(&mut self, key: &[u8], cell: Cell) -> Result<bool, AeError> {
        let token = key_token(key);
        if !self.tree.range().contains(token) {
            return Err(AeError::TokenOutOfRange);
        }
        let slot = (token, key.to_vec());
        let old = self.data.get(&slot);
        if old.is_some_and(|o| o.version >= cell.version) {
            return Ok(false);
        }
        self.tree.replace(key, old, &cell)?;
        self.data.insert(slot, cell);
        Ok(true)
    }

    /// The cell stored under `key`, tombstones included.
    pub fn get(&self, key: &[u8]) -> Option<&Cell> {
        self.data.get(&(key_token(key), key.to_vec()))
    }

    /// Entries held, tombstones included.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the replica holds nothing.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Every entry, in token order.
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], &Cell)> {
        self.data.iter().map(|((_, k), c)| (k.as_slice(), c))
    }

    /// Every entry, by key.
    pub fn to_map(&self) -> BTreeMap<Vec<u8>, Cell> {
        self.entries()
            .map(|(k, c)| (k.to_vec(), c.clone()))
            .collect()
    }

    /// The replica's tree.
    pub fn tree(&self) -> &MerkleTree {
        &self.tree
    }

    /// Rebuilds the tree from scratch at `depth`.
    pub fn rebuild_tree(&mut self, depth: u8) -> Result<(), AeError> {
        let entries = self.data.iter().map(|((_, k), c)| (k, c.clone()));
        self.tree = MerkleTree::build(self.tree.range(), depth, entries)?;
        Ok(())
    }

    /// The entries whose token falls in `range`: what a host answers to
    /// [`AeOutput::LoadLeaf`].
    pub fn entries_in(&self, range: Range) -> Vec<(Vec<u8>, Cell)> {
        let (s, e) = (range.start.0, range.end.0);
        // (s, e] as inclusive token spans: one, or two when the range wraps or is the ring.
        let mut spans = Vec::with_capacity(2);
        if s < e {
            spans.push((s + 1, e));
        } else {
            if s < u64::MAX {
                spans.push((s + 1, u64::MAX));
            }
            spans.push((0, e));
        }
        let mut out = Vec::new();
        for (lo, hi) in spans {
            let from = (Token(lo), Vec::new());
            for ((token, key), cell) in self.data.range(from..) {
                if token.0 > hi {
                    break;
                }
                out.push((key.clone(), cell.clone()));
            }
        }
        out
    }
}

/// What [`sync_pair`] measured: each side's counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// The initiator's counts.
    pub initiator: SessionStats,
    /// The responder's counts.
    pub responder: SessionStats,
}

impl SyncReport {
    /// Postcard-encoded bytes of every message, both ways.
    pub fn bytes_exchanged(&self) -> u64 {
        self.initiator.bytes_sent + self.responder.bytes_sent
    }

    /// Entries (keys with cells) streamed, both ways.
    pub fn keys_streamed(&self) -> u64 {
        self.initiator.keys_sent + self.responder.keys_sent
    }

    /// Messages, both ways.
    pub fn messages(&self) -> u64 {
        self.initiator.messages_sent + self.responder.messages_sent
    }
}

/// Which replica a queued action belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    A,
    B,
}

/// Repairs `a` (the initiator) and `b` (the responder) with one session over their common
/// range, delivering messages in order until both sides finish. Both replicas' trees must have
/// the same range and depth. After it returns `Ok`, both hold, for every key, the LWW-greater
/// cell of the two.
pub fn sync_pair(a: &mut Replica, b: &mut Replica) -> Result<SyncReport, AeError> {
    if a.tree.range() != b.tree.range() || a.tree.depth() != b.tree.depth() {
        return Err(AeError::Protocol(
            "replicas with different ranges or depths".into(),
        ));
    }
    let (mut sa, first) = Session::initiate(&a.tree);
    let mut sb = Session::respond(&b.tree);
    let mut to_a: VecDeque<AeMsg> = VecDeque::new();
    let mut to_b: VecDeque<AeMsg> = VecDeque::new();
    // Outputs in the order the sessions produced them, so messages leave in that order.
    let mut work: VecDeque<(Side, AeOutput)> = first.into_iter().map(|o| (Side::A, o)).collect();
    let mut delivered = 0u64;
    loop {
        while let Some((side, output)) = work.pop_front() {
            let (replica, session, outbox) = match side {
                Side::A => (&mut *a, &mut sa, &mut to_b),
                Side::B => (&mut *b, &mut sb, &mut to_a),
            };
            match output {
                AeOutput::Send(msg) => outbox.push_back(msg),
                AeOutput::LoadLeaf { leaf, range } => {
                    let entries = replica.entries_in(range);
                    let more = session.leaf_loaded(&replica.tree, leaf, entries);
                    work.extend(more.into_iter().map(|o| (side, o)));
                }
                AeOutput::Apply { key, cell } => {
                    replica.put(&key, cell)?;
                }
                AeOutput::Finished(_) => {}
                AeOutput::Failed(e) => return Err(e),
            }
        }
        let (side, msg) = if let Some(msg) = to_b.pop_front() {
            (Side::B, msg)
        } else if let Some(msg) = to_a.pop_front() {
            (Side::A, msg)
        } else {
            break;
        };
        delivered += 1;
        if delivered > SYNC_MESSAGES_MAX {
            return Err(AeError::Protocol(format!(
                "no end after {SYNC_MESSAGES_MAX} messages"
            )));
        }
        let outputs = match side {
            Side::A => sa.handle(&a.tree, msg),
            Side::B => sb.handle(&b.tree, msg),
        };
        work.extend(outputs.into_iter().map(|o| (side, o)));
    }
    if !sa.is_finished() || !sb.is_finished() {
        return Err(AeError::Protocol("the exchange stopped before Done".into()));
    }
    Ok(SyncReport {
        initiator: *sa.stats(),
        responder: *sb.stats(),
    })
}
