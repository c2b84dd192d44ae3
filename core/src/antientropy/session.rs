//! The repair exchange between two replicas of one range, as a pure state machine per side.
//!
//! The *initiator* walks both trees top-down, one level at a time: it asks the *responder* for
//! the hashes of some nodes ([`AeMsg::Request`]), compares them with its own, and asks next for
//! the children of the nodes that differ only. At a differing leaf it sends the `(key, version)`
//! of each of its entries there ([`AeMsg::Digests`]); the responder answers with its entries
//! that are newer or that the initiator lacks, and the keys for which the initiator is newer
//! ([`AeMsg::Repair`]); the initiator sends those cells ([`AeMsg::Entries`]). So within a
//! differing leaf only the differing keys' values travel, one way each. Both sides apply what
//! they receive as LWW writes: the greater version wins, and a tombstone is repaired like a
//! value (which is what keeps a deleted key from coming back).
//!
//! Two shortcuts: when the initiator's leaf is empty it sends empty digests without reading
//! anything, and when the responder's leaf is empty the initiator streams its entries without
//! digests (a replica that starts from nothing receives the data once, not digests first).
//!
//! **Inputs and outputs.** [`Session::handle`] takes a message from the peer,
//! [`Session::leaf_loaded`] takes the entries of a leaf the session asked the host to read, and
//! both return [`AeOutput`]s: send a message, read a leaf, apply an LWW write, finished, failed.
//! Each call also takes the side's current [`MerkleTree`] for the range. The session assumes
//! reliable, in-order delivery between the two sides (one connection); a lost message stalls
//! it, and the host drops a session that has made no progress for its timeout.
//!
//! **Bounds.** Requests carry at most [`INDEXES_PER_REQUEST_MAX`] indexes, digest, repair and
//! entry messages aim at [`MSG_BYTES_TARGET`] bytes (one entry larger than that travels alone),
//! at most [`LEAVES_IN_FLIGHT_MAX`] leaves are read and held at a time, and a leaf may hold at
//! most [`LEAF_ENTRIES_MAX`] entries. A peer that breaks the protocol or a bound ends the
//! session with [`AeError::Protocol`] and an [`AeMsg::Abort`].

use super::AeError;
use super::merkle::{MerkleTree, NodeHash};
use super::msg::{AeMsg, Digest, msg_name};
use crate::ring::{Range, key_token};
use crate::storage::{Cell, Version};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// The size digest, repair and entry messages aim at, in bytes.
pub const MSG_BYTES_TARGET: usize = 64 << 10;
/// The most node indexes one [`AeMsg::Request`] carries.
pub const INDEXES_PER_REQUEST_MAX: usize = 8192;
/// The most leaves a side reads and holds at a time.
pub const LEAVES_IN_FLIGHT_MAX: usize = 8;
/// The most entries (or digests) one leaf may hold in a session.
pub const LEAF_ENTRIES_MAX: usize = 1 << 20;

/// What a session wants its host to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AeOutput {
    /// Send this message to the peer.
    Send(AeMsg),
    /// Read every entry (tombstones included) whose key's token falls in `range`, the tokens of
    /// leaf `leaf`, and pass them to [`Session::leaf_loaded`].
    LoadLeaf {
        /// The leaf.
        leaf: u32,
        /// Its tokens.
        range: Range,
    },
    /// Write this cell with LWW (an older version than the stored one does not win), and
    /// update the range's tree as every write does.
    Apply {
        /// The key.
        key: Vec<u8>,
        /// The cell.
        cell: Cell,
    },
    /// The session completed; its final counts.
    Finished(SessionStats),
    /// The session ended with an error; its counts so far are in [`Session::stats`].
    Failed(AeError),
}

/// Which side of a session this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Walks the trees and drives the exchange.
    Initiator,
    /// Answers.
    Responder,
}

/// What one side of a session sent and received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStats {
    /// Messages sent.
    pub messages_sent: u64,
    /// Messages received.
    pub messages_received: u64,
    /// Postcard-encoded bytes of the messages sent.
    pub bytes_sent: u64,
    /// Postcard-encoded bytes of the messages received.
    pub bytes_received: u64,
    /// Tree nodes compared (initiator) or whose hash was sent (responder).
    pub nodes_compared: u64,
    /// Leaves found to differ (initiator).
    pub leaves_differing: u64,
    /// Digests sent (initiator).
    pub digests_sent: u64,
    /// Entries (keys with their cells) sent.
    pub keys_sent: u64,
    /// Entries received.
    pub keys_received: u64,
    /// LWW writes asked of the host.
    pub keys_applied: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Running,
    Finished,
    Failed,
}

/// The initiator's state for one differing leaf.
#[derive(Clone, Debug)]
enum InitLeaf {
    Loading {
        peer_empty: bool,
    },
    AwaitRepair {
        mine: BTreeMap<Vec<u8>, Cell>,
        want: Vec<Vec<u8>>,
    },
}

/// The responder's state for one leaf the initiator sent digests for.
#[derive(Clone, Debug)]
enum RespLeaf {
    Collecting { digests: BTreeMap<Vec<u8>, Version> },
    Loading { digests: BTreeMap<Vec<u8>, Version> },
}

/// One side of a repair session of one range.
#[derive(Clone, Debug)]
pub struct Session {
    role: Role,
    range: Range,
    depth: u8,
    phase: Phase,
    stats: SessionStats,
    /// Initiator: requests sent and not yet answered, oldest first.
    outstanding: VecDeque<(u8, Vec<u32>)>,
    /// Initiator: differing leaves not yet started, with whether the peer's leaf is empty.
    todo: VecDeque<(u32, bool)>,
    init_leaves: BTreeMap<u32, InitLeaf>,
    resp_leaves: BTreeMap<u32, RespLeaf>,
    /// Responder, after `Done`: the entries the initiator sent, all of which must arrive
    /// before the session is complete.
    entries_expected: Option<u64>,
}

type Step = Result<(), AeError>;

/// Keys with their cells, as they travel in repair and entry messages.
type Entries = Vec<(Vec<u8>, Cell)>;

fn protocol(msg: impl Into<String>) -> AeError {
    AeError::Protocol(msg.into())
}

impl Session {
    fn new(role: Role, tree: &MerkleTree) -> Session {
        Session {
            role,
            range: tree.range(),
            depth: tree.depth(),
            phase: Phase::Running,
            stats: SessionStats::default(),
            outstanding: VecDeque::new(),
            todo: VecDeque::new(),
            init_leaves: BTreeMap::new(),
            resp_leaves: BTreeMap::new(),
            entries_expected: None,
        }
    }

    /// Starts a session as the initiator over `tree`'s range: the first output asks the peer
    /// for its root.
    pub fn initiate(tree: &MerkleTree) -> (Session, Vec<AeOutput>) {
        let mut s = Session::new(Role::Initiator, tree);
        let mut out = Vec::new();
        s.request(&mut out, 0, vec![0]);
        (s, out)
    }

    /// A responder for `tree`'s range, to be handed the initiator's first [`AeMsg::Request`].
    pub fn respond(tree: &MerkleTree) -> Session {
        Session::new(Role::Responder, tree)
    }

    /// This side's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The range being repaired.
    pub fn range(&self) -> Range {
        self.range
    }

    /// Counts so far.
    pub fn stats(&self) -> &SessionStats {
        &self.stats
    }

    /// Whether the session has ended, completed or failed.
    pub fn is_over(&self) -> bool {
        self.phase != Phase::Running
    }

    /// Whether the session completed.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    /// Takes one message from the peer. `tree` is this side's current tree for the range.
    pub fn handle(&mut self, tree: &MerkleTree, msg: AeMsg) -> Vec<AeOutput> {
        let mut out = Vec::new();
        if self.is_over() {
            return out;
        }
        self.stats.messages_received += 1;
        self.stats.bytes_received += msg.encoded_len() as u64;
        let step = if msg.range() != self.range {
            Err(protocol(format!(
                "message for range {} in a session for {}",
                msg.range(),
                self.range
            )))
        } else if let AeMsg::Abort { reason, .. } = msg {
            Err(AeError::PeerAborted(reason))
        } else {
            match self.role {
                Role::Initiator => self.initiator_on(tree, msg, &mut out),
                Role::Responder => self.responder_on(tree, msg, &mut out),
            }
        };
        self.settle(tree, step, &mut out);
        out
    }

    /// Takes the entries of `leaf` that an [`AeOutput::LoadLeaf`] asked for (entries outside
    /// the leaf are ignored). A leaf the session did not ask for is ignored.
    pub fn leaf_loaded(
        &mut self,
        tree: &MerkleTree,
        leaf: u32,
        entries: Vec<(Vec<u8>, Cell)>,
    ) -> Vec<AeOutput> {
        let mut out = Vec::new();
        if self.is_over() {
            return out;
        }
        let step = self.loaded(tree, leaf, entries, &mut out);
        self.settle(tree, step, &mut out);
        out
    }

    fn settle(&mut self, tree: &MerkleTree, step: Step, out: &mut Vec<AeOutput>) {
        match step {
            Ok(()) if self.role == Role::Initiator => self.pump(tree, out),
            Ok(()) => {}
            Err(e) => {
                if !matches!(e, AeError::PeerAborted(_)) {
                    let reason = e.to_string();
                    self.send(
                        out,
                        AeMsg::Abort {
                            range: self.range,
                            reason,
                        },
                    );
                }
                self.phase = Phase::Failed;
                out.push(AeOutput::Failed(e));
            }
        }
    }

    fn send(&mut self, out: &mut Vec<AeOutput>, msg: AeMsg) {
        self.stats.messages_sent += 1;
        self.stats.bytes_sent += msg.encoded_len() as u64;
        match &msg {
            AeMsg::Digests { digests, .. } => self.stats.digests_sent += digests.len() as u64,
            AeMsg::Repair { entries, .. } | AeMsg::Entries { entries, .. } => {
                self.stats.keys_sent += entries.len() as u64
            }
            _ => {}
        }
        out.push(AeOutput::Send(msg));
    }

    fn request(&mut self, out: &mut Vec<AeOutput>, level: u8, indexes: Vec<u32>) {
        for chunk in indexes.chunks(INDEXES_PER_REQUEST_MAX) {
            self.outstanding.push_back((level, chunk.to_vec()));
            let msg = AeMsg::Request {
                range: self.range,
                depth: self.depth,
                level,
                indexes: chunk.to_vec(),
            };
            self.send(out, msg);
        }
    }

    fn apply(&mut self, out: &mut Vec<AeOutput>, key: Vec<u8>, cell: Cell) {
        self.stats.keys_applied += 1;
        out.push(AeOutput::Apply { key, cell });
    }

    fn initiator_on(&mut self, tree: &MerkleTree, msg: AeMsg, out: &mut Vec<AeOutput>) -> Step {
        match msg {
            AeMsg::Hashes { level, hashes, .. } => {
                // Requests go down the tree a level at a time, so hashes of a level above the
                // one awaited (or when none is) answer a request already answered: a copy
                // the network duplicated. It changes nothing.
                match self.outstanding.front() {
                    Some((want_level, _)) if level >= *want_level => {}
                    _ if level <= self.depth => return Ok(()),
                    _ => return Err(protocol(format!("hashes of level {level}"))),
                }
                let (want_level, indexes) = self
                    .outstanding
                    .pop_front()
                    .ok_or_else(|| protocol("hashes nobody asked for"))?;
                if level != want_level || hashes.len() != indexes.len() {
                    return Err(protocol(format!(
                        "asked for {} hashes of level {want_level}, got {} of level {level}",
                        indexes.len(),
                        hashes.len()
                    )));
                }
                self.stats.nodes_compared += hashes.len() as u64;
                let mut next = Vec::new();
                for (&i, theirs) in indexes.iter().zip(hashes) {
                    if tree.node(level, i).unwrap_or_default() == theirs {
                        continue;
                    }
                    if level < self.depth {
                        next.extend([2 * i, 2 * i + 1]);
                    } else {
                        self.stats.leaves_differing += 1;
                        self.todo.push_back((i, theirs == NodeHash::EMPTY));
                    }
                }
                if !next.is_empty() {
                    self.request(out, level + 1, next);
                }
                Ok(())
            }
            AeMsg::Repair {
                leaf,
                entries,
                want,
                more,
                ..
            } => {
                let leaf_range = tree.leaf_range(leaf);
                let Some(InitLeaf::AwaitRepair { mine, want: wanted }) =
                    self.init_leaves.get_mut(&leaf)
                else {
                    return Err(protocol(format!("repair for leaf {leaf} not awaited")));
                };
                if wanted.len() + want.len() > LEAF_ENTRIES_MAX {
                    return Err(protocol(format!("over {LEAF_ENTRIES_MAX} keys wanted")));
                }
                wanted.extend(want);
                let mut apply = Vec::new();
                for (key, cell) in entries {
                    if !leaf_range.is_some_and(|r| r.contains(key_token(&key))) {
                        return Err(protocol(format!("repair entry outside leaf {leaf}")));
                    }
                    if mine.get(&key).is_none_or(|c| c.version < cell.version) {
                        apply.push((key, cell));
                    }
                }
                self.stats.keys_received += apply.len() as u64;
                for (key, cell) in apply {
                    self.apply(out, key, cell);
                }
                if !more
                    && let Some(InitLeaf::AwaitRepair { mine, want }) =
                        self.init_leaves.remove(&leaf)
                {
                    let cells: Vec<_> = want
                        .into_iter()
                        .filter_map(|k| mine.get(&k).cloned().map(|c| (k, c)))
                        .collect();
                    if !cells.is_empty() {
                        self.send_entries(out, leaf, cells);
                    }
                }
                Ok(())
            }
            other => Err(protocol(format!("initiator got {}", msg_name(&other)))),
        }
    }

    fn responder_on(&mut self, tree: &MerkleTree, msg: AeMsg, out: &mut Vec<AeOutput>) -> Step {
        match msg {
            AeMsg::Request {
                depth,
                level,
                indexes,
                ..
            } => {
                if depth != self.depth || level > depth {
                    return Err(protocol(format!(
                        "request for level {level} of a depth-{depth} tree; ours is {}",
                        self.depth
                    )));
                }
                if indexes.len() > INDEXES_PER_REQUEST_MAX {
                    return Err(protocol(format!(
                        "{} indexes in one request",
                        indexes.len()
                    )));
                }
                let hashes = indexes
                    .iter()
                    .map(|&i| tree.node(level, i))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| protocol(format!("an index past level {level}")))?;
                self.stats.nodes_compared += hashes.len() as u64;
                self.send(
                    out,
                    AeMsg::Hashes {
                        range: self.range,
                        level,
                        hashes,
                    },
                );
                Ok(())
            }
            AeMsg::Digests {
                leaf,
                digests,
                more,
                ..
            } => {
                if leaf >= tree.leaf_count() {
                    return Err(protocol(format!("digests for leaf {leaf}: no such leaf")));
                }
                if !self.resp_leaves.contains_key(&leaf)
                    && self.resp_leaves.len() >= LEAVES_IN_FLIGHT_MAX
                {
                    return Err(protocol("too many leaves in flight"));
                }
                let state = self
                    .resp_leaves
                    .entry(leaf)
                    .or_insert_with(|| RespLeaf::Collecting {
                        digests: BTreeMap::new(),
                    });
                let RespLeaf::Collecting { digests: have } = state else {
                    return Err(protocol(format!("digests for leaf {leaf} after its last")));
                };
                if have.len() + digests.len() > LEAF_ENTRIES_MAX {
                    return Err(protocol(format!(
                        "over {LEAF_ENTRIES_MAX} digests in a leaf"
                    )));
                }
                for d in digests {
                    let v = have.entry(d.key).or_insert(d.version);
                    *v = (*v).max(d.version);
                }
                if !more {
                    let digests = std::mem::take(have);
                    *state = RespLeaf::Loading { digests };
                    match tree.leaf_range(leaf) {
                        Some(range) => out.push(AeOutput::LoadLeaf { leaf, range }),
                        None => self.loaded(tree, leaf, Vec::new(), out)?,
                    }
                }
                Ok(())
            }
            AeMsg::Entries { leaf, entries, .. } => {
                let leaf_range = tree.leaf_range(leaf);
                if entries
                    .iter()
                    .any(|(k, _)| !leaf_range.is_some_and(|r| r.contains(key_token(k))))
                {
                    return Err(protocol(format!("an entry outside leaf {leaf}")));
                }
                self.stats.keys_received += entries.len() as u64;
                for (key, cell) in entries {
                    self.apply(out, key, cell);
                }
                self.finish_once_received(out);
                Ok(())
            }
            AeMsg::Done { entries, .. } => {
                if self.entries_expected.is_some() {
                    return Err(protocol("a second Done"));
                }
                self.entries_expected = Some(entries);
                self.finish_once_received(out);
                Ok(())
            }
            other => Err(protocol(format!("responder got {}", msg_name(&other)))),
        }
    }

    /// Responder: completes the session once `Done` has come and every entry it announced
    /// has arrived (messages may be reordered on the way).
    fn finish_once_received(&mut self, out: &mut Vec<AeOutput>) {
        if let Some(expected) = self.entries_expected
            && self.stats.keys_received >= expected
        {
            self.phase = Phase::Finished;
            out.push(AeOutput::Finished(self.stats));
        }
    }

    fn loaded(
        &mut self,
        tree: &MerkleTree,
        leaf: u32,
        entries: Vec<(Vec<u8>, Cell)>,
        out: &mut Vec<AeOutput>,
    ) -> Step {
        let leaf_range = tree.leaf_range(leaf);
        let mut mine = BTreeMap::new();
        for (key, cell) in entries {
            if leaf_range.is_some_and(|r| r.contains(key_token(&key))) {
                mine.insert(key, cell);
            }
        }
        if mine.len() > LEAF_ENTRIES_MAX {
            return Err(AeError::LeafTooLarge {
                leaf,
                entries: mine.len(),
                max: LEAF_ENTRIES_MAX,
            });
        }
        match self.role {
            Role::Initiator => {
                let Some(InitLeaf::Loading { peer_empty }) = self.init_leaves.get(&leaf) else {
                    return Ok(());
                };
                if *peer_empty {
                    self.init_leaves.remove(&leaf);
                    self.send_entries(out, leaf, mine.into_iter().collect());
                    return Ok(());
                }
                let digests: Vec<Digest> = mine
                    .iter()
                    .map(|(key, cell)| Digest {
                        key: key.clone(),
                        version: cell.version,
                    })
                    .collect();
                self.init_leaves.insert(
                    leaf,
                    InitLeaf::AwaitRepair {
                        mine,
                        want: Vec::new(),
                    },
                );
                self.send_digests(out, leaf, digests);
            }
            Role::Responder => {
                let Some(RespLeaf::Loading { .. }) = self.resp_leaves.get(&leaf) else {
                    return Ok(());
                };
                let Some(RespLeaf::Loading { digests }) = self.resp_leaves.remove(&leaf) else {
                    return Ok(());
                };
                let want: Vec<Vec<u8>> = digests
                    .iter()
                    .filter(|(k, v)| mine.get(*k).is_none_or(|c| c.version < **v))
                    .map(|(k, _)| k.clone())
                    .collect();
                let newer: Vec<(Vec<u8>, Cell)> = mine
                    .into_iter()
                    .filter(|(k, c)| digests.get(k).is_none_or(|v| *v < c.version))
                    .collect();
                self.send_repair(out, leaf, newer, want);
            }
        }
        Ok(())
    }

    fn send_digests(&mut self, out: &mut Vec<AeOutput>, leaf: u32, digests: Vec<Digest>) {
        let chunks = chunk(digests, |d| d.key.len() + 18);
        let last = chunks.len().saturating_sub(1);
        for (i, digests) in chunks.into_iter().enumerate() {
            let msg = AeMsg::Digests {
                range: self.range,
                leaf,
                digests,
                more: i < last,
            };
            self.send(out, msg);
        }
    }

    fn send_entries(&mut self, out: &mut Vec<AeOutput>, leaf: u32, entries: Vec<(Vec<u8>, Cell)>) {
        let chunks = chunk(entries, |(k, c)| k.len() + c.footprint() + 8);
        let last = chunks.len().saturating_sub(1);
        for (i, entries) in chunks.into_iter().enumerate() {
            let msg = AeMsg::Entries {
                range: self.range,
                leaf,
                entries,
                more: i < last,
            };
            self.send(out, msg);
        }
    }

    fn send_repair(
        &mut self,
        out: &mut Vec<AeOutput>,
        leaf: u32,
        entries: Vec<(Vec<u8>, Cell)>,
        want: Vec<Vec<u8>>,
    ) {
        let mut msgs: Vec<(Entries, Vec<Vec<u8>>)> = Vec::new();
        if !entries.is_empty() {
            let chunks = chunk(entries, |(k, c)| k.len() + c.footprint() + 8);
            msgs.extend(chunks.into_iter().map(|e| (e, Vec::new())));
        }
        let want_chunks = chunk(want, |k| k.len() + 3);
        for w in want_chunks {
            match msgs.last_mut() {
                // Tuck a small first want chunk into the last entries message.
                Some((_, last_want)) if last_want.is_empty() && w.len() < 64 => *last_want = w,
                _ => msgs.push((Vec::new(), w)),
            }
        }
        let last = msgs.len().saturating_sub(1);
        for (i, (entries, want)) in msgs.into_iter().enumerate() {
            let msg = AeMsg::Repair {
                range: self.range,
                leaf,
                entries,
                want,
                more: i < last,
            };
            self.send(out, msg);
        }
    }

    /// Initiator: starts leaves while there is room, and finishes when nothing is left.
    fn pump(&mut self, tree: &MerkleTree, out: &mut Vec<AeOutput>) {
        if self.is_over() {
            return;
        }
        while self.init_leaves.len() < LEAVES_IN_FLIGHT_MAX {
            let Some((leaf, peer_empty)) = self.todo.pop_front() else {
                break;
            };
            let mine_empty = tree.node(self.depth, leaf).unwrap_or_default() == NodeHash::EMPTY;
            match tree.leaf_range(leaf) {
                Some(range) if !mine_empty => {
                    self.init_leaves
                        .insert(leaf, InitLeaf::Loading { peer_empty });
                    out.push(AeOutput::LoadLeaf { leaf, range });
                }
                // Nothing here to read: empty digests make the responder send all it has.
                _ => {
                    self.init_leaves.insert(
                        leaf,
                        InitLeaf::AwaitRepair {
                            mine: BTreeMap::new(),
                            want: Vec::new(),
                        },
                    );
                    self.send_digests(out, leaf, Vec::new());
                }
            }
        }
        if self.outstanding.is_empty() && self.todo.is_empty() && self.init_leaves.is_empty() {
            let entries = self.stats.keys_sent;
            self.send(
                out,
                AeMsg::Done {
                    range: self.range,
                    entries,
                },
            );
            self.phase = Phase::Finished;
            out.push(AeOutput::Finished(self.stats));
        }
    }
}

/// Splits `items` into chunks of about [`MSG_BYTES_TARGET`] bytes by `size`; always at least
/// one chunk (possibly empty), and an item larger than the target travels alone.
fn chunk<T>(items: Vec<T>, size: impl Fn(&T) -> usize) -> Vec<Vec<T>> {
    let mut chunks = vec![Vec::new()];
    let mut bytes = 0;
    for item in items {
        let n = size(&item);
        if bytes + n > MSG_BYTES_TARGET
            && let Some(last) = chunks.last()
            && !last.is_empty()
        {
            chunks.push(Vec::new());
            bytes = 0;
        }
        bytes += n;
        if let Some(last) = chunks.last_mut() {
            last.push(item);
        }
    }
    chunks
}
