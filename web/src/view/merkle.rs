//! The anti-entropy session the picture draws as two Merkle trees (the design notes' §7.2):
//! the newest session between two replicas that is running or went below the root (their
//! trees differed), read from the messages of the event log. The initiator requests a level of the tree, the
//! peer answers with those nodes' hashes, and they go down only where hashes differ, to the
//! leaves, whose keys' digests are compared; only the keys that differ travel.

use ringstore_core::sim::log::SimEvent;
use ringstore_core::sim::{MachineDisk, Sim};
use ringstore_core::wire::MessageKind;
use serde::Serialize;

/// How far back in the log a session is looked for (entries).
const LOOK_BACK: usize = 4_000;

/// One anti-entropy session, for the tree drawing.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MerkleView {
    /// The node that started the session.
    pub from: u32,
    /// The replica it compared with.
    pub with: u32,
    /// The range compared, as the trace writes it.
    pub range: String,
    /// The tree's depth: leaves are at this level (2^depth of them).
    pub depth: u8,
    /// The deepest level whose hashes were requested so far.
    pub level: u8,
    /// The leaves whose key digests were compared (their hashes differed).
    pub leaves: Vec<u32>,
    /// Keys compared at those leaves.
    pub keys_compared: usize,
    /// Keys sent because they differed (both ways).
    pub keys_sent: usize,
    /// Whether the session finished.
    pub done: bool,
    /// Bytes on the wire, once done.
    pub bytes: Option<u64>,
}

/// The newest session that is still running or went below the root (one whose roots were
/// equal ends at once and is not worth drawing), if any within the last `LOOK_BACK` log
/// entries.
pub fn merkle_view<D: MachineDisk>(sim: &Sim<D>) -> Option<MerkleView> {
    let entries = sim.log().entries();
    let recent = entries.iter().skip(entries.len().saturating_sub(LOOK_BACK));
    let mut sessions: Vec<MerkleView> = Vec::new();
    for entry in recent {
        match &entry.event {
            SimEvent::MessageSent {
                from,
                to,
                kind: MessageKind::Repair,
                label,
                ..
            } => {
                let Some(body) = label.strip_prefix("AE ") else {
                    continue;
                };
                let (a, b) = (from.0, to.0);
                if let Some(rest) = body.strip_prefix("Request ") {
                    let level = word_after(rest, "level").unwrap_or(0) as u8;
                    if level == 0 {
                        sessions.retain(|s| !(s.from == a && s.with == b));
                        sessions.push(MerkleView {
                            from: a,
                            with: b,
                            range: rest.split(" level").next().unwrap_or("").to_string(),
                            depth: sim.config().merkle_depth,
                            ..MerkleView::default()
                        });
                    } else if let Some(s) = session(&mut sessions, a, b) {
                        s.level = s.level.max(level);
                    }
                } else if let Some(rest) = body.strip_prefix("Digests leaf ") {
                    if let Some(s) = session(&mut sessions, a, b) {
                        let leaf = first_number(rest).unwrap_or(0) as u32;
                        if !s.leaves.contains(&leaf) {
                            s.leaves.push(leaf);
                        }
                        s.level = s.depth;
                        s.keys_compared += number_in_parens(rest).unwrap_or(0);
                    }
                } else if let Some(rest) = body
                    .strip_prefix("Repair leaf ")
                    .or_else(|| body.strip_prefix("Entries leaf "))
                    && let Some(s) = session(&mut sessions, a, b)
                {
                    s.keys_sent += number_in_parens(rest).unwrap_or(0);
                }
            }
            SimEvent::Node { node, event } => {
                if let ringstore_core::node::NodeEvent::RepairDone { peer, bytes, .. } = event
                    && let Some(s) = session(&mut sessions, node.0, peer.0)
                {
                    s.done = true;
                    s.bytes = Some(*bytes);
                }
            }
            _ => {}
        }
    }
    sessions.into_iter().rev().find(|s| s.level > 0 || !s.done)
}

/// The open session between `a` and `b` (either direction; the initiator's, preferably).
fn session(sessions: &mut [MerkleView], a: u32, b: u32) -> Option<&mut MerkleView> {
    sessions
        .iter_mut()
        .rev()
        .find(|s| (s.from == a && s.with == b) || (s.from == b && s.with == a))
}

fn first_number(s: &str) -> Option<usize> {
    s.split(|c: char| !c.is_ascii_digit())
        .find(|w| !w.is_empty())?
        .parse()
        .ok()
}

fn word_after(s: &str, word: &str) -> Option<usize> {
    let mut words = s.split_whitespace();
    words.find(|w| *w == word)?;
    words.next()?.parse().ok()
}

fn number_in_parens(s: &str) -> Option<usize> {
    first_number(s.split_once('(')?.1)
}

/// The tree node at `level` on the path from the root to `leaf` (leaves at `depth`).
pub fn ancestor(leaf: u32, depth: u8, level: u8) -> u32 {
    leaf >> u32::from(depth.saturating_sub(level))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringstore_core::sim::script;

    #[test]
    fn the_merkle_lesson_s_session_goes_down_to_one_leaf_and_sends_one_key() {
        let info = crate::scenario::find("merkle_tree_repair").expect("lesson");
        let lesson = crate::scenario::lesson(info).expect("parses");
        let mut sim = script::start_cluster(lesson.cluster.clone()).expect("cluster");
        assert_eq!(merkle_view(&sim), None);
        script::load_keys(&mut sim, ringstore_core::NodeId(2), 300);
        let (d, rest) = (ringstore_core::NodeId(4), sim.node_ids());
        let others: Vec<_> = rest.into_iter().filter(|n| *n != d).collect();
        sim.partition(&[d], &others, false);
        let op = sim.client(
            ringstore_core::NodeId(2),
            ringstore_core::node::ClientOp::Put {
                key: b"user123".to_vec(),
                value: b"Alice".to_vec(),
                consistency: None,
            },
        );
        sim.run_until_done(op, script::WAIT_MS);
        sim.heal();
        sim.run_for(1_000);
        let v = merkle_view(&sim).expect("a session that differed");
        assert_eq!(v.depth, 4);
        assert_eq!(v.leaves.len(), 1, "{v:?}");
        assert_eq!(v.keys_sent, 1, "{v:?}");
        assert!(v.done && v.bytes.is_some_and(|b| b > 0), "{v:?}");
        assert!(v.from == 4 || v.with == 4, "{v:?}");
        assert_eq!(ancestor(15, 4, 0), 0);
        assert_eq!(ancestor(15, 4, 2), 3);
        assert_eq!(ancestor(15, 4, 4), 15);
    }

    #[test]
    fn label_numbers_parse() {
        assert_eq!(first_number("15 (7 keys)"), Some(15));
        assert_eq!(number_in_parens("15 (7 keys)"), Some(7));
        assert_eq!(word_after("(3c…, 6f…] level 3 (2 nodes)", "level"), Some(3));
    }
}
