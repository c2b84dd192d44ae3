//! The drive loop: the event queue run in `(time, sequence)` order, each event fed to its
//! node as an [`Input`] and the node's [`Output`]s carried out (messages sent over the
//! simulated network, storage operations run on the machine's engines, timers scheduled,
//! client answers recorded in the history), plus client operations and the workload's ticks.
//! Every step is logged, and tagged with the client operation it serves.

use super::log::{OpId, OpKind, SimEvent};
use super::network::{self, DropReason};
use super::queue::{Event, Scheduled};
use super::workload;
use super::{MachineDisk, Sim, label, label_short};
use crate::node::{ClientError, ClientOp, Input, NodeEvent, Output};
use crate::wire::{Message, MessageKind};
use crate::{Millis, NodeId};
use rand::Rng;
use std::cmp::Reverse;

impl<D: MachineDisk> Sim<D> {
    pub(super) fn schedule(&mut self, at: Millis, event: Event) {
        let seq = self.seq;
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at: at.max(self.now),
            seq,
            event,
        }));
    }

    /// Sends a client operation to coordinator `node` now; returns its id.
    pub fn client(&mut self, node: NodeId, op: ClientOp) -> OpId {
        let id = self.next_op;
        self.next_op += 1;
        let kind = match op {
            ClientOp::Put { .. } => OpKind::Put,
            ClientOp::Get { .. } => OpKind::Get,
            ClientOp::Delete { .. } => OpKind::Delete,
        };
        let key = op.key().to_vec();
        let (consistency, default) = match &op {
            ClientOp::Put { consistency, .. } | ClientOp::Delete { consistency, .. } => {
                (consistency, self.config.w)
            }
            ClientOp::Get { consistency, .. } => (consistency, self.config.r),
        };
        let quorum = consistency.map_or(Ok(default), |c| c.required(self.config.n));
        self.log.push(
            self.now,
            SimEvent::ClientBegin {
                op: id,
                node,
                kind,
                key: key.clone(),
            },
        );
        self.history
            .invoke(id, kind, key, node, self.now, quorum.unwrap_or(0));
        self.schedule(
            self.now,
            Event::Client {
                op: id,
                node,
                client_op: op,
            },
        );
        id
    }

    pub(super) fn client_done(
        &mut self,
        op: OpId,
        node: NodeId,
        result: crate::node::ClientResult,
    ) {
        self.log.push(
            self.now,
            SimEvent::ClientDone {
                op,
                node,
                result: result.clone(),
            },
        );
        self.history.complete(op, self.now, result);
    }

    /// Runs the next event; `false` when nothing is scheduled.
    pub fn step(&mut self) -> bool {
        let Some(Reverse(next)) = self.queue.pop() else {
            return false;
        };
        self.now = self.now.max(next.at);
        self.run_event(next.event);
        true
    }

    /// Runs every event up to time `t`, then sets the clock to `t`.
    pub fn run_until(&mut self, t: Millis) {
        while self.queue.peek().is_some_and(|Reverse(s)| s.at <= t) {
            self.step();
        }
        self.now = self.now.max(t);
    }

    /// Runs for `ms` of simulated time.
    pub fn run_for(&mut self, ms: u64) {
        self.run_until(Millis(self.now.0 + ms));
    }

    /// Runs until no message, storage operation or client request is pending (periodic timers
    /// and the workload aside), or `max_ms` passes. Returns whether it went quiet.
    pub fn run_until_quiet(&mut self, max_ms: u64) -> bool {
        let deadline = Millis(self.now.0 + max_ms);
        loop {
            if self.is_quiet() {
                return true;
            }
            match self.queue.peek() {
                Some(Reverse(s)) if s.at <= deadline => {
                    self.step();
                }
                _ => {
                    self.now = self.now.max(deadline);
                    return false;
                }
            }
        }
    }

    /// Runs until operation `op` has completed, or `max_ms` passes.
    pub fn run_until_done(&mut self, op: OpId, max_ms: u64) -> bool {
        let deadline = Millis(self.now.0 + max_ms);
        while self.history.op(op).is_some_and(|o| o.completed.is_none()) {
            match self.queue.peek() {
                Some(Reverse(s)) if s.at <= deadline => {
                    self.step();
                }
                _ => return false,
            }
        }
        true
    }

    pub(super) fn run_event(&mut self, event: Event) {
        match event {
            Event::Deliver { id, from, to, msg } => {
                if !self.is_up(to) {
                    return self.drop_message(id, from, to, DropReason::NodeDown);
                }
                self.flying.remove(&id);
                let tag = self.tags.message_done(id);
                self.log
                    .push(self.now, SimEvent::MessageDelivered { id, from, to });
                self.tag_last_entry(tag);
                self.input_caused(to, Input::Message { from, msg }, tag);
            }
            Event::Dropped {
                id,
                from,
                to,
                reason,
            } => self.drop_message(id, from, to, reason),
            Event::Timer {
                node,
                incarnation,
                timer,
            } => {
                if self.incarnation(node) == incarnation {
                    self.input(node, Input::Timer(timer));
                }
            }
            Event::StorageDone {
                node,
                incarnation,
                op,
                result,
            } => {
                if self.incarnation(node) == incarnation {
                    self.input(node, Input::Storage { op, result });
                }
            }
            Event::SyncDone { node, incarnation } => {
                if self.incarnation(node) == incarnation {
                    self.sync_done(node);
                }
            }
            Event::IntervalSync { node, incarnation } => {
                if self.incarnation(node) == incarnation {
                    self.interval_sync(node);
                }
            }
            Event::JobStep { node, incarnation } => {
                if self.incarnation(node) == incarnation {
                    self.job_step(node);
                }
            }
            Event::Client {
                op,
                node,
                client_op,
            } => {
                if self.is_up(node) {
                    self.input(
                        node,
                        Input::Client {
                            client: op,
                            op: client_op,
                        },
                    );
                } else {
                    self.client_done(op, node, Err(ClientError::NodeDown));
                }
            }
            Event::PeerStatus { to, about, up } => {
                if self.is_up(to) {
                    self.input(to, Input::PeerStatus { node: about, up });
                }
            }
            Event::RingChanged { to, members } => {
                if self.is_up(to) {
                    self.input(to, Input::RingChanged { members });
                }
            }
            Event::Stop { node, incarnation } => {
                if self.incarnation(node) == incarnation {
                    self.stop(node);
                }
            }
            Event::WorkloadTick => self.workload_tick(),
        }
    }

    pub(super) fn drop_message(&mut self, id: u64, from: NodeId, to: NodeId, reason: DropReason) {
        let kind = self.flying.remove(&id).map_or(MessageKind::Write, |f| f.2);
        let tag = self.tags.message_done(id);
        self.log.push(
            self.now,
            SimEvent::MessageDropped {
                id,
                from,
                to,
                kind,
                reason,
            },
        );
        self.tag_last_entry(tag);
    }

    /// Tags the entry just logged with client operation `op` (see [`trace`](super::trace)).
    pub(super) fn tag_last_entry(&mut self, op: Option<OpId>) {
        if let Some(op) = op {
            let end = self.log.total();
            let oldest = self.log.entries().front().map_or(0, |e| e.seq);
            self.tags.entries(end.saturating_sub(1), end, op, oldest);
        }
    }

    /// Feeds `input` to `node`. A client request is tagged with its operation, a storage
    /// completion with the operation its request belonged to (see [`trace`](super::trace)).
    pub(super) fn input(&mut self, node: NodeId, input: Input) {
        let cause = match &input {
            Input::Client { client, .. } => Some(*client),
            Input::Storage { op, .. } => self.tags.storage_done(node, *op),
            _ => None,
        };
        self.input_caused(node, input, cause);
    }

    /// Feeds `input` to `node`; what it does inherits `cause`.
    pub(super) fn input_caused(&mut self, node: NodeId, input: Input, cause: Option<OpId>) {
        let local = self.local(node);
        let outputs = match self.nodes.get_mut(&node).and_then(|n| n.node.as_mut()) {
            Some(n) => n.handle(local, input),
            None => return,
        };
        let previous = std::mem::replace(&mut self.tags.cause, cause);
        let start = self.log.total();
        self.apply(node, outputs);
        if let Some(op) = cause {
            let oldest = self.log.entries().front().map_or(0, |e| e.seq);
            self.tags.entries(start, self.log.total(), op, oldest);
        }
        self.tags.cause = previous;
    }

    pub(super) fn apply(&mut self, node: NodeId, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Send { to, msg } => self.send(node, to, msg),
                Output::Reply { client, result } => self.client_done(client, node, result),
                Output::SetTimer { at, timer } => {
                    let skew = self.nodes.get(&node).map_or(0, |n| n.skew_ms);
                    let global = Millis(at.0.saturating_add_signed(-skew));
                    let incarnation = self.incarnation(node);
                    self.schedule(
                        global,
                        Event::Timer {
                            node,
                            incarnation,
                            timer,
                        },
                    );
                }
                Output::Storage { op, storage } => {
                    self.tags.storage_started(node, op);
                    self.storage(node, op, storage);
                }
                Output::Event(event) => {
                    let ring_change = match event {
                        NodeEvent::Joined => Some(true),
                        NodeEvent::Left => Some(false),
                        _ => None,
                    };
                    self.log.push(self.now, SimEvent::Node { node, event });
                    if let Some(joined) = ring_change {
                        self.ring_changed(node, joined);
                    }
                }
            }
        }
    }

    pub(super) fn send(&mut self, from: NodeId, to: NodeId, msg: Message) {
        let id = self.next_msg;
        self.next_msg += 1;
        self.tags.sent(id);
        let fate = network::fate(
            &self.config.network,
            &self.partitions,
            &mut self.rng,
            from,
            to,
        );
        let arrives = Millis(self.now.0 + fate.latency_ms);
        let kind = msg.kind();
        let label = label(&msg);
        self.log.push(
            self.now,
            SimEvent::MessageSent {
                id,
                from,
                to,
                kind,
                label,
                arrives,
            },
        );
        self.flying.insert(id, (from, to, kind, self.now, arrives));
        // What crosses the wire: a message a partition or loss drops is never encoded.
        let (dropped, msg) = match fate.dropped {
            Some(reason) => (Some(reason), None),
            None => Self::over_the_wire(from, to, msg),
        };
        if let (Some(dup_ms), Some(msg)) = (fate.duplicate_ms, &msg) {
            let dup = self.next_msg;
            self.next_msg += 1;
            self.tags.sent(dup);
            let label = format!("{} (duplicate)", label_short(msg));
            let dup_at = Millis(self.now.0 + dup_ms);
            self.log.push(
                self.now,
                SimEvent::MessageSent {
                    id: dup,
                    from,
                    to,
                    kind,
                    label,
                    arrives: dup_at,
                },
            );
            self.flying.insert(dup, (from, to, kind, self.now, dup_at));
            self.schedule(
                dup_at,
                Event::Deliver {
                    id: dup,
                    from,
                    to,
                    msg: msg.clone(),
                },
            );
        }
        match (dropped, msg) {
            (None, Some(msg)) => self.schedule(arrives, Event::Deliver { id, from, to, msg }),
            (reason, _) => self.schedule(
                arrives,
                Event::Dropped {
                    id,
                    from,
                    to,
                    reason: reason.unwrap_or(DropReason::Undecodable),
                },
            ),
        }
    }

    /// The message `to` receives from `from` ([`network::carry`]; a message to oneself is
    /// handed over as it is), or why it is dropped.
    pub(super) fn over_the_wire(
        from: NodeId,
        to: NodeId,
        msg: Message,
    ) -> (Option<DropReason>, Option<Message>) {
        if from == to {
            return (None, Some(msg));
        }
        match network::carry(&msg) {
            Ok((received, _)) => (None, Some(received)),
            Err(reason) => (Some(reason), None),
        }
    }

    pub(super) fn workload_tick(&mut self) {
        let rate = u64::from(self.config.workload.ops_per_sec);
        if rate == 0 {
            return;
        }
        // One tick per 10 ms (or per op when slower), with the remainder carried by counting.
        let tick_ms = (1000 / rate).clamp(1, 10);
        let due = (self.now.0 + tick_ms) * rate / 1000 - self.now.0 * rate / 1000;
        let up: Vec<NodeId> = self
            .node_ids()
            .into_iter()
            .filter(|n| self.is_up(*n))
            .collect();
        for _ in 0..due {
            if up.is_empty() {
                break;
            }
            let coordinator = up[self.rng.random_range(0..up.len())];
            self.workload_ops += 1;
            let op = workload::next_op(&self.config.workload, &mut self.rng, self.workload_ops);
            self.client(coordinator, op);
        }
        self.schedule(Millis(self.now.0 + tick_ms), Event::WorkloadTick);
    }
}
