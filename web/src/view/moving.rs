//! The ranges that move on a join or a leave (the design notes' §2): the newest join or leave
//! in the event log, the token ranges it streams (started and done) and the keys moved so far,
//! drawn as highlighted arcs with a count.

use ringstore_core::node::NodeEvent;
use ringstore_core::sim::log::SimEvent;
use ringstore_core::sim::{MachineDisk, Sim};
use serde::Serialize;

/// How long after its last stream a join or leave stays drawn (simulated ms).
const SHOWN_AFTER_MS: u64 = 1_500;

/// A join or leave and what it moves.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MovingView {
    /// The node joining or leaving.
    pub node: u32,
    /// `join` or `leave`.
    pub kind: &'static str,
    /// The token ranges streamed, `(start, end]`, with whether each is done (not serialized:
    /// tokens do not fit JavaScript numbers).
    #[serde(skip)]
    pub ranges: Vec<(u64, u64, bool)>,
    /// Per range streamed, whether it is done (what `ranges` says, for the page).
    pub streams: Vec<bool>,
    /// Keys moved so far (ranges done).
    pub keys: u64,
}

/// The newest join or leave, while it streams and for `SHOWN_AFTER_MS` after.
pub fn moving_view<D: MachineDisk>(sim: &Sim<D>) -> Option<MovingView> {
    let mut view: Option<MovingView> = None;
    let mut last_ms = 0;
    for entry in sim.log().entries() {
        let SimEvent::Node { node, event } = &entry.event else {
            continue;
        };
        match event {
            NodeEvent::JoinStarted { .. } | NodeEvent::LeaveStarted { .. } => {
                view = Some(MovingView {
                    node: node.0,
                    kind: if matches!(event, NodeEvent::JoinStarted { .. }) {
                        "join"
                    } else {
                        "leave"
                    },
                    ..MovingView::default()
                });
                last_ms = entry.time.0;
            }
            NodeEvent::StreamStarted { range, .. } => {
                if let Some(v) = view.as_mut() {
                    v.ranges.push((range.start.0, range.end.0, false));
                    last_ms = entry.time.0;
                }
            }
            NodeEvent::StreamDone { range, keys, .. } => {
                if let Some(v) = view.as_mut() {
                    let r = (range.start.0, range.end.0);
                    match v.ranges.iter_mut().find(|x| (x.0, x.1) == r && !x.2) {
                        Some(x) => x.2 = true,
                        None => v.ranges.push((r.0, r.1, true)),
                    }
                    v.keys += keys;
                    last_ms = entry.time.0;
                }
            }
            _ => {}
        }
    }
    let mut view =
        view.filter(|v| !v.ranges.is_empty() && sim.now().0 <= last_ms + SHOWN_AFTER_MS)?;
    view.streams = view.ranges.iter().map(|r| r.2).collect();
    Some(view)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringstore_core::NodeId;
    use ringstore_core::sim::script;

    #[test]
    fn a_join_shows_its_ranges_and_the_keys_it_pulled() {
        let config = script::cluster_config(&["nodes=5", "vnodes=1", "seed=3"]).expect("config");
        let mut sim = script::start_cluster(config).expect("cluster");
        script::load_keys(&mut sim, NodeId(1), 100);
        assert_eq!(moving_view(&sim), None);
        sim.add_node(NodeId(6)).expect("join");
        sim.run_until_quiet(script::WAIT_MS);
        let v = moving_view(&sim).expect("the join is drawn");
        assert_eq!((v.node, v.kind), (6, "join"));
        assert!(
            !v.ranges.is_empty() && v.ranges.iter().all(|r| r.2),
            "{v:?}"
        );
        assert!(v.keys > 0 && v.keys < 100 * 3, "{v:?}");
        sim.run_for(SHOWN_AFTER_MS + 100);
        assert_eq!(moving_view(&sim), None);
    }
}
