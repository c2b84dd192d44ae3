//! The script runner: runs a script's commands one by one on a simulated cluster and
//! writes the trace (each command, then the events it caused, without gossip messages, which
//! would drown the data path).

use super::{
    Await, ClientKind, Command, WAIT_MS, Waiter, describe_cluster, describe_full_copy,
    describe_lsm, describe_moves, describe_ring, describe_shares, describe_status, describe_stored,
    lesson, start_cluster,
};
use crate::sim::Sim;
use crate::sim::log::{SimEvent, show_result};
use std::fmt::Write as _;

pub(super) struct Runner {
    pub(super) sim: Option<Sim>,
    pub(super) out: String,
    pub(super) shown: u64,
    /// Where the next `await` starts looking in the log: before the last command, or just
    /// after the last `await`'s event, whichever is later.
    pub(super) await_from: u64,
    /// The client operation `start` sent last (`await done`).
    pub(super) last_op: Option<u64>,
}

impl Runner {
    fn sim(&mut self) -> Result<&mut Sim, String> {
        self.sim
            .as_mut()
            .ok_or_else(|| "no cluster yet: start with `cluster`".to_string())
    }

    /// Makes the change `command` makes to the cluster ([`Command::apply`]).
    fn apply(&mut self, command: &Command) -> Result<(), String> {
        command.apply(self.sim()?).unwrap_or(Ok(None)).map(|_| ())
    }

    /// Prints the log entries logged since the last command.
    fn flush_trace(&mut self) {
        let Some(sim) = self.sim.as_ref() else { return };
        let mut lines = Vec::new();
        for entry in sim.log().since(self.shown) {
            let show = match &entry.event {
                SimEvent::MessageDelivered { .. } => false,
                SimEvent::MessageSent { kind, .. } => *kind != crate::wire::MessageKind::Gossip,
                SimEvent::MessageDropped { kind, .. } => *kind != crate::wire::MessageKind::Gossip,
                _ => true,
            };
            if show {
                lines.push(format!("  {:>6}ms  {}", entry.time.0, entry.event.trace()));
            }
        }
        self.shown = sim.log().total();
        for l in lines {
            let _ = writeln!(self.out, "{l}");
        }
    }

    fn lines(&mut self, lines: Vec<String>) {
        for l in lines {
            let _ = writeln!(self.out, "  {l}");
        }
    }

    pub(super) fn command(&mut self, command: Command) -> Result<(), String> {
        if let (Some(sim), false) = (self.sim.as_ref(), matches!(command, Command::Await(_))) {
            self.await_from = self.await_from.max(sim.log().total());
        }
        match command {
            Command::Cluster(config) => {
                let _ = writeln!(self.out, "  {}", describe_cluster(&config));
                let sim = start_cluster(*config)?;
                self.shown = sim.log().total();
                self.sim = Some(sim);
            }
            Command::Ring(key) => {
                let line = describe_ring(self.sim()?, &key);
                self.lines(vec![line]);
            }
            Command::Client { .. } => self.client(&command)?,
            // What changes the cluster is made by `Command::apply`, as the page's lesson player
            // and its timeline make it; the trace and the waits are the runner's.
            Command::Crash(_)
            | Command::Restart(_)
            | Command::Partition { .. }
            | Command::Heal
            | Command::Skew { .. } => {
                self.apply(&command)?;
                self.flush_trace();
            }
            Command::Join(_) | Command::Leave(_) | Command::Compact(_) => {
                self.apply(&command)?;
                self.sim()?.run_until_quiet(WAIT_MS);
                self.flush_trace();
            }
            Command::Load { count, .. } => {
                self.apply(&command)?;
                let sim = self.sim()?;
                let ok = sim
                    .history()
                    .ops()
                    .filter(|o| matches!(o.result, Some(Ok(_))))
                    .count();
                self.shown = sim.log().total();
                let _ = writeln!(
                    self.out,
                    "  {count} keys written ({ok} operations ok so far)"
                );
            }
            Command::Loss(_) => self.apply(&command)?,
            Command::Run(ms) => {
                self.sim()?.run_for(ms);
                self.flush_trace();
            }
            Command::Stabilize => {
                self.sim()?.run_until_quiet(WAIT_MS);
                self.flush_trace();
            }
            Command::Stored(key) => {
                let lines = describe_stored(self.sim()?, &key);
                self.lines(lines);
            }
            Command::Status => {
                let lines = describe_status(self.sim()?);
                self.lines(lines);
            }
            Command::Lsm(n) => {
                let lines = describe_lsm(self.sim()?, n);
                self.lines(lines);
            }
            Command::Moves { node, keys } => {
                let lines = describe_moves(self.sim()?, node, keys);
                self.lines(lines);
            }
            Command::Shares(vnodes) => {
                let lines = describe_shares(self.sim()?, vnodes);
                self.lines(lines);
            }
            Command::FullCopy(n) => {
                let lines = describe_full_copy(self.sim()?, n);
                self.lines(lines);
            }
            Command::Await(what) => {
                let (from, op) = (self.await_from, self.last_op);
                let sim = self.sim()?;
                let mut waiter = Waiter::new(what, from, op);
                let until = sim.now().0 + WAIT_MS;
                if !lesson::advance(sim, &mut waiter, until) {
                    return Err(format!("not within {WAIT_MS} ms"));
                }
                self.await_from = waiter.matched().unwrap_or(from);
                self.flush_trace();
                if let (Some(op), Await::Done) = (op, waiter.what()) {
                    let result = self.sim()?.history().op(op).and_then(|o| o.result.clone());
                    if let Some(r) = result {
                        let _ = writeln!(self.out, "  => {}", show_result(&r));
                    }
                }
            }
            Command::Say(_)
            | Command::Ask { .. }
            | Command::Choice(_)
            | Command::Title(_)
            | Command::Section(_)
            | Command::Names(_)
            | Command::Watch(_) => {}
        }
        Ok(())
    }

    fn client(&mut self, command: &Command) -> Result<(), String> {
        let Some((coordinator, op)) = command.client_op() else {
            return Ok(());
        };
        let (cmd, key) = match command {
            Command::Client { kind, key, .. } => (
                match kind {
                    ClientKind::Put => "put",
                    ClientKind::Get => "get",
                    ClientKind::Delete => "delete",
                },
                key.clone(),
            ),
            _ => return Ok(()),
        };
        let background = matches!(
            command,
            Command::Client {
                background: true,
                ..
            }
        );
        let sim = self.sim()?;
        let id = sim.client(coordinator, op);
        if background {
            self.last_op = Some(id);
            self.flush_trace();
            return Ok(());
        }
        sim.run_until_done(id, WAIT_MS);
        sim.run_until_quiet(WAIT_MS);
        let result = sim.history().op(id).and_then(|o| o.result.clone());
        self.flush_trace();
        let shown = match result {
            Some(r) => show_result(&r),
            None => "no answer".to_string(),
        };
        let _ = writeln!(self.out, "  => {cmd} {key}: {shown}");
        Ok(())
    }
}
