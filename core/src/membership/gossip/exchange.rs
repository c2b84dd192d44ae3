//! The digest exchange: a round's `Syn` to the chosen peers, and the `Syn → Ack → Ack2`
//! answers that leave both sides with the newer copy of every member's state (deltas bounded
//! per message, most-behind first), then applying those deltas: heartbeats to the detector,
//! status changes, restarts, and refuting this node's own removal.

use super::super::{Delta, Digest, GossipEvent, GossipMsg, MemberState, MemberStatus, Verdict};
use super::{Gossiper, check_app, choose_peers, is_active, new_state, sorted};
use crate::DetRng;
use crate::{Millis, NodeId};
use std::cmp::Reverse;
use std::collections::BTreeMap;

impl Gossiper {
    // ----- inputs -----

    /// One gossip round, every `gossip_interval_ms`: bumps this node's heartbeat, updates the
    /// verdicts (events for members that became suspect or dead) and returns a
    /// [`GossipMsg::Syn`] for each peer [`choose_peers`] picks.
    pub fn tick(&mut self, now: Millis, rng: &mut DetRng) -> Vec<(NodeId, GossipMsg)> {
        let me = self.me;
        if let Some(own) = self.members.get_mut(&me) {
            own.heartbeat = own.heartbeat.saturating_add(1);
            own.version = own.version.saturating_add(1);
        }
        self.last_tick = Some(now);
        self.update_all_verdicts(now);

        let mut live = Vec::new();
        let mut unreachable = Vec::new();
        for (&node, v) in &self.verdicts {
            match v {
                Verdict::Alive => live.push(node),
                Verdict::Suspect | Verdict::Dead => unreachable.push(node),
                Verdict::Left => {}
            }
        }
        let peers = choose_peers(
            &live,
            &unreachable,
            &self.seeds,
            me,
            self.config.fanout,
            rng,
        );
        let digests = self.digests();
        peers
            .into_iter()
            .map(|p| {
                (
                    p,
                    GossipMsg::Syn {
                        digests: digests.clone(),
                    },
                )
            })
            .collect()
    }

    /// A gossip message from `from` arrived at `now`: returns the reply, if any.
    pub fn handle(
        &mut self,
        now: Millis,
        from: NodeId,
        msg: GossipMsg,
    ) -> Vec<(NodeId, GossipMsg)> {
        match msg {
            GossipMsg::Syn { digests } => {
                let (deltas, requests) = self.answer_syn(&digests);
                vec![(from, GossipMsg::Ack { deltas, requests })]
            }
            GossipMsg::Ack { deltas, requests } => {
                self.apply_deltas(now, deltas);
                let wanted: Vec<(NodeId, Option<Digest>)> =
                    requests.iter().map(|d| (d.node, Some(*d))).collect();
                let deltas = self.deltas_for(&wanted);
                if deltas.is_empty() {
                    Vec::new()
                } else {
                    vec![(from, GossipMsg::Ack2 { deltas })]
                }
            }
            GossipMsg::Ack2 { deltas } => {
                self.apply_deltas(now, deltas);
                Vec::new()
            }
        }
    }

    // ----- the exchange -----

    /// One digest per member, in node order.
    pub(super) fn digests(&self) -> Vec<Digest> {
        self.members.iter().map(|(&n, s)| s.digest(n)).collect()
    }

    /// The deltas the sender of `digests` lacks, and the requests for what it has newer.
    ///
    /// The digests of a well-formed Syn are in node order (see [`Gossiper::tick`]): then they
    /// are walked side by side with the members, no map built; otherwise they are first put in
    /// node order (a repeated node: the last digest counts).
    pub(super) fn answer_syn(&mut self, digests: &[Digest]) -> (Vec<Delta>, Vec<Digest>) {
        let digests = &digests[..digests.len().min(self.config.members_max)];
        let theirs: std::borrow::Cow<'_, [Digest]> =
            if digests.windows(2).all(|p| p[0].node < p[1].node) {
                std::borrow::Cow::Borrowed(digests)
            } else {
                let mut map: BTreeMap<NodeId, Digest> = BTreeMap::new();
                for d in digests {
                    map.insert(d.node, *d);
                }
                std::borrow::Cow::Owned(map.into_values().collect())
            };
        let mut room = self.config.members_max.saturating_sub(self.members.len());
        let mut refused = 0u64;
        let mut requests = Vec::new();
        let mut behind = Vec::new();
        // A digest of a member not known here: ask for all of it, while there is room.
        let mut unknown = |d: &Digest, requests: &mut Vec<Digest>| {
            if room > 0 {
                room -= 1;
                requests.push(Digest {
                    node: d.node,
                    generation: 0,
                    max_version: 0,
                });
            } else {
                refused += 1;
            }
        };
        let mut theirs_iter = theirs.iter().peekable();
        for (&node, s) in &self.members {
            while let Some(d) = theirs_iter.next_if(|d| d.node < node) {
                unknown(d, &mut requests);
            }
            let d = theirs_iter.next_if(|d| d.node == node);
            if let Some(b) = behind_of(node, s, d) {
                behind.push(b);
            }
            if let Some(d) = d
                && (d.generation, d.max_version) > (s.generation, s.version)
            {
                requests.push(s.digest(node));
            }
        }
        for d in theirs_iter {
            unknown(d, &mut requests);
        }
        self.stats.members_refused += refused;
        (self.deltas_behind(behind), requests)
    }

    /// The deltas for members whose known state (`None`: nothing) is older than ours, most
    /// behind first, within `max_deltas_bytes`.
    pub(super) fn deltas_for(&mut self, wanted: &[(NodeId, Option<Digest>)]) -> Vec<Delta> {
        let behind = wanted
            .iter()
            .filter_map(|&(node, theirs)| {
                behind_of(node, self.members.get(&node)?, theirs.as_ref())
            })
            .collect();
        self.deltas_behind(behind)
    }

    /// The deltas for `behind` (from [`behind_of`]), most behind first, within
    /// `max_deltas_bytes`.
    pub(super) fn deltas_behind(&mut self, mut behind: Vec<(u64, NodeId, bool)>) -> Vec<Delta> {
        behind.sort_unstable_by_key(|&(b, node, _)| (Reverse(b), node));
        let mut out = Vec::with_capacity(behind.len());
        let mut bytes = 0usize;
        let mut deferred = 0u64;
        for (_, node, with_app) in behind {
            let Some(s) = self.members.get(&node) else {
                continue;
            };
            let delta = Delta {
                node,
                generation: s.generation,
                heartbeat: s.heartbeat,
                version: s.version,
                app: with_app.then(|| s.app()),
            };
            let size = delta.bytes_max();
            if bytes + size > self.config.max_deltas_bytes {
                deferred += 1;
                continue;
            }
            bytes += size;
            out.push(delta);
        }
        self.stats.deltas_deferred += deferred;
        out
    }

    pub(super) fn apply_deltas(&mut self, now: Millis, deltas: Vec<Delta>) {
        // (member, its verdict if `apply` already knows it) for each newer heartbeat or
        // generation, then their verdicts recorded (events for changes).
        let mut touched: Vec<(NodeId, Option<Verdict>)> = Vec::with_capacity(deltas.len());
        for delta in deltas {
            let node = delta.node;
            let before = self.heard_alive;
            if self.apply(now, delta) {
                touched.push((node, (self.heard_alive != before).then_some(Verdict::Alive)));
            }
        }
        for (node, known) in touched {
            if node == self.me {
                continue;
            }
            let verdict = match known {
                Some(v) => Some(v),
                None => self.verdict(node, now),
            };
            self.set_verdict(now, node, verdict);
        }
    }

    /// Applies one delta; returns whether a newer heartbeat or generation arrived. Bumps
    /// `heard_alive` when the member is then certainly Alive (heard from at `now`).
    pub(super) fn apply(&mut self, now: Millis, delta: Delta) -> bool {
        if let Some(app) = &delta.app
            && check_app(&self.config, &app.address, &app.tokens).is_err()
        {
            self.stats.deltas_ignored += 1;
            return false;
        }
        if delta.node == self.me {
            self.maybe_refute(&delta);
            return false;
        }
        let node = delta.node;
        let Some(state) = self.members.get_mut(&node) else {
            let Some(app) = delta.app else {
                self.stats.deltas_ignored += 1;
                return false;
            };
            if self.members.len() >= self.config.members_max {
                self.stats.members_refused += 1;
                return false;
            }
            let state = new_state(delta.generation, delta.heartbeat, delta.version, app);
            let status = state.status;
            self.members.insert(node, state);
            self.ring_epoch += 1;
            if status != MemberStatus::Removed {
                self.push_event(GossipEvent::Joined { node, status });
            }
            self.after_status(now, node, None, status);
            return true;
        };
        if delta.generation > state.generation {
            let Some(app) = delta.app else {
                self.stats.deltas_ignored += 1;
                return false;
            };
            let old_generation = state.generation;
            *state = new_state(delta.generation, delta.heartbeat, delta.version, app);
            let status = state.status;
            self.ring_epoch += 1;
            // A removal travels as a new generation too (see `remove`).
            self.push_event(if status == MemberStatus::Removed {
                GossipEvent::PeerRemoved { node }
            } else {
                GossipEvent::PeerRestarted {
                    node,
                    old_generation,
                    generation: delta.generation,
                }
            });
            self.detector.remove(node);
            self.after_status(now, node, None, status);
            return true;
        }
        if delta.generation < state.generation || delta.version <= state.version {
            return false;
        }
        state.version = delta.version;
        let newer_heartbeat = delta.heartbeat > state.heartbeat;
        state.heartbeat = state.heartbeat.max(delta.heartbeat);
        let old_status = state.status;
        if let Some(app) = delta.app
            && app.app_version > state.app_version
        {
            state.app_version = app.app_version;
            state.status = app.status;
            state.tokens = sorted(app.tokens);
            state.address = app.address;
            self.ring_epoch += 1;
        }
        let status = state.status;
        if status != old_status {
            self.after_status(now, node, Some(old_status), status);
        } else if newer_heartbeat && is_active(status) {
            let until = self.detector.heartbeat_until(node, now);
            // Heard from at `now`, its status one that heartbeats: φ is 0, so it is Alive.
            let alive = until.is_some() && self.config.phi.threshold > 0.0;
            if alive {
                self.heard_alive = self.heard_alive.wrapping_add(1);
            }
            match until {
                // Alive, and Alive when `up_changes` last looked at it: nothing to report,
                // and it cannot turn suspect before `until`.
                Some(until) if alive && !self.not_up.contains(&node) => {
                    if let Some((last, due)) = self.up_scan {
                        self.up_scan = Some((last, due.min(until)));
                    }
                }
                _ => self.touch(node),
            }
        }
        newer_heartbeat
    }

    /// Events and detector bookkeeping for `node` whose status went from `old` to `new` (or
    /// that is new, or restarted: then the detector has no window for it).
    pub(super) fn after_status(
        &mut self,
        now: Millis,
        node: NodeId,
        old: Option<MemberStatus>,
        new: MemberStatus,
    ) {
        self.touch(node);
        match new {
            MemberStatus::Left => {
                self.detector.remove(node);
                self.verdicts.insert(node, Verdict::Left);
            }
            MemberStatus::Removed => {
                self.detector.remove(node);
                self.verdicts.remove(&node);
            }
            _ => self.detector.heartbeat(node, now),
        }
        let Some(old) = old else {
            return;
        };
        if old == new {
            return;
        }
        let event = match new {
            MemberStatus::Left => GossipEvent::PeerLeft { node },
            MemberStatus::Removed => GossipEvent::PeerRemoved { node },
            status => GossipEvent::StatusChanged { node, status },
        };
        self.push_event(event);
    }

    /// Someone gossiped a state of this node that would replace ours (a removal, or state
    /// from a later generation that cannot be ours): take a larger generation so ours wins.
    pub(super) fn maybe_refute(&mut self, delta: &Delta) {
        let me = self.me;
        let Some(own) = self.members.get_mut(&me) else {
            return;
        };
        let removed_now = delta.generation == own.generation
            && delta
                .app
                .as_ref()
                .is_some_and(|a| a.status == MemberStatus::Removed);
        if delta.generation > own.generation || removed_now {
            own.generation = delta.generation.max(own.generation).saturating_add(1);
            own.version = own.version.saturating_add(1);
            own.app_version = own.version;
            let generation = own.generation;
            self.push_event(GossipEvent::Refuted { generation });
        }
    }
}

/// How far behind a peer whose digest of `node` is `theirs` (`None`: it does not know it) is
/// from our state `s`, `node`, and whether it needs the application state; `None` if it is
/// not behind.
fn behind_of(
    node: NodeId,
    s: &MemberState,
    theirs: Option<&Digest>,
) -> Option<(u64, NodeId, bool)> {
    match theirs {
        Some(d) if d.generation == s.generation => (d.max_version < s.version).then(|| {
            (
                s.version - d.max_version,
                node,
                s.app_version > d.max_version,
            )
        }),
        Some(d) if d.generation > s.generation => None,
        // Unknown there, or an older generation: everything, first.
        _ => Some((u64::MAX, node, true)),
    }
}
