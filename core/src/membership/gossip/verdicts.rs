//! Verdicts: what this node concludes about each member from the phi-accrual detector and the
//! member's gossiped status (Alive, Suspect, Dead, Left), the events a change logs, and which
//! members a caller must look at again ([`Gossiper::up_changes`]).

use super::super::{GossipEvent, MemberState, MemberStatus, PhiDetector, Verdict};
use super::Gossiper;
use crate::{Millis, NodeId};
use std::collections::{BTreeMap, BTreeSet};

impl Gossiper {
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
    pub(super) fn with_windows(
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
    pub(super) fn verdict_of(
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

    /// Recomputes every member's verdict at `now` and logs the changes, in one walk of the
    /// members, the detector's windows and the recorded verdicts (a round does this).
    pub(super) fn update_all_verdicts(&mut self, now: Millis) {
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
    pub(super) fn set_verdict(&mut self, now: Millis, node: NodeId, new: Option<Verdict>) {
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
}
