//! Pacing: how much simulated time each animation frame runs, at a chosen speed, within a
//! compute budget so the page stays responsive.
//!
//! The player keeps a continuous clock (`shown_ms`, a float: at 0.01× a frame advances a
//! hundredth of a millisecond, and messages must still glide) and asks the simulator to run to
//! its whole millisecond. If the simulator cannot keep up within [`Player::budget_ms`] of real
//! time per frame, the shown clock falls back to where the simulator got (no debt piles up),
//! and [`Player::rate`] reports the speed actually achieved.
//!
//! While it falls behind (a large cluster at a high speed: the user asked for as fast as it
//! goes), a fixed budget would leave the simulation a small share of each frame: the rest of
//! a frame (drawing, rasterising, the DOM) takes what it takes, and the frame rate is then
//! whatever that gives. So behind, the budget grows to what keeps frames near
//! [`BEHIND_FRAME_MS`] apart given what the rest of the frame has been costing (measured as
//! the frame interval minus the simulation's share, smoothed), never below
//! [`Player::budget_ms`] nor above [`BUDGET_MAX_MS`]: about 20 frames per second, and most of
//! the time for the simulation. Keeping up, the budget stays [`Player::budget_ms`].

/// Speeds the page offers, slowest first (× real time).
pub const SPEEDS: [f64; 14] = [
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0,
];

/// The longest slice of simulated time run without looking at the clock.
const SLICE_MS_MAX: u64 = 1_000;

/// A frame's real time longer than this (a background tab, a debugger) counts as this much.
const FRAME_GAP_MAX_MS: f64 = 100.0;

/// While the simulation falls behind, the frame interval the budget aims at (ms): 20 fps.
pub const BEHIND_FRAME_MS: f64 = 50.0;

/// The largest budget per frame (ms), however cheap the rest of a frame is.
pub const BUDGET_MAX_MS: f64 = 40.0;

/// The pacing state. See the module docs.
#[derive(Clone, Debug)]
pub struct Player {
    /// Simulated ms per real ms.
    pub speed: f64,
    /// Whether time runs.
    pub playing: bool,
    /// Real ms of simulation work allowed per frame.
    pub budget_ms: f64,
    shown_ms: f64,
    last_real_ms: Option<f64>,
    /// Achieved simulated ms per real ms, smoothed.
    rate: f64,
    /// Simulated ms run between two looks at the clock: grows while slices are cheap, shrinks
    /// when one takes a good part of the budget, so the budget holds at any cost per ms.
    slice_ms: u64,
    /// Real ms the last frame spent running the simulation.
    spent_ms: f64,
    /// What the rest of a frame costs (interval minus the simulation's share), smoothed.
    other_ms: f64,
    /// Whether the last frame fell behind.
    behind: bool,
}

impl Default for Player {
    fn default() -> Self {
        Player {
            speed: 0.1,
            playing: true,
            budget_ms: 10.0,
            shown_ms: 0.0,
            last_real_ms: None,
            rate: 0.0,
            slice_ms: 1,
            spent_ms: 0.0,
            other_ms: 0.0,
            behind: false,
        }
    }
}

/// What the player needs from a simulation.
pub trait Clocked {
    /// Its time, in whole ms.
    fn now_ms(&self) -> u64;
    /// Runs up to `t` ms.
    fn run_until(&mut self, t: u64);
}

impl Player {
    /// The time to draw (between the simulator's whole milliseconds).
    pub fn shown_ms(&self) -> f64 {
        self.shown_ms
    }

    /// The budget for the next frame (ms): see the module docs.
    pub fn effective_budget_ms(&self) -> f64 {
        if self.behind {
            (BEHIND_FRAME_MS - self.other_ms)
                .clamp(self.budget_ms, BUDGET_MAX_MS.max(self.budget_ms))
        } else {
            self.budget_ms
        }
    }

    /// Achieved simulated ms per real ms over the last frames.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Jumps the shown clock to the simulator's (after a rebuild, a step, or a scenario jump).
    pub fn sync_to(&mut self, now_ms: u64) {
        self.shown_ms = now_ms as f64;
    }

    /// Sets the speed to the nearest offered one.
    pub fn set_speed(&mut self, speed: f64) {
        self.speed = nearest_speed(speed);
    }

    /// One speed step faster (`up`) or slower.
    pub fn nudge_speed(&mut self, up: bool) {
        let i = SPEEDS
            .iter()
            .position(|s| *s >= self.speed - 1e-12)
            .unwrap_or(SPEEDS.len() - 1);
        let j = if up {
            (i + 1).min(SPEEDS.len() - 1)
        } else {
            i.saturating_sub(1)
        };
        self.speed = SPEEDS[j];
    }

    /// Advances for a frame at real time `real_ms`: runs `sim` toward the shown clock, for at
    /// most the budget as measured by `clock` (real ms). Returns the simulated ms run.
    pub fn frame(&mut self, sim: &mut impl Clocked, real_ms: f64, clock: impl Fn() -> f64) -> u64 {
        let dt = match self.last_real_ms {
            Some(last) => (real_ms - last).clamp(0.0, FRAME_GAP_MAX_MS),
            None => 0.0,
        };
        self.last_real_ms = Some(real_ms);
        if dt > 0.0 {
            let other = (dt - self.spent_ms).max(0.0);
            self.other_ms = if self.other_ms == 0.0 {
                other
            } else {
                self.other_ms * 0.8 + other * 0.2
            };
        }
        self.spent_ms = 0.0;
        let start = sim.now_ms();
        if self.shown_ms < start as f64 {
            self.shown_ms = start as f64;
        }
        if !self.playing {
            self.rate = 0.0;
            self.behind = false;
            return 0;
        }
        self.shown_ms += dt * self.speed;
        let target = self.shown_ms.floor() as u64;
        let budget = self.effective_budget_ms();
        let began = clock();
        // Run in slices so the budget is checked as we go.
        while sim.now_ms() < target {
            let next = (sim.now_ms() + self.slice_ms).min(target);
            let before = clock();
            sim.run_until(next);
            let after = clock();
            let took = after - before;
            if took < budget / 16.0 {
                self.slice_ms = (self.slice_ms * 2).min(SLICE_MS_MAX);
            } else if took > budget / 4.0 {
                self.slice_ms = (self.slice_ms / 2).max(1);
            }
            if after - began > budget {
                break;
            }
        }
        self.spent_ms = clock() - began;
        let ran = sim.now_ms() - start;
        self.behind = sim.now_ms() < target;
        if self.behind {
            // Fell behind: show where the simulation is, not where it should be.
            self.shown_ms = sim.now_ms() as f64;
        }
        if dt > 0.0 {
            let instant = ran as f64 / dt;
            self.rate = if self.rate == 0.0 {
                instant
            } else {
                self.rate * 0.9 + instant * 0.1
            };
        }
        ran
    }
}

/// The offered speed nearest to `speed` (by ratio).
pub fn nearest_speed(speed: f64) -> f64 {
    let speed = if speed.is_finite() && speed > 0.0 {
        speed
    } else {
        1.0
    };
    SPEEDS
        .iter()
        .copied()
        .min_by(|a, b| (a / speed).ln().abs().total_cmp(&(b / speed).ln().abs()))
        .unwrap_or(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    struct Fake {
        now: u64,
        cost_per_ms: f64,
        clock: std::rc::Rc<Cell<f64>>,
    }

    impl Clocked for Fake {
        fn now_ms(&self) -> u64 {
            self.now
        }
        fn run_until(&mut self, t: u64) {
            let ran = t.saturating_sub(self.now);
            self.clock
                .set(self.clock.get() + ran as f64 * self.cost_per_ms);
            self.now = self.now.max(t);
        }
    }

    fn fake(cost_per_ms: f64) -> (Fake, std::rc::Rc<Cell<f64>>) {
        let clock = std::rc::Rc::new(Cell::new(0.0));
        (
            Fake {
                now: 0,
                cost_per_ms,
                clock: clock.clone(),
            },
            clock,
        )
    }

    #[test]
    fn at_a_slow_speed_the_shown_clock_glides_between_whole_milliseconds() {
        let (mut sim, clock) = fake(0.0);
        let mut p = Player {
            speed: 0.01,
            ..Player::default()
        };
        let c = clock.clone();
        p.frame(&mut sim, 0.0, || c.get());
        for i in 1..=10 {
            p.frame(&mut sim, i as f64 * 16.0, || c.get());
        }
        assert!((p.shown_ms() - 1.6).abs() < 1e-9);
        assert_eq!(sim.now, 1);
    }

    #[test]
    fn a_slow_simulation_falls_behind_without_debt_and_reports_its_rate() {
        // Each simulated ms costs 0.1 real ms; the rest of each frame costs 8 real ms.
        let (mut sim, clock) = fake(0.1);
        let mut p = Player {
            speed: 100.0,
            ..Player::default()
        };
        let c = clock.clone();
        p.frame(&mut sim, 0.0, || c.get());
        let mut intervals = Vec::new();
        let mut last_real = 0.0;
        for _ in 1..=60 {
            // The rest of the frame, then the next animation frame.
            clock.set(clock.get() + 8.0);
            let real = clock.get();
            p.frame(&mut sim, real, || c.get());
            intervals.push(real - last_real);
            last_real = real;
            assert_eq!(p.shown_ms(), sim.now as f64, "no debt");
        }
        // Behind, the budget grows until frames land about BEHIND_FRAME_MS apart, with most of
        // each frame for the simulation: 10 simulated ms per real ms at this cost.
        let last = intervals[intervals.len() - 1];
        assert!((last - BEHIND_FRAME_MS).abs() < 4.0, "interval {last}");
        assert!(p.rate() > 7.0 && p.rate() < 10.0, "rate {}", p.rate());
        assert!(p.effective_budget_ms() <= BUDGET_MAX_MS);
    }

    #[test]
    fn keeping_up_the_budget_stays_the_base_one() {
        let (mut sim, clock) = fake(0.001);
        let mut p = Player {
            speed: 1.0,
            ..Player::default()
        };
        let c = clock.clone();
        for i in 0..=30 {
            p.frame(&mut sim, i as f64 * 16.7, || c.get());
        }
        assert_eq!(p.effective_budget_ms(), p.budget_ms);
        assert!((p.rate() - 1.0).abs() < 0.1, "rate {}", p.rate());
    }

    #[test]
    fn paused_runs_nothing_and_speeds_snap_to_the_offered_ones() {
        let (mut sim, clock) = fake(0.0);
        let mut p = Player {
            playing: false,
            ..Player::default()
        };
        let c = clock.clone();
        p.frame(&mut sim, 0.0, || c.get());
        assert_eq!(p.frame(&mut sim, 1000.0, || c.get()), 0);
        assert_eq!(nearest_speed(0.9), 1.0);
        assert_eq!(nearest_speed(0.0), 1.0);
        assert_eq!(nearest_speed(f64::NAN), 1.0);
        assert_eq!(nearest_speed(1e9), 200.0);
        p.set_speed(1.0);
        p.nudge_speed(true);
        assert_eq!(p.speed, 2.0);
        p.nudge_speed(false);
        p.nudge_speed(false);
        assert_eq!(p.speed, 0.5);
        p.speed = 0.01;
        p.nudge_speed(false);
        assert_eq!(p.speed, 0.01);
    }
}
