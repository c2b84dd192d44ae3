//! Membership inside the node: gossip rounds, the failure detector's verdicts, and the ring
//! they imply.
//!
//! With [`Membership::Gossip`] the node runs a [`Gossiper`]: every `gossip_interval_ms` it
//! heartbeats and exchanges digests with a few peers ([`Message::Gossip`]); after every round
//! or message it reads the phi-accrual verdicts (a Suspect or Dead peer is treated as down: the
//! coordinator routes around it and writes hints for it; a peer seen Alive again gets its hints
//! back) and rebuilds its ring: the ring it started with, plus every member gossiping Alive or
//! Leaving with its tokens, minus every member that Left or was Removed. A node that fails is
//! not removed from the ring by failure detection alone (Dynamo's rule: failure is not
//! departure); an operator removes it. With [`Membership::Oracle`] the driver feeds verdicts
//! and rings instead ([`super::Input::PeerStatus`], [`super::Input::RingChanged`]).
//!
//! The node reads verdicts after every gossip round and message, so it asks
//! [`Gossiper::up_changes`], which names only the members whose verdict may have left or
//! regained Alive since it last asked (with an input other than gossip that changed the node's
//! beliefs, it asks for all): the node learns every change at the same moment as by reading
//! every verdict after every message, and its event log is identical, at the cost of a few
//! members a message instead of all. It rebuilds its ring only when the gossiper's ring epoch
//! moved (bumped whenever a member joins, restarts, is removed or gossips a new status or
//! tokens) and the members' statuses and tokens differ from the last build.

use super::{Node, NodeEvent, Timer};
use crate::membership::{GossipConfig, GossipError, GossipMsg, Gossiper, MemberStatus, Verdict};
use crate::wire::Message;
use crate::{Millis, NodeId};
use serde::{Deserialize, Serialize};

/// Each member's status and tokens, as the gossiped ring was last built from them.
pub(super) type RingInputs = Vec<(NodeId, MemberStatus, Vec<crate::ring::Token>)>;

/// How a node learns who is up and what the ring is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Membership {
    /// From its driver (tests, and simulations that isolate the data path).
    Oracle,
    /// From gossip and its own failure detector.
    Gossip {
        /// Nodes contacted to join, and now and then afterwards.
        seeds: Vec<NodeId>,
        /// Gossip and failure-detection settings.
        config: GossipConfig,
    },
}

impl Node {
    /// Starts gossip, if this node uses it: the first round, spread over one interval by id.
    pub(super) fn start_membership(&mut self, now: Millis) -> Result<(), GossipError> {
        let Membership::Gossip { seeds, config } = &self.config.membership else {
            return Ok(());
        };
        let interval = config.gossip_interval_ms;
        let mut gossiper = Gossiper::new(
            self.config.id,
            self.config.generation,
            self.config.address.clone(),
            self.config.tokens.clone(),
            seeds.clone(),
            config.clone(),
        )?;
        if !self.config.joining {
            gossiper.set_status(MemberStatus::Alive)?;
        }
        for &(node, generation) in &self.config.removed {
            gossiper.remember_removed(node, generation);
        }
        self.gossip = Some(gossiper);
        self.ring_inputs = None;
        self.ring_epoch = None;
        let offset = u64::from(self.config.id.0).wrapping_mul(7919) % interval.max(1);
        self.set_timer(Millis(now.0 + offset), Timer::GossipTick);
        Ok(())
    }

    /// Announces this node's own status to the cluster (no-op under an oracle). The node's
    /// lifecycle only moves forward, as gossiped statuses must; a step the gossiper refuses
    /// anyway is logged ([`NodeEvent::MembershipRefused`]) and changes nothing.
    pub(super) fn announce(&mut self, status: MemberStatus) {
        if let Some(Err(error)) = self.gossip.as_mut().map(|g| g.set_status(status)) {
            self.event(NodeEvent::MembershipRefused { error });
        }
    }

    /// The phi of every peer this node has heard from, for the UI.
    pub fn phis(&self, now: Millis) -> std::collections::BTreeMap<NodeId, f64> {
        self.gossip
            .as_ref()
            .map(|g| g.phis(now))
            .unwrap_or_default()
    }

    /// Adds a gossip seed learned after the start (the native node learns a `--join` address's
    /// id in its handshake). Returns whether it was new; always `false` under an oracle.
    pub fn add_seed(&mut self, node: NodeId) -> bool {
        self.gossip.as_mut().is_some_and(|g| g.add_seed(node))
    }

    /// This node's gossiper, if it gossips.
    pub fn gossiper(&self) -> Option<&Gossiper> {
        self.gossip.as_ref()
    }

    pub(super) fn on_gossip_tick(&mut self, now: Millis) {
        let Some(g) = self.gossip.as_mut() else {
            return;
        };
        let interval = g.config().gossip_interval_ms;
        let msgs = g.tick(now, &mut self.rng);
        for (to, msg) in msgs {
            self.send(to, Message::Gossip(msg));
        }
        self.set_timer(Millis(now.0 + interval), Timer::GossipTick);
        self.after_gossip(now);
    }

    pub(super) fn on_gossip(&mut self, now: Millis, from: NodeId, msg: GossipMsg) {
        let Some(g) = self.gossip.as_mut() else {
            return;
        };
        let replies = g.handle(now, from, msg);
        for (to, msg) in replies {
            self.send(to, Message::Gossip(msg));
        }
        self.after_gossip(now);
    }

    /// An operator removes `node` from the cluster. Under gossip the gossiper must accept it
    /// (a known member, not this node: a live node refutes its removal); if it refuses,
    /// nothing changes and the refusal is logged. Under an oracle the driver's word is final.
    pub(super) fn on_remove(&mut self, node: NodeId) {
        if let Some(Err(error)) = self.gossip.as_mut().map(|g| g.remove(node)) {
            return self.event(NodeEvent::MembershipRefused { error });
        }
        self.ring_inputs = None;
        self.base_ring = self.base_ring.without_node(node);
        self.ring = self.ring.without_node(node);
        self.after_gossip_ring(None);
    }

    /// Reads verdicts and the ring out of the gossiper after it changed.
    fn after_gossip(&mut self, now: Millis) {
        let Some(g) = self.gossip.as_mut() else {
            return;
        };
        let events = g.drain_events();
        // Only verdicts that differ from what the node believes: telling it what it already
        // believes does nothing, and this runs after every gossip message. The gossiper names
        // the members whose verdict may have changed since it was last asked (those a message
        // touched, everyone once one may have gone silent too long), so a message costs a
        // look at a few members, not all; when an input changed `down`, it looks at all.
        let me = self.config.id;
        let all = std::mem::take(&mut self.down_from_input);
        let changed: Vec<(NodeId, bool)> = g
            .up_changes(now, all)
            .into_iter()
            .filter_map(|(node, verdict)| {
                let up = verdict == Verdict::Alive;
                (node != me && up == self.down.contains(&node)).then_some((node, up))
            })
            .collect();
        for event in events {
            self.event(NodeEvent::Membership(event));
        }
        for (node, up) in changed {
            self.on_peer_status(now, node, up);
        }
        self.after_gossip_ring(Some(now));
    }

    fn after_gossip_ring(&mut self, now: Option<Millis>) {
        let Some(g) = self.gossip.as_ref() else {
            return;
        };
        // The ring is a function of the base ring and every member's status and tokens: when
        // none of those changed since the last build (nearly every gossip message), neither
        // did the ring. The gossiper's ring epoch says when they may have (`ring_inputs` is
        // cleared whenever the base ring changes); then checking costs one comparison per
        // token, no allocation.
        if self.ring_inputs.is_some() && self.ring_epoch == Some(g.ring_epoch()) {
            return;
        }
        self.ring_epoch = Some(g.ring_epoch());
        if let Some(inputs) = &self.ring_inputs
            && inputs.len() == g.members().len()
            && inputs
                .iter()
                .zip(g.members())
                .all(|((n, st, t), (m, state))| {
                    n == m && *st == state.status && t.as_slice() == state.tokens.as_slice()
                })
        {
            return;
        }
        self.ring_inputs = Some(
            g.members()
                .iter()
                .map(|(n, state)| (*n, state.status, state.tokens.clone()))
                .collect(),
        );
        let mut ring = self.base_ring.clone();
        // Each member's tokens on the ring being built, recomputed only when it changes (rare:
        // a join or leave), so a gossip message costs one pass over the ring, not one per member.
        let mut held = ring.tokens_by_node();
        for (&node, state) in g.members() {
            let holds = held.get(&node).map_or(&[][..], Vec::as_slice);
            match state.status {
                MemberStatus::Alive | MemberStatus::Leaving
                    if !state.tokens.is_empty() && holds != state.tokens.as_slice() =>
                {
                    ring = ring.with_node(node, state.tokens.clone());
                    held = ring.tokens_by_node();
                }
                MemberStatus::Left | MemberStatus::Removed if ring.contains_node(node) => {
                    ring = ring.without_node(node);
                    held = ring.tokens_by_node();
                }
                _ => {}
            }
        }
        if ring != self.ring {
            let nodes = ring.nodes().len();
            let old = std::mem::replace(&mut self.ring, ring.clone());
            if let Some(now) = now {
                self.hand_over_lost_ranges(now, &old, &ring);
            }
            self.event(NodeEvent::RingChanged { nodes });
        }
    }
}
