//! The lesson player: plays a lesson ([`ringstore_core::sim::script::Lesson`]) on the page's
//! cluster one step at a time, and waits for the reader between steps.
//!
//! A step runs its commands in order; each waits for what it started (a client operation to
//! complete and the cluster to go quiet, an `await`'s event, a `run`'s time), and then the
//! step's prose appears and the player stops: simulated time stands still until the reader
//! asks for the next step ([`LessonPlay::next`]: the Next button, →, a click), or the
//! auto-play's reading time is over. A step with a question shows it first and waits.
//!
//! Time runs at three paces while a step runs, so that nothing important happens inside a
//! fast-forward:
//! - **message pace** while a message that matters is in flight (every kind but gossip, and
//!   gossip too in a lesson that says `watch gossip`): the fastest hop of the cluster's latency
//!   takes [`LessonPlay::hop_real_ms`] of real time, so every hop can be followed;
//! - **idle pace** when nothing that matters is in flight (a timer is due, a node waits), fast,
//!   and announced on the picture ("fast-forward: nothing in flight");
//! - **skip pace** for a `run MS` line: announced ("3.5 s later…") and over in about two
//!   seconds.
//!
//! Time advances one whole simulated millisecond at a time and the step's condition is
//! checked after each, exactly as the golden runner does ([`script::lesson::advance`]), so a
//! lesson stops where its trace says (`ts=100` on the page is `ts=100` in the golden file).

use crate::timeline::{Input, Logged};
use ringstore_core::sim::log::SimEvent;
use ringstore_core::sim::script::{self, Await, Choice, Command, Lesson, Waiter};
use ringstore_core::sim::{MachineDisk, Sim};
use ringstore_core::wire::MessageKind;
use std::collections::BTreeMap;

/// Real ms the fastest hop takes at message pace, unless changed (tests shorten it).
pub const HOP_REAL_MS: f64 = 700.0;
/// Simulated ms per real ms when nothing that matters is in flight.
const IDLE_SPEED: f64 = 0.25;
/// Real ms a `run` takes, whatever its length.
const SKIP_REAL_MS: f64 = 2_000.0;
/// Real ms of simulation per frame at most (the page stays responsive).
const FRAME_BUDGET_MS: f64 = 8.0;
/// Script lines kept for "show script".
const SCRIPT_LINES_MAX: usize = 400;

/// Where the lesson is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The next step's question is shown; it runs when the reader asks.
    Asking,
    /// A step's commands run.
    Running,
    /// The step's prose is shown; the reader's turn.
    Reading,
    /// Every step was played.
    Done,
}

impl Phase {
    /// The phase's name for the page.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Asking => "asking",
            Phase::Running => "running",
            Phase::Reading => "reading",
            Phase::Done => "done",
        }
    }
}

#[derive(Clone, Debug)]
enum Wait {
    Nothing,
    Op { op: u64, until: u64 },
    Await { waiter: Box<Waiter>, until: u64 },
    Time(u64),
    Quiet { until: u64 },
}

/// A lesson being played. See the module docs.
#[derive(Clone, Debug)]
pub struct LessonPlay {
    /// Which lesson: a built-in's name, or what the page calls a loaded one.
    pub name: String,
    /// The lesson.
    pub lesson: Lesson,
    /// The step being run or read (0-based).
    pub step: usize,
    cmd: usize,
    /// Where it is.
    pub phase: Phase,
    wait: Wait,
    await_from: u64,
    last_op: Option<u64>,
    /// Messages that matter in flight (id → kind).
    flying: BTreeMap<u64, MessageKind>,
    scanned: u64,
    shown_ms: f64,
    last_real: Option<f64>,
    phase_since: f64,
    /// Real ms the fastest hop takes at message pace.
    pub hop_real_ms: f64,
    /// Whether steps follow each other after a reading time.
    pub autoplay: bool,
    /// Commands and their output, for "show script".
    pub script: Vec<(String, String)>,
    /// The key the lesson is about, for the picture.
    pub key: Option<String>,
    /// The client operation to follow in the picture.
    pub follow: Option<u64>,
    /// The node whose storage panel the lesson opened (`lsm NODE`, `compact NODE`).
    pub storage: Option<u32>,
    /// The ring shares compared so far (`shares VNODES`), for the picture.
    pub shares: Vec<crate::view::RingShares>,
    /// What the picture says about time now ("3.5 s later…"), if anything.
    pub note: Option<String>,
    /// A step's `await` whose event did not come (the narration may not match).
    pub missed: Option<String>,
    /// The reader's answers to questions with choices: step → the choice picked.
    pub picks: BTreeMap<usize, usize>,
    /// What the lesson changed since [`LessonPlay::take_changes`] was last called, with the
    /// moment of each (its steps' starts, and every command that changes the cluster), for
    /// the page's timeline to log.
    changes: Vec<Logged>,
    /// What the picture showed from each moment on (the event log's length when it changed):
    /// the key, the followed operation and the storage panel's node, for a moment of the
    /// lesson's past ([`LessonPlay::shown_at`]).
    trail: Vec<Shown>,
}

/// What a lesson has the picture show: see [`LessonPlay::shown_at`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Shown {
    /// From this length of the event log on.
    pub from_log: u64,
    /// The key the lesson is about.
    pub key: Option<String>,
    /// The client operation followed.
    pub follow: Option<u64>,
    /// The node whose storage panel is open.
    pub storage: Option<u32>,
}

impl LessonPlay {
    /// Starts `lesson` on a cluster already built from its `cluster` line, whose clock reads
    /// `now_ms` and whose log holds `logged` entries.
    pub fn new(name: &str, lesson: Lesson, now_ms: u64, logged: u64) -> LessonPlay {
        LessonPlay {
            name: name.to_string(),
            lesson,
            step: 0,
            cmd: 0,
            phase: Phase::Running,
            wait: Wait::Nothing,
            await_from: logged,
            last_op: None,
            flying: BTreeMap::new(),
            scanned: logged,
            shown_ms: now_ms as f64,
            last_real: None,
            phase_since: 0.0,
            hop_real_ms: HOP_REAL_MS,
            autoplay: false,
            script: Vec::new(),
            key: None,
            follow: None,
            storage: None,
            shares: Vec::new(),
            note: None,
            missed: None,
            picks: BTreeMap::new(),
            changes: Vec::new(),
            trail: Vec::new(),
        }
    }

    /// What the picture showed at the moment whose event log held `log_total` entries (the
    /// timeline shows the lesson's past with it).
    pub fn shown_at(&self, log_total: u64) -> Shown {
        let i = self.trail.partition_point(|s| s.from_log <= log_total);
        i.checked_sub(1)
            .map(|i| self.trail[i].clone())
            .unwrap_or_default()
    }

    /// Takes what the lesson changed since the last call (see `changes`), oldest first.
    pub fn take_changes(&mut self) -> Vec<Logged> {
        std::mem::take(&mut self.changes)
    }

    /// The clock to draw (continuous between the simulator's milliseconds).
    pub fn shown_ms(&self) -> f64 {
        self.shown_ms
    }

    /// Whether the lesson follows gossip (`watch gossip`): its picture shows who has heard whom.
    pub fn watches_gossip(&self) -> bool {
        self.lesson.watch_gossip
    }

    /// The step's prose, once it has run (`Reading`, `Done`), or the prose of the step
    /// before while a step runs or asks.
    pub fn say(&self) -> &str {
        let i = match self.phase {
            Phase::Reading | Phase::Done => Some(self.step),
            Phase::Running | Phase::Asking => self.step.checked_sub(1),
        };
        i.and_then(|i| self.lesson.steps.get(i))
            .map_or("", |s| s.say.as_str())
    }

    /// The question shown now, with its answer.
    pub fn ask(&self) -> Option<&(String, String)> {
        match self.phase {
            Phase::Asking => self.lesson.steps.get(self.step)?.ask.as_ref(),
            _ => None,
        }
    }

    /// The answers to pick from for the question shown now (empty: none, or an open one).
    pub fn choices(&self) -> &[Choice] {
        match self.phase {
            Phase::Asking => self
                .lesson
                .steps
                .get(self.step)
                .map_or(&[], |s| s.choices.as_slice()),
            _ => &[],
        }
    }

    /// The answer the reader picked for this step's question, if it had choices: its index
    /// and the choice (shown while the question is, and while the step runs and is read).
    pub fn picked(&self) -> Option<(usize, &Choice)> {
        let i = *self.picks.get(&self.step)?;
        Some((i, self.lesson.steps.get(self.step)?.choices.get(i)?))
    }

    /// The reader picks answer `choice` to the question shown; `false` if there is no such
    /// choice or the question was answered already (the first answer counts).
    pub fn choose(&mut self, choice: usize) -> bool {
        if choice >= self.choices().len() || self.picks.contains_key(&self.step) {
            return false;
        }
        self.picks.insert(self.step, choice);
        true
    }

    /// Questions with choices answered right, and how many the lesson asks.
    pub fn score(&self) -> (usize, usize) {
        let asked = self.lesson.steps.iter().filter(|s| !s.choices.is_empty());
        let right = self
            .picks
            .iter()
            .filter(|(step, pick)| {
                self.lesson
                    .steps
                    .get(**step)
                    .and_then(|s| s.choices.get(**pick))
                    .is_some_and(|c| c.right)
            })
            .count();
        (right, asked.count())
    }

    /// The reader asks for the next step. A question with choices waits for an answer.
    pub fn next(&mut self, real_ms: f64) {
        if !self.choices().is_empty() && !self.picks.contains_key(&self.step) {
            return;
        }
        if self.turn() {
            self.phase_since = real_ms;
            self.last_real = Some(real_ms);
        }
    }

    /// Plays the lesson at once, without pacing or questions, until step `target`'s prose
    /// shows (0-based; the last step at most): how the page goes back a step, on a cluster
    /// rebuilt from the lesson. Time advances one millisecond at a time and every wait is
    /// checked after each, as at lesson pace, so the cluster ends exactly where a paced run
    /// left it (the simulator is deterministic). The reader's answers are kept.
    pub fn skip_to<D: MachineDisk>(&mut self, sim: &mut Sim<D>, target: usize) {
        let target = target.min(self.lesson.steps.len().saturating_sub(1));
        loop {
            match self.phase {
                Phase::Done => return,
                Phase::Reading if self.step >= target => return,
                Phase::Reading | Phase::Asking => {
                    self.turn();
                }
                Phase::Running => {
                    if !self.issue_until_wait(sim, 0.0) {
                        continue;
                    }
                    let now = sim.now().0;
                    sim.run_until(ringstore_core::Millis(now + 1));
                    self.scan(sim);
                    if self.wait_over(sim) {
                        self.wait = Wait::Nothing;
                    }
                }
            }
        }
    }

    /// Turns the page: to the next step's question or commands, or to the end. `false` when
    /// there is nothing to turn (a step runs, or the lesson is over).
    fn turn(&mut self) -> bool {
        match self.phase {
            Phase::Reading => {
                if self.step + 1 >= self.lesson.steps.len() {
                    self.phase = Phase::Done;
                } else {
                    self.step += 1;
                    self.cmd = 0;
                    self.phase = if self.lesson.steps[self.step].ask.is_some() {
                        Phase::Asking
                    } else {
                        Phase::Running
                    };
                }
            }
            Phase::Asking => self.phase = Phase::Running,
            Phase::Running | Phase::Done => return false,
        }
        true
    }

    fn reading_ms(&self) -> f64 {
        let chars = match self.phase {
            Phase::Asking => self.ask().map_or(0, |(q, a)| q.len() + a.len()),
            _ => self.say().len(),
        };
        2_500.0 + 45.0 * chars as f64
    }

    /// One animation frame at real time `real_ms`: runs the step (see the module docs) or,
    /// with auto-play, turns the page when the reading time is over.
    /// `clock` reads real time (ms), for the frame's compute budget.
    pub fn frame<D: MachineDisk>(
        &mut self,
        sim: &mut Sim<D>,
        real_ms: f64,
        clock: impl Fn() -> f64,
    ) {
        let dt = self
            .last_real
            .map_or(0.0, |l| (real_ms - l).clamp(0.0, 100.0));
        self.last_real = Some(real_ms);
        match self.phase {
            Phase::Running => self.run(sim, real_ms, dt, clock),
            Phase::Reading | Phase::Asking => {
                self.note = None;
                self.shown_ms = sim.now().0 as f64;
                if self.autoplay && real_ms - self.phase_since >= self.reading_ms() {
                    self.next(real_ms);
                }
            }
            Phase::Done => {
                self.note = None;
                self.shown_ms = sim.now().0 as f64;
            }
        }
    }

    /// Issues the step's commands until one has something to wait for; `false` when the
    /// step is over (its prose shows) or the lesson is.
    fn issue_until_wait<D: MachineDisk>(&mut self, sim: &mut Sim<D>, real_ms: f64) -> bool {
        while matches!(self.wait, Wait::Nothing) {
            let Some(step) = self.lesson.steps.get(self.step) else {
                self.phase = Phase::Done;
                return false;
            };
            // The step begins (a marker on the timeline, even for a step of prose alone).
            if self.cmd == 0 {
                self.changes.push(Logged {
                    events: sim.events_run(),
                    now_ms: sim.now().0,
                    input: Input::LessonStep {
                        step: u32::try_from(self.step + 1).unwrap_or(u32::MAX),
                    },
                });
            }
            let Some(cmd) = step.commands.get(self.cmd).cloned() else {
                self.phase = Phase::Reading;
                self.phase_since = real_ms;
                self.shown_ms = sim.now().0 as f64;
                self.note = None;
                return false;
            };
            self.cmd += 1;
            self.issue(sim, &cmd);
            if let Wait::Await { .. } = self.wait {
                // As the golden runner does: the current millisecond first, whole.
                sim.run_until(sim.now());
                self.scan(sim);
            }
            if self.wait_over(sim) {
                self.wait = Wait::Nothing;
            }
        }
        true
    }

    fn run<D: MachineDisk>(
        &mut self,
        sim: &mut Sim<D>,
        real_ms: f64,
        dt: f64,
        clock: impl Fn() -> f64,
    ) {
        let began = clock();
        if !self.issue_until_wait(sim, real_ms) {
            return;
        }
        let hop_speed =
            sim.config().network.latency_min_ms.max(1) as f64 / self.hop_real_ms.max(1.0);
        let speed = match self.wait {
            Wait::Time(t) => {
                self.note = Some(format!("⏩ {} later…", show_span(t, sim.now().0)));
                (t.saturating_sub(sim.now().0) as f64 / SKIP_REAL_MS).max(0.05)
            }
            _ if !self.flying.is_empty() => {
                self.note = None;
                hop_speed
            }
            _ => {
                self.note = Some("⏩ fast-forward: nothing in flight".to_string());
                IDLE_SPEED.max(hop_speed)
            }
        };
        let busy = !self.flying.is_empty();
        self.shown_ms = self.shown_ms.max(sim.now().0 as f64) + dt * speed;
        let target = self.shown_ms.floor() as u64;
        while sim.now().0 < target {
            let now = sim.now().0;
            sim.run_until(ringstore_core::Millis(now + 1));
            self.scan(sim);
            if self.wait_over(sim) {
                self.wait = Wait::Nothing;
                self.shown_ms = sim.now().0 as f64;
                // Issue what follows now; its time runs from the next frame.
                self.issue_until_wait(sim, real_ms);
                return;
            }
            if !busy && !self.flying.is_empty() {
                // Something to follow was just sent: slow down from here.
                self.shown_ms = sim.now().0 as f64;
                return;
            }
            if clock() - began > FRAME_BUDGET_MS {
                self.shown_ms = sim.now().0 as f64;
                return;
            }
        }
    }

    /// Notes which messages that matter are in flight.
    fn scan<D: MachineDisk>(&mut self, sim: &Sim<D>) {
        let watch_gossip = self.lesson.watch_gossip;
        for entry in sim.log().since(self.scanned) {
            match &entry.event {
                SimEvent::MessageSent { id, kind, .. }
                    if *kind != MessageKind::Gossip || watch_gossip =>
                {
                    self.flying.insert(*id, *kind);
                }
                SimEvent::MessageDelivered { id, .. } | SimEvent::MessageDropped { id, .. } => {
                    self.flying.remove(id);
                }
                _ => {}
            }
        }
        self.scanned = sim.log().total();
        // A crash loses what was in flight to or from the node without a log line per
        // message; never wait on more than the simulator still carries.
        if self.flying.len() > 4_096 {
            self.flying.clear();
        }
    }

    fn wait_over<D: MachineDisk>(&mut self, sim: &Sim<D>) -> bool {
        let now = sim.now().0;
        let mut wait = std::mem::replace(&mut self.wait, Wait::Nothing);
        let over = match &mut wait {
            Wait::Nothing => true,
            Wait::Op { op, until } => {
                let done = sim.history().op(*op).is_some_and(|o| o.completed.is_some());
                let over = (done && sim.is_quiet()) || now >= *until;
                if over && done {
                    self.say_result(sim, *op);
                }
                over
            }
            Wait::Await { waiter, until } => {
                if waiter.check(sim) {
                    self.await_from = waiter.matched().unwrap_or(self.await_from);
                    if let (Await::Done, Some(op)) = (waiter.what(), self.last_op) {
                        self.say_result(sim, op);
                    }
                    true
                } else if now >= *until {
                    self.missed = Some(format!("{:?}", waiter.what()));
                    true
                } else {
                    false
                }
            }
            Wait::Time(t) => now >= *t,
            Wait::Quiet { until } => sim.is_quiet() || now >= *until,
        };
        self.wait = wait;
        over
    }

    fn say_result<D: MachineDisk>(&mut self, sim: &Sim<D>, op: u64) {
        if let Some(r) = sim.history().op(op).and_then(|o| o.result.as_ref()) {
            let line = format!("=> {}", ringstore_core::sim::log::show_result(r));
            if self.script.last().map(|(_, l)| l) != Some(&line) {
                self.line("result", line);
            }
        }
    }

    fn line(&mut self, class: &str, text: String) {
        if self.script.len() < SCRIPT_LINES_MAX {
            self.script.push((class.to_string(), text));
        }
    }

    fn issue<D: MachineDisk>(&mut self, sim: &mut Sim<D>, step: &script::Step) {
        self.line("command", format!("> {}", step.text));
        let now = sim.now().0;
        if !matches!(step.command, Command::Await(_)) {
            self.await_from = self.await_from.max(sim.log().total());
        }
        let mut out = Vec::new();
        // The change the command makes, logged with its moment for the timeline.
        let (events, now_ms) = (sim.events_run(), now);
        let applied = step.command.apply(sim);
        if applied.is_some() {
            self.changes.push(Logged {
                events,
                now_ms,
                input: Input::Script {
                    line: step.text.clone(),
                },
            });
        }
        if let Some(Err(e)) = &applied {
            out.push(format!("{} failed: {e}", step.text));
        }
        self.wait = match &step.command {
            Command::Client {
                key, background, ..
            } => {
                self.key = Some(key.clone());
                match applied {
                    Some(Ok(Some(op))) => {
                        self.follow = Some(op);
                        self.last_op = Some(op);
                        if *background {
                            Wait::Nothing
                        } else {
                            Wait::Op {
                                op,
                                until: now + script::WAIT_MS,
                            }
                        }
                    }
                    _ => Wait::Nothing,
                }
            }
            Command::Await(what) => Wait::Await {
                waiter: Box::new(Waiter::new(what.clone(), self.await_from, self.last_op)),
                until: now + script::WAIT_MS,
            },
            Command::Ring(key) => {
                self.key = Some(key.clone());
                out.push(script::describe_ring(sim, key));
                Wait::Nothing
            }
            Command::Join(_) | Command::Leave(_) | Command::Stabilize => Wait::Quiet {
                until: now + script::WAIT_MS,
            },
            Command::Load { count, .. } => {
                self.scanned = sim.log().total();
                self.flying.clear();
                out.push(format!("{count} keys written"));
                Wait::Nothing
            }
            Command::Run(ms) => Wait::Time(now + ms),
            Command::Stored(key) => {
                self.key = Some(key.clone());
                out.extend(script::describe_stored(sim, key));
                Wait::Nothing
            }
            Command::Status => {
                out.extend(script::describe_status(sim));
                Wait::Nothing
            }
            Command::Compact(n) => {
                self.storage = Some(n.0);
                Wait::Quiet {
                    until: now + script::WAIT_MS,
                }
            }
            Command::Lsm(n) => {
                self.storage = Some(n.0);
                out.extend(script::describe_lsm(sim, *n));
                Wait::Nothing
            }
            Command::Moves { node, keys } => {
                out.extend(script::describe_moves(sim, *node, *keys));
                Wait::Nothing
            }
            Command::Shares(vnodes) => {
                out.extend(script::describe_shares(sim, *vnodes));
                if self.shares.len() == crate::view::SHARES_MAX {
                    self.shares.remove(0);
                }
                self.shares.push(crate::view::RingShares {
                    vnodes: (*vnodes).max(1),
                    shares: script::ring_shares(sim, *vnodes)
                        .into_iter()
                        .map(|(id, share)| (id.0, share))
                        .collect(),
                });
                Wait::Nothing
            }
            Command::FullCopy(n) => {
                out.extend(script::describe_full_copy(sim, *n));
                Wait::Nothing
            }
            // The rest changed the cluster above (crash, restart, partition, heal, skew,
            // loss), or are not steps' commands (the cluster line, presentation lines).
            _ => Wait::Nothing,
        };
        let shown = Shown {
            from_log: sim.log().total(),
            key: self.key.clone(),
            follow: self.follow,
            storage: self.storage,
        };
        let last = self.trail.last();
        if last.is_none_or(|l| {
            (&l.key, l.follow, l.storage) != (&shown.key, shown.follow, shown.storage)
        }) {
            self.trail.push(shown);
        }
        for l in out {
            self.line("output", l);
        }
    }
}

/// `3.5 s` or `400 ms`: how far `until` is from `now`.
fn show_span(until: u64, now: u64) -> String {
    let ms = until.saturating_sub(now);
    if ms >= 1_000 {
        format!("{:.1} s", ms as f64 / 1_000.0)
    } else {
        format!("{ms} ms")
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod checker_tests;
