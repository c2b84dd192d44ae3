//! The background and the ring (band, ownership arcs, vnode ticks, scale marks) drawn once into
//! an offscreen canvas and copied onto the page's canvas each frame.
//!
//! They change only when the ring, a node's up/down state, the hovered node, the theme or the
//! size change, yet at 16 nodes × 8 vnodes they are ~260 stroked paths: ~5 ms of software
//! rasterisation per frame in headless Chromium without a GPU, against ~0.3 ms for copying
//! the whole canvas. The layer is redrawn when a hash of everything it depends on changes.

use crate::layout::Geometry;
use crate::render::{Theme, draw_ring};
use crate::view::{Status, ViewModel};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{CanvasRenderingContext2d as Ctx, HtmlCanvasElement};

/// The offscreen ring. See the module docs.
#[derive(Debug, Default)]
pub struct RingLayer {
    canvas: Option<(HtmlCanvasElement, Ctx)>,
    key: Option<u64>,
    /// Device pixels per CSS pixel of the page's canvas.
    pub dpr: f64,
}

/// A new detached canvas and its 2D context (the ring layer, and `sprites`).
pub(crate) fn offscreen() -> Option<(HtmlCanvasElement, Ctx)> {
    let canvas = web_sys::window()?
        .document()?
        .create_element("canvas")
        .ok()?
        .dyn_into::<HtmlCanvasElement>()
        .ok()?;
    let ctx = canvas.get_context("2d").ok()??.dyn_into::<Ctx>().ok()?;
    Some((canvas, ctx))
}

/// A hash of everything the layer's picture depends on.
pub fn layer_key(
    model: &ViewModel,
    g: &Geometry,
    theme: &Theme,
    hovered: Option<u32>,
    dpr: f64,
) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |v: u64| {
        h = (h ^ v).wrapping_mul(0x1000_0000_01b3);
    };
    for &(t, o) in &model.ring {
        mix(t);
        mix(u64::from(o));
    }
    for n in &model.nodes {
        if n.status != Status::Up {
            mix(u64::from(n.id) << 8 | n.status as u64);
        }
    }
    mix(hovered.map_or(u64::MAX, u64::from));
    for b in theme.bg.bytes().chain(theme.faint.bytes()) {
        mix(u64::from(b));
    }
    for f in [
        g.width,
        g.height,
        g.cx,
        g.cy,
        g.ring_radius,
        g.ring_width,
        dpr,
    ] {
        mix(f.to_bits());
    }
    h
}

impl RingLayer {
    /// Draws the background and the ring on `ctx` (whose transform is the device pixel ratio),
    /// redrawing the layer first if it is stale.
    pub fn draw(
        &mut self,
        ctx: &Ctx,
        model: &ViewModel,
        g: &Geometry,
        theme: &Theme,
        hovered: Option<u32>,
    ) -> Result<(), JsValue> {
        if self.canvas.is_none() {
            self.canvas = offscreen();
        }
        let Some((canvas, layer)) = &self.canvas else {
            // No document (never in the page): draw directly.
            return draw_ring(ctx, model, g, theme, hovered);
        };
        let dpr = if self.dpr > 0.0 { self.dpr } else { 1.0 };
        let key = layer_key(model, g, theme, hovered, dpr);
        if self.key != Some(key) {
            let (w, h) = (
                (g.width * dpr).round() as u32,
                (g.height * dpr).round() as u32,
            );
            if canvas.width() != w || canvas.height() != h {
                canvas.set_width(w);
                canvas.set_height(h);
            }
            layer.set_transform(dpr, 0.0, 0.0, dpr, 0.0, 0.0)?;
            draw_ring(layer, model, g, theme, hovered)?;
            self.key = Some(key);
        }
        ctx.set_transform(1.0, 0.0, 0.0, 1.0, 0.0, 0.0)?;
        ctx.draw_image_with_html_canvas_element(canvas, 0.0, 0.0)?;
        ctx.set_transform(dpr, 0.0, 0.0, dpr, 0.0, 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::geometry;

    #[test]
    fn the_key_changes_with_what_the_layer_shows_and_only_with_it() {
        let mut m = ViewModel {
            ring: vec![(10, 1), (20, 2)],
            ..ViewModel::default()
        };
        let g = geometry(800.0, 600.0, 2);
        let k = |m: &ViewModel, h: Option<u32>| layer_key(m, &g, &Theme::DARK, h, 1.0);
        let base = k(&m, None);
        assert_eq!(base, k(&m, None));
        assert_ne!(base, k(&m, Some(1)));
        assert_ne!(base, layer_key(&m, &g, &Theme::LIGHT, None, 1.0));
        assert_ne!(base, layer_key(&m, &g, &Theme::DARK, None, 2.0));
        assert_ne!(
            base,
            layer_key(&m, &geometry(900.0, 600.0, 2), &Theme::DARK, None, 1.0)
        );
        m.now_ms = 5.0;
        m.messages.clear();
        assert_eq!(base, k(&m, None), "time and messages are not on the layer");
        m.ring[1].1 = 1;
        assert_ne!(base, k(&m, None));
    }
}
