//! A node against hostile input, on real `ringstore node` processes on 127.0.0.1: web pages
//! from other sites, cross-site POSTs, unauthenticated peers that send a lot, malformed HTTP,
//! slow clients. Each test tries a finding as an attacker would and checks what the node does
//! now.
//!
//! What is tried: pages of other sites on `/ws/ui` and any page on `/ws/peer` (refused), the
//! cluster's own pages (by IP, by `localhost`, from another member) and a listed origin (let in);
//! the admin endpoints refusing a text/plain partition, a form-encoded skew and a multipart heal
//! (nothing changed) and taking JSON; 30 unauthenticated sockets each sending 4 MiB of a 16 MiB
//! message, all cut off, the node's RSS grown by under 32 MB, and the 65th handshake in progress
//! refused `503`; JSON bodies for 404 (path and file), 405, 414, 431 and hyper's 400; 400 for
//! bad percent-escapes and a malformed chunk size; the 413 of a 2 MiB value read by Python's
//! `urllib`, 20 times of 20 (it got a broken pipe 12 times of 20 before the node drained refused
//! bodies); a client trickling its headers disconnected.

use futures_util::StreamExt;
use ringstore_core::ui::UI_PATH;
use ringstore_tests::cluster::ProcessCluster;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// One raw HTTP exchange: writes `request` (all of it, as a simple client does before it
/// reads anything), then reads until the node closes or `wait` passes. Returns the status,
/// the JSON body (if any) and the raw response.
fn raw(addr: &str, request: &[u8], wait: Duration) -> (u16, Option<Value>, String) {
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(wait)).expect("a timeout");
    tcp.write_all(request).expect("the request written");
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        match tcp.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
        if complete(&out) {
            break;
        }
    }
    parse(&out)
}

/// Whether `out` holds a whole response (its head and `content-length` bytes of body).
fn complete(out: &[u8]) -> bool {
    let text = String::from_utf8_lossy(out);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let len = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    body.len() >= len
}

fn parse(out: &[u8]) -> (u16, Option<Value>, String) {
    let text = String::from_utf8_lossy(out).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let json = text
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok());
    (status, json, text)
}

fn error_of(json: &Option<Value>) -> String {
    json.as_ref()
        .and_then(|j| j["error"].as_str())
        .unwrap_or("(no JSON error)")
        .to_string()
}

const WAIT: Duration = Duration::from_secs(10);

/// Opens the UI socket of `addr` as a page from `origin` would (`None`: not a browser);
/// returns the refusal's status and JSON body, or `None` if it opened and sent its snapshot.
async fn open_ui(addr: &str, origin: Option<&str>) -> Option<(u16, Option<Value>)> {
    let mut request = format!("ws://{addr}{UI_PATH}")
        .into_client_request()
        .expect("a request");
    if let Some(origin) = origin {
        let value = HeaderValue::from_str(origin).expect("an origin");
        request.headers_mut().insert("origin", value);
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut ws, _)) => {
            let first = tokio::time::timeout(WAIT, ws.next()).await;
            assert!(matches!(first, Ok(Some(Ok(_)))), "no snapshot: {first:?}");
            None
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_ref()
                .and_then(|b| serde_json::from_slice(b).ok());
            Some((status, body))
        }
        Err(e) => panic!("{origin:?}: {e}"),
    }
}

#[test]
fn the_ui_socket_accepts_only_the_clusters_pages_and_listed_origins() {
    // Without fault injection, as in the finding: the page could still put and delete keys.
    let mut c = ProcessCluster::empty();
    c.fault_injection = false;
    c.spawn(1, None, &["--ui-allow-origin", "http://127.0.0.1:8000"]);
    let seed = c.addr(1).to_string();
    c.spawn(2, Some(&seed), &[]);
    c.wait_formed(&[1, 2]);
    let (a1, a2) = (c.addr(1).to_string(), c.addr(2).to_string());
    let port1 = a1.rsplit_once(':').expect("a port").1.to_string();
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    rt.block_on(async {
        // Another site's page: refused with the contract's JSON error.
        for origin in ["https://evil.example", "http://evil.example:80", "null"] {
            let refused = open_ui(&a1, Some(origin)).await;
            let (status, body) = refused.unwrap_or_else(|| panic!("{origin} was let in"));
            assert_eq!(status, 403, "{origin}");
            assert_eq!(error_of(&body), "forbidden_origin", "{origin}: {body:?}");
        }
        // The page a static server serves, not listed on n2: refused there, let in at n1.
        let static_page = Some("http://127.0.0.1:8000");
        assert!(
            open_ui(&a2, static_page).await.is_some(),
            "unlisted origin let in"
        );
        assert_eq!(open_ui(&a1, static_page).await, None, "the listed origin");
        // The page n1 serves, at n1 (by IP or by localhost) and at n2 (another member).
        let own = format!("http://{a1}");
        assert_eq!(open_ui(&a1, Some(&own)).await, None, "the node's own page");
        let localhost = format!("http://localhost:{port1}");
        assert_eq!(open_ui(&a1, Some(&localhost)).await, None, "localhost");
        assert_eq!(open_ui(&a2, Some(&own)).await, None, "a member's page");
        // No Origin: a CLI tool or a test, not a browser.
        assert_eq!(open_ui(&a1, None).await, None, "no Origin");
    });

    // The peer socket is for nodes: any page is refused, its own included.
    let request = format!(
        "GET /ws/peer HTTP/1.1\r\nHost: {a1}\r\nOrigin: http://{a1}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    let (status, body, text) = raw(&a1, request.as_bytes(), WAIT);
    assert_eq!(status, 403, "{text}");
    assert_eq!(error_of(&body), "forbidden_origin");
}

#[test]
fn admin_endpoints_refuse_what_a_cross_site_form_can_send() {
    let c = ProcessCluster::start(1, &[]);
    let addr = c.addr(1).to_string();
    // The finding, as written: text/plain '[3]' to /admin/partition, a form-encoded skew.
    let attempts = [
        ("/admin/partition", "text/plain", "[3]"),
        (
            "/admin/clock-skew-ms",
            "application/x-www-form-urlencoded",
            "-600000",
        ),
        ("/admin/heal", "multipart/form-data; boundary=x", ""),
        ("/admin/clock-skew-ms", "", "-600000"),
    ];
    for (path, content_type, body) in attempts {
        let content_type = if content_type.is_empty() {
            String::new()
        } else {
            format!("Content-Type: {content_type}\r\n")
        };
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{content_type}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (status, json, text) = raw(&addr, request.as_bytes(), WAIT);
        assert_eq!(status, 415, "{path} {content_type}: {text}");
        assert_eq!(error_of(&json), "unsupported_media_type", "{text}");
    }
    let view = c.view(1).expect("the cluster view");
    assert_eq!(view["clock_skew_ms"], 0, "the skew was set: {view}");
    let partitioned = view["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter(|m| m["partitioned"] == true)
        .count();
    assert_eq!(partitioned, 0, "a partition was made: {view}");
    // Declared JSON, as curl -H 'Content-Type: application/json' sends it: applied.
    let request = format!(
        "POST /admin/clock-skew-ms HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json; charset=utf-8\r\n\
         Content-Length: 4\r\n\r\n-250"
    );
    let (status, json, text) = raw(&addr, request.as_bytes(), WAIT);
    assert_eq!(status, 200, "{text}");
    assert_eq!(json.expect("a JSON body")["clock_skew_ms"], -250);
}

/// The node's resident memory, in bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// Upgrades a raw connection to `/ws/peer` and returns it, past the 101.
fn peer_upgrade(addr: &str) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(WAIT)).expect("a timeout");
    let request = format!(
        "GET /ws/peer HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).expect("the upgrade sent");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tcp.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            other => panic!("no upgrade answer: {other:?} after {head:?}"),
        }
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tcp
}

#[test]
fn unauthenticated_peers_cannot_make_the_node_buffer() {
    let c = ProcessCluster::start(1, &["--cluster-secret", "s3cret"]);
    let addr = c.addr(1).to_string();
    let pid = c.pid(1).expect("a running node");
    let before = rss_bytes(pid);
    // 30 strangers, each upgrading to the peer socket and starting a 16 MiB binary message
    // (the peer frame bound) that it sends 4 MiB of, without a handshake.
    const SOCKETS: usize = 30;
    const SENT_BYTES: usize = 4 << 20;
    let mut cut_off = 0;
    let mut sockets = Vec::new();
    for _ in 0..SOCKETS {
        let mut tcp = peer_upgrade(&addr);
        let len: u64 = 16 << 20;
        let mut header = vec![0x82, 0x80 | 127];
        header.extend_from_slice(&len.to_be_bytes());
        header.extend_from_slice(&[1, 2, 3, 4]);
        let mut written = tcp.write_all(&header).is_ok();
        let chunk = vec![0x5au8; 64 << 10];
        let mut sent = 0;
        while written && sent < SENT_BYTES {
            written = tcp.write_all(&chunk).is_ok();
            sent += chunk.len();
        }
        if !written {
            cut_off += 1;
        }
        sockets.push(tcp);
    }
    let after = rss_bytes(pid);
    let grown = after.saturating_sub(before);
    eprintln!(
        "RSS with {SOCKETS} unauthenticated sockets: {} MB before, {} MB after; {cut_off} cut off",
        before >> 20,
        after >> 20
    );
    assert!(grown < 32 << 20, "the node grew by {} MB", grown >> 20);
    // Every one of them is closed by the node long before its message ends (the writes above
    // may all fit in the kernel's buffers, so read: the node closes with an error or a close).
    for mut tcp in sockets {
        let mut buf = [0u8; 4096];
        let closed = loop {
            match tcp.read(&mut buf) {
                Ok(0) | Err(_) => break true,
                Ok(_) => {}
            }
        };
        assert!(closed);
    }
    drop(c);

    // At most PENDING_HANDSHAKES_MAX connections in their handshake at once; one more: 503.
    let c = ProcessCluster::start(1, &["--cluster-secret", "s3cret"]);
    let addr = c.addr(1).to_string();
    let silent: Vec<TcpStream> = (0..ringstore_node::peer::inbound::PENDING_HANDSHAKES_MAX)
        .map(|_| peer_upgrade(&addr))
        .collect();
    let request = format!(
        "GET /ws/peer HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    let (status, json, text) = raw(&addr, request.as_bytes(), WAIT);
    assert_eq!(status, 503, "{text}");
    assert_eq!(error_of(&json), "overloaded");
    // The node still serves its clients.
    let health = c.client(1).request("GET", "/health", None).expect("health");
    assert_eq!(health.status, 200);
    drop(silent);
}

#[test]
fn every_error_is_json_even_those_hyper_answers_itself() {
    let c = ProcessCluster::start(1, &[]);
    let addr = c.addr(1).to_string();
    let host = format!("Host: {addr}\r\n");
    let key = "k".repeat(70_000);
    // Over any head hyper can take in one read into its buffer's spare room (see
    // `READ_BUFFER_BYTES_MAX`): a head a little over the limit may arrive whole and be served.
    let big_header = format!("X-Big: {}\r\n", "b".repeat(1 << 20));
    let cases: Vec<(String, u16, &str)> = vec![
        (
            format!("POST /kv/x HTTP/1.1\r\n{host}Content-Length: 0\r\n\r\n"),
            405,
            "method_not_allowed",
        ),
        (
            format!("GET /no/such/path HTTP/1.1\r\n{host}\r\n"),
            404,
            "not_found",
        ),
        (
            format!("GET /no-such-file.js HTTP/1.1\r\n{host}\r\n"),
            404,
            "not_found",
        ),
        (
            format!("GET /kv/{key} HTTP/1.1\r\n{host}\r\n"),
            414,
            "uri_too_long",
        ),
        (
            format!("GET /health HTTP/1.1\r\n{host}{big_header}\r\n"),
            431,
            "headers_too_large",
        ),
    ];
    for (request, status, code) in cases {
        let (got, json, text) = raw(&addr, request.as_bytes(), WAIT);
        let shown = &text[..text.len().min(300)];
        assert_eq!(got, status, "{shown}");
        assert_eq!(error_of(&json), code, "{shown}");
        assert!(
            json.as_ref().is_some_and(|j| j["message"].is_string()),
            "{shown}"
        );
    }
    // Raw bytes in the path: hyper's 400, with a JSON body.
    let mut request = b"GET /kv/\xff\x01 HTTP/1.1\r\n".to_vec();
    request.extend_from_slice(host.as_bytes());
    request.extend_from_slice(b"\r\n");
    let (got, json, text) = raw(&addr, &request, WAIT);
    assert_eq!(
        (got, error_of(&json).as_str()),
        (400, "bad_request"),
        "{text}"
    );
}

#[test]
fn malformed_requests_get_400() {
    let c = ProcessCluster::start(1, &[]);
    let addr = c.addr(1).to_string();
    let client = c.client(1);
    // Invalid percent-escapes are refused, so %ZZbad and %25ZZbad cannot name one key.
    for path in ["/kv/%ZZbad", "/kv/bad%", "/kv/bad%4", "/replica/%G0"] {
        let reply = client.request("GET", path, None).expect("a reply");
        assert_eq!(reply.status, 400, "{path}");
        assert_eq!(reply.error_code().as_deref(), Some("bad_request"), "{path}");
    }
    let ok = client
        .request("PUT", "/kv/%25ZZbad?w=1", Some(b"v"))
        .expect("a reply");
    assert_eq!(ok.status, 200, "an escaped % is a key byte: {ok:?}");
    let reply = client
        .request("PUT", "/kv/%ZZbad?w=1", Some(b"w"))
        .expect("a reply");
    assert_eq!(reply.status, 400);
    // A malformed chunk size.
    let request = format!(
        "PUT /kv/chunked?w=1 HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n"
    );
    let (status, json, text) = raw(&addr, request.as_bytes(), WAIT);
    assert_eq!(status, 400, "{text}");
    assert_eq!(error_of(&json), "bad_request");
    // A chunked value over the limit is still 413.
    let chunk = vec![b'v'; 1 << 20];
    let mut request = format!(
        "PUT /kv/chunked?w=1 HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..2 {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(&chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let (status, json, text) = raw(&addr, &request, WAIT);
    assert_eq!(
        (status, error_of(&json).as_str()),
        (413, "too_large"),
        "{}",
        &text[..text.len().min(300)]
    );
}

#[test]
fn a_plain_urllib_client_reads_the_413_of_an_oversize_value() {
    let c = ProcessCluster::start(1, &[]);
    let addr = c.addr(1).to_string();
    // Python's urllib writes the whole body before it reads the response: before the node
    // drained refused bodies, it got a broken pipe more often than the 413.
    let script = format!(
        "import urllib.request, urllib.error, json\n\
         got = []\n\
         for _ in range(20):\n\
         \x20   req = urllib.request.Request('http://{addr}/kv/big', data=b'v' * (2 << 20), method='PUT')\n\
         \x20   try:\n\
         \x20       urllib.request.urlopen(req)\n\
         \x20       got.append('200')\n\
         \x20   except urllib.error.HTTPError as e:\n\
         \x20       got.append(str(e.code) + ' ' + json.load(e)['error'])\n\
         \x20   except Exception as e:\n\
         \x20       got.append(type(e).__name__)\n\
         print(json.dumps(got))\n"
    );
    match std::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
    {
        Ok(out) => {
            let got: Vec<String> = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|_| panic!("python3: {}", String::from_utf8_lossy(&out.stderr)));
            assert_eq!(got, vec!["413 too_large".to_string(); 20]);
        }
        Err(e) => eprintln!("no python3 here ({e}): the raw client above stands in for urllib"),
    }
}

#[test]
fn a_client_trickling_its_headers_is_disconnected() {
    let c = ProcessCluster::start(1, &[]);
    let addr = c.addr(1).to_string();
    let mut tcp = TcpStream::connect(&addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("a timeout");
    tcp.write_all(b"GET /health HTTP/1.1\r\n").expect("written");
    let started = Instant::now();
    let limit = ringstore_node::serve::HEADER_READ_TIMEOUT * 3;
    let mut buf = [0u8; 1024];
    let closed = loop {
        // One header line a second: never the blank line that ends the head.
        if tcp.write_all(b"X-Slow: 1\r\n").is_err() {
            break true;
        }
        match tcp.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) | Err(_) if started.elapsed() > limit => break false,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break true,
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(closed, "still open after {:?}", started.elapsed());
}
