//! The UI socket (`/ws/ui`, issue 8) on real `ringstore node` processes on 127.0.0.1, with a
//! tokio-tungstenite client: the snapshot first, updates, client commands, fault commands with
//! and without `--allow-fault-injection`, bad frames, the per-connection bound on commands,
//! the aggregation bound, and a page that never reads.

use futures_util::{SinkExt, StreamExt};
use ringstore_core::NodeId;
use ringstore_core::node::Consistency;
use ringstore_core::ui::{
    Answer, Command, CommandError, ErrorCode, MESSAGES_PER_UPDATE, Snapshot, ToNode, ToPage,
    UI_PATH, UiFrame, Update,
};
use ringstore_tests::cluster::{Cluster, wait_until};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long any one frame may take to come.
const FRAME_WAIT: Duration = Duration::from_secs(10);

/// A page's end of one UI socket.
struct Page {
    ws: Ws,
    next_id: u32,
    /// Updates received while waiting for replies.
    updates: Vec<Update>,
}

impl Page {
    /// Connects to node `addr` and reads its snapshot.
    async fn open(addr: &str) -> (Page, Snapshot, usize) {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}{UI_PATH}"))
            .await
            .expect("the UI socket upgrade");
        let mut page = Page {
            ws,
            next_id: 1,
            updates: Vec::new(),
        };
        let (first, bytes) = page.frame().await;
        match first {
            ToPage::Snapshot(s) => (page, *s, bytes),
            other => panic!("the first frame is not a snapshot: {other:?}"),
        }
    }

    /// The next UI frame, decoded, with its size.
    async fn frame(&mut self) -> (ToPage, usize) {
        loop {
            let msg = tokio::time::timeout(FRAME_WAIT, self.ws.next())
                .await
                .expect("a frame in time")
                .expect("the socket open")
                .expect("a WebSocket message");
            match msg {
                Message::Binary(b) => {
                    return (ToPage::decode(&b).expect("a valid UI frame"), b.len());
                }
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("unexpected message {other:?}"),
            }
        }
    }

    /// The next update (replies in between are a failure).
    async fn update(&mut self) -> (Update, usize) {
        match self.frame().await {
            (ToPage::Update(u), n) => (*u, n),
            (other, _) => panic!("expected an update, got {other:?}"),
        }
    }

    async fn send(&mut self, id: u32, command: Command) {
        let frame = ToNode::Command { id, command }
            .encode()
            .expect("a command frame");
        self.ws.send(Message::binary(frame)).await.expect("sent");
    }

    /// The reply to command `id`, keeping the updates that come first.
    async fn reply(&mut self, id: u32) -> Result<Answer, CommandError> {
        loop {
            match self.frame().await.0 {
                ToPage::Reply { id: got, result } if got == id => return result,
                ToPage::Reply { id: got, result } => {
                    panic!("reply to {got} while waiting for {id}: {result:?}")
                }
                ToPage::Update(u) => self.updates.push(*u),
                ToPage::Snapshot(_) => panic!("a second snapshot"),
            }
        }
    }

    /// Sends `command` and waits for its reply.
    async fn run(&mut self, command: Command) -> Result<Answer, CommandError> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(id, command).await;
        self.reply(id).await
    }
}

fn put(key: &str, value: &str) -> Command {
    Command::Put {
        key: key.into(),
        value: value.into(),
        consistency: None,
    }
}

fn get(key: &str) -> Command {
    Command::Get {
        key: key.into(),
        consistency: None,
    }
}

fn code(r: &Result<Answer, CommandError>) -> Option<ErrorCode> {
    r.as_ref().err().map(|e| e.code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_comes_first_then_updates_and_client_commands_work() {
    let c = tokio::task::spawn_blocking(|| Cluster::start(3, &[]))
        .await
        .expect("the cluster");
    let (mut page, snap, snapshot_bytes) = Page::open(c.addr(1)).await;
    assert_eq!(snap.hello.node, NodeId(1));
    assert_eq!(snap.hello.address, c.addr(1));
    assert!(snap.hello.fault_injection);
    let mut ids: Vec<u32> = snap.state.members.iter().map(|m| m.id.0).collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 2, 3]);
    for m in &snap.state.members {
        assert_eq!(m.address, c.addr(m.id.0), "member {}'s address", m.id);
        assert!(m.in_ring && m.tokens > 0 && !m.partitioned, "{m:?}");
    }
    assert_eq!((snap.state.n, snap.state.w, snap.state.r), (3, 2, 2));
    let tokens: u32 = snap.state.members.iter().map(|m| m.tokens).sum();
    assert_eq!(snap.ring.len(), tokens as usize);

    // Updates come every UPDATE_MS.
    let started = Instant::now();
    let mut update_bytes = Vec::new();
    for _ in 0..8 {
        let (u, n) = page.update().await;
        assert_eq!(u.state.members.len(), 3);
        assert!(u.ring.is_none(), "the ring did not change");
        update_bytes.push(n);
    }
    let rate = 8.0 / started.elapsed().as_secs_f64();
    update_bytes.sort_unstable();
    println!(
        "3 nodes: snapshot {snapshot_bytes} bytes, updates {}..{} bytes (median {}), {rate:.1} updates/s",
        update_bytes[0], update_bytes[7], update_bytes[4]
    );
    assert!((2.0..6.0).contains(&rate), "{rate} updates/s");

    // A put through the socket, read back through it and over HTTP at another node.
    let written = page.run(put("user123", "Alice")).await;
    let Ok(Answer::Written { acks, writer, .. }) = written else {
        panic!("put: {written:?}");
    };
    assert!(acks >= 2);
    assert_eq!(writer, NodeId(1));
    let read = page.run(get("user123")).await;
    assert!(
        matches!(&read, Ok(Answer::Found { value, value_bytes: 5, .. }) if value == b"Alice"),
        "{read:?}"
    );
    let http = c.client(2).get(b"user123", "r=3").expect("HTTP GET");
    assert_eq!((http.status, http.body.as_slice()), (200, &b"Alice"[..]));

    // The HTTP API's bounds and codes.
    assert_eq!(
        code(&page.run(put("", "x")).await),
        Some(ErrorCode::BadRequest)
    );
    let long = "k".repeat(1025);
    assert_eq!(
        code(&page.run(get(&long)).await),
        Some(ErrorCode::BadRequest)
    );
    let w4 = Command::Put {
        key: b"k".to_vec(),
        value: b"v".to_vec(),
        consistency: Some(Consistency::Count(4)),
    };
    assert_eq!(code(&page.run(w4).await), Some(ErrorCode::BadRequest));
    let missing = page.run(get("nobody")).await;
    assert_eq!(missing, Ok(Answer::NotFound { deleted_ts: None }));
    let deleted = page
        .run(Command::Delete {
            key: b"user123".to_vec(),
            consistency: None,
        })
        .await;
    let Ok(Answer::Written { ts, .. }) = deleted else {
        panic!("delete: {deleted:?}");
    };
    let gone = page.run(get("user123")).await;
    assert_eq!(
        gone,
        Ok(Answer::NotFound {
            deleted_ts: Some(ts)
        })
    );
    // The socket's own requests show in the node's request metrics, as HTTP ones do.
    let puts = c
        .metric(1, "ringstore_requests_total", "op=\"put\",result=\"ok\"")
        .expect("metrics");
    assert!(puts >= 1.0, "{puts}");
}
