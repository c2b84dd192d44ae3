//! The lesson player's tests: every built-in lesson plays to its end with the events it awaits,
//! waits for the reader at every step, waits for a question's answer, and skips to a step exactly.

use super::*;
use crate::scenario::{self, SCENARIOS};

fn start(name: &str) -> (Sim, LessonPlay) {
    let info = scenario::find(name).unwrap();
    let lesson = scenario::lesson(info).unwrap();
    let sim = script::start_cluster(lesson.cluster.clone()).unwrap();
    let play = LessonPlay::new(info.name, lesson, sim.now().0, sim.log().total());
    (sim, play)
}

/// Frames of 16 ms until the lesson waits for the reader; the real time reached.
fn until_waiting(sim: &mut Sim, play: &mut LessonPlay, mut real: f64) -> f64 {
    let limit = real + 600_000.0;
    while play.phase == Phase::Running && real < limit {
        play.frame(sim, real, || 0.0);
        real += 16.0;
    }
    real
}

/// A teacher's lesson with one question with choices (R = 1 may read the stale replica).
const AUTHORED: &str = "title R = 1\nsection §4\n\
    cluster nodes=5 n=3 w=2 r=1 seed=1 layout=notes latency=2..4 tail=0\n\
    put n2 user123=Alice\nsay Alice is on C, D and E.\n\
    ask D missed the next write. What does a GET at R = 1 through D return?\n\
    choice Always the new value | No: R = 1 waits for one answer, maybe D's own.\n\
    choice* Maybe the old value | Yes: R + W = 3 is not over N = 3.\n\
    get n4 user123 r=1\nsay It returned what D had.\n";

#[test]
fn a_question_with_choices_waits_for_an_answer_and_keeps_the_score() {
    let lesson = script::parse_lesson(AUTHORED).expect("a good lesson");
    let mut sim = script::start_cluster(lesson.cluster.clone()).unwrap();
    let mut play = LessonPlay::new("mine", lesson, sim.now().0, sim.log().total());
    let mut real = until_waiting(&mut sim, &mut play, 0.0);
    assert_eq!(play.score(), (0, 1));
    play.next(real);
    assert_eq!(play.phase, Phase::Asking);
    assert_eq!(play.choices().len(), 2);
    // Next does nothing until the reader answers, even with auto-play.
    play.autoplay = true;
    for _ in 0..2_000 {
        play.frame(&mut sim, real, || 0.0);
        real += 16.0;
    }
    play.next(real);
    assert_eq!(play.phase, Phase::Asking);
    assert!(!play.choose(2), "no third choice");
    assert!(play.choose(1));
    assert!(!play.choose(0), "the first answer counts");
    let (i, c) = play.picked().expect("picked");
    assert!(i == 1 && c.right && c.why.starts_with("Yes"));
    play.autoplay = false;
    play.next(real);
    assert_eq!(play.phase, Phase::Running);
    until_waiting(&mut sim, &mut play, real);
    assert_eq!(play.phase, Phase::Reading);
    assert!(
        play.picked().is_some(),
        "the answer stays while the step is read"
    );
    assert_eq!(play.score(), (1, 1));
}

/// Every step's end, paced: (step, simulated ms, the event log's hash).
fn paced_ends(name: &str) -> Vec<(usize, u64, u64)> {
    let (mut sim, mut play) = start(name);
    play.hop_real_ms = 3.0;
    let mut real = 0.0;
    let mut ends = Vec::new();
    while play.phase != Phase::Done {
        real = until_waiting(&mut sim, &mut play, real);
        if play.phase == Phase::Reading {
            ends.push((play.step, sim.now().0, sim.log().hash()));
        }
        if let Some(right) = play.choices().iter().position(|c| c.right) {
            play.choose(right);
        }
        play.next(real);
    }
    ends
}

#[test]
fn skipping_to_a_step_leaves_the_cluster_exactly_as_playing_to_it_does() {
    for name in ["put_get_design_notes", "stale_read_r1", "gossip_spreading"] {
        let ends = paced_ends(name);
        assert!(ends.len() >= 3, "{name}: {ends:?}");
        for &(step, ms, hash) in &ends {
            let (mut sim, mut play) = start(name);
            play.skip_to(&mut sim, step);
            assert_eq!(play.phase, Phase::Reading, "{name} step {step}");
            assert_eq!(play.step, step, "{name}");
            assert_eq!(
                (sim.now().0, sim.log().hash()),
                (ms, hash),
                "{name} step {step}: skipped and paced runs differ"
            );
        }
    }
}

#[test]
fn a_lesson_waits_for_the_reader_at_every_step() {
    let (mut sim, mut play) = start("put_get_design_notes");
    let mut real = until_waiting(&mut sim, &mut play, 0.0);
    assert_eq!(play.phase, Phase::Reading);
    assert!(
        play.say().starts_with("Five nodes, A to E"),
        "{}",
        play.say()
    );
    // However long the reader takes, nothing moves.
    let now = sim.now();
    for _ in 0..1_000 {
        play.frame(&mut sim, real, || 0.0);
        real += 16.0;
    }
    assert_eq!((sim.now(), play.phase, play.step), (now, Phase::Reading, 0));
    play.next(real);
    real = until_waiting(&mut sim, &mut play, real);
    assert!(
        play.say().contains("its replicas are C, D, E"),
        "{}",
        play.say()
    );
    play.next(real);
    assert_eq!(play.phase, Phase::Asking);
    assert!(play.ask().unwrap().0.contains("Can B take the write?"));
    play.next(real);
    real = until_waiting(&mut sim, &mut play, real);
    // The client's PUT reached B, B sent the three PUTs, and nothing more.
    assert!(play.say().starts_with("Client → B"), "{}", play.say());
    assert_eq!(sim.now().0, script::START_MS);
    play.next(real);
    let began = real;
    real = until_waiting(&mut sim, &mut play, real);
    assert!(play.say().contains("The PUT reached D"), "{}", play.say());
    // At message pace a 2 ms hop takes 700 ms of real time: the step took seconds.
    assert!(real - began >= 1_000.0, "{}", real - began);
    while play.phase != Phase::Done {
        play.next(real);
        real = until_waiting(&mut sim, &mut play, real);
    }
    assert!(
        play.script.iter().any(|(_, l)| l == "=> ok ts=100 acks=2"),
        "{:?}",
        play.script
    );
    assert!(play.missed.is_none(), "{:?}", play.missed);
}

#[test]
fn every_lesson_plays_to_its_end_with_every_event_it_awaits() {
    for info in &SCENARIOS {
        let (mut sim, mut play) = start(info.name);
        play.hop_real_ms = 1.0;
        let mut real = 0.0;
        let mut steps = 0;
        while play.phase != Phase::Done && steps < 200 {
            real = until_waiting(&mut sim, &mut play, real);
            assert!(
                !play.say().is_empty() || play.phase == Phase::Done,
                "{}",
                info.name
            );
            play.next(real);
            if play.phase == Phase::Asking {
                // A question with choices: the right answer.
                if let Some(right) = play.choices().iter().position(|c| c.right) {
                    assert!(play.choose(right), "{}", info.name);
                }
                play.next(real);
            }
            steps += 1;
        }
        assert_eq!(play.phase, Phase::Done, "{}", info.name);
        assert_eq!(steps, play.lesson.steps.len(), "{}", info.name);
        assert!(play.missed.is_none(), "{}: {:?}", info.name, play.missed);
        let (right, asked) = play.score();
        assert_eq!(right, asked, "{}", info.name);
    }
}

/// Every built-in lesson played on the page's cluster logs its steps and changes on the timeline,
/// and every moment of it replays exactly: the event-log hash and clock at moments recorded
/// while it played are reached again from the snapshots, and a step marker names each step.
#[test]
fn a_lesson_played_on_the_page_replays_exactly_from_its_timeline() {
    use crate::cluster::{ClusterOptions, SimCluster};
    for info in &SCENARIOS {
        let name = info.name;
        let lesson = scenario::lesson(info).unwrap();
        let steps = lesson.steps.len();
        let mut c = SimCluster::new(&ClusterOptions {
            scenario: name.to_string(),
            ..ClusterOptions::default()
        })
        .unwrap();
        let mut play = LessonPlay::new(info.name, lesson, c.now().0, c.sim().log().total());
        // Frames as the page runs them, turning each page as soon as it waits; a moment and
        // its hash noted at every frame.
        let mut seen = Vec::new();
        // The moment each step's prose showed (the reader then turns the page at once).
        let mut reading = Vec::new();
        let mut real = 0.0;
        while play.phase != Phase::Done && real < 3_600_000.0 {
            play.frame(c.sim_mut(), real, || 0.0);
            let changes = play.take_changes();
            c.log_lesson(changes);
            seen.push((c.sim().events_run(), c.sim().log().hash(), c.now().0));
            if play.phase == Phase::Reading {
                reading.push((c.sim().log().hash(), c.now().0));
            }
            if matches!(play.phase, Phase::Reading | Phase::Asking) {
                if !play.choices().is_empty() {
                    play.choose(0);
                }
                play.next(real);
            }
            real += 16.0;
        }
        assert_eq!(play.phase, Phase::Done, "{name} played to its end");
        let view = c.timeline().view(c.now().0);
        let marks: Vec<&str> = view.markers.iter().map(|m| m.kind).collect();
        assert_eq!(
            marks.iter().filter(|k| **k == "step").count(),
            steps,
            "{name}: a marker per step: {marks:?}"
        );
        assert!(marks.iter().any(|k| *k != "step"), "{name}: {marks:?}");
        // Every 7th moment noted, then the end again.
        let (end, end_hash) = (c.sim().events_run(), c.sim().log().hash());
        // A moment is an event count with every input logged at it (several frames can end at
        // one count, with inputs between them): moments with inputs are left out.
        let with_inputs: std::collections::BTreeSet<u64> =
            c.timeline().inputs().iter().map(|l| l.events).collect();
        let moments: Vec<_> = seen
            .iter()
            .filter(|(events, ..)| !with_inputs.contains(events))
            .collect();
        assert!(moments.len() > 20, "{name}: {} moments", moments.len());
        for &&(events, hash, now) in moments.iter().step_by(7) {
            c.go_to(events).unwrap();
            assert_eq!(
                (c.sim().events_run(), c.sim().log().hash()),
                (events, hash),
                "{name}: the moment after {events} events"
            );
            assert!(c.now().0 <= now, "{name}: {} > {now}", c.now().0);
            assert!(c.in_past() || events == end);
        }
        // A step's marker shows the moment before the step began: the step before it, read.
        let starts: Vec<usize> = view
            .markers
            .iter()
            .filter(|m| m.kind == "step")
            .filter_map(|m| m.input)
            .collect();
        for (k, &input) in starts.iter().enumerate().skip(1) {
            c.go_to_input(input).unwrap();
            assert_eq!(
                (c.sim().log().hash(), c.now().0),
                reading[k - 1],
                "{name}: before step {}",
                k + 1
            );
            assert!(c.in_past());
        }
        c.go_to(end).unwrap();
        assert_eq!(c.sim().log().hash(), end_hash);
        assert!(!c.in_past());
    }
}
