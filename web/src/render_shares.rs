//! The ring shares a lesson compared (`shares VNODES`, the design notes' §2), drawn top left
//! (top right while the storage panel is open): per node, one bar per comparison, as long as
//! the node's share of the ring, the oldest comparison faint and the newest solid, and for
//! each the largest share over the smallest (max/min). With one token per node the bars are ragged;
//! with many they are nearly even.

use crate::render::{Scene, Theme, Ui, label, node_color, panel_box};
use crate::view::{RingShares, ViewModel};
use wasm_bindgen::JsValue;
use web_sys::CanvasRenderingContext2d as Ctx;

/// The panel's width on a canvas `width` wide.
fn panel_width(width: f64) -> f64 {
    (width * 0.3).clamp(192.0, 240.0)
}
const BAR: f64 = 6.0;

/// Whether the comparison is drawn on a canvas `width` wide.
pub fn shown(model: &ViewModel, width: f64) -> bool {
    !model.shares.is_empty() && width >= 600.0
}

/// How opaque comparison `i` of `count` is drawn: the newest solid.
fn alpha(i: usize, count: usize) -> f64 {
    if i + 1 == count { 1.0 } else { 0.4 }
}

/// The spread as the page writes it: `69×`, `1.4×`, or `∞` when a node owns nothing.
fn show_spread(s: &RingShares) -> String {
    let x = s.spread();
    if !x.is_finite() {
        "∞".to_string()
    } else if x >= 10.0 {
        format!("{x:.0}×")
    } else {
        format!("{x:.1}×")
    }
}

/// Draws the comparison, if a lesson made one and the canvas has room.
pub fn draw(
    ctx: &Ctx,
    model: &ViewModel,
    scene: &Scene,
    ui: &Ui,
    theme: &Theme,
) -> Result<(), JsValue> {
    let g = &scene.geom;
    if !shown(model, g.width) {
        return Ok(());
    }
    let series = &model.shares;
    let nodes: Vec<u32> = series[0].shares.iter().map(|s| s.0).collect();
    let row = series.len() as f64 * (BAR + 2.0) + 6.0;
    let head = 22.0 + 13.0 * series.len() as f64;
    let h = head + nodes.len() as f64 * row + 6.0;
    let width = panel_width(g.width);
    let x = if crate::render_lsm::shown(model, g.width) {
        g.width - width - 8.0
    } else {
        8.0
    };
    let y = 8.0;
    panel_box(ctx, theme, (x, y, width, h), true);
    ctx.set_text_baseline("middle");
    ctx.set_text_align("left");
    ctx.set_fill_style_str(theme.fg);
    ctx.set_font("600 12px ui-sans-serif, system-ui, sans-serif");
    ctx.fill_text("Each node's share of the ring", x + 8.0, y + 12.0)?;
    ctx.set_font(if width >= 230.0 {
        "10px ui-sans-serif, system-ui, sans-serif"
    } else {
        "9px ui-sans-serif, system-ui, sans-serif"
    });
    for (i, s) in series.iter().enumerate() {
        let ly = y + 27.0 + 13.0 * i as f64;
        ctx.set_global_alpha(alpha(i, series.len()));
        ctx.set_fill_style_str(theme.muted);
        ctx.fill_rect(x + 8.0, ly - BAR / 2.0, 14.0, BAR);
        ctx.set_global_alpha(1.0);
        ctx.set_fill_style_str(theme.fg);
        let text = format!(
            "{} vnode{} per node · max/min {}",
            s.vnodes,
            if s.vnodes == 1 { "" } else { "s" },
            show_spread(s)
        );
        ctx.fill_text(&text, x + 27.0, ly)?;
    }
    let largest = series
        .iter()
        .flat_map(|s| s.shares.iter().map(|x| x.1))
        .fold(0.0_f64, f64::max)
        .max(f64::EPSILON);
    let (bx, room) = (x + 30.0, width - 30.0 - 40.0);
    for (r, &id) in nodes.iter().enumerate() {
        let ry = y + head + r as f64 * row;
        ctx.set_text_align("right");
        ctx.set_fill_style_str(theme.fg);
        ctx.set_font("10px ui-sans-serif, system-ui, sans-serif");
        ctx.fill_text(&label(ui, id), bx - 5.0, ry + row / 2.0 - 2.0)?;
        ctx.set_text_align("left");
        ctx.set_font("9px ui-sans-serif, system-ui, sans-serif");
        for (i, s) in series.iter().enumerate() {
            let share = s.shares.iter().find(|x| x.0 == id).map_or(0.0, |x| x.1);
            let by = ry + i as f64 * (BAR + 2.0);
            let len = (share / largest * room).max(1.0);
            ctx.set_fill_style_str(&node_color(id, theme, alpha(i, series.len())));
            ctx.fill_rect(bx, by, len, BAR);
            ctx.set_fill_style_str(theme.muted);
            ctx.fill_text(
                &format!("{:.0}%", share * 100.0),
                bx + len + 4.0,
                by + BAR / 2.0,
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawn_on_wide_canvases_once_a_lesson_compared_shares() {
        let mut model = ViewModel::default();
        assert!(!shown(&model, 900.0));
        model.shares.push(RingShares {
            vnodes: 1,
            shares: vec![(1, 0.54), (2, 0.01), (3, 0.45)],
        });
        assert!(shown(&model, 900.0) && !shown(&model, 390.0));
        assert_eq!(show_spread(&model.shares[0]), "54×");
        let even = RingShares {
            vnodes: 16,
            shares: vec![(1, 0.3), (2, 0.33), (3, 0.37)],
        };
        assert_eq!(show_spread(&even), "1.2×");
        let none = RingShares {
            vnodes: 1,
            shares: vec![(1, 1.0), (2, 0.0)],
        };
        assert_eq!(show_spread(&none), "∞");
        assert!(alpha(0, 2) < alpha(1, 2));
    }
}
