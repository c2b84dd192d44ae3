//! Gossip membership: a Scuttlebutt-style anti-entropy of member states, as in Cassandra and
//! chitchat, with a phi-accrual detector turning heartbeats into local verdicts.
//!
//! Every gossip interval a node bumps its own heartbeat and opens a three-message exchange
//! with a few peers chosen by the pure function [`choose_peers`] (see [`GossipMsg`](super::GossipMsg) for the
//! exchange). Each exchange leaves both sides with the newer of their two copies of every
//! member's state, so news spreads like an epidemic: in O(log N) rounds in expectation. A node
//! feeds its [`PhiDetector`] whenever a newer heartbeat of a member reaches it, first- or
//! second-hand, and derives the member's [`Verdict`] from φ. What this guarantees, and what
//! it does not, is in `docs/ALGORITHM.md`.
//!
//! The [`Gossiper`] is sans-IO like the rest of the core: time is passed in, randomness is an
//! injected `DetRng`, messages to send are returned, and events wait in a bounded queue for
//! [`Gossiper::drain_events`].
//!
//! The gossiper is split along its seams: this file holds its state, construction, getters
//! and commands (status, removal, seeds, events); `gossip/peers.rs` the peer choice,
//! `gossip/exchange.rs` the digest exchange and applying deltas, `gossip/verdicts.rs` the
//! verdicts and which members changed.

use super::{
    AppState, Delta, GossipConfig, GossipError, GossipEvent, MemberState, MemberStatus,
    PhiDetector, Verdict,
};
use crate::ring::Token;
use crate::{Millis, NodeId};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

mod exchange;
mod peers;
mod verdicts;

pub use peers::choose_peers;

/// Counters of what the gossiper ignored or postponed, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GossipStats {
    /// Deltas ignored: older than what is known, over a bound, or missing the application
    /// state for a member not known here.
    pub deltas_ignored: u64,
    /// New members ignored because `members_max` members are already known.
    pub members_refused: u64,
    /// Deltas left out of a message by `max_deltas_bytes` (sent in a later round).
    pub deltas_deferred: u64,
}

/// One node's gossip membership state machine.
#[derive(Clone, Debug)]
pub struct Gossiper {
    me: NodeId,
    config: GossipConfig,
    /// Sorted, without `me`.
    seeds: Vec<NodeId>,
    /// Every member known, this node included; at most `members_max`.
    members: BTreeMap<NodeId, MemberState>,
    detector: PhiDetector,
    /// The last verdict reported per member (not this node), to turn changes into events.
    verdicts: BTreeMap<NodeId, Verdict>,
    events: VecDeque<GossipEvent>,
    events_dropped: u64,
    last_tick: Option<Millis>,
    stats: GossipStats,
    /// Bumped whenever a member is added or its status or tokens may have changed: what the
    /// ring is built from (see [`Gossiper::ring_epoch`]).
    ring_epoch: u64,
    /// Members (not this node) whose state or arrival window a delta or a removal may have
    /// changed since the last [`Gossiper::up_changes`]; unsorted, with repeats.
    touched: Vec<NodeId>,
    /// The last [`Gossiper::up_changes`]: when it ran, and the first millisecond at which a
    /// member it saw Alive, untouched since, can turn Suspect by silence alone.
    up_scan: Option<(Millis, Millis)>,
    /// The members (not this node) whose verdict was not Alive when
    /// [`Gossiper::up_changes`] last looked at them.
    not_up: BTreeSet<NodeId>,
    /// Counts the deltas after which [`Gossiper::apply`] knew the member Alive.
    heard_alive: u64,
}

impl Gossiper {
    /// A node `me` starting with `generation` (larger than at any earlier start: the start
    /// time in ms works), reachable at `address`, owning `tokens`, that knows only `seeds`.
    /// It starts as [`MemberStatus::Joining`]; call [`Gossiper::set_status`] with `Alive` once
    /// it serves its ranges (at once for a node restarting with its data).
    pub fn new(
        me: NodeId,
        generation: u64,
        address: String,
        tokens: Vec<Token>,
        seeds: Vec<NodeId>,
        config: GossipConfig,
    ) -> Result<Gossiper, GossipError> {
        let largest_delta = Delta {
            node: me,
            generation,
            heartbeat: 0,
            version: 0,
            app: Some(AppState {
                app_version: 0,
                status: MemberStatus::Joining,
                tokens: vec![Token(0); config.tokens_max],
                address: "a".repeat(config.address_bytes_max),
            }),
        }
        .bytes_max();
        if config.gossip_interval_ms == 0 || config.members_max == 0 || config.events_max == 0 {
            return Err(GossipError::BadConfig(
                "gossip_interval_ms, members_max and events_max must be positive".into(),
            ));
        }
        if config.max_deltas_bytes < largest_delta {
            return Err(GossipError::BadConfig(format!(
                "max_deltas_bytes {} cannot hold one member with {} tokens ({largest_delta} bytes)",
                config.max_deltas_bytes, config.tokens_max
            )));
        }
        check_app(&config, &address, &tokens)?;
        let tokens = sorted(tokens);
        let mut seeds: Vec<NodeId> = seeds.into_iter().filter(|&s| s != me).collect();
        seeds.sort_unstable();
        seeds.dedup();
        seeds.truncate(config.members_max);
        let mut members = BTreeMap::new();
        members.insert(
            me,
            MemberState {
                generation,
                heartbeat: 0,
                version: 1,
                app_version: 1,
                status: MemberStatus::Joining,
                tokens,
                address,
            },
        );
        Ok(Gossiper {
            me,
            detector: PhiDetector::new(config.phi.clone()),
            config,
            seeds,
            members,
            verdicts: BTreeMap::new(),
            ring_epoch: 0,
            touched: Vec::new(),
            up_scan: None,
            not_up: BTreeSet::new(),
            heard_alive: 0,
            events: VecDeque::new(),
            events_dropped: 0,
            last_tick: None,
            stats: GossipStats::default(),
        })
    }

    // ----- getters -----

    /// This node.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// This node's current generation (it grows if it had to refute a removal).
    pub fn generation(&self) -> u64 {
        self.own().map_or(0, |s| s.generation)
    }

    /// Every member known, this node included, with what it last said about itself. Removed
    /// members stay (as tombstones, so stale gossip cannot bring them back).
    pub fn members(&self) -> &BTreeMap<NodeId, MemberState> {
        &self.members
    }

    /// The settings.
    pub fn config(&self) -> &GossipConfig {
        &self.config
    }

    /// The seeds, without this node.
    pub fn seeds(&self) -> &[NodeId] {
        &self.seeds
    }

    /// What was ignored or postponed so far.
    pub fn stats(&self) -> GossipStats {
        self.stats
    }

    /// When the next [`Gossiper::tick`] is due (now, if it never ticked).
    pub fn next_tick_at(&self) -> Millis {
        self.last_tick.map_or(Millis(0), |t| {
            Millis(t.0.saturating_add(self.config.gossip_interval_ms))
        })
    }

    // ----- commands -----

    /// Changes this node's own status: Joining → Alive → Leaving → Left (steps may be skipped,
    /// never reversed; Removed is only set by [`Gossiper::remove`]). Gossiped from the next
    /// round.
    pub fn set_status(&mut self, status: MemberStatus) -> Result<(), GossipError> {
        use MemberStatus::*;
        let me = self.me;
        // This node's own state is always present: `remove` and `apply` never touch it.
        let own = self
            .members
            .get_mut(&me)
            .ok_or_else(|| GossipError::BadConfig("this node's own state is missing".into()))?;
        let from = own.status;
        let allowed = from == status
            || matches!(
                (from, status),
                (Joining, Alive | Leaving | Left) | (Alive, Leaving | Left) | (Leaving, Left)
            );
        if !allowed {
            return Err(GossipError::BadTransition { from, to: status });
        }
        if from != status {
            own.version = own.version.saturating_add(1);
            own.app_version = own.version;
            own.status = status;
            self.ring_epoch += 1;
        }
        Ok(())
    }

    /// An operator removes `node`, a dead member that will not come back: it is marked
    /// Removed, with no tokens, under its generation + 1 so the removal replaces what every
    /// other node knows. A node that is in fact alive refutes it (see
    /// [`GossipEvent::Refuted`]); a node that restarts later with a larger generation comes
    /// back as a new member.
    pub fn remove(&mut self, node: NodeId) -> Result<(), GossipError> {
        if node == self.me {
            return Err(GossipError::CannotRemove(node));
        }
        let state = self
            .members
            .get_mut(&node)
            .ok_or(GossipError::CannotRemove(node))?;
        if state.status == MemberStatus::Removed {
            return Ok(());
        }
        *state = MemberState {
            generation: state.generation.saturating_add(1),
            heartbeat: 0,
            version: 1,
            app_version: 1,
            status: MemberStatus::Removed,
            tokens: Vec::new(),
            address: state.address.clone(),
        };
        self.ring_epoch += 1;
        self.detector.remove(node);
        self.verdicts.remove(&node);
        self.touch(node);
        self.push_event(GossipEvent::PeerRemoved { node });
        Ok(())
    }

    /// Members an operator removed, with the generation of the removal: what a restarting
    /// node remembers (see [`Gossiper::remember_removed`]) so a removal it took survives a
    /// crash before it had spread.
    pub fn removed(&self) -> Vec<(NodeId, u64)> {
        self.members
            .iter()
            .filter(|(_, s)| s.status == MemberStatus::Removed)
            .map(|(n, s)| (*n, s.generation))
            .collect()
    }

    /// At start: `node` was removed under `generation` (from [`Gossiper::removed`] before a
    /// restart). The tombstone is kept and gossiped as a removal made here would be, so peers
    /// that never heard of the removal learn it; a member already known under a newer
    /// generation (it came back as a new member) is left alone. Returns whether it was kept.
    pub fn remember_removed(&mut self, node: NodeId, generation: u64) -> bool {
        if node == self.me || generation == 0 {
            return false;
        }
        if let Some(state) = self.members.get(&node) {
            if state.generation >= generation {
                return false;
            }
        } else if self.members.len() >= self.config.members_max {
            self.stats.members_refused += 1;
            return false;
        }
        self.members.insert(
            node,
            MemberState {
                generation,
                heartbeat: 0,
                version: 1,
                app_version: 1,
                status: MemberStatus::Removed,
                tokens: Vec::new(),
                address: String::new(),
            },
        );
        self.ring_epoch += 1;
        self.detector.remove(node);
        self.verdicts.remove(&node);
        self.touch(node);
        true
    }

    /// Adds a seed learned after the start (a driver that knows seeds by address learns their
    /// ids when it first reaches them). Returns whether it was new. This node, and seeds past
    /// `members_max`, are not added.
    pub fn add_seed(&mut self, node: NodeId) -> bool {
        if node == self.me || self.seeds.len() >= self.config.members_max {
            return false;
        }
        match self.seeds.binary_search(&node) {
            Ok(_) => false,
            Err(at) => {
                self.seeds.insert(at, node);
                true
            }
        }
    }

    /// Takes the events that happened since the last call, oldest first.
    pub fn drain_events(&mut self) -> Vec<GossipEvent> {
        let mut out = Vec::with_capacity(self.events.len() + 1);
        if self.events_dropped > 0 {
            out.push(GossipEvent::EventsDropped {
                count: self.events_dropped,
            });
            self.events_dropped = 0;
        }
        out.extend(self.events.drain(..));
        out
    }

    /// Notes that `node`'s state or window may have changed (see [`Gossiper::up_changes`]).
    /// Bounded: past a few entries per member, the next call scans everyone instead.
    fn touch(&mut self, node: NodeId) {
        if self.touched.len() >= 4 * self.config.members_max.max(16) {
            self.touched.clear();
            self.up_scan = None;
        }
        self.touched.push(node);
    }

    fn push_event(&mut self, event: GossipEvent) {
        if self.events.len() >= self.config.events_max {
            self.events.pop_front();
            self.events_dropped += 1;
        }
        self.events.push_back(event);
    }

    fn own(&self) -> Option<&MemberState> {
        self.members.get(&self.me)
    }
}

/// Whether a member with this status is expected to heartbeat.
fn is_active(status: MemberStatus) -> bool {
    !matches!(status, MemberStatus::Left | MemberStatus::Removed)
}

fn sorted(mut tokens: Vec<Token>) -> Vec<Token> {
    tokens.sort_unstable();
    tokens.dedup();
    tokens
}

fn new_state(generation: u64, heartbeat: u64, version: u64, app: AppState) -> MemberState {
    MemberState {
        generation,
        heartbeat,
        version,
        app_version: app.app_version,
        status: app.status,
        tokens: sorted(app.tokens),
        address: app.address,
    }
}

fn check_app(config: &GossipConfig, address: &str, tokens: &[Token]) -> Result<(), GossipError> {
    if address.len() > config.address_bytes_max {
        return Err(GossipError::AddressTooLong {
            len: address.len(),
            max: config.address_bytes_max,
        });
    }
    if tokens.len() > config.tokens_max {
        return Err(GossipError::TooManyTokens {
            count: tokens.len(),
            max: config.tokens_max,
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "gossip_tests.rs"]
mod tests;
