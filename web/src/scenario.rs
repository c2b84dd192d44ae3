//! The scenarios menu: the golden scripts of `core/tests/scripts/`, in the order of the design
//! notes' sections, played on the live cluster one command at a time with their narration.
//!
//! The same scripts are checked by the golden tests, so what the page shows is what the tests
//! pin. A [`Play`] issues a command, waits for what it started to finish (a client operation
//! to complete and the cluster to go quiet, a `run` to elapse), holds a moment so the result
//! can be read (simulated time stands still), then issues the next. Data-path steps run at the viewer's (slow) speed; long
//! `run` steps fast-forward.

use ringstore_core::sim::script::{self, Command, Step};
use ringstore_core::sim::{MachineDisk, Sim, SimConfig};
use serde::Serialize;

/// One scenario of the menu.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Info {
    /// Its name (the script's file name), used in URLs.
    pub name: &'static str,
    /// The design notes' section it illustrates.
    pub section: &'static str,
    /// A short title.
    pub title: &'static str,
    /// The script.
    #[serde(skip)]
    pub text: &'static str,
}

macro_rules! scenario {
    ($name:literal, $section:literal, $title:literal) => {
        Info {
            name: $name,
            section: $section,
            title: $title,
            text: include_str!(concat!("../../core/tests/scripts/", $name, ".script")),
        }
    };
}

/// Every scenario, in the order of the design notes' sections.
pub const SCENARIOS: [Info; 12] = [
    scenario!(
        "put_get_design_notes",
        "§2–4 Partitioning, replication, coordination",
        "PUT user123 through coordinator B to replicas C, D, E"
    ),
    scenario!(
        "join_with_streaming",
        "§2 Partitioning",
        "A node joins: ranges stream to it"
    ),
    scenario!(
        "graceful_leave",
        "§2 Partitioning",
        "A node leaves: it hands its ranges over"
    ),
    scenario!(
        "quorum_write_one_replica_down",
        "§3 Replication",
        "Quorum write with a replica down"
    ),
    scenario!(
        "hinted_handoff",
        "§3 Replication",
        "Hinted handoff and its replay"
    ),
    scenario!("stale_read_r1", "§3 Replication", "A stale read at R = 1"),
    scenario!(
        "unmeetable_quorum",
        "§3 Replication",
        "A quorum that cannot be met"
    ),
    scenario!(
        "read_repair",
        "§4 Coordination, §7.1",
        "Read repair of a stale replica"
    ),
    scenario!(
        "failure_detection_and_recovery",
        "§5 Gossip",
        "Failure detection: phi crosses 8"
    ),
    scenario!(
        "lww_clock_skew",
        "§6 Last-write-wins",
        "LWW loses an update under clock skew"
    ),
    scenario!(
        "partition_heal_anti_entropy",
        "§7.2 Anti-entropy",
        "Partition, heal, Merkle repair of a cold key"
    ),
    scenario!(
        "delete_repaired_by_anti_entropy",
        "§7.2 Anti-entropy",
        "A delete carried by anti-entropy"
    ),
];

/// The scenario called `name`.
pub fn find(name: &str) -> Option<&'static Info> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// The scenario's steps; the first must be its `cluster` line.
pub fn steps(info: &Info) -> Result<Vec<Step>, String> {
    let steps = script::parse_script(info.text).map_err(|e| e.to_string())?;
    match steps.first().map(|s| &s.command) {
        Some(Command::Cluster(_)) => Ok(steps),
        _ => Err(format!(
            "scenario {} does not start with `cluster`",
            info.name
        )),
    }
}

/// The configuration the scenario's cluster starts with.
pub fn config(info: &Info) -> Result<SimConfig, String> {
    match steps(info)?.into_iter().next().map(|s| s.command) {
        Some(Command::Cluster(c)) => Ok(*c),
        _ => Err(format!("scenario {} has no cluster", info.name)),
    }
}

/// How fast the player should go while a step runs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Pace {
    /// The viewer's speed: something to watch.
    Watch,
    /// Fast-forward at this speed: nothing but time passing.
    Skip(f64),
    /// The scenario is over.
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Wait {
    Ready,
    Op { op: u64, until: u64 },
    Time(u64),
    Quiet { until: u64 },
    Hold { real_until: f64 },
}

/// Real ms a step's result stays before the next step.
pub const HOLD_MS: f64 = 1_200.0;
/// Real ms a fast-forwarded `run` should take.
const SKIP_REAL_MS: f64 = 3_000.0;
/// Narration lines kept.
const LINES_MAX: usize = 400;

/// A scenario being played. See the module docs.
#[derive(Clone, Debug)]
pub struct Play {
    /// Which scenario.
    pub info: &'static Info,
    steps: Vec<Step>,
    next: usize,
    wait: Wait,
    /// Narration so far: comments, commands and their results, in order.
    pub lines: Vec<(String, String)>,
    /// The key the current step is about, for the picture.
    pub key: Option<String>,
    /// The client operation the current step sent, to follow.
    pub follow: Option<u64>,
    /// Pace for the player.
    pub pace: Pace,
}

impl Play {
    /// Starts playing `info` on a cluster already built from its `cluster` line.
    pub fn new(info: &'static Info) -> Result<Play, String> {
        let steps = steps(info)?;
        let mut play = Play {
            info,
            steps,
            next: 1,
            wait: Wait::Ready,
            lines: Vec::new(),
            key: None,
            follow: None,
            pace: Pace::Watch,
        };
        let first = play.steps[0].clone();
        for c in &first.comments {
            play.say("caption", c);
        }
        play.say("command", &format!("> {}", first.text));
        Ok(play)
    }

    /// Steps done and in all.
    pub fn progress(&self) -> (usize, usize) {
        (self.next.min(self.steps.len()), self.steps.len())
    }

    fn say(&mut self, class: &str, text: &str) {
        if self.lines.len() < LINES_MAX {
            self.lines.push((class.to_string(), text.to_string()));
        }
    }

    /// Whether the scenario holds on a step's result: simulated time stands still meanwhile,
    /// so the scenario's timestamps are the golden trace's (`ts=100` as in the notes).
    pub fn holding(&self) -> bool {
        matches!(self.wait, Wait::Hold { .. } | Wait::Ready)
    }

    /// Skips the hold (the viewer asked for the next step now).
    pub fn skip_hold(&mut self) {
        if let Wait::Hold { .. } = self.wait {
            self.wait = Wait::Ready;
        }
    }

    /// Advances the scenario at real time `real_ms`: finishes waits that are over and issues
    /// the next command when ready.
    pub fn tick<D: MachineDisk>(&mut self, sim: &mut Sim<D>, real_ms: f64) {
        let now = sim.now().0;
        let over = match self.wait {
            Wait::Ready => true,
            Wait::Op { op, until } => {
                let done = sim.history().op(op).is_some_and(|o| o.completed.is_some());
                (done && sim.is_quiet()) || now >= until
            }
            Wait::Time(t) => now >= t,
            Wait::Quiet { until } => sim.is_quiet() || now >= until,
            Wait::Hold { real_until } => real_ms >= real_until,
        };
        if !over {
            return;
        }
        match self.wait {
            Wait::Ready | Wait::Hold { .. } => self.issue(sim, real_ms),
            Wait::Op { op, .. } => {
                let result = sim.history().op(op).and_then(|o| o.result.as_ref()).map_or(
                    "no answer".to_string(),
                    ringstore_core::sim::log::show_result,
                );
                let step = &self.steps[self.next - 1];
                let what = step.text.split_whitespace().take(3).collect::<Vec<_>>();
                let key = what.get(2).map_or("", |k| k.split('=').next().unwrap_or(k));
                let verb = what.first().copied().unwrap_or("");
                self.say("result", &format!("=> {verb} {key}: {result}"));
                self.hold(real_ms);
            }
            _ => self.hold(real_ms),
        }
    }

    fn hold(&mut self, real_ms: f64) {
        self.pace = Pace::Watch;
        self.wait = Wait::Hold {
            real_until: real_ms + HOLD_MS,
        };
    }

    fn issue<D: MachineDisk>(&mut self, sim: &mut Sim<D>, real_ms: f64) {
        let Some(step) = self.steps.get(self.next).cloned() else {
            self.pace = Pace::Done;
            return;
        };
        self.next += 1;
        for c in &step.comments {
            self.say("caption", c);
        }
        self.say("command", &format!("> {}", step.text));
        let now = sim.now().0;
        self.pace = Pace::Watch;
        let mut lines = Vec::new();
        let wait = match &step.command {
            Command::Cluster(_) => {
                lines.push("(a scenario has one cluster; this line is ignored)".to_string());
                Wait::Ready
            }
            Command::Client { key, .. } => {
                self.key = Some(key.clone());
                match step.command.client_op() {
                    Some((node, op)) => {
                        let op = sim.client(node, op);
                        self.follow = Some(op);
                        Wait::Op {
                            op,
                            until: now + script::WAIT_MS,
                        }
                    }
                    None => Wait::Ready,
                }
            }
            Command::Ring(key) => {
                self.key = Some(key.clone());
                lines.push(script::describe_ring(sim, key));
                Wait::Ready
            }
            Command::Crash(n) => {
                sim.crash(*n);
                Wait::Ready
            }
            Command::Restart(n) => {
                if let Err(e) = sim.restart(*n) {
                    lines.push(format!("restart failed: {e}"));
                }
                Wait::Ready
            }
            Command::Partition { a, b, one_way } => {
                sim.partition(a, b, *one_way);
                Wait::Ready
            }
            Command::Join(n) => {
                if let Err(e) = sim.add_node(*n) {
                    lines.push(format!("join failed: {e}"));
                }
                Wait::Quiet {
                    until: now + script::WAIT_MS,
                }
            }
            Command::Leave(n) => {
                sim.leave(*n);
                Wait::Quiet {
                    until: now + script::WAIT_MS,
                }
            }
            Command::Load { node, count } => {
                script::load_keys(sim, *node, *count);
                lines.push(format!("{count} keys written"));
                Wait::Ready
            }
            Command::Heal => {
                sim.heal();
                Wait::Ready
            }
            Command::Skew { node, ms } => {
                sim.set_skew(*node, *ms);
                Wait::Ready
            }
            Command::Loss(pct) => {
                script::set_loss(sim, *pct);
                Wait::Ready
            }
            Command::Run(ms) => {
                self.pace = Pace::Skip((*ms as f64 / SKIP_REAL_MS).clamp(0.05, 50.0));
                Wait::Time(now + ms)
            }
            Command::Stabilize => Wait::Quiet {
                until: now + script::WAIT_MS,
            },
            Command::Stored(key) => {
                self.key = Some(key.clone());
                lines.extend(script::describe_stored(sim, key));
                Wait::Ready
            }
            Command::Status => {
                lines.extend(script::describe_status(sim));
                Wait::Ready
            }
        };
        for l in lines {
            self.say("output", &l);
        }
        self.wait = wait;
        if self.wait == Wait::Ready {
            self.hold(real_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_parses_and_builds_its_cluster() {
        let mut names: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SCENARIOS.len());
        for info in &SCENARIOS {
            let config = config(info).unwrap();
            assert!(config.nodes >= 3, "{}", info.name);
            assert!(!info.text.is_empty());
        }
        assert!(find("read_repair").is_some());
        assert!(find("nope").is_none());
    }

    #[test]
    fn the_design_notes_scenario_plays_to_the_end_with_its_results() {
        let info = find("put_get_design_notes").unwrap();
        let mut sim = script::start_cluster(config(info).unwrap()).unwrap();
        let mut play = Play::new(info).unwrap();
        let mut real = 0.0;
        while play.pace != Pace::Done && real < 60_000.0 {
            play.tick(&mut sim, real);
            if !play.holding() {
                sim.run_for(1);
            }
            real += 16.0;
        }
        assert_eq!(play.pace, Pace::Done);
        let text: Vec<&str> = play.lines.iter().map(|(_, l)| l.as_str()).collect();
        assert!(
            text.iter()
                .any(|l| l.starts_with("The design notes' write and read flows")),
            "{text:#?}"
        );
        assert!(
            text.contains(&"=> put user123: ok ts=100 acks=2"),
            "{text:#?}"
        );
        assert!(
            text.iter()
                .any(|l| l.starts_with("=> get user123: Alice ts=100")),
            "{text:#?}"
        );
        assert!(text.contains(&"n3: Alice ts=100"), "{text:#?}");
        assert_eq!(play.key.as_deref(), Some("user123"));
        assert!(play.follow.is_some());
    }

    #[test]
    fn a_long_run_fast_forwards() {
        let info = find("failure_detection_and_recovery").unwrap();
        let mut sim = script::start_cluster(config(info).unwrap()).unwrap();
        let mut play = Play::new(info).unwrap();
        play.tick(&mut sim, 0.0);
        assert!(
            matches!(play.pace, Pace::Skip(s) if s > 0.5),
            "{:?}",
            play.pace
        );
    }
}
