//! The receiving side: a peer's connection accepted on `/ws/peer`, its handshake, then every
//! message it sends handed to the node task. A peer that fails the handshake is refused with a
//! log line; one that sends an undecodable frame is disconnected with a log line. Either way
//! the node keeps serving everyone else.

use super::handshake::{self, Handshake, HandshakeError, Side, nonce};
use super::{PeerContext, PeerInbound, unpack};
use crate::runtime::Control;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use std::net::SocketAddr;
use tokio::sync::mpsc;
use tracing::{info, warn};

/// WebSocket close code for a message that is not what the protocol allows (RFC 6455, 1007).
const CLOSE_BAD_DATA: u16 = 1007;
/// WebSocket close code for a policy violation (a refused handshake; RFC 6455, 1008).
const CLOSE_POLICY: u16 = 1008;

async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.chars().take(100).collect::<String>().into(),
    };
    let _ = socket.send(WsMessage::Close(Some(frame))).await;
}

fn refusal_label(e: &HandshakeError) -> &'static str {
    match e {
        HandshakeError::BadSecret => "bad_secret",
        HandshakeError::OtherN { .. } => "other_n",
        HandshakeError::BadFrame(_) => "bad_frame",
        HandshakeError::Unexpected(_) => "unexpected",
        HandshakeError::Io(_) => "io",
        HandshakeError::Refused(_) | HandshakeError::WrongNode { .. } => "refused",
    }
}

/// Runs one accepted peer connection to its end.
pub async fn serve(
    mut socket: WebSocket,
    remote: SocketAddr,
    ctx: PeerContext,
    peers: mpsc::Sender<PeerInbound>,
    control: mpsc::Sender<Control>,
) {
    let me = ctx.me;
    let my_nonce = nonce();
    let hello = Handshake::Hello {
        node: me,
        nonce: my_nonce,
        n: ctx.n,
    };
    if handshake::send(&mut socket, &hello).await.is_err() {
        return;
    }
    let checked = match handshake::recv(&mut socket).await {
        Ok(Handshake::Auth {
            node,
            address,
            nonce: their_nonce,
            n,
            mac,
        }) => {
            if n != ctx.n {
                Err(HandshakeError::OtherN {
                    ours: ctx.n,
                    theirs: n,
                })
            } else if node == me {
                Err(HandshakeError::Unexpected(format!(
                    "the peer claims this node's own id {me}"
                )))
            } else {
                ctx.secret
                    .verify(
                        Side::Client,
                        mac.as_ref(),
                        &my_nonce,
                        &their_nonce,
                        node,
                        me,
                    )
                    .map(|()| (node, address, their_nonce))
            }
        }
        Ok(other) => Err(HandshakeError::Unexpected(format!("{other:?}"))),
        Err(e) => Err(e),
    };
    let (peer, address, their_nonce) = match checked {
        Ok(ok) => ok,
        Err(e) => {
            warn!("{me}: refused a peer connection from {remote}: {e}");
            ctx.metrics.handshake_refused(refusal_label(&e));
            let reason = e.to_string();
            let _ = handshake::send(
                &mut socket,
                &Handshake::Refused {
                    reason: reason.clone(),
                },
            )
            .await;
            return close(socket, CLOSE_POLICY, &reason).await;
        }
    };
    let welcome = Handshake::Welcome {
        mac: ctx
            .secret
            .tag(Side::Server, &their_nonce, &my_nonce, me, peer),
    };
    if handshake::send(&mut socket, &welcome).await.is_err() {
        return;
    }
    info!("{me}: {peer} connected from {remote} (advertises {address})");
    if control
        .send(Control::PeerHello { id: peer, address })
        .await
        .is_err()
    {
        return;
    }
    while let Some(next) = socket.recv().await {
        match next {
            Ok(WsMessage::Binary(bytes)) => match unpack(&bytes) {
                Ok(msgs) => {
                    if peers.send(PeerInbound { from: peer, msgs }).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    warn!(
                        "{me}: closing the connection from {peer} ({remote}): undecodable frame: {e}"
                    );
                    ctx.metrics.bad_frames.inc();
                    return close(socket, CLOSE_BAD_DATA, &e.to_string()).await;
                }
            },
            Ok(WsMessage::Text(_)) => {
                warn!(
                    "{me}: closing the connection from {peer} ({remote}): a text message on the peer socket"
                );
                ctx.metrics.bad_frames.inc();
                return close(socket, CLOSE_BAD_DATA, "text message").await;
            }
            Ok(WsMessage::Close(_)) | Err(_) => return,
            Ok(WsMessage::Ping(_) | WsMessage::Pong(_)) => {}
        }
    }
}
