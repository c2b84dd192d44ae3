//! `View`: the page's picture, as JavaScript sees it. One call per animation frame
//! (`view.frame(cluster, now)`) runs the simulation for that frame's share of time (the
//! [`Player`]), plays the scenario if one is on, updates the view model from the simulation
//! and draws it: all in wasm, nothing serialised per frame. The pointer, the key under study,
//! the followed operation and the frame-time statistics live here too. The DOM panels ask for
//! their data a few times a second (`panel`, and the `Cluster` methods of `page.rs`).

use crate::Cluster;
use crate::layout::Hit;
use crate::lesson::LessonPlay;
use crate::player::{Clocked, Player};
use crate::render::{self, RingLayer, Scene, Theme, Ui};
use crate::to_js;
use crate::view::ViewModel;
use crate::view::sim_source::SimSource;
use ringstore_core::sim::{MachineDisk, Sim};
use serde::Serialize;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::{JsError, JsValue, wasm_bindgen};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};

impl<D: MachineDisk> Clocked for Sim<D> {
    fn now_ms(&self) -> u64 {
        self.now().0
    }
    fn run_until(&mut self, t: u64) {
        Sim::run_until(self, ringstore_core::Millis(t));
    }
}

impl Clocked for crate::cluster::SimCluster {
    fn now_ms(&self) -> u64 {
        self.now().0
    }
    fn run_until(&mut self, t: u64) {
        crate::cluster::SimCluster::run_until(self, t);
    }
}

/// Frame intervals and work times kept for statistics.
const FRAMES_KEPT: usize = 4_096;
/// How often the slower per-node part of the view is refreshed (real ms).
const REFRESH_MS: f64 = 100.0;

/// Percentiles of a list of durations (ms).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Percentiles {
    /// How many.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// Percentiles of `values` (nearest rank).
pub fn percentiles(values: &[f64]) -> Percentiles {
    if values.is_empty() {
        return Percentiles::default();
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Percentiles {
        count: v.len(),
        p50: rank(0.50),
        p99: rank(0.99),
        max: v[v.len() - 1],
        mean: v.iter().sum::<f64>() / v.len() as f64,
    }
}

pub(crate) fn now_real() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

/// The picture and its pacing. See the module docs.
#[wasm_bindgen]
pub struct View {
    canvas: HtmlCanvasElement,
    ctx: CanvasRenderingContext2d,
    width: f64,
    height: f64,
    dpr: f64,
    inset_left: f64,
    model: ViewModel,
    source: Option<SimSource>,
    pub(crate) player: Player,
    pub(crate) lesson: Option<LessonPlay>,
    /// Why the lesson's narration no longer applies (the reader changed its run), if so.
    pub(crate) off_script: Option<String>,
    pub(crate) ui: Ui,
    /// Real ms of the fastest hop in lessons (see [`crate::lesson`]).
    pub(crate) hop_real_ms: f64,
    /// Whether lessons turn their own pages.
    pub(crate) autoplay: bool,
    theme: Theme,
    scene: Option<Scene>,
    scene_key: (usize, usize, u64, u64),
    ring: RingLayer,
    sprites: crate::sprites::Sprites,
    last_refresh: f64,
    intervals: std::collections::VecDeque<f64>,
    work: std::collections::VecDeque<f64>,
    last_frame: Option<f64>,
    sim_ms_run: u64,
    sim_started_real: Option<f64>,
}

fn ring_hash(ring: &[(u64, u32)]) -> u64 {
    ring.iter().fold(0xcbf2_9ce4_8422_2325, |h, (t, n)| {
        (h ^ t ^ u64::from(*n)).wrapping_mul(0x1000_0000_01b3)
    })
}

#[wasm_bindgen]
impl View {
    /// A view drawing on `canvas`.
    #[wasm_bindgen(constructor)]
    pub fn new(canvas: HtmlCanvasElement) -> Result<View, JsError> {
        let ctx = canvas
            .get_context("2d")
            .map_err(|_| JsError::new("no 2d context"))?
            .ok_or_else(|| JsError::new("no 2d context"))?
            .dyn_into::<CanvasRenderingContext2d>()
            .map_err(|_| JsError::new("not a 2d context"))?;
        Ok(View {
            canvas,
            ctx,
            width: 800.0,
            height: 600.0,
            dpr: 1.0,
            inset_left: 0.0,
            model: ViewModel::default(),
            source: None,
            player: Player::default(),
            lesson: None,
            off_script: None,
            hop_real_ms: crate::lesson::HOP_REAL_MS,
            autoplay: false,
            ui: Ui {
                show_gossip: true,
                ..Ui::default()
            },
            theme: Theme::DARK,
            scene: None,
            scene_key: (0, 0, 0, 0),
            ring: RingLayer::default(),
            sprites: Default::default(),
            last_refresh: f64::NEG_INFINITY,
            intervals: Default::default(),
            work: Default::default(),
            last_frame: None,
            sim_ms_run: 0,
            sim_started_real: None,
        })
    }

    /// Starts showing `cluster` (after it was built or rebuilt). Stops any scenario.
    pub fn attach(&mut self, cluster: &Cluster) {
        let sim = cluster.inner.sim();
        self.source = Some(SimSource::new(sim));
        self.model = ViewModel::default();
        self.player.sync_to(sim.now().0);
        self.lesson = None;
        self.off_script = None;
        self.ui.subtitle.clear();
        self.ui.names.clear();
        self.last_refresh = f64::NEG_INFINITY;
        self.scene = None;
    }

    /// Starts showing `cluster` again after the timeline replaced its simulation with another
    /// moment of the same run: the picture starts again from it, and a lesson in progress
    /// stays (it waits while the screen shows its past, see [`View::frame`]).
    pub fn reattach(&mut self, cluster: &Cluster) {
        let sim = cluster.inner.sim();
        let follow = self.source.as_ref().and_then(|s| s.follow);
        self.source = Some(SimSource::new(sim));
        if let Some(source) = self.source.as_mut() {
            source.follow = follow;
        }
        self.model = ViewModel::default();
        self.player.sync_to(sim.now().0);
        self.last_refresh = f64::NEG_INFINITY;
        self.scene = None;
    }

    /// Forgets the simulation and starts an empty picture with `subtitle` under the clock
    /// (live mode, before the first frame from [`crate::live::js::LiveCluster::frame`]).
    #[wasm_bindgen(js_name = showLive)]
    pub fn show_live(&mut self, subtitle: &str) {
        self.source = None;
        self.model = ViewModel::default();
        self.lesson = None;
        self.ui.names.clear();
        self.ui.subtitle = subtitle.chars().take(120).collect();
        self.scene = None;
    }

    /// The line under the clock (after `attach`, e.g. for a what-if copy).
    #[wasm_bindgen(js_name = setSubtitle)]
    pub fn set_subtitle(&mut self, subtitle: &str) {
        self.ui.subtitle = subtitle.chars().take(120).collect();
    }

    /// Sets the canvas size in CSS pixels and the device pixel ratio.
    pub fn resize(&mut self, width: f64, height: f64, dpr: f64) {
        self.width = width.max(100.0);
        self.height = height.max(100.0);
        self.dpr = dpr.clamp(0.5, 4.0);
        self.ring.dpr = self.dpr;
        self.sprites.dpr = self.dpr;
        self.canvas
            .set_width((self.width * self.dpr).round() as u32);
        self.canvas
            .set_height((self.height * self.dpr).round() as u32);
        self.scene = None;
    }

    /// Keeps `px` CSS pixels on the left free of the picture (the scenario narration).
    #[wasm_bindgen(js_name = setInset)]
    pub fn set_inset(&mut self, px: f64) {
        self.inset_left = px.max(0.0);
        self.scene = None;
    }

    /// Light (`false`) or dark (`true`) colours.
    #[wasm_bindgen(js_name = setDark)]
    pub fn set_dark(&mut self, dark: bool) {
        self.theme = if dark { Theme::DARK } else { Theme::LIGHT };
    }

    /// Whether gossip messages are drawn.
    #[wasm_bindgen(js_name = setShowGossip)]
    pub fn set_show_gossip(&mut self, show: bool) {
        self.ui.show_gossip = show;
    }

    /// One animation frame at real time `real_ms` (requestAnimationFrame's timestamp).
    pub fn frame(&mut self, cluster: &mut Cluster, real_ms: f64) -> Result<(), JsError> {
        let began = now_real();
        if let Some(last) = self.last_frame {
            push_bounded(&mut self.intervals, real_ms - last);
        }
        self.last_frame = Some(real_ms);
        let before = cluster.inner.now().0;
        // A lesson drives its cluster unless the reader changed the run, or looks at its past
        // on the timeline (then the player replays it, paused until asked).
        let driving = self.off_script.is_none() && !cluster.inner.in_past();
        // The node whose storage panel the lesson has open (now, or at the moment of its past
        // on screen).
        let mut lesson_storage = None;
        let shown = match self.lesson.as_mut().filter(|_| driving) {
            Some(lesson) => {
                lesson_storage = lesson.storage;
                let sim = cluster.inner.sim_mut();
                lesson.frame(sim, real_ms, now_real);
                let changes = lesson.take_changes();
                cluster.inner.log_lesson(changes);
                let sim = cluster.inner.sim_mut();
                if let Some(op) = lesson.follow {
                    self.source.get_or_insert_with(SimSource::default).follow = Some(op);
                }
                if lesson.key.is_some() {
                    self.ui.key = lesson.key.clone();
                }
                self.ui.subtitle = lesson.note.clone().unwrap_or_default();
                if self.model.shares != lesson.shares {
                    self.model.shares = lesson.shares.clone();
                }
                self.player.sync_to(sim.now().0);
                lesson.shown_ms()
            }
            None => {
                if let Some(lesson) = self.lesson.as_ref().filter(|_| self.off_script.is_none()) {
                    // The lesson's past on the timeline: what its picture showed then.
                    let shown = lesson.shown_at(cluster.inner.sim().log().total());
                    self.ui.key = shown.key;
                    self.source.get_or_insert_with(SimSource::default).follow = shown.follow;
                    lesson_storage = shown.storage;
                } else {
                    self.model.shares.clear();
                }
                // Through the cluster: it gives back a replayed branch's inputs on the way
                // and keeps the timeline's snapshots (`crate::timeline`).
                self.player.frame(&mut cluster.inner, real_ms, now_real);
                self.player.shown_ms()
            }
        };
        let sim = cluster.inner.sim_mut();
        let ran = sim.now().0 - before;
        self.sim_ms_run += ran;
        self.sim_started_real.get_or_insert(real_ms);
        // The storage panel: the node a lesson opened (then, in its past), else the selected
        // node. Merkle trees and the gossip grid are drawn in lessons, their past included.
        let in_lesson = self.off_script.is_none() && self.lesson.is_some();
        let storage = lesson_storage.or(self.ui.selected);
        let source = self.source.get_or_insert_with(|| SimSource::new(sim));
        // Merkle trees are drawn in lessons (outside them, sessions run all the time).
        let merkle = in_lesson;
        // Who has heard whom, in lessons that follow gossip.
        let gossip = in_lesson && self.lesson.as_ref().is_some_and(|l| l.watches_gossip());
        if source.key != self.ui.key
            || source.storage != storage
            || source.merkle != merkle
            || source.gossip != gossip
        {
            source.key = self.ui.key.clone();
            source.storage = storage;
            source.merkle = merkle;
            source.gossip = gossip;
            self.last_refresh = f64::NEG_INFINITY;
        }
        if real_ms - self.last_refresh >= REFRESH_MS || self.model.nodes.is_empty() {
            source.refresh(sim, &mut self.model);
            self.last_refresh = real_ms;
        }
        source.frame(sim, &mut self.model, shown, real_ms);
        self.draw(real_ms)?;
        push_bounded(&mut self.work, now_real() - began);
        Ok(())
    }

    /// One frame drawn from a model `fill` updates (live mode: [`crate::live`] fills it);
    /// the simulation and its player are left alone.
    pub(crate) fn frame_with(
        &mut self,
        real_ms: f64,
        fill: impl FnOnce(&mut ViewModel),
    ) -> Result<(), JsError> {
        let began = now_real();
        if let Some(last) = self.last_frame {
            push_bounded(&mut self.intervals, real_ms - last);
        }
        self.last_frame = Some(real_ms);
        fill(&mut self.model);
        self.draw(real_ms)?;
        push_bounded(&mut self.work, now_real() - began);
        Ok(())
    }

    fn scene(&mut self) -> &Scene {
        let key = (
            self.model.nodes.len(),
            self.model.ring.len(),
            ring_hash(&self.model.ring),
            (self.width as u64) << 32 | self.height as u64,
        );
        if self.scene.is_none() || self.scene_key != key {
            self.scene = Some(Scene::new(
                &self.model,
                self.width,
                self.height,
                self.inset_left,
            ));
            self.scene_key = key;
        }
        self.scene
            .get_or_insert_with(|| Scene::new(&ViewModel::default(), 100.0, 100.0, 0.0))
    }

    fn draw(&mut self, real_ms: f64) -> Result<(), JsError> {
        let dpr = self.dpr;
        self.ctx
            .set_transform(dpr, 0.0, 0.0, dpr, 0.0, 0.0)
            .map_err(|_| JsError::new("canvas transform"))?;
        self.scene();
        let Some(scene) = self.scene.as_ref() else {
            return Ok(());
        };
        let frame = render::Frame {
            ctx: &self.ctx,
            model: &self.model,
            scene,
            ui: &self.ui,
            theme: &self.theme,
        };
        render::draw(&frame, real_ms, &mut self.ring, &mut self.sprites)
            .map_err(|_| JsError::new("canvas drawing failed"))
    }

    /// Plays or pauses.
    #[wasm_bindgen(js_name = setPlaying)]
    pub fn set_playing(&mut self, playing: bool) {
        self.player.playing = playing;
    }

    /// Whether time runs.
    pub fn playing(&self) -> bool {
        self.player.playing
    }

    /// Sets the speed (snapped to the offered ones); returns it.
    #[wasm_bindgen(js_name = setSpeed)]
    pub fn set_speed(&mut self, speed: f64) -> f64 {
        self.player.set_speed(speed);
        self.player.speed
    }

    /// One offered speed faster or slower; returns it.
    #[wasm_bindgen(js_name = nudgeSpeed)]
    pub fn nudge_speed(&mut self, faster: bool) -> f64 {
        self.player.nudge_speed(faster);
        self.player.speed
    }

    /// The speed (× real time).
    pub fn speed(&self) -> f64 {
        self.player.speed
    }

    /// Runs exactly the next event (pausing first); returns the log lines it produced.
    #[wasm_bindgen(js_name = stepOne)]
    pub fn step_one(&mut self, cluster: &mut Cluster) -> Vec<String> {
        self.player.playing = false;
        let before = cluster.inner.sim().log().total();
        cluster.inner.step();
        let sim = cluster.inner.sim_mut();
        self.player.sync_to(sim.now().0);
        let lines = sim
            .log()
            .since(before)
            .map(|e| format!("{}ms  {}", e.time.0, e.event.trace()))
            .collect();
        if let Some(s) = self.source.as_mut() {
            s.refresh(sim, &mut self.model);
        }
        lines
    }

    /// What is under the pointer at CSS pixel `(x, y)`: `{kind: "node"|"message"|"ring"|
    /// "none", id, token, owner, preference}`; it is also highlighted.
    pub fn pointer(&mut self, x: f64, y: f64) -> Result<JsValue, JsError> {
        let hit = self.hit(x, y);
        self.ui.hover = Some(hit);
        to_js(&self.describe(hit))
    }

    /// The pointer left the canvas.
    #[wasm_bindgen(js_name = pointerLeft)]
    pub fn pointer_left(&mut self) {
        self.ui.hover = None;
    }

    /// Selects (or with `0`, unselects) the node whose panel is open.
    pub fn select(&mut self, node: u32) {
        self.ui.selected = (node != 0).then_some(node);
    }

    /// Studies a key: its position and preference list are drawn (empty: none).
    #[wasm_bindgen(js_name = setKey)]
    pub fn set_key(&mut self, key: &str) {
        let key = key.trim();
        self.ui.key = (!key.is_empty()).then(|| key.chars().take(64).collect());
    }

    /// The key under study.
    pub fn key(&self) -> Option<String> {
        self.ui.key.clone()
    }

    /// Follows a client operation (negative: none): its path is highlighted.
    pub fn follow(&mut self, op: f64) {
        let op = (op >= 0.0).then_some(op as u64);
        if let Some(s) = self.source.as_mut() {
            s.follow = op;
        }
        if op.is_none() {
            self.model.followed = None;
        }
        self.last_refresh = f64::NEG_INFINITY;
    }

    /// The key's token and preference list: `{token, preference}`.
    #[wasm_bindgen(js_name = keyInfo)]
    pub fn key_info(&self, key: &str) -> Result<JsValue, JsError> {
        let token = ringstore_core::ring::key_token(key.as_bytes()).0;
        #[derive(Serialize)]
        struct Out {
            token: String,
            preference: Vec<u32>,
        }
        to_js(&Out {
            token: format!("{token:016x}"),
            preference: self.model.preference_list(token),
        })
    }

    /// What the DOM panels show, refreshed a few times a second: `{now, nodes, followed, rate,
    /// speed, playing, messages, keyCells, lsm, merkle, moving, gossip, shares}` (`keyCells`:
    /// the studied key at each node, `{node, value, ts, stale}`, as drawn; `lsm`: the open
    /// storage panel; `merkle`: the anti-entropy session drawn as two trees; `moving`: the join
    /// or leave whose ranges are drawn; `gossip`: the grid of who has heard whom; `shares`: the
    /// ring shares a lesson compared; each absent or empty when not drawn).
    pub fn panel(&self) -> Result<JsValue, JsError> {
        #[derive(Serialize)]
        struct Out<'a> {
            now: f64,
            nodes: &'a [crate::view::NodeView],
            followed: &'a Option<crate::view::Followed>,
            rate: f64,
            speed: f64,
            playing: bool,
            messages: usize,
            #[serde(rename = "keyCells")]
            key_cells: &'a [crate::view::KeyCell],
            lsm: &'a Option<crate::view::storage::LsmView>,
            merkle: &'a Option<crate::view::merkle::MerkleView>,
            moving: &'a Option<crate::view::moving::MovingView>,
            gossip: &'a Option<crate::view::gossip::GossipView>,
            shares: &'a [crate::view::RingShares],
        }
        to_js(&Out {
            now: self.model.now_ms,
            nodes: &self.model.nodes,
            followed: &self.model.followed,
            rate: self.player.rate(),
            speed: self.player.speed,
            playing: self.player.playing,
            messages: self.model.messages.len(),
            key_cells: &self.model.key_cells,
            lsm: &self.model.lsm,
            merkle: &self.model.merkle,
            moving: &self.model.moving,
            gossip: &self.model.gossip_grid,
            shares: &self.model.shares,
        })
    }

    /// Frame statistics since the last reset: `{intervals: {count, p50, p99, max, mean},
    /// work: {...}, fps, simSecondsPerSecond}` (milliseconds).
    pub fn stats(&self) -> Result<JsValue, JsError> {
        let intervals: Vec<f64> = self.intervals.iter().copied().collect();
        let work: Vec<f64> = self.work.iter().copied().collect();
        let iv = percentiles(&intervals);
        let elapsed = self
            .last_frame
            .zip(self.sim_started_real)
            .map_or(0.0, |(l, s)| l - s);
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Out {
            intervals: Percentiles,
            work: Percentiles,
            fps: f64,
            sim_seconds_per_second: f64,
        }
        to_js(&Out {
            fps: if iv.mean > 0.0 { 1000.0 / iv.mean } else { 0.0 },
            intervals: iv,
            work: percentiles(&work),
            sim_seconds_per_second: if elapsed > 0.0 {
                self.sim_ms_run as f64 / elapsed
            } else {
                0.0
            },
        })
    }

    /// Forgets the frame statistics.
    #[wasm_bindgen(js_name = resetStats)]
    pub fn reset_stats(&mut self) {
        self.intervals.clear();
        self.work.clear();
        self.sim_ms_run = 0;
        self.sim_started_real = self.last_frame;
    }
}

impl View {
    fn hit(&mut self, x: f64, y: f64) -> Hit {
        let ui = self.ui.clone();
        let model = self.model.clone();
        let scene = self.scene().clone();
        let messages = scene.message_positions(&model, &ui);
        crate::layout::hit_test(&scene.geom, &scene.positions, &messages, x, y)
    }

    fn describe(&self, hit: Hit) -> HitView {
        match hit {
            Hit::Node(id) => HitView {
                kind: "node",
                id: Some(id.into()),
                ..HitView::default()
            },
            Hit::Message(id) => {
                let m = self.model.messages.iter().find(|m| m.id == id);
                HitView {
                    kind: "message",
                    id: Some(id),
                    from: m.map(|m| m.from),
                    to: m.map(|m| m.to),
                    message: m.map(|m| m.kind.name()),
                    op: m.and_then(|m| m.op),
                    ..HitView::default()
                }
            }
            Hit::Ring(t) => HitView {
                kind: "ring",
                token: Some(format!("{t:016x}")),
                owner: crate::layout::owner(&self.model.ring, t),
                preference: self.model.preference_list(t),
                ..HitView::default()
            },
            Hit::Nothing => HitView {
                kind: "none",
                ..HitView::default()
            },
        }
    }
}

/// What the pointer is over, for the page's tooltip.
#[derive(Clone, Debug, Default, Serialize)]
struct HitView {
    kind: &'static str,
    id: Option<u64>,
    token: Option<String>,
    owner: Option<u32>,
    preference: Vec<u32>,
    from: Option<u32>,
    to: Option<u32>,
    message: Option<&'static str>,
    op: Option<u64>,
}

fn push_bounded(list: &mut std::collections::VecDeque<f64>, v: f64) {
    if list.len() == FRAMES_KEPT {
        list.pop_front();
    }
    list.push_back(v);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = percentiles(&v);
        assert_eq!((p.count, p.p50, p.p99, p.max), (100, 50.0, 99.0, 100.0));
        assert_eq!(percentiles(&[]).count, 0);
        assert_eq!(percentiles(&[7.0]).p99, 7.0);
    }
}
