//! The merge: every connected node's view of the cluster into one [`ViewModel`], the same one
//! the simulator fills, so the renderer cannot tell them apart.
//!
//! - **Nodes**: every id any node has named (left and removed members apart), sorted.
//! - **A node's own state** (lifecycle, storage, hints, skew, requests in flight) comes from
//!   its own socket while that is fresh ([`Conn::fresh`]). A node whose socket closed or went
//!   silent is [`Status::Down`] (unreachable from the page), whatever the others still think;
//!   its last known storage stays on show. Before the page has heard from a node, its status is
//!   what the others' membership says (joining, leaving, left), or down once it had time to
//!   answer.
//! - **What the others think of it** ([`Seen`], the node panel's opinions): one verdict and φ
//!   per fresh observer, from the observer's own membership. Nothing is averaged away: the
//!   consensus shows the worst credible verdict (`doubted` as soon as one peer suspects it),
//!   and `phi_max` is the highest φ any observer has.
//! - **The ring**: the one most fresh nodes route by; on a tie (a ring change spreading) the one
//!   with more tokens, which has seen the newer membership. N, W and R come from a node that
//!   routes by it.
//! - **Cut links**: a node that cuts a peer drops traffic both ways, so both directions show.

use super::{Conn, Live, STALE_MS};
use crate::page::NodeDetail;
use crate::view::sim_source::storage_view;
use crate::view::{Followed, NodeView, Opinion, Seen, Status, ViewModel};
use ringstore_core::membership::MemberStatus;
use ringstore_core::node::Lifecycle;
use ringstore_core::ui::RingToken;

impl Live {
    /// The fresh connections with their node ids, one per node.
    fn observers(&self, real_ms: f64) -> Vec<(u32, &Conn)> {
        let mut out: Vec<(u32, &Conn)> = Vec::new();
        for c in self.conns.values() {
            if c.duplicate || !c.fresh(real_ms) {
                continue;
            }
            if let Some(id) = c.node()
                && !out.iter().any(|(o, _)| *o == id)
            {
                out.push((id, c));
            }
        }
        out
    }

    /// The node ids to draw: every member anyone names that has not been removed.
    pub fn node_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.known.keys().copied().collect();
        ids.retain(|id| {
            let removed = self
                .conns
                .values()
                .filter_map(|c| c.state.as_ref())
                .any(|s| {
                    s.members
                        .iter()
                        .any(|m| m.id.0 == *id && m.status == MemberStatus::Removed)
                });
            !removed
        });
        ids
    }

    /// What every fresh observer other than `id` thinks of it.
    pub fn opinions(&self, id: u32, real_ms: f64) -> Vec<Opinion> {
        self.observers(real_ms)
            .into_iter()
            .filter(|(o, _)| *o != id)
            .filter_map(|(o, c)| {
                let m = c.state.as_ref()?.members.iter().find(|m| m.id.0 == id)?;
                Some(Opinion {
                    observer: o,
                    verdict: m.verdict.name(),
                    phi: m.phi,
                })
            })
            .collect()
    }

    /// Node `id`'s status as the page can tell it.
    pub fn status(&self, id: u32, real_ms: f64) -> Status {
        if let Some(c) = self.conn_of(id) {
            if c.fresh(real_ms) {
                return match c.state.as_ref().map(|s| &s.lifecycle) {
                    Some(Lifecycle::Joining) => Status::Joining,
                    Some(Lifecycle::Leaving) => Status::Leaving,
                    Some(Lifecycle::Left) => Status::Left,
                    _ => Status::Up,
                };
            }
            if c.hello.is_some() {
                return Status::Down;
            }
        }
        // Never heard from it: what the others say, until it had time to answer.
        let said = self
            .observers(real_ms)
            .into_iter()
            .filter_map(|(_, c)| c.state.as_ref()?.members.iter().find(|m| m.id.0 == id))
            .map(|m| m.status)
            .next();
        let waited = self
            .conns
            .values()
            .find(|c| self.known.get(&id) == Some(&c.address))
            .is_none_or(|c| real_ms - c.opened_ms > STALE_MS || c.error.is_some());
        match said {
            Some(MemberStatus::Left | MemberStatus::Removed) => Status::Left,
            _ if waited => Status::Down,
            Some(MemberStatus::Leaving) => Status::Leaving,
            Some(MemberStatus::Joining) => Status::Joining,
            _ => Status::Up,
        }
    }

    /// The ring most fresh nodes route by (see the module docs), with the node it came from.
    pub fn ring(&self, real_ms: f64) -> Option<(&[RingToken], &Conn)> {
        let obs = self.observers(real_ms);
        let mut best: Option<(usize, &Conn)> = None;
        for (_, c) in &obs {
            if c.ring.is_empty() {
                continue;
            }
            let votes = obs.iter().filter(|(_, o)| o.ring == c.ring).count();
            let better = match best {
                None => true,
                Some((v, b)) => votes > v || (votes == v && c.ring.len() > b.ring.len()),
            };
            if better {
                best = Some((votes, c));
            }
        }
        if best.is_none() {
            // Nobody fresh: the last ring any node sent, so the picture keeps its shape.
            best = self
                .conns
                .values()
                .filter(|c| !c.ring.is_empty())
                .max_by(|a, b| a.last_frame_ms.total_cmp(&b.last_frame_ms))
                .map(|c| (0, c));
        }
        best.map(|(_, c)| (c.ring.as_slice(), c))
    }

    /// Fills `model` for real time `real_ms`: the whole merge, the dots and animations due.
    pub fn fill(&mut self, model: &mut ViewModel, real_ms: f64) {
        self.check_reachability(real_ms);
        self.expire_commands(real_ms);
        let now = real_ms - super::PLAYBACK_MS;
        model.now_ms = now;
        model.messages.clear();
        let dots: Vec<_> = self.dots_at(now).copied().collect();
        let skip = dots.len().saturating_sub(crate::view::MESSAGES_MAX);
        model.messages.extend(dots.into_iter().skip(skip));
        for e in self.due_effects(now, real_ms) {
            model.push_effect(e);
        }
        model.expire_effects(real_ms);
        // The merge costs nodes × observers × members: a few times a second is enough (a
        // closed socket or a reply asks for it at once).
        if self.dirty_now(real_ms) || model.nodes.is_empty() {
            self.merge_into(model, real_ms);
            self.last_merge_ms = real_ms;
            self.dirty = false;
        }
    }

    fn dirty_now(&self, real_ms: f64) -> bool {
        self.dirty || real_ms - self.last_merge_ms >= super::MERGE_MS
    }

    /// The slower part of [`Live::fill`]: nodes, ring, quorums, cut links, the followed op.
    pub fn merge_into(&self, model: &mut ViewModel, real_ms: f64) {
        model.gossip = true;
        let ring = self.ring(real_ms);
        if let Some((tokens, from)) = ring {
            model.ring = tokens.iter().map(|(t, n)| (*t, n.0)).collect();
            // The time shown, on that node's clock (its skew included).
            let shown_us = (model.now_ms - from.offset_ms).max(0.0) * 1000.0;
            model.clock = Some(format!(
                "{} UTC",
                &super::commands::time_of_day(shown_us as u64)[..10]
            ));
            if let Some(s) = &from.state {
                model.n = s.n as usize;
                model.w = s.w as usize;
                model.r = s.r as usize;
            }
        } else {
            model.ring.clear();
        }
        let ids = self.node_ids();
        model.nodes = ids
            .iter()
            .map(|&id| {
                let mut seen = Seen::default();
                for o in self.opinions(id, real_ms) {
                    match o.verdict {
                        "alive" => seen.alive += 1,
                        "suspect" => seen.suspect += 1,
                        _ => seen.dead += 1,
                    }
                    if let Some(phi) = o.phi {
                        seen.phi_max = Some(seen.phi_max.map_or(phi, |m: f64| m.max(phi)));
                    }
                }
                let state = self.conn_of(id).and_then(|c| c.state.as_ref());
                NodeView {
                    id,
                    status: self.status(id, real_ms),
                    seen,
                    storage: state.map(|s| storage_view(&s.data)),
                    hints: state.map_or(0, |s| s.hints_held.iter().map(|(_, c)| c).sum()),
                    skew_ms: state.map_or(0, |s| s.skew_ms),
                    coordinating: state.map_or(0, |s| s.in_flight as usize),
                }
            })
            .collect();
        let mut cut = Vec::new();
        for (o, c) in self.observers(real_ms) {
            let Some(s) = &c.state else { continue };
            for m in s.members.iter().filter(|m| m.partitioned) {
                cut.push((o, m.id.0));
                cut.push((m.id.0, o));
            }
        }
        cut.sort_unstable();
        cut.dedup();
        model.cut = cut;
        model.followed = self.follow.and_then(|op| self.followed(op, model));
    }

    /// The followed client operation: its coordinator, its key's preference list on the
    /// merged ring, its outcome and its steps as the page saw them (a live node does not send
    /// a request's internal trace; its protocol events are in the log).
    fn followed(&self, op: u64, model: &ViewModel) -> Option<Followed> {
        let r = self.ops.iter().find(|r| r.op == op)?;
        let token = ringstore_core::ring::key_token(r.key.as_bytes()).0;
        let t0 = r.sent_ms - super::PLAYBACK_MS;
        let mut steps = vec![(
            t0.max(0.0) as u64,
            format!("page -> n{} {} {}", r.node, r.kind, r.key),
        )];
        if let Some((t, text)) = &r.result {
            steps.push((*t as u64, format!("n{} -> page {text}", r.node)));
        }
        Some(Followed {
            op,
            kind: r.kind.to_string(),
            key: r.key.clone(),
            coordinator: r.node,
            preference: model.preference_list(token),
            result: r.result.as_ref().map(|(_, t)| t.clone()),
            steps,
            ..Followed::default()
        })
    }

    /// Node `id` in detail, for its panel (the simulator's shape).
    pub fn node_detail(&self, id: u32, real_ms: f64) -> NodeDetail {
        let state = self.conn_of(id).and_then(|c| c.state.as_ref());
        let tokens = self
            .ring(real_ms)
            .map(|(ring, _)| {
                ring.iter()
                    .filter(|(_, n)| n.0 == id)
                    .map(|(t, _)| format!("{:04x}…", t >> 48))
                    .collect()
            })
            .unwrap_or_default();
        NodeDetail {
            id,
            up: self.status(id, real_ms) == Status::Up,
            skew_ms: state.map_or(0, |s| s.skew_ms),
            opinions: self.opinions(id, real_ms),
            data: state.map(|s| s.data.clone()),
            hints_store: state.map(|s| s.hints.clone()),
            hints: state
                .map(|s| s.hints_held.iter().map(|(o, c)| (o.0, *c)).collect())
                .unwrap_or_default(),
            tokens,
        }
    }
}
