//! Fills the [`ViewModel`] from the simulator: the only place the picture meets [`Sim`].
//!
//! [`SimSource::frame`] runs every frame and is cheap: time, the messages in flight, node
//! states, and the log entries since the last frame turned into short animations.
//! [`SimSource::refresh`] runs a few times a second: what every node thinks of every other
//! (verdicts and phi), storage, hints, the ring, cut links, and the followed operation.

use super::{Effect, EffectKind, Followed, MessageView, NodeView, Opinion, Seen, Status};
use super::{KeyCell, MESSAGES_MAX, StorageView, ViewModel};
use ringstore_core::NodeId;
use ringstore_core::node::{Lifecycle, NodeEvent};
use ringstore_core::sim::log::{OpKind, SimEvent, show_bytes, show_result};
use ringstore_core::sim::{MachineDisk, Sim};
use ringstore_core::storage::LsmStats;
use ringstore_core::wire::MessageKind;

/// Log entries turned into animations per frame at most (beyond it, only the newest).
const EFFECT_ENTRIES_PER_FRAME: usize = 2_000;
/// Steps of a followed operation shown at most.
const FOLLOWED_STEPS_MAX: usize = 400;

/// Reads a [`Sim`] into a [`ViewModel`]. See the module docs.
#[derive(Debug, Default)]
pub struct SimSource {
    /// The next log sequence number to look at.
    log_seq: u64,
    /// The operation being followed.
    pub follow: Option<u64>,
    /// The key whose versions the picture shows at each node.
    pub key: Option<String>,
    /// The node whose storage panel is open.
    pub storage: Option<u32>,
    /// Whether the newest anti-entropy session that found differences is drawn.
    pub merkle: bool,
    /// Whether the grid of who has heard whom is drawn.
    pub gossip: bool,
}

/// A store's statistics in the picture's numbers (the live source uses it too).
pub fn storage_view(s: &LsmStats) -> StorageView {
    StorageView {
        wal_bytes: s.wal_bytes,
        durable_lsn: s.durable_lsn,
        last_lsn: s.last_lsn,
        memtable_entries: s.memtable_entries + s.frozen_entries,
        memtable_bytes: s.memtable_bytes,
        tables: s.levels.iter().map(|l| l.tables).collect(),
        level_bytes: s.levels.iter().map(|l| l.bytes).collect(),
        flushes: s.flushes,
        compactions: s.compactions + s.trivial_moves,
        syncs: s.wal_syncs,
        write_amplification: s.write_amplification,
    }
}

fn status<D: MachineDisk>(sim: &Sim<D>, id: NodeId) -> Status {
    if sim.has_left(id) {
        return Status::Left;
    }
    let Some(node) = sim.node(id) else {
        return Status::Down;
    };
    match node.lifecycle() {
        Lifecycle::Leaving => Status::Leaving,
        Lifecycle::Left => Status::Left,
        _ if sim.is_joining(id) => Status::Joining,
        Lifecycle::Joining => Status::Joining,
        Lifecycle::Normal => Status::Up,
    }
}

/// What `observer` thinks of `subject`: a verdict, and phi under gossip.
fn opinion<D: MachineDisk>(
    sim: &Sim<D>,
    observer: NodeId,
    subject: NodeId,
) -> Option<(&'static str, Option<f64>)> {
    let node = sim.node(observer)?;
    let now = sim.local_time(observer);
    match node.gossiper() {
        Some(g) => {
            let verdict = g.verdict(subject, now)?.name();
            Some((verdict, g.phi(subject, now)))
        }
        None => Some((
            if node.believes_up(subject) {
                "alive"
            } else {
                "dead"
            },
            None,
        )),
    }
}

/// Every running peer's opinion of `subject`, for the node panel.
pub fn opinions<D: MachineDisk>(sim: &Sim<D>, subject: u32) -> Vec<Opinion> {
    let subject = NodeId(subject);
    sim.node_ids()
        .into_iter()
        .filter(|o| *o != subject)
        .filter_map(|o| {
            let (verdict, phi) = opinion(sim, o, subject)?;
            Some(Opinion {
                observer: o.0,
                verdict,
                phi,
            })
        })
        .collect()
}

impl SimSource {
    /// A source that starts reading the log at its current end (history before it is not
    /// animated).
    pub fn new<D: MachineDisk>(sim: &Sim<D>) -> SimSource {
        SimSource {
            log_seq: sim.log().total(),
            follow: None,
            key: None,
            storage: None,
            merkle: false,
            gossip: false,
        }
    }

    /// The cheap, every-frame part. `now_ms` is the time shown (the player's, between the
    /// simulator's whole milliseconds); `real_ms` stamps new animations.
    pub fn frame<D: MachineDisk>(
        &mut self,
        sim: &Sim<D>,
        model: &mut ViewModel,
        now_ms: f64,
        real_ms: f64,
    ) {
        model.now_ms = now_ms;
        let flying = sim.flying().count();
        let skip = flying.saturating_sub(MESSAGES_MAX);
        model.messages.clear();
        model
            .messages
            .extend(sim.flying().skip(skip).map(|m| MessageView {
                id: m.id,
                from: m.from.0,
                to: m.to.0,
                kind: m.kind,
                sent_ms: m.sent.0 as f64,
                arrives_ms: m.arrives.0 as f64,
                op: m.op,
            }));
        let ids = sim.node_ids();
        if model.nodes.len() != ids.len()
            || model.nodes.iter().zip(&ids).any(|(v, id)| v.id != id.0)
        {
            self.refresh(sim, model);
        } else {
            for (view, id) in model.nodes.iter_mut().zip(&ids) {
                view.status = status(sim, *id);
            }
        }
        self.effects(sim, model, real_ms);
        model.expire_effects(real_ms);
    }

    fn effects<D: MachineDisk>(&mut self, sim: &Sim<D>, model: &mut ViewModel, real_ms: f64) {
        let log = sim.log();
        let pending = log.total().saturating_sub(self.log_seq) as usize;
        let from = self.log_seq + pending.saturating_sub(EFFECT_ENTRIES_PER_FRAME) as u64;
        for entry in log.since(from) {
            let effect = |kind, node: NodeId| Effect {
                kind,
                node: node.0,
                from: node.0,
                message: MessageKind::Write,
                at: 1.0,
                op: None,
                born_real_ms: real_ms,
            };
            let e = match &entry.event {
                SimEvent::MessageDropped {
                    from, to, kind: k, ..
                } => Effect {
                    from: from.0,
                    message: *k,
                    at: 0.92,
                    ..effect(EffectKind::Death, *to)
                },
                SimEvent::DiskWrite { node, .. } => effect(EffectKind::Wal, *node),
                SimEvent::DiskSync { node, writes } if *writes > 0 => {
                    effect(EffectKind::Sync, *node)
                }
                SimEvent::Flush { node, .. } => effect(EffectKind::Flush, *node),
                SimEvent::Compaction { node, .. } => effect(EffectKind::Compact, *node),
                SimEvent::NodeDown { node } => effect(EffectKind::Crash, *node),
                _ => continue,
            };
            model.push_effect(e);
        }
        self.log_seq = log.total();
    }

    /// The slower part: per-node opinions, storage and hints, the ring, cut links, and the
    /// followed operation.
    pub fn refresh<D: MachineDisk>(&mut self, sim: &Sim<D>, model: &mut ViewModel) {
        let config = sim.config();
        model.n = config.n;
        model.w = config.w;
        model.r = config.r;
        model.gossip = config.gossip.is_some();
        let ids = sim.node_ids();
        let snapshot = sim.snapshot();
        model.nodes = ids
            .iter()
            .zip(&snapshot.nodes)
            .map(|(&id, snap)| {
                let mut seen = Seen::default();
                for &observer in &ids {
                    if observer == id {
                        continue;
                    }
                    let Some((verdict, phi)) = opinion(sim, observer, id) else {
                        continue;
                    };
                    match verdict {
                        "alive" => seen.alive += 1,
                        "suspect" => seen.suspect += 1,
                        _ => seen.dead += 1,
                    }
                    if let Some(phi) = phi {
                        seen.phi_max = Some(seen.phi_max.map_or(phi, |m: f64| m.max(phi)));
                    }
                }
                NodeView {
                    id: id.0,
                    status: status(sim, id),
                    seen,
                    storage: snap.storage.as_ref().map(storage_view),
                    hints: snap.hints_held.values().sum(),
                    skew_ms: snap.skew_ms,
                    coordinating: snap.in_flight,
                }
            })
            .collect();
        model.ring = sim
            .ring()
            .tokens()
            .iter()
            .map(|(t, n)| (t.0, n.0))
            .collect();
        model.cut = snapshot
            .partitions
            .iter()
            .map(|(a, b)| (a.0, b.0))
            .collect();
        model.followed = self.follow.and_then(|op| followed(sim, op));
        model.lsm = self.storage.and_then(|n| super::storage::lsm_view(sim, n));
        model.moving = super::moving::moving_view(sim);
        model.merkle = if self.merkle {
            super::merkle::merkle_view(sim)
        } else {
            None
        };
        model.gossip_grid = if self.gossip {
            super::gossip::gossip_view(sim)
        } else {
            None
        };
        model.key_cells = match &self.key {
            Some(key) if ids.len() <= KEY_CELLS_NODES_MAX => key_cells(sim, key),
            _ => Vec::new(),
        };
    }
}

/// Clusters larger than this get no per-node key versions (one store lookup per node).
const KEY_CELLS_NODES_MAX: usize = 16;

/// The key's version at every running node that holds it or is in its preference list; the
/// ones older than the newest (or missing from a replica, unless the newest is a delete) are
/// stale.
pub fn key_cells<D: MachineDisk>(sim: &Sim<D>, key: &str) -> Vec<KeyCell> {
    use ringstore_core::sim::log::show_ts;
    let token = ringstore_core::ring::key_token(key.as_bytes());
    let pref = sim.ring().preference_list(token, sim.config().n);
    let mut cells: Vec<(KeyCell, u64)> = sim
        .node_ids()
        .into_iter()
        .filter(|id| sim.is_up(*id))
        .filter_map(|id| {
            let stored = sim.stored(id, key.as_bytes());
            if stored.is_none() && !pref.contains(&id) {
                return None;
            }
            let ts = stored.as_ref().map_or(0, |c| c.version.ts_micros);
            Some((
                KeyCell {
                    node: id.0,
                    value: stored
                        .as_ref()
                        .and_then(|c| c.value.as_ref().map(|v| show_bytes(v))),
                    ts: stored.as_ref().map(|c| show_ts(c.version.ts_micros)),
                    stale: false,
                },
                ts,
            ))
        })
        .collect();
    let newest = cells.iter().map(|(_, ts)| *ts).max().unwrap_or(0);
    if newest == 0 {
        return Vec::new();
    }
    // When the newest version is a delete, a replica that holds nothing (never had the key,
    // or purged the tombstone) answers a read as the tombstone does: not found. Not stale.
    let deleted = cells
        .iter()
        .any(|(c, ts)| *ts == newest && c.value.is_none());
    for (cell, ts) in &mut cells {
        let holds_nothing = cell.ts.is_none();
        cell.stale = *ts < newest && !(deleted && holds_nothing);
    }
    cells.into_iter().map(|(c, _)| c).collect()
}

/// The path of client operation `op`, from its trace.
pub fn followed<D: MachineDisk>(sim: &Sim<D>, op: u64) -> Option<Followed> {
    let record = sim.history().op(op)?;
    let mut f = Followed {
        op,
        kind: match record.kind {
            OpKind::Put => "put",
            OpKind::Get => "get",
            OpKind::Delete => "delete",
        }
        .to_string(),
        key: show_bytes(&record.key),
        coordinator: record.node.0,
        result: record.result.as_ref().map(show_result),
        ..Followed::default()
    };
    let add = |list: &mut Vec<u32>, n: NodeId| {
        if !list.contains(&n.0) {
            list.push(n.0);
        }
    };
    for entry in sim.op_trace(op) {
        match &entry.event {
            SimEvent::Node {
                event:
                    NodeEvent::RequestStarted {
                        targets,
                        preference,
                        ..
                    },
                ..
            } => {
                f.preference = preference.iter().map(|n| n.0).collect();
                f.targets = targets.iter().map(|(t, h)| (t.0, h.map(|h| h.0))).collect();
            }
            SimEvent::Node {
                event: NodeEvent::ReadRepair { replica, .. },
                ..
            } => add(&mut f.repaired, *replica),
            SimEvent::DiskWrite { node, .. } => add(&mut f.wal, *node),
            SimEvent::MessageDelivered { from, to, .. }
                if to.0 == f.coordinator && from.0 != f.coordinator =>
            {
                add(&mut f.answered, *from)
            }
            _ => {}
        }
        if f.steps.len() < FOLLOWED_STEPS_MAX {
            f.steps.push((entry.time.0, entry.event.trace()));
        }
    }
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringstore_core::node::ClientOp;
    use ringstore_core::sim::script::{Command, start_cluster};

    fn notes(extra: &str) -> Sim {
        let line = format!("cluster nodes=5 layout=notes latency=2..4 tail=0 {extra}");
        let Ok(Command::Cluster(c)) = Command::parse(&line) else {
            panic!("cluster line")
        };
        start_cluster(*c).unwrap()
    }

    #[test]
    fn a_replica_without_the_key_is_stale_after_a_put_but_not_after_a_delete() {
        use ringstore_core::node::ClientOp;
        let mut sim = notes("nodes=3 n=3 w=2 r=2 ae=0");
        let (n1, rest) = (NodeId(1), [NodeId(2), NodeId(3)]);
        sim.partition(&[n1], &rest, false);
        let put = |sim: &mut Sim, op: ClientOp| {
            sim.client(NodeId(2), op);
            sim.run_for(200);
        };
        let (key, consistency) = (b"user123".to_vec(), None);
        put(
            &mut sim,
            ClientOp::Put {
                key: key.clone(),
                value: b"Alice".to_vec(),
                consistency,
            },
        );
        let cells = key_cells(&sim, "user123");
        let n1_cell = cells.iter().find(|c| c.node == 1).expect("n1 is a replica");
        assert!(n1_cell.ts.is_none() && n1_cell.stale, "{cells:?}");
        put(&mut sim, ClientOp::Delete { key, consistency });
        let cells = key_cells(&sim, "user123");
        let n1_cell = cells.iter().find(|c| c.node == 1).expect("n1 is a replica");
        assert!(n1_cell.ts.is_none() && !n1_cell.stale, "{cells:?}");
        assert!(
            cells
                .iter()
                .filter(|c| c.node != 1)
                .all(|c| c.value.is_none() && c.ts.is_some() && !c.stale),
            "{cells:?}"
        );
    }

    #[test]
    fn the_view_shows_nodes_ring_messages_and_a_crash() {
        let mut sim = notes("");
        let mut source = SimSource::new(&sim);
        let mut model = ViewModel::default();
        source.refresh(&sim, &mut model);
        assert_eq!(model.nodes.len(), 5);
        assert_eq!(model.ring.len(), 5);
        assert!(model.ring.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!((model.n, model.w, model.r), (3, 2, 2));
        let op = sim.client(
            NodeId(2),
            ClientOp::Put {
                key: b"user123".to_vec(),
                value: b"Alice".to_vec(),
                consistency: None,
            },
        );
        source.follow = Some(op);
        sim.run_for(1);
        source.frame(&sim, &mut model, 101.0, 0.0);
        assert_eq!(model.messages.len(), 3, "{:?}", model.messages);
        assert!(
            model
                .messages
                .iter()
                .all(|m| m.from == 2 && m.kind == MessageKind::Write && m.op == Some(op))
        );
        sim.run_for(20);
        source.frame(&sim, &mut model, 121.0, 10.0);
        let wal: Vec<u32> = model
            .effects
            .iter()
            .filter(|e| e.kind == EffectKind::Wal)
            .map(|e| e.node)
            .collect();
        assert_eq!(wal.len(), 3);
        source.refresh(&sim, &mut model);
        let f = model.followed.clone().unwrap();
        assert_eq!(f.coordinator, 2);
        assert_eq!(f.preference, vec![3, 4, 5]);
        let mut w = f.wal.clone();
        w.sort();
        assert_eq!(w, vec![3, 4, 5]);
        assert!(f.result.unwrap().starts_with("ok ts=100"));
        assert!(
            f.steps
                .iter()
                .any(|(_, s)| s == "n2 coordinates: replicas [n3, n4, n5]")
        );
        assert!(
            model
                .nodes
                .iter()
                .all(|n| n.storage.as_ref().is_some_and(|s| s.syncs > 0)
                    || ![3, 4, 5].contains(&n.id))
        );
        sim.crash(NodeId(5));
        source.frame(&sim, &mut model, 122.0, 20.0);
        assert_eq!(model.node(5).unwrap().status, Status::Down);
        assert!(
            model
                .effects
                .iter()
                .any(|e| e.kind == EffectKind::Crash && e.node == 5)
        );
        // The oracle tells the others after the detection delay.
        sim.run_for(100);
        source.refresh(&sim, &mut model);
        assert_eq!(model.node(5).unwrap().seen.dead, 4);
        assert_eq!(model.node(5).unwrap().seen.consensus(), "dead");
    }

    #[test]
    fn under_gossip_peers_report_phi_and_suspect_a_silent_node() {
        let mut sim = notes("membership=gossip ae=0");
        sim.run_for(2_000);
        let mut source = SimSource::new(&sim);
        let mut model = ViewModel::default();
        source.refresh(&sim, &mut model);
        let n5 = model.node(5).unwrap();
        assert_eq!(n5.seen.alive, 4);
        assert!(n5.seen.phi_max.unwrap() < 8.0);
        sim.crash(NodeId(5));
        sim.run_for(3_500);
        source.refresh(&sim, &mut model);
        let n5 = model.node(5).unwrap();
        assert_eq!(n5.seen.alive, 0, "{n5:?}");
        assert!(n5.seen.phi_max.unwrap() > 8.0);
        let ops = opinions(&sim, 5);
        assert_eq!(ops.len(), 4);
        assert!(
            ops.iter()
                .all(|o| o.verdict == "dead" || o.verdict == "suspect")
        );
    }

    #[test]
    fn dropped_messages_die_visibly() {
        let mut sim = notes("");
        let mut source = SimSource::new(&sim);
        let mut model = ViewModel::default();
        sim.partition(&[NodeId(2)], &[NodeId(4)], false);
        sim.client(
            NodeId(2),
            ClientOp::Put {
                key: b"user123".to_vec(),
                value: b"A".to_vec(),
                consistency: None,
            },
        );
        sim.run_for(10);
        source.frame(&sim, &mut model, 110.0, 0.0);
        assert!(
            model
                .effects
                .iter()
                .any(|e| e.kind == EffectKind::Death && e.from == 2 && e.node == 4)
        );
        source.refresh(&sim, &mut model);
        assert!(model.cut.contains(&(2, 4)) && model.cut.contains(&(4, 2)));
    }
}
