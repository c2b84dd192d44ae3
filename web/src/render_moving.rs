//! The ranges a join or leave moves, drawn over the ring: each streamed token range as a cyan
//! arc just outside the band (dashed while it streams, solid once done), and the count of keys
//! moved so far above the clock.

use crate::layout;
use crate::render::{Scene, Theme, Ui, js_dash, kind_color, label};
use crate::view::ViewModel;
use ringstore_core::wire::MessageKind;
use std::f64::consts::TAU;
use wasm_bindgen::JsValue;
use web_sys::CanvasRenderingContext2d as Ctx;

/// Draws the newest join's or leave's ranges and count, if one is under way or just ended.
pub fn draw(
    ctx: &Ctx,
    model: &ViewModel,
    scene: &Scene,
    ui: &Ui,
    theme: &Theme,
) -> Result<(), JsValue> {
    let Some(m) = &model.moving else {
        return Ok(());
    };
    let g = &scene.geom;
    let r = g.ring_radius + g.ring_width / 2.0 + 5.0;
    ctx.set_stroke_style_str(kind_color(MessageKind::Stream));
    ctx.set_line_width(5.0);
    for &(start, end, done) in &m.ranges {
        let a = layout::token_angle(start);
        let mut b = layout::token_angle(end);
        if b <= a {
            b += TAU;
        }
        ctx.set_line_dash(&js_dash(if done { &[] } else { &[6.0, 4.0] }))?;
        ctx.begin_path();
        ctx.arc(g.cx, g.cy, r, a, b)?;
        ctx.stroke();
    }
    ctx.set_line_dash(&js_dash(&[]))?;
    let scale = (g.ring_radius / 160.0).clamp(0.9, 1.3);
    let text = format!(
        "{} {}: {} keys moved, {} range{}",
        label(ui, m.node),
        if m.kind == "join" { "joins" } else { "leaves" },
        m.keys,
        m.ranges.len(),
        if m.ranges.len() == 1 { "" } else { "s" }
    );
    // As wide as the ring's inside allows at that height, clear of the band.
    let (inner, up) = (g.ring_radius - g.ring_width / 2.0, 40.0 * scale);
    let room = 2.0 * (inner * inner - up * up).max(0.0).sqrt() - 40.0;
    let size = (room / (text.chars().count() as f64 * 0.6))
        .min(11.0 * scale)
        .max(8.0);
    ctx.set_font(&format!(
        "600 {size:.0}px ui-sans-serif, system-ui, sans-serif"
    ));
    ctx.set_text_align("center");
    ctx.set_text_baseline("middle");
    ctx.set_line_join("round");
    ctx.set_stroke_style_str(theme.bg);
    ctx.set_line_width(3.0);
    let y = g.cy - 40.0 * scale;
    ctx.stroke_text(&text, g.cx, y)?;
    ctx.set_fill_style_str(theme.fg);
    ctx.fill_text(&text, g.cx, y)
}
