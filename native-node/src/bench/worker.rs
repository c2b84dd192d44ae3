//! One benchmark worker: one keep-alive HTTP/1.1 connection, one request in flight, its own
//! histograms and error counts (nothing shared but two relaxed counters for the progress bar).

use super::report::{OpKind, Outcome, WorkerStats};
use super::{Shared, key_name};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// How long a worker waits before it reconnects after a connection error.
const RECONNECT_DELAY: Duration = Duration::from_millis(50);
/// Bytes of an error answer's body read at most (to find its `error` code).
const ERROR_BODY_BYTES_MAX: usize = 4096;

/// The settings `/cluster` reports, printed with the summary.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ClusterSettings {
    /// Replicas per key.
    pub n: u64,
    /// Write quorum.
    pub w: u64,
    /// Read quorum.
    pub r: u64,
    /// Members the node knows.
    pub members: usize,
}

/// Asks `node` for its N, W, R and member count (`None` if it does not answer).
pub async fn cluster_settings(node: &str, timeout: Duration) -> Option<ClusterSettings> {
    let client = crate::client::Client::with_timeout(node, timeout);
    let view = tokio::task::spawn_blocking(move || client.cluster())
        .await
        .ok()?
        .ok()?;
    Some(ClusterSettings {
        n: view["n"].as_u64()?,
        w: view["w"].as_u64()?,
        r: view["r"].as_u64()?,
        members: view["members"].as_array().map_or(0, Vec::len),
    })
}

pub(super) struct Worker {
    index: usize,
    node: String,
    shared: Arc<Shared>,
    rng: SmallRng,
    conn: Option<SendRequest<Full<Bytes>>>,
    stats: WorkerStats,
}

/// A request that got no answer: the connection failed (connect, reset, protocol error).
struct Failure;

impl Worker {
    pub(super) fn new(index: usize, shared: Arc<Shared>, seed: u64) -> Worker {
        let node = shared.nodes[index % shared.nodes.len()].clone();
        let index_seed = u64::try_from(index).unwrap_or(u64::MAX);
        Worker {
            index,
            node,
            rng: SmallRng::seed_from_u64(seed ^ index_seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            shared,
            conn: None,
            stats: WorkerStats::default(),
        }
    }

    /// Takes what was recorded so far, leaving empty statistics.
    pub(super) fn take_stats(&mut self) -> WorkerStats {
        std::mem::take(&mut self.stats)
    }

    /// Writes keys `index`, `index + concurrency`, … once each.
    pub(super) async fn preload(mut self) -> Worker {
        let step = u64::try_from(self.shared.concurrency).unwrap_or(u64::MAX);
        let mut key = u64::try_from(self.index).unwrap_or(u64::MAX);
        while key < self.shared.keys {
            self.one(OpKind::Write, key).await;
            key += step;
        }
        self
    }

    /// Sends random reads and writes until `deadline`.
    pub(super) async fn measure(mut self, deadline: Instant) -> Worker {
        while Instant::now() < deadline {
            let kind = OpKind::pick(self.shared.read_ratio, self.rng.random::<f64>());
            let key = self.rng.random_range(0..self.shared.keys);
            self.one(kind, key).await;
        }
        self
    }

    /// One request, timed and recorded.
    async fn one(&mut self, kind: OpKind, key: u64) {
        let started = Instant::now();
        let outcome = match tokio::time::timeout(self.shared.timeout, self.request(kind, key)).await
        {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(Failure)) => {
                self.conn = None;
                tokio::time::sleep(RECONNECT_DELAY).await;
                Outcome::Error("connection".into())
            }
            Err(_) => {
                // The connection may still carry the late answer: start a fresh one.
                self.conn = None;
                Outcome::Error("timeout".into())
            }
        };
        if matches!(outcome, Outcome::Error(_)) {
            self.shared.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.shared.done.fetch_add(1, Ordering::Relaxed);
        self.stats.record(kind, &outcome, started.elapsed());
    }

    async fn connection(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, Failure> {
        if self.conn.is_none() {
            let stream = TcpStream::connect(self.node.as_str())
                .await
                .map_err(|_| Failure)?;
            let _ = stream.set_nodelay(true);
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|_| Failure)?;
            // The connection's own task: it ends when the sender is dropped.
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.conn = Some(sender);
        }
        let sender = self.conn.as_mut().ok_or(Failure)?;
        sender.ready().await.map_err(|_| Failure)?;
        Ok(sender)
    }

    async fn request(&mut self, kind: OpKind, key: u64) -> Result<Outcome, Failure> {
        let (method, query, body) = match kind {
            OpKind::Read => (Method::GET, &self.shared.read_query, Bytes::new()),
            OpKind::Write => (
                Method::PUT,
                &self.shared.write_query,
                self.shared.value.clone(),
            ),
        };
        let request = Request::builder()
            .method(method)
            .uri(format!("/kv/{}{query}", key_name(key)))
            .header(header::HOST, self.node.as_str())
            .body(Full::new(body))
            .map_err(|_| Failure)?;
        let sender = self.connection().await?;
        let response = sender.send_request(request).await.map_err(|_| Failure)?;
        let status = response.status();
        if status == StatusCode::OK {
            // Read the whole body (the value, or a write's JSON) so the connection is reusable.
            response.into_body().collect().await.map_err(|_| Failure)?;
            return Ok(Outcome::Ok);
        }
        let body = http_body_util::Limited::new(response.into_body(), ERROR_BODY_BYTES_MAX)
            .collect()
            .await
            .map_err(|_| Failure)?
            .to_bytes();
        let code = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|j| j.get("error")?.as_str().map(str::to_string));
        Ok(match (kind, status, code) {
            (OpKind::Read, StatusCode::NOT_FOUND, Some(c)) if c == "not_found" => Outcome::NotFound,
            (_, _, Some(code)) => Outcome::Error(code),
            (_, status, None) => Outcome::Error(format!("http_{}", status.as_u16())),
        })
    }
}
