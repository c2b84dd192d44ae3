//! The node's accept loop: hyper's HTTP/1.1 server under the axum router, set up for clients
//! that may be hostile.
//!
//! - **Header read timeout** ([`HEADER_READ_TIMEOUT`]): a connection that has not sent a whole
//!   request head in that time is closed (hyper's own timer; `axum::serve` sets none, so a
//!   client trickling its headers held a connection open for as long as it liked).
//! - **Every error is JSON**, those hyper writes itself too. hyper answers a request it cannot
//!   parse (raw bytes in the path: 400; a path over its 64 KiB limit: 414; headers over its
//!   buffer: 431) before the router sees it, with an empty body and no hook to change that.
//!   [`JsonErrors`] wraps each connection's socket and rewrites exactly those responses (a
//!   4xx or 5xx head with `content-length: 0` and nothing after it, which the router never
//!   writes: its own errors all carry a JSON body) into the same head with a JSON body
//!   (`{"error": CODE, "message": TEXT}`).
//! - **Lingering close**, as nginx does it: when a connection ends, its socket is not simply
//!   closed. Closing a socket with unread bytes makes the kernel send a reset, which can
//!   overtake the response just written: a client still sending an oversize value (refused
//!   413 after [`crate::http::DRAIN_BYTES_MAX`]) or a page still sending an over-limit UI
//!   message (closed with 1009) saw a broken pipe instead of the answer. [`Lingering`] shuts
//!   the write side (the answer is followed by a FIN) and reads and drops what the client
//!   still sends, up to [`LINGER_BYTES_MAX`] and [`LINGER_TIME_MAX`], before closing.
//! - The remote address is put in each request's extensions as axum's `ConnectInfo`;
//!   TCP_NODELAY is set; upgrades (the WebSockets) are served; a shutdown stops accepting,
//!   lets each connection finish its request, and waits at most [`SHUTDOWN_GRACE`].

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;
use tracing::{debug, warn};

/// How long a client has to send a whole request head, from the connection's start or the end
/// of the previous response (so an idle kept-alive connection is closed after this long).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The request head hyper buffers before it answers 431. Above hyper's 65,534-byte limit on the
/// path, so an over-long path is answered 414, not 431. Hyper checks it between reads, so a
/// head that arrives in one read into the buffer's spare room may be up to a few times larger
/// (bounded by the buffer's growth: under 1 MiB); a longer one is always refused.
pub const READ_BUFFER_BYTES_MAX: usize = 128 << 10;
/// How long a shutdown waits for open connections to finish their requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(READ_BUFFER_BYTES_MAX);
    // Connections hold a receiver; when every one is dropped, every connection has ended.
    let (signal_tx, _) = watch::channel(());
    let (close_tx, close_rx) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(remote));
            app.clone().oneshot(req.map(Body::new))
        });
        let conn = http
            .serve_connection(TokioIo::new(JsonErrors::new(Lingering::new(tcp))), service)
            .with_upgrades();
        let mut signal = signal_tx.subscribe();
        let close_rx = close_rx.clone();
        tokio::spawn(async move {
            tokio::pin!(conn);
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            debug!("connection from {remote}: {e}");
                        }
                        break;
                    }
                    _ = signal.changed() => conn.as_mut().graceful_shutdown(),
                }
            }
            drop(close_rx);
        });
    }
    drop(listener);
    let _ = signal_tx.send(());
    drop(close_rx);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, close_tx.closed()).await;
    Ok(())
}

/// Bytes read and dropped at most from a connection that is being closed.
pub const LINGER_BYTES_MAX: usize = 64 << 20;
/// How long a connection that is being closed is read at most.
pub const LINGER_TIME_MAX: Duration = Duration::from_secs(5);

/// A socket that, when dropped, is closed the lingering way (see the module docs).
pub struct Lingering {
    inner: Option<tokio::net::TcpStream>,
}

impl Lingering {
    /// Wraps a connection.
    pub fn new(tcp: tokio::net::TcpStream) -> Lingering {
        Lingering { inner: Some(tcp) }
    }

    fn tcp(&mut self) -> &mut tokio::net::TcpStream {
        self.inner
            .as_mut()
            .unwrap_or_else(|| unreachable!("taken only by drop"))
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        let (Some(mut tcp), Ok(runtime)) =
            (self.inner.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        runtime.spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let _ = tcp.shutdown().await;
            let mut buf = vec![0u8; 16 << 10];
            let mut read = 0;
            let _ = tokio::time::timeout(LINGER_TIME_MAX, async {
                while read < LINGER_BYTES_MAX {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read += n,
                    }
                }
            })
            .await;
        });
    }
}

impl AsyncRead for Lingering {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().tcp()).poll_read(cx, buf)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.get_mut().tcp()).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().tcp()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().tcp()).poll_shutdown(cx)
    }
}

/// A connection's socket that rewrites hyper's own bodiless error responses into JSON ones
/// (see the module docs). Everything else passes through untouched.
pub struct JsonErrors<T> {
    inner: T,
    /// A rewritten response still being written, and how much of it is written.
    pending: Vec<u8>,
    written: usize,
}

impl<T> JsonErrors<T> {
    /// Wraps a socket.
    pub fn new(inner: T) -> JsonErrors<T> {
        JsonErrors {
            inner,
            pending: Vec::new(),
            written: 0,
        }
    }
}

/// If `head` is a whole bodiless error response of hyper's own (`HTTP/1.1 4xx` or `5xx`,
/// `content-length: 0`, ending with the blank line, without the header every response of the
/// router carries), the same response with a JSON body.
pub fn rewrite_error_head(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let rest = text.strip_prefix("HTTP/1.1 ")?;
    if !text.ends_with("\r\n\r\n") || !matches!(rest.as_bytes().first(), Some(b'4' | b'5')) {
        return None;
    }
    let status_line = &rest[..rest.find("\r\n")?];
    let (code, reason) = status_line.split_once(' ').unwrap_or((status_line, ""));
    let status: u16 = code.parse().ok()?;
    let lines: Vec<&str> = text[..text.len() - 4].split("\r\n").skip(1).collect();
    let served_by = format!("{}:", crate::http::SERVED_BY_HEADER);
    if lines
        .iter()
        .any(|l| l.to_ascii_lowercase().starts_with(&served_by))
        || !lines
            .iter()
            .any(|l| l.eq_ignore_ascii_case("content-length: 0"))
    {
        return None;
    }
    let message = match status {
        400 => "the request could not be parsed as HTTP/1.1",
        414 => "the request's path is longer than the server reads (keys are 1 to 1024 bytes)",
        431 => "the request's headers are larger than the server reads",
        _ => reason,
    };
    let body =
        serde_json::json!({"error": crate::http::code_of_status(status), "message": message})
            .to_string();
    let mut out = format!("HTTP/1.1 {status_line}\r\n");
    for line in lines {
        if !line.eq_ignore_ascii_case("content-length: 0") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("content-type: application/json\r\n");
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    out.push_str(&body);
    Some(out.into_bytes())
}

impl<T: AsyncWrite + Unpin> JsonErrors<T> {
    /// Writes what is left of a rewritten response.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonErrors<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonErrors<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if let Some(rewritten) = rewrite_error_head(buf) {
            this.pending = rewritten;
            // The caller's bytes are taken; the rewrite goes out now or on the next flush.
            if let Poll::Ready(Err(e)) = this.poll_pending(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }

    // Not vectored: hyper then writes a response head in one buffer, which is what the
    // rewrite looks at.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_error_heads_get_a_json_body_and_others_pass() {
        let head = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(rewrite_error_head(head).unwrap()).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"], "uri_too_long");
        // A response with a body, a success, a partial head: untouched.
        assert!(
            rewrite_error_head(b"HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\n\r\n").is_none()
        );
        assert!(rewrite_error_head(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        let routed = b"HTTP/1.1 404 Not Found\r\nx-ringstore-node: 1\r\ncontent-length: 0\r\n\r\n";
        assert!(rewrite_error_head(routed).is_none(), "the router's own");
        assert!(rewrite_error_head(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n").is_none());
    }
}
