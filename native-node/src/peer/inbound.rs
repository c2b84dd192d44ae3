//! The receiving side: a peer's connection accepted on `/ws/peer`, its handshake, then every
//! message it sends handed to the node task. A peer that fails the handshake is refused with a
//! log line; one that sends an undecodable frame is disconnected with a log line. Either way
//! the node keeps serving everyone else.
//!
//! **Before the handshake completes, a connection is a stranger's.** It may be read at most
//! [`PRE_AUTH_BYTES_MAX`] bytes ([`PreAuthLimit`], under the WebSocket layer, so a frame that
//! announces 16 MiB is cut off after that much, never buffered), and at most
//! [`PENDING_HANDSHAKES_MAX`] connections may be in their handshake at once (the upgrade of one
//! more is answered `503 overloaded`). Once the peer has proved the cluster secret (or, without
//! one, said who it is) the bound is lifted to the peer frame bound, [`super::FRAME_BYTES_MAX`].

use super::handshake::{self, HANDSHAKE_BYTES_MAX, Handshake, HandshakeError, Side, nonce};
use super::{PeerContext, PeerInbound, unpack};
use crate::runtime::Control;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tracing::{info, warn};

/// Bytes read from a connection before its handshake completes, at most: the dialer's `Auth`
/// frame (at most [`HANDSHAKE_BYTES_MAX`] of payload) with its headers, twice over.
pub const PRE_AUTH_BYTES_MAX: usize = 2 * (HANDSHAKE_BYTES_MAX + 64);
/// Connections in their handshake at once, at most.
pub const PENDING_HANDSHAKES_MAX: usize = 64;

/// A socket that lets at most a budget of bytes be read from it until [`PreAuthLimit::lift`]
/// (then any amount): reading past the budget is an `InvalidData` error, which closes the
/// connection.
#[derive(Debug)]
pub struct PreAuthLimit<T> {
    inner: T,
    /// Bytes that may still be read; `usize::MAX` once lifted.
    left: AtomicUsize,
}

impl<T> PreAuthLimit<T> {
    /// Wraps `inner` with a budget of `bytes`.
    pub fn new(inner: T, bytes: usize) -> PreAuthLimit<T> {
        PreAuthLimit {
            inner,
            left: AtomicUsize::new(bytes),
        }
    }

    /// Lifts the budget: the peer is authenticated.
    pub fn lift(&self) {
        self.left.store(usize::MAX, Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for PreAuthLimit<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let left = *this.left.get_mut();
        if left == usize::MAX {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        if left == 0 {
            let e = format!("more than {PRE_AUTH_BYTES_MAX} bytes before the handshake completed");
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
        }
        let mut limited = buf.take(left);
        let result = Pin::new(&mut this.inner).poll_read(cx, &mut limited);
        let n = limited.filled().len();
        // `take` shares the caller's memory: mark those bytes filled in `buf` too.
        let unfilled = buf.initialize_unfilled_to(n);
        debug_assert_eq!(unfilled.len(), n);
        buf.advance(n);
        *this.left.get_mut() = left - n;
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for PreAuthLimit<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// WebSocket close code for a message that is not what the protocol allows (RFC 6455, 1007).
const CLOSE_BAD_DATA: u16 = 1007;
/// WebSocket close code for a policy violation (a refused handshake; RFC 6455, 1008).
const CLOSE_POLICY: u16 = 1008;

async fn close<S>(socket: &mut S, code: u16, reason: &str)
where
    S: Sink<WsMessage> + Unpin,
{
    let frame = CloseFrame {
        code: code.into(),
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

/// Runs one accepted peer connection to its end. `pending` is its place among the connections
/// in their handshake, given back when the handshake ends; `authenticated` is called once it
/// has succeeded (it lifts the read bound).
pub async fn serve<S>(
    mut socket: S,
    remote: SocketAddr,
    ctx: PeerContext,
    peers: mpsc::Sender<PeerInbound>,
    control: mpsc::Sender<Control>,
    pending: OwnedSemaphorePermit,
    authenticated: impl FnOnce(&S),
) where
    S: Stream<Item = Result<WsMessage, tokio_tungstenite::tungstenite::Error>>
        + Sink<WsMessage, Error = tokio_tungstenite::tungstenite::Error>
        + Unpin,
{
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
            return close(&mut socket, CLOSE_POLICY, &reason).await;
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
    authenticated(&socket);
    drop(pending);
    info!("{me}: {peer} connected from {remote} (advertises {address})");
    if control
        .send(Control::PeerHello { id: peer, address })
        .await
        .is_err()
    {
        return;
    }
    while let Some(next) = socket.next().await {
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
                    return close(&mut socket, CLOSE_BAD_DATA, &e.to_string()).await;
                }
            },
            Ok(WsMessage::Text(_)) => {
                warn!(
                    "{me}: closing the connection from {peer} ({remote}): a text message on the peer socket"
                );
                ctx.metrics.bad_frames.inc();
                return close(&mut socket, CLOSE_BAD_DATA, "text message").await;
            }
            Ok(WsMessage::Close(_)) | Err(_) => return,
            Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn reads_stop_at_the_budget_until_it_is_lifted() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let mut limited = PreAuthLimit::new(server, 10);
        tokio::io::AsyncWriteExt::write_all(&mut client, &[7; 40])
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let n = limited.read(&mut buf).await.unwrap();
        assert_eq!(n, 10, "never more than the budget");
        let err = limited.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        limited.lift();
        let n = limited.read(&mut buf).await.unwrap();
        assert_eq!(n, 30, "the rest, once lifted");
    }
}
