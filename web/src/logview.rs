//! The event log as the page lists it: each entry as one line with a class (for colour and
//! the kind filter), the nodes it concerns (for the node filter) and the client operation it
//! names (so clicking it follows that operation). Filtering happens here, in wasm, so the page
//! never ships thousands of entries per second to JavaScript only to hide them.

use ringstore_core::sim::log::{LogEntry, SimEvent};
use serde::{Deserialize, Serialize};

/// Lines returned per call at most.
pub const LINES_MAX: usize = 400;

/// One line of the log panel.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Line {
    /// Sequence number.
    pub seq: u64,
    /// Cluster time (ms).
    pub t: u64,
    /// A message kind (`write`, `read`, `ack`, `gossip`, `hint`, `repair`, `stream`), or
    /// `disk`, `node`, `client`, `protocol`, `fault`.
    pub class: &'static str,
    /// The nodes it concerns.
    pub nodes: Vec<u32>,
    /// The trace line.
    pub text: String,
    /// The client operation it names, if any.
    pub op: Option<u64>,
}

/// What the log panel shows.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Filter {
    /// Classes hidden (see [`Line::class`]).
    pub hide: Vec<String>,
    /// Only lines about this node (0: every node).
    pub node: u32,
    /// Leave out deliveries (they double every message).
    pub deliveries: bool,
    /// At most this many lines, the newest (0, or above [`LINES_MAX`]: [`LINES_MAX`]). The
    /// page asks for what it shows, so the rest is never formatted nor sent to JavaScript.
    pub limit: usize,
}

impl Filter {
    /// How many lines a call returns at most.
    pub fn cap(&self) -> usize {
        if self.limit == 0 {
            LINES_MAX
        } else {
            self.limit.min(LINES_MAX)
        }
    }
}

/// The line for a log entry, or `None` for a delivery when they are hidden.
pub fn line(entry: &LogEntry, deliveries: bool) -> Option<Line> {
    let mut l = classify(entry, deliveries)?;
    l.text = entry.event.trace();
    Some(l)
}

/// The line without its text (formatting it is most of the cost; filters look first).
fn classify(entry: &LogEntry, deliveries: bool) -> Option<Line> {
    let (class, nodes, op): (&'static str, Vec<u32>, Option<u64>) = match &entry.event {
        SimEvent::MessageSent {
            from, to, kind: k, ..
        }
        | SimEvent::MessageDropped {
            from, to, kind: k, ..
        } => (k.name(), vec![from.0, to.0], None),
        SimEvent::MessageDelivered { from, to, .. } => {
            if !deliveries {
                return None;
            }
            ("delivery", vec![from.0, to.0], None)
        }
        SimEvent::DiskWrite { node, .. }
        | SimEvent::DiskSync { node, .. }
        | SimEvent::Flush { node, .. }
        | SimEvent::Compaction { node, .. } => ("disk", vec![node.0], None),
        SimEvent::NodeUp { node }
        | SimEvent::NodeDown { node }
        | SimEvent::NodeStopped { node } => ("node", vec![node.0], None),
        SimEvent::ClientBegin { op, node, .. } | SimEvent::ClientDone { op, node, .. } => {
            ("client", vec![node.0], Some(*op))
        }
        SimEvent::Node { node, event } => {
            let op = match event {
                ringstore_core::node::NodeEvent::RequestStarted { client, .. } => Some(*client),
                _ => None,
            };
            ("protocol", vec![node.0], op)
        }
        SimEvent::Fault { .. } => ("fault", Vec::new(), None),
    };
    Some(Line {
        seq: entry.seq,
        t: entry.time.0,
        class,
        nodes,
        text: String::new(),
        op,
    })
}

impl Filter {
    /// Whether `line` passes.
    pub fn passes(&self, line: &Line) -> bool {
        let class_ok = !self.hide.iter().any(|h| h == line.class);
        let node_ok = self.node == 0 || line.nodes.contains(&self.node) || line.class == "fault";
        class_ok && node_ok
    }
}

/// The lines after `seq` that pass `filter`, the newest [`Filter::cap`] of them.
pub fn since<'a>(entries: impl Iterator<Item = &'a LogEntry>, filter: &Filter) -> Vec<Line> {
    let cap = filter.cap();
    let mut out: std::collections::VecDeque<Line> = std::collections::VecDeque::new();
    let mut kept: std::collections::VecDeque<&LogEntry> = std::collections::VecDeque::new();
    for entry in entries {
        if let Some(l) = classify(entry, filter.deliveries)
            && filter.passes(&l)
        {
            if out.len() == cap {
                out.pop_front();
                kept.pop_front();
            }
            out.push_back(l);
            kept.push_back(entry);
        }
    }
    for (l, e) in out.iter_mut().zip(kept) {
        l.text = e.event.trace();
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringstore_core::NodeId;
    use ringstore_core::node::ClientOp;
    use ringstore_core::sim::{Sim, SimConfig};

    #[test]
    fn the_log_filters_by_class_and_node_and_names_operations() {
        let mut sim = Sim::new(SimConfig::default()).unwrap();
        let op = sim.client(
            NodeId(2),
            ClientOp::Put {
                key: b"user123".to_vec(),
                value: b"A".to_vec(),
                consistency: None,
            },
        );
        sim.run_for(50);
        sim.crash(NodeId(4));
        let all = since(sim.log().entries().iter(), &Filter::default());
        assert!(
            all.iter()
                .any(|l| l.class == "write" && l.text.contains("Put user123=A"))
        );
        assert!(all.iter().any(|l| l.class == "client" && l.op == Some(op)));
        assert!(
            all.iter()
                .any(|l| l.class == "protocol" && l.op == Some(op))
        );
        assert!(all.iter().all(|l| l.class != "delivery"));
        let only_n4 = Filter {
            node: 4,
            ..Filter::default()
        };
        let n4 = since(sim.log().entries().iter(), &only_n4);
        assert!(!n4.is_empty() && n4.iter().all(|l| l.nodes.contains(&4)));
        let no_disk = Filter {
            hide: vec!["disk".into(), "write".into()],
            ..Filter::default()
        };
        let rest = since(sim.log().entries().iter(), &no_disk);
        assert!(rest.iter().all(|l| l.class != "disk" && l.class != "write"));
        assert!(rest.iter().any(|l| l.text == "n4 crashed"));
        let newest = since(
            sim.log().entries().iter(),
            &Filter {
                limit: 3,
                ..Filter::default()
            },
        );
        assert_eq!(newest, all[all.len() - 3..]);
        let capped = Filter {
            limit: 10 * LINES_MAX,
            ..Filter::default()
        };
        assert_eq!(capped.cap(), LINES_MAX);
        assert_eq!(Filter::default().cap(), LINES_MAX);
    }
}
