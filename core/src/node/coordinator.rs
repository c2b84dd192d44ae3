//! The coordinator: any node that receives a client request runs it, per request, with no
//! leader. This is the design notes' write and read flow:
//!
//! * **PUT/DELETE.** Hash the key, take its preference list (the N distinct nodes clockwise
//!   on the ring), stamp the write with this node's clock (`Version { ts_micros, node }`), send it to
//!   every replica and answer the client after W acknowledgements. A replica believed down is
//!   replaced by the next healthy node clockwise past the preference list, which stores the
//!   write as a *hint* for it (sloppy quorum); hints count towards W.
//! * **GET.** Ask every healthy preference-list node, answer after R replies with the greatest
//!   version (LWW, [`resolve_lww`]), then keep listening until every replica has answered or the
//!   request times out, and send the newest version to every replica that was stale or missing
//!   it (read repair).
//! * **Never a hang.** Every request has a deadline; a quorum that can no longer be met fails at
//!   once, and one that is not met by the deadline fails then, with `needed` and `got`.

use super::{
    ClientError, ClientId, ClientOk, ClientOp, Consistency, Node, NodeEvent, Timer,
    check_client_key,
};
use crate::ring::key_token;
use crate::storage::{Cell, StorageFailure};
use crate::wire::{Message, ReplicaError, ReqId, WritePurpose};
use crate::{Millis, NodeId};
use std::collections::{BTreeMap, BTreeSet};

/// A write being coordinated.
#[derive(Clone, Debug)]
pub(super) struct PendingWrite {
    client: ClientId,
    needed: usize,
    targets: Vec<(NodeId, Option<NodeId>)>,
    acked: BTreeSet<NodeId>,
    failed: BTreeSet<NodeId>,
    /// The replicas that failed because of their storage, and why.
    storage_failures: Vec<(NodeId, StorageFailure)>,
    version: crate::storage::Version,
    replied: bool,
}

impl PendingWrite {
    /// The client's error for a write that cannot reach its quorum: the replicas' storage
    /// failures if some storage refused it (the cause a client can act on), else the count.
    fn quorum_error(&self) -> ClientError {
        let (needed, got) = (self.needed, self.acked.len());
        if self.storage_failures.is_empty() {
            ClientError::QuorumUnavailable { needed, got }
        } else {
            ClientError::StorageUnavailable {
                needed,
                got,
                failures: self.storage_failures.clone(),
            }
        }
    }
}

/// A read being coordinated.
#[derive(Clone, Debug)]
pub(super) struct PendingRead {
    client: ClientId,
    key: Vec<u8>,
    needed: usize,
    targets: Vec<NodeId>,
    replies: BTreeMap<NodeId, Option<Cell>>,
    failed: BTreeSet<NodeId>,
    replied: bool,
}

/// The LWW winner among replies: the cell with the greatest `(ts_micros, node)` version.
pub fn resolve_lww<'a>(cells: impl IntoIterator<Item = &'a Option<Cell>>) -> Option<&'a Cell> {
    cells.into_iter().flatten().max_by_key(|c| c.version)
}

impl Node {
    pub(super) fn on_client(&mut self, now: Millis, client: ClientId, op: ClientOp) {
        if let Err(e) = check_client_key(op.key()) {
            return self.reply(client, Err(e));
        }
        if self.in_flight() >= self.config.requests_in_flight_max {
            let in_flight = self.in_flight();
            return self.reply(client, Err(ClientError::Overloaded { in_flight }));
        }
        match op {
            ClientOp::Put {
                key,
                value,
                consistency,
            } => {
                let max = self
                    .config
                    .value_bytes_max
                    .min(super::CLIENT_VALUE_BYTES_MAX);
                if value.len() > max {
                    return self.reply(
                        client,
                        Err(ClientError::TooLarge {
                            len: value.len(),
                            max,
                        }),
                    );
                }
                let version = self.next_version(now);
                self.start_write(now, client, key, Cell::put(version, value), consistency);
            }
            ClientOp::Delete { key, consistency } => {
                let version = self.next_version(now);
                self.start_write(now, client, key, Cell::tombstone(version), consistency);
            }
            ClientOp::Get { key, consistency } => self.start_read(now, client, key, consistency),
        }
    }

    fn required(
        &self,
        consistency: Option<Consistency>,
        default: usize,
    ) -> Result<usize, ClientError> {
        match consistency {
            Some(c) => c.required(self.config.n),
            None => Ok(default),
        }
    }

    /// The replicas for `key`: its preference list, with every member believed down replaced
    /// by the next healthy node clockwise past the list (which will hold a hint for it).
    pub fn write_targets(&self, key: &[u8]) -> (Vec<NodeId>, Vec<(NodeId, Option<NodeId>)>) {
        let token = key_token(key);
        let n = self.config.n;
        let preference = self.ring.preference_list(token, n);
        let mut stand_ins = self
            .ring
            .walk(token)
            .skip(preference.len())
            .filter(|node| self.believes_up(*node));
        let mut targets = Vec::with_capacity(n);
        for &owner in &preference {
            if self.believes_up(owner) {
                targets.push((owner, None));
            } else if let Some(stand_in) = stand_ins.next() {
                targets.push((stand_in, Some(owner)));
            }
        }
        (preference, targets)
    }

    /// Starts a coordinated request: fails it at once if fewer than `needed` targets are
    /// reachable, otherwise logs it, arms its deadline and returns its id.
    fn begin_request(
        &mut self,
        now: Millis,
        client: ClientId,
        needed: usize,
        targets: Vec<(NodeId, Option<NodeId>)>,
        preference: Vec<NodeId>,
    ) -> Option<ReqId> {
        if targets.len() < needed {
            let got = targets.len();
            self.reply(client, Err(ClientError::QuorumUnavailable { needed, got }));
            return None;
        }
        let req = self.req_id();
        self.event(NodeEvent::RequestStarted {
            client,
            targets,
            preference,
        });
        let deadline = Millis(now.0 + self.config.request_timeout_ms);
        self.set_timer(deadline, Timer::RequestTimeout(req.seq));
        Some(req)
    }

    fn start_write(
        &mut self,
        now: Millis,
        client: ClientId,
        key: Vec<u8>,
        cell: Cell,
        consistency: Option<Consistency>,
    ) {
        let needed = match self.required(consistency, self.config.w) {
            Ok(k) => k,
            Err(e) => return self.reply(client, Err(e)),
        };
        let (preference, targets) = self.write_targets(&key);
        let Some(req) = self.begin_request(now, client, needed, targets.clone(), preference) else {
            return;
        };
        for &(to, hint_for) in &targets {
            let msg = Message::Replicate {
                req,
                key: key.clone(),
                cell: cell.clone(),
                hint_for,
                purpose: WritePurpose::Client,
            };
            self.send(to, msg);
        }
        let pending = PendingWrite {
            client,
            needed,
            targets,
            acked: BTreeSet::new(),
            failed: BTreeSet::new(),
            storage_failures: Vec::new(),
            version: cell.version,
            replied: false,
        };
        self.writes.insert(req.seq, pending);
    }

    fn start_read(
        &mut self,
        now: Millis,
        client: ClientId,
        key: Vec<u8>,
        consistency: Option<Consistency>,
    ) {
        let needed = match self.required(consistency, self.config.r) {
            Ok(k) => k,
            Err(e) => return self.reply(client, Err(e)),
        };
        // Reads ask only the preference list: stand-ins keep hints apart from their data.
        let preference = self.ring.preference_list(key_token(&key), self.config.n);
        let targets: Vec<NodeId> = preference
            .iter()
            .copied()
            .filter(|node| self.believes_up(*node))
            .collect();
        let described = targets.iter().map(|t| (*t, None)).collect();
        let Some(req) = self.begin_request(now, client, needed, described, preference) else {
            return;
        };
        for &to in &targets {
            self.send(
                to,
                Message::Read {
                    req,
                    key: key.clone(),
                },
            );
        }
        let pending = PendingRead {
            client,
            key,
            needed,
            targets,
            replies: BTreeMap::new(),
            failed: BTreeSet::new(),
            replied: false,
        };
        self.reads.insert(req.seq, pending);
    }

    pub(super) fn on_replicate_ack(
        &mut self,
        now: Millis,
        from: NodeId,
        req: ReqId,
        result: Result<(), ReplicaError>,
    ) {
        if req.coordinator != self.config.id {
            return;
        }
        if self.hints.is_replay(req.seq) {
            return self.on_hint_replay_ack(now, req.seq, result);
        }
        let Some(pending) = self.writes.get_mut(&req.seq) else {
            return;
        };
        if !pending.targets.iter().any(|(t, _)| *t == from) {
            return;
        }
        match result {
            Ok(()) => {
                pending.acked.insert(from);
            }
            Err(e) => {
                pending.failed.insert(from);
                if let ReplicaError::Storage(failure) = e {
                    pending.storage_failures.push((from, failure));
                }
            }
        }
        let (acked, failed, total) = (
            pending.acked.len(),
            pending.failed.len(),
            pending.targets.len(),
        );
        let (client, needed, version, replied) = (
            pending.client,
            pending.needed,
            pending.version,
            pending.replied,
        );
        if !replied && acked >= needed {
            let mut hinted = 0;
            if let Some(p) = self.writes.get_mut(&req.seq) {
                p.replied = true;
                hinted = p
                    .targets
                    .iter()
                    .filter(|(t, hint_for)| hint_for.is_some() && p.acked.contains(t))
                    .count();
            }
            self.reply(
                client,
                Ok(ClientOk::Written {
                    version,
                    acks: acked,
                    hinted,
                }),
            );
        } else if !replied && acked + (total - acked - failed) < needed {
            if let Some(pending) = self.writes.remove(&req.seq) {
                self.reply(client, Err(pending.quorum_error()));
            }
            return;
        }
        if acked + failed == total {
            self.writes.remove(&req.seq);
        }
    }

    pub(super) fn on_read_reply(
        &mut self,
        from: NodeId,
        req: ReqId,
        result: Result<Option<Cell>, ReplicaError>,
    ) {
        if req.coordinator != self.config.id {
            return;
        }
        let Some(pending) = self.reads.get_mut(&req.seq) else {
            return;
        };
        if !pending.targets.contains(&from) || pending.replies.contains_key(&from) {
            return;
        }
        match result {
            Ok(cell) => {
                pending.replies.insert(from, cell);
            }
            Err(_) => {
                pending.failed.insert(from);
            }
        }
        let got = pending.replies.len();
        let total = pending.targets.len();
        if !pending.replied && got >= pending.needed {
            pending.replied = true;
            let client = pending.client;
            let result = match resolve_lww(pending.replies.values()) {
                Some(Cell {
                    version,
                    value: Some(value),
                }) => ClientOk::Found {
                    version: *version,
                    value: value.clone(),
                },
                Some(Cell {
                    version,
                    value: None,
                }) => ClientOk::NotFound {
                    version: Some(*version),
                },
                None => ClientOk::NotFound { version: None },
            };
            self.reply(client, Ok(result));
        } else if !pending.replied && got + (total - got - pending.failed.len()) < pending.needed {
            let (client, needed) = (pending.client, pending.needed);
            if let Some(p) = self.reads.get_mut(&req.seq) {
                p.replied = true;
            }
            self.reply(client, Err(ClientError::QuorumUnavailable { needed, got }));
        }
        let done = self
            .reads
            .get(&req.seq)
            .is_some_and(|p| p.replies.len() + p.failed.len() == total);
        if done {
            self.finish_read(req.seq);
        }
    }

    /// Ends a read: repairs every replica that answered with an older version (or none).
    fn finish_read(&mut self, seq: u64) {
        let Some(pending) = self.reads.remove(&seq) else {
            return;
        };
        let Some(newest) = resolve_lww(pending.replies.values()).cloned() else {
            return;
        };
        for (&replica, cell) in &pending.replies {
            let stale = cell.as_ref().is_none_or(|c| c.version < newest.version);
            if stale {
                let req = self.req_id();
                self.event(NodeEvent::ReadRepair {
                    key: pending.key.clone(),
                    replica,
                    version: newest.version,
                });
                self.send(
                    replica,
                    Message::Replicate {
                        req,
                        key: pending.key.clone(),
                        cell: newest.clone(),
                        hint_for: None,
                        purpose: WritePurpose::ReadRepair,
                    },
                );
            }
        }
    }

    pub(super) fn on_request_timeout(&mut self, seq: u64) {
        if self.expire_hint_replay(seq) {
            return;
        }
        if let Some(pending) = self.writes.remove(&seq)
            && !pending.replied
        {
            self.reply(pending.client, Err(pending.quorum_error()));
        }
        if let Some(pending) = self.reads.get(&seq) {
            if !pending.replied {
                let (client, needed, got) = (pending.client, pending.needed, pending.replies.len());
                self.reply(client, Err(ClientError::QuorumUnavailable { needed, got }));
            }
            self.finish_read(seq);
        }
    }
}
