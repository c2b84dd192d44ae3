//! `ringstore demo`: a local cluster of separate `ringstore node` processes on 127.0.0.1, the
//! README's "run the product" command. It starts the first node, then the others joining
//! through it, waits until every node sees every other alive in its ring, prints the page's
//! URL, and on Ctrl-C (or SIGTERM) stops them all.
//!
//! Every node runs with fault injection on and 500 ms gossip, n1 first and the others with
//! `--join` n1, each logging to `n<i>/node.log` in the data directory. On Ctrl-C or SIGTERM it
//! sends SIGTERM to every node (a clean stop seals the WALs) and kills any still running after
//! 10 s.

use anyhow::{Context, bail};
use clap::Args;
use ringstore_node::client::Client;
use ringstore_node::runtime::ADDRESS_FILE;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// How long the cluster may take to form.
const FORM_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a node may take to write its address after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Options of `ringstore demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoOptions {
    /// Nodes to start.
    #[arg(long, default_value_t = 5)]
    nodes: u32,
    /// Directory for the nodes' data (one subdirectory each, kept; default: a temporary
    /// directory removed on exit). Run again with the same directory to restart the same
    /// cluster with its data.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Port of the first node; the others take the next ones (0: any free ports).
    #[arg(long, default_value_t = 7001)]
    base_port: u16,
    /// Replicas per key.
    #[arg(long, default_value_t = 3)]
    n: usize,
    /// Write quorum.
    #[arg(long, default_value_t = 2)]
    w: usize,
    /// Read quorum.
    #[arg(long, default_value_t = 2)]
    r: usize,
    /// Extra arguments for every node (e.g. `--node-arg=--sync=never`); repeat for more.
    #[arg(long = "node-arg", value_name = "ARG", allow_hyphen_values = true)]
    node_args: Vec<String>,
}

struct Node {
    id: u32,
    child: Child,
    address: String,
    log: PathBuf,
}

async fn wait_for_address(dir: &Path, child: &mut Child) -> anyhow::Result<String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(text) = std::fs::read_to_string(dir.join(ADDRESS_FILE)) {
            let addr = text.trim().to_string();
            if !addr.is_empty() {
                return Ok(addr);
            }
        }
        if let Some(status) = child.try_wait()? {
            bail!("the node exited ({status}) before it listened");
        }
        if Instant::now() > deadline {
            bail!("the node did not listen within {START_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn formed(view: &Value, nodes: usize) -> bool {
    let members = view["members"].as_array();
    view["lifecycle"] == "normal"
        && members.is_some_and(|m| {
            m.len() == nodes
                && m.iter()
                    .all(|m| m["state"] == "alive" && m["in_ring"] == true)
        })
}

async fn start(
    opts: &DemoOptions,
    exe: &Path,
    root: &Path,
    id: u32,
    join: Option<&str>,
) -> anyhow::Result<Node> {
    let dir = root.join(format!("n{id}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let port = if opts.base_port == 0 {
        0
    } else {
        opts.base_port
            .checked_add(u16::try_from(id - 1)?)
            .context("ports past 65535")?
    };
    let log = dir.join("node.log");
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)?;
    let mut cmd = Command::new(exe);
    cmd.arg("node")
        .args(["--id", &id.to_string()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(&dir)
        .args(["--n", &opts.n.to_string()])
        .args(["--w", &opts.w.to_string()])
        .args(["--r", &opts.r.to_string()])
        .arg("--allow-fault-injection")
        .args(["--gossip-interval-ms", "500"])
        .args(["--anti-entropy-interval-ms", "5000"])
        .args(&opts.node_args)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .kill_on_drop(true);
    if let Some(seed) = join {
        cmd.args(["--join", seed]);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let address = wait_for_address(&dir, &mut child)
        .await
        .with_context(|| format!("n{id} (log: {})", log.display()))?;
    Ok(Node {
        id,
        child,
        address,
        log,
    })
}

async fn wait_formed(nodes: &mut [Node]) -> anyhow::Result<()> {
    let deadline = Instant::now() + FORM_TIMEOUT;
    let count = nodes.len();
    loop {
        let mut ready = 0;
        for n in nodes.iter_mut() {
            if let Some(status) = n.child.try_wait()? {
                bail!("n{} exited ({status}); its log: {}", n.id, n.log.display());
            }
            let client = Client::with_timeout(&n.address, Duration::from_secs(2));
            let view = tokio::task::spawn_blocking(move || client.cluster()).await?;
            if view.is_ok_and(|v| formed(&v, count)) {
                ready += 1;
            }
        }
        if ready == count {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the cluster did not form within {FORM_TIMEOUT:?} ({ready} of {count} nodes see everyone)"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn stop(nodes: &mut [Node]) {
    for n in nodes.iter() {
        if let Some(pid) = n.child.id() {
            // SIGTERM: the node shuts down cleanly (its WAL sealed).
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
    for n in nodes.iter_mut() {
        if tokio::time::timeout(Duration::from_secs(10), n.child.wait())
            .await
            .is_err()
        {
            let _ = n.child.start_kill();
        }
    }
}

async fn signalled() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// Runs the demo until Ctrl-C.
pub async fn run(opts: DemoOptions) -> anyhow::Result<()> {
    if opts.nodes == 0 || opts.nodes > 64 {
        bail!("--nodes must be 1 to 64");
    }
    let exe = std::env::current_exe().context("finding the ringstore binary")?;
    let temp;
    let root = match &opts.data_dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("ringstore-demo-")
                .tempdir()?;
            temp.path().to_path_buf()
        }
    };
    println!(
        "ringstore demo: starting {} nodes, data in {}",
        opts.nodes,
        root.display()
    );
    let mut nodes = Vec::new();
    let result = async {
        let first = start(&opts, &exe, &root, 1, None).await?;
        let seed = first.address.clone();
        println!("  n1 listening on {seed}");
        nodes.push(first);
        for id in 2..=opts.nodes {
            let n = start(&opts, &exe, &root, id, Some(&seed)).await?;
            println!("  n{id} listening on {}, joining through n1", n.address);
            nodes.push(n);
        }
        println!("waiting for the cluster to form...");
        wait_formed(&mut nodes).await
    };
    let outcome = tokio::select! {
        r = result => r,
        () = signalled() => {
            stop(&mut nodes).await;
            return Ok(());
        }
    };
    if let Err(e) = outcome {
        stop(&mut nodes).await;
        return Err(e);
    }
    let first = &nodes[0].address;
    println!();
    println!(
        "The cluster is up: {} nodes, N={} W={} R={}.",
        nodes.len(),
        opts.n,
        opts.w,
        opts.r
    );
    println!();
    println!("    Open the page:   http://{first}/");
    println!();
    println!("Try it:");
    println!("    ringstore put user123 Alice --node {first}");
    println!(
        "    ringstore get user123 --node {}",
        nodes.last().map_or(first, |n| &n.address)
    );
    println!("    ringstore status --node {first}");
    println!("    curl -X PUT --data-binary Alice http://{first}/kv/user123");
    println!(
        "Kill a node (kill -9 on its pid) and watch the others notice; logs: {}/n*/node.log",
        root.display()
    );
    for n in &nodes {
        println!(
            "    n{} at {} (pid {})",
            n.id,
            n.address,
            n.child.id().unwrap_or(0)
        );
    }
    println!("Press Ctrl-C to stop every node.");
    signalled().await;
    println!("stopping...");
    stop(&mut nodes).await;
    Ok(())
}
