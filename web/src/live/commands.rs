//! Commands from the page to live nodes, and their answers: client operations (put, get,
//! delete with an optional consistency) and fault injection (partition, heal, clock skew).
//!
//! Every command gets an id and exactly one outcome: the node's reply, or an error the page
//! makes itself when the node cannot be reached, the connection closes first, or no reply comes
//! within [`COMMAND_TIMEOUT_MS`]. No more than the protocol's
//! [`COMMANDS_IN_FLIGHT_MAX`] go to one node at once; a skew slider dragged fast sends only
//! the newest value once the previous one is answered.

use super::Live;
use crate::cluster::client_op;
use ringstore_core::NodeId;
use ringstore_core::framing::FrameError;
use ringstore_core::sim::log::show_bytes;
use ringstore_core::storage::CLIENT_KEY_BYTES_MAX;
use ringstore_core::ui::{
    Answer, COMMANDS_IN_FLIGHT_MAX, Command, CommandError, TO_NODE_BYTES_MAX, ToNode, UiError,
    UiFrame,
};

/// A command with no answer after this long (real ms) is reported failed.
pub const COMMAND_TIMEOUT_MS: f64 = 10_000.0;
/// Operation results and records kept.
pub const RESULTS_MAX: usize = 64;

/// What a command in flight was for.
#[derive(Clone, Debug, PartialEq)]
pub enum Purpose {
    /// A client operation with the page's op id.
    Client(u64),
    /// A fault command: partition or heal.
    Fault,
    /// A clock skew, with the value sent.
    Skew(i64),
}

/// A command in flight.
#[derive(Clone, Debug)]
pub struct Pending {
    /// The socket it went out on.
    pub address: String,
    /// The node.
    pub node: u32,
    /// What it was for.
    pub purpose: Purpose,
    /// When it was sent (real ms).
    pub sent_ms: f64,
}

/// A client operation the page sent, for the path panel.
#[derive(Clone, Debug)]
pub struct OpRecord {
    /// The page's op id.
    pub op: u64,
    /// `put`, `get` or `delete`.
    pub kind: &'static str,
    /// The key as shown.
    pub key: String,
    /// The coordinator.
    pub node: u32,
    /// Sent (real ms).
    pub sent_ms: f64,
    /// Its outcome, once known, and when (real ms).
    pub result: Option<(f64, String)>,
}

/// The time of day of a microsecond timestamp, UTC: `23:20:34.567`.
pub fn time_of_day(ts_us: u64) -> String {
    let ms = ts_us / 1000;
    let s = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60,
        ms % 1000
    )
}

/// A command's outcome in words, as the console lists it.
pub fn show_answer(result: &Result<Answer, CommandError>) -> String {
    match result {
        Ok(Answer::Written {
            ts_micros: ts,
            writer,
            acks,
            hinted,
        }) => {
            let hinted = if *hinted > 0 {
                format!(" ({hinted} hinted)")
            } else {
                String::new()
            };
            format!(
                "ok acks={acks}{hinted} ts={ts} ({} UTC, {writer})",
                time_of_day(*ts)
            )
        }
        Ok(Answer::Found {
            ts_micros: ts,
            writer,
            value,
            value_bytes,
        }) => {
            let mut v = show_bytes(value);
            if *value_bytes > value.len() as u64 {
                v.push_str(&format!(" ({value_bytes} bytes)"));
            }
            format!("{v} ts={ts} ({} UTC, {writer})", time_of_day(*ts))
        }
        Ok(Answer::NotFound {
            deleted_ts_micros: None,
        }) => "not found".to_string(),
        Ok(Answer::NotFound {
            deleted_ts_micros: Some(ts),
        }) => format!("not found (deleted, ts={ts} {} UTC)", time_of_day(*ts)),
        Ok(Answer::Faults {
            partitioned,
            clock_skew_ms,
        }) => {
            let cut: Vec<String> = partitioned.iter().map(|n| n.to_string()).collect();
            format!("cuts [{}], clock skew {clock_skew_ms:+} ms", cut.join(", "))
        }
        Err(e) => format!("error: {e}"),
    }
}

/// Whether fault injection is possible on `nodes`: `Err` says why not.
pub fn faults_allowed(live: &Live, nodes: &[u32]) -> Result<(), String> {
    if nodes.is_empty() {
        return Err("no node to send it to".into());
    }
    let mut off = Vec::new();
    for &n in nodes {
        match live.conn_of(n).and_then(|c| c.hello.as_ref()) {
            Some(h) if h.fault_injection => {}
            Some(_) => off.push(format!("n{n}")),
            None => return Err(format!("n{n} is not connected")),
        }
    }
    if off.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} {} started without --allow-fault-injection",
            off.join(", "),
            if off.len() == 1 { "was" } else { "were" }
        ))
    }
}

impl Live {
    /// Sends `command` to node `node`. Refuses (with a sentence) when the node is not
    /// connected, has too many commands in flight, or the command is over the frame bound.
    pub fn send(
        &mut self,
        node: u32,
        command: Command,
        purpose: Purpose,
        real_ms: f64,
    ) -> Result<u32, String> {
        let conn = self
            .conn_of(node)
            .filter(|c| c.open && c.hello.is_some())
            .ok_or_else(|| format!("n{node} is not connected to the page"))?;
        let address = conn.address.clone();
        let in_flight = self
            .pending
            .values()
            .filter(|p| p.address == address)
            .count();
        if in_flight >= COMMANDS_IN_FLIGHT_MAX {
            return Err(format!(
                "overloaded: {COMMANDS_IN_FLIGHT_MAX} commands already wait for n{node}"
            ));
        }
        let id = self.next_command;
        let frame = ToNode::Command { id, command }
            .encode()
            .map_err(|e| match e {
                UiError(FrameError::TooLarge { .. }) => format!(
                    "too_large: a command is at most {} KiB with its key and value",
                    TO_NODE_BYTES_MAX >> 10
                ),
                other => other.to_string(),
            })?;
        self.next_command = self.next_command.checked_add(1).unwrap_or(1);
        self.outbox.push((address.clone(), frame));
        self.pending.insert(
            id,
            super::Pending {
                address,
                node,
                purpose,
                sent_ms: real_ms,
            },
        );
        Ok(id)
    }

    /// A client operation through coordinator `node`: `kind` is `put`, `get` or `delete`,
    /// `consistency` `one`, `quorum`, `all`, a number, or empty for the node's W or R.
    /// Returns the page's op id; its outcome comes with [`Live::result_of`].
    pub fn client(
        &mut self,
        node: u32,
        kind: &str,
        key: &str,
        value: &str,
        consistency: &str,
        real_ms: f64,
    ) -> Result<u64, String> {
        if key.is_empty() || key.len() > CLIENT_KEY_BYTES_MAX {
            return Err(format!(
                "bad_request: a key is 1 to {CLIENT_KEY_BYTES_MAX} bytes"
            ));
        }
        let command = client_op(kind, key, value, consistency)?;
        let kind = command.name();
        let op = self.next_op;
        self.send(node, Command::Client(command), Purpose::Client(op), real_ms)?;
        self.next_op += 1;
        if self.ops.len() >= RESULTS_MAX {
            self.ops.pop_front();
        }
        self.ops.push_back(OpRecord {
            op,
            kind,
            key: show_bytes(key.as_bytes()),
            node,
            sent_ms: real_ms,
            result: None,
        });
        let what = if kind == "put" {
            format!("{key}={}", show_bytes(value.as_bytes()))
        } else {
            key.to_string()
        };
        self.log_line(
            real_ms,
            "client",
            vec![node],
            format!("page -> n{node} {kind} {what}"),
            Some(op),
        );
        Ok(op)
    }

    /// Operation `op`'s outcome in words, once known.
    pub fn result_of(&self, op: u64) -> Option<String> {
        self.results
            .iter()
            .find(|(o, _)| *o == op)
            .map(|(_, r)| r.clone())
    }

    fn finish_op(&mut self, op: u64, text: String, real_ms: f64) {
        if self.results.len() >= RESULTS_MAX {
            self.results.pop_front();
        }
        self.results.push_back((op, text.clone()));
        let mut node = 0;
        if let Some(r) = self.ops.iter_mut().find(|r| r.op == op) {
            r.result = Some((real_ms, text.clone()));
            node = r.node;
        }
        self.log_line(
            real_ms,
            "client",
            vec![node],
            format!("n{node} -> page {text}"),
            Some(op),
        );
    }

    /// Cuts every link between groups `a` and `b`: each node of `a` drops traffic to and
    /// from every node of `b`, and the other way round (a node cuts both directions at
    /// itself, so a one-way cut has no live equivalent). Returns how many commands went out.
    pub fn partition(&mut self, a: &[u32], b: &[u32], real_ms: f64) -> Result<usize, String> {
        if a.is_empty() || b.is_empty() {
            return Err("choose side A (and leave at least one node on the other side)".into());
        }
        // An unreachable node cannot be told; the reachable side cuts it off anyway (a node
        // drops traffic both ways).
        let reachable = |live: &Live, n: &u32| {
            live.conn_of(*n)
                .is_some_and(|c| c.open && c.hello.is_some())
        };
        let all: Vec<u32> = a.iter().chain(b).copied().collect();
        let told: Vec<u32> = all.iter().copied().filter(|n| reachable(self, n)).collect();
        faults_allowed(self, &told)?;
        let mut sent = 0;
        for (side, other) in [(a, b), (b, a)] {
            for &n in side.iter().filter(|n| told.contains(n)) {
                let peers = other.iter().map(|p| NodeId(*p)).collect();
                self.send(n, Command::Partition { peers }, Purpose::Fault, real_ms)?;
                sent += 1;
            }
        }
        let show = |v: &[u32]| {
            v.iter()
                .map(|n| format!("n{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let untold: Vec<u32> = all.iter().copied().filter(|n| !told.contains(n)).collect();
        let mut text = format!("page: partition [{}] | [{}]", show(a), show(b));
        if !untold.is_empty() {
            text.push_str(&format!(" ({} unreachable, not told)", show(&untold)));
        }
        self.log_line(real_ms, "fault", all, text, None);
        Ok(sent)
    }

    /// Restores every link at every connected node that allows fault injection.
    pub fn heal(&mut self, real_ms: f64) -> Result<usize, String> {
        let nodes: Vec<u32> = self.known.keys().copied().collect();
        let reachable: Vec<u32> = nodes
            .iter()
            .copied()
            .filter(|n| {
                self.conn_of(*n)
                    .is_some_and(|c| c.open && c.hello.is_some())
            })
            .collect();
        faults_allowed(self, &reachable)?;
        for &n in &reachable {
            self.send(n, Command::Heal, Purpose::Fault, real_ms)?;
        }
        self.log_line(
            real_ms,
            "fault",
            reachable.clone(),
            "page: heal every link".into(),
            None,
        );
        Ok(reachable.len())
    }

    /// Sets node `node`'s clock skew. While one is in flight, only the newest value waits.
    pub fn set_skew(&mut self, node: u32, ms: i64, real_ms: f64) -> Result<(), String> {
        faults_allowed(self, &[node])?;
        let ms = ms.clamp(-3_600_000, 3_600_000);
        let busy = self
            .pending
            .values()
            .any(|p| p.node == node && matches!(p.purpose, Purpose::Skew(_)));
        self.skew_wanted.insert(node, ms);
        if !busy {
            self.send(node, Command::ClockSkew { ms }, Purpose::Skew(ms), real_ms)?;
        }
        Ok(())
    }

    pub(crate) fn reply(&mut self, id: u32, result: Result<Answer, CommandError>, real_ms: f64) {
        if id == 0 {
            let text = show_answer(&result);
            self.notices
                .push_back(format!("a node refused a frame from the page: {text}"));
            return;
        }
        let Some(p) = self.pending.remove(&id) else {
            return; // answered after we gave up on it
        };
        let text = show_answer(&result);
        match p.purpose {
            Purpose::Client(op) => self.finish_op(op, text, real_ms),
            Purpose::Fault => {
                if result.is_err() {
                    self.notices.push_back(format!("n{}: {text}", p.node));
                }
                self.log_line(
                    real_ms,
                    "fault",
                    vec![p.node],
                    format!("n{} {text}", p.node),
                    None,
                );
            }
            Purpose::Skew(sent) => {
                if result.is_err() {
                    self.notices.push_back(format!("n{}: {text}", p.node));
                    self.skew_wanted.remove(&p.node);
                } else if let Some(&want) = self.skew_wanted.get(&p.node) {
                    if want != sent {
                        let _ = self.send(
                            p.node,
                            Command::ClockSkew { ms: want },
                            Purpose::Skew(want),
                            real_ms,
                        );
                    } else {
                        self.log_line(
                            real_ms,
                            "fault",
                            vec![p.node],
                            format!("n{} {text}", p.node),
                            None,
                        );
                    }
                }
            }
        }
    }

    /// Fails every command waiting on `address` with `why`.
    pub(crate) fn fail_pending(&mut self, address: &str, why: &str, real_ms: f64) {
        let ids: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, p)| p.address == address)
            .map(|(id, _)| *id)
            .collect();
        self.fail(&ids, why, real_ms);
    }

    fn fail(&mut self, ids: &[u32], why: &str, real_ms: f64) {
        for id in ids {
            let Some(p) = self.pending.remove(id) else {
                continue;
            };
            let text = format!("error: unavailable: {why} (n{})", p.node);
            match p.purpose {
                Purpose::Client(op) => self.finish_op(op, text, real_ms),
                Purpose::Fault | Purpose::Skew(_) => {
                    self.skew_wanted.remove(&p.node);
                    self.notices.push_back(text);
                }
            }
        }
    }

    /// Fails commands unanswered for [`COMMAND_TIMEOUT_MS`].
    pub fn expire_commands(&mut self, real_ms: f64) {
        let ids: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, p)| real_ms - p.sent_ms > COMMAND_TIMEOUT_MS)
            .map(|(id, _)| *id)
            .collect();
        if !ids.is_empty() {
            self.fail(&ids, "no answer within 10 s", real_ms);
        }
    }
}
