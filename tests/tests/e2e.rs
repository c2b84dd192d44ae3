//! End-to-end tests on real `ringstore node` processes on 127.0.0.1: a kill -9
//! and a restart healed by hinted handoff and anti-entropy, a partition and its heal, a join
//! that streams its ranges, kill -9 under a synced write load, bad input of every kind, and
//! the demo. Each test runs its own cluster; every wait is bounded (see `cluster::wait_until`).
//!
//! Nodes listen on port 0 (the harness reads `DIR/address`), with the intervals shortened by
//! flags (100 ms gossip, 1 s to Dead, 300 ms anti-entropy, 200 ms hint replay). A failed wait
//! reports what it waited for and the tail of every node's log. The tests: 2,000 keys at W=2 on
//! 5 nodes, kill -9 of one, every key read at R=2; writes while it is down become hints; its
//! data directory refuses another id; it restarts, hints are handed back, it holds every write
//! it missed, and every key reads from every node at R=1. A partition through the admin API
//! (`/cluster` shows it; the isolated node answers `503 quorum_unavailable` with
//! `needed`/`got`), a heal, convergence. A sixth node joins and holds, by streaming alone (its
//! anti-entropy off), every key its ranges gained. kill -9 under a write load at W=N=3 with
//! `--sync always` and no repair: the restarted node holds every acknowledged write (with
//! `--sync never` the same test fails: it was checked). Bad input (an oversize value, an empty
//! or over-long key, bad parameters, garbage instead of a handshake, peers with a wrong or no
//! secret, garbage after a valid handshake) gets the contract's errors or a closed connection
//! with a log line, and the node keeps serving. The demo forms a cluster, serves the page and
//! stops every node on SIGTERM. nextest runs these one at a time (`.config/nextest.toml`); the
//! binary is the one the workspace build made (`target/<profile>/ringstore`), rebuilt first if
//! older than its sources.

use ringstore_node::client::Client;
use ringstore_tests::cluster::{ProcessCluster, parallel, wait_until};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Writes every `(key, value)` through the coordinators in turn (4 client threads); returns
/// each key's acknowledged timestamp, panicking on any failure.
fn put_all(
    c: &ProcessCluster,
    kvs: &[(String, String)],
    via: &[u32],
    query: &str,
) -> BTreeMap<String, u64> {
    let indexed: Vec<(usize, &(String, String))> = kvs.iter().enumerate().collect();
    let clients: Vec<Client> = via.iter().map(|&id| c.client(id)).collect();
    let results = parallel(&indexed, 4, |(i, (k, v))| {
        let client = &clients[i % clients.len()];
        let reply = client.put(k.as_bytes(), v.as_bytes(), query);
        (k.clone(), reply)
    });
    let mut acked = BTreeMap::new();
    for (k, reply) in results {
        let reply = reply.unwrap_or_else(|e| panic!("PUT {k}: {e:#}\n{}", c.logs()));
        assert_eq!(
            reply.status,
            200,
            "PUT {k}: {}\n{}",
            String::from_utf8_lossy(&reply.body),
            c.logs()
        );
        acked.insert(k, reply.timestamp().expect("a write's timestamp"));
    }
    acked
}

/// Reads every key through every node of `via` with `query`; returns what did not read back
/// as `expected` (key, node, what was seen).
fn mismatches(
    c: &ProcessCluster,
    expected: &BTreeMap<String, String>,
    via: &[u32],
    query: &str,
) -> Vec<String> {
    let keys: Vec<(&String, &String)> = expected.iter().collect();
    let mut bad = Vec::new();
    for &id in via {
        let client = c.client(id);
        let found = parallel(&keys, 4, |(k, v)| match client.get(k.as_bytes(), query) {
            Ok(r) if r.status == 200 && r.body == v.as_bytes() => None,
            Ok(r) => Some(format!(
                "{k} via n{id}: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            )),
            Err(e) => Some(format!("{k} via n{id}: {e}")),
        });
        bad.extend(found.into_iter().flatten());
    }
    bad
}

fn post(c: &ProcessCluster, id: u32, path: &str, body: &str) {
    let reply = c
        .client(id)
        .request("POST", path, Some(body.as_bytes()))
        .expect("an admin request");
    assert_eq!(reply.status, 200, "POST {path} on n{id}: {reply:?}");
}

fn hints_held(c: &ProcessCluster, id: u32) -> anyhow::Result<u64> {
    let v = c.view(id)?;
    Ok(v["hints_held"]
        .as_object()
        .map(|o| o.values().filter_map(|n| n.as_u64()).sum())
        .unwrap_or(0))
}

/// Whether node `id`'s own data store holds `key` at `ts` or newer.
fn holds(c: &ProcessCluster, id: u32, key: &str, ts: u64) -> anyhow::Result<bool> {
    let reply = c.client(id).request(
        "GET",
        &format!(
            "/replica/{}",
            ringstore_node::client::encode_key(key.as_bytes())
        ),
        None,
    )?;
    let j = reply.json()?;
    Ok(j["found"] == true && j["timestamp"].as_u64().is_some_and(|t| t >= ts))
}

#[test]
fn a_node_killed_with_kill_9_is_healed_by_hinted_handoff_and_anti_entropy() {
    let mut c = ProcessCluster::start(5, &[]);
    let mut expected: BTreeMap<String, String> = (0..2000)
        .map(|i| (format!("key{i:04}"), format!("first-{i}")))
        .collect();
    let kvs: Vec<(String, String)> = expected.clone().into_iter().collect();
    put_all(&c, &kvs, &[1, 2, 3, 4, 5], "w=2");

    c.kill9(3);
    let bad = mismatches(&c, &expected, &[1], "r=2");
    assert!(
        bad.is_empty(),
        "{} keys did not read at R=2 with n3 killed: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );

    // Once the others suspect n3, writes for its ranges go to stand-ins, as hints.
    for id in [1, 2, 4, 5] {
        wait_until(
            &c,
            &format!("n{id} no longer believes n3 alive"),
            Duration::from_secs(15),
            || Ok(c.state_of(id, 3)? != "alive"),
        );
    }
    let updates: Vec<(String, String)> = (0..2000)
        .step_by(2)
        .map(|i| (format!("key{i:04}"), format!("second-{i}")))
        .chain((0..300).map(|i| (format!("new{i:03}"), format!("while-down-{i}"))))
        .collect();
    let acked = put_all(&c, &updates, &[1, 2, 4, 5], "w=2");
    expected.extend(updates.iter().cloned());
    let held: u64 = [1, 2, 4, 5]
        .iter()
        .map(|&id| hints_held(&c, id).unwrap_or(0))
        .sum();
    assert!(
        held > 0,
        "no node holds a hint for n3 after {} writes",
        updates.len()
    );

    // The data directory remembers its node: another id is refused.
    let dir = c.nodes[&3].dir.display().to_string();
    let refused = c.run_to_end(&[
        "node",
        "--id",
        "7",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &dir,
    ]);
    assert!(!refused.status.success(), "a second identity was accepted");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("refusing to start it as n7"), "{stderr}");

    c.restart(3);
    c.wait_formed(&[1, 2, 3, 4, 5]);
    wait_until(
        &c,
        "every hint handed back to n3",
        Duration::from_secs(60),
        || {
            for id in [1, 2, 4, 5] {
                if hints_held(&c, id)? > 0 {
                    return Ok(false);
                }
            }
            Ok(true)
        },
    );
    // n3 itself holds every write made while it was down, for the keys it replicates.
    let ring = c.ring(3).expect("n3's ring");
    let mine: Vec<(&String, &u64)> = acked
        .iter()
        .filter(|(k, _)| ProcessCluster::replicas(&ring, k.as_bytes(), 3).contains(&3))
        .collect();
    assert!(!mine.is_empty());
    wait_until(
        &c,
        "n3 holds every write made while it was down",
        Duration::from_secs(60),
        || {
            let missing = parallel(&mine, 4, |(k, ts)| !holds(&c, 3, k, **ts).unwrap_or(false));
            Ok(!missing.contains(&true))
        },
    );
    let replayed: f64 = [1, 2, 4, 5]
        .iter()
        .map(|&id| {
            c.metric(id, "ringstore_hints_replayed_total", "")
                .unwrap_or(0.0)
        })
        .sum();
    assert!(replayed > 0.0, "no hint replayed");
    assert!(c.log(3).contains("restarted") || c.log(1).contains("n3 restarted"));

    wait_until(
        &c,
        "every key reads its newest value from every node at R=1",
        Duration::from_secs(60),
        || {
            let bad = mismatches(&c, &expected, &[1, 2, 3, 4, 5], "r=1");
            if bad.is_empty() {
                Ok(true)
            } else {
                anyhow::bail!(
                    "{} reads differ, e.g. {:?}",
                    bad.len(),
                    &bad[..bad.len().min(3)]
                )
            }
        },
    );
}

#[test]
fn a_partition_through_the_admin_api_heals_and_converges() {
    let c = ProcessCluster::start(5, &[]);
    for id in 1..=4 {
        post(&c, id, "/admin/partition", "[5]");
    }
    post(&c, 5, "/admin/partition", "[1, 2, 3, \"n4\"]");
    for id in 1..=4 {
        wait_until(
            &c,
            &format!("n{id} sees n5 cut off"),
            Duration::from_secs(15),
            || Ok(c.state_of(id, 5)? != "alive"),
        );
    }
    let v = c.view(1).expect("n1's view");
    let cut: Vec<u64> = v["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["partitioned"] == true)
        .filter_map(|m| m["id"].as_u64())
        .collect();
    assert_eq!(cut, vec![5], "/cluster on n1 shows the partition");

    let kvs: Vec<(String, String)> = (0..300)
        .map(|i| (format!("p{i:03}"), format!("during-{i}")))
        .collect();
    let acked = put_all(&c, &kvs, &[1, 2, 3, 4], "w=2");
    // The isolated side cannot gather a quorum: the contract's 503.
    wait_until(
        &c,
        "n5 sees everyone cut off",
        Duration::from_secs(15),
        || Ok((1..=4).all(|id| c.state_of(5, id).is_ok_and(|s| s != "alive"))),
    );
    let lonely = c
        .client(5)
        .put(b"lonely", b"v", "w=2")
        .expect("a PUT to n5");
    assert_eq!(lonely.status, 503, "{lonely:?}");
    let j = lonely.json().expect("a JSON error");
    assert_eq!(j["error"], "quorum_unavailable");
    assert_eq!(j["needed"], 2);
    assert!(j["got"].as_u64().is_some_and(|g| g < 2), "{j}");

    for id in 1..=5 {
        post(&c, id, "/admin/heal", "");
    }
    c.wait_formed(&[1, 2, 3, 4, 5]);
    let ring = c.ring(5).expect("n5's ring");
    let mine: Vec<(&String, &u64)> = acked
        .iter()
        .filter(|(k, _)| ProcessCluster::replicas(&ring, k.as_bytes(), 3).contains(&5))
        .collect();
    assert!(!mine.is_empty());
    wait_until(
        &c,
        "n5 holds every write made during the partition",
        Duration::from_secs(60),
        || {
            let missing = parallel(&mine, 4, |(k, ts)| !holds(&c, 5, k, **ts).unwrap_or(false));
            Ok(!missing.contains(&true))
        },
    );
    let expected: BTreeMap<String, String> = kvs.into_iter().collect();
    wait_until(
        &c,
        "every key reads from every node at R=1",
        Duration::from_secs(30),
        || Ok(mismatches(&c, &expected, &[1, 2, 3, 4, 5], "r=1").is_empty()),
    );
}

#[test]
fn a_sixth_node_joins_and_streams_the_ranges_it_gains() {
    let mut c = ProcessCluster::start(5, &[]);
    let kvs: Vec<(String, String)> = (0..1000)
        .map(|i| (format!("j{i:04}"), format!("value-{i}")))
        .collect();
    let acked = put_all(&c, &kvs, &[1, 2, 3, 4, 5], "w=3");
    let seed = c.addr(1).to_string();
    // Anti-entropy off on the newcomer: what it holds came by streaming.
    c.spawn(6, Some(&seed), &["--anti-entropy-interval-ms", "0"]);
    c.wait_formed(&[1, 2, 3, 4, 5, 6]);
    let ring = c.ring(6).expect("n6's ring");
    let gained: Vec<(&String, &u64)> = acked
        .iter()
        .filter(|(k, _)| ProcessCluster::replicas(&ring, k.as_bytes(), 3).contains(&6))
        .collect();
    assert!(
        gained.len() > 100,
        "n6 gained only {} of 1000 keys",
        gained.len()
    );
    let missing: Vec<&String> = parallel(&gained, 4, |(k, ts)| {
        (!holds(&c, 6, k, **ts).unwrap_or(false)).then_some(*k)
    })
    .into_iter()
    .flatten()
    .collect();
    assert!(
        missing.is_empty(),
        "n6 lacks {} streamed keys, e.g. {:?}\n{}",
        missing.len(),
        &missing[..missing.len().min(5)],
        c.logs()
    );
    let streamed = c
        .metric(6, "ringstore_stream_keys_total", "")
        .expect("n6's metrics");
    assert!(
        streamed >= gained.len() as f64,
        "streamed {streamed} keys for {} gained",
        gained.len()
    );
    assert!(c.log(6).contains("n6: joined the ring"));
    let expected: BTreeMap<String, String> = kvs.into_iter().collect();
    assert_eq!(mismatches(&c, &expected, &[6], "r=2"), Vec::<String>::new());
}

#[test]
fn kill_9_under_a_synced_write_load_loses_no_acknowledged_write() {
    // W = N = 3: an acknowledged write is durable on every replica, n2 included. No repair
    // can mask a loss: anti-entropy is off, there are no stand-ins and nothing reads.
    let mut c = ProcessCluster::start(3, &["--sync", "always", "--anti-entropy-interval-ms", "0"]);
    let (a1, a3) = (c.addr(1).to_string(), c.addr(3).to_string());
    let stop_at = Instant::now() + Duration::from_millis(2500);
    let kill_at = Instant::now() + Duration::from_millis(800);
    let writers: Vec<std::thread::JoinHandle<Vec<(String, u64)>>> = (0..4)
        .map(|t| {
            let addr = if t % 2 == 0 { a1.clone() } else { a3.clone() };
            std::thread::spawn(move || {
                let client = Client::with_timeout(&addr, Duration::from_secs(5));
                let mut acked = Vec::new();
                let mut i = 0;
                while Instant::now() < stop_at {
                    let key = format!("load-{t}-{i}");
                    i += 1;
                    if let Ok(r) = client.put(key.as_bytes(), b"payload", "w=3")
                        && r.status == 200
                    {
                        acked.push((key, r.timestamp().unwrap_or(0)));
                    }
                }
                acked
            })
        })
        .collect();
    std::thread::sleep(kill_at.saturating_duration_since(Instant::now()));
    c.kill9(2);
    let acked: Vec<(String, u64)> = writers
        .into_iter()
        .flat_map(|w| w.join().expect("a writer"))
        .collect();
    assert!(
        acked.len() > 50,
        "only {} writes acknowledged before the kill",
        acked.len()
    );
    c.restart(2);
    let lost: Vec<String> = parallel(&acked, 4, |(k, ts)| {
        (!holds(&c, 2, k, *ts).unwrap_or(false)).then(|| k.clone())
    })
    .into_iter()
    .flatten()
    .collect();
    assert!(
        lost.is_empty(),
        "n2 lost {} of {} acknowledged writes, e.g. {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
}

#[test]
fn bad_input_gets_the_contract_errors_and_the_node_keeps_serving() {
    let c = ProcessCluster::start(
        3,
        &["--cluster-secret", "s3cret", "--value-bytes-max", "65536"],
    );
    let client = c.client(1);
    let error = |r: &ringstore_node::client::Reply| r.error_code().unwrap_or_default();

    let big = vec![b'x'; 65_537];
    let r = client.put(b"big", &big, "").unwrap();
    assert_eq!((r.status, error(&r)), (413, "too_large".into()), "{r:?}");
    let r = client.request("PUT", "/kv/", Some(b"v")).unwrap();
    assert_eq!((r.status, error(&r)), (400, "bad_request".into()), "{r:?}");
    let r = client.request("GET", "/kv/", None).unwrap();
    assert_eq!((r.status, error(&r)), (400, "bad_request".into()));
    let long = vec![b'k'; 1025];
    assert_eq!(client.get(&long, "").unwrap().status, 400);
    for query in [
        "w=banana",
        "consistency=most",
        "w=9",
        "r=2",
        "w=1&consistency=all",
    ] {
        let r = client.put(b"k", b"v", query).unwrap();
        assert_eq!(
            (r.status, error(&r)),
            (400, "bad_request".into()),
            "{query}: {r:?}"
        );
    }
    let r = client.get(b"never-written", "").unwrap();
    assert_eq!((r.status, error(&r)), (404, "not_found".into()));
    let r = client
        .request("POST", "/admin/clock-skew-ms", Some(b"\"soon\""))
        .unwrap();
    assert_eq!(r.status, 400);

    let addr = c.addr(1).to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use futures_util::{SinkExt, StreamExt};
        use ringstore_node::peer::PeerContext;
        use ringstore_node::peer::handshake::{HandshakeError, Secret};
        use ringstore_node::peer::link::dial;
        use tokio_tungstenite::tungstenite::Message;

        // Garbage instead of a handshake: refused and closed.
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws/peer"))
            .await
            .unwrap();
        let hello = ws.next().await.unwrap().unwrap();
        assert!(matches!(hello, Message::Binary(_)), "{hello:?}");
        ws.send(Message::Binary(
            b"\x00\xffnot a frame at all".to_vec().into(),
        ))
        .await
        .unwrap();
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Close(_) = m {
                    return;
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "the garbage connection stayed open");

        let ctx = |secret: Option<&str>| PeerContext {
            me: ringstore_core::NodeId(99),
            address: "127.0.0.1:9".into(),
            n: 3,
            secret: Secret::new(secret),
            metrics: std::sync::Arc::new(ringstore_node::metrics::Metrics::new()),
            pending_handshakes: std::sync::Arc::new(tokio::sync::Semaphore::new(1)),
        };
        // A peer with the wrong secret, or none, is refused.
        for secret in [Some("wrong"), None] {
            match dial(&ctx(secret), &addr, None).await {
                Err(HandshakeError::Refused(reason)) => {
                    assert!(reason.contains("secret"), "{reason}")
                }
                Err(e) => panic!("refused for the wrong reason: {e}"),
                Ok(_) => panic!("a peer without the secret was accepted"),
            }
        }
        // A peer with the secret that then sends an undecodable frame is disconnected.
        let (ws, id) = dial(&ctx(Some("s3cret")), &addr, None)
            .await
            .expect("the right secret");
        assert_eq!(id, ringstore_core::NodeId(1));
        let (mut sink, mut stream) = ws.split();
        sink.send(Message::Binary(b"RS\x03\x00garbage".to_vec().into()))
            .await
            .unwrap();
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(m)) = stream.next().await {
                if let Message::Close(_) = m {
                    return;
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "the connection with a bad frame stayed open"
        );
    });
    let log = c.log(1);
    assert!(
        log.contains("refused a peer connection"),
        "no refusal logged"
    );
    assert!(
        log.contains("wrong or missing cluster secret"),
        "no secret refusal logged"
    );
    assert!(log.contains("undecodable frame"), "no bad frame logged");
    assert!(c.metric(1, "ringstore_peer_bad_frames_total", "").unwrap() >= 1.0);
    assert!(
        c.metric(1, "ringstore_peer_handshakes_refused_total", "bad_secret")
            .unwrap()
            >= 2.0
    );

    // And it still serves, with its real peers still connected.
    let r = client.put(b"after", b"fine", "w=3").unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let r = c.client(2).get(b"after", "r=3").unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"fine"[..]));
    assert_eq!(client.request("GET", "/health", None).unwrap().status, 200);
    c.wait_formed(&[1, 2, 3]);
}

#[test]
fn the_demo_forms_a_cluster_prints_the_page_and_stops_every_node() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut demo = std::process::Command::new(ringstore_tests::cluster::binary())
        .args(["demo", "--nodes", "3", "--base-port", "0", "--data-dir"])
        .arg(dir.path())
        .arg("--node-arg=--gossip-interval-ms=100")
        .arg("--node-arg=--memtable-bytes-max=4194304")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = demo.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut url = None;
    let mut pids = Vec::new();
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        if let Some(u) = line.trim().strip_prefix("Open the page:") {
            url = Some(u.trim().to_string());
        }
        if let Some(pid) = line
            .rsplit_once("(pid ")
            .and_then(|(_, p)| p.trim_end_matches(')').parse::<u32>().ok())
        {
            pids.push(pid);
        }
        let done = line.starts_with("Press Ctrl-C");
        seen.push(line);
        if done {
            break;
        }
    }
    let url = url.unwrap_or_else(|| {
        let _ = demo.kill();
        panic!("the demo printed no page URL:\n{}", seen.join("\n"))
    });
    assert_eq!(pids.len(), 3, "{seen:?}");
    let page = Client::new(url.trim_end_matches('/'))
        .request("GET", "/", None)
        .unwrap();
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("ringstore"));
    let status = std::process::Command::new("kill")
        .args(["-TERM", &demo.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while demo.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the demo did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "node process {pid} outlived the demo"
        );
    }
}
