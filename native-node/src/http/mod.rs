//! The node's one port (axum): the client HTTP API, cluster state, health, metrics, fault
//! injection, the peer WebSocket and the static page. The contract is written out in the
//! README ("HTTP API"); every error is JSON `{"error": CODE, "message": TEXT}`.

mod sockets;

use crate::peer::PEER_PATH;
use crate::runtime::{Control, NodeHandle};
use crate::view::NodeView;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get, post};
use futures_util::StreamExt;
use percent_encoding::percent_decode_str;
use ringstore_core::NodeId;
use ringstore_core::node::{ClientError, ClientOk, ClientOp, Consistency, Lifecycle};
use ringstore_core::storage::{CLIENT_KEY_BYTES_MAX, LsmStats, StorageFailure, Version};
use serde::Serialize;
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The header carrying a value's LWW timestamp (microseconds).
pub const TIMESTAMP_HEADER: &str = "x-ringstore-timestamp";
/// The header naming the coordinator that wrote a value.
pub const WRITER_HEADER: &str = "x-ringstore-writer";
/// How long `/health` and `/cluster` wait for the node task.
const VIEW_TIMEOUT: Duration = Duration::from_secs(2);

/// An API error: its status, code and message.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// 400 `bad_request`: a bad key or parameter.
    BadRequest(String),
    /// 413 `too_large`.
    TooLarge {
        /// The value's length (if known).
        len: Option<usize>,
        /// The limit.
        max: usize,
    },
    /// 503 `quorum_unavailable`.
    QuorumUnavailable {
        /// Answers required.
        needed: usize,
        /// Answers received.
        got: usize,
    },
    /// 503 `storage_unavailable`: replicas' storage refused the write (a full disk, a
    /// poisoned engine), named with the cause.
    StorageUnavailable {
        /// Acknowledgements required.
        needed: usize,
        /// Acknowledgements received.
        got: usize,
        /// The replicas whose storage refused the write, and why.
        failures: Vec<(NodeId, StorageFailure)>,
    },
    /// 503 `overloaded`: too many requests in flight.
    Overloaded(usize),
    /// 503 `unavailable`: the node is not serving (shutting down, joining).
    Unavailable(String),
    /// 404 `not_found`: absent, or deleted at this version.
    NotFound(Option<Version>),
    /// 403 `forbidden_origin`: a web page this node does not serve asked for a socket.
    ForbiddenOrigin(String),
    /// 415 `unsupported_media_type`: an admin request whose body is not declared JSON.
    UnsupportedMediaType(String),
}

impl ApiError {
    /// The `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::TooLarge { .. } => "too_large",
            ApiError::QuorumUnavailable { .. } => "quorum_unavailable",
            ApiError::StorageUnavailable { .. } => "storage_unavailable",
            ApiError::Overloaded(_) => "overloaded",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::NotFound(_) => "not_found",
            ApiError::ForbiddenOrigin(_) => "forbidden_origin",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
        }
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> ApiError {
        match e {
            ClientError::BadRequest(m) => ApiError::BadRequest(m),
            ClientError::TooLarge { len, max } => ApiError::TooLarge {
                len: Some(len),
                max,
            },
            ClientError::QuorumUnavailable { needed, got } => {
                ApiError::QuorumUnavailable { needed, got }
            }
            ClientError::StorageUnavailable {
                needed,
                got,
                failures,
            } => ApiError::StorageUnavailable {
                needed,
                got,
                failures,
            },
            ClientError::Overloaded { in_flight } => ApiError::Overloaded(in_flight),
            ClientError::NodeDown => ApiError::Unavailable("the node is shutting down".into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        let (status, body) = match &self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, json!({"message": m})),
            ApiError::TooLarge { len, max } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({
                    "message": match len {
                        Some(len) => format!("value of {len} bytes is over the limit of {max}"),
                        None => format!("value is over the limit of {max} bytes"),
                    },
                    "max": max,
                }),
            ),
            ApiError::QuorumUnavailable { needed, got } => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({
                    "message": format!("needed {needed} replicas to answer in time, got {got}"),
                    "needed": needed,
                    "got": got,
                }),
            ),
            ApiError::StorageUnavailable {
                needed,
                got,
                failures,
            } => {
                let causes: Vec<String> =
                    failures.iter().map(|(n, f)| format!("{n}: {f}")).collect();
                let replicas: Vec<_> = failures
                    .iter()
                    .map(|(n, f)| {
                        json!({
                            "node": n.to_string(),
                            "reason": f.to_string(),
                            "retryable": f.retryable(),
                            "state_may_have_changed": f.state_may_have_changed(),
                        })
                    })
                    .collect();
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({
                        "message": format!(
                            "storage unavailable: needed {needed} replicas to store the write, \
                             got {got} ({})",
                            causes.join("; ")
                        ),
                        "needed": needed,
                        "got": got,
                        "retryable": failures.iter().all(|(_, f)| f.retryable()),
                        "replicas": replicas,
                    }),
                )
            }
            ApiError::Overloaded(n) => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"message": format!("overloaded: {n} requests in flight")}),
            ),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, json!({"message": m})),
            ApiError::ForbiddenOrigin(m) => (StatusCode::FORBIDDEN, json!({"message": m})),
            ApiError::UnsupportedMediaType(m) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, json!({"message": m}))
            }
            ApiError::NotFound(v) => (
                StatusCode::NOT_FOUND,
                match v {
                    Some(v) => json!({
                        "message": "the key was deleted",
                        "timestamp": v.ts_micros,
                        "writer": v.node,
                    }),
                    None => json!({"message": "no value for this key"}),
                },
            ),
        };
        let mut body = body;
        body["error"] = json!(code);
        (status, axum::Json(body)).into_response()
    }
}

/// The key of a `/kv/{key}` or `/replica/{key}` path: percent-decoded bytes, 1 to 1,024. A
/// `%` not followed by two hex digits is refused (taken literally, `/kv/%ZZ` and `/kv/%25ZZ`
/// would name the same key).
fn key_of(uri: &Uri, prefix: &str) -> Result<Vec<u8>, ApiError> {
    let raw = uri.path().strip_prefix(prefix).unwrap_or("");
    if let Some(at) = bad_escape(raw) {
        return Err(ApiError::BadRequest(format!(
            "a bad percent-escape at byte {at} of the key: a % must be followed by two hex digits (write % itself as %25)"
        )));
    }
    let key: Vec<u8> = percent_decode_str(raw).collect();
    if key.is_empty() || key.len() > CLIENT_KEY_BYTES_MAX {
        return Err(ApiError::BadRequest(format!(
            "a key must be 1 to {CLIENT_KEY_BYTES_MAX} bytes (percent-encoded in the path), got {}",
            key.len()
        )));
    }
    Ok(key)
}

/// Where the first `%` not followed by two hex digits is, if any.
fn bad_escape(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    bytes.iter().enumerate().find_map(|(i, &b)| {
        let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
        (b == b'%' && !(hex(i + 1) && hex(i + 2))).then_some(i)
    })
}

/// Parses the query of a request: `w` (writes) or `r` (reads) as a count, or `consistency`
/// as `one`, `quorum`, `all`; nothing else.
fn consistency_of(query: Option<&str>, count_param: &str) -> Result<Option<Consistency>, ApiError> {
    let mut out = None;
    for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let c = if name == count_param {
            value.parse::<u32>().map(Consistency::Count).map_err(|_| {
                ApiError::BadRequest(format!("{count_param} must be a number, got {value:?}"))
            })?
        } else if name == "consistency" {
            match value.to_ascii_lowercase().as_str() {
                "one" | "quorum" | "all" => value.parse().map_err(ApiError::BadRequest)?,
                _ => {
                    return Err(ApiError::BadRequest(format!(
                        "consistency must be one, quorum or all, got {value:?}"
                    )));
                }
            }
        } else {
            return Err(ApiError::BadRequest(format!(
                "unknown parameter {name:?} (this request takes {count_param} or consistency)"
            )));
        };
        if out.replace(c).is_some() {
            return Err(ApiError::BadRequest(format!(
                "give {count_param} or consistency once"
            )));
        }
    }
    Ok(out)
}

#[derive(Serialize)]
struct Written {
    timestamp: u64,
    writer: NodeId,
    acks: usize,
    hinted: usize,
}

fn written(ok: ClientOk) -> Result<Response, ApiError> {
    match ok {
        ClientOk::Written {
            version,
            acks,
            hinted,
        } => Ok(axum::Json(Written {
            timestamp: version.ts_micros,
            writer: version.node,
            acks,
            hinted,
        })
        .into_response()),
        other => Err(ApiError::Unavailable(format!(
            "unexpected answer to a write: {other:?}"
        ))),
    }
}

fn finish(
    node: &NodeHandle,
    op: &'static str,
    started: Instant,
    result: Result<Response, ApiError>,
) -> Response {
    let label = match &result {
        Ok(_) => "ok",
        Err(e) => e.code(),
    };
    node.metrics
        .request(op, label, started.elapsed().as_secs_f64());
    match result {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn put_kv(
    State(node): State<NodeHandle>,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let result = async {
        let key = key_of(&uri, "/kv/")?;
        let consistency = consistency_of(query.as_deref(), "w")?;
        let max = node.value_bytes_max;
        let announced = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if let Some(len) = announced.filter(|&len| len > max) {
            drain(body.into_data_stream()).await;
            return Err(ApiError::TooLarge {
                len: Some(len),
                max,
            });
        }
        let mut stream = body.into_data_stream();
        let mut value = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::BadRequest(format!("the request body is malformed: {e}")))?;
            if value.len() + chunk.len() > max {
                drain(stream).await;
                return Err(ApiError::TooLarge { len: None, max });
            }
            value.extend_from_slice(&chunk);
        }
        let op = ClientOp::Put {
            key,
            value,
            consistency,
        };
        written(node.client(op).await?)
    }
    .await;
    finish(&node, "put", started, result)
}

/// Bytes of a refused body read and thrown away at most, so that a client still sending it
/// reads the refusal instead of a reset connection (as nginx's lingering close does).
pub const DRAIN_BYTES_MAX: usize = 64 << 20;
/// How long a refused body is read at most.
pub const DRAIN_TIME_MAX: Duration = Duration::from_secs(5);

/// Reads and discards what is left of a refused request body, within [`DRAIN_BYTES_MAX`] and
/// [`DRAIN_TIME_MAX`]. Past either, the response goes out and the connection is closed.
async fn drain(mut body: axum::body::BodyDataStream) {
    let mut drained = 0usize;
    let _ = tokio::time::timeout(DRAIN_TIME_MAX, async {
        while let Some(Ok(chunk)) = body.next().await {
            drained += chunk.len();
            if drained > DRAIN_BYTES_MAX {
                return;
            }
        }
    })
    .await;
}

async fn delete_kv(
    State(node): State<NodeHandle>,
    uri: Uri,
    RawQuery(query): RawQuery,
) -> Response {
    let started = Instant::now();
    let result = async {
        let key = key_of(&uri, "/kv/")?;
        let consistency = consistency_of(query.as_deref(), "w")?;
        written(node.client(ClientOp::Delete { key, consistency }).await?)
    }
    .await;
    finish(&node, "delete", started, result)
}

fn version_headers(headers: &mut HeaderMap, v: Version) {
    headers.insert(TIMESTAMP_HEADER, HeaderValue::from(v.ts_micros));
    if let Ok(w) = HeaderValue::from_str(&v.node.to_string()) {
        headers.insert(WRITER_HEADER, w);
    }
}

async fn get_kv(State(node): State<NodeHandle>, uri: Uri, RawQuery(query): RawQuery) -> Response {
    let started = Instant::now();
    let result = async {
        let key = key_of(&uri, "/kv/")?;
        let consistency = consistency_of(query.as_deref(), "r")?;
        match node.client(ClientOp::Get { key, consistency }).await? {
            ClientOk::Found { version, value } => {
                let mut response = Response::new(Body::from(value));
                let headers = response.headers_mut();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                version_headers(headers, version);
                Ok(response)
            }
            ClientOk::NotFound { version } => Err(ApiError::NotFound(version)),
            ClientOk::Written { .. } => {
                Err(ApiError::Unavailable("a read answered as a write".into()))
            }
        }
    }
    .await;
    // A miss is a successful read for the metrics' purposes, but it is labelled apart.
    finish(&node, "get", started, result)
}

async fn empty_key() -> Response {
    ApiError::BadRequest("the key is empty: use /kv/{key} with a 1 to 1024 byte key".into())
        .into_response()
}

/// What this node's own data store holds for a key, without coordination.
#[derive(Serialize)]
struct ReplicaCell {
    found: bool,
    deleted: bool,
    timestamp: Option<u64>,
    writer: Option<NodeId>,
    value_bytes: Option<usize>,
}

async fn replica(State(node): State<NodeHandle>, uri: Uri) -> Response {
    let key = match key_of(&uri, "/replica/") {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let data = node.data.clone();
    match tokio::task::spawn_blocking(move || data.get(&key)).await {
        Ok(Ok(cell)) => axum::Json(ReplicaCell {
            found: cell.is_some(),
            deleted: cell.as_ref().is_some_and(|c| c.is_tombstone()),
            timestamp: cell.as_ref().map(|c| c.version.ts_micros),
            writer: cell.as_ref().map(|c| c.version.node),
            value_bytes: cell.as_ref().and_then(|c| c.value.as_ref().map(Vec::len)),
        })
        .into_response(),
        Ok(Err(e)) => ApiError::Unavailable(format!("storage: {e}")).into_response(),
        Err(e) => ApiError::Unavailable(e.to_string()).into_response(),
    }
}

pub(crate) async fn view_of(node: &NodeHandle) -> Result<NodeView, ApiError> {
    tokio::time::timeout(VIEW_TIMEOUT, node.view())
        .await
        .ok()
        .flatten()
        .ok_or_else(|| ApiError::Unavailable("the node is not answering".into()))
}

#[derive(Serialize)]
struct Storage {
    data: LsmStats,
    hints: LsmStats,
}

#[derive(Serialize)]
struct ClusterBody {
    #[serde(flatten)]
    view: NodeView,
    storage: Storage,
}

async fn cluster(State(node): State<NodeHandle>) -> Response {
    match view_of(&node).await {
        Ok(view) => axum::Json(ClusterBody {
            view,
            storage: Storage {
                data: node.data.stats(),
                hints: node.hints.stats(),
            },
        })
        .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn health(State(node): State<NodeHandle>) -> Response {
    let unwritable = [("data", &node.data), ("hints", &node.hints)]
        .into_iter()
        .find_map(|(name, store)| store.unwritable().map(|why| format!("{name} store: {why}")));
    if let Some(why) = unwritable {
        return ApiError::Unavailable(format!("the node cannot take writes: {why}"))
            .into_response();
    }
    match view_of(&node).await {
        Ok(v) if v.lifecycle == Lifecycle::Normal => {
            axum::Json(json!({"status": "ok", "node": v.node})).into_response()
        }
        Ok(v) => {
            ApiError::Unavailable(format!("the node is {}", v.lifecycle.name())).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn metrics(State(node): State<NodeHandle>) -> Response {
    // Refreshes the gauges the node task keeps (members by state).
    let _ = view_of(&node).await;
    let text = node
        .metrics
        .render(&[("data", &node.data), ("hints", &node.hints)]);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Refuses an admin request whose body is not declared JSON: a browser sends a cross-site
/// POST without asking first only with a "simple" content type (form, multipart, text), so
/// requiring `application/json` means a page on another site cannot reach these endpoints.
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = declared.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "admin requests must be sent with Content-Type: application/json (got {:?})",
            if declared.is_empty() {
                "none"
            } else {
                declared
            }
        )))
    }
}

/// Node ids in a JSON list: numbers (`3`) or names (`"n3"`).
fn node_ids(body: &[u8]) -> Result<Vec<NodeId>, ApiError> {
    let values: Vec<serde_json::Value> = serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "expected a JSON list of node ids like [2, \"n3\"]: {e}"
        ))
    })?;
    values
        .iter()
        .map(|v| match v {
            serde_json::Value::Number(n) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(NodeId)
                .ok_or_else(|| ApiError::BadRequest(format!("bad node id {n}"))),
            serde_json::Value::String(s) => s.parse().map_err(ApiError::BadRequest),
            other => Err(ApiError::BadRequest(format!("bad node id {other}"))),
        })
        .collect()
}

async fn partition(State(node): State<NodeHandle>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = require_json(&headers) {
        return e.into_response();
    }
    let ids = match node_ids(&body) {
        Ok(ids) => ids,
        Err(e) => return e.into_response(),
    };
    node.control(Control::Partition(ids)).await;
    admin_state(&node).await
}

async fn heal(State(node): State<NodeHandle>, headers: HeaderMap) -> Response {
    if let Err(e) = require_json(&headers) {
        return e.into_response();
    }
    node.control(Control::Heal).await;
    admin_state(&node).await
}

async fn clock_skew(State(node): State<NodeHandle>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = require_json(&headers) {
        return e.into_response();
    }
    let value: Result<serde_json::Value, _> = serde_json::from_slice(&body);
    let ms = match &value {
        Ok(serde_json::Value::Number(n)) => n.as_i64(),
        Ok(serde_json::Value::Object(o)) => o.get("ms").and_then(serde_json::Value::as_i64),
        _ => None,
    };
    let Some(ms) = ms else {
        return ApiError::BadRequest(
            "expected the skew in milliseconds as a JSON integer, e.g. -250".into(),
        )
        .into_response();
    };
    node.control(Control::ClockSkew(ms)).await;
    admin_state(&node).await
}

async fn admin_state(node: &NodeHandle) -> Response {
    match view_of(node).await {
        Ok(v) => axum::Json(json!({
            "partitioned": v.members.iter().filter(|m| m.partitioned).map(|m| m.id).collect::<Vec<_>>(),
            "clock_skew_ms": v.clock_skew_ms,
        }))
        .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn not_found() -> Response {
    let body = json!({"error": "not_found", "message": "no such endpoint"});
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>ringstore</title>\
<h1>ringstore</h1><p>This node is running, but the web page has not been built. \
Build it with <code>./scripts/build-web</code> (or start everything with \
<code>./scripts/run</code>), or point the node at a built page with <code>--www DIR</code>.</p>\
<p>The node's API is here: <a href=/cluster>/cluster</a>, <a href=/health>/health</a>, \
<a href=/metrics>/metrics</a>.</p>";

async fn page_not_built(uri: Uri) -> Response {
    if uri.path() == "/" || uri.path() == "/index.html" {
        Html(NOT_BUILT).into_response()
    } else {
        not_found().await
    }
}

/// The node's routes. The admin endpoints exist only with fault injection on (else 404).
pub fn router(node: NodeHandle, www: Option<PathBuf>) -> Router {
    let mut app = Router::new()
        .route("/kv", any(empty_key))
        .route("/kv/", any(empty_key))
        .route("/kv/{*key}", get(get_kv).put(put_kv).delete(delete_kv))
        .route("/replica/{*key}", get(replica))
        .route("/cluster", get(cluster))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route(PEER_PATH, get(sockets::peer_ws))
        .route(ringstore_core::ui::UI_PATH, get(sockets::ui_ws));
    app = if node.fault_injection {
        app.route("/admin/partition", post(partition))
            .route("/admin/heal", post(heal))
            .route("/admin/clock-skew-ms", post(clock_skew))
            .route("/admin/{*rest}", any(not_found))
    } else {
        app.route("/admin/{*rest}", any(not_found))
    };
    // Values are read with their own bound (`to_bytes` in `put_kv`); other bodies are small.
    let body_limit = axum::extract::DefaultBodyLimit::max(node.value_bytes_max.max(64 << 10));
    let app = app.layer(body_limit).with_state(node);
    let app = match www {
        Some(dir) if dir.join("index.html").is_file() => {
            app.fallback_service(tower_http::services::ServeDir::new(dir))
        }
        _ => app.fallback(page_not_built),
    };
    app.layer(axum::middleware::map_response(served_by_node))
}

/// The header that tells the page it was served by a node (so it connects to the cluster by
/// itself, without probing an endpoint a static server would answer with a 404).
pub const SERVED_BY_HEADER: &str = "x-ringstore-node";

/// The `error` code of a status, for the errors answered without a handler of ours (an
/// unknown path, a method a path does not take, hyper's own parse errors).
pub fn code_of_status(status: u16) -> &'static str {
    match status {
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        413 => "too_large",
        414 => "uri_too_long",
        415 => "unsupported_media_type",
        431 => "headers_too_large",
        501 => "not_implemented",
        505 => "http_version_not_supported",
        s if s >= 500 => "internal",
        _ => "bad_request",
    }
}

/// Marks every response as the node's, and gives every error that has no body of its own (the
/// router's 405, the static files' 404, an extractor's plain-text rejection) the contract's
/// JSON body.
async fn served_by_node(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let mut response = if (status.is_client_error() || status.is_server_error()) && !is_json {
        let (mut parts, _) = response.into_parts();
        let message = status.canonical_reason().unwrap_or("error");
        let body = json!({"error": code_of_status(status.as_u16()), "message": message});
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Response::from_parts(parts, Body::from(body.to_string()))
    } else {
        response
    };
    response
        .headers_mut()
        .insert(SERVED_BY_HEADER, HeaderValue::from_static("1"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_percent_decoded_bytes_within_bounds() {
        let uri: Uri = "/kv/user%20123%2Fx%FF".parse().unwrap();
        assert_eq!(key_of(&uri, "/kv/").unwrap(), b"user 123/x\xff".to_vec());
        let empty: Uri = "/kv/".parse().unwrap();
        assert!(matches!(
            key_of(&empty, "/kv/"),
            Err(ApiError::BadRequest(_))
        ));
        let long: Uri = format!("/kv/{}", "a".repeat(1025)).parse().unwrap();
        assert!(key_of(&long, "/kv/").is_err());
        let max: Uri = format!("/kv/{}", "a".repeat(1024)).parse().unwrap();
        assert_eq!(key_of(&max, "/kv/").unwrap().len(), 1024);
    }

    #[test]
    fn bad_percent_escapes_are_refused_not_taken_literally() {
        for bad in ["/kv/%ZZbad", "/kv/x%", "/kv/x%4", "/kv/%%41"] {
            let uri: Uri = bad.parse().unwrap();
            assert!(
                matches!(key_of(&uri, "/kv/"), Err(ApiError::BadRequest(_))),
                "{bad}"
            );
        }
        let escaped: Uri = "/kv/%25ZZbad".parse().unwrap();
        assert_eq!(key_of(&escaped, "/kv/").unwrap(), b"%ZZbad".to_vec());
    }

    #[test]
    fn the_query_takes_a_count_or_a_level_once() {
        assert_eq!(consistency_of(None, "w"), Ok(None));
        assert_eq!(
            consistency_of(Some("w=3"), "w"),
            Ok(Some(Consistency::Count(3)))
        );
        assert_eq!(
            consistency_of(Some("consistency=QUORUM"), "r"),
            Ok(Some(Consistency::Quorum))
        );
        assert!(consistency_of(Some("r=2"), "w").is_err(), "r on a write");
        assert!(consistency_of(Some("w=two"), "w").is_err());
        assert!(consistency_of(Some("consistency=2"), "w").is_err());
        assert!(consistency_of(Some("w=1&consistency=all"), "w").is_err());
    }

    #[test]
    fn node_id_lists_take_numbers_and_names() {
        assert_eq!(node_ids(b"[2, \"n3\"]"), Ok(vec![NodeId(2), NodeId(3)]));
        assert!(node_ids(b"[\"x\"]").is_err());
        assert!(node_ids(b"{}").is_err());
        assert!(node_ids(b"[-1]").is_err());
    }
}
