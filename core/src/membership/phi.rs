//! The phi-accrual failure detector (Hayashibara et al., 2004), in Cassandra's variant.
//!
//! Instead of a yes/no timeout, the detector outputs a *suspicion level* φ per peer that grows
//! with the time since the peer was last heard from, scaled by how often it is usually heard
//! from. A peer is suspected when φ passes a threshold: the threshold trades detection time
//! against false positives, and the scaling adapts it to each peer's observed heartbeat rate.
//!
//! **Formula.** Per peer the detector keeps a bounded window of heartbeat inter-arrival times
//! (ms). Like Cassandra it models inter-arrival times as exponentially distributed with the
//! window's mean `μ`, so `P(no heartbeat for t) = e^(-t/μ)` and
//!
//! ```text
//! φ(t) = -log10(e^(-t/μ)) = t / μ · log10(e) = t / μ · 0.4342944819032518
//! ```
//!
//! where `t = now - last_arrival`. This needs one division and one multiplication by a
//! constant, no `exp`/`ln` call, so it is bit-identical on every platform (IEEE-754 basic
//! operations are correctly rounded). φ = 8 (Cassandra's default threshold) is crossed after
//! `8 / log10(e) ≈ 18.42` mean intervals of silence.
//!
//! **Why it exists here.** Gossip (see [`super::gossip`]) tells a node *that* a peer's
//! heartbeat counter moved; this module turns the arrival times of those moves into the local
//! verdict Alive or Suspect. It keeps no knowledge of the protocol: the caller feeds
//! [`PhiDetector::heartbeat`] and asks [`PhiDetector::phi`].

mod window;

use crate::{Millis, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `log10(e)` = 0.4342944819032518: a compile-time constant (the standard library's), so no
/// transcendental function is ever called at run time.
pub const LOG10_E: f64 = std::f64::consts::LOG10_E;

/// The detector's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhiConfig {
    /// φ at or above which a peer is suspected. Cassandra's default is 8: higher means fewer
    /// false suspicions and slower detection (φ grows by ≈0.43 per mean interval of silence).
    pub threshold: f64,
    /// Inter-arrival samples kept per peer (the oldest is dropped past this).
    pub window: usize,
    /// Below this many samples the mean is not trusted and `initial_interval_ms` is used
    /// instead, so a peer heard from once and never again is still suspected.
    pub min_samples: usize,
    /// The interval assumed before `min_samples` samples exist: the gossip interval.
    pub initial_interval_ms: u64,
    /// Gaps longer than this are not recorded as samples (Cassandra's `MAX_INTERVAL`): the
    /// silence of a partition or a pause says nothing about the normal heartbeat rate, and one
    /// such gap would otherwise inflate the mean and slow detection for a whole window.
    pub interval_ms_max: u64,
    /// The mean is never taken below this (two heartbeats may arrive in the same millisecond).
    pub mean_ms_min: u64,
}

impl Default for PhiConfig {
    /// Threshold 8, 1,000 samples, trusted from 2 samples, a 1 s initial interval, gaps over
    /// 5 s ignored, mean at least 1 ms.
    fn default() -> PhiConfig {
        PhiConfig {
            threshold: 8.0,
            window: 1_000,
            min_samples: 2,
            initial_interval_ms: 1_000,
            interval_ms_max: 5_000,
            mean_ms_min: 1,
        }
    }
}

/// One peer's arrival history.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrivalWindow {
    /// When the last heartbeat arrived.
    last_arrival: Millis,
    /// Inter-arrival times (ms, at most `u32::MAX`: a longer gap counts as that), oldest
    /// first; at most `window` long. In shared chunks ([`window::Samples`]): a copy of the
    /// detector (a snapshot of a simulated cluster) shares the samples both have.
    intervals_ms: window::Samples,
    /// The sum of `intervals_ms`, kept so the mean costs O(1). At most `window × u64` values
    /// each ≤ `interval_ms_max`, so it cannot overflow for any sane configuration; it saturates
    /// anyway.
    sum_ms: u64,
}

impl ArrivalWindow {
    /// The inter-arrival samples held.
    pub fn samples(&self) -> usize {
        self.intervals_ms.len()
    }

    /// When the last heartbeat arrived.
    pub fn last_arrival(&self) -> Millis {
        self.last_arrival
    }

    /// The mean interval used by φ, in ms (see [`PhiConfig::min_samples`]).
    pub fn mean_ms(&self, config: &PhiConfig) -> f64 {
        let mean = if self.intervals_ms.len() < config.min_samples.max(1) {
            config.initial_interval_ms as f64
        } else {
            self.sum_ms as f64 / self.intervals_ms.len() as f64
        };
        mean.max(config.mean_ms_min.max(1) as f64)
    }
}

/// A phi-accrual failure detector over many peers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhiDetector {
    config: PhiConfig,
    peers: BTreeMap<NodeId, ArrivalWindow>,
}

impl PhiDetector {
    /// A detector that knows no peer yet.
    pub fn new(config: PhiConfig) -> PhiDetector {
        PhiDetector {
            config,
            peers: BTreeMap::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &PhiConfig {
        &self.config
    }

    /// A heartbeat from `peer` arrived at `now`. The first one only starts the clock; later
    /// ones record the gap since the previous one (unless it is over `interval_ms_max`). A
    /// time earlier than the last arrival (the driver's clock went back) records nothing.
    pub fn heartbeat(&mut self, peer: NodeId, now: Millis) {
        self.heartbeat_until(peer, now);
    }

    /// [`PhiDetector::heartbeat`], returning, when the arrival was recorded (`now` is not
    /// earlier than the last one), [`PhiDetector::window_suspect_not_before`] of the peer's
    /// window after it: until then the peer cannot be suspect without a new input.
    pub fn heartbeat_until(&mut self, peer: NodeId, now: Millis) -> Option<Millis> {
        let window_max = self.config.window.max(1);
        let interval_ms_max = self.config.interval_ms_max;
        match self.peers.get_mut(&peer) {
            None => {
                let w = ArrivalWindow {
                    last_arrival: now,
                    ..ArrivalWindow::default()
                };
                let until = self.window_suspect_not_before(&w);
                self.peers.insert(peer, w);
                Some(until)
            }
            Some(w) => {
                if now < w.last_arrival {
                    return None;
                }
                let gap = now.0 - w.last_arrival.0;
                w.last_arrival = now;
                if gap <= interval_ms_max {
                    let gap = u32::try_from(gap).unwrap_or(u32::MAX);
                    w.intervals_ms.push_back(gap);
                    w.sum_ms = w.sum_ms.saturating_add(u64::from(gap));
                    while w.intervals_ms.len() > window_max {
                        if let Some(old) = w.intervals_ms.pop_front() {
                            w.sum_ms = w.sum_ms.saturating_sub(u64::from(old));
                        }
                    }
                }
                Some(not_before(&self.config, w))
            }
        }
    }

    /// Forget `peer`'s history and start again from an arrival at `now`: the peer restarted
    /// (a new generation), so its old rate says nothing about the new process.
    pub fn restart(&mut self, peer: NodeId, now: Millis) {
        self.peers.remove(&peer);
        self.heartbeat(peer, now);
    }

    /// Stop tracking `peer` (it left or was removed).
    pub fn remove(&mut self, peer: NodeId) {
        self.peers.remove(&peer);
    }

    /// φ for `peer` at `now`: 0 right after a heartbeat, growing linearly with silence. `None`
    /// for a peer never heard from.
    pub fn phi(&self, peer: NodeId, now: Millis) -> Option<f64> {
        let w = self.peers.get(&peer)?;
        let silence_ms = now.saturating_sub(w.last_arrival).0 as f64;
        Some(silence_ms / w.mean_ms(&self.config) * LOG10_E)
    }

    /// Whether `peer`'s φ is at or over the threshold at `now` (false for an unknown peer).
    pub fn is_suspect(&self, peer: NodeId, now: Millis) -> bool {
        self.peers
            .get(&peer)
            .is_some_and(|w| self.window_suspect(w, now))
    }

    /// [`PhiDetector::is_suspect`] for a peer whose window is `w` (from
    /// [`PhiDetector::windows`]): the same arithmetic, without the lookup.
    pub fn window_suspect(&self, w: &ArrivalWindow, now: Millis) -> bool {
        let silence_ms = now.saturating_sub(w.last_arrival).0 as f64;
        silence_ms / w.mean_ms(&self.config) * LOG10_E >= self.config.threshold
    }

    /// Every tracked peer's arrival window, in node order.
    pub fn windows(&self) -> impl Iterator<Item = (&NodeId, &ArrivalWindow)> {
        self.peers.iter()
    }

    /// When `peer` became (or will become) suspect if no heartbeat arrives: the first
    /// millisecond at which φ reaches the threshold. Computed from the same arithmetic as
    /// [`PhiDetector::phi`], so it agrees with [`PhiDetector::is_suspect`].
    pub fn suspect_since(&self, peer: NodeId) -> Option<Millis> {
        let w = self.peers.get(&peer)?;
        let mean = w.mean_ms(&self.config);
        // First guess from the formula, then step to the exact first millisecond so rounding
        // in the guess can never disagree with `phi`.
        let guess = (self.config.threshold / LOG10_E * mean).max(0.0);
        if !guess.is_finite() || guess >= 1e15 {
            return None;
        }
        let reaches = |s: u64| s as f64 / mean * LOG10_E >= self.config.threshold;
        let mut silence = guess as u64;
        // The guess is within a millisecond or two of the answer; the steps are bounded anyway.
        for _ in 0..64 {
            if silence > 0 && reaches(silence - 1) {
                silence -= 1;
            } else if !reaches(silence) {
                silence += 1;
            } else {
                break;
            }
        }
        Some(Millis(w.last_arrival.0.saturating_add(silence)))
    }

    /// A millisecond at or before the first one at which a peer whose window is `w` is
    /// suspect by silence alone ([`PhiDetector::window_suspect`] turns true), without the
    /// exact search of [`PhiDetector::suspect_since`]: the formula's value less 2 ms, which
    /// covers its rounding (a few ulps; under 1e15 ms an ulp is under 0.2 ms). `Millis(u64::MAX)`
    /// when φ never reaches the threshold (it is not a number). For callers that only need
    /// to know until when nothing can change.
    pub fn window_suspect_not_before(&self, w: &ArrivalWindow) -> Millis {
        not_before(&self.config, w)
    }

    /// `peer`'s arrival history, for inspection.
    pub fn window(&self, peer: NodeId) -> Option<&ArrivalWindow> {
        self.peers.get(&peer)
    }

    /// φ of every tracked peer at `now`, in node order (for the UI).
    pub fn snapshot(&self, now: Millis) -> BTreeMap<NodeId, f64> {
        self.peers
            .keys()
            .filter_map(|&p| self.phi(p, now).map(|phi| (p, phi)))
            .collect()
    }
}

/// [`PhiDetector::window_suspect_not_before`].
fn not_before(config: &PhiConfig, w: &ArrivalWindow) -> Millis {
    let guess = (config.threshold / LOG10_E * w.mean_ms(config)).max(0.0);
    if guess.is_nan() {
        return Millis(u64::MAX);
    }
    let silence = (guess.min(1e15) as u64).saturating_sub(2);
    Millis(w.last_arrival.0.saturating_add(silence))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: NodeId = NodeId(7);

    /// A detector fed `beats` heartbeats `every` ms apart, starting at 0.
    fn fed(every: u64, beats: u64) -> (PhiDetector, Millis) {
        let mut d = PhiDetector::new(PhiConfig::default());
        for i in 0..beats {
            d.heartbeat(P, Millis(i * every));
        }
        (d, Millis((beats - 1) * every))
    }

    #[test]
    fn phi_grows_linearly_with_silence() {
        let (d, last) = fed(1_000, 20);
        // (silence in mean intervals, expected φ)
        let table = [
            (0.0, 0.0),
            (1.0, LOG10_E),
            (2.0, 2.0 * LOG10_E),
            (10.0, 10.0 * LOG10_E),
            (18.0, 18.0 * LOG10_E),
        ];
        for (intervals, want) in table {
            let now = Millis(last.0 + (intervals * 1_000.0) as u64);
            let got = d.phi(P, now).unwrap();
            assert!(
                (got - want).abs() < 1e-12,
                "{intervals} intervals: {got} vs {want}"
            );
        }
    }

    #[test]
    fn threshold_is_crossed_after_about_18_4_mean_intervals() {
        // (heartbeat period, silence, suspect?)
        let table = [
            (1_000, 18_000, false),
            (1_000, 18_420, false),
            (1_000, 18_421, true),
            (1_000, 19_000, true),
            (200, 3_600, false),
            (200, 3_700, true),
        ];
        for (every, silence, suspect) in table {
            let (d, last) = fed(every, 50);
            assert_eq!(
                d.is_suspect(P, Millis(last.0 + silence)),
                suspect,
                "every {every} ms, silent {silence} ms"
            );
        }
        let (d, last) = fed(1_000, 50);
        assert_eq!(d.suspect_since(P), Some(Millis(last.0 + 18_421)));
    }

    #[test]
    fn suspect_since_agrees_with_is_suspect() {
        for every in [1, 7, 333, 1_000, 4_999] {
            let (d, _) = fed(every, 10);
            let at = d.suspect_since(P).unwrap();
            assert!(d.is_suspect(P, at), "every {every}");
            assert!(!d.is_suspect(P, Millis(at.0 - 1)), "every {every}");
        }
    }

    #[test]
    fn a_heartbeat_resets_phi_to_zero() {
        let (mut d, last) = fed(1_000, 20);
        let late = Millis(last.0 + 30_000);
        assert!(d.is_suspect(P, late));
        d.heartbeat(P, late);
        assert_eq!(d.phi(P, late), Some(0.0));
        assert!(!d.is_suspect(P, Millis(late.0 + 1_000)));
        // The 30 s gap was over interval_ms_max, so it did not inflate the mean.
        assert_eq!(d.window(P).unwrap().mean_ms(d.config()), 1_000.0);
    }

    #[test]
    fn before_enough_samples_the_initial_interval_is_used() {
        let mut d = PhiDetector::new(PhiConfig {
            initial_interval_ms: 500,
            ..PhiConfig::default()
        });
        assert_eq!(d.phi(P, Millis(0)), None);
        assert!(!d.is_suspect(P, Millis(1_000_000)));
        d.heartbeat(P, Millis(100));
        // One arrival, no sample yet: a peer never heard from again is still suspected.
        assert_eq!(d.window(P).unwrap().samples(), 0);
        assert!(!d.is_suspect(P, Millis(100 + 9_000)));
        assert!(d.is_suspect(P, Millis(100 + 9_300)));
        d.heartbeat(P, Millis(200));
        // One sample (< min_samples = 2): still the initial guess.
        assert_eq!(d.window(P).unwrap().mean_ms(d.config()), 500.0);
        d.heartbeat(P, Millis(300));
        assert_eq!(d.window(P).unwrap().mean_ms(d.config()), 100.0);
    }

    #[test]
    fn the_window_is_bounded() {
        let (mut d, last) = fed(1_000, 1_500);
        assert_eq!(d.window(P).unwrap().samples(), 1_000);
        // Faster heartbeats push the old ones out entirely after a full window.
        for i in 1..=1_000 {
            d.heartbeat(P, Millis(last.0 + i * 10));
        }
        let w = d.window(P).unwrap();
        assert_eq!(w.samples(), 1_000);
        assert_eq!(w.mean_ms(d.config()), 10.0);
    }

    #[test]
    fn a_restart_starts_a_fresh_window() {
        let (mut d, last) = fed(100, 30);
        let now = Millis(last.0 + 50);
        d.restart(P, now);
        let w = d.window(P).unwrap();
        assert_eq!((w.samples(), w.last_arrival()), (0, now));
        assert_eq!(w.mean_ms(d.config()), 1_000.0);
        d.remove(P);
        assert_eq!(d.phi(P, now), None);
    }

    #[test]
    fn a_clock_going_back_records_nothing() {
        let (mut d, last) = fed(1_000, 5);
        d.heartbeat(P, Millis(last.0 - 500));
        assert_eq!(d.window(P).unwrap().last_arrival(), last);
        assert_eq!(d.window(P).unwrap().samples(), 4);
    }

    #[test]
    fn same_millisecond_arrivals_keep_phi_finite() {
        let (d, last) = fed(0, 10);
        let phi = d.phi(P, Millis(last.0 + 1)).unwrap();
        assert!(phi.is_finite() && phi > 0.0);
        assert!(d.snapshot(Millis(last.0 + 1)).contains_key(&P));
    }
}
