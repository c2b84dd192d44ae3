//! A Merkle tree over one token range: the summary two replicas compare to find what differs.
//!
//! The range's tokens are cut into `2^depth` equal slices, the *leaves*; a key belongs to the leaf
//! its [`key_token`] falls in. The tree is kept in memory next to the data and updated on every
//! write in O(depth) (remove the old cell, insert the new one), so a repair session never has to
//! read the whole range to build it.
//!
//! **Leaf hash: a sum, not a hash of sorted entries.** Each entry contributes a 128-bit
//! XXH3 [`entry_hash`] of `(key, version, tombstone?, value)`; a leaf keeps the *wrapping sum
//! mod 2¹²⁸* of its entries' hashes and their count. A sum is order-independent (the keys of a
//! leaf need not be sorted or even all in memory) and incremental (removing an entry subtracts
//! it). XOR would do the same but has a known weakness: two equal entry hashes cancel, so a
//! leaf holding a duplicated entry would hash like one holding neither. A sum does not cancel
//! duplicates, 128 bits make an accidental collision of two different multisets ~2⁻¹²⁸, and the
//! count is hashed in as well. What a sum does not resist is an adversary choosing keys to
//! collide: XXH3 is not keyed. That costs at most a missed repair of the adversary's own keys,
//! and a keyed hash can be swapped in without changing the protocol.
//!
//! **Node hashes** are 64 bits: a leaf's is XXH3-64 of `sum ‖ count`, an inner node's is
//! XXH3-64 of its children's hashes; an empty leaf, and an inner node over only empty leaves,
//! hash to zero. These are what travel on the wire, so 8 bytes each (a 64-bit collision between
//! two differing nodes has probability ~2⁻⁶⁴ per comparison).
//!
//! **Layout.** `nodes` is a heap-ordered array: level `d` (0 = root, `depth` = leaves) occupies
//! `nodes[2^d - 1 .. 2^(d+1) - 1]`, and node `i` of level `d` has children `2i` and `2i + 1` on
//! level `d + 1`. Memory: `(2^(depth+1) - 1) × 8` bytes of hashes plus `2^depth × 32` bytes of
//! leaf sums (a `u128` and a count, padded), so 48 KiB at depth 10, 3 MiB at depth 16 and
//! 48 MiB at [`DEPTH_MAX`].
//!
//! **Choosing the depth.** Both replicas must use the same depth (it is a cluster setting, not
//! derived from each node's own key count). A session streams only the differing keys whatever
//! the depth, but under each differing leaf it sends one digest (~21 bytes) per key the
//! initiator holds there, so the depth trades tree memory against digest bytes. Measured with
//! `examples/antientropy_bytes.rs` (1,000,000 keys in one range, 10 differing): depth 10 sends
//! 208 KB (0.17 % of a full copy), 14 sends 16 KB, 16 sends 6.8 KB (0.006 %), 20 sends 4.6 KB
//! but holds 48 MiB. [`depth_for_keys`] aims at about 32 keys per leaf; [`DEPTH_DEFAULT`] (10)
//! suits ranges of up to ~32,000 keys, which is 1.5 million keys per node at 16 vnodes × N = 3
//! ranges.

use super::AeError;
use crate::ring::{Range, Token, key_token};
use crate::storage::Cell;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{xxh3_64, xxh3_128};

/// The depth used when the operator does not choose: 1,024 leaves, 48 KiB per range.
pub const DEPTH_DEFAULT: u8 = 10;
/// The deepest tree allowed: 2²⁰ leaves, 48 MiB per range.
pub const DEPTH_MAX: u8 = 20;

/// The depth that puts about 32 keys under each leaf of a range expected to hold `keys`:
/// `⌈log₂(keys / 32)⌉`, within `0..=DEPTH_MAX`. For 1,000,000 keys, 15.
pub fn depth_for_keys(keys: u64) -> u8 {
    let leaves = keys.div_ceil(32).max(1);
    let depth = u64::BITS - (leaves - 1).leading_zeros();
    depth.min(u32::from(DEPTH_MAX)) as u8
}

/// A node's hash as it travels on the wire: 8 bytes, little-endian (fixed width, so postcard
/// spends 8 bytes on it rather than up to 10 for a varint).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct NodeHash(pub [u8; 8]);

impl NodeHash {
    /// The hash of an empty leaf or of a subtree holding no entries.
    pub const EMPTY: NodeHash = NodeHash([0; 8]);

    fn of(h: u64) -> NodeHash {
        NodeHash(h.to_le_bytes())
    }
}

/// The 128-bit hash of one entry: XXH3-128 of
/// `key_len u32 LE ‖ key ‖ ts_micros u64 LE ‖ node u32 LE ‖ kind u8 (0 put, 1 tombstone) ‖ XXH3-64(value) u64 LE`
/// (the value hash is 0 for a tombstone). Two replicas holding the same version of a key, value
/// or tombstone, produce the same entry hash.
pub fn entry_hash(key: &[u8], cell: &Cell) -> u128 {
    let mut buf = Vec::with_capacity(key.len() + 25);
    buf.extend_from_slice(&(key.len() as u32).to_le_bytes());
    buf.extend_from_slice(key);
    buf.extend_from_slice(&cell.version.ts_micros.to_le_bytes());
    buf.extend_from_slice(&cell.version.node.0.to_le_bytes());
    let (kind, value_hash) = match &cell.value {
        Some(v) => (0u8, xxh3_64(v)),
        None => (1u8, 0),
    };
    buf.push(kind);
    buf.extend_from_slice(&value_hash.to_le_bytes());
    xxh3_128(&buf)
}

/// What a leaf accumulates: the wrapping sum of its entries' hashes and how many there are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct LeafSum {
    sum: u128,
    count: u32,
}

impl LeafSum {
    fn hash(&self) -> NodeHash {
        if self.count == 0 && self.sum == 0 {
            return NodeHash::EMPTY;
        }
        let mut buf = [0u8; 20];
        buf[..16].copy_from_slice(&self.sum.to_le_bytes());
        buf[16..].copy_from_slice(&self.count.to_le_bytes());
        NodeHash::of(xxh3_64(&buf))
    }
}

fn parent_hash(left: NodeHash, right: NodeHash) -> NodeHash {
    if left == NodeHash::EMPTY && right == NodeHash::EMPTY {
        return NodeHash::EMPTY;
    }
    let mut buf = [0u8; 16];
    buf[..8].copy_from_slice(&left.0);
    buf[8..].copy_from_slice(&right.0);
    NodeHash::of(xxh3_64(&buf))
}

/// Sizes of a tree, for metrics and for choosing a depth.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeStats {
    /// The tree's depth.
    pub depth: u8,
    /// Entries summarised.
    pub entries: u64,
    /// Leaves holding at least one entry.
    pub leaves_nonempty: u32,
    /// The most entries under one leaf.
    pub leaf_entries_max: u32,
    /// Memory the tree takes: node hashes plus leaf sums.
    pub bytes: u64,
}

/// A fixed-depth binary Merkle tree over the tokens of one [`Range`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerkleTree {
    range: Range,
    depth: u8,
    /// Heap-ordered node hashes; see the module docs for the layout.
    nodes: Vec<NodeHash>,
    leaves: Vec<LeafSum>,
    entries: u64,
}

impl MerkleTree {
    /// An empty tree over `range` with `2^depth` leaves. Fails with
    /// [`AeError::DepthTooLarge`] past [`DEPTH_MAX`].
    pub fn new(range: Range, depth: u8) -> Result<MerkleTree, AeError> {
        if depth > DEPTH_MAX {
            return Err(AeError::DepthTooLarge {
                depth,
                max: DEPTH_MAX,
            });
        }
        let leaves = 1usize << depth;
        Ok(MerkleTree {
            range,
            depth,
            nodes: vec![NodeHash::EMPTY; 2 * leaves - 1],
            leaves: vec![LeafSum::default(); leaves],
            entries: 0,
        })
    }

    /// A tree over `range` summarising `entries`, hashed once at the end (faster than inserting
    /// one by one). Entries whose token is outside `range` are an error.
    pub fn build<K: AsRef<[u8]>>(
        range: Range,
        depth: u8,
        entries: impl IntoIterator<Item = (K, Cell)>,
    ) -> Result<MerkleTree, AeError> {
        let mut tree = MerkleTree::new(range, depth)?;
        for (key, cell) in entries {
            let leaf = tree.leaf_of_key(key.as_ref())?;
            tree.add_to_leaf(leaf, entry_hash(key.as_ref(), &cell));
        }
        tree.rehash();
        Ok(tree)
    }

    /// The range this tree covers.
    pub fn range(&self) -> Range {
        self.range
    }

    /// The tree's depth: leaves are on level `depth`.
    pub fn depth(&self) -> u8 {
        self.depth
    }

    /// The number of leaves, `2^depth`.
    pub fn leaf_count(&self) -> u32 {
        self.leaves.len() as u32
    }

    /// The root hash: equal roots mean (with overwhelming probability) equal contents.
    pub fn root(&self) -> NodeHash {
        self.nodes.first().copied().unwrap_or(NodeHash::EMPTY)
    }

    /// The hashes of level `d` (0 = root, `depth` = leaves), left to right; empty past the
    /// leaves.
    pub fn level(&self, d: u8) -> &[NodeHash] {
        if d > self.depth {
            return &[];
        }
        let first = (1usize << d) - 1;
        self.nodes.get(first..2 * first + 1).unwrap_or(&[])
    }

    /// The hash of node `index` on level `d`, if there is such a node.
    pub fn node(&self, d: u8, index: u32) -> Option<NodeHash> {
        self.level(d).get(index as usize).copied()
    }

    /// The leaf whose slice of the range holds `token`, or `None` if `token` is outside the
    /// range. Token `start + 1 + o` (offset `o` from the range's exclusive start) falls in leaf
    /// `⌊o × leaves / width⌋`.
    pub fn leaf_of(&self, token: Token) -> Option<u32> {
        if !self.range.contains(token) {
            return None;
        }
        let offset = token.0.wrapping_sub(self.range.start.0).wrapping_sub(1);
        let leaf = u128::from(offset) * self.leaves.len() as u128 / self.range.width();
        Some(leaf as u32)
    }

    /// The tokens of leaf `i` as a range, or `None` if `i` is not a leaf or its slice holds no
    /// token (a range narrower than the number of leaves leaves some slices empty). The leaves'
    /// ranges tile the tree's range in order.
    pub fn leaf_range(&self, i: u32) -> Option<Range> {
        let leaves = self.leaves.len() as u128;
        if u128::from(i) >= leaves {
            return None;
        }
        let width = self.range.width();
        // Offsets o with floor(o·L/W) == i are ceil(i·W/L) ..= ceil((i+1)·W/L) - 1.
        let lo = (u128::from(i) * width).div_ceil(leaves);
        let hi = ((u128::from(i) + 1) * width).div_ceil(leaves);
        if lo == hi {
            return None;
        }
        // Offset o is token start + 1 + o, so (start + lo, start + hi] holds exactly those.
        let start = self.range.start.0.wrapping_add(lo as u64);
        let end = self.range.start.0.wrapping_add(hi as u64);
        Some(Range::new(Token(start), Token(end)))
    }

    /// Adds an entry and rehashes its path to the root. Fails, changing nothing, if the key's
    /// token is outside the range.
    pub fn insert(&mut self, key: &[u8], cell: &Cell) -> Result<(), AeError> {
        let leaf = self.leaf_of_key(key)?;
        self.add_to_leaf(leaf, entry_hash(key, cell));
        self.rehash_path(leaf);
        Ok(())
    }

    /// Adds an entry without rehashing: the tree's hashes are stale until
    /// [`MerkleTree::rehash`] (a tree built page by page from a range scan rehashes once, at
    /// the end, instead of a path per key). Fails, changing nothing, if the key's token is
    /// outside the range.
    pub fn insert_unhashed(&mut self, key: &[u8], cell: &Cell) -> Result<(), AeError> {
        let leaf = self.leaf_of_key(key)?;
        self.add_to_leaf(leaf, entry_hash(key, cell));
        Ok(())
    }

    /// Removes an entry inserted earlier (the same key and cell). Fails, changing nothing, if
    /// the key's token is outside the range or its leaf is empty. Removing an entry that was
    /// never inserted corrupts the leaf's sum; the next comparison then finds a difference and
    /// a rebuild ([`MerkleTree::build`]) repairs the tree.
    pub fn remove(&mut self, key: &[u8], cell: &Cell) -> Result<(), AeError> {
        let leaf = self.leaf_of_key(key)?;
        self.sub_from_leaf(leaf, entry_hash(key, cell))?;
        self.rehash_path(leaf);
        Ok(())
    }

    /// Replaces `old` (if any) by `new` under `key`, rehashing the path once: what a write does
    /// to the tree. Fails, changing nothing, like [`MerkleTree::remove`].
    pub fn replace(&mut self, key: &[u8], old: Option<&Cell>, new: &Cell) -> Result<(), AeError> {
        let leaf = self.leaf_of_key(key)?;
        if let Some(old) = old {
            self.sub_from_leaf(leaf, entry_hash(key, old))?;
        }
        self.add_to_leaf(leaf, entry_hash(key, new));
        self.rehash_path(leaf);
        Ok(())
    }

    /// Sizes of the tree.
    pub fn stats(&self) -> TreeStats {
        let nonempty = self.leaves.iter().filter(|l| l.count > 0).count();
        let max = self.leaves.iter().map(|l| l.count).max().unwrap_or(0);
        TreeStats {
            depth: self.depth,
            entries: self.entries,
            leaves_nonempty: nonempty as u32,
            leaf_entries_max: max,
            bytes: (self.nodes.len() * size_of::<NodeHash>()
                + self.leaves.len() * size_of::<LeafSum>()) as u64,
        }
    }

    fn leaf_of_key(&self, key: &[u8]) -> Result<u32, AeError> {
        self.leaf_of(key_token(key)).ok_or(AeError::TokenOutOfRange)
    }

    fn add_to_leaf(&mut self, leaf: u32, hash: u128) {
        if let Some(slot) = self.leaves.get_mut(leaf as usize) {
            slot.sum = slot.sum.wrapping_add(hash);
            slot.count = slot.count.saturating_add(1);
            self.entries += 1;
        }
    }

    fn sub_from_leaf(&mut self, leaf: u32, hash: u128) -> Result<(), AeError> {
        let slot = self
            .leaves
            .get_mut(leaf as usize)
            .ok_or(AeError::TokenOutOfRange)?;
        slot.count = slot
            .count
            .checked_sub(1)
            .ok_or(AeError::EmptyLeaf { leaf })?;
        slot.sum = slot.sum.wrapping_sub(hash);
        self.entries = self.entries.saturating_sub(1);
        Ok(())
    }

    fn rehash_path(&mut self, leaf: u32) {
        let first_leaf = (1usize << self.depth) - 1;
        let mut at = first_leaf + leaf as usize;
        if let (Some(slot), Some(l)) = (self.nodes.get_mut(at), self.leaves.get(leaf as usize)) {
            *slot = l.hash();
        }
        while at > 0 {
            let parent = (at - 1) / 2;
            self.set_from_children(parent);
            at = parent;
        }
    }

    /// Recomputes every hash from the leaves' sums, after [`MerkleTree::insert_unhashed`]:
    /// the same tree as inserting each entry with [`MerkleTree::insert`].
    pub fn rehash(&mut self) {
        let first_leaf = (1usize << self.depth) - 1;
        for (i, l) in self.leaves.iter().enumerate() {
            if let Some(slot) = self.nodes.get_mut(first_leaf + i) {
                *slot = l.hash();
            }
        }
        for at in (0..first_leaf).rev() {
            self.set_from_children(at);
        }
    }

    fn set_from_children(&mut self, at: usize) {
        let left = self.nodes.get(2 * at + 1).copied().unwrap_or_default();
        let right = self.nodes.get(2 * at + 2).copied().unwrap_or_default();
        if let Some(slot) = self.nodes.get_mut(at) {
            *slot = parent_hash(left, right);
        }
    }
}
