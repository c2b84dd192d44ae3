//! Lessons: golden scripts with narration. A lesson is a script in which `say` lines carry the
//! prose a reader sees, `await` lines tie that prose to the simulator's own events (a `Put`
//! delivered to D, `HintReplayed`, `RepairDone`), and `title`, `section`, `names`, `ask` and
//! `watch` lines tell a player how to present it. `docs/LESSONS.md` describes the format.
//!
//! This module holds what the golden runner and the page's player share: the `await`
//! conditions and how they are checked against the event log ([`Waiter`]), how simulated time
//! is advanced until one holds ([`advance`]), and a lesson's division into steps
//! ([`parse_lesson`]).

use super::{Choice, Command, ScriptError, Step, parse_script};
use crate::NodeId;
use crate::membership::GossipEvent;
use crate::node::{NodeEvent, StoreId};
use crate::sim::log::{LogEntry, SimEvent};
use crate::sim::{MachineDisk, Sim, SimConfig};
use std::collections::BTreeSet;

/// What an `await` line waits for (the events of the simulator's log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Await {
    /// `await sent|delivered|dropped LABEL [FROM] [-> TO]`: a message whose label starts with
    /// `LABEL` (`Put`, `Ack`, `HintReplay`, `AE`…; `*` for any) between those nodes.
    Message {
        /// Sent, delivered or dropped.
        phase: MessagePhase,
        /// The label's first word, or `*`.
        label: String,
        /// The sender, if given.
        from: Option<NodeId>,
        /// The receiver, if given.
        to: Option<NodeId>,
    },
    /// `await NAME [NODE]`: a named event (see [`EVENT_NAMES`]) at `NODE` (for the gossip
    /// verdicts `Suspect`, `Down`, `Up`: about `NODE`).
    Event {
        /// One of [`EVENT_NAMES`].
        name: String,
        /// The node, if given.
        node: Option<NodeId>,
    },
    /// `await done`: the client operation the script started last has completed.
    Done,
    /// `await quiet`: nothing in flight (periodic timers aside).
    Quiet,
}

/// A message's phase in an `await` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessagePhase {
    /// It left its sender.
    Sent,
    /// It arrived.
    Delivered,
    /// It was lost (partition, loss, a dead receiver).
    Dropped,
}

/// The event names `await NAME` accepts.
pub const EVENT_NAMES: [&str; 22] = [
    "ClientBegin",
    "ClientDone",
    "RequestStarted",
    "ReadRepair",
    "HintStored",
    "HintReplayed",
    "HintDropped",
    "WalAppend",
    "HintAppend",
    "Sync",
    "Flush",
    "Compaction",
    "NodeUp",
    "NodeDown",
    "JoinStarted",
    "Joined",
    "Left",
    "StreamDone",
    "RepairDone",
    "Suspect",
    "Down",
    "Up",
];

impl Await {
    /// Parses the words after `await`.
    pub fn parse(args: &[&str]) -> Result<Await, String> {
        let usage = "await sent|delivered|dropped LABEL [FROM] [-> TO], await NAME [NODE], await done or await quiet";
        let (first, rest) = args.split_first().ok_or(usage)?;
        let node = |s: &str| s.parse::<NodeId>();
        let phase = match *first {
            "done" if rest.is_empty() => return Ok(Await::Done),
            "quiet" if rest.is_empty() => return Ok(Await::Quiet),
            "sent" => Some(MessagePhase::Sent),
            "delivered" => Some(MessagePhase::Delivered),
            "dropped" => Some(MessagePhase::Dropped),
            _ => None,
        };
        if let Some(phase) = phase {
            let (label, rest) = rest.split_first().ok_or(usage)?;
            let (from, to) = match rest {
                [] => (None, None),
                [f] => (Some(node(f)?), None),
                ["->", t] => (None, Some(node(t)?)),
                [f, "->", t] => (Some(node(f)?), Some(node(t)?)),
                _ => return Err(usage.to_string()),
            };
            return Ok(Await::Message {
                phase,
                label: label.to_string(),
                from,
                to,
            });
        }
        if !EVENT_NAMES.contains(first) {
            return Err(format!(
                "unknown event {first:?}: one of sent, delivered, dropped, done, quiet, {}",
                EVENT_NAMES.join(", ")
            ));
        }
        let node = match rest {
            [] => None,
            [n] => Some(node(n)?),
            _ => return Err(usage.to_string()),
        };
        Ok(Await::Event {
            name: first.to_string(),
            node,
        })
    }
}

/// The name and node of an event, for [`Await::Event`] (`None`: not an awaitable event).
fn event_name(event: &SimEvent) -> Option<(&'static str, NodeId)> {
    Some(match event {
        SimEvent::ClientBegin { node, .. } => ("ClientBegin", *node),
        SimEvent::ClientDone { node, .. } => ("ClientDone", *node),
        SimEvent::DiskWrite {
            node,
            store: StoreId::Data,
            ..
        } => ("WalAppend", *node),
        SimEvent::DiskWrite { node, .. } => ("HintAppend", *node),
        SimEvent::DiskSync { node, .. } => ("Sync", *node),
        SimEvent::Flush { node, .. } => ("Flush", *node),
        SimEvent::Compaction { node, .. } => ("Compaction", *node),
        SimEvent::NodeUp { node } => ("NodeUp", *node),
        SimEvent::NodeDown { node } => ("NodeDown", *node),
        SimEvent::Node { node, event } => match event {
            NodeEvent::RequestStarted { .. } => ("RequestStarted", *node),
            NodeEvent::ReadRepair { .. } => ("ReadRepair", *node),
            NodeEvent::HintStored { .. } => ("HintStored", *node),
            NodeEvent::HintReplayed { .. } => ("HintReplayed", *node),
            NodeEvent::HintDropped { .. } => ("HintDropped", *node),
            NodeEvent::JoinStarted { .. } => ("JoinStarted", *node),
            NodeEvent::Joined => ("Joined", *node),
            NodeEvent::Left => ("Left", *node),
            NodeEvent::StreamDone { .. } => ("StreamDone", *node),
            NodeEvent::RepairDone { .. } => ("RepairDone", *node),
            NodeEvent::Membership(GossipEvent::PeerSuspect { node: about, .. }) => {
                ("Suspect", *about)
            }
            NodeEvent::Membership(GossipEvent::PeerDown { node: about }) => ("Down", *about),
            NodeEvent::Membership(GossipEvent::PeerUp { node: about }) => ("Up", *about),
            _ => return None,
        },
        _ => return None,
    })
}

/// Watches the event log for one [`Await`] condition, from a log position on.
#[derive(Clone, Debug)]
pub struct Waiter {
    what: Await,
    /// The next log entry to look at.
    cursor: u64,
    /// The client operation `await done` is about.
    op: Option<u64>,
    /// Messages sent that match (for `delivered` and `dropped`).
    sent: BTreeSet<u64>,
    /// The log position just after the matching entry, once matched.
    matched: Option<u64>,
}

impl Waiter {
    /// Waits for `what` among the entries from log position `cursor` on; `op` is the
    /// operation `await done` waits for.
    pub fn new(what: Await, cursor: u64, op: Option<u64>) -> Waiter {
        Waiter {
            what,
            cursor,
            op,
            sent: BTreeSet::new(),
            matched: None,
        }
    }

    /// What it waits for.
    pub fn what(&self) -> &Await {
        &self.what
    }

    /// The log position just after the entry that met the condition (the next `await`
    /// looks from there), once met.
    pub fn matched(&self) -> Option<u64> {
        self.matched
    }

    /// Looks at what was logged since the last look; whether the condition holds.
    pub fn check<D: MachineDisk>(&mut self, sim: &Sim<D>) -> bool {
        if self.matched.is_some() {
            return true;
        }
        match &self.what {
            Await::Done => {
                let done = self
                    .op
                    .is_none_or(|op| sim.history().op(op).is_none_or(|o| o.completed.is_some()));
                if done {
                    self.matched = Some(sim.log().total());
                }
                return done;
            }
            Await::Quiet => {
                if sim.is_quiet() {
                    self.matched = Some(sim.log().total());
                }
                return self.matched.is_some();
            }
            _ => {}
        }
        let from = self.cursor;
        self.cursor = sim.log().total();
        for entry in sim.log().since(from) {
            if self.entry_matches(entry) {
                self.matched = Some(entry.seq + 1);
                return true;
            }
        }
        false
    }

    fn entry_matches(&mut self, entry: &LogEntry) -> bool {
        let node_ok = |want: &Option<NodeId>, got: NodeId| want.is_none_or(|w| w == got);
        match (&self.what, &entry.event) {
            (
                Await::Message {
                    phase,
                    label,
                    from,
                    to,
                },
                SimEvent::MessageSent {
                    id,
                    from: f,
                    to: t,
                    label: l,
                    ..
                },
            ) => {
                let first = l.split_whitespace().next().unwrap_or("");
                let ok = (label == "*" || first == label) && node_ok(from, *f) && node_ok(to, *t);
                if ok && *phase != MessagePhase::Sent {
                    self.sent.insert(*id);
                }
                ok && *phase == MessagePhase::Sent
            }
            (
                Await::Message {
                    phase: MessagePhase::Delivered,
                    ..
                },
                SimEvent::MessageDelivered { id, .. },
            )
            | (
                Await::Message {
                    phase: MessagePhase::Dropped,
                    ..
                },
                SimEvent::MessageDropped { id, .. },
            ) => self.sent.contains(id),
            (Await::Event { name, node }, event) => {
                event_name(event).is_some_and(|(n, at)| n == name && node_ok(node, at))
            }
            _ => false,
        }
    }
}

/// Runs `sim` until `waiter` is met or the simulated clock reaches `until_ms`; whether it was
/// met. Time goes by whole milliseconds: the current one is finished first, then one at a
/// time, and the condition is checked after each. The golden runner and the page's player
/// advance the same way, so a lesson stops at the same simulated moment in both.
pub fn advance<D: MachineDisk>(sim: &mut Sim<D>, waiter: &mut Waiter, until_ms: u64) -> bool {
    loop {
        let now = sim.now();
        sim.run_until(now);
        if waiter.check(sim) {
            return true;
        }
        if now.0 >= until_ms {
            return false;
        }
        sim.run_until(crate::Millis(now.0 + 1));
    }
}

/// One step of a lesson: commands (with their `await`s), then the prose shown once they are
/// done, and the question asked before they run, if any.
#[derive(Clone, Debug, PartialEq)]
pub struct LessonStep {
    /// Asked before the step runs: the question and its answer (empty when it has choices).
    pub ask: Option<(String, String)>,
    /// The answers to pick from, if the question has choices (at least one right).
    pub choices: Vec<Choice>,
    /// Commands and `await`s, in order.
    pub commands: Vec<Step>,
    /// The `say` lines, joined into one paragraph.
    pub say: String,
}

/// A lesson: its cluster, presentation and steps.
#[derive(Clone, Debug, PartialEq)]
pub struct Lesson {
    /// The `title` line.
    pub title: String,
    /// The `section` line: which part of the design notes it teaches.
    pub section: String,
    /// The cluster it starts from.
    pub cluster: SimConfig,
    /// The names the picture gives nodes (`names A B C D E`: n1 is A…), in id order.
    pub names: Vec<(NodeId, String)>,
    /// Whether gossip messages are followed at message pace (`watch gossip`).
    pub watch_gossip: bool,
    /// The steps, in order.
    pub steps: Vec<LessonStep>,
}

/// Whether a question's choices can be answered: two or more, one at least right.
fn choices_ok(choices: &[Choice]) -> bool {
    choices.len() >= 2 && choices.iter().any(|c| c.right)
}

/// The longest lesson file accepted (bytes).
pub const LESSON_BYTES_MAX: usize = 64 * 1024;
/// Errors [`lesson_errors`] reports at most.
pub const LESSON_ERRORS_MAX: usize = 20;
/// Choices a question may offer at most.
pub const CHOICES_MAX: usize = 6;

/// Every error of a lesson file, each with its line (at most [`LESSON_ERRORS_MAX`]): every
/// line that does not parse, else the first error of the lesson as a whole (its structure,
/// a node that does not exist). Empty: the lesson is good.
pub fn lesson_errors(text: &str) -> Vec<ScriptError> {
    if text.len() > LESSON_BYTES_MAX {
        return vec![ScriptError {
            line: 1,
            message: format!(
                "a lesson is at most {} KiB; this one has {} bytes",
                LESSON_BYTES_MAX / 1024,
                text.len()
            ),
        }];
    }
    let mut errors: Vec<ScriptError> = text
        .lines()
        .enumerate()
        .filter_map(|(i, raw)| {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                return None;
            }
            Command::parse(line).err().map(|message| ScriptError {
                line: i + 1,
                message,
            })
        })
        .take(LESSON_ERRORS_MAX)
        .collect();
    if errors.is_empty()
        && let Err(e) = parse_lesson(text)
    {
        errors.push(e);
    }
    errors
}

/// Parses a lesson: a script whose first command is `cluster`, divided into steps at each
/// block of `say` lines (a step ends with its prose). `ask` opens the next step; `choice`
/// lines right after it are its answers to pick from. Every node a command names must exist
/// by then (the cluster's, or one that joined).
pub fn parse_lesson(text: &str) -> Result<Lesson, ScriptError> {
    if text.len() > LESSON_BYTES_MAX {
        return Err(ScriptError {
            line: 1,
            message: format!("a lesson is at most {} KiB", LESSON_BYTES_MAX / 1024),
        });
    }
    let lines = parse_script(text)?;
    let err = |line: usize, message: &str| ScriptError {
        line,
        message: message.to_string(),
    };
    let mut lesson = Lesson {
        title: String::new(),
        section: String::new(),
        cluster: SimConfig::default(),
        names: Vec::new(),
        watch_gossip: false,
        steps: Vec::new(),
    };
    let mut cluster = false;
    let mut step = LessonStep {
        ask: None,
        choices: Vec::new(),
        commands: Vec::new(),
        say: String::new(),
    };
    let mut in_say = false;
    let mut nodes: BTreeSet<NodeId> = BTreeSet::new();
    let mut ask_line = 0;
    let check = |step: &LessonStep, ask_line: usize| match &step.ask {
        Some((_, answer)) if answer.is_empty() && !choices_ok(&step.choices) => Err(err(
            ask_line,
            "an `ask` without `| ANSWER` needs two or more `choice` lines, one `choice*` (right)",
        )),
        _ => Ok(()),
    };
    for line in lines {
        for n in line.command.nodes() {
            if !nodes.contains(&n) {
                let known = if nodes.is_empty() {
                    "none yet".to_string()
                } else {
                    let names: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
                    names.join(", ")
                };
                return Err(err(
                    line.line,
                    &format!("there is no node {n} here (the nodes: {known})"),
                ));
            }
        }
        if let Command::Join(n) = &line.command {
            nodes.insert(*n);
        }
        let is_say = matches!(line.command, Command::Say(_));
        if in_say && !is_say {
            check(&step, ask_line)?;
            lesson.steps.push(std::mem::replace(
                &mut step,
                LessonStep {
                    ask: None,
                    choices: Vec::new(),
                    commands: Vec::new(),
                    say: String::new(),
                },
            ));
        }
        in_say = is_say;
        match line.command {
            Command::Title(t) => lesson.title = t,
            Command::Section(s) => lesson.section = s,
            Command::Names(n) => lesson.names = n,
            Command::Watch(w) => lesson.watch_gossip |= w == "gossip",
            Command::Cluster(c) if !cluster => {
                nodes = (1..=c.nodes).map(NodeId).collect();
                lesson.cluster = *c;
                cluster = true;
            }
            Command::Cluster(_) => return Err(err(line.line, "a lesson has one `cluster` line")),
            _ if !cluster => return Err(err(line.line, "a lesson starts with `cluster`")),
            Command::Say(s) => {
                if !step.say.is_empty() {
                    step.say.push(' ');
                }
                step.say.push_str(&s);
            }
            Command::Ask { question, answer } => {
                if !step.commands.is_empty() || step.ask.is_some() {
                    return Err(err(line.line, "`ask` comes first in its step"));
                }
                step.ask = Some((question, answer));
                ask_line = line.line;
            }
            Command::Choice(c) => {
                let open = step.ask.as_ref().is_some_and(|(_, a)| !a.is_empty());
                if step.ask.is_none() || open || !step.commands.is_empty() {
                    return Err(err(
                        line.line,
                        "`choice` lines come right after an `ask QUESTION` without `| ANSWER`",
                    ));
                }
                if step.choices.len() == CHOICES_MAX {
                    return Err(err(
                        line.line,
                        &format!("a question has at most {CHOICES_MAX} choices"),
                    ));
                }
                step.choices.push(c);
            }

            _ => step.commands.push(line),
        }
    }
    if in_say {
        check(&step, ask_line)?;
        lesson.steps.push(step);
    } else if !step.commands.is_empty() || step.ask.is_some() {
        return Err(err(
            text.lines().count(),
            "a lesson ends with `say`: the last commands have no narration",
        ));
    }
    if !cluster {
        return Err(err(1, "a lesson starts with `cluster`"));
    }
    Ok(lesson)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "title T\nsection S\ncluster nodes=5 n=3 w=2 r=2 seed=1\n";

    #[test]
    fn a_question_with_choices_parses_and_bad_ones_name_their_line() {
        let text = format!(
            "{HEAD}say One.\nask What does this GET return?\nchoice Alice2 | No: R = 1 reads one replica.\n\
             choice* Maybe Alice | Yes: R + W <= N.\nget n4 user123 r=1\nsay Two.\n"
        );
        let lesson = parse_lesson(&text).expect("parses");
        let step = &lesson.steps[1];
        assert_eq!(
            step.ask.as_ref().map(|a| a.0.as_str()),
            Some("What does this GET return?")
        );
        assert_eq!(step.choices.len(), 2);
        assert!(!step.choices[0].right && step.choices[1].right);
        assert_eq!(step.choices[1].why, "Yes: R + W <= N.");
        // No right choice: the `ask` line is named.
        let bad = text.replace("choice* Maybe", "choice Maybe");
        let e = parse_lesson(&bad).unwrap_err();
        assert_eq!(e.line, 5, "{e}");
        assert!(e.message.contains("choice*"), "{e}");
        // A choice without an ask, one without a reason.
        let e = parse_lesson(&format!("{HEAD}choice A | B\nsay x\n")).unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        assert_eq!(
            Command::parse("choice A").unwrap_err(),
            "choice TEXT | WHY (choice* for a right answer)"
        );
    }

    #[test]
    fn every_bad_line_is_reported_with_its_number_and_absent_nodes_are_named() {
        let text = format!("{HEAD}say One.\nfrobnicate n1\nput n1 k=v\nrun soon\nsay Two.\n");
        let errors = lesson_errors(&text);
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![5, 7], "{errors:?}");
        assert!(errors[0].message.contains("unknown command"), "{errors:?}");
        let text = format!("{HEAD}say One.\ncrash n9\nsay Two.\n");
        let errors = lesson_errors(&text);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 5);
        assert!(errors[0].message.contains("no node n9"), "{errors:?}");
        // A node that joined exists from its join on.
        let text = format!("{HEAD}say One.\njoin n6\ncrash n6\nsay Two.\n");
        assert_eq!(lesson_errors(&text), vec![]);
        let huge = format!("{HEAD}{}", "say x\n".repeat(LESSON_BYTES_MAX / 6 + 1));
        assert_eq!(lesson_errors(&huge).len(), 1);
        assert!(parse_lesson(&huge).is_err());
    }

    #[test]
    fn awaits_parse_and_bad_ones_are_explained() {
        assert_eq!(
            Await::parse(&["delivered", "Put", "->", "n4"]).unwrap(),
            Await::Message {
                phase: MessagePhase::Delivered,
                label: "Put".into(),
                from: None,
                to: Some(NodeId(4)),
            }
        );
        assert_eq!(
            Await::parse(&["HintReplayed", "n1"]).unwrap(),
            Await::Event {
                name: "HintReplayed".into(),
                node: Some(NodeId(1)),
            }
        );
        assert_eq!(Await::parse(&["done"]).unwrap(), Await::Done);
        assert!(
            Await::parse(&["Teleported"])
                .unwrap_err()
                .contains("unknown event")
        );
        assert!(Await::parse(&["sent"]).is_err());
        assert!(Await::parse(&["sent", "Put", "n2", "n3"]).is_err());
    }

    #[test]
    fn a_lesson_splits_into_steps_at_its_prose() {
        let text = "title T\nsection §4\ncluster nodes=5 layout=notes\nnames A B C D E\n\
                    say One.\nsay Still one.\nask Q? | A.\nstart put n2 user123=Alice\n\
                    await RequestStarted n2\nsay Two.\nawait done\nsay Three.\n";
        let lesson = parse_lesson(text).unwrap();
        assert_eq!(
            (lesson.title.as_str(), lesson.section.as_str()),
            ("T", "§4")
        );
        assert_eq!(lesson.names[1], (NodeId(2), "B".to_string()));
        assert_eq!(lesson.steps.len(), 3);
        assert_eq!(lesson.steps[0].say, "One. Still one.");
        assert!(lesson.steps[0].commands.is_empty());
        assert_eq!(lesson.steps[1].ask, Some(("Q?".into(), "A.".into())));
        assert_eq!(lesson.steps[1].commands.len(), 2);
        assert_eq!(lesson.steps[2].say, "Three.");
        let unsaid = parse_lesson("cluster\nsay x\nrun 10\n").unwrap_err();
        assert!(unsaid.message.contains("ends with `say`"), "{unsaid}");
        assert!(parse_lesson("run 10\nsay x\n").is_err());
    }

    #[test]
    fn an_await_stops_at_the_millisecond_of_its_event() {
        let config =
            super::super::cluster_config(&["nodes=5", "layout=notes", "latency=2..4", "tail=0"])
                .unwrap();
        let mut sim = super::super::start_cluster(config).unwrap();
        let cursor = sim.log().total();
        let op = sim.client(
            NodeId(2),
            crate::node::ClientOp::Put {
                key: b"user123".to_vec(),
                value: b"Alice".to_vec(),
                consistency: None,
            },
        );
        let started = sim.now().0;
        let mut delivered = Waiter::new(
            Await::parse(&["delivered", "Put", "->", "n4"]).unwrap(),
            cursor,
            Some(op),
        );
        assert!(advance(&mut sim, &mut delivered, started + 1_000));
        let at = sim.now().0;
        assert!((started + 2..=started + 4).contains(&at), "{at}");
        assert!(sim.history().op(op).unwrap().completed.is_none());
        let mut done = Waiter::new(Await::Done, delivered.matched().unwrap(), Some(op));
        assert!(advance(&mut sim, &mut done, at + 1_000));
        assert!(sim.history().op(op).unwrap().completed.is_some());
        let mut never = Waiter::new(
            Await::parse(&["HintReplayed"]).unwrap(),
            sim.log().total(),
            None,
        );
        let until = sim.now().0 + 50;
        assert!(!advance(&mut sim, &mut never, until));
    }
}
