//! Draws the [`ViewModel`] on a 2D canvas (web-sys). Reads only the view model, the layout
//! and the pointer state, never the simulator: a live cluster draws the same way.
//!
//! Per frame: the ring's ownership arcs and vnode ticks (drawn once into an offscreen canvas,
//! [`RingLayer`], and copied while they do not change), the key under study with its
//! preference list, cut links, the followed operation's path, messages in flight (batched into
//! one path per kind), short animations (deaths, disk flashes: [`crate::effects`], which
//! coalesces them), then the nodes with their
//! status, phi, hints and storage, and the clock in the centre. Labels thin out when nodes are
//! too many for all of them to fit.

use crate::layout::{self, Geometry, Hit};
pub use crate::ring_layer::RingLayer;
use crate::view::{NodeView, Status, ViewModel};
use ringstore_core::wire::MessageKind;
use std::f64::consts::{FRAC_PI_2, TAU};
use wasm_bindgen::JsValue;
use web_sys::CanvasRenderingContext2d as Ctx;

/// Colours that depend on light or dark mode.
#[derive(Clone, Debug)]
pub struct Theme {
    /// Background.
    pub bg: &'static str,
    /// Text and strong lines.
    pub fg: &'static str,
    /// Secondary text.
    pub muted: &'static str,
    /// Faint lines.
    pub faint: &'static str,
    /// Node bodies' outline.
    pub outline: &'static str,
    /// Lightness of node colours (HSL %).
    pub lightness: u32,
}

impl Theme {
    /// The dark theme.
    pub const DARK: Theme = Theme {
        bg: "#0f141b",
        fg: "#e6edf3",
        muted: "#8b98a8",
        faint: "rgba(139,152,168,0.18)",
        outline: "#0f141b",
        lightness: 60,
    };
    /// The light theme.
    pub const LIGHT: Theme = Theme {
        bg: "#fbfcfd",
        fg: "#17202b",
        muted: "#5b6675",
        faint: "rgba(60,72,88,0.14)",
        outline: "#fbfcfd",
        lightness: 46,
    };
}

/// A message kind's colour (the legend in `www/` uses the same).
pub fn kind_color(k: MessageKind) -> &'static str {
    match k {
        MessageKind::Write => "#4f9dff",
        MessageKind::Read => "#34d399",
        MessageKind::Ack => "#cbd5e1",
        MessageKind::Gossip => "#a78bfa",
        MessageKind::Hint => "#f5a524",
        MessageKind::Repair => "#f472b6",
        MessageKind::Stream => "#22d3ee",
    }
}

pub(crate) const RED: &str = "#ff5d5d";
pub(crate) const AMBER: &str = "#f5a524";

/// A node's hue: ids spread by the golden angle, so neighbours never look alike.
pub fn node_hue(id: u32) -> f64 {
    (f64::from(id) * 137.508 + 200.0) % 360.0
}

pub(crate) fn node_color(id: u32, theme: &Theme, alpha: f64) -> String {
    format!(
        "hsla({:.0},70%,{}%,{alpha:.2})",
        node_hue(id),
        theme.lightness
    )
}

/// Height of the band at the bottom of the picture that the time controls cover (CSS px).
pub const CONTROLS_BAND: f64 = 44.0;

/// What the pointer and the controls add to the picture.
#[derive(Clone, Debug, Default)]
pub struct Ui {
    /// What the pointer is over.
    pub hover: Option<Hit>,
    /// The node whose panel is open.
    pub selected: Option<u32>,
    /// The key being studied.
    pub key: Option<String>,
    /// Whether gossip messages are drawn.
    pub show_gossip: bool,
    /// A line of text under the clock (lesson title or time note, mode).
    pub subtitle: String,
    /// Names the picture gives nodes instead of `n3` (a lesson's `names A B C D E`).
    pub names: std::collections::BTreeMap<u32, String>,
}

/// The layout of one frame: geometry and node positions, by index in the model.
#[derive(Clone, Debug)]
pub struct Scene {
    /// Sizes.
    pub geom: Geometry,
    /// Node positions, in the order of [`ViewModel::nodes`].
    pub positions: Vec<(u32, (f64, f64))>,
    /// Node angles, same order.
    pub angles: Vec<f64>,
}

impl Scene {
    /// Lays out `model` on a canvas of `width` × `height` CSS pixels, leaving `inset_left`
    /// pixels on the left free (for the scenario narration).
    pub fn new(model: &ViewModel, width: f64, height: f64, inset_left: f64) -> Scene {
        let inset = inset_left.clamp(0.0, width * 0.6);
        // The time controls sit over the bottom-left corner: the ring and the node labels
        // keep clear of their band.
        let band = if height > 3.0 * CONTROLS_BAND {
            CONTROLS_BAND
        } else {
            0.0
        };
        let mut geom = layout::geometry(width - inset, height - band, model.nodes.len());
        geom.width = width;
        geom.height = height;
        geom.cx += inset;
        let tokens: Vec<Vec<u64>> = model
            .nodes
            .iter()
            .map(|n| {
                model
                    .ring
                    .iter()
                    .filter(|(_, o)| *o == n.id)
                    .map(|(t, _)| *t)
                    .collect()
            })
            .collect();
        let angles = layout::node_angles(&tokens, geom.node_radius, geom.orbit_radius);
        // Centres on whole pixels: the pre-drawn flash rings are copied to whole pixels.
        let positions = model
            .nodes
            .iter()
            .zip(&angles)
            .map(|(n, a)| {
                let (x, y) = geom.at(*a, geom.orbit_radius);
                (n.id, (x.round(), y.round()))
            })
            .collect();
        Scene {
            geom,
            positions,
            angles,
        }
    }

    fn pos(&self, model: &ViewModel, id: u32) -> Option<(f64, f64)> {
        model
            .index_of(id)
            .and_then(|i| self.positions.get(i))
            .map(|p| p.1)
    }

    /// Where each drawn message is now, for hit-testing.
    pub fn message_positions(&self, model: &ViewModel, ui: &Ui) -> Vec<(u64, (f64, f64))> {
        let center = (self.geom.cx, self.geom.cy);
        model
            .messages
            .iter()
            .filter(|m| ui.show_gossip || m.kind != MessageKind::Gossip)
            .filter_map(|m| {
                let a = self.pos(model, m.from)?;
                let b = self.pos(model, m.to)?;
                Some((
                    m.id,
                    layout::message_point(a, b, center, m.progress(model.now_ms)),
                ))
            })
            .collect()
    }
}

/// Formats a byte count: `812 B`, `3.1 KB`, `2.0 MB`.
pub fn show_size(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else if bytes < 1 << 20 {
        format!("{:.1} KB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MB", bytes as f64 / (1 << 20) as f64)
    }
}

/// A lesson panel's background at `(x, y)`, `w` × `h`: the page's colour, nearly opaque, so
/// the picture shows faintly through, and with `framed` a one-pixel frame around it.
pub(crate) fn panel_box(
    ctx: &Ctx,
    theme: &Theme,
    (x, y, w, h): (f64, f64, f64, f64),
    framed: bool,
) {
    ctx.set_global_alpha(0.94);
    ctx.set_fill_style_str(theme.bg);
    ctx.fill_rect(x, y, w, h);
    ctx.set_global_alpha(1.0);
    if framed {
        ctx.set_stroke_style_str(theme.muted);
        ctx.set_line_width(1.0);
        ctx.stroke_rect(x + 0.5, y + 0.5, w, h);
    }
}

/// The node's short name: `n3`.
pub fn name(id: u32) -> String {
    format!("n{id}")
}

/// The node's name in the picture: a lesson's letter (`B`), else `n2`.
pub fn label(ui: &Ui, id: u32) -> String {
    ui.names.get(&id).cloned().unwrap_or_else(|| name(id))
}

/// What drawing a frame reads: the canvas, the model, its layout, the page's state and the
/// colours.
#[derive(Clone, Copy)]
pub struct Frame<'a> {
    /// The canvas's 2D context.
    pub ctx: &'a Ctx,
    /// What to draw.
    pub model: &'a ViewModel,
    /// Where: the layout of this canvas size and node count.
    pub scene: &'a Scene,
    /// The page's state: hover, selection, the studied key, lesson panels.
    pub ui: &'a Ui,
    /// The colours.
    pub theme: &'a Theme,
}

/// Draws one frame. `real_ms` times the animations; the ring layer and the sprites are caches
/// kept between frames.
pub fn draw(
    frame: &Frame,
    real_ms: f64,
    ring: &mut RingLayer,
    sprites: &mut crate::sprites::Sprites,
) -> Result<(), JsValue> {
    let Frame {
        ctx,
        model,
        scene,
        ui,
        theme,
    } = *frame;
    let g = &scene.geom;
    let hovered_node = match ui.hover {
        Some(Hit::Node(id)) => Some(id),
        _ => ui.selected,
    };
    let key_token = ui
        .key
        .as_ref()
        .map(|k| ringstore_core::ring::key_token(k.as_bytes()).0);
    let pref = key_token
        .map(|t| model.preference_list(t))
        .unwrap_or_default();
    ring.draw(ctx, model, g, theme, hovered_node)?;
    if let Some(t) = key_token {
        draw_key(
            ctx,
            model,
            g,
            theme,
            t,
            ui.key.as_deref().unwrap_or(""),
            &pref,
        )?;
    }
    if let Some(Hit::Ring(t)) = ui.hover {
        draw_token_probe(ctx, model, g, theme, t)?;
    }
    crate::render_moving::draw(ctx, model, scene, ui, theme)?;
    draw_cuts(ctx, model, scene)?;
    draw_followed(ctx, model, scene)?;
    draw_messages(ctx, model, scene, ui)?;
    crate::effects::draw(ctx, model, scene, real_ms, sprites)?;
    draw_bodies(ctx, model, scene, theme, sprites)?;
    crate::render_nodes::draw_nodes(frame, hovered_node, &pref)?;
    draw_center(ctx, model, g, theme, ui)?;
    crate::render_lsm::draw(ctx, model, scene, ui, theme)?;
    crate::render_merkle::draw(ctx, model, scene, ui, theme)?;
    crate::render_gossip::draw(ctx, model, scene, ui, theme)?;
    crate::render_shares::draw(ctx, model, scene, ui, theme)?;
    Ok(())
}

/// The background and the ring: its band, ownership arcs, vnode ticks and scale marks (what
/// [`RingLayer`] draws once and then copies).
pub(crate) fn draw_ring(
    ctx: &Ctx,
    model: &ViewModel,
    g: &Geometry,
    theme: &Theme,
    hovered: Option<u32>,
) -> Result<(), JsValue> {
    ctx.set_fill_style_str(theme.bg);
    // Whole pixels: a fractional CSS size would leave the last row half painted.
    ctx.fill_rect(0.0, 0.0, g.width.ceil(), g.height.ceil());
    ctx.set_line_cap("butt");
    ctx.set_line_width(g.ring_width + 6.0);
    ctx.set_stroke_style_str(theme.faint);
    ctx.begin_path();
    ctx.arc(g.cx, g.cy, g.ring_radius, 0.0, TAU)?;
    ctx.stroke();
    ctx.set_line_width(g.ring_width);
    let down = |id: u32| model.node(id).is_some_and(|n| n.status != Status::Up);
    for arc in layout::arcs(&model.ring) {
        let dim = hovered.is_some_and(|h| h != arc.owner);
        let alpha = if dim {
            0.18
        } else if down(arc.owner) {
            0.35
        } else {
            0.9
        };
        ctx.set_stroke_style_str(&node_color(arc.owner, theme, alpha));
        ctx.begin_path();
        // A hair of gap between ranges, so each reads as a range.
        let gap = (0.6 / g.ring_radius).min((arc.end - arc.start) / 4.0);
        ctx.arc(g.cx, g.cy, g.ring_radius, arc.start + gap, arc.end - gap)?;
        ctx.stroke();
    }
    // Vnode ticks: one per token, in the owner's colour.
    ctx.set_line_width(1.5);
    let (r0, r1) = (
        g.ring_radius - g.ring_width / 2.0 - 4.0,
        g.ring_radius + g.ring_width / 2.0 + 4.0,
    );
    for &(t, owner) in &model.ring {
        let a = layout::token_angle(t);
        let dim = hovered.is_some_and(|h| h != owner);
        ctx.set_stroke_style_str(&node_color(owner, theme, if dim { 0.25 } else { 1.0 }));
        ctx.begin_path();
        let (x0, y0) = g.at(a, r0);
        let (x1, y1) = g.at(a, r1);
        ctx.move_to(x0, y0);
        ctx.line_to(x1, y1);
        ctx.stroke();
    }
    // Scale marks: 0 at the top, a quarter each.
    ctx.set_fill_style_str(theme.muted);
    ctx.set_font("10px ui-monospace, SFMono-Regular, Menlo, monospace");
    ctx.set_text_align("center");
    ctx.set_text_baseline("middle");
    for (i, label) in ["0", "2⁶²", "2⁶³", "3·2⁶²"].iter().enumerate() {
        let a = i as f64 * FRAC_PI_2 - FRAC_PI_2;
        let (x, y) = g.at(a, g.ring_radius - g.ring_width / 2.0 - 18.0);
        ctx.fill_text(label, x, y)?;
    }
    Ok(())
}

fn draw_key(
    ctx: &Ctx,
    model: &ViewModel,
    g: &Geometry,
    theme: &Theme,
    token: u64,
    key: &str,
    pref: &[u32],
) -> Result<(), JsValue> {
    let a = layout::token_angle(token);
    // The walk clockwise from the key to its last replica's token.
    if let Some(&last) = pref.last() {
        let start = model.ring.partition_point(|&(t, _)| t < token);
        let mut seen = Vec::new();
        let mut end_token = token;
        for k in 0..model.ring.len() {
            let (t, o) = model.ring[(start + k) % model.ring.len()];
            if !seen.contains(&o) {
                seen.push(o);
            }
            if o == last && seen.len() == pref.len() {
                end_token = t;
                break;
            }
        }
        let mut end = layout::token_angle(end_token);
        if end <= a {
            end += TAU;
        }
        ctx.set_stroke_style_str(theme.fg);
        ctx.set_global_alpha(0.55);
        ctx.set_line_width(2.0);
        ctx.begin_path();
        ctx.arc(g.cx, g.cy, g.ring_radius + g.ring_width / 2.0 + 8.0, a, end)?;
        ctx.stroke();
        ctx.set_global_alpha(1.0);
    }
    let (x0, y0) = g.at(a, g.ring_radius - g.ring_width / 2.0 - 2.0);
    let (x1, y1) = g.at(a, g.ring_radius + g.ring_width / 2.0 + 12.0);
    ctx.set_stroke_style_str(theme.fg);
    ctx.set_line_width(2.0);
    ctx.begin_path();
    ctx.move_to(x0, y0);
    ctx.line_to(x1, y1);
    ctx.stroke();
    ctx.set_fill_style_str(theme.fg);
    ctx.begin_path();
    ctx.arc(x1, y1, 4.0, 0.0, TAU)?;
    ctx.fill();
    let (lx, ly) = g.at(a, g.ring_radius - g.ring_width / 2.0 - 26.0);
    ctx.set_font("600 12px ui-sans-serif, system-ui, sans-serif");
    ctx.set_text_align("center");
    ctx.set_text_baseline("middle");
    ctx.fill_text(key, lx, ly)?;
    Ok(())
}

fn draw_token_probe(
    ctx: &Ctx,
    model: &ViewModel,
    g: &Geometry,
    theme: &Theme,
    token: u64,
) -> Result<(), JsValue> {
    let a = layout::token_angle(token);
    let (x0, y0) = g.at(a, g.ring_radius - g.ring_width);
    let (x1, y1) = g.at(a, g.ring_radius + g.ring_width);
    ctx.set_stroke_style_str(theme.fg);
    ctx.set_line_width(1.0);
    ctx.set_line_dash(&js_dash(&[3.0, 3.0]))?;
    ctx.begin_path();
    ctx.move_to(x0, y0);
    ctx.line_to(x1, y1);
    ctx.stroke();
    ctx.set_line_dash(&js_dash(&[]))?;
    let owner = layout::owner(&model.ring, token)
        .map(name)
        .unwrap_or_default();
    ctx.set_fill_style_str(theme.muted);
    ctx.set_font("11px ui-monospace, SFMono-Regular, Menlo, monospace");
    ctx.set_text_align("center");
    let (lx, ly) = g.at(a, g.ring_radius - g.ring_width - 12.0);
    ctx.fill_text(&format!("{:04x}… → {owner}", token >> 48), lx, ly)?;
    Ok(())
}

pub(crate) fn js_dash(d: &[f64]) -> JsValue {
    let arr = js_sys::Array::new();
    for v in d {
        arr.push(&JsValue::from_f64(*v));
    }
    arr.into()
}

fn draw_cuts(ctx: &Ctx, model: &ViewModel, scene: &Scene) -> Result<(), JsValue> {
    if model.cut.is_empty() || model.cut.len() > 600 {
        return Ok(());
    }
    ctx.set_stroke_style_str(RED);
    ctx.set_global_alpha(0.35);
    ctx.set_line_width(1.2);
    ctx.set_line_dash(&js_dash(&[5.0, 5.0]))?;
    ctx.begin_path();
    for &(a, b) in &model.cut {
        // Draw each pair once; a one-way cut gets an arrowhead-like tick at the receiver.
        let both = model.cut.contains(&(b, a));
        if both && a > b {
            continue;
        }
        let (Some(pa), Some(pb)) = (scene.pos(model, a), scene.pos(model, b)) else {
            continue;
        };
        ctx.move_to(pa.0, pa.1);
        ctx.line_to(pb.0, pb.1);
    }
    ctx.stroke();
    ctx.set_line_dash(&js_dash(&[]))?;
    ctx.set_global_alpha(1.0);
    Ok(())
}

fn draw_followed(ctx: &Ctx, model: &ViewModel, scene: &Scene) -> Result<(), JsValue> {
    let Some(f) = &model.followed else {
        return Ok(());
    };
    let Some(c) = scene.pos(model, f.coordinator) else {
        return Ok(());
    };
    let color = match f.kind.as_str() {
        "get" => kind_color(MessageKind::Read),
        _ => kind_color(MessageKind::Write),
    };
    ctx.set_line_width(2.0);
    for &(t, hint_for) in &f.targets {
        let Some(p) = scene.pos(model, t) else {
            continue;
        };
        let answered = f.answered.contains(&t);
        ctx.set_stroke_style_str(if hint_for.is_some() {
            kind_color(MessageKind::Hint)
        } else {
            color
        });
        ctx.set_global_alpha(if answered { 0.75 } else { 0.35 });
        ctx.set_line_dash(&js_dash(if answered { &[] } else { &[6.0, 4.0] }))?;
        ctx.begin_path();
        ctx.move_to(c.0, c.1);
        let ctl = layout::message_control(c, p, (scene.geom.cx, scene.geom.cy));
        ctx.quadratic_curve_to(ctl.0, ctl.1, p.0, p.1);
        ctx.stroke();
    }
    for &r in &f.repaired {
        let Some(p) = scene.pos(model, r) else {
            continue;
        };
        ctx.set_stroke_style_str(kind_color(MessageKind::Repair));
        ctx.set_global_alpha(0.8);
        ctx.set_line_dash(&js_dash(&[2.0, 3.0]))?;
        ctx.begin_path();
        ctx.move_to(c.0, c.1);
        ctx.line_to(p.0, p.1);
        ctx.stroke();
    }
    ctx.set_line_dash(&js_dash(&[]))?;
    ctx.set_global_alpha(1.0);
    Ok(())
}

fn draw_messages(ctx: &Ctx, model: &ViewModel, scene: &Scene, ui: &Ui) -> Result<(), JsValue> {
    let center = (scene.geom.cx, scene.geom.cy);
    let followed = model.followed.as_ref().map(|f| f.op);
    let small = scene.geom.node_radius < 10.0;
    for kind in MessageKind::ALL {
        if kind == MessageKind::Gossip && !ui.show_gossip {
            continue;
        }
        let (r, alpha) = match kind {
            MessageKind::Gossip => (if small { 1.5 } else { 2.2 }, 0.55),
            _ => (if small { 2.5 } else { 3.6 }, 0.95),
        };
        let dim = followed.is_some();
        ctx.set_fill_style_str(kind_color(kind));
        ctx.set_stroke_style_str(kind_color(kind));
        // Tails, then heads, each as one path.
        ctx.set_global_alpha(if dim { alpha * 0.3 } else { alpha * 0.35 });
        ctx.set_line_width(r * 0.9);
        ctx.set_line_cap("round");
        ctx.begin_path();
        let mut any = false;
        for m in model.messages.iter().filter(|m| m.kind == kind) {
            let (Some(a), Some(b)) = (scene.pos(model, m.from), scene.pos(model, m.to)) else {
                continue;
            };
            let t = m.progress(model.now_ms);
            let p = layout::message_point(a, b, center, t);
            let q = layout::message_point(a, b, center, (t - 0.12).max(0.0));
            ctx.move_to(q.0, q.1);
            ctx.line_to(p.0, p.1);
            any = true;
        }
        if any {
            ctx.stroke();
        }
        ctx.set_global_alpha(if dim { alpha * 0.55 } else { alpha });
        ctx.begin_path();
        for m in model.messages.iter().filter(|m| m.kind == kind) {
            let (Some(a), Some(b)) = (scene.pos(model, m.from), scene.pos(model, m.to)) else {
                continue;
            };
            let p = layout::message_point(a, b, center, m.progress(model.now_ms));
            ctx.move_to(p.0 + r, p.1);
            ctx.arc(p.0, p.1, r, 0.0, TAU)?;
        }
        ctx.fill();
    }
    // The followed operation's messages, on top and larger.
    if let Some(op) = followed {
        ctx.set_global_alpha(1.0);
        ctx.set_line_width(2.0);
        for m in model.messages.iter().filter(|m| m.op == Some(op)) {
            let (Some(a), Some(b)) = (scene.pos(model, m.from), scene.pos(model, m.to)) else {
                continue;
            };
            let p = layout::message_point(a, b, center, m.progress(model.now_ms));
            ctx.set_fill_style_str(kind_color(m.kind));
            ctx.begin_path();
            ctx.arc(p.0, p.1, 6.0, 0.0, TAU)?;
            ctx.fill();
            ctx.set_stroke_style_str("#ffffff");
            ctx.stroke();
        }
    }
    ctx.set_global_alpha(1.0);
    ctx.set_line_cap("butt");
    Ok(())
}

/// The verdict colour for what the others think of a node.
pub(crate) fn seen_color(n: &NodeView) -> Option<&'static str> {
    match n.seen.consensus() {
        "dead" => Some(RED),
        "suspect" | "doubted" => Some(AMBER),
        _ => None,
    }
}

/// A node body's fill: its colour while it runs, grey when down, faint when it left.
fn body_fill(node: &NodeView, theme: &Theme) -> String {
    match node.status {
        Status::Up | Status::Joining | Status::Leaving => node_color(node.id, theme, 1.0),
        Status::Left => theme.faint.to_string(),
        Status::Down => "#4a5361".to_string(),
    }
}

/// The node bodies, all before any node's decorations (labels are never under a
/// neighbour's body): pre-drawn discs copied ([`crate::sprites`]), paths without them.
fn draw_bodies(
    ctx: &Ctx,
    model: &ViewModel,
    scene: &Scene,
    theme: &Theme,
    sprites: &mut crate::sprites::Sprites,
) -> Result<(), JsValue> {
    let nr = scene.geom.node_radius;
    let mut copy = sprites.copier(ctx);
    for (i, node) in model.nodes.iter().enumerate() {
        let at = scene.positions[i].1;
        let fill = body_fill(node, theme);
        if !copy.disc(at, &fill, theme.outline, 2.0, nr)? {
            ctx.begin_path();
            ctx.arc(at.0, at.1, nr, 0.0, TAU)?;
            ctx.set_fill_style_str(&fill);
            ctx.fill();
            ctx.set_line_width(2.0);
            ctx.set_stroke_style_str(theme.outline);
            ctx.stroke();
        }
    }
    copy.done()
}

fn draw_center(
    ctx: &Ctx,
    model: &ViewModel,
    g: &Geometry,
    theme: &Theme,
    ui: &Ui,
) -> Result<(), JsValue> {
    let scale = (g.ring_radius / 160.0).clamp(0.9, 1.3);
    // The room inside the ring, clear of the scale marks at its left and right.
    let room = 2.0 * (g.ring_radius - g.ring_width / 2.0 - 34.0);
    ctx.set_text_align("center");
    ctx.set_text_baseline("middle");
    ctx.set_line_join("round");
    let clock = model
        .clock
        .clone()
        .unwrap_or_else(|| format!("{:.3} s", model.now_ms / 1000.0));
    let size = center_font_px(22.0 * scale, &clock, 0.62, room);
    ctx.set_font(&format!(
        "600 {size:.0}px ui-monospace, SFMono-Regular, Menlo, monospace"
    ));
    haloed(ctx, theme, theme.fg, &clock, g.cx, g.cy - 12.0 * scale)?;
    let nodes = model
        .nodes
        .iter()
        .filter(|n| n.status != Status::Left)
        .count();
    let quorum = format!("N={} W={} R={} · {nodes} nodes", model.n, model.w, model.r);
    let mut lines = vec![quorum];
    if !ui.subtitle.is_empty() {
        lines.push(ui.subtitle.clone());
    }
    for (i, line) in lines.iter().enumerate() {
        let size = center_font_px(12.0 * scale, line, 0.56, room);
        ctx.set_font(&format!("{size:.0}px ui-sans-serif, system-ui, sans-serif"));
        let y = g.cy + (10.0 + 18.0 * i as f64) * scale;
        haloed(ctx, theme, theme.muted, line, g.cx, y)?;
    }
    Ok(())
}

/// The font size (px) at which `text` fits in `room` pixels, given the font's average
/// character width as a fraction of its size; never above `size` nor below 8 px.
fn center_font_px(size: f64, text: &str, char_em: f64, room: f64) -> f64 {
    let chars = text.chars().count().max(1) as f64;
    (room / (chars * char_em)).min(size).max(8.0)
}

/// Text with a halo of the background colour, readable over the messages crossing the ring.
fn haloed(
    ctx: &Ctx,
    theme: &Theme,
    color: &str,
    text: &str,
    x: f64,
    y: f64,
) -> Result<(), JsValue> {
    ctx.set_stroke_style_str(theme.bg);
    ctx.set_line_width(3.0);
    ctx.stroke_text(text, x, y)?;
    ctx.set_fill_style_str(color);
    ctx.fill_text(text, x, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well_and_hues_differ_for_neighbours() {
        assert_eq!(show_size(812), "812 B");
        assert_eq!(show_size(3_200), "3.1 KB");
        assert_eq!(show_size(2 << 20), "2.0 MB");
        for id in 1..64 {
            let d = (node_hue(id) - node_hue(id + 1)).abs();
            let d = d.min(360.0 - d);
            assert!(d > 20.0, "n{id} and n{} too close: {d}", id + 1);
        }
    }

    #[test]
    fn centre_text_shrinks_to_fit_inside_a_small_ring() {
        let line = "N=3 W=2 R=2 · 5 nodes";
        assert_eq!(center_font_px(12.0, line, 0.56, 400.0), 12.0);
        let small = center_font_px(12.0, line, 0.56, 100.0);
        assert!(small < 12.0 && small * 0.56 * line.chars().count() as f64 <= 100.5);
        assert_eq!(center_font_px(12.0, line, 0.56, 10.0), 8.0);
    }
}
