//! A local cluster of real `ringstore node` processes on 127.0.0.1, for the end-to-end tests.
//!
//! Every node listens on port 0 (the kernel picks a free port) and the harness reads the bound
//! address from the node's `DIR/address` file, so tests never race for ports. Intervals are
//! shortened with the node's own flags ([`FAST`]) so the cluster converges in seconds. Every
//! wait is a bounded poll that panics with what it waited for and the tail of every node's
//! log; nothing sleeps a fixed time to assert.

use ringstore_core::NodeId;
use ringstore_core::ring::{Ring, Token, key_token};
use ringstore_node::client::Client;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Flags every test node gets: fast gossip (a dead node is suspected in about 1 s), frequent
/// repair and hint replay, a small memtable (a crash's recovery reads less), fault injection.
pub const FAST: &[&str] = &[
    "--gossip-interval-ms",
    "100",
    "--dead-after-ms",
    "1000",
    "--anti-entropy-interval-ms",
    "300",
    "--hint-replay-interval-ms",
    "200",
    "--join-delay-ms",
    "400",
    "--memtable-bytes-max",
    "4194304",
    "--allow-fault-injection",
];

/// The newest modification time of the files under `dir` (recursively).
fn newest_source(dir: &Path) -> std::time::SystemTime {
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return newest;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let t = if path.is_dir() {
            newest_source(&path)
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::SystemTime::UNIX_EPOCH)
        };
        newest = newest.max(t);
    }
    newest
}

/// The `ringstore` binary: `RINGSTORE_BIN` if set; else `target/<profile>/ringstore` next to
/// this test executable, which the workspace's test build (`scripts/test`) has just built.
/// If it is missing or older than the sources it is built from, it is built first, with the
/// tests' profile.
pub fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("RINGSTORE_BIN") {
            return PathBuf::from(p);
        }
        let exe = std::env::current_exe().expect("the test executable's path");
        // target/<profile dir>/deps/<test> -> target/<profile dir>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test executable lives in target/<profile>/deps");
        let bin = profile_dir.join("ringstore");
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let sources = ["core", "native-node", "Cargo.lock"]
            .iter()
            .map(|p| {
                let p = root.join(p);
                if p.is_dir() {
                    newest_source(&p)
                } else {
                    p.metadata()
                        .and_then(|m| m.modified())
                        .unwrap_or(std::time::SystemTime::UNIX_EPOCH)
                }
            })
            .max()
            .unwrap_or(std::time::SystemTime::UNIX_EPOCH);
        let built = bin.metadata().and_then(|m| m.modified()).ok();
        if built.is_none_or(|b| b < sources) {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args([
                    "build",
                    "--profile",
                    "test",
                    "-p",
                    "ringstore-node",
                    "--bin",
                    "ringstore",
                ])
                .arg("--manifest-path")
                .arg(root.join("Cargo.toml"))
                .env(
                    "CARGO_TARGET_DIR",
                    profile_dir.parent().expect("target dir"),
                )
                .status()
                .expect("running cargo build for the ringstore binary");
            assert!(
                status.success(),
                "cargo build of the ringstore binary failed"
            );
        }
        assert!(bin.is_file(), "no ringstore binary at {}", bin.display());
        bin
    })
}

/// Polls `check` every 50 ms until it returns `Ok(true)`, for at most `timeout`; panics with
/// `what`, the last error and the cluster's logs otherwise.
pub fn wait_until(
    cluster: &ProcessCluster,
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> anyhow::Result<bool>,
) {
    let deadline = Instant::now() + timeout;
    let mut last;
    loop {
        match check() {
            Ok(true) => return,
            Ok(false) => last = "not yet".into(),
            Err(e) => last = format!("{e:#}"),
        }
        if Instant::now() > deadline {
            panic!(
                "timed out after {timeout:?} waiting for: {what} (last: {last})\n{}",
                cluster.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One node process.
pub struct NodeProc {
    /// Its id.
    pub id: u32,
    child: Option<Child>,
    /// Its address (`127.0.0.1:port`), valid while it runs.
    pub addr: String,
    /// Its data directory.
    pub dir: PathBuf,
    args: Vec<String>,
}

/// A cluster of node processes, killed when dropped.
pub struct ProcessCluster {
    root: tempfile::TempDir,
    /// The nodes, by id.
    pub nodes: BTreeMap<u32, NodeProc>,
    /// Whether nodes spawned from now on get `--allow-fault-injection` (on by default).
    pub fault_injection: bool,
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        for n in self.nodes.values_mut() {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

fn read_address(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("address")).ok()?;
    let addr = text.trim();
    (!addr.is_empty()).then(|| addr.to_string())
}

impl ProcessCluster {
    /// An empty cluster (no node yet).
    pub fn empty() -> ProcessCluster {
        ProcessCluster {
            root: tempfile::Builder::new()
                .prefix("ringstore-e2e-")
                .tempdir()
                .expect("a temporary directory"),
            nodes: BTreeMap::new(),
            fault_injection: true,
        }
    }

    /// `count` nodes with [`FAST`] and `extra` flags: n1 starts the cluster, the others join
    /// through it; returns once every node sees every other alive in its ring.
    pub fn start(count: u32, extra: &[&str]) -> ProcessCluster {
        let mut c = ProcessCluster::empty();
        c.spawn(1, None, extra);
        let seed = c.addr(1).to_string();
        for id in 2..=count {
            c.spawn(id, Some(&seed), extra);
        }
        let ids: Vec<u32> = (1..=count).collect();
        c.wait_formed(&ids);
        c
    }

    /// Starts node `id` (joining through `join` if given) and waits until it listens.
    pub fn spawn(&mut self, id: u32, join: Option<&str>, extra: &[&str]) {
        let dir = self.root.path().join(format!("n{id}"));
        std::fs::create_dir_all(&dir).expect("the node's directory");
        let mut args: Vec<String> = vec![
            "node".into(),
            "--id".into(),
            id.to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            dir.display().to_string(),
        ];
        let faults = self.fault_injection;
        args.extend(
            FAST.iter()
                .filter(|s| faults || **s != "--allow-fault-injection")
                .map(|s| s.to_string()),
        );
        args.extend(extra.iter().map(|s| s.to_string()));
        if let Some(seed) = join {
            args.extend(["--join".to_string(), seed.to_string()]);
        }
        let node = NodeProc {
            id,
            child: None,
            addr: String::new(),
            dir,
            args,
        };
        self.nodes.insert(id, node);
        self.launch(id);
    }

    fn launch(&mut self, id: u32) {
        let node = self.nodes.get_mut(&id).expect("a known node");
        let _ = std::fs::remove_file(node.dir.join("address"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.join("node.log"))
            .expect("the node's log");
        let child = Command::new(binary())
            .args(&node.args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("starting a ringstore node");
        node.child = Some(child);
        let dir = node.dir.clone();
        let mut addr = None;
        let deadline = Instant::now() + Duration::from_secs(60);
        while addr.is_none() {
            addr = read_address(&dir);
            let exited = self
                .nodes
                .get_mut(&id)
                .and_then(|n| n.child.as_mut())
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                panic!(
                    "n{id} exited ({status}) before it listened\n{}",
                    self.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "n{id} did not listen\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(n) = self.nodes.get_mut(&id) {
            n.addr = addr.unwrap_or_default();
        }
    }

    /// The address of node `id`.
    pub fn addr(&self, id: u32) -> &str {
        &self.nodes[&id].addr
    }

    /// A client of node `id`.
    pub fn client(&self, id: u32) -> Client {
        Client::new(self.addr(id))
    }

    /// The process id of node `id`, while it runs.
    pub fn pid(&self, id: u32) -> Option<u32> {
        self.nodes[&id].child.as_ref().map(Child::id)
    }

    /// The ids of the nodes that run.
    pub fn running(&self) -> Vec<u32> {
        self.nodes
            .values()
            .filter(|n| n.child.is_some())
            .map(|n| n.id)
            .collect()
    }

    /// `kill -9` node `id`: no shutdown, no flush; what was not synced is lost.
    pub fn kill9(&mut self, id: u32) {
        if let Some(mut c) = self.nodes.get_mut(&id).and_then(|n| n.child.take()) {
            c.kill().expect("kill -9");
            let _ = c.wait();
        }
    }

    /// Restarts node `id` with the arguments it was first started with (its data directory
    /// remembers its id, tokens and ring).
    pub fn restart(&mut self, id: u32) {
        self.launch(id);
    }

    /// Runs the binary with `args` to completion (for commands expected to fail fast).
    pub fn run_to_end(&self, args: &[&str]) -> std::process::Output {
        Command::new(binary())
            .args(args)
            .output()
            .expect("running ringstore")
    }

    /// `GET /cluster` of node `id`.
    pub fn view(&self, id: u32) -> anyhow::Result<Value> {
        Client::with_timeout(self.addr(id), Duration::from_secs(3)).cluster()
    }

    /// Waits until every node in `ids` serves and sees exactly `ids`, all alive and in its
    /// ring.
    pub fn wait_formed(&self, ids: &[u32]) {
        let expected: Vec<u64> = ids.iter().map(|&i| u64::from(i)).collect();
        wait_until(
            self,
            &format!("every node of {ids:?} sees all of them alive in its ring"),
            Duration::from_secs(60),
            || {
                for &id in ids {
                    let v = self.view(id)?;
                    let members = v["members"].as_array().cloned().unwrap_or_default();
                    let mut seen: Vec<u64> = members
                        .iter()
                        .filter(|m| m["state"] == "alive" && m["in_ring"] == true)
                        .filter_map(|m| m["id"].as_u64())
                        .collect();
                    seen.sort_unstable();
                    if v["lifecycle"] != "normal" || seen != expected || members.len() != ids.len()
                    {
                        return Ok(false);
                    }
                }
                Ok(true)
            },
        );
    }

    /// What node `observer` says about `subject`: `alive`, `suspect`, `dead`...
    pub fn state_of(&self, observer: u32, subject: u32) -> anyhow::Result<String> {
        let v = self.view(observer)?;
        let members = v["members"].as_array().cloned().unwrap_or_default();
        Ok(members
            .iter()
            .find(|m| m["id"].as_u64() == Some(u64::from(subject)))
            .and_then(|m| m["state"].as_str())
            .unwrap_or("unknown")
            .to_string())
    }

    /// The ring node `id` routes by, rebuilt from `/cluster`.
    pub fn ring(&self, id: u32) -> anyhow::Result<Ring> {
        let v = self.view(id)?;
        let mut members: BTreeMap<NodeId, Vec<Token>> = BTreeMap::new();
        for t in v["ring"].as_array().cloned().unwrap_or_default() {
            let token: u64 = t["token"].as_str().unwrap_or("0").parse()?;
            let node = NodeId(u32::try_from(t["node"].as_u64().unwrap_or(0))?);
            members.entry(node).or_default().push(Token(token));
        }
        Ok(Ring::new(members))
    }

    /// The nodes that replicate `key` at `n` replicas, by node `id`'s ring.
    pub fn replicas(ring: &Ring, key: &[u8], n: usize) -> Vec<u32> {
        ring.preference_list(key_token(key), n)
            .into_iter()
            .map(|n| n.0)
            .collect()
    }

    /// A metric's value at node `id` (the sum over its label sets matching `labels`).
    pub fn metric(&self, id: u32, name: &str, labels: &str) -> anyhow::Result<f64> {
        let reply = self.client(id).request("GET", "/metrics", None)?;
        let text = String::from_utf8_lossy(&reply.body).into_owned();
        let mut sum = 0.0;
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            if metric == name && rest.contains(labels) {
                sum += value.parse::<f64>().unwrap_or(0.0);
            }
        }
        Ok(sum)
    }

    /// Node `id`'s log so far.
    pub fn log(&self, id: u32) -> String {
        std::fs::read_to_string(self.nodes[&id].dir.join("node.log")).unwrap_or_default()
    }

    /// The last lines of every node's log, for failure reports.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for id in self.nodes.keys() {
            let log = self.log(*id);
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(25)..];
            out.push_str(&format!("---- n{id} (last {} lines) ----\n", tail.len()));
            for l in tail {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

/// Runs `f` over `items` on `threads` threads (each item once), collecting every result.
pub fn parallel<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let chunk = items.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| s.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a worker thread"))
            .collect()
    })
}
