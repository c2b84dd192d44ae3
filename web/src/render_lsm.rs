//! The storage panel drawn on the canvas: one node's LSM tree (the design notes' §1), opened
//! by a lesson (`lsm NODE`, `compact NODE`) or by selecting a node. Rows top to bottom: the
//! WAL's appends in arrival order (on disk), the memtable's keys sorted (in memory), then the
//! SSTables of each level as boxes, and the counters. A row lights up while its work happens
//! (a WAL append, a flush, a compaction), and a line from the panel points at the node.

use crate::render::{Scene, Theme, Ui, js_dash, label, panel_box};
use crate::view::{EffectKind, ViewModel};
use wasm_bindgen::JsValue;
use web_sys::CanvasRenderingContext2d as Ctx;

const ROW: f64 = 15.0;
const PANEL_WIDTH_MAX: f64 = 250.0;
const PANEL_WIDTH_MIN: f64 = 170.0;
const HIGHLIGHT: &str = "rgba(245,165,36,0.28)";

/// Draws the panel in the picture's top-left corner, if one is open and the canvas is wide
/// enough to hold it beside the ring.
pub fn draw(
    ctx: &Ctx,
    model: &ViewModel,
    scene: &Scene,
    ui: &Ui,
    theme: &Theme,
) -> Result<(), JsValue> {
    let Some(v) = &model.lsm else {
        return Ok(());
    };
    let g = &scene.geom;
    if !shown(model, g.width) {
        return Ok(());
    }
    let width = (g.width * 0.3).min(PANEL_WIDTH_MAX);
    let levels: Vec<(usize, (usize, u64))> = v
        .levels
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, l)| l.0 > 0)
        .collect();
    let rows = 8.0 + levels.len().max(1) as f64;
    let (x, y, h) = (8.0, 8.0, rows * ROW + 8.0);
    let busy = |kind: EffectKind| {
        model
            .effects
            .iter()
            .any(|e| e.kind == kind && e.node == v.node)
    };
    panel_box(ctx, theme, (x, y, width, h), true);
    // A faint line to the node whose storage this is.
    if let Some(i) = model.index_of(v.node) {
        let (nx, ny) = scene.positions[i].1;
        ctx.set_line_dash(&js_dash(&[2.0, 4.0]))?;
        ctx.begin_path();
        ctx.move_to(x + width, y + h / 2.0);
        ctx.line_to(nx, ny);
        ctx.stroke();
        ctx.set_line_dash(&js_dash(&[]))?;
    }
    let mono = "11px ui-monospace, SFMono-Regular, Menlo, monospace";
    let bold = "600 12px ui-sans-serif, system-ui, sans-serif";
    let small = "10px ui-sans-serif, system-ui, sans-serif";
    ctx.set_text_align("left");
    ctx.set_text_baseline("middle");
    let mut row = y + 4.0 + ROW / 2.0;
    let text = |t: &str, font: &str, color: &str, at_y: f64| -> Result<(), JsValue> {
        ctx.set_font(font);
        ctx.set_fill_style_str(color);
        let char_px = if font == mono { 6.7 } else { 5.4 };
        fit_text(ctx, t, x + 8.0, at_y, (width - 16.0) / char_px)
    };
    let highlight = |at_y: f64, rows: f64| {
        ctx.set_fill_style_str(HIGHLIGHT);
        ctx.fill_rect(x + 2.0, at_y - ROW / 2.0, width - 4.0, ROW * rows);
    };
    text(
        &format!("{}'s storage: an LSM tree", label(ui, v.node)),
        bold,
        theme.fg,
        row,
    )?;
    row += ROW;
    if busy(EffectKind::Wal) {
        highlight(row, 2.0);
    }
    text(
        &format!(
            "WAL on disk, append order · {}",
            crate::render::show_size(v.wal_bytes)
        ),
        small,
        theme.muted,
        row,
    )?;
    row += ROW;
    let more = v.wal_appends.saturating_sub(v.wal.len());
    let wal = format!(
        "{}{}",
        if more > 0 {
            format!("+{more} … ")
        } else {
            String::new()
        },
        v.wal.join(" → ")
    );
    text(
        if wal.is_empty() { "(empty)" } else { &wal },
        mono,
        theme.fg,
        row,
    )?;
    row += ROW;
    text(
        &format!("memtable in memory, sorted · {} keys", v.memtable_keys),
        small,
        theme.muted,
        row,
    )?;
    row += ROW;
    let mem = format!(
        "{}{}",
        v.memtable.join(" "),
        if v.memtable_keys > v.memtable.len() && !v.memtable.is_empty() {
            " …"
        } else {
            ""
        }
    );
    text(
        if mem.is_empty() { "(empty)" } else { &mem },
        mono,
        theme.fg,
        row,
    )?;
    row += ROW;
    if busy(EffectKind::Flush) || busy(EffectKind::Compact) {
        highlight(row, 1.0 + levels.len().max(1) as f64);
    }
    text(
        "SSTables on disk, immutable, sorted",
        small,
        theme.muted,
        row,
    )?;
    row += ROW;
    if levels.is_empty() {
        text("(none yet)", mono, theme.fg, row)?;
        row += ROW;
    }
    for (level, (tables, entries)) in &levels {
        ctx.set_font(mono);
        ctx.set_fill_style_str(theme.fg);
        ctx.fill_text(&format!("L{level}"), x + 8.0, row)?;
        let shown = (*tables).min(8);
        for t in 0..shown {
            let bx = x + 30.0 + t as f64 * 14.0;
            ctx.set_fill_style_str(crate::render::kind_color(
                ringstore_core::wire::MessageKind::Stream,
            ));
            ctx.fill_rect(bx, row - 5.0, 11.0, 10.0);
        }
        ctx.set_fill_style_str(theme.fg);
        ctx.fill_text(
            &format!(
                "{} table{} · {entries} keys",
                tables,
                if *tables == 1 { "" } else { "s" }
            ),
            x + 34.0 + shown as f64 * 14.0,
            row,
        )?;
        row += ROW;
    }
    text(
        &format!(
            "{} flush{} · {} compaction{}",
            v.flushes,
            if v.flushes == 1 { "" } else { "es" },
            v.compactions,
            if v.compactions == 1 { "" } else { "s" },
        ),
        small,
        theme.muted,
        row,
    )?;
    row += ROW;
    text(
        &format!(
            "{} tombstone{} purged",
            v.tombstones_purged,
            if v.tombstones_purged == 1 { "" } else { "s" },
        ),
        small,
        theme.muted,
        row,
    )?;
    Ok(())
}

/// Writes `t` at (x, y), cut with an ellipsis to `room` characters (the callers divide the
/// room in pixels by the font's average character width).
fn fit_text(ctx: &Ctx, t: &str, x: f64, y: f64, room: f64) -> Result<(), JsValue> {
    let room = room.floor() as usize;
    if t.chars().count() <= room {
        return ctx.fill_text(t, x, y);
    }
    let cut: String = t.chars().take(room.saturating_sub(1)).collect();
    ctx.fill_text(&(cut + "…"), x, y)
}

/// Whether the panel would be drawn (for tests of the layout): a storage panel is open and
/// the canvas is wide enough.
pub fn shown(model: &ViewModel, width: f64) -> bool {
    model.lsm.is_some() && (width * 0.3).min(PANEL_WIDTH_MAX) >= PANEL_WIDTH_MIN
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::storage::LsmView;

    #[test]
    fn the_panel_shows_on_wide_canvases_only_when_open() {
        let mut model = ViewModel::default();
        assert!(!shown(&model, 900.0));
        model.lsm = Some(LsmView::default());
        assert!(shown(&model, 900.0));
        assert!(!shown(&model, 390.0));
    }
}
