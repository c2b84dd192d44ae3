//! Draws the short animations (disk flashes, crashes, dropped messages), coalescing the disk
//! flashes so their cost does not grow with the write rate.
//!
//! Each WAL append, sync, flush and compaction flashes a ring that grows from the node's body
//! and fades over [`EFFECT_MS`]. At 200 client operations per second a 16-node cluster has
//! ~500 such rings alive, about thirty concentric ones per node, and a canvas without a GPU
//! rasterises each stroked ring separately (~35 µs each: 15–20 ms per frame, measured in
//! headless Chromium; copying pre-drawn sprites instead measured no cheaper). So flashes of
//! one node and kind born in the same time slot are drawn as one ring at their mean age, with
//! the opacity the overlapping rings composite to (`1 − Π(1 − αᵢ)`). Slots are
//! [`COALESCE_MS`] long while that keeps the rings within [`RING_BUDGET`], longer when many
//! nodes write at once (a level of detail, like the labels' thinning): at 16 busy nodes a slot
//! is 300 ms, so each node shows three or four ripples per kind instead of thirty. Groups are
//! keyed by birth slot, not by age, so a group keeps its members for its whole life and its
//! ring grows smoothly.
//!
//! Even coalesced, ~110 rings a frame cost 4–6 ms of software rasterisation: an anti-aliased
//! circle costs ~40 µs to rasterise there whether stroked, filled as an annulus or batched
//! into one path per colour (measured: replaying a recorded frame in headless Chromium and
//! timing the flush). Copying a small pre-drawn canvas to whole device pixels with smoothing
//! off is a plain blend, ~4× cheaper (a filtered or sub-pixel copy is not). So the rings are
//! drawn once per kind and radius step ([`RADIUS_STEPS`] steps of half a pixel over the
//! ring's growth) into small offscreen canvases ([`Sprites`]) and copied with each group's
//! opacity; the scene puts node centres on whole pixels so the copies sit where the strokes
//! did.

use crate::layout;
use crate::render::kind_color;
use crate::sprites::Sprites;
use crate::view::{EFFECT_MS, EffectKind, ViewModel};
use ringstore_core::wire::MessageKind;
use std::collections::HashMap;
use std::f64::consts::TAU;
use wasm_bindgen::JsValue;
use web_sys::CanvasRenderingContext2d as Ctx;

/// The shortest slot: disk flashes of one node and kind born in the same slot of this many
/// real ms share a ring.
pub const COALESCE_MS: f64 = 100.0;

/// About how many flash rings a frame draws at most (slots lengthen to keep to it).
pub const RING_BUDGET: f64 = 96.0;

/// The slot length for `active` (node, kind) pairs flashing: the shortest that keeps the
/// rings within [`RING_BUDGET`], in steps of 50 ms.
pub fn slot_ms(active: usize) -> f64 {
    let needed = EFFECT_MS * active as f64 / RING_BUDGET;
    ((needed / 50.0).ceil() * 50.0).max(COALESCE_MS)
}

const RED: &str = "#ff5d5d";
const AMBER: &str = "#f5a524";
const GREEN: &str = "#34d399";

/// One ring to draw: a group of disk flashes of one node and kind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Flash {
    /// The node.
    pub node: u32,
    /// Which flash.
    pub kind: EffectKind,
    /// Its members' mean age, 0 (just born) to 1 (gone).
    pub age: f64,
    /// The composite opacity of its members.
    pub alpha: f64,
}

/// How many radii a flash ring is drawn at over its growth (half a pixel apart).
pub const RADIUS_STEPS: usize = 15;

/// How far a flash ring grows over its life, CSS pixels.
const GROWTH_PX: f64 = 7.0;

/// The radius step (0 to [`RADIUS_STEPS`] − 1) of a ring of age `age` (0 to 1).
pub fn radius_step(age: f64) -> usize {
    ((age.clamp(0.0, 1.0) * (RADIUS_STEPS - 1) as f64).round() as usize).min(RADIUS_STEPS - 1)
}

/// A flash ring's radius in CSS pixels around a body of radius `nr`, at radius step `step`.
pub fn ring_radius(nr: f64, step: usize) -> f64 {
    nr + 2.0 + GROWTH_PX * step as f64 / (RADIUS_STEPS - 1) as f64
}

/// A flash kind's colour and line width.
pub fn flash_style(kind: EffectKind) -> (&'static str, f64) {
    match kind {
        EffectKind::Wal => (kind_color(MessageKind::Write), 1.5),
        EffectKind::Sync => (GREEN, 2.5),
        EffectKind::Flush => (AMBER, 2.5),
        _ => (kind_color(MessageKind::Gossip), 2.5),
    }
}

/// Whether an effect is a disk flash (coalesced) rather than a one-off animation.
fn is_flash(kind: EffectKind) -> bool {
    matches!(
        kind,
        EffectKind::Wal | EffectKind::Sync | EffectKind::Flush | EffectKind::Compact
    )
}

/// Groups the model's disk flashes at real time `real_ms` into rings (oldest group first).
/// A flash's own opacity is `0.8 × (1 − age)`.
pub fn flashes(model: &ViewModel, real_ms: f64) -> Vec<Flash> {
    // (sum of ages, count, product of (1 - alpha)) per group, in order of first appearance.
    let mut groups: Vec<(u32, EffectKind, f64, u32, f64)> = Vec::new();
    let mut index: HashMap<(u32, u8, i64), usize> = HashMap::new();
    let mut active: Vec<(u32, u8)> = model
        .effects
        .iter()
        .filter(|e| is_flash(e.kind))
        .map(|e| (e.node, e.kind as u8))
        .collect();
    active.sort_unstable();
    active.dedup();
    let slot_ms = slot_ms(active.len());
    for e in model.effects.iter().filter(|e| is_flash(e.kind)) {
        let age = ((real_ms - e.born_real_ms) / EFFECT_MS).clamp(0.0, 1.0);
        let alpha = 0.8 * (1.0 - age);
        let slot = (e.born_real_ms / slot_ms).floor() as i64;
        let key = (e.node, e.kind as u8, slot);
        let i = *index.entry(key).or_insert_with(|| {
            groups.push((e.node, e.kind, 0.0, 0, 1.0));
            groups.len() - 1
        });
        let g = &mut groups[i];
        g.2 += age;
        g.3 += 1;
        g.4 *= 1.0 - alpha;
    }
    groups
        .into_iter()
        .map(|(node, kind, ages, count, clear)| Flash {
            node,
            kind,
            age: ages / f64::from(count.max(1)),
            alpha: 1.0 - clear,
        })
        .collect()
}

/// Draws the effects: disk flashes coalesced and pre-drawn (see the module docs), crashes and
/// dropped messages one by one (they are rare). `ctx`'s transform is the pixel ratio
/// `sprites.dpr`.
pub fn draw(
    ctx: &Ctx,
    model: &ViewModel,
    scene: &crate::render::Scene,
    real_ms: f64,
    sprites: &mut Sprites,
) -> Result<(), JsValue> {
    let center = (scene.geom.cx, scene.geom.cy);
    let nr = scene.geom.node_radius;
    let pos = |id: u32| {
        model
            .index_of(id)
            .and_then(|i| scene.positions.get(i))
            .map(|p| p.1)
    };
    let mut copy = sprites.copier(ctx);
    for f in flashes(model, real_ms) {
        let Some(at) = pos(f.node) else {
            continue;
        };
        let step = radius_step(f.age);
        let (color, width) = flash_style(f.kind);
        let radius = ring_radius(nr, step);
        ctx.set_global_alpha(f.alpha);
        if !copy.ring(at, color, width, radius)? {
            ctx.set_stroke_style_str(color);
            ctx.set_line_width(width);
            ctx.begin_path();
            ctx.arc(at.0, at.1, radius, 0.0, TAU)?;
            ctx.stroke();
        }
    }
    copy.done()?;
    for e in model.effects.iter().filter(|e| !is_flash(e.kind)) {
        let age = ((real_ms - e.born_real_ms) / EFFECT_MS).clamp(0.0, 1.0);
        let fade = 1.0 - age;
        let Some(at) = pos(e.node) else {
            continue;
        };
        if e.kind == EffectKind::Death {
            let Some(from) = pos(e.from) else {
                continue;
            };
            let p = layout::message_point(from, at, center, e.at);
            let s = 4.0 + 6.0 * age;
            ctx.set_global_alpha(fade);
            ctx.set_stroke_style_str(RED);
            ctx.set_line_width(2.0);
            ctx.begin_path();
            ctx.move_to(p.0 - s, p.1 - s);
            ctx.line_to(p.0 + s, p.1 + s);
            ctx.move_to(p.0 + s, p.1 - s);
            ctx.line_to(p.0 - s, p.1 + s);
            ctx.stroke();
            ctx.set_global_alpha(fade * 0.5);
            ctx.begin_path();
            ctx.arc(p.0, p.1, s * 1.6, 0.0, TAU)?;
            ctx.stroke();
        } else {
            ctx.set_global_alpha(fade);
            ctx.set_stroke_style_str(RED);
            ctx.set_line_width(3.0);
            ctx.begin_path();
            ctx.arc(at.0, at.1, nr + 4.0 + 18.0 * age, 0.0, TAU)?;
            ctx.stroke();
        }
    }
    ctx.set_global_alpha(1.0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::Effect;

    fn flash(kind: EffectKind, node: u32, born: f64) -> Effect {
        Effect {
            kind,
            node,
            from: node,
            message: MessageKind::Write,
            at: 1.0,
            op: None,
            born_real_ms: born,
        }
    }

    #[test]
    fn flashes_of_a_node_and_kind_born_close_together_share_one_ring() {
        let mut m = ViewModel::default();
        // Node 1: three WAL appends in one slot, one in the next; a sync; node 2: one append.
        for born in [0.0, 30.0, 60.0, 150.0] {
            m.push_effect(flash(EffectKind::Wal, 1, born));
        }
        m.push_effect(flash(EffectKind::Sync, 1, 30.0));
        m.push_effect(flash(EffectKind::Wal, 2, 60.0));
        m.push_effect(flash(EffectKind::Crash, 2, 60.0));
        let now = 450.0;
        let f = flashes(&m, now);
        assert_eq!(f.len(), 4, "{f:?}");
        let a = |born: f64| 0.8 * (1.0 - (now - born) / EFFECT_MS);
        // The first group: three members, mean age, composite alpha.
        assert_eq!((f[0].node, f[0].kind), (1, EffectKind::Wal));
        assert!((f[0].age - (450.0 + 420.0 + 390.0) / 3.0 / EFFECT_MS).abs() < 1e-12);
        let clear = (1.0 - a(0.0)) * (1.0 - a(30.0)) * (1.0 - a(60.0));
        assert!((f[0].alpha - (1.0 - clear)).abs() < 1e-12);
        // A lone flash keeps its own age and opacity.
        assert_eq!((f[1].node, f[1].kind), (1, EffectKind::Wal));
        assert!((f[1].alpha - a(150.0)).abs() < 1e-12);
        assert_eq!((f[2].node, f[2].kind), (1, EffectKind::Sync));
        assert_eq!((f[3].node, f[3].kind), (2, EffectKind::Wal));
    }

    #[test]
    fn flash_rings_grow_in_half_pixel_steps() {
        assert_eq!(radius_step(0.0), 0);
        assert_eq!(radius_step(1.0), RADIUS_STEPS - 1);
        assert_eq!(radius_step(2.0), RADIUS_STEPS - 1);
        assert_eq!(radius_step(0.5), (RADIUS_STEPS - 1) / 2);
        let nr = 18.0;
        assert_eq!(ring_radius(nr, 0), nr + 2.0);
        assert_eq!(ring_radius(nr, RADIUS_STEPS - 1), nr + 2.0 + GROWTH_PX);
        let step = ring_radius(nr, 1) - ring_radius(nr, 0);
        assert!((step - 0.5).abs() < 1e-12, "{step}");
    }

    #[test]
    fn the_ring_count_is_bounded_by_nodes_kinds_and_slots_not_by_the_write_rate() {
        let mut m = ViewModel::default();
        // 4 nodes, one WAL append and one sync each per 2 ms over the effects' lifetime.
        let mut born = 0.0;
        while born < EFFECT_MS {
            for node in 1..=4 {
                m.push_effect(flash(EffectKind::Wal, node, born));
                m.push_effect(flash(EffectKind::Sync, node, born));
            }
            born += 2.0;
        }
        m.expire_effects(born);
        let f = flashes(&m, born);
        let slots = (EFFECT_MS / COALESCE_MS).ceil() as usize + 1;
        assert!(m.effects.len() > 400);
        assert!(f.len() <= 4 * 2 * slots, "{} rings", f.len());
        assert_eq!(slot_ms(8), COALESCE_MS);
        // Many nodes flashing at once: longer slots keep the count near the budget.
        assert_eq!(slot_ms(32), 300.0);
        let mut busy = ViewModel::default();
        let mut born = 0.0;
        while born < EFFECT_MS {
            for node in 1..=32 {
                busy.push_effect(flash(EffectKind::Wal, node, born));
            }
            born += 10.0;
        }
        busy.expire_effects(born);
        let f = flashes(&busy, born);
        assert!(f.len() as f64 <= RING_BUDGET * 1.5, "{} rings", f.len());
        assert!(f.iter().all(|f| (0.0..=1.0).contains(&f.alpha)));
    }
}
