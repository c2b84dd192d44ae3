//! Where things go on the canvas, as pure functions of the view model and the canvas size:
//! token angles, node positions, ownership arcs, message paths, which labels to draw, and what
//! is under the pointer. No drawing here, so all of it is tested on the host.
//!
//! The ring is drawn clockwise from the top: token 0 at twelve o'clock, as the design notes
//! draw `0 → 2³²-1` (our tokens are 64-bit). Node bodies sit on an orbit outside the ring; with
//! one token per node each sits exactly at its token, otherwise they are spaced evenly by id and
//! their tokens show as ticks in their colour on the ring.

use std::f64::consts::{FRAC_PI_2, TAU};

/// The angle (radians, canvas convention: clockwise from the x axis) of a token.
pub fn token_angle(token: u64) -> f64 {
    token as f64 / 18_446_744_073_709_551_616.0 * TAU - FRAC_PI_2
}

/// The token at an angle (the inverse of [`token_angle`]).
pub fn angle_token(angle: f64) -> u64 {
    let turn = ((angle + FRAC_PI_2) / TAU).rem_euclid(1.0);
    (turn * 18_446_744_073_709_551_616.0) as u64
}

/// The sizes that everything else is placed by.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Geometry {
    /// Canvas width in CSS pixels.
    pub width: f64,
    /// Canvas height in CSS pixels.
    pub height: f64,
    /// Centre.
    pub cx: f64,
    /// Centre.
    pub cy: f64,
    /// Radius of the hash ring (middle of its band).
    pub ring_radius: f64,
    /// Width of the ring's band.
    pub ring_width: f64,
    /// Radius of the orbit the node bodies sit on.
    pub orbit_radius: f64,
    /// Radius of a node body.
    pub node_radius: f64,
}

/// The geometry for `nodes` nodes on a `width` × `height` canvas.
pub fn geometry(width: f64, height: f64, nodes: usize) -> Geometry {
    let half = (width.min(height) / 2.0).max(40.0);
    let count = nodes.max(1) as f64;
    // Bodies as large as fit around the orbit with a gap, within bounds.
    let outer = half - 6.0;
    let node_radius = (outer * 0.8 * std::f64::consts::PI / count * 0.42).clamp(5.0, 24.0);
    // Leave room outside the bodies for labels and storage glyphs.
    let margin = if count <= 24.0 { 34.0 } else { 16.0 };
    let orbit_radius = (outer - node_radius - margin).max(20.0);
    let ring_radius = orbit_radius * 0.66;
    Geometry {
        width,
        height,
        cx: width / 2.0,
        cy: height / 2.0,
        ring_radius,
        ring_width: (ring_radius * 0.07).clamp(6.0, 18.0),
        orbit_radius,
        node_radius,
    }
}

impl Geometry {
    /// The point at `angle` and `radius` from the centre.
    pub fn at(&self, angle: f64, radius: f64) -> (f64, f64) {
        (
            self.cx + radius * angle.cos(),
            self.cy + radius * angle.sin(),
        )
    }
}

/// Spreads angles so that neighbours are at least `min_sep` apart, keeping their circular
/// order and moving each as little as a few relaxation rounds allow. `angles` must be sorted
/// (clockwise). When they cannot all fit, `min_sep` shrinks to an even spacing.
pub fn spread(angles: &[f64], min_sep: f64) -> Vec<f64> {
    let n = angles.len();
    if n < 2 {
        return angles.to_vec();
    }
    if min_sep * n as f64 >= TAU {
        // No room to spare: an even spacing, in order, from the first.
        return (0..n)
            .map(|i| angles[0] + i as f64 * TAU / n as f64)
            .collect();
    }
    let sep = min_sep;
    let mut a = angles.to_vec();
    for _ in 0..200 {
        let mut moved = false;
        for i in 0..n {
            let j = (i + 1) % n;
            let mut gap = a[j] - a[i];
            if j == 0 {
                gap += TAU;
            }
            if gap < sep - 1e-9 {
                let push = (sep - gap) / 2.0;
                a[i] -= push;
                a[j] += push;
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    a
}

/// Angles of the node bodies, in the order of `tokens_per_node` (one entry per node, its
/// tokens). A node with exactly one token sits at it when every node has one; otherwise the
/// nodes are spaced evenly in the given order from the top.
pub fn node_angles(tokens_per_node: &[Vec<u64>], node_radius: f64, orbit_radius: f64) -> Vec<f64> {
    let n = tokens_per_node.len();
    if n == 0 {
        return Vec::new();
    }
    let single = tokens_per_node.iter().all(|t| t.len() == 1);
    if !single {
        return (0..n)
            .map(|i| i as f64 / n as f64 * TAU - FRAC_PI_2)
            .collect();
    }
    // Sort by token, spread, and put back in the caller's order.
    let mut order: Vec<usize> = (0..n).collect();
    let angle = |i: usize| token_angle(tokens_per_node[i][0]);
    order.sort_by(|&x, &y| angle(x).total_cmp(&angle(y)));
    let sorted: Vec<f64> = order.iter().map(|&i| angle(i)).collect();
    let min_sep = (2.0 * node_radius + 8.0) / orbit_radius.max(1.0);
    let spread = spread(&sorted, min_sep);
    let mut out = vec![0.0; n];
    for (k, &i) in order.iter().enumerate() {
        out[i] = spread[k];
    }
    out
}

/// One ownership arc: the range `(previous token, token]` owned by `owner`, as angles
/// (`start < end`, `end` may exceed a full turn from `start` when the ring has one token).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Arc {
    /// Angle of the previous token.
    pub start: f64,
    /// Angle of this token.
    pub end: f64,
    /// The owner.
    pub owner: u32,
}

/// The ownership arcs of a ring given as `(token, owner)` sorted by token.
pub fn arcs(ring: &[(u64, u32)]) -> Vec<Arc> {
    let n = ring.len();
    (0..n)
        .map(|i| {
            let (token, owner) = ring[i];
            let prev = ring[(i + n - 1) % n].0;
            let start = token_angle(prev);
            let mut end = token_angle(token);
            if end <= start {
                end += TAU;
            }
            Arc { start, end, owner }
        })
        .collect()
}

/// The owner of `token`: the first ring token at or after it, wrapping.
pub fn owner(ring: &[(u64, u32)], token: u64) -> Option<u32> {
    if ring.is_empty() {
        return None;
    }
    let i = ring.partition_point(|&(t, _)| t < token) % ring.len();
    Some(ring[i].1)
}

/// The first `n` distinct owners clockwise from `token` (the key's preference list).
pub fn preference_list(ring: &[(u64, u32)], token: u64, n: usize) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::with_capacity(n);
    if ring.is_empty() {
        return out;
    }
    let start = ring.partition_point(|&(t, _)| t < token);
    for k in 0..ring.len() {
        let owner = ring[(start + k) % ring.len()].1;
        if !out.contains(&owner) {
            out.push(owner);
            if out.len() == n {
                break;
            }
        }
    }
    out
}

/// Where a message is, `t` of the way from `a` to `b`: on a quadratic curve that bows toward
/// the centre, so messages both ways between two nodes do not overlap and none hides behind a
/// node.
pub fn message_point(a: (f64, f64), b: (f64, f64), center: (f64, f64), t: f64) -> (f64, f64) {
    let control = message_control(a, b, center);
    let u = 1.0 - t;
    (
        u * u * a.0 + 2.0 * u * t * control.0 + t * t * b.0,
        u * u * a.1 + 2.0 * u * t * control.1 + t * t * b.1,
    )
}

/// The control point of a message's curve from `a` to `b`: the chord's midpoint pulled toward
/// the centre and a little to the sender's right (so the two directions part).
pub fn message_control(a: (f64, f64), b: (f64, f64), center: (f64, f64)) -> (f64, f64) {
    let mid = ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0);
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len = (dx * dx + dy * dy).sqrt().max(1e-9);
    let side = 0.06 * len;
    let pulled = (
        mid.0 + (center.0 - mid.0) * 0.35,
        mid.1 + (center.1 - mid.1) * 0.35,
    );
    (pulled.0 - dy / len * side, pulled.1 + dx / len * side)
}

/// Room a node label needs along the orbit (its width and a gap), in CSS pixels.
pub const LABEL_PX: f64 = 36.0;

/// Which node labels to draw when there is not room for all: every `stride`-th, where a label
/// `label_px` wide needs that much of the orbit.
pub fn label_stride(nodes: usize, orbit_radius: f64, label_px: f64) -> usize {
    if nodes == 0 {
        return 1;
    }
    let room = TAU * orbit_radius / nodes as f64;
    ((label_px / room.max(1.0)).ceil() as usize).max(1)
}

/// What is under the pointer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Hit {
    /// A node body (by id).
    Node(u32),
    /// A message dot (by id).
    Message(u64),
    /// The ring band, at this token.
    Ring(u64),
    /// Nothing.
    Nothing,
}

/// What is at `(x, y)`: a node body first, then a message dot, then the ring band.
pub fn hit_test(
    g: &Geometry,
    nodes: &[(u32, (f64, f64))],
    messages: &[(u64, (f64, f64))],
    x: f64,
    y: f64,
) -> Hit {
    let d2 = |p: (f64, f64)| (p.0 - x).powi(2) + (p.1 - y).powi(2);
    let reach = (g.node_radius + 4.0).powi(2);
    if let Some((id, _)) = nodes
        .iter()
        .filter(|(_, p)| d2(*p) <= reach)
        .min_by(|a, b| d2(a.1).total_cmp(&d2(b.1)))
    {
        return Hit::Node(*id);
    }
    if let Some((id, _)) = messages
        .iter()
        .filter(|(_, p)| d2(*p) <= 36.0)
        .min_by(|a, b| d2(a.1).total_cmp(&d2(b.1)))
    {
        return Hit::Message(*id);
    }
    let r = d2((g.cx, g.cy)).sqrt();
    if (r - g.ring_radius).abs() <= g.ring_width / 2.0 + 6.0 {
        return Hit::Ring(angle_token((y - g.cy).atan2(x - g.cx)));
    }
    Hit::Nothing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_go_clockwise_from_the_top() {
        assert!((token_angle(0) + FRAC_PI_2).abs() < 1e-12);
        assert!((token_angle(1 << 62) - 0.0).abs() < 1e-9); // a quarter turn: three o'clock
        assert!((token_angle(1 << 63) - FRAC_PI_2).abs() < 1e-9); // half: six o'clock
        for t in [0u64, 1 << 40, 1 << 63, u64::MAX / 3] {
            let back = angle_token(token_angle(t));
            assert!(back.abs_diff(t) < 1 << 12, "{t} -> {back}");
        }
    }

    #[test]
    fn spread_keeps_order_and_separates_crowded_nodes() {
        let even: Vec<f64> = (0..5).map(|i| i as f64 * TAU / 5.0).collect();
        assert_eq!(spread(&even, 0.3), even, "already spaced: unchanged");
        let crowded = vec![0.0, 0.01, 0.02, 3.0];
        let out = spread(&crowded, 0.2);
        for w in out.windows(2) {
            assert!(w[1] - w[0] >= 0.2 - 1e-6, "{out:?}");
        }
        assert!(out[0] < out[1] && out[1] < out[2] && out[2] < out[3]);
        // More than fit: an even spacing.
        let many: Vec<f64> = (0..100).map(|i| i as f64 * 0.001).collect();
        let out = spread(&many, 1.0);
        for w in out.windows(2) {
            assert!((w[1] - w[0] - TAU / 100.0).abs() < 1e-3);
        }
    }

    #[test]
    fn nodes_sit_at_their_single_token_or_evenly_by_id() {
        let single: Vec<Vec<u64>> = vec![vec![1 << 62], vec![0], vec![1 << 63]];
        let a = node_angles(&single, 10.0, 200.0);
        assert!((a[0] - 0.0).abs() < 1e-9 && (a[1] + FRAC_PI_2).abs() < 1e-9);
        let vnodes: Vec<Vec<u64>> = vec![vec![5, 9], vec![1, 2], vec![3, 4], vec![7, 8]];
        let a = node_angles(&vnodes, 10.0, 200.0);
        assert!((a[0] + FRAC_PI_2).abs() < 1e-12);
        assert!((a[2] - FRAC_PI_2).abs() < 1e-12);
    }

    #[test]
    fn arcs_cover_the_ring_and_ownership_goes_clockwise() {
        let ring = vec![(100, 1), (1 << 62, 2), (1 << 63, 3)];
        let arcs = arcs(&ring);
        let total: f64 = arcs.iter().map(|a| a.end - a.start).sum();
        assert!((total - TAU).abs() < 1e-9);
        assert_eq!(arcs[1].owner, 2);
        assert!((arcs[1].start - token_angle(100)).abs() < 1e-12);
        // The design notes' rule: a key belongs to the first node clockwise.
        assert_eq!(owner(&ring, 101), Some(2));
        assert_eq!(owner(&ring, 100), Some(1));
        assert_eq!(owner(&ring, u64::MAX), Some(1));
        assert_eq!(preference_list(&ring, 101, 2), vec![2, 3]);
        assert_eq!(preference_list(&ring, 101, 5), vec![2, 3, 1]);
        let one = super::arcs(&[(7, 4)]);
        assert!((one[0].end - one[0].start - TAU).abs() < 1e-9);
        assert!(preference_list(&[], 1, 3).is_empty());
    }

    #[test]
    fn messages_leave_the_sender_and_reach_the_receiver_on_a_curve() {
        let (a, b, c) = ((0.0, 0.0), (100.0, 0.0), (50.0, 80.0));
        assert_eq!(message_point(a, b, c, 0.0), a);
        assert_eq!(message_point(a, b, c, 1.0), b);
        let mid = message_point(a, b, c, 0.5);
        assert!(mid.1 > 5.0, "bows toward the centre: {mid:?}");
        let back = message_point(b, a, c, 0.5);
        assert!((mid.0 - back.0).abs() > 1.0 || (mid.1 - back.1).abs() > 1.0);
    }

    #[test]
    fn labels_thin_out_at_64_nodes_and_all_show_at_16() {
        let g16 = geometry(900.0, 700.0, 16);
        assert_eq!(label_stride(16, g16.orbit_radius, LABEL_PX), 1);
        let g64 = geometry(900.0, 700.0, 64);
        let stride = label_stride(64, g64.orbit_radius, LABEL_PX);
        assert!(stride >= 2, "stride {stride}");
        assert!(g64.node_radius < g16.node_radius);
        assert!(g64.node_radius >= 5.0);
    }

    #[test]
    fn the_pointer_finds_nodes_then_messages_then_the_ring() {
        let g = geometry(800.0, 800.0, 5);
        let node_at = g.at(0.0, g.orbit_radius);
        let nodes = vec![(3, node_at)];
        let msg_at = (g.cx + 10.0, g.cy + 10.0);
        let messages = vec![(77, msg_at)];
        assert_eq!(
            hit_test(&g, &nodes, &messages, node_at.0 + 2.0, node_at.1),
            Hit::Node(3)
        );
        assert_eq!(
            hit_test(&g, &nodes, &messages, msg_at.0 + 1.0, msg_at.1),
            Hit::Message(77)
        );
        let on_ring = g.at(FRAC_PI_2, g.ring_radius);
        match hit_test(&g, &nodes, &messages, on_ring.0, on_ring.1) {
            Hit::Ring(t) => assert!(t.abs_diff(1 << 63) < 1 << 50),
            other => panic!("{other:?}"),
        }
        assert_eq!(hit_test(&g, &nodes, &messages, 2.0, 2.0), Hit::Nothing);
    }
}
