//! The node's two WebSocket endpoints: `/ws/peer` (nodes only, bounded until the handshake
//! completes) and `/ws/ui` (the cluster's own pages and listed origins; see
//! [`crate::origin`]).

use super::{ApiError, view_of};
use crate::origin;
use crate::peer::{FRAME_BYTES_MAX, READ_BUFFER_BYTES, inbound};
use crate::runtime::NodeHandle;
use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::info;

/// The upgrade of a peer connection (`/ws/peer`). Done here rather than by axum's
/// `WebSocketUpgrade` so that the socket under the WebSocket layer can be bounded until the
/// handshake completes ([`inbound::PreAuthLimit`]). A request with an `Origin` is a web page's
/// and is refused; past [`inbound::PENDING_HANDSHAKES_MAX`] handshakes in progress, one more is
/// answered `503 overloaded`.
pub(super) async fn peer_ws(
    State(node): State<NodeHandle>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    mut req: axum::extract::Request,
) -> Response {
    if req.headers().contains_key(header::ORIGIN) {
        return ApiError::ForbiddenOrigin(
            "the peer socket is for nodes; web pages may not open it".into(),
        )
        .into_response();
    }
    let upgrade = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>();
    let headers = req.headers();
    let has = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    let key = headers.get(header::SEC_WEBSOCKET_KEY).cloned();
    let (Some(key), Some(upgrade)) = (key, upgrade) else {
        return ApiError::BadRequest("expected a WebSocket upgrade".into()).into_response();
    };
    if !has(header::UPGRADE, "websocket")
        || !has(header::CONNECTION, "upgrade")
        || !has(header::SEC_WEBSOCKET_VERSION, "13")
    {
        return ApiError::BadRequest("expected a WebSocket (version 13) upgrade".into())
            .into_response();
    }
    let Ok(pending) = node.peer_ctx.pending_handshakes.clone().try_acquire_owned() else {
        node.metrics.handshake_refused("too_many_pending");
        return ApiError::Overloaded(inbound::PENDING_HANDSHAKES_MAX).into_response();
    };
    let ctx = node.peer_ctx.clone();
    let peers = node.peers.clone();
    let control = node.control_sender();
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            return;
        };
        let io = inbound::PreAuthLimit::new(
            hyper_util::rt::TokioIo::new(upgraded),
            inbound::PRE_AUTH_BYTES_MAX,
        );
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES)
            .max_message_size(Some(FRAME_BYTES_MAX))
            .max_frame_size(Some(FRAME_BYTES_MAX));
        let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
        inbound::serve(ws, remote, ctx, peers, control, pending, |ws| {
            ws.get_ref().lift();
        })
        .await;
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// The upgrade of a page's connection (`/ws/ui`), if its origin may have one (see
/// [`crate::origin`]); else `403 forbidden_origin`.
pub(super) async fn ui_ws(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("(not ASCII)"));
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let mut addresses = vec![node.address.clone()];
    let mut verdict = origin::check(origin, host, &addresses, &node.ui_allow_origins);
    if matches!(verdict, origin::Verdict::Refused(_))
        && let Ok(view) = view_of(&node).await
    {
        // A page served by another member of the cluster.
        addresses.extend(view.members.iter().map(|m| m.address.clone()));
        verdict = origin::check(origin, host, &addresses, &node.ui_allow_origins);
    }
    match verdict {
        origin::Verdict::Refused(why) => {
            info!("{}: refused a UI socket: {why}", node.id);
            ApiError::ForbiddenOrigin(why).into_response()
        }
        origin::Verdict::NoOrigin | origin::Verdict::Allowed => {
            crate::ui_socket::upgrade(node, ws).await
        }
    }
}
