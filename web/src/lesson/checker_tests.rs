//! The page's history checker after a lesson: what it says of the stale-read lesson.

use super::*;
use crate::scenario;

/// The checker orders operations by their milliseconds: a read sent in the millisecond the
/// write completed counts as concurrent with it, so the lesson lets time pass before its
/// read, and the page's checker then lists the stale read as allowed by R + W ≤ N.
#[test]
fn after_the_stale_read_lesson_the_checker_explains_its_stale_read() {
    let info = scenario::find("stale_read_r1").unwrap();
    let lesson = scenario::lesson(info).unwrap();
    let mut sim = script::start_cluster(lesson.cluster.clone()).unwrap();
    let mut play = LessonPlay::new(info.name, lesson, sim.now().0, sim.log().total());
    play.hop_real_ms = 1.0;
    let mut real = 0.0;
    while play.phase != Phase::Done && real < 10_000_000.0 {
        while play.phase == Phase::Running {
            play.frame(&mut sim, real, || 0.0);
            real += 16.0;
        }
        if let Some(right) = play.choices().iter().position(|c| c.right) {
            play.choose(right);
        }
        play.next(real);
    }
    assert_eq!(play.phase, Phase::Done);
    let view = crate::page::checker(&sim);
    assert_eq!(view.stale_reads, 1, "{view:?}");
    assert_eq!(view.strict_violations, 0, "{view:?}");
    let verdict = &view.stale[0].2;
    assert!(!verdict.violation, "{view:?}");
    assert!(
        verdict
            .why
            .contains("R + W ≤ N (W = 1, R = 1, N = 3) allows this read to miss the write"),
        "{}",
        verdict.why
    );
}

/// With R + W ≤ N no stale read breaks the quorum invariant, however many there are: the
/// card's count agrees with every listed verdict (it used to count all of them as violations
/// and take back only the twenty it listed).
#[test]
fn with_r_plus_w_at_most_n_no_stale_read_counts_as_a_violation() {
    let mut config = ringstore_core::sim::SimConfig {
        seed: 11,
        w: 1,
        r: 1,
        ..Default::default()
    };
    config.workload.ops_per_sec = 400;
    config.workload.read_pct = 50;
    config.workload.keys = 4;
    let mut sim = Sim::new(config).unwrap();
    sim.crash(ringstore_core::NodeId(2));
    sim.run_for(4_000);
    sim.restart(ringstore_core::NodeId(2)).unwrap();
    sim.run_for(20_000);
    let view = crate::page::checker(&sim);
    assert!(view.stale_reads > 20, "{view:?}");
    assert_eq!(view.strict_violations, 0, "{view:?}");
    assert!(view.stale.iter().all(|(_, _, v)| !v.violation), "{view:?}");
}
