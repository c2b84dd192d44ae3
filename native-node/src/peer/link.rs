//! The sending side: one task per peer that owns the outbound connection, reconnects with
//! backoff, and packs whatever is queued into one WebSocket write.

use super::handshake::{self, HANDSHAKE_TIMEOUT_MS, Handshake, HandshakeError, Side, nonce};
use super::{
    BATCH_BYTES, FRAME_BYTES_MAX, LINK_QUEUE_MAX, PEER_PATH, PeerContext, READ_BUFFER_BYTES,
};
use crate::runtime::Control;
use futures_util::{SinkExt, StreamExt};
use ringstore_core::NodeId;
use ringstore_core::ui::DropCause;
use ringstore_core::wire::{Envelope, Message};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::{debug, info, warn};

/// A dialed WebSocket connection.
pub type WsClient =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A write that takes longer than this means the peer stopped reading: reconnect.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(Some(FRAME_BYTES_MAX))
        .max_frame_size(Some(FRAME_BYTES_MAX))
}

/// Connects to the node at `addr` and runs the dialer's side of the handshake; returns the
/// connection and the peer's id. With `expected`, another id at that address is an error.
pub async fn dial(
    ctx: &PeerContext,
    addr: &str,
    expected: Option<NodeId>,
) -> Result<(WsClient, NodeId), HandshakeError> {
    let url = format!("ws://{addr}{PEER_PATH}");
    let timeout = Duration::from_millis(HANDSHAKE_TIMEOUT_MS);
    let connect = tokio_tungstenite::connect_async_with_config(url, Some(ws_config()), true);
    let (mut ws, _) = tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| HandshakeError::Io("connect timed out".into()))?
        .map_err(|e| HandshakeError::Io(e.to_string()))?;
    let (server, server_nonce) = match handshake::recv(&mut ws).await? {
        Handshake::Hello { node, nonce, n } => {
            let refusal = if expected.is_some_and(|e| e != node) {
                expected.map(|e| HandshakeError::WrongNode {
                    expected: e,
                    found: node,
                })
            } else if n != ctx.n {
                Some(HandshakeError::OtherN {
                    ours: ctx.n,
                    theirs: n,
                })
            } else {
                None
            };
            if let Some(e) = refusal {
                let reason = e.to_string();
                let _ = handshake::send(&mut ws, &Handshake::Refused { reason }).await;
                return Err(e);
            }
            (node, nonce)
        }
        Handshake::Refused { reason } => return Err(HandshakeError::Refused(reason)),
        other => return Err(HandshakeError::Unexpected(format!("{other:?}"))),
    };
    let my_nonce = nonce();
    let auth = Handshake::Auth {
        node: ctx.me,
        address: ctx.address.clone(),
        nonce: my_nonce,
        n: ctx.n,
        mac: ctx
            .secret
            .tag(Side::Client, &server_nonce, &my_nonce, ctx.me, server),
    };
    handshake::send(&mut ws, &auth).await?;
    match handshake::recv(&mut ws).await? {
        Handshake::Welcome { mac } => {
            ctx.secret.verify(
                Side::Server,
                mac.as_ref(),
                &my_nonce,
                &server_nonce,
                server,
                ctx.me,
            )?;
        }
        Handshake::Refused { reason } => return Err(HandshakeError::Refused(reason)),
        other => return Err(HandshakeError::Unexpected(format!("{other:?}"))),
    }
    Ok((ws, server))
}

/// The node task's handle on one peer's sending task. Dropping it stops the task.
pub struct Link {
    tx: mpsc::Sender<Message>,
    address: watch::Sender<String>,
    task: JoinHandle<()>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Link {
    /// Starts sending to `peer` at `address`, over `initial` if a connection is already open.
    pub fn spawn(
        ctx: PeerContext,
        peer: NodeId,
        address: String,
        initial: Option<WsClient>,
    ) -> Link {
        let (tx, rx) = mpsc::channel(LINK_QUEUE_MAX);
        let (address_tx, address_rx) = watch::channel(address);
        let task = tokio::spawn(run(ctx, peer, address_rx, rx, initial));
        Link {
            tx,
            address: address_tx,
            task,
        }
    }

    /// Queues `msg`, or says why it was dropped.
    pub fn send(&self, msg: Message) -> Result<(), (Message, DropCause)> {
        self.tx.try_send(msg).map_err(|e| match e {
            mpsc::error::TrySendError::Full(m) => (m, DropCause::QueueFull),
            mpsc::error::TrySendError::Closed(m) => (m, DropCause::Disconnected),
        })
    }

    /// Whether the queue can take another message (the node task is its only sender, so a
    /// `true` here means the next [`Link::send`] finds room).
    pub fn has_room(&self) -> bool {
        self.tx.capacity() > 0
    }

    /// The address the link dials.
    pub fn address(&self) -> String {
        self.address.borrow().clone()
    }

    /// Points the link at a new address (the peer restarted elsewhere); it reconnects.
    pub fn set_address(&self, address: String) {
        self.address.send_if_modified(|a| {
            if *a == address {
                false
            } else {
                *a = address;
                true
            }
        });
    }
}

fn jittered(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    let frac = f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX);
    d.mul_f64(0.5 + frac / 2.0)
}

async fn run(
    ctx: PeerContext,
    peer: NodeId,
    mut address: watch::Receiver<String>,
    mut rx: mpsc::Receiver<Message>,
    mut conn: Option<WsClient>,
) {
    let me = ctx.me;
    let mut backoff = BACKOFF_MIN;
    let mut failures = 0u32;
    loop {
        let ws = match conn.take() {
            Some(ws) => ws,
            None => {
                let addr = address.borrow_and_update().clone();
                match dial(&ctx, &addr, Some(peer)).await {
                    Ok((ws, _)) => {
                        if failures > 0 {
                            info!("{me}: connected to {peer} at {addr}");
                        }
                        ws
                    }
                    Err(e) => {
                        failures += 1;
                        if failures == 1 {
                            info!("{me}: cannot reach {peer} at {addr}: {e} (retrying)");
                        } else {
                            debug!("{me}: cannot reach {peer} at {addr}: {e}");
                        }
                        if let HandshakeError::BadSecret = e {
                            warn!("{me}: {peer} at {addr} does not prove the cluster secret");
                        }
                        // What waits would be stale by the time a connection opens.
                        while let Ok(m) = rx.try_recv() {
                            ctx.metrics.dropped(m.kind(), DropCause::Disconnected);
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(jittered(backoff)) => {}
                            changed = address.changed() => if changed.is_err() { return },
                        }
                        if rx.is_closed() {
                            return;
                        }
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        continue;
                    }
                }
            }
        };
        if !send_until_broken(&ctx, peer, ws, &mut rx).await {
            return;
        }
        info!("{me}: connection to {peer} lost; reconnecting");
        failures = 1;
        backoff = BACKOFF_MIN;
    }
}

/// Packs `first` and whatever else is queued into WebSocket messages of at most
/// [`FRAME_BYTES_MAX`] bytes, stopping past [`BATCH_BYTES`].
fn pack(
    ctx: &PeerContext,
    peer: NodeId,
    first: Message,
    rx: &mut mpsc::Receiver<Message>,
) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut next = Some(first);
    while let Some(msg) = next.take() {
        let before = buf.len();
        if let Err(e) = Envelope::encode_into(&msg, &mut buf) {
            warn!(
                "{}: a {} message to {peer} cannot be sent: {e}",
                ctx.me,
                msg.kind().name()
            );
            ctx.metrics.dropped(msg.kind(), DropCause::TooLarge);
        } else if buf.len() > FRAME_BYTES_MAX && before > 0 {
            // This frame does not fit with the others: it starts the next message.
            let frame = buf.split_off(before);
            out.push(std::mem::replace(&mut buf, frame));
        }
        if buf.len() >= BATCH_BYTES {
            break;
        }
        next = rx.try_recv().ok();
    }
    if !buf.is_empty() {
        out.push(buf);
    }
    out
}

/// Sends until the connection breaks (`true`: reconnect) or the node drops the link
/// (`false`).
async fn send_until_broken(
    ctx: &PeerContext,
    peer: NodeId,
    ws: WsClient,
    rx: &mut mpsc::Receiver<Message>,
) -> bool {
    let (mut sink, mut stream) = ws.split();
    loop {
        tokio::select! {
            msg = rx.recv() => {
                let Some(first) = msg else {
                    let _ = sink.close().await;
                    return false;
                };
                // Every frame of the burst is fed, then the socket is flushed once: one write
                // for what fits in the WebSocket's write buffer, not a flush per frame. Each
                // step has WRITE_TIMEOUT.
                let frames = pack(ctx, peer, first, rx);
                let steps = frames
                    .into_iter()
                    .map(|frame| Some(WsMessage::Binary(frame.into())))
                    .chain(std::iter::once(None));
                for step in steps {
                    let written = match step {
                        Some(msg) => tokio::time::timeout(WRITE_TIMEOUT, sink.feed(msg)).await,
                        None => tokio::time::timeout(WRITE_TIMEOUT, sink.flush()).await,
                    };
                    match written {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            debug!("{}: sending to {peer} failed: {e}", ctx.me);
                            return true;
                        }
                        Err(_) => {
                            warn!("{}: {peer} stopped reading for {WRITE_TIMEOUT:?}", ctx.me);
                            return true;
                        }
                    }
                }
            }
            incoming = stream.next() => match incoming {
                Some(Ok(WsMessage::Close(_)) | Err(_)) | None => return true,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Finds out which node listens at `addr` (a `--join` seed), retrying with backoff until it
/// answers, and hands the open connection to the node task.
pub async fn resolve_seed(ctx: PeerContext, addr: String, control: mpsc::Sender<Control>) {
    let mut backoff = BACKOFF_MIN;
    let mut failures = 0u32;
    loop {
        match dial(&ctx, &addr, None).await {
            Ok((ws, id)) => {
                info!("{}: seed {addr} is {id}", ctx.me);
                let _ = control
                    .send(Control::SeedResolved {
                        id,
                        address: addr,
                        ws: Box::new(ws),
                    })
                    .await;
                return;
            }
            Err(e) => {
                failures += 1;
                if failures == 1
                    || matches!(e, HandshakeError::BadSecret | HandshakeError::Refused(_))
                {
                    warn!("{}: cannot join through {addr}: {e} (retrying)", ctx.me);
                }
                tokio::time::sleep(jittered(backoff)).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}
