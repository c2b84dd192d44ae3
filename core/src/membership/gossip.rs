//! Gossip membership: a Scuttlebutt-style anti-entropy of member states, as in Cassandra and
//! chitchat, with a phi-accrual detector turning heartbeats into local verdicts.
//!
//! Every gossip interval a node bumps its own heartbeat and opens a three-message exchange
//! with a few peers chosen by the pure function [`choose_peers`] (see [`GossipMsg`] for the
//! exchange). Each exchange leaves both sides with the newer of their two copies of every
//! member's state, so news spreads like an epidemic: in O(log N) rounds in expectation. A node
//! feeds its [`PhiDetector`] whenever a newer heartbeat of a member reaches it, first- or
//! second-hand, and derives the member's [`Verdict`] from φ. What this guarantees, and what
//! it does not, is in `docs/ALGORITHM.md`.
//!
//! The [`Gossiper`] is sans-IO like the rest of the core: time is passed in, randomness is an
//! injected `DetRng`, messages to send are returned, and events wait in a bounded queue for
//! [`Gossiper::drain_events`].

use super::{
    AppState, Delta, Digest, GossipConfig, GossipError, GossipEvent, GossipMsg, MemberState,
    MemberStatus, PhiDetector, Verdict,
};
use crate::DetRng;
use crate::ring::Token;
use crate::{Millis, NodeId};
use rand::Rng;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Chooses the peers to gossip with this round (pure: the same inputs and RNG state give the
/// same answer).
///
/// - Up to `fanout` distinct members of `live`, uniformly at random.
/// - Then, with probability `|unreachable| / (|live| + 1)`, one member of `unreachable`
///   (suspected or dead): without it a node that recovers, or the other side of a healed
///   partition, would only be found again by chance through a third party. Cassandra uses the
///   same probability.
/// - Then, if no seed was chosen, one seed: always when no live peer is known (that is how a
///   new node joins, and how an isolated node keeps retrying), otherwise with probability
///   `|seeds| / (|live| + |unreachable|)` (Cassandra's rule), so seeds stay well informed and
///   a cluster split into islands that each lost every live link still meets at the seeds.
///
/// `me` is never chosen. Inputs are sorted and deduplicated first, so their order does not
/// matter. At most `fanout + 2` peers are returned, in the order they were chosen.
pub fn choose_peers(
    live: &[NodeId],
    unreachable: &[NodeId],
    seeds: &[NodeId],
    me: NodeId,
    fanout: usize,
    rng: &mut DetRng,
) -> Vec<NodeId> {
    let clean = |nodes: &[NodeId]| -> Vec<NodeId> {
        // Callers nearly always pass sorted lists (a node asks every round): then filtering
        // `me` out is the whole cleaning, without building a set.
        if nodes.windows(2).all(|p| p[0] < p[1]) {
            return nodes.iter().copied().filter(|&n| n != me).collect();
        }
        let set: BTreeSet<NodeId> = nodes.iter().copied().filter(|&n| n != me).collect();
        set.into_iter().collect()
    };
    let mut live = clean(live);
    let unreachable = clean(unreachable);
    let seeds = clean(seeds);
    let live_count = live.len();

    // Partial Fisher–Yates: the first `take` entries become a uniform sample.
    let take = fanout.min(live.len());
    for i in 0..take {
        let j = rng.random_range(i..live.len());
        live.swap(i, j);
    }
    let mut chosen: Vec<NodeId> = live[..take].to_vec();

    if !unreachable.is_empty() && rng.random_range(0..=live_count) < unreachable.len() {
        let pick = unreachable[rng.random_range(0..unreachable.len())];
        if !chosen.contains(&pick) {
            chosen.push(pick);
        }
    }

    let seed_chosen = chosen.iter().any(|n| seeds.binary_search(n).is_ok());
    if !seeds.is_empty() && !seed_chosen {
        let known = live_count + unreachable.len();
        let go = live_count == 0 || rng.random_range(0..known) < seeds.len();
        if go {
            let pick = seeds[rng.random_range(0..seeds.len())];
            if !chosen.contains(&pick) {
                chosen.push(pick);
            }
        }
    }
    chosen
}

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

    /// φ of `node` at `now` (`None` for this node, removed or left members, and strangers).
    pub fn phi(&self, node: NodeId, now: Millis) -> Option<f64> {
        self.detector.phi(node, now)
    }

    /// φ of every member tracked by the detector at `now`, for the UI.
    pub fn phis(&self, now: Millis) -> BTreeMap<NodeId, f64> {
        self.detector.snapshot(now)
    }

    /// The failure detector, for inspection.
    pub fn detector(&self) -> &PhiDetector {
        &self.detector
    }

    /// This node's verdict on every member at `now`: its self-reported status combined with
    /// φ. This node is Alive (Left once it left); removed members are absent.
    pub fn live_view(&self, now: Millis) -> BTreeMap<NodeId, Verdict> {
        self.members
            .keys()
            .filter_map(|&n| self.verdict(n, now).map(|v| (n, v)))
            .collect()
    }

    /// A counter that changes whenever the members' statuses or tokens may have changed (a
    /// member joined, restarted, was removed, or gossiped new application state; this node's
    /// status changed). While it stays the same, the ring built from [`Gossiper::members`]
    /// stays the same: a node checks it after every gossip message instead of comparing every
    /// member's tokens. It only grows, and only this gossiper's values are comparable.
    pub fn ring_epoch(&self) -> u64 {
        self.ring_epoch
    }

    /// This node's verdict on `node` at `now` (`None` if unknown or removed).
    pub fn verdict(&self, node: NodeId, now: Millis) -> Option<Verdict> {
        let state = self.members.get(&node)?;
        self.verdict_of(node, state, self.detector.window(node), now)
    }

    /// [`Gossiper::verdict`] of every member at `now`, in node order (removed members are
    /// left out). Walks the members and the detector's windows side by side: the same answers
    /// as asking for each member, without two map lookups per member, which matters because a
    /// node asks after every gossip message.
    pub fn verdicts(&self, now: Millis) -> impl Iterator<Item = (NodeId, Verdict)> + '_ {
        self.with_windows()
            .filter_map(move |(node, state, window)| {
                self.verdict_of(node, state, window, now).map(|v| (node, v))
            })
    }

    /// Every member with its arrival window (if the detector tracks it), in node order: the
    /// members and the detector's windows walked side by side.
    fn with_windows(
        &self,
    ) -> impl Iterator<
        Item = (
            NodeId,
            &MemberState,
            Option<&crate::membership::phi::ArrivalWindow>,
        ),
    > + '_ {
        let mut windows = self.detector.windows().peekable();
        self.members.iter().map(move |(&node, state)| {
            while windows.peek().is_some_and(|(n, _)| **n < node) {
                windows.next();
            }
            let window = windows.peek().filter(|(n, _)| **n == node).map(|(_, w)| *w);
            (node, state, window)
        })
    }

    /// The verdicts (as [`Gossiper::verdicts`] gives them at `now`) of every member, this node
    /// excluded, whose verdict may have turned from Alive to something else or back since the
    /// last call; in node order. Every member on the first call, when `all` is set, when `now`
    /// is earlier than at the last call, or once a member seen Alive may have become suspect
    /// by silence alone (the earliest such millisecond is kept); otherwise only the members
    /// that deltas or removals touched since, usually a handful. A verdict leaves Alive
    /// without any input only by silence, and returns to Alive only with a heartbeat (an
    /// input), so a caller that acts on the answers (a node keeping its set of peers it
    /// believes down) learns every change at the same moment as by asking [`verdicts`] after
    /// every message, at a fraction of the cost.
    ///
    /// [`verdicts`]: Gossiper::verdicts
    pub fn up_changes(&mut self, now: Millis, all: bool) -> Vec<(NodeId, Verdict)> {
        let me = self.me;
        let mut touched = std::mem::take(&mut self.touched);
        let full = all
            || self
                .up_scan
                .is_none_or(|(last, due)| now < last || now >= due);
        let mut due = Millis(u64::MAX);
        let mut out = Vec::new();
        if full {
            let mut not_up = BTreeSet::new();
            for (node, state, window) in self.with_windows() {
                if node == me {
                    continue;
                }
                let verdict = self.verdict_of(node, state, window, now);
                if verdict != Some(Verdict::Alive) {
                    not_up.insert(node);
                }
                if let Some(v) = verdict {
                    if v == Verdict::Alive
                        && let Some(w) = window
                    {
                        due = due.min(self.detector.window_suspect_not_before(w));
                    }
                    out.push((node, v));
                }
            }
            self.not_up = not_up;
        } else {
            due = self.up_scan.map_or(due, |(_, due)| due);
            touched.sort_unstable();
            touched.dedup();
            for &node in &touched {
                let Some(state) = self.members.get(&node) else {
                    continue;
                };
                let window = self.detector.window(node);
                let verdict = self.verdict_of(node, state, window, now);
                if verdict == Some(Verdict::Alive) {
                    self.not_up.remove(&node);
                } else {
                    self.not_up.insert(node);
                }
                if let Some(v) = verdict {
                    if v == Verdict::Alive
                        && let Some(w) = window
                    {
                        due = due.min(self.detector.window_suspect_not_before(w));
                    }
                    out.push((node, v));
                }
            }
        }
        touched.clear();
        self.touched = touched;
        self.up_scan = Some((now, due));
        out
    }

    /// The verdict on `node`, whose state is `state` and arrival window `window`.
    fn verdict_of(
        &self,
        node: NodeId,
        state: &MemberState,
        window: Option<&crate::membership::phi::ArrivalWindow>,
        now: Millis,
    ) -> Option<Verdict> {
        match state.status {
            MemberStatus::Removed => return None,
            MemberStatus::Left => return Some(Verdict::Left),
            _ => {}
        }
        if node == self.me || !window.is_some_and(|w| self.detector.window_suspect(w, now)) {
            return Some(Verdict::Alive);
        }
        let since = self.detector.suspect_since(node).unwrap_or(now);
        if now.saturating_sub(since).0 > self.config.dead_after_ms {
            Some(Verdict::Dead)
        } else {
            Some(Verdict::Suspect)
        }
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
    fn digests(&self) -> Vec<Digest> {
        self.members.iter().map(|(&n, s)| s.digest(n)).collect()
    }

    /// The deltas the sender of `digests` lacks, and the requests for what it has newer.
    ///
    /// The digests of a well-formed Syn are in node order (see [`Gossiper::tick`]): then they
    /// are walked side by side with the members, no map built; otherwise they are first put in
    /// node order (a repeated node: the last digest counts).
    fn answer_syn(&mut self, digests: &[Digest]) -> (Vec<Delta>, Vec<Digest>) {
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
    fn deltas_for(&mut self, wanted: &[(NodeId, Option<Digest>)]) -> Vec<Delta> {
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
    fn deltas_behind(&mut self, mut behind: Vec<(u64, NodeId, bool)>) -> Vec<Delta> {
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

    fn apply_deltas(&mut self, now: Millis, deltas: Vec<Delta>) {
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
    fn apply(&mut self, now: Millis, delta: Delta) -> bool {
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
    fn after_status(
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
    fn maybe_refute(&mut self, delta: &Delta) {
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

    /// Recomputes every member's verdict at `now` and logs the changes, in one walk of the
    /// members, the detector's windows and the recorded verdicts (a round does this).
    fn update_all_verdicts(&mut self, now: Millis) {
        let me = self.me;
        // The recorded verdicts are walked alongside: only members whose verdict differs
        // from the recorded one (or that are removed) are recorded again.
        let mut recorded = self.verdicts.iter().peekable();
        let mut fresh: Vec<(NodeId, Option<Verdict>)> = Vec::new();
        for (node, state, window) in self.with_windows() {
            if node == me {
                continue;
            }
            while recorded.next_if(|(n, _)| **n < node).is_some() {}
            let old = recorded.next_if(|(n, _)| **n == node).map(|(_, v)| *v);
            let verdict = self.verdict_of(node, state, window, now);
            if verdict.is_none() || verdict != old {
                fresh.push((node, verdict));
            }
        }
        for (node, verdict) in fresh {
            self.set_verdict(now, node, verdict);
        }
    }

    /// Records `node`'s verdict `new` at `now` (`None`: removed) and logs a change.
    fn set_verdict(&mut self, now: Millis, node: NodeId, new: Option<Verdict>) {
        let Some(new) = new else {
            self.verdicts.remove(&node);
            return;
        };
        let old = self.verdicts.insert(node, new);
        let event = match (old, new) {
            (Some(Verdict::Suspect | Verdict::Dead), Verdict::Alive) => {
                Some(GossipEvent::PeerUp { node })
            }
            (Some(Verdict::Alive) | None, Verdict::Suspect) => Some(GossipEvent::PeerSuspect {
                node,
                phi: self.detector.phi(node, now).unwrap_or(0.0),
            }),
            (Some(Verdict::Alive | Verdict::Suspect) | None, Verdict::Dead) => {
                Some(GossipEvent::PeerDown { node })
            }
            _ => None,
        };
        if let Some(e) = event {
            self.push_event(e);
        }
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
