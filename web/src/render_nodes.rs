//! The nodes' decorations on the picture: verdict rings, badges (preference rank, hints held),
//! labels, phi, storage, the followed operation's role at each node, and what a lesson points
//! at: the studied key's value and timestamp at each replica (the stale one marked) and each
//! node's clock skew.

use crate::layout;
use crate::render::{AMBER, Frame, RED, js_dash, kind_color, label, seen_color, show_size};
use crate::view::Status;
use ringstore_core::wire::MessageKind;
use std::f64::consts::TAU;
use wasm_bindgen::JsValue;
use web_sys::CanvasRenderingContext2d as Ctx;

pub(crate) fn draw_nodes(frame: &Frame, hovered: Option<u32>, pref: &[u32]) -> Result<(), JsValue> {
    let Frame {
        ctx,
        model,
        scene,
        ui,
        theme,
    } = *frame;
    let g = &scene.geom;
    let nr = g.node_radius;
    let stride = layout::label_stride(model.nodes.len(), g.orbit_radius, layout::LABEL_PX);
    let inside = nr >= 13.0;
    // Storage lines, when there is room and no studied key's versions take their place.
    let detail = model.nodes.len() <= 16 && nr >= 12.0 && model.key_cells.is_empty();
    let followed = model.followed.as_ref();
    for (i, node) in model.nodes.iter().enumerate() {
        let (x, y) = scene.positions[i].1;
        let angle = scene.angles[i];
        let running = matches!(node.status, Status::Up | Status::Joining | Status::Leaving);
        // +1: toward the centre is down the canvas (a node in the upper half), -1: up.
        let inward = if y < g.cy { 1.0 } else { -1.0 };
        // What the others think of it (the body is drawn by `draw_bodies`).
        if let Some(color) = seen_color(node) {
            ctx.set_stroke_style_str(color);
            ctx.set_line_width(2.5);
            ctx.set_line_dash(&js_dash(if node.seen.consensus() == "dead" {
                &[]
            } else {
                &[4.0, 3.0]
            }))?;
            ctx.begin_path();
            ctx.arc(x, y, nr + 4.0, 0.0, TAU)?;
            ctx.stroke();
            ctx.set_line_dash(&js_dash(&[]))?;
        }
        if matches!(node.status, Status::Joining | Status::Leaving) {
            ctx.set_stroke_style_str(kind_color(MessageKind::Stream));
            ctx.set_line_width(2.0);
            ctx.set_line_dash(&js_dash(&[2.0, 3.0]))?;
            ctx.begin_path();
            ctx.arc(x, y, nr + 7.0, 0.0, TAU)?;
            ctx.stroke();
            ctx.set_line_dash(&js_dash(&[]))?;
        }
        if node.status == Status::Down {
            let s = nr * 0.5;
            ctx.set_stroke_style_str(RED);
            ctx.set_line_width(2.5);
            ctx.begin_path();
            ctx.move_to(x - s, y - s);
            ctx.line_to(x + s, y + s);
            ctx.move_to(x + s, y - s);
            ctx.line_to(x - s, y + s);
            ctx.stroke();
        }
        // Highlights: hovered or selected, in the key's preference list, in the followed path.
        let in_pref = pref.iter().position(|p| *p == node.id);
        let in_path = followed.is_some_and(|f| {
            f.coordinator == node.id || f.targets.iter().any(|(t, _)| *t == node.id)
        });
        if hovered == Some(node.id) || ui.selected == Some(node.id) {
            ctx.set_stroke_style_str(theme.fg);
            ctx.set_line_width(2.0);
            ctx.begin_path();
            ctx.arc(x, y, nr + 9.0, 0.0, TAU)?;
            ctx.stroke();
        }
        if let Some(k) = in_pref {
            let (bx, by) = (x + nr * 0.8, y - nr * 0.8);
            ctx.set_fill_style_str(theme.fg);
            ctx.begin_path();
            ctx.arc(bx, by, 7.0, 0.0, TAU)?;
            ctx.fill();
            ctx.set_fill_style_str(theme.bg);
            ctx.set_font("700 9px ui-sans-serif, system-ui, sans-serif");
            ctx.set_text_align("center");
            ctx.set_text_baseline("middle");
            ctx.fill_text(&(k + 1).to_string(), bx, by + 0.5)?;
        }
        if let Some(f) = followed.filter(|_| in_path) {
            let tag = if f.coordinator == node.id {
                "coord".to_string()
            } else {
                let mut t = String::new();
                if f.wal.contains(&node.id) {
                    t.push_str("wal ");
                }
                if f.answered.contains(&node.id) {
                    t.push_str(if f.kind == "get" { "reply" } else { "ack" });
                }
                if f.repaired.contains(&node.id) {
                    t.push_str(" repaired");
                }
                t
            };
            // On the side toward the centre: the labels and storage lines sit outward.
            let (tx, ty) = (x, y + inward * (nr + 8.0));
            ctx.set_font("600 10px ui-sans-serif, system-ui, sans-serif");
            ctx.set_text_align("center");
            ctx.set_text_baseline(if inward > 0.0 { "top" } else { "bottom" });
            ctx.set_fill_style_str(theme.fg);
            ctx.fill_text(tag.trim(), tx, ty)?;
        }
        // Hints held: an amber tag ("1 hint"), unlike the round preference-rank badges.
        if node.hints > 0 && nr >= 8.0 {
            let text = match node.hints {
                1 => "1 hint".to_string(),
                n if n > 99 => "99+ hints".to_string(),
                n => format!("{n} hints"),
            };
            ctx.set_font("700 9.5px ui-sans-serif, system-ui, sans-serif");
            let w = text.chars().count() as f64 * 5.6 + 8.0;
            let (bx, by) = (x - nr - w + 4.0, y - nr * 0.9 - 7.0);
            ctx.set_fill_style_str(AMBER);
            ctx.begin_path();
            ctx.round_rect_with_f64(bx, by, w, 14.0, 3.0)?;
            ctx.fill();
            ctx.set_fill_style_str("#111");
            ctx.set_text_align("center");
            ctx.set_text_baseline("middle");
            ctx.fill_text(&text, bx + w / 2.0, by + 7.5)?;
        }
        // The studied key at this node: value and timestamp, the stale copy marked.
        if let Some(cell) = model.key_cells.iter().find(|c| c.node == node.id) {
            let text = match (&cell.value, &cell.ts) {
                (Some(v), Some(ts)) => format!("{v} · ts {ts}"),
                (None, Some(ts)) => format!("deleted · ts {ts}"),
                _ => "no copy".to_string(),
            };
            let text = if cell.stale {
                format!("{text} · stale")
            } else {
                text
            };
            // Outward, past the name: where the storage line goes when no key is studied.
            let ty = y - inward * (nr + 30.0);
            ctx.set_font("600 11px ui-monospace, SFMono-Regular, Menlo, monospace");
            // Monospace: 11 px glyphs are 6.6 px wide.
            let w = text.chars().count() as f64 * 6.6 + 10.0;
            ctx.set_fill_style_str(theme.bg);
            ctx.set_stroke_style_str(if cell.stale { RED } else { theme.muted });
            ctx.set_line_width(if cell.stale { 2.0 } else { 1.0 });
            ctx.begin_path();
            ctx.round_rect_with_f64(x - w / 2.0, ty - 8.5, w, 17.0, 4.0)?;
            ctx.fill();
            ctx.stroke();
            ctx.set_fill_style_str(if cell.stale { RED } else { theme.fg });
            ctx.set_text_align("center");
            ctx.set_text_baseline("middle");
            ctx.fill_text(&text, x, ty + 0.5)?;
        }
        // Label: inside a large body; outside otherwise, thinned.
        let must = hovered == Some(node.id)
            || in_pref.is_some()
            || in_path
            || node.status != Status::Up
            || node.seen.consensus() != "alive";
        let outward = g.at(angle, g.orbit_radius + nr + 12.0);
        // Text beside a body on the left or right runs away from it, never across it.
        let side = angle.cos();
        let align = if side > 0.45 {
            "left"
        } else if side < -0.45 {
            "right"
        } else {
            "center"
        };
        let outward = (outward.0 - side * 8.0, outward.1);
        ctx.set_text_align("center");
        ctx.set_text_baseline("middle");
        if inside {
            ctx.set_fill_style_str(if running { "#0b0f14" } else { theme.fg });
            ctx.set_font("700 12px ui-sans-serif, system-ui, sans-serif");
            ctx.fill_text(&label(ui, node.id), x, y + 0.5)?;
        } else if i % stride == 0 || must {
            ctx.set_text_align(align);
            ctx.set_fill_style_str(theme.fg);
            ctx.set_font("600 10px ui-sans-serif, system-ui, sans-serif");
            ctx.fill_text(&label(ui, node.id), outward.0, outward.1)?;
        }
        // Phi, when it means something.
        let phi = node.seen.phi_max.filter(|p| *p >= 1.0 || must);
        let mut line_y = if inside {
            outward.1 - 4.0
        } else {
            outward.1 + 11.0
        };
        ctx.set_text_align(align);
        if node.skew_ms != 0 {
            ctx.set_fill_style_str(AMBER);
            ctx.set_font("700 10.5px ui-monospace, SFMono-Regular, Menlo, monospace");
            let sign = if node.skew_ms > 0 { "+" } else { "−" };
            let text = format!("clock {sign}{} ms", node.skew_ms.unsigned_abs());
            ctx.fill_text(&text, outward.0, line_y)?;
            line_y += 12.0;
        }
        if let Some(phi) = phi.filter(|_| inside || must)
            && model.gossip
        {
            ctx.set_fill_style_str(if phi >= 8.0 {
                RED
            } else if phi >= 3.0 {
                AMBER
            } else {
                theme.muted
            });
            ctx.set_font("600 10px ui-monospace, SFMono-Regular, Menlo, monospace");
            ctx.fill_text(&format!("φ {phi:.1}"), outward.0, line_y)?;
            line_y += 11.0;
        }
        // Storage, when there is room.
        if detail && let Some(s) = &node.storage {
            let levels: Vec<String> = s
                .tables
                .iter()
                .enumerate()
                .filter(|(_, t)| **t > 0)
                .map(|(l, t)| format!("L{l}:{t}"))
                .collect();
            ctx.set_fill_style_str(theme.muted);
            ctx.set_font("9.5px ui-monospace, SFMono-Regular, Menlo, monospace");
            let (sx, sy) = g.at(angle, g.orbit_radius + nr + 12.0);
            let sy = if phi.is_some() && model.gossip {
                line_y.max(sy + 11.0)
            } else {
                line_y.max(sy)
            };
            let mem = format!(
                "mem {} · wal {}",
                s.memtable_entries,
                show_size(s.wal_bytes)
            );
            fill_within(ctx, &mem, sx, sy, align, g.width)?;
            if !levels.is_empty() {
                fill_within(ctx, &levels.join(" "), sx, sy + 11.0, align, g.width)?;
            }
        }
    }
    Ok(())
}

/// Writes `text` aligned `align` at `x` if it fits on a canvas `width` wide (a side node's
/// storage line on a phone would run off the edge, or onto the node if moved).
fn fill_within(
    ctx: &Ctx,
    text: &str,
    x: f64,
    y: f64,
    align: &str,
    width: f64,
) -> Result<(), JsValue> {
    let w = ctx.measure_text(text)?.width();
    let left = match align {
        "left" => x,
        "right" => x - w,
        _ => x - w / 2.0,
    };
    if left >= 1.0 && left + w <= width - 1.0 {
        ctx.fill_text(text, x, y)?;
    }
    Ok(())
}
