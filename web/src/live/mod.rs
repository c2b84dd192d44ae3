//! Live mode: the page watching and driving a real cluster of native nodes over their UI
//! sockets (`/ws/ui`, the protocol in [`ringstore_core::ui`]).
//!
//! JavaScript (`www/live.js`) owns the WebSockets, one per member, and hands every binary
//! frame to [`Live::feed`]; everything else happens here, in plain Rust tested on the host:
//!
//! - each connection's last snapshot and update ([`Conn`]), with how fresh it is: a socket that
//!   closed, or that sent nothing for [`STALE_MS`], makes its node *unreachable*;
//! - the merge of every node's view into the same [`ViewModel`](crate::view::ViewModel) the simulator fills
//!   ([`merge`]): a node's own state comes from its own socket, what the others think of it
//!   from theirs, the ring from the majority of fresh nodes;
//! - traffic turned into the picture's dots: every message a node reports individually is one
//!   dot; messages above the protocol's per-update bound arrive only as counts, and each count
//!   is drawn as at most [`DOTS_PER_AGGREGATE`] representative dots (their true rate is in
//!   [`Live::traffic`], which the page lists per link);
//! - the event log, bounded, in the log panel's lines ([`crate::logview::Line`]);
//! - client operations and fault injection as [`ringstore_core::ui::Command`]s, each answered
//!   once ([`commands`]); the frames to send wait in an outbox that JavaScript drains;
//! - the what-if copy: a simulation built from the live membership, ring and N/W/R
//!   ([`what_if`]).
//!
//! Times: a node stamps what it reports with its own clock; each connection keeps the offset
//! between that clock and the page's (`performance.now()`), so dots from different nodes line
//! up. The picture runs [`PLAYBACK_MS`] behind real time, long enough for an update to arrive,
//! so dots leave when their message left, spread over the interval, not in bursts.
//!
//! ```text
//!  www/live.js ── one WebSocket per member, binary frames ──► LiveCluster.feed(addr, bytes)
//!    (opens what LiveCluster.wanted() lists, reconnects with      │  (wasm, this module)
//!     backoff 0.5 → 5 s, sends LiveCluster.takeOutbox())           ▼
//!  requestAnimationFrame ─► LiveCluster.frame(view, t) ─► Live::fill ─► ViewModel ─► render::draw
//!  every 250 ms ──────────► panels: nodeIds / nodeDetail / logSince / resultOf (as Cluster's)
//! ```
//!
//! A second name for a node already reached is marked a duplicate and closed; bad frames are
//! counted and shown, never acted on. A closed socket makes its node down at once (a killed
//! process: well under a second); an open one that sent nothing for [`STALE_MS`] (three
//! updates) too; the log says which, once, and commands waiting on it fail with a sentence. A
//! message seen by both ends is one dot, drawn from the sender's report when the page hears the
//! sender; storage work (WAL appends, syncs, flushes, compactions) flashes from the change in
//! each node's statistics between updates.
//!
//! A console command is parsed into a `ClientOp` by the same function the simulated cluster
//! uses, and its answer shows the result, the LWW timestamp (µs) and its time of day
//! (`ok acks=3 ts=1764631234567890 (23:20:34.567 UTC, n1)`) or the node's error. The what-if
//! copy renumbers ids with gaps to 1..k and says how; it is labelled on the canvas, in the badge
//! and in a banner, and never saved over the user's own simulation.
//!
//! Tests: the merge on the host (`cargo test -p ringstore-web live`: frames built with the
//! core's codec, no sockets), end to end in `tests/browser/live.test.mjs` (three real nodes, the
//! page served by one).

pub mod commands;
pub mod js;
pub mod merge;
#[cfg(test)]
mod tests;
pub mod what_if;

use crate::logview::Line;
use crate::view::{Effect, EffectKind, MessageView};
use commands::Pending;
use ringstore_core::NodeId;
use ringstore_core::sim::log::SimEvent;
use ringstore_core::ui::{
    Aggregate, Direction, Hello, Lost, MessageSeen, NodeState, RingToken, Snapshot, ToPage,
    UPDATE_MS, UiFrame, Update,
};
use ringstore_core::wire::MessageKind;
use std::collections::{BTreeMap, VecDeque};

/// A connection that sent nothing for this long (real ms) counts as unreachable.
pub const STALE_MS: f64 = 3.0 * UPDATE_MS as f64;
/// How far behind real time the picture runs (ms): an update's messages have arrived by then.
pub const PLAYBACK_MS: f64 = UPDATE_MS as f64 + 150.0;
/// How long a message's dot takes from sender to receiver (real ms). Real messages take well
/// under a millisecond on one machine; the dot is slowed to be seen.
pub const FLIGHT_MS: f64 = 320.0;
/// Representative dots drawn per aggregate (peer, kind) per update at most.
pub const DOTS_PER_AGGREGATE: u64 = 2;
/// Connections (node addresses) the page holds at most.
pub const CONNECTIONS_MAX: usize = 64;
/// Nodes the page tracks at most.
pub const NODES_MAX: usize = 256;
/// Log lines kept.
pub const LOG_MAX: usize = 4_000;
/// Dots queued or in flight at most (beyond it the oldest go).
pub const DOTS_MAX: usize = crate::view::MESSAGES_MAX;
/// Animations waiting for their time at most.
pub const EFFECTS_PENDING_MAX: usize = crate::view::EFFECTS_MAX;
/// How often the merge of every node's view runs (real ms); dots and animations move every
/// frame.
pub const MERGE_MS: f64 = 100.0;
/// The traffic window for rates (real ms).
pub const RATE_WINDOW_MS: f64 = 2_000.0;

/// One socket to one node, as far as the page knows it.
#[derive(Clone, Debug)]
pub struct Conn {
    /// The address the page dials (`host:port`).
    pub address: String,
    /// Whether JavaScript says the socket is open.
    pub open: bool,
    /// Who the node is, from its snapshot.
    pub hello: Option<Hello>,
    /// Its last reported state.
    pub state: Option<NodeState>,
    /// Its ring.
    pub ring: Vec<RingToken>,
    /// Real time of the last frame (or of the connection's creation).
    pub last_frame_ms: f64,
    /// Page real time minus the node's clock, at the last update (ms).
    pub offset_ms: f64,
    /// What the node could not send us (cumulative, from its updates).
    pub lost: Lost,
    /// Updates received.
    pub updates: u64,
    /// Frames that could not be decoded.
    pub bad_frames: u64,
    /// The last problem, in words.
    pub error: Option<String>,
    /// Whether the page has logged it unreachable (so it logs the change once).
    pub down_logged: bool,
    /// Another connection already reaches the same node (two names for one address).
    pub duplicate: bool,
    /// When the socket last opened (real ms), for reconnect pacing.
    pub opened_ms: f64,
}

impl Conn {
    fn new(address: String, real_ms: f64) -> Conn {
        Conn {
            address,
            open: false,
            hello: None,
            state: None,
            ring: Vec::new(),
            last_frame_ms: real_ms,
            offset_ms: 0.0,
            lost: Lost::default(),
            updates: 0,
            bad_frames: 0,
            error: None,
            down_logged: false,
            duplicate: false,
            opened_ms: real_ms,
        }
    }

    /// The node it reaches, once it said.
    pub fn node(&self) -> Option<u32> {
        self.hello.as_ref().map(|h| h.node.0)
    }

    /// Whether its state is current: open, introduced, and heard from within [`STALE_MS`].
    pub fn fresh(&self, real_ms: f64) -> bool {
        self.open && self.state.is_some() && real_ms - self.last_frame_ms <= STALE_MS
    }

    /// The page's real time for the node's clock reading `at_ms`.
    fn page_ms(&self, at_ms: u64) -> f64 {
        at_ms as f64 + self.offset_ms
    }
}

/// Traffic on one link, counted by the page.
#[derive(Clone, Debug, Default)]
struct LinkCounts {
    /// (real ms, messages) per update, within the rate window.
    recent: VecDeque<(f64, u64)>,
    /// Every message ever counted.
    total: u64,
}

/// A dot or an animation that becomes visible at a page time.
#[derive(Clone, Copy, Debug)]
struct Due {
    at_ms: f64,
    effect: Effect,
}

/// The whole live state. See the module docs.
#[derive(Debug)]
pub struct Live {
    /// The address the user gave (or the page's own host).
    pub seed: String,
    /// Every connection, by address.
    pub conns: BTreeMap<String, Conn>,
    /// Every node ever seen (ids), with the address members give for it.
    pub known: BTreeMap<u32, String>,
    log: VecDeque<Line>,
    log_seq: u64,
    dots: VecDeque<MessageView>,
    next_dot: u64,
    due: VecDeque<Due>,
    links: BTreeMap<(u32, u32, MessageKind), LinkCounts>,
    pub(crate) pending: BTreeMap<u32, Pending>,
    pub(crate) next_command: u32,
    pub(crate) next_op: u64,
    pub(crate) results: VecDeque<(u64, String)>,
    pub(crate) ops: VecDeque<commands::OpRecord>,
    pub(crate) outbox: Vec<(String, Vec<u8>)>,
    pub(crate) notices: VecDeque<String>,
    pub(crate) skew_wanted: BTreeMap<u32, i64>,
    /// The followed operation (the page's op id).
    pub follow: Option<u64>,
    /// Set when something changed that the merged picture must show.
    pub(crate) dirty: bool,
    /// When the merge last ran (real ms).
    pub(crate) last_merge_ms: f64,
}

/// Why an address cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressError(pub String);

/// The `host:port` in what a user typed: `127.0.0.1:7001`, `http://localhost:7001/`,
/// `ws://h:1/ws/ui`. Refuses anything else with a sentence saying why.
pub fn parse_address(input: &str) -> Result<String, AddressError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(AddressError(
            "type a node's address, e.g. 127.0.0.1:7001".into(),
        ));
    }
    if s.len() > 256 {
        return Err(AddressError("that address is too long".into()));
    }
    let rest = match s.split_once("://") {
        Some((scheme, rest)) => {
            let scheme = scheme.to_ascii_lowercase();
            if !["http", "https", "ws", "wss"].contains(&scheme.as_str()) {
                return Err(AddressError(format!(
                    "{scheme}:// is not a node's address; use host:port or http://host:port"
                )));
            }
            rest
        }
        None => s,
    };
    let host_port = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !h.ends_with(':') || h.starts_with('[') => (h, p),
        _ => {
            return Err(AddressError(format!(
                "{host_port:?} has no port: nodes listen on host:port, e.g. 127.0.0.1:7001"
            )));
        }
    };
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| AddressError(format!("{port:?} is not a port (1 to 65535)")))?;
    let host_ok = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".-_[]:".contains(c));
    if !host_ok {
        return Err(AddressError(format!("{host:?} is not a host name")));
    }
    Ok(format!("{host}:{port}"))
}

impl Live {
    /// Live state that starts from one node's address (already parsed).
    pub fn new(seed: String, real_ms: f64) -> Live {
        let mut conns = BTreeMap::new();
        conns.insert(seed.clone(), Conn::new(seed.clone(), real_ms));
        Live {
            seed,
            conns,
            known: BTreeMap::new(),
            log: VecDeque::new(),
            log_seq: 0,
            dots: VecDeque::new(),
            next_dot: 1,
            due: VecDeque::new(),
            links: BTreeMap::new(),
            pending: BTreeMap::new(),
            next_command: 1,
            next_op: 1,
            results: VecDeque::new(),
            ops: VecDeque::new(),
            outbox: Vec::new(),
            notices: VecDeque::new(),
            skew_wanted: BTreeMap::new(),
            follow: None,
            dirty: true,
            last_merge_ms: f64::NEG_INFINITY,
        }
    }

    /// The addresses the page should hold a socket to: the seed, and every member's address
    /// no other connection already reaches.
    pub fn wanted(&self) -> Vec<String> {
        let reached: Vec<u32> = self.conns.values().filter_map(Conn::node).collect();
        let mut out: Vec<String> = self
            .conns
            .values()
            .filter(|c| !c.duplicate)
            .map(|c| c.address.clone())
            .collect();
        for (id, address) in &self.known {
            if address.is_empty() || reached.contains(id) || out.contains(address) {
                continue;
            }
            if out.len() >= CONNECTIONS_MAX {
                break;
            }
            out.push(address.clone());
        }
        out
    }

    fn conn_mut(&mut self, address: &str, real_ms: f64) -> Option<&mut Conn> {
        if !self.conns.contains_key(address) {
            if self.conns.len() >= CONNECTIONS_MAX {
                return None;
            }
            self.conns
                .insert(address.to_string(), Conn::new(address.to_string(), real_ms));
        }
        self.conns.get_mut(address)
    }

    /// JavaScript opened the socket to `address`.
    pub fn opened(&mut self, address: &str, real_ms: f64) {
        if let Some(c) = self.conn_mut(address, real_ms) {
            c.open = true;
            c.opened_ms = real_ms;
            c.last_frame_ms = real_ms;
            c.error = None;
        }
        self.dirty = true;
    }

    /// The socket to `address` closed (or failed to open), with `why` in words.
    pub fn closed(&mut self, address: &str, why: &str, real_ms: f64) {
        let Some(c) = self.conns.get_mut(address) else {
            return;
        };
        let was_open = c.open;
        c.open = false;
        if !why.is_empty() {
            c.error = Some(why.to_string());
        }
        self.dirty = true;
        if was_open {
            self.fail_pending(address, "the connection closed before it answered", real_ms);
        }
        self.check_reachability(real_ms);
    }

    /// One binary frame from `address`. A frame that does not decode is counted and shown,
    /// and changes nothing else.
    pub fn feed(&mut self, address: &str, bytes: &[u8], real_ms: f64) -> Result<(), String> {
        let msg = match ToPage::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                if let Some(c) = self.conns.get_mut(address) {
                    c.bad_frames += 1;
                    c.error = Some(format!("bad frame: {e}"));
                }
                return Err(e.to_string());
            }
        };
        let Some(conn) = self.conn_mut(address, real_ms) else {
            return Err(format!("more than {CONNECTIONS_MAX} connections"));
        };
        conn.last_frame_ms = real_ms;
        conn.open = true;
        match msg {
            ToPage::Snapshot(s) => self.snapshot(address, *s, real_ms),
            ToPage::Update(u) => self.update(address, *u, real_ms),
            ToPage::Reply { id, result } => self.reply(id, result, real_ms),
        }
        Ok(())
    }

    fn snapshot(&mut self, address: &str, s: Snapshot, real_ms: f64) {
        self.dirty = true;
        let node = s.hello.node.0;
        let elsewhere = self
            .conns
            .values()
            .any(|c| c.address != address && c.node() == Some(node) && !c.duplicate && c.open);
        let Some(conn) = self.conns.get_mut(address) else {
            return;
        };
        let restarted = conn
            .hello
            .as_ref()
            .is_some_and(|h| h.generation != s.hello.generation);
        let was_down = conn.down_logged;
        conn.duplicate = elsewhere;
        conn.offset_ms = real_ms - s.state.now_ms as f64;
        conn.hello = Some(s.hello);
        conn.ring = s.ring;
        conn.lost = Lost::default();
        conn.error = None;
        conn.down_logged = false;
        let state = s.state;
        let t = real_ms;
        self.learn(node, address, &state, real_ms);
        if let Some(c) = self.conns.get_mut(address) {
            c.state = Some(state);
        }
        let text = if restarted {
            format!("n{node} restarted (new generation); the page reconnected to {address}")
        } else if was_down {
            format!("n{node} reachable again at {address}")
        } else {
            format!("connected to n{node} at {address}")
        };
        self.log_line(t, "node", vec![node], text, None);
    }

    /// Records the node ids and addresses a node's membership names.
    fn learn(&mut self, node: u32, address: &str, state: &NodeState, real_ms: f64) {
        if self.known.len() < NODES_MAX || self.known.contains_key(&node) {
            self.known.insert(node, address.to_string());
        }
        for m in &state.members {
            if m.status == ringstore_core::membership::MemberStatus::Removed {
                continue;
            }
            if m.id.0 == node {
                continue;
            }
            if self.known.len() >= NODES_MAX && !self.known.contains_key(&m.id.0) {
                continue;
            }
            let id = m.id.0;
            let known = self.known.get(&id).is_some_and(|a| !a.is_empty());
            let address = parse_address(&m.address).ok().filter(|_| !known);
            match address {
                Some(a) => {
                    self.known.insert(id, a.clone());
                    // Dial it from now on (unless a socket already reaches it); until it
                    // answers, the others' word stands.
                    if !self.conns.values().any(|c| c.node() == Some(id)) {
                        let _ = self.conn_mut(&a, real_ms);
                    }
                }
                None => {
                    self.known.entry(id).or_default();
                }
            }
        }
    }

    fn update(&mut self, address: &str, u: Update, real_ms: f64) {
        let Some(conn) = self.conns.get(address) else {
            return;
        };
        let Some(node) = conn.node() else {
            return; // an update before a snapshot: nothing to anchor it to
        };
        let before = conn.state.clone();
        let offset = real_ms - u.state.now_ms as f64;
        self.learn(node, address, &u.state, real_ms);
        let fresh: Vec<u32> = self
            .conns
            .values()
            .filter(|c| c.fresh(real_ms) && c.address != address)
            .filter_map(Conn::node)
            .collect();
        let Some(conn) = self.conns.get_mut(address) else {
            return;
        };
        conn.offset_ms = offset;
        if let Some(ring) = u.ring {
            conn.ring = ring;
        }
        if u.lost != conn.lost {
            conn.lost = u.lost;
        }
        conn.updates += 1;
        let conn = conn.clone();
        self.storage_effects(node, before.as_ref(), &u.state, &conn, real_ms);
        if let Some(c) = self.conns.get_mut(address) {
            c.state = Some(u.state);
        }
        let start = real_ms - UPDATE_MS as f64;
        for m in &u.messages {
            self.message(node, &conn, m, &fresh);
        }
        for a in &u.aggregated {
            self.aggregate(node, &conn, a, &fresh, start);
        }
        for (at, event) in u.events {
            let t = conn.page_ms(at);
            let op = None;
            let text = SimEvent::Node {
                node: NodeId(node),
                event,
            }
            .trace();
            self.log_line(t, "protocol", vec![node], text, op);
        }
        self.check_reachability(real_ms);
    }

    /// Storage work since the node's last report, as the same animations the simulator shows.
    fn storage_effects(
        &mut self,
        node: u32,
        before: Option<&NodeState>,
        now: &NodeState,
        conn: &Conn,
        real_ms: f64,
    ) {
        let Some(b) = before else { return };
        let (d0, d1) = (&b.data, &now.data);
        let mut add = |kind, happened: bool| {
            if happened {
                self.push_due(real_ms - UPDATE_MS as f64 / 2.0, effect(kind, node, node));
            }
        };
        add(EffectKind::Wal, d1.last_lsn > d0.last_lsn);
        add(EffectKind::Sync, d1.wal_syncs > d0.wal_syncs);
        add(EffectKind::Flush, d1.flushes > d0.flushes);
        add(
            EffectKind::Compact,
            d1.compactions + d1.trivial_moves > d0.compactions + d0.trivial_moves,
        );
        let _ = conn;
    }

    fn push_due(&mut self, at_ms: f64, effect: Effect) {
        if self.due.len() >= EFFECTS_PENDING_MAX {
            self.due.pop_front();
        }
        self.due.push_back(Due { at_ms, effect });
    }

    fn push_dot(&mut self, from: u32, to: u32, kind: MessageKind, sent_ms: f64) {
        if self.dots.len() >= DOTS_MAX {
            self.dots.pop_front();
        }
        let id = self.next_dot;
        self.next_dot += 1;
        self.dots.push_back(MessageView {
            id,
            from,
            to,
            kind,
            sent_ms,
            arrives_ms: sent_ms + FLIGHT_MS,
            op: None,
        });
    }

    fn count_link(&mut self, from: u32, to: u32, kind: MessageKind, n: u64, real_ms: f64) {
        if n == 0 {
            return;
        }
        let l = self.links.entry((from, to, kind)).or_default();
        l.total += n;
        match l.recent.back_mut() {
            Some((t, c)) if (*t - real_ms).abs() < 1.0 => *c += n,
            _ => l.recent.push_back((real_ms, n)),
        }
        while l
            .recent
            .front()
            .is_some_and(|(t, _)| real_ms - t > RATE_WINDOW_MS)
        {
            l.recent.pop_front();
        }
    }

    fn message(&mut self, node: u32, conn: &Conn, m: &MessageSeen, fresh: &[u32]) {
        let k = m.kind;
        let t = conn.page_ms(m.at_ms);
        let peer = m.peer.0;
        let real = conn.last_frame_ms;
        match (m.direction, m.dropped) {
            (Direction::Sent, None) => {
                self.push_dot(node, peer, k, t);
                self.count_link(node, peer, k, 1, real);
                let text = SimEvent::MessageSent {
                    id: 0,
                    from: NodeId(node),
                    to: m.peer,
                    kind: m.kind,
                    label: m.label.clone(),
                    arrives: ringstore_core::Millis(0),
                }
                .trace();
                self.log_line(t, k.name(), vec![node, peer], text, None);
            }
            (Direction::Sent, Some(cause)) => {
                self.push_due(
                    t,
                    Effect {
                        from: node,
                        message: k,
                        at: 0.15,
                        ..effect(EffectKind::Death, peer, node)
                    },
                );
                let text = format!("n{node} -> n{peer} {} dropped ({})", m.label, cause.name());
                self.log_line(t, k.name(), vec![node, peer], text, None);
            }
            (Direction::Received, _) => {
                // The sender reports it too when the page is connected to it: draw it once.
                if !fresh.contains(&peer) {
                    self.push_dot(peer, node, k, t - FLIGHT_MS);
                    self.count_link(peer, node, k, 1, real);
                }
            }
        }
    }

    fn aggregate(&mut self, node: u32, conn: &Conn, a: &Aggregate, fresh: &[u32], start: f64) {
        let k = a.kind;
        let peer = a.peer.0;
        let real = conn.last_frame_ms;
        let spread = |n: u64, i: u64| start + UPDATE_MS as f64 * (i as f64 + 0.5) / n as f64;
        let shown = a.sent.min(DOTS_PER_AGGREGATE);
        for i in 0..shown {
            self.push_dot(node, peer, k, spread(shown, i));
        }
        self.count_link(node, peer, k, a.sent, real);
        if !fresh.contains(&peer) {
            let shown = a.received.min(DOTS_PER_AGGREGATE);
            for i in 0..shown {
                self.push_dot(peer, node, k, spread(shown, i));
            }
            self.count_link(peer, node, k, a.received, real);
        }
        if a.dropped > 0 {
            self.push_due(
                start,
                Effect {
                    from: node,
                    message: k,
                    at: 0.15,
                    ..effect(EffectKind::Death, peer, node)
                },
            );
        }
    }

    /// Logs nodes that became unreachable (closed, or silent for [`STALE_MS`]) once each.
    pub fn check_reachability(&mut self, real_ms: f64) {
        let mut lines = Vec::new();
        for c in self.conns.values_mut() {
            let Some(node) = c.node() else { continue };
            if c.duplicate || c.down_logged || c.fresh(real_ms) {
                continue;
            }
            c.down_logged = true;
            let why = if c.open {
                format!(
                    "sent nothing for {:.1} s",
                    (real_ms - c.last_frame_ms) / 1000.0
                )
            } else {
                c.error
                    .clone()
                    .unwrap_or_else(|| "the connection closed".to_string())
            };
            lines.push((node, format!("n{node} unreachable at {}: {why}", c.address)));
        }
        for (node, text) in lines {
            self.dirty = true;
            self.log_line(real_ms, "node", vec![node], text, None);
        }
    }

    pub(crate) fn log_line(
        &mut self,
        t: f64,
        class: &'static str,
        nodes: Vec<u32>,
        text: String,
        op: Option<u64>,
    ) {
        if self.log.len() >= LOG_MAX {
            self.log.pop_front();
        }
        self.log.push_back(Line {
            seq: self.log_seq,
            t: t.max(0.0) as u64,
            class,
            nodes,
            text,
            op,
        });
        self.log_seq += 1;
    }

    /// The log lines from sequence number `seq` on that pass `filter`, newest
    /// [`crate::logview::LINES_MAX`], and the next sequence number.
    pub fn log_since(&self, seq: u64, filter: &crate::logview::Filter) -> (u64, Vec<Line>) {
        let mut out: VecDeque<Line> = VecDeque::new();
        for l in self.log.iter().filter(|l| l.seq >= seq) {
            if filter.passes(l) {
                if out.len() == crate::logview::LINES_MAX {
                    out.pop_front();
                }
                out.push_back(l.clone());
            }
        }
        (self.log_seq, out.into())
    }

    /// Per link and kind: (from, to, kind, messages per second over the last
    /// [`RATE_WINDOW_MS`], total), busiest first.
    pub fn traffic(&self, real_ms: f64) -> Vec<(u32, u32, MessageKind, f64, u64)> {
        let mut out: Vec<_> = self
            .links
            .iter()
            .map(|(&(from, to, kind), l)| {
                let recent: u64 = l
                    .recent
                    .iter()
                    .filter(|(t, _)| real_ms - t <= RATE_WINDOW_MS)
                    .map(|(_, c)| c)
                    .sum();
                (
                    from,
                    to,
                    kind,
                    recent as f64 * 1000.0 / RATE_WINDOW_MS,
                    l.total,
                )
            })
            .collect();
        out.sort_by(|a, b| b.3.total_cmp(&a.3).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
        out
    }

    /// Dots to draw at page time `now_ms`: forgets those that arrived, returns those on their
    /// way.
    pub(crate) fn dots_at(&mut self, now_ms: f64) -> impl Iterator<Item = &MessageView> {
        self.dots.retain(|d| d.arrives_ms >= now_ms);
        self.dots
            .iter()
            .filter(move |d| d.sent_ms <= now_ms && d.arrives_ms >= now_ms)
    }

    /// Animations whose time came by page time `now_ms`, stamped with real time `real_ms`.
    pub(crate) fn due_effects(&mut self, now_ms: f64, real_ms: f64) -> Vec<Effect> {
        // Updates from different nodes interleave, so look at every waiting one.
        let (now, later): (Vec<Due>, Vec<Due>) =
            self.due.drain(..).partition(|d| d.at_ms <= now_ms);
        let out = now
            .into_iter()
            .map(|d| Effect {
                born_real_ms: real_ms,
                ..d.effect
            })
            .collect();
        self.due = later.into();
        out
    }

    /// Notices for the page to show (errors of fault commands, refused frames), oldest first.
    pub fn take_notices(&mut self) -> Vec<String> {
        self.notices.drain(..).collect()
    }

    /// The frames to send, with the address of the socket each goes to.
    pub fn take_outbox(&mut self) -> Vec<(String, Vec<u8>)> {
        std::mem::take(&mut self.outbox)
    }

    /// The connection that reaches node `id`, if any.
    pub fn conn_of(&self, id: u32) -> Option<&Conn> {
        self.conns
            .values()
            .filter(|c| c.node() == Some(id) && !c.duplicate)
            .max_by(|a, b| a.last_frame_ms.total_cmp(&b.last_frame_ms))
    }
}

fn effect(kind: EffectKind, node: u32, from: u32) -> Effect {
    Effect {
        kind,
        node,
        from,
        message: MessageKind::Write,
        at: 1.0,
        op: None,
        born_real_ms: 0.0,
    }
}
