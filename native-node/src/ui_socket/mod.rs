//! The UI socket (`GET /ws/ui`): what a page that watches this node is told, and the
//! commands it may send. The protocol (frames, messages, bounds) is `ringstore_core::ui`; this
//! module serves it on the node's one port.
//!
//! One connection runs three parts concurrently, in the connection's own task:
//!
//! ```text
//!   node feed (broadcast) ──► ticker ── every UPDATE_MS: view + Collector ──► updates (2)  ─┐
//!   page frames ──► reader ── commands (≤ COMMANDS_IN_FLIGHT_MAX) ──► node ──► replies (…)─┤
//!                                                                         writer ◄──────────┘
//!                                                                           │ one frame at a time
//!                                                                           ▼ to the page
//! ```
//!
//! - The **ticker** drains the node's feed into a [`collect::Collector`] as it comes (so the
//!   connection rarely falls behind the broadcast; when it does, the lag is counted in
//!   `Lost::events`), and every [`UPDATE_MS`] builds an update. The update queue holds
//!   [`UPDATE_QUEUE`] frames: when it is full (the page does not read), the update is skipped
//!   and counted in `Lost::updates` (and the `ui_updates_skipped` metric), never queued.
//! - The **reader** decodes the page's frames and runs its commands concurrently, at most
//!   [`COMMANDS_IN_FLIGHT_MAX`]; one more is answered `overloaded`. An undecodable frame (bad
//!   bytes, a text frame, over the bound) is answered with a reply of id 0 and code `bad_frame`,
//!   and the connection **stays open**: the page is told what it did wrong and keeps its view.
//!   A message over the socket's own limit ([`SOCKET_MESSAGE_BYTES_MAX`], twice the protocol's
//!   bound) is not even read: the connection is closed with code 1009.
//! - The **writer** owns the socket's sending half and writes replies first, then updates.
//!   Replies queue in [`REPLY_QUEUE`]; when that is full the reader stops reading, so a page
//!   that sends commands but reads nothing is slowed down by TCP, never the node.
//!   A write that makes no progress for [`WRITE_STALL_MAX`] closes the connection.
//!
//! Memory per connection is bounded: the collector's bounded lists, two update frames, the
//! replies of at most `COMMANDS_IN_FLIGHT_MAX + REPLY_QUEUE` commands, the socket's buffers.
//!
//! **Conversation.** On upgrade the connection subscribes to the node's feed, then sends a
//! `Snapshot` (`Hello`: id, address, generation, whether fault injection is on, the value bound,
//! the update period; the `NodeState`: clock, lifecycle, skew, N/W/R, every member with address,
//! verdict, status, phi, tokens, ownership and whether it is partitioned, hints held, requests in
//! flight, anti-entropy totals, both stores' `LsmStats`; the ring). Then every 250 ms an
//! `Update`: the state, the ring only when it changed, messages individually (at most 64), every
//! other message counted per peer and kind (`aggregated`), protocol events (at most 64, and 16
//! `RequestStarted`), and `Lost` (cumulative). Each command carries an id and gets exactly one
//! `Reply` with that id.
//!
//! **Exact counts.** Aggregates come from the node's traffic counters (kept for every message),
//! not from the feed: the connection remembers what it has accounted for (the counters at the
//! snapshot, every message sent individually, every count sent), and each update aggregates the
//! difference. Individual plus aggregated is exactly what the node counted, whether a message
//! was over the update's bound, over the feed's rate, or lost to a lag (the e2e test checks the
//! sum against `/cluster`). `Lost.messages` counts those past the update's bound, `Lost.events`
//! events past the bounds and whatever a lag behind the broadcast skipped, `Lost.updates` the
//! updates skipped for a page that did not read.
//!
//! **Commands** run through the HTTP API's path (`NodeHandle::client`, where the core's
//! coordinator checks the bounds): the same key and value bounds (a frame bounds a value to
//! 32 KiB anyway), error codes (`bad_request`, `too_large`, `quorum_unavailable`, `overloaded`,
//! `unavailable`) and request metrics. Reads send back at most 1 KiB of the value and its
//! length. Fault commands are refused with `fault_injection_off` unless the node runs with
//! `--allow-fault-injection`; when applied, the reply carries the node's faults after the
//! change. The lingering close (`serve.rs`) reads and drops the rest of an over-limit message
//! so that the 1009 close frame reaches the page instead of a reset. Bad frames are counted
//! (`ringstore_ui_bad_frames`).
//!
//! **Who may connect**: the pages the cluster's nodes serve, origins named by
//! `--ui-allow-origin`, and clients that send no `Origin` ([`crate::origin`]).
//!
//! **Measured** (`tests/tests/ui_socket.rs` prints them; 16 vnodes a node): 3 nodes, snapshot
//! about 810 bytes, idle updates 1.3 to 1.9 KB, the largest update under a 600-PUT load (64
//! messages) 2.7 KB; 5 nodes, snapshot 1,232 bytes, idle updates 1.8 to 2.5 KB; 3.5 to 4.0
//! updates a second measured over 8 updates.

pub mod collect;
pub mod commands;

use crate::runtime::NodeHandle;
use crate::view::NodeView;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use collect::Collector;
use futures_util::stream::{FuturesUnordered, SplitStream};
use futures_util::{Sink, SinkExt, StreamExt};
use ringstore_core::NodeId;
use ringstore_core::framing::FrameError;
use ringstore_core::storage::LsmStats;
use ringstore_core::ui::{
    COMMANDS_IN_FLIGHT_MAX, CommandError, ErrorCode, FRAME_HEADER_BYTES, TO_NODE_BYTES_MAX, ToNode,
    ToPage, UPDATE_MS, UiError, UiFrame,
};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tracing::{debug, warn};

/// Update frames queued for the page at most; more are skipped (and counted).
pub const UPDATE_QUEUE: usize = 2;
/// Reply frames queued for the page at most; the reader waits for room.
pub const REPLY_QUEUE: usize = COMMANDS_IN_FLIGHT_MAX;
/// The largest WebSocket message read at all. Frames up to the protocol's bound are decoded;
/// frames over it but under this are answered `bad_frame`; larger messages close the socket.
pub const SOCKET_MESSAGE_BYTES_MAX: usize = 2 * (FRAME_HEADER_BYTES + TO_NODE_BYTES_MAX);
/// A write to the page that makes no progress for this long closes the connection.
pub const WRITE_STALL_MAX: Duration = Duration::from_secs(30);
/// How long an update waits for the node's view.
const VIEW_TIMEOUT: Duration = Duration::from_secs(2);
/// WebSocket close code: a message over the limit.
const CLOSE_TOO_BIG: u16 = 1009;
/// WebSocket close code: the server cannot go on.
const CLOSE_INTERNAL: u16 = 1011;

/// What the writer sends.
enum Out {
    Frame(Vec<u8>),
    Close(u16, String),
}

/// The axum handler of `GET /ws/ui`.
pub async fn upgrade(node: NodeHandle, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(SOCKET_MESSAGE_BYTES_MAX)
        .max_frame_size(SOCKET_MESSAGE_BYTES_MAX)
        .max_write_buffer_size(4 * ringstore_core::ui::TO_PAGE_BYTES_MAX)
        .on_upgrade(move |socket| serve(socket, node))
}

/// Counts the connection in the metrics while it is open.
struct Open<'a>(&'a NodeHandle);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.metrics.ui_connections.dec();
    }
}

async fn view(node: &NodeHandle) -> Option<NodeView> {
    tokio::time::timeout(VIEW_TIMEOUT, node.view())
        .await
        .ok()
        .flatten()
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// Serves one page until it goes away.
pub async fn serve(mut socket: WebSocket, node: NodeHandle) {
    node.metrics.ui_connections.inc();
    let _open = Open(&node);
    // Subscribe before the snapshot's view, so that nothing after it is missed.
    let feed = node.subscribe();
    let Some(first) = view(&node).await else {
        let _ = socket
            .send(close(CLOSE_INTERNAL, "the node is not answering"))
            .await;
        return;
    };
    let snapshot = collect::snapshot(
        &first,
        node.data.stats(),
        node.hints.stats(),
        node.fault_injection,
        node.value_bytes_max,
    );
    let collector = Collector::new(&first);
    let frame = match ToPage::Snapshot(Box::new(snapshot)).encode() {
        Ok(f) => f,
        Err(e) => {
            warn!("{}: UI snapshot not sent: {e}", node.id);
            let _ = socket.send(close(CLOSE_INTERNAL, &e.to_string())).await;
            return;
        }
    };
    match tokio::time::timeout(WRITE_STALL_MAX, socket.send(Message::Binary(frame.into()))).await {
        Ok(Ok(())) => {}
        _ => return,
    }
    let (sink, stream) = socket.split();
    let (replies_tx, replies_rx) = mpsc::channel(REPLY_QUEUE);
    let (updates_tx, updates_rx) = mpsc::channel(UPDATE_QUEUE);
    tokio::select! {
        () = writer(sink, replies_rx, updates_rx) => {}
        () = reader(stream, &node, replies_tx) => {}
        () = ticker(&node, feed, collector, updates_tx) => {}
    }
    debug!("{}: UI connection closed", node.id);
}

async fn writer<S>(
    mut sink: S,
    mut replies: mpsc::Receiver<Out>,
    mut updates: mpsc::Receiver<Vec<u8>>,
) where
    S: Sink<Message> + Unpin,
{
    loop {
        let out = tokio::select! {
            biased;
            Some(out) = replies.recv() => out,
            Some(frame) = updates.recv() => Out::Frame(frame),
            else => return,
        };
        let (msg, last) = match out {
            Out::Frame(frame) => (Message::Binary(frame.into()), false),
            Out::Close(code, reason) => (close(code, &reason), true),
        };
        match tokio::time::timeout(WRITE_STALL_MAX, sink.send(msg)).await {
            Ok(Ok(())) if !last => {}
            _ => return,
        }
    }
}

fn reply(id: u32, result: Result<ringstore_core::ui::Answer, CommandError>) -> Out {
    match (ToPage::Reply { id, result }).encode() {
        Ok(frame) => Out::Frame(frame),
        // A reply is small (values are cut to VALUE_SHOWN_BYTES_MAX): this cannot happen, but
        // if it did the page would still be told.
        Err(e) => Out::Close(CLOSE_INTERNAL, e.to_string()),
    }
}

fn bad_frame(why: impl std::fmt::Display) -> Out {
    reply(
        0,
        Err(CommandError::new(
            ErrorCode::BadFrame,
            format!("not a UI command frame: {why}"),
        )),
    )
}

/// Whether a read error is a message over the socket's limit.
fn too_big(e: &axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error;
    let inner = std::error::Error::source(e);
    matches!(
        inner.and_then(|e| e.downcast_ref::<Error>()),
        Some(Error::Capacity(_))
    )
}

async fn reader(mut stream: SplitStream<WebSocket>, node: &NodeHandle, replies: mpsc::Sender<Out>) {
    let mut running = FuturesUnordered::new();
    loop {
        let out = tokio::select! {
            Some((id, result)) = running.next(), if !running.is_empty() => reply(id, result),
            msg = stream.next() => match msg {
                None | Some(Ok(Message::Close(_))) => return,
                Some(Err(e)) => {
                    if too_big(&e) {
                        node.metrics.ui_bad_frames.inc();
                        let reason = format!("a message over {SOCKET_MESSAGE_BYTES_MAX} bytes");
                        let _ = replies.send(Out::Close(CLOSE_TOO_BIG, reason)).await;
                        // The writer closes the socket, which ends the connection.
                        std::future::pending::<()>().await;
                    }
                    return;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Text(_))) => {
                    node.metrics.ui_bad_frames.inc();
                    bad_frame("a text message (the UI socket speaks binary frames)")
                }
                Some(Ok(Message::Binary(bytes))) => match ToNode::decode(&bytes) {
                    Ok(ToNode::Command { id, command }) => {
                        if running.len() >= COMMANDS_IN_FLIGHT_MAX {
                            reply(id, Err(CommandError::new(
                                ErrorCode::Overloaded,
                                format!("{COMMANDS_IN_FLIGHT_MAX} commands are in flight on this connection"),
                            )))
                        } else {
                            let node = node.clone();
                            running.push(async move { (id, commands::run(&node, command).await) });
                            continue;
                        }
                    }
                    Err(e) => {
                        node.metrics.ui_bad_frames.inc();
                        bad_frame(bad_frame_reason(bytes.len(), e))
                    }
                },
            },
        };
        if replies.send(out).await.is_err() {
            return;
        }
    }
}

fn bad_frame_reason(len: usize, e: UiError) -> UiError {
    let max = FRAME_HEADER_BYTES + TO_NODE_BYTES_MAX;
    if len > max {
        UiError(FrameError::TooLarge { len, max })
    } else {
        e
    }
}

/// What the ticker reads from the node (a trait so that the bounds are tested without one).
trait Source {
    /// The node's view and its stores' statistics now (`None` if the node is gone).
    fn read(&self) -> impl Future<Output = Option<(NodeView, LsmStats, LsmStats)>> + Send;
    /// Counts a skipped update in the metrics.
    fn skipped(&self);
    /// The node, for logs.
    fn id(&self) -> NodeId;
}

impl Source for NodeHandle {
    async fn read(&self) -> Option<(NodeView, LsmStats, LsmStats)> {
        let v = view(self).await?;
        Some((v, self.data.stats(), self.hints.stats()))
    }

    fn skipped(&self) {
        self.metrics.ui_updates_skipped.inc();
    }

    fn id(&self) -> NodeId {
        self.id
    }
}

async fn ticker<S: Source>(
    node: &S,
    mut feed: broadcast::Receiver<crate::feed::FeedEvent>,
    mut collector: Collector,
    updates: mpsc::Sender<Vec<u8>>,
) {
    let period = Duration::from_millis(UPDATE_MS);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = tick.tick() => {
                // Only this task sends updates: room now is room when it sends.
                if updates.capacity() == 0 {
                    collector.skipped();
                    node.skipped();
                    continue;
                }
                let Some((now, data, hints)) = node.read().await else { return };
                // What the feed holds now was published before or around the view.
                loop {
                    match feed.try_recv() {
                        Ok(item) => collector.push(item),
                        Err(broadcast::error::TryRecvError::Lagged(n)) => collector.lagged(n),
                        Err(_) => break,
                    }
                }
                let update = collector.take(&now, data, hints);
                match ToPage::Update(Box::new(update)).encode() {
                    Ok(frame) => {
                        if updates.try_send(frame).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        warn!("{}: UI update not sent: {e}", node.id());
                        collector.skipped();
                        node.skipped();
                    }
                }
            }
            item = feed.recv() => match item {
                Ok(item) => collector.push(item),
                Err(broadcast::error::RecvError::Lagged(n)) => collector.lagged(n),
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

#[cfg(test)]
mod tests;
