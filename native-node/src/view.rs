//! [`NodeView`]: a snapshot of what one node knows, built by the node task on request. It is
//! what `GET /cluster` answers, what `ringstore status` prints, what the demo waits on, and
//! what the UI socket builds its snapshots and updates from ([`crate::ui_socket`]): members
//! with their state and phi, the ring, N/W/R, hints, repair progress and traffic per peer.

use crate::feed::Traffic;
use ringstore_core::membership::{MemberStatus, Verdict};
use ringstore_core::node::{AntiEntropyStats, Lifecycle, Node};
use ringstore_core::{Millis, NodeId};
use serde::{Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};

/// One member as this node sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MemberView {
    /// The member.
    pub id: NodeId,
    /// Where it is reached.
    pub address: String,
    /// This node's verdict (`alive` for itself); in JSON `state`: `alive`, `suspect`, `dead`
    /// or `left`.
    #[serde(rename = "state", serialize_with = "verdict_name")]
    pub verdict: Verdict,
    /// What the member says it is doing; in JSON `joining`, `alive`, `leaving`, `left`,
    /// `removed`.
    #[serde(serialize_with = "status_name")]
    pub status: MemberStatus,
    /// φ of the member's heartbeats (none for this node and members never heard from).
    pub phi: Option<f64>,
    /// Whether the member is in this node's ring.
    pub in_ring: bool,
    /// Its tokens in the ring.
    pub tokens: u32,
    /// Share of the ring it owns as first replica.
    pub primary_share: f64,
    /// Share of the keys it stores at N replicas.
    pub replica_share: f64,
    /// Whether traffic to and from it is cut by fault injection here.
    pub partitioned: bool,
}

/// One ring token.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TokenView {
    /// The token, in decimal (a JSON number would lose precision past 2^53).
    pub token: String,
    /// Its position on the ring, in [0, 1).
    pub position: f64,
    /// The node holding it.
    pub node: NodeId,
    /// `token`, as a number (for the UI socket).
    #[serde(skip)]
    pub value: u64,
}

/// Messages with one peer of one kind.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrafficView {
    /// The peer.
    pub peer: NodeId,
    /// The kind (`write`, `read`, `ack`, `gossip`, `hint`, `repair`, `stream`).
    pub kind: &'static str,
    /// Sent to it.
    pub sent: u64,
    /// Received from it.
    pub received: u64,
    /// Dropped on the way to it.
    pub dropped: u64,
}

/// A snapshot of one node's knowledge. Serialised as the JSON of `GET /cluster`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeView {
    /// The node answering.
    pub node: NodeId,
    /// Its address.
    pub address: String,
    /// Its gossip generation (its start time in ms).
    pub generation: u64,
    /// Where it is in its life; in JSON `normal`, `joining`, `leaving` or `left`.
    #[serde(serialize_with = "lifecycle_name")]
    pub lifecycle: Lifecycle,
    /// Its clock (ms since the Unix epoch, skew included).
    pub now_ms: u64,
    /// Clock skew injected here.
    pub clock_skew_ms: i64,
    /// Replicas per key.
    pub n: usize,
    /// Default write quorum.
    pub w: usize,
    /// Default read quorum.
    pub r: usize,
    /// Every member known, this node included, by id.
    pub members: Vec<MemberView>,
    /// The ring this node routes by.
    pub ring: Vec<TokenView>,
    /// Hints held here, per owner.
    pub hints_held: BTreeMap<NodeId, u64>,
    /// Requests being coordinated.
    pub in_flight: usize,
    /// Anti-entropy totals.
    pub anti_entropy: AntiEntropyStats,
    /// Whether the admin fault-injection endpoints are on.
    pub fault_injection: bool,
    /// Messages per peer and kind.
    pub traffic: Vec<TrafficView>,
}

fn lifecycle_name<S: Serializer>(l: &Lifecycle, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(l.name())
}

fn verdict_name<S: Serializer>(v: &Verdict, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.name())
}

fn status_name<S: Serializer>(m: &MemberStatus, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(m.name())
}

/// What the driver adds to the core's state.
pub struct DriverState<'a> {
    /// This node's clock now (skew included).
    pub now: Millis,
    /// The skew.
    pub skew_ms: i64,
    /// Peers cut off by fault injection.
    pub partitioned: &'a BTreeSet<NodeId>,
    /// Addresses known besides gossip's (seeds, handshakes).
    pub addresses: &'a BTreeMap<NodeId, String>,
    /// Whether fault injection is on.
    pub fault_injection: bool,
    /// Messages per peer and kind.
    pub traffic: &'a Traffic,
}

/// Builds the view of `node`.
pub fn build(node: &Node, d: &DriverState<'_>) -> NodeView {
    let config = node.config();
    let ring = node.ring();
    let ownership = ring.ownership(config.n);
    let mut members: BTreeMap<NodeId, MemberView> = BTreeMap::new();
    let blank = |id: NodeId, address: String| MemberView {
        id,
        address,
        verdict: Verdict::Alive,
        status: MemberStatus::Alive,
        phi: None,
        in_ring: false,
        tokens: 0,
        primary_share: 0.0,
        replica_share: 0.0,
        partitioned: d.partitioned.contains(&id),
    };
    if let Some(g) = node.gossiper() {
        for (&id, state) in g.members() {
            if state.status == MemberStatus::Removed {
                continue;
            }
            let mut m = blank(id, state.address.clone());
            m.status = state.status;
            m.verdict = g.verdict(id, d.now).unwrap_or(Verdict::Dead);
            m.phi = g.phi(id, d.now);
            members.insert(id, m);
        }
    }
    for &id in ring.nodes() {
        let address = d.addresses.get(&id).cloned().unwrap_or_default();
        let m = members.entry(id).or_insert_with(|| {
            let mut m = blank(id, address);
            if !node.believes_up(id) {
                m.verdict = Verdict::Dead;
            }
            m
        });
        m.in_ring = true;
        if let Some(o) = ownership.get(&id) {
            m.tokens = o.vnodes;
            m.primary_share = o.primary_share;
            m.replica_share = o.replica_share;
        }
    }
    NodeView {
        node: node.id(),
        address: config.address.clone(),
        generation: node
            .gossiper()
            .map_or(config.generation, |g| g.generation()),
        lifecycle: node.lifecycle().clone(),
        now_ms: d.now.0,
        clock_skew_ms: d.skew_ms,
        n: config.n,
        w: config.w,
        r: config.r,
        members: members.into_values().collect(),
        ring: ring
            .tokens()
            .iter()
            .map(|&(t, node)| TokenView {
                token: t.0.to_string(),
                position: t.0 as f64 / 18_446_744_073_709_551_616.0,
                node,
                value: t.0,
            })
            .collect(),
        hints_held: node.hints_held().clone(),
        in_flight: node.in_flight(),
        anti_entropy: node.anti_entropy_stats(),
        fault_injection: d.fault_injection,
        traffic: d
            .traffic
            .counts()
            .iter()
            .map(|(&(peer, kind), c)| TrafficView {
                peer,
                kind: kind.name(),
                sent: c.sent,
                received: c.received,
                dropped: c.dropped,
            })
            .collect(),
    }
}

impl NodeView {
    /// Members by state, for the `members` gauge.
    pub fn state_counts(&self) -> [(&'static str, i64); 4] {
        let mut counts = [("alive", 0), ("suspect", 0), ("dead", 0), ("left", 0)];
        for m in &self.members {
            if let Some(c) = counts.iter_mut().find(|(s, _)| *s == m.verdict.name()) {
                c.1 += 1;
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_json_names_states_in_lower_case() {
        let mut v = crate::ui_socket::collect::tests::view(&[], &[]);
        v.lifecycle = Lifecycle::Leaving;
        v.members.push(MemberView {
            id: NodeId(2),
            address: "127.0.0.1:7002".into(),
            verdict: Verdict::Suspect,
            status: MemberStatus::Leaving,
            phi: Some(9.5),
            in_ring: true,
            tokens: 16,
            primary_share: 0.25,
            replica_share: 0.75,
            partitioned: false,
        });
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["lifecycle"], "leaving");
        let member = &json["members"][0];
        assert_eq!(member["state"], "suspect");
        assert_eq!(member["status"], "leaving");
        assert!(member.get("verdict").is_none(), "{member}");
        assert_eq!(v.state_counts()[1], ("suspect", 1));
    }
}
