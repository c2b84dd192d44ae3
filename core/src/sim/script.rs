//! Golden scripts: scenarios written as commands, whose output is a readable trace in the design
//! notes' own style (`n2 -> n3 Put user123=Alice ts=1.000`). The golden tests run every script
//! in `core/tests/scripts/` and compare the trace with the committed `.golden` file; the page
//! can run the same scenarios.
//!
//! ```text
//! cluster nodes=5 n=3 w=2 r=2 seed=1 layout=notes   # build a cluster (options below)
//! ring user123                                       # the key's token and preference list
//! put n2 user123=Alice [w=1|consistency=all]         # a client PUT through coordinator n2
//! get n2 user123 [r=1]                               # a client GET
//! delete n2 user123 [w=2]                            # a client DELETE
//! crash n5 / restart n5                              # a crash loses unsynced writes
//! partition n1 n2 | n3 n4 n5  /  partition n1 -> n2  # symmetric or one-way
//! heal                                               # restore every link
//! skew n2 -50                                        # clock offset in ms
//! loss 10                                            # message loss, percent
//! run 2000                                           # advance simulated time (ms)
//! load n1 100                                        # put key0..key99 quietly (no trace)
//! join n6 / leave n3                                 # a node joins (streams first) or leaves
//! stabilize                                          # run until nothing is in flight
//! stored user123                                     # every node's stored version
//! status                                             # who believes whom down, hints held
//! moves n6 1000                                      # keys a join would move: ring vs mod N
//! shares 16                                          # each node's ring share at 16 vnodes
//! fullcopy n4                                        # last AE session's bytes vs a full copy
//! ```
//!
//! `cluster` options: `nodes`, `n`, `w`, `r`, `seed`, `vnodes`, `latency=MIN..MAX` or
//! `latency=MS`, `tail=PPM`, `sync=always|never|interval:MS`, `timeout=MS`, `detect=MS`,
//! `ae=MS` (anti-entropy interval per node; 0 turns it off), `membership=gossip|oracle`
//! (gossip rounds every 100 ms with phi-accrual detection, or an oracle that tells nodes of
//! failures after `detect` ms; gossip messages themselves are left out of traces),
//! `layout=notes` (one token per node, placed so that `user123` falls between `n2` and `n3`:
//! the notes' ring A–E with B as coordinator and C, D, E as replicas).
//!
//! A client operation runs until it completes and then until nothing is in flight, so read
//! repair and acks after the reply show too. Lines show the simulated time and every message
//! sent or dropped, every WAL append and sync, and every protocol event.
//!
//! This file parses commands and sets clusters up; `runner` runs them and writes the trace,
//! `describe` prints what the describing commands show, and `lesson` reads a script as a
//! lesson with its narration.

use super::network::NetworkConfig;
use super::{Sim, SimConfig};
use crate::NodeId;
use crate::node::{ClientOp, Consistency, check_quorums};
use crate::ring::{Token, key_token};
use crate::storage::SyncPolicyError;
use std::fmt::Write as _;

pub mod describe;
pub mod lesson;
mod runner;

use runner::Runner;

pub use describe::{
    describe_full_copy, describe_lsm, describe_moves, describe_ring, describe_shares,
    describe_status, describe_stored, ring_shares,
};

pub use lesson::{Await, Lesson, LessonStep, Waiter, lesson_errors, parse_lesson};

/// A script that could not run: the line and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ScriptError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// How long a command may run before the script gives up waiting (simulated ms).
pub const WAIT_MS: u64 = 10_000;

/// A client operation in a script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    /// `put NODE KEY=VALUE`.
    Put,
    /// `get NODE KEY`.
    Get,
    /// `delete NODE KEY`.
    Delete,
}

/// One parsed command (the module docs list them).
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// `cluster ...`: a new cluster with this configuration.
    Cluster(Box<SimConfig>),
    /// `ring KEY`: the key's token and preference list.
    Ring(String),
    /// `put|get|delete NODE KEY[=VALUE] [w=|r=|consistency=]`.
    Client {
        /// PUT, GET or DELETE.
        kind: ClientKind,
        /// The coordinator.
        node: NodeId,
        /// The key.
        key: String,
        /// The value (PUT only).
        value: String,
        /// The consistency level, if given.
        consistency: Option<Consistency>,
        /// `start put ...`: sent without waiting for it (an `await` follows).
        background: bool,
    },
    /// `crash NODE`.
    Crash(NodeId),
    /// `restart NODE`.
    Restart(NodeId),
    /// `partition A.. | B..` or `partition A.. -> B..`.
    Partition {
        /// One side.
        a: Vec<NodeId>,
        /// The other side.
        b: Vec<NodeId>,
        /// Only a → b is cut.
        one_way: bool,
    },
    /// `join NODE`.
    Join(NodeId),
    /// `leave NODE`.
    Leave(NodeId),
    /// `load NODE COUNT`: put `key0..key{COUNT-1}` quietly.
    Load {
        /// The coordinator.
        node: NodeId,
        /// How many keys.
        count: u32,
    },
    /// `heal`.
    Heal,
    /// `skew NODE MS`.
    Skew {
        /// The node.
        node: NodeId,
        /// Clock offset.
        ms: i64,
    },
    /// `loss PERCENT`.
    Loss(u32),
    /// `run MS`.
    Run(u64),
    /// `stabilize`.
    Stabilize,
    /// `stored KEY`: every node's stored version.
    Stored(String),
    /// `status`: who believes whom down, hints held, phi.
    Status,
    /// `compact NODE`: compact the node's data store now.
    Compact(NodeId),
    /// `lsm NODE`: the node's data store: memtable, SSTables per level, flushes, compactions.
    Lsm(NodeId),
    /// `moves NODE KEYS`: how many keys would change owner if NODE joined, on the ring and
    /// with `hash mod nodes` (nothing changes).
    Moves {
        /// The node that would join.
        node: NodeId,
        /// How many keys (`key0..`).
        keys: u32,
    },
    /// `shares VNODES`: each node's share of the ring with VNODES tokens per node (nothing
    /// changes).
    Shares(u32),
    /// `fullcopy NODE`: NODE's last anti-entropy session's bytes against a full copy of its
    /// range (nothing changes).
    FullCopy(NodeId),
    /// `await ...`: run until an event of the log (see [`Await`]).
    Await(Await),
    /// `say TEXT`: a lesson's narration (not in the trace).
    Say(String),
    /// `ask QUESTION | ANSWER`: asked before a lesson step runs (not in the trace). Without
    /// `| ANSWER`, `choice` lines follow: the reader picks one.
    Ask {
        /// The question.
        question: String,
        /// Its answer, shown on request (empty: the question has choices).
        answer: String,
    },
    /// `choice TEXT | WHY` (`choice* ...` for a right one): one answer to pick for the `ask`
    /// just before, and why it is right or wrong (shown once picked).
    Choice(Choice),
    /// `title TEXT`: a lesson's title.
    Title(String),
    /// `section TEXT`: the part of the design notes a lesson teaches.
    Section(String),
    /// `names A B C D E`: the names the picture gives n1, n2, …
    Names(Vec<(NodeId, String)>),
    /// `watch gossip`: a lesson follows gossip messages at message pace.
    Watch(String),
}

impl Command {
    /// Whether the line is presentation only (narration, titles): no trace, no effect.
    pub fn is_presentation(&self) -> bool {
        matches!(
            self,
            Command::Say(_)
                | Command::Ask { .. }
                | Command::Choice(_)
                | Command::Title(_)
                | Command::Section(_)
                | Command::Names(_)
                | Command::Watch(_)
        )
    }
}

impl Command {
    /// Parses one command line (without its comment).
    pub fn parse(line: &str) -> Result<Command, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (cmd, args) = words.split_first().ok_or("empty command")?;
        let rest = || line.trim_start()[cmd.len()..].trim().to_string();
        let first_node = |usage: &str| node(args.first().ok_or(usage.to_string())?);
        Ok(match *cmd {
            "cluster" => Command::Cluster(Box::new(cluster_config(args)?)),
            "ring" => Command::Ring(args.first().ok_or("ring KEY")?.to_string()),
            "put" | "get" | "delete" => parse_client(cmd, args, false)?,
            "start" => match args.split_first() {
                Some((c @ (&"put" | &"get" | &"delete"), a)) => parse_client(c, a, true)?,
                _ => return Err("start put|get|delete ...".to_string()),
            },
            "crash" => Command::Crash(first_node("crash NODE")?),
            "restart" => Command::Restart(first_node("restart NODE")?),
            "partition" => {
                let one_way = args.contains(&"->");
                let sep = if one_way { "->" } else { "|" };
                let pos = args
                    .iter()
                    .position(|a| *a == sep)
                    .ok_or("partition A.. | B.. or A.. -> B..")?;
                let nodes = |g: &[&str]| g.iter().map(|a| node(a)).collect::<Result<Vec<_>, _>>();
                Command::Partition {
                    a: nodes(&args[..pos])?,
                    b: nodes(&args[pos + 1..])?,
                    one_way,
                }
            }
            "join" => Command::Join(first_node("join NODE")?),
            "leave" => Command::Leave(first_node("leave NODE")?),
            "load" => Command::Load {
                node: first_node("load NODE COUNT")?,
                count: match num("load", args.get(1).ok_or("load NODE COUNT")?)? {
                    n @ 0..=LOAD_KEYS_MAX => n,
                    n => return Err(format!("load writes at most {LOAD_KEYS_MAX} keys, got {n}")),
                },
            },
            "heal" => Command::Heal,
            "skew" => Command::Skew {
                node: first_node("skew NODE MS")?,
                ms: num("skew", args.get(1).ok_or("skew NODE MS")?)?,
            },
            "loss" => Command::Loss(num("loss", args.first().ok_or("loss PERCENT")?)?),
            "run" => Command::Run(num("run", args.first().ok_or("run MS")?)?),
            "stabilize" => Command::Stabilize,
            "stored" => Command::Stored(args.first().ok_or("stored KEY")?.to_string()),
            "status" => Command::Status,
            "compact" => Command::Compact(first_node("compact NODE")?),
            "lsm" => Command::Lsm(first_node("lsm NODE")?),
            "moves" => Command::Moves {
                node: first_node("moves NODE KEYS")?,
                keys: num("moves", args.get(1).ok_or("moves NODE KEYS")?)?,
            },
            "fullcopy" => Command::FullCopy(first_node("fullcopy NODE")?),
            "shares" => Command::Shares(num("shares", args.first().ok_or("shares VNODES")?)?),
            "await" => Command::Await(Await::parse(args)?),
            "say" if !args.is_empty() => Command::Say(rest()),
            "ask" if !args.is_empty() => {
                let text = rest();
                let (q, a) = text.split_once('|').unwrap_or((&text, ""));
                Command::Ask {
                    question: q.trim().to_string(),
                    answer: a.trim().to_string(),
                }
            }
            "choice" | "choice*" => {
                let text = rest();
                let (t, why) = text
                    .split_once('|')
                    .ok_or("choice TEXT | WHY (choice* for a right answer)")?;
                if t.trim().is_empty() || why.trim().is_empty() {
                    return Err("choice TEXT | WHY: both are needed".to_string());
                }
                Command::Choice(Choice {
                    text: t.trim().to_string(),
                    right: *cmd == "choice*",
                    why: why.trim().to_string(),
                })
            }
            "title" if !args.is_empty() => Command::Title(rest()),
            "section" if !args.is_empty() => Command::Section(rest()),
            "names" => Command::Names(
                args.iter()
                    .enumerate()
                    .map(|(i, n)| (NodeId(i as u32 + 1), n.to_string()))
                    .collect(),
            ),
            "watch" if args == ["gossip"] => Command::Watch("gossip".to_string()),
            other => return Err(format!("unknown command {other:?}")),
        })
    }
}

/// One answer to a lesson's question (`choice TEXT | WHY`, `choice* ...` when right).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    /// The answer as the reader sees it.
    pub text: String,
    /// Whether it is a right answer.
    pub right: bool,
    /// Why it is right or wrong, shown once the reader picked it.
    pub why: String,
}

impl Command {
    /// The nodes the command names (a lesson checks each exists when it runs).
    pub fn nodes(&self) -> Vec<NodeId> {
        match self {
            Command::Client { node, .. }
            | Command::Crash(node)
            | Command::Restart(node)
            | Command::Leave(node)
            | Command::Load { node, .. }
            | Command::Skew { node, .. }
            | Command::Compact(node)
            | Command::Lsm(node)
            | Command::FullCopy(node) => vec![*node],
            Command::Partition { a, b, .. } => a.iter().chain(b).copied().collect(),
            Command::Await(Await::Message { from, to, .. }) => {
                from.iter().chain(to.iter()).copied().collect()
            }
            Command::Await(Await::Event { node, .. }) => node.iter().copied().collect(),
            _ => Vec::new(),
        }
    }
}

/// One command of a script with the comment lines just before it (a scenario's narration).
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// 1-based line number.
    pub line: usize,
    /// The command as written (comment stripped).
    pub text: String,
    /// The `#` comment lines before it, without the `#`.
    pub comments: Vec<String>,
    /// The command.
    pub command: Command,
}

/// Parses a whole script into its steps, for a player that runs them one at a time (the page).
pub fn parse_script(text: &str) -> Result<Vec<Step>, ScriptError> {
    let mut steps = Vec::new();
    let mut comments = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            if let Some(c) = raw.trim_start().strip_prefix('#') {
                comments.push(c.trim().to_string());
            }
            continue;
        }
        let command = Command::parse(line).map_err(|message| ScriptError {
            line: i + 1,
            message,
        })?;
        steps.push(Step {
            line: i + 1,
            text: line.to_string(),
            comments: std::mem::take(&mut comments),
            command,
        });
    }
    Ok(steps)
}

/// Runs a whole script and returns its trace.
pub fn run_script(text: &str) -> Result<String, ScriptError> {
    run_script_logged(text).map(|run| run.trace)
}

/// What a whole script run gives: its trace, and the hash and length of the event log of the
/// cluster it ran last (see [`super::log::EventLog::hash`]), which pin its whole behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptRun {
    /// The trace, as [`run_script`] returns it.
    pub trace: String,
    /// The event log's hash (0 when the script starts no cluster).
    pub log_hash: u64,
    /// Events logged (0 when the script starts no cluster).
    pub log_events: u64,
}

/// Runs a whole script and returns its trace with its event log's hash.
pub fn run_script_logged(text: &str) -> Result<ScriptRun, ScriptError> {
    let mut runner = Runner {
        sim: None,
        out: String::new(),
        shown: 0,
        await_from: 0,
        last_op: None,
    };
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            if raw.trim_start().starts_with('#') {
                let _ = writeln!(runner.out, "{}", raw.trim_end());
            }
            continue;
        }
        Command::parse(line)
            .and_then(|command| {
                if command.is_presentation() {
                    return Ok(());
                }
                let _ = writeln!(runner.out, "> {line}");
                runner.command(command)
            })
            .map_err(|message| ScriptError {
                line: i + 1,
                message,
            })?;
    }
    let (log_hash, log_events) = runner
        .sim
        .as_ref()
        .map_or((0, 0), |sim| (sim.log().hash(), sim.log().total()));
    Ok(ScriptRun {
        trace: runner.out,
        log_hash,
        log_events,
    })
}

fn node(arg: &str) -> Result<NodeId, String> {
    arg.parse::<NodeId>()
}

/// Options `a=b` after the positional arguments.
fn options<'a>(args: &[&'a str]) -> Result<Vec<(&'a str, &'a str)>, String> {
    args.iter()
        .map(|a| {
            a.split_once('=')
                .ok_or_else(|| format!("expected name=value, got {a:?}"))
        })
        .collect()
}

fn num<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value.parse().map_err(|_| format!("bad {name} {value:?}"))
}

/// The simulator configuration a `cluster` command's options describe (see the module docs).
pub fn cluster_config(args: &[&str]) -> Result<SimConfig, String> {
    let mut config = SimConfig::default();
    let mut notes_layout = false;
    for (name, value) in options(args)? {
        match name {
            "nodes" => config.nodes = num(name, value)?,
            "n" => config.n = num(name, value)?,
            "w" => config.w = num(name, value)?,
            "r" => config.r = num(name, value)?,
            "seed" => config.seed = num(name, value)?,
            "vnodes" => config.vnodes = num(name, value)?,
            "latency" => {
                let (lo, hi) = value.split_once("..").unwrap_or((value, value));
                config.network.latency_min_ms = num(name, lo)?;
                config.network.latency_max_ms = num(name, hi)?;
            }
            "tail" => config.network.tail_ppm = num(name, value)?,
            "timeout" => config.request_timeout_ms = num(name, value)?,
            "detect" => config.detection_ms = num(name, value)?,
            "ae" => config.anti_entropy_interval_ms = num(name, value)?,
            "memtable" => config.lsm.memtable_bytes_max = num(name, value)?,
            "l0" => config.lsm.compaction.l0_trigger = num(name, value)?,
            "grace" => config.lsm.tombstone_grace_ms = num(name, value)?,
            "merkle" => config.merkle_depth = num(name, value)?,
            "hints" => config.hint_replay_interval_ms = num(name, value)?,
            "membership" => {
                config.gossip = match value {
                    "gossip" => Some(SimConfig::fast_gossip()),
                    "oracle" => None,
                    v => return Err(format!("bad membership {v:?}: gossip or oracle")),
                }
            }
            "sync" => config.sync = value.parse().map_err(|e: SyncPolicyError| e.to_string())?,
            "layout" if value == "notes" => notes_layout = true,
            _ => return Err(format!("unknown cluster option {name}={value}")),
        }
    }
    check_quorums(config.n, config.w, config.r).map_err(|e| e.to_string())?;
    if notes_layout {
        config.tokens = Some(notes_layout_tokens(config.nodes));
    }
    Ok(config)
}

/// The design notes' ring: one token per node, evenly spaced, rotated so that `user123` falls
/// just before `n3` (the notes' A–E with B as coordinator and C, D, E as replicas).
pub fn notes_layout_tokens(nodes: u32) -> Vec<(NodeId, Vec<Token>)> {
    let step = u64::MAX / u64::from(nodes.max(1));
    let anchor = key_token(b"user123").0.wrapping_add(1);
    (1..=nodes)
        .map(|id| {
            let offset = (i64::from(id) - 3) as u64;
            (
                NodeId(id),
                vec![Token(anchor.wrapping_add(offset.wrapping_mul(step)))],
            )
        })
        .collect()
}

fn parse_client(cmd: &str, args: &[&str], background: bool) -> Result<Command, String> {
    let coordinator = node(
        args.first()
            .ok_or("put|get|delete NODE KEY[=VALUE] [w=|r=|consistency=]")?,
    )?;
    let target = args.get(1).ok_or("missing key")?;
    let mut consistency = None;
    for (name, value) in options(&args[2..])? {
        match name {
            "w" | "r" | "consistency" => consistency = Some(value.parse::<Consistency>()?),
            _ => return Err(format!("unknown option {name}")),
        }
    }
    let (kind, key, value) = match cmd {
        "put" => {
            let (key, value) = target.split_once('=').ok_or("put NODE KEY=VALUE")?;
            (ClientKind::Put, key, value)
        }
        "get" => (ClientKind::Get, *target, ""),
        _ => (ClientKind::Delete, *target, ""),
    };
    Ok(Command::Client {
        kind,
        node: coordinator,
        key: key.to_string(),
        value: value.to_string(),
        consistency,
        background,
    })
}

/// Keys a `load` line writes at most (each is a put run to completion).
pub const LOAD_KEYS_MAX: u32 = 10_000;

impl Command {
    /// Makes the change this command makes to `sim`, at once, and nothing else: what the
    /// lesson player does before it waits, and what the page's timeline does again when it
    /// replays a lesson's run. `None` for a command that changes nothing (a wait, a
    /// description, the cluster line, prose); else whether it could be done, with a client
    /// operation's id. A `load` runs the simulation itself (each put to completion, then
    /// until quiet).
    pub fn apply<D: super::MachineDisk>(
        &self,
        sim: &mut Sim<D>,
    ) -> Option<Result<Option<super::log::OpId>, String>> {
        Some(match self {
            Command::Client { .. } => match self.client_op() {
                Some((node, op)) if sim.node_ids().contains(&node) => {
                    Ok(Some(sim.client(node, op)))
                }
                Some((node, _)) => Err(format!("no node {node}")),
                None => return None,
            },
            Command::Crash(n) => {
                sim.crash(*n);
                Ok(None)
            }
            Command::Restart(n) => sim.restart(*n).map(|()| None).map_err(|e| e.to_string()),
            Command::Partition { a, b, one_way } => {
                sim.partition(a, b, *one_way);
                Ok(None)
            }
            Command::Join(n) => sim.add_node(*n).map(|()| None).map_err(|e| e.to_string()),
            Command::Leave(n) => {
                sim.leave(*n);
                Ok(None)
            }
            Command::Load { node, count } => {
                load_keys(sim, *node, *count);
                Ok(None)
            }
            Command::Heal => {
                sim.heal();
                Ok(None)
            }
            Command::Skew { node, ms } => {
                sim.set_skew(*node, *ms);
                Ok(None)
            }
            Command::Loss(pct) => {
                set_loss(sim, *pct);
                Ok(None)
            }
            Command::Compact(n) => sim.compact(*n).map(|()| None).map_err(|e| e.to_string()),
            _ => return None,
        })
    }

    /// The client operation a [`Command::Client`] sends, if it is one.
    pub fn client_op(&self) -> Option<(NodeId, ClientOp)> {
        let Command::Client {
            kind,
            node,
            key,
            value,
            consistency,
            ..
        } = self
        else {
            return None;
        };
        let key = key.as_bytes().to_vec();
        let consistency = *consistency;
        let op = match kind {
            ClientKind::Put => ClientOp::Put {
                key,
                value: value.as_bytes().to_vec(),
                consistency,
            },
            ClientKind::Get => ClientOp::Get { key, consistency },
            ClientKind::Delete => ClientOp::Delete { key, consistency },
        };
        Some((*node, op))
    }
}

/// Where a scripted cluster's story starts (simulated ms): the design notes' timestamps start
/// there, and start-up noise (nodes coming up) is not interesting in a trace.
pub const START_MS: u64 = 100;

/// Builds a scripted cluster and runs it to [`START_MS`].
pub fn start_cluster(config: SimConfig) -> Result<Sim, String> {
    let mut sim = Sim::new(config).map_err(|e| e.to_string())?;
    sim.run_for(START_MS);
    Ok(sim)
}

/// The `cluster` line: nodes, quorums and sync policy.
pub fn describe_cluster(config: &SimConfig) -> String {
    format!(
        "{} nodes, N={} W={} R={}, sync {:?}",
        config.nodes, config.n, config.w, config.r, config.sync
    )
}

/// Puts `key0..key{count-1}` through `node`, each to completion, then waits until quiet.
pub fn load_keys<D: super::MachineDisk>(sim: &mut Sim<D>, node: NodeId, count: u32) {
    for i in 0..count {
        let op = ClientOp::Put {
            key: format!("key{i}").into_bytes(),
            value: format!("v{i}").into_bytes(),
            consistency: None,
        };
        let id = sim.client(node, op);
        sim.run_until_done(id, WAIT_MS);
    }
    sim.run_until_quiet(WAIT_MS);
}

/// Sets the network's loss rate to `pct` percent.
pub fn set_loss<D: super::MachineDisk>(sim: &mut Sim<D>, pct: u32) {
    let network = NetworkConfig {
        loss_ppm: pct.min(100) * 10_000,
        ..sim.config().network.clone()
    };
    sim.set_network(network);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_past_its_bound_is_refused_and_a_command_applies_only_its_change() {
        assert!(Command::parse(&format!("load n1 {LOAD_KEYS_MAX}")).is_ok());
        let e = Command::parse(&format!("load n1 {}", LOAD_KEYS_MAX + 1)).unwrap_err();
        assert!(e.contains("at most"), "{e}");
        let mut sim = start_cluster(SimConfig::default()).unwrap();
        let before = sim.events_run();
        let crash = Command::parse("crash n3").unwrap();
        assert_eq!(crash.apply(&mut sim), Some(Ok(None)));
        assert!(!sim.is_up(NodeId(3)));
        let put = Command::parse("put n1 user123=Alice").unwrap();
        assert!(matches!(put.apply(&mut sim), Some(Ok(Some(_)))));
        // Waits and descriptions change nothing, and no event ran.
        for line in ["run 100", "stabilize", "status", "ring user123"] {
            assert_eq!(
                Command::parse(line).unwrap().apply(&mut sim),
                None,
                "{line}"
            );
        }
        assert_eq!(sim.events_run(), before);
        let absent = Command::parse("get n9 user123").unwrap();
        assert!(matches!(absent.apply(&mut sim), Some(Err(_))));
    }

    #[test]
    fn a_script_parses_into_steps_with_their_narration() {
        let text = "# The PUT.\n# Two lines.\ncluster nodes=5 layout=notes\nput n2 user123=Alice w=all # inline\n\n# Read it.\nget n1 user123\n";
        let steps = parse_script(text).unwrap();
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[0].comments, vec!["The PUT.", "Two lines."]);
        assert!(matches!(&steps[0].command, Command::Cluster(c) if c.tokens.is_some()));
        assert_eq!(steps[1].text, "put n2 user123=Alice w=all");
        assert_eq!(
            steps[1].command,
            Command::Client {
                kind: ClientKind::Put,
                node: NodeId(2),
                key: "user123".into(),
                value: "Alice".into(),
                consistency: Some(Consistency::All),
                background: false,
            }
        );
        assert_eq!(steps[2].comments, vec!["Read it."]);
        let err = parse_script("cluster\nfly n1\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(parse_script("cluster w=4").is_err());
    }
}
