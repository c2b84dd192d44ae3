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

use super::log::{SimEvent, show_bytes, show_result, show_ts};
use super::network::NetworkConfig;
use super::{Sim, SimConfig};
use crate::NodeId;
use crate::node::{ClientOp, Consistency};
use crate::ring::{Token, key_token};
use crate::storage::SyncPolicy;
use std::fmt::Write as _;

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
const WAIT_MS: u64 = 10_000;

/// Runs a whole script and returns its trace.
pub fn run_script(text: &str) -> Result<String, ScriptError> {
    let mut runner = Runner {
        sim: None,
        out: String::new(),
        shown: 0,
    };
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            if raw.trim_start().starts_with('#') {
                let _ = writeln!(runner.out, "{}", raw.trim_end());
            }
            continue;
        }
        let _ = writeln!(runner.out, "> {line}");
        runner.command(line).map_err(|message| ScriptError {
            line: i + 1,
            message,
        })?;
    }
    Ok(runner.out)
}

struct Runner {
    sim: Option<Sim>,
    out: String,
    shown: u64,
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

impl Runner {
    fn sim(&mut self) -> Result<&mut Sim, String> {
        self.sim
            .as_mut()
            .ok_or_else(|| "no cluster yet: start with `cluster`".to_string())
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

    fn command(&mut self, line: &str) -> Result<(), String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (cmd, args) = words.split_first().ok_or("empty command")?;
        match *cmd {
            "cluster" => self.cluster(args)?,
            "ring" => {
                let key = args.first().ok_or("ring KEY")?;
                let sim = self.sim()?;
                let token = key_token(key.as_bytes());
                let n = sim.config().n;
                let pref = sim.ring().preference_list(token, n);
                let pref: Vec<String> = pref.iter().map(|p| p.to_string()).collect();
                let _ = writeln!(
                    self.out,
                    "  {key}: token {token}, preference list [{}]",
                    pref.join(", ")
                );
            }
            "put" | "get" | "delete" => self.client(cmd, args)?,
            "crash" => {
                let n = node(args.first().ok_or("crash NODE")?)?;
                self.sim()?.crash(n);
                self.flush_trace();
            }
            "restart" => {
                let n = node(args.first().ok_or("restart NODE")?)?;
                self.sim()?.restart(n).map_err(|e| e.to_string())?;
                self.flush_trace();
            }
            "partition" => {
                let one_way = args.contains(&"->");
                let sep = if one_way { "->" } else { "|" };
                let pos = args
                    .iter()
                    .position(|a| *a == sep)
                    .ok_or("partition A.. | B.. or A.. -> B..")?;
                let a = args[..pos]
                    .iter()
                    .map(|a| node(a))
                    .collect::<Result<Vec<_>, _>>()?;
                let b = args[pos + 1..]
                    .iter()
                    .map(|a| node(a))
                    .collect::<Result<Vec<_>, _>>()?;
                self.sim()?.partition(&a, &b, one_way);
                self.flush_trace();
            }
            "join" => {
                let n = node(args.first().ok_or("join NODE")?)?;
                self.sim()?.add_node(n).map_err(|e| e.to_string())?;
                self.sim()?.run_until_quiet(WAIT_MS);
                self.flush_trace();
            }
            "leave" => {
                let n = node(args.first().ok_or("leave NODE")?)?;
                self.sim()?.leave(n);
                self.sim()?.run_until_quiet(WAIT_MS);
                self.flush_trace();
            }
            "load" => {
                // load COORDINATOR COUNT: puts key0..key{COUNT-1} through the coordinator, quietly.
                let n = node(args.first().ok_or("load NODE COUNT")?)?;
                let count: u32 = num("load", args.get(1).ok_or("load NODE COUNT")?)?;
                let sim = self.sim()?;
                for i in 0..count {
                    let op = ClientOp::Put {
                        key: format!("key{i}").into_bytes(),
                        value: format!("v{i}").into_bytes(),
                        consistency: None,
                    };
                    let id = sim.client(n, op);
                    sim.run_until_done(id, WAIT_MS);
                }
                sim.run_until_quiet(WAIT_MS);
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
            "heal" => {
                self.sim()?.heal();
                self.flush_trace();
            }
            "skew" => {
                let n = node(args.first().ok_or("skew NODE MS")?)?;
                let ms: i64 = num("skew", args.get(1).ok_or("skew NODE MS")?)?;
                self.sim()?.set_skew(n, ms);
                self.flush_trace();
            }
            "loss" => {
                let pct: u32 = num("loss", args.first().ok_or("loss PERCENT")?)?;
                let sim = self.sim()?;
                let network = NetworkConfig {
                    loss_ppm: pct.min(100) * 10_000,
                    ..sim.config().network.clone()
                };
                sim.set_network(network);
            }
            "run" => {
                let ms: u64 = num("run", args.first().ok_or("run MS")?)?;
                self.sim()?.run_for(ms);
                self.flush_trace();
            }
            "stabilize" => {
                self.sim()?.run_until_quiet(WAIT_MS);
                self.flush_trace();
            }
            "stored" => {
                let key = args.first().ok_or("stored KEY")?.to_string();
                let sim = self.sim()?;
                let mut lines = Vec::new();
                for id in sim.node_ids() {
                    let state = if !sim.is_up(id) {
                        "down".to_string()
                    } else {
                        match sim.stored(id, key.as_bytes()) {
                            Some(c) => match c.value {
                                Some(v) => {
                                    format!("{} ts={}", show_bytes(&v), show_ts(c.version.ts))
                                }
                                None => format!("tombstone ts={}", show_ts(c.version.ts)),
                            },
                            None => "-".to_string(),
                        }
                    };
                    lines.push(format!("  {id}: {state}"));
                }
                for l in lines {
                    let _ = writeln!(self.out, "{l}");
                }
            }
            "status" => {
                let sim = self.sim()?;
                let now = sim.now();
                let phis: std::collections::BTreeMap<NodeId, String> = sim
                    .node_ids()
                    .into_iter()
                    .filter_map(|id| {
                        let phis = sim.node(id)?.phis(now);
                        if phis.is_empty() {
                            return None;
                        }
                        let shown: Vec<String> =
                            phis.iter().map(|(p, v)| format!("{p} {v:.1}")).collect();
                        Some((id, format!(", phi [{}]", shown.join(", "))))
                    })
                    .collect();
                let snapshot = sim.snapshot();
                for n in snapshot.nodes {
                    let down: Vec<String> = n.believes_down.iter().map(|d| d.to_string()).collect();
                    let hints: Vec<String> = n
                        .hints_held
                        .iter()
                        .map(|(o, c)| format!("{c} for {o}"))
                        .collect();
                    let _ = writeln!(
                        self.out,
                        "  {}: {}, believes down [{}], hints [{}]{}",
                        n.id,
                        if n.up { "up" } else { "down" },
                        down.join(", "),
                        hints.join(", "),
                        phis.get(&n.id).map(String::as_str).unwrap_or("")
                    );
                }
            }
            other => return Err(format!("unknown command {other:?}")),
        }
        Ok(())
    }

    fn cluster(&mut self, args: &[&str]) -> Result<(), String> {
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
                "membership" => {
                    config.gossip = match value {
                        "gossip" => Some(SimConfig::fast_gossip()),
                        "oracle" => None,
                        v => return Err(format!("bad membership {v:?}: gossip or oracle")),
                    }
                }
                "sync" => {
                    config.sync = match value {
                        "always" => SyncPolicy::Always,
                        "never" => SyncPolicy::Never,
                        v => match v.strip_prefix("interval:") {
                            Some(ms) => SyncPolicy::IntervalMs(num(name, ms)?),
                            None => return Err(format!("bad sync {v:?}")),
                        },
                    }
                }
                "layout" if value == "notes" => notes_layout = true,
                _ => return Err(format!("unknown cluster option {name}={value}")),
            }
        }
        if config.n == 0
            || config.w == 0
            || config.r == 0
            || config.w > config.n
            || config.r > config.n
        {
            return Err("need 1 <= W, R <= N".to_string());
        }
        if notes_layout {
            // One token per node, evenly spaced, rotated so that user123 falls just before n3.
            let step = u64::MAX / u64::from(config.nodes.max(1));
            let anchor = key_token(b"user123").0.wrapping_add(1);
            config.tokens = Some(
                config
                    .node_ids()
                    .into_iter()
                    .map(|id| {
                        let offset = (i64::from(id.0) - 3) as u64;
                        (
                            id,
                            vec![Token(anchor.wrapping_add(offset.wrapping_mul(step)))],
                        )
                    })
                    .collect(),
            );
        }
        let _ = writeln!(
            self.out,
            "  {} nodes, N={} W={} R={}, sync {:?}",
            config.nodes, config.n, config.w, config.r, config.sync
        );
        let mut sim = Sim::new(config).map_err(|e| e.to_string())?;
        // Start the story at t = 100 ms, as the design notes' timestamps do; start-up noise
        // (nodes coming up) is not interesting in a trace.
        sim.run_for(100);
        self.shown = sim.log().total();
        self.sim = Some(sim);
        Ok(())
    }

    fn client(&mut self, cmd: &str, args: &[&str]) -> Result<(), String> {
        let coordinator = node(
            args.first()
                .ok_or("put|get|delete NODE KEY[=VALUE] [w=|r=|consistency=]")?,
        )?;
        let target = args.get(1).ok_or("missing key")?;
        let mut level = None;
        for (name, value) in options(&args[2..])? {
            match name {
                "w" | "r" | "consistency" => level = Some(value.parse::<Consistency>()?),
                _ => return Err(format!("unknown option {name}")),
            }
        }
        let op = match cmd {
            "put" => {
                let (key, value) = target.split_once('=').ok_or("put NODE KEY=VALUE")?;
                ClientOp::Put {
                    key: key.as_bytes().to_vec(),
                    value: value.as_bytes().to_vec(),
                    consistency: level,
                }
            }
            "get" => ClientOp::Get {
                key: target.as_bytes().to_vec(),
                consistency: level,
            },
            _ => ClientOp::Delete {
                key: target.as_bytes().to_vec(),
                consistency: level,
            },
        };
        let sim = self.sim()?;
        let id = sim.client(coordinator, op);
        sim.run_until_done(id, WAIT_MS);
        sim.run_until_quiet(WAIT_MS);
        let result = sim.history().op(id).and_then(|o| o.result.clone());
        self.flush_trace();
        let shown = match result {
            Some(r) => show_result(&r),
            None => "no answer".to_string(),
        };
        let _ = writeln!(
            self.out,
            "  => {cmd} {}: {shown}",
            target.split('=').next().unwrap_or(target)
        );
        Ok(())
    }
}
