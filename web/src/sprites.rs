//! Circles pre-drawn into small offscreen canvases and copied onto the page's canvas: the disk
//! flashes' rings ([`crate::effects`]) and the node bodies ([`crate::render`]).
//!
//! A canvas without a GPU (headless Chromium, browsers whose GPU is blocklisted) rasterises an
//! anti-aliased circle in ~40 µs, whether stroked, filled or batched into one path (measured
//! by replaying a recorded frame and timing the flush). Copying a small canvas to whole device
//! pixels with smoothing off is a plain blend, about four times cheaper; a copy that is
//! filtered or lands between pixels is not. So each distinct circle (colour, line width,
//! radius) is drawn once, at the device pixel ratio, and copied with the identity transform
//! to the pixel nearest its centre; the scene keeps node centres on whole pixels, so at pixel
//! ratios 1 and 2 the copies land exactly where the paths did. The cache is bounded (a flash
//! has [`crate::effects::RADIUS_STEPS`] radii per kind, a body one per node colour) and is
//! emptied when the pixel ratio or the body radius changes.

use std::collections::HashMap;
use wasm_bindgen::JsValue;
use web_sys::{CanvasRenderingContext2d as Ctx, HtmlCanvasElement};

/// Sprites kept at most; beyond, the cache starts again (it never holds more).
const SPRITES_MAX: usize = 512;

/// What a sprite shows: a circle of `radius` CSS pixels, stroked, and filled when `fill` is set.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Circle {
    fill: Option<String>,
    stroke: String,
    /// Line width, bits of the f64.
    width: u64,
    /// Radius, bits of the f64.
    radius: u64,
}

impl Circle {
    fn new(fill: Option<&str>, stroke: &str, width: f64, radius: f64) -> Self {
        Circle {
            fill: fill.map(str::to_string),
            stroke: stroke.to_string(),
            width: width.to_bits(),
            radius: radius.to_bits(),
        }
    }
}

/// The side of a sprite in device pixels (even, so its centre is a pixel corner): a circle of
/// `radius` and line width `width` CSS pixels at `dpr`, with a pixel to spare for the
/// anti-aliasing.
pub fn sprite_side(radius: f64, width: f64, dpr: f64) -> u32 {
    2 * ((radius + width / 2.0 + 1.0) * dpr).ceil() as u32
}

/// The pre-drawn circles. See the module docs.
#[derive(Debug, Default)]
pub struct Sprites {
    /// Device pixels per CSS pixel of the page's canvas.
    pub dpr: f64,
    /// The pixel ratio the sprites are drawn at.
    drawn_at: Option<u64>,
    sprites: HashMap<Circle, (HtmlCanvasElement, f64)>,
    /// No canvas could be made (no document): callers draw paths instead.
    unavailable: bool,
}

impl Sprites {
    fn dpr(&self) -> f64 {
        if self.dpr > 0.0 { self.dpr } else { 1.0 }
    }

    /// Starts copying onto `ctx` (whose transform is the pixel ratio); [`Copier::done`]
    /// restores its transform and smoothing.
    pub fn copier<'a>(&'a mut self, ctx: &'a Ctx) -> Copier<'a> {
        let dpr = self.dpr();
        if self.drawn_at != Some(dpr.to_bits()) || self.sprites.len() > SPRITES_MAX {
            self.sprites.clear();
            self.drawn_at = Some(dpr.to_bits());
        }
        Copier {
            sprites: self,
            ctx,
            dpr,
            copying: false,
        }
    }

    fn get(&mut self, circle: Circle) -> Option<&(HtmlCanvasElement, f64)> {
        if self.unavailable {
            return None;
        }
        if !self.sprites.contains_key(&circle) {
            let Some(sprite) = draw_sprite(&circle, self.dpr()) else {
                self.unavailable = true;
                return None;
            };
            self.sprites.insert(circle.clone(), sprite);
        }
        self.sprites.get(&circle)
    }
}

/// Copies sprites onto one canvas (see [`Sprites::copier`]).
pub struct Copier<'a> {
    sprites: &'a mut Sprites,
    ctx: &'a Ctx,
    dpr: f64,
    copying: bool,
}

impl Copier<'_> {
    /// Copies a ring of `color`, line `width` and `radius` centred at `at` (CSS pixels), with
    /// the context's current opacity. `Ok(false)`: no sprite (draw a path instead).
    pub fn ring(
        &mut self,
        at: (f64, f64),
        color: &str,
        width: f64,
        radius: f64,
    ) -> Result<bool, JsValue> {
        self.copy(at, Circle::new(None, color, width, radius))
    }

    /// Copies a disc of `fill` with an outline of `outline` and line `width` (drawn over its
    /// edge), of `radius`, centred at `at`. `Ok(false)`: no sprite.
    pub fn disc(
        &mut self,
        at: (f64, f64),
        fill: &str,
        outline: &str,
        width: f64,
        radius: f64,
    ) -> Result<bool, JsValue> {
        self.copy(at, Circle::new(Some(fill), outline, width, radius))
    }

    fn copy(&mut self, at: (f64, f64), circle: Circle) -> Result<bool, JsValue> {
        let dpr = self.dpr;
        let Some((canvas, side)) = self.sprites.get(circle) else {
            return Ok(false);
        };
        if !self.copying {
            // Whole device pixels, no filtering: the copy is a plain blend.
            self.ctx.set_transform(1.0, 0.0, 0.0, 1.0, 0.0, 0.0)?;
            self.ctx.set_image_smoothing_enabled(false);
            self.copying = true;
        }
        let half = side / 2.0;
        self.ctx.draw_image_with_html_canvas_element(
            canvas,
            (at.0 * dpr).round() - half,
            (at.1 * dpr).round() - half,
        )?;
        Ok(true)
    }

    /// Restores the context's transform (the pixel ratio) and smoothing.
    pub fn done(self) -> Result<(), JsValue> {
        if self.copying {
            self.ctx.set_image_smoothing_enabled(true);
            self.ctx
                .set_transform(self.dpr, 0.0, 0.0, self.dpr, 0.0, 0.0)?;
        }
        Ok(())
    }
}

/// `circle` drawn centred on a small new canvas at `dpr`.
fn draw_sprite(circle: &Circle, dpr: f64) -> Option<(HtmlCanvasElement, f64)> {
    let radius = f64::from_bits(circle.radius);
    let width = f64::from_bits(circle.width);
    let side = sprite_side(radius, width, dpr);
    let (canvas, ctx) = crate::ring_layer::offscreen()?;
    canvas.set_width(side);
    canvas.set_height(side);
    let c = f64::from(side) / 2.0;
    ctx.begin_path();
    ctx.arc(c, c, radius * dpr, 0.0, std::f64::consts::TAU)
        .ok()?;
    if let Some(fill) = &circle.fill {
        ctx.set_fill_style_str(fill);
        ctx.fill();
    }
    ctx.set_stroke_style_str(&circle.stroke);
    ctx.set_line_width(width * dpr);
    ctx.stroke();
    Some((canvas, f64::from(side)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sprite_is_even_and_holds_its_circle_with_a_pixel_to_spare() {
        for dpr in [1.0, 1.25, 2.0, 3.0] {
            for (radius, width) in [(27.0, 2.5), (18.0, 1.5), (6.0, 2.0)] {
                let side = sprite_side(radius, width, dpr);
                assert_eq!(side % 2, 0, "even, so its centre is a pixel corner");
                assert!(f64::from(side) / 2.0 >= (radius + width / 2.0) * dpr + 1.0);
                assert!(f64::from(side) / 2.0 < (radius + width / 2.0 + 1.0) * dpr + 1.0);
            }
        }
    }
}
