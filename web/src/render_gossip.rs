//! Who has heard whom, drawn top right in lessons that follow gossip (the design notes' §5): a
//! row per listening node, a column per node heard of. A cell is bright purple when the row's
//! node heard a newer heartbeat of the column's within the last round, and fades with every
//! silent round; red once the row suspects the column (φ over the threshold), dark red with a
//! cross once it declared it dead; empty while the row has not heard of it at all; grey along a
//! row whose node is down. The title counts the gossip rounds. On a phone the grid sits inside
//! the ring, bare (no title, no key), and the names lose their `n`.

use crate::layout::Geometry;
use crate::render::{RED, Scene, Theme, Ui, kind_color, label, panel_box};
use crate::view::ViewModel;
use crate::view::gossip::{GossipCell, Heard};
use ringstore_core::wire::MessageKind;
use wasm_bindgen::JsValue;
use web_sys::CanvasRenderingContext2d as Ctx;

/// The largest cell side (px).
const CELL_MAX: f64 = 18.0;
/// Cells smaller than this are not drawn (too small to read).
const CELL_MIN: f64 = 9.0;
/// Cells at least this wide get full names (`n3`) and a two-line title.
const CELL_ROOMY: f64 = 16.0;
/// Rounds of silence after which a cell is at its faintest.
const FADE_ROUNDS: f64 = 8.0;
const DEAD: &str = "#7f1d1d";

/// Where the grid goes and how big.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Place {
    /// The panel's top left corner.
    x: f64,
    y: f64,
    /// Cell side.
    cell: f64,
    /// Width of the row labels' column.
    labels: f64,
    /// In a corner with a title and a key (a wide canvas), or inside the ring, bare (a phone's,
    /// whose corners the nodes fill).
    corner: bool,
}

impl Place {
    fn width(&self, n: usize) -> f64 {
        16.0 + self.labels + n as f64 * self.cell
    }

    fn head(&self) -> f64 {
        if self.corner { 48.0 } else { 12.0 }
    }

    fn height(&self, n: usize) -> f64 {
        let foot = if self.corner { 30.0 } else { 10.0 };
        self.head() + n as f64 * self.cell + foot
    }
}

/// The grid's place on `g` for `n` nodes, if its cells are big enough to read. `right`: the
/// top left corner is taken (by the storage panel).
fn place(n: usize, g: &Geometry, right: bool) -> Option<Place> {
    let count = n.max(1) as f64;
    if g.width >= 600.0 {
        // A third of the width at most, and less than half the height.
        let by_width = (g.width * 0.3 - 16.0 - 22.0) / count;
        let by_height = (g.height * 0.46 - 48.0 - 30.0) / count;
        let cell = by_width.min(by_height).min(CELL_MAX);
        let mut p = Place {
            x: 8.0,
            y: 8.0,
            cell,
            labels: 22.0,
            corner: true,
        };
        if right {
            p.x = g.width - p.width(n) - 8.0;
        }
        (cell >= CELL_MIN).then_some(p)
    } else {
        // The square inside the ring's band.
        let inner = g.ring_radius - g.ring_width / 2.0 - 3.0;
        let side = inner * std::f64::consts::SQRT_2;
        let cell = ((side - 16.0 - 12.0) / count).min(CELL_MAX);
        let labels = 12.0;
        let p = Place {
            x: g.cx - side / 2.0,
            y: g.cy - side / 2.0,
            cell,
            labels,
            corner: false,
        };
        (cell >= CELL_MIN).then_some(p)
    }
}

/// A node's name in a grid whose cells are `cell` wide: `n3`, or `3` when small.
fn short(name: String, cell: f64) -> String {
    match name.strip_prefix('n') {
        Some(digits) if cell < CELL_ROOMY && digits.chars().all(|c| c.is_ascii_digit()) => {
            digits.to_string()
        }
        _ => name,
    }
}

/// How strongly a cell is filled: 1 for news within the last round, fading to 0.15.
fn freshness(age_rounds: Option<u32>) -> f64 {
    match age_rounds {
        None | Some(0 | 1) => 1.0,
        Some(a) => (1.0 - (f64::from(a) - 1.0) / FADE_ROUNDS).max(0.15),
    }
}

/// Draws the grid, if the lesson follows gossip and the canvas has room: top left (top right
/// while the storage panel is open) on a wide canvas, inside the ring on a phone.
pub fn draw(
    ctx: &Ctx,
    model: &ViewModel,
    scene: &Scene,
    ui: &Ui,
    theme: &Theme,
) -> Result<(), JsValue> {
    let Some(v) = &model.gossip_grid else {
        return Ok(());
    };
    let g = &scene.geom;
    let n = v.nodes.len();
    let Some(p) = place(n, g, crate::render_lsm::shown(model, g.width)) else {
        return Ok(());
    };
    let (x, y, cell, width) = (p.x, p.y, p.cell, p.width(n));
    panel_box(ctx, theme, (x, y, width, p.height(n)), p.corner);
    ctx.set_text_baseline("middle");
    if p.corner {
        ctx.set_text_align("left");
        ctx.set_fill_style_str(theme.fg);
        // Narrow: a shorter title, with the round beside it.
        let narrow = width < 170.0;
        ctx.set_font("600 12px ui-sans-serif, system-ui, sans-serif");
        let title = if narrow {
            "Heard of"
        } else {
            "Who has heard whom"
        };
        ctx.fill_text(title, x + 8.0, y + 12.0)?;
        ctx.set_font("10px ui-sans-serif, system-ui, sans-serif");
        ctx.set_fill_style_str(theme.muted);
        ctx.fill_text("row hears column", x + 8.0, y + 26.0)?;
        ctx.set_text_align("right");
        let round_y = if narrow { y + 12.0 } else { y + 26.0 };
        ctx.fill_text(&format!("round {}", v.round), x + width - 6.0, round_y)?;
    }
    let (gx, gy) = (x + 8.0 + p.labels, y + p.head());
    ctx.set_fill_style_str(theme.muted);
    ctx.set_font(if cell >= CELL_ROOMY {
        "10px ui-sans-serif, system-ui, sans-serif"
    } else {
        "8.5px ui-sans-serif, system-ui, sans-serif"
    });
    ctx.set_text_align("center");
    for (i, &id) in v.nodes.iter().enumerate() {
        let name = short(label(ui, id), cell);
        ctx.fill_text(&name, gx + (i as f64 + 0.5) * cell, gy - 6.0)?;
    }
    ctx.set_text_align("right");
    for (i, &id) in v.nodes.iter().enumerate() {
        let name = short(label(ui, id), cell);
        ctx.fill_text(&name, gx - 3.0, gy + (i as f64 + 0.5) * cell)?;
    }
    for row in 0..n {
        for column in 0..n {
            let Some(c) = v.cell(row, column) else {
                continue;
            };
            let (cx, cy) = (gx + column as f64 * cell, gy + row as f64 * cell);
            draw_cell(ctx, c, cx, cy, cell, theme)?;
        }
    }
    if !p.corner {
        // The centre's note ("1.5 s later…"), which the grid covers, goes on its last line.
        if !ui.subtitle.is_empty() {
            ctx.set_text_align("center");
            ctx.set_fill_style_str(theme.fg);
            ctx.set_font("600 9px ui-sans-serif, system-ui, sans-serif");
            ctx.fill_text(&ui.subtitle, x + width / 2.0, y + p.height(n) - 1.0)?;
        }
        return Ok(());
    }
    // The key, in two rows of two.
    let ky = gy + n as f64 * cell + 10.0;
    ctx.set_text_align("left");
    ctx.set_font("9px ui-sans-serif, system-ui, sans-serif");
    let entries: [(&str, &str, f64); 4] = [
        ("fresh", kind_color(MessageKind::Gossip), 1.0),
        ("silent", kind_color(MessageKind::Gossip), 0.25),
        ("suspect", RED, 0.9),
        ("unknown", theme.faint, 0.0),
    ];
    for (i, (text, color, alpha)) in entries.into_iter().enumerate() {
        let kx = x + 8.0 + (i % 2) as f64 * (width - 16.0) / 2.0;
        let row_y = ky + (i / 2) as f64 * 12.0;
        if alpha > 0.0 {
            ctx.set_global_alpha(alpha);
            ctx.set_fill_style_str(color);
            ctx.fill_rect(kx, row_y - 4.0, 8.0, 8.0);
            ctx.set_global_alpha(1.0);
        } else {
            ctx.set_stroke_style_str(theme.muted);
            ctx.stroke_rect(kx + 0.5, row_y - 3.5, 7.0, 7.0);
        }
        ctx.set_fill_style_str(theme.muted);
        ctx.fill_text(text, kx + 11.0, row_y)?;
    }
    Ok(())
}

fn draw_cell(
    ctx: &Ctx,
    c: &GossipCell,
    x: f64,
    y: f64,
    side: f64,
    theme: &Theme,
) -> Result<(), JsValue> {
    let (x, y, s) = (x + 1.0, y + 1.0, side - 2.0);
    match c.heard {
        Heard::Me => {
            ctx.set_stroke_style_str(kind_color(MessageKind::Gossip));
            ctx.set_line_width(1.5);
            ctx.stroke_rect(x + 0.75, y + 0.75, s - 1.5, s - 1.5);
            ctx.set_line_width(1.0);
        }
        Heard::Down => {
            ctx.set_global_alpha(0.35);
            ctx.set_fill_style_str(theme.muted);
            ctx.fill_rect(x, y, s, s);
            ctx.set_global_alpha(1.0);
        }
        Heard::Unknown => {
            ctx.set_stroke_style_str(theme.faint);
            ctx.stroke_rect(x + 0.5, y + 0.5, s - 1.0, s - 1.0);
        }
        Heard::Alive => {
            ctx.set_global_alpha(freshness(c.age_rounds));
            ctx.set_fill_style_str(kind_color(MessageKind::Gossip));
            ctx.fill_rect(x, y, s, s);
            ctx.set_global_alpha(1.0);
        }
        Heard::Suspect => {
            ctx.set_fill_style_str(RED);
            ctx.fill_rect(x, y, s, s);
        }
        Heard::Dead => {
            ctx.set_fill_style_str(DEAD);
            ctx.fill_rect(x, y, s, s);
            ctx.set_stroke_style_str(theme.fg);
            ctx.begin_path();
            ctx.move_to(x + s * 0.25, y + s * 0.25);
            ctx.line_to(x + s * 0.75, y + s * 0.75);
            ctx.move_to(x + s * 0.75, y + s * 0.25);
            ctx.line_to(x + s * 0.25, y + s * 0.75);
            ctx.stroke();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::gossip::GossipView;

    fn grid(n: u32) -> GossipView {
        GossipView {
            round: 3,
            nodes: (1..=n).collect(),
            cells: vec![
                GossipCell {
                    heard: Heard::Alive,
                    age_rounds: Some(0),
                    phi: None,
                };
                (n * n) as usize
            ],
        }
    }

    #[test]
    fn eight_nodes_fit_a_corner_on_a_desktop_and_the_ring_on_a_phone() {
        let desktop = crate::layout::geometry(900.0, 460.0, 8);
        let phone = crate::layout::geometry(390.0, 440.0, 8);
        assert_eq!(grid(8).cells.len(), 64);
        let p = place(8, &desktop, false).expect("fits");
        assert!(p.corner && p.x == 8.0);
        assert!(p.cell >= CELL_ROOMY, "{p:?}");
        assert!(
            p.width(8) <= 900.0 * 0.3 && p.height(8) <= 460.0 * 0.5,
            "{p:?}"
        );
        let right = place(8, &desktop, true).expect("fits");
        assert!(right.x + right.width(8) <= 900.0 - 8.0 + 1e-9 && right.x > 600.0);
        // On a phone: inside the ring's band, centred.
        let p = place(8, &phone, false).expect("fits");
        assert!(!p.corner && p.cell >= CELL_MIN, "{p:?}");
        let inner = phone.ring_radius - phone.ring_width / 2.0;
        for (cx, cy) in [(p.x, p.y), (p.x + p.width(8), p.y + p.height(8))] {
            let d = ((cx - phone.cx).powi(2) + (cy - phone.cy).powi(2)).sqrt();
            assert!(d <= inner + 1.0, "corner at {d} outside {inner}: {p:?}");
        }
        assert_eq!(short("n3".into(), p.cell), "3");
        assert_eq!(short("B".into(), p.cell), "B");
        assert_eq!(short("n3".into(), CELL_MAX), "n3");
        assert!(place(16, &crate::layout::geometry(1200.0, 700.0, 16), false).is_some());
        assert!(place(16, &crate::layout::geometry(390.0, 440.0, 16), false).is_none());
    }

    #[test]
    fn cells_fade_with_each_silent_round() {
        assert_eq!(freshness(Some(1)), 1.0);
        assert!(freshness(Some(3)) < freshness(Some(2)));
        assert_eq!(freshness(Some(40)), 0.15);
    }
}
