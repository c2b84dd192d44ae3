//! Two Merkle trees drawn during an anti-entropy session (the design notes' §7.2), top right:
//! the initiator's and its peer's, each level a row of hashes. The levels compared so far are
//! darker; once the leaves whose hashes differ are known, the branches down to them are red in
//! both trees, their siblings green (compared, equal: not looked into further), and the nodes
//! below an equal hash faint (never compared). Below: what was compared and what travelled.

use crate::render::{RED, Scene, Theme, Ui, label, panel_box};
use crate::view::ViewModel;
use crate::view::merkle::{MerkleView, ancestor};
use std::f64::consts::TAU;
use wasm_bindgen::JsValue;
use web_sys::CanvasRenderingContext2d as Ctx;

const GREEN: &str = "#34d399";
const LEVEL_GAP: f64 = 16.0;
/// Levels drawn at most (deeper trees show their top levels and their leaves).
const LEVELS_DRAWN: u8 = 6;

/// Whether the trees are drawn on a canvas `width` wide.
pub fn shown(model: &ViewModel, width: f64) -> bool {
    model.merkle.is_some() && width >= 600.0
}

/// Draws the session's trees, if there is one to draw.
pub fn draw(
    ctx: &Ctx,
    model: &ViewModel,
    scene: &Scene,
    ui: &Ui,
    theme: &Theme,
) -> Result<(), JsValue> {
    let Some(m) = &model.merkle else {
        return Ok(());
    };
    let g = &scene.geom;
    if !shown(model, g.width) {
        return Ok(());
    }
    let width = 250.0;
    let rows: Vec<u8> = levels(m.depth);
    let tree_h = rows.len() as f64 * LEVEL_GAP;
    let h = 44.0 + tree_h + 34.0;
    let (x, y) = (g.width - width - 8.0, 8.0);
    panel_box(ctx, theme, (x, y, width, h), true);
    ctx.set_text_baseline("middle");
    ctx.set_text_align("left");
    ctx.set_fill_style_str(theme.fg);
    ctx.set_font("600 12px ui-sans-serif, system-ui, sans-serif");
    ctx.fill_text(
        &format!(
            "Merkle trees: {} ↔ {}",
            label(ui, m.from),
            label(ui, m.with)
        ),
        x + 8.0,
        y + 12.0,
    )?;
    ctx.set_font("10px ui-monospace, SFMono-Regular, Menlo, monospace");
    ctx.set_fill_style_str(theme.muted);
    ctx.fill_text(&format!("range {}", m.range), x + 8.0, y + 26.0)?;
    let tree_w = (width - 24.0) / 2.0;
    for (i, who) in [m.from, m.with].into_iter().enumerate() {
        let tx = x + 8.0 + i as f64 * (tree_w + 8.0);
        ctx.set_text_align("center");
        ctx.set_font("10px ui-sans-serif, system-ui, sans-serif");
        ctx.set_fill_style_str(theme.muted);
        ctx.fill_text(&label(ui, who), tx + tree_w / 2.0, y + 38.0)?;
        draw_tree(ctx, m, &rows, tx, y + 50.0, tree_w, theme)?;
    }
    ctx.set_text_align("left");
    ctx.set_font("10px ui-sans-serif, system-ui, sans-serif");
    ctx.set_fill_style_str(theme.fg);
    let ty = y + 50.0 + tree_h + 4.0;
    let line1 = if m.leaves.is_empty() {
        format!("level {} of {}: hashes compared", m.level, m.depth)
    } else {
        let leaves: Vec<String> = m.leaves.iter().map(|l| l.to_string()).collect();
        format!(
            "leaf {}: {} keys compared, {} sent",
            leaves.join(", "),
            m.keys_compared,
            m.keys_sent
        )
    };
    ctx.fill_text(&line1, x + 8.0, ty)?;
    if let Some(bytes) = m.bytes {
        ctx.fill_text(
            &format!("done: {bytes} bytes on the wire"),
            x + 8.0,
            ty + 14.0,
        )?;
    }
    Ok(())
}

/// The levels drawn: all of them for shallow trees, else the top ones and the leaves.
fn levels(depth: u8) -> Vec<u8> {
    if depth < LEVELS_DRAWN {
        (0..=depth).collect()
    } else {
        (0..LEVELS_DRAWN - 1).chain([depth]).collect()
    }
}

fn draw_tree(
    ctx: &Ctx,
    m: &MerkleView,
    rows: &[u8],
    x: f64,
    y: f64,
    w: f64,
    theme: &Theme,
) -> Result<(), JsValue> {
    let on_path = |level: u8, idx: u32| {
        m.leaves
            .iter()
            .any(|&leaf| ancestor(leaf, m.depth, level) == idx)
    };
    for (row, &level) in rows.iter().enumerate() {
        let count = 1u32 << level;
        let cy = y + row as f64 * LEVEL_GAP;
        let step = w / f64::from(count);
        let r = (step / 2.6).min(4.0);
        let compared = level <= m.level;
        let parent_level = row.checked_sub(1).map(|r| rows[r]);
        for idx in 0..count {
            let cx = x + step * (f64::from(idx) + 0.5);
            // Compared: the root, and the children of a node whose hashes differed.
            let looked_at = parent_level.is_none_or(|p| on_path(p, idx >> u32::from(level - p)));
            let color = if !m.leaves.is_empty() && on_path(level, idx) {
                RED
            } else if !m.leaves.is_empty() && compared && looked_at {
                GREEN
            } else if !m.leaves.is_empty() {
                theme.faint
            } else if compared {
                theme.muted
            } else {
                theme.faint
            };
            ctx.set_fill_style_str(color);
            if r >= 1.5 {
                ctx.begin_path();
                ctx.arc(cx, cy, r, 0.0, TAU)?;
                ctx.fill();
            } else {
                ctx.fill_rect(cx - step / 2.0 + 0.2, cy - 3.0, (step - 0.4).max(0.6), 6.0);
            }
        }
    }
    // The differing branches, root to leaf.
    ctx.set_stroke_style_str(RED);
    ctx.set_line_width(1.5);
    for &leaf in &m.leaves {
        ctx.begin_path();
        for (row, &level) in rows.iter().enumerate() {
            let idx = ancestor(leaf, m.depth, level);
            let step = w / f64::from(1u32 << level);
            let (cx, cy) = (
                x + step * (f64::from(idx) + 0.5),
                y + row as f64 * LEVEL_GAP,
            );
            if row == 0 {
                ctx.move_to(cx, cy);
            } else {
                ctx.line_to(cx, cy);
            }
        }
        ctx.stroke();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_trees_draw_their_top_levels_and_their_leaves() {
        assert_eq!(levels(4), vec![0, 1, 2, 3, 4]);
        assert_eq!(levels(8), vec![0, 1, 2, 3, 4, 8]);
        let mut model = ViewModel::default();
        assert!(!shown(&model, 900.0));
        model.merkle = Some(MerkleView::default());
        assert!(shown(&model, 900.0));
        assert!(!shown(&model, 390.0));
    }
}
