//! The cluster benchmark behind `scripts/bench-cluster` (docs/benchmarks.md, "A local cluster
//! against Redis"): in one run, for each sync policy, a local 3-node and then 5-node cluster of
//! separate node processes (`ringstore demo`, N=3, W=2, R=2) loaded by `ringstore bench`, and
//! a local `redis-server` with the matching persistence loaded by `redis-benchmark` with the
//! same shape (value size, connections, key space, SET/GET); then one table side by side with
//! the ratio ringstore/Redis.
//!
//! Like with like: `--sync never` (the WAL is written to the OS at once and never fsynced
//! before an acknowledgement) is compared with Redis's append-only file at
//! `appendfsync no` (every write goes to the AOF, the OS decides when it reaches the disk);
//! `--sync interval` (a sync every `--sync-interval-ms`, 100 ms by default) with `appendfsync
//! everysec` (Redis's recommended setting: a sync a second); `--sync always` (acknowledged
//! after an fdatasync; writes that wait together share one) with `appendfsync always`. RDB
//! snapshots are off (`save ""`) so a fork never lands inside one run and not the other.
//!
//! `redis-benchmark` runs SET and GET one after the other rather than mixed; the 50/50 figure
//! for Redis is the rate at which it would do equal numbers of both, `2 / (1/set + 1/get)`,
//! and its read and write latencies are those of its GET and SET runs.
//!
//! `--quick` (what `scripts/test` runs): a few seconds per cluster and 10,000 keys, the same
//! table. It fails only on errors (a cluster that does not form, a run that measures nothing
//! or fails more than 1% of its requests, a Redis that does not answer), never on figures.

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use ringstore_node::options::SyncChoice;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a cluster may take to form.
const FORM_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Parser, Debug)]
#[command(about = "ringstore clusters against redis-server, side by side")]
struct Opts {
    /// The ringstore binary.
    #[arg(long)]
    bin: PathBuf,
    /// A few seconds per cluster and 10,000 keys (CI); fails on errors, never on figures.
    #[arg(long)]
    quick: bool,
    /// Measured time per ringstore run (default 30s, 3s with --quick).
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Cluster sizes to run.
    #[arg(long, value_delimiter = ',', default_value = "3,5")]
    sizes: Vec<u32>,
    /// Sync policies to run (the node's `--sync` values).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "never,interval,always"
    )]
    syncs: Vec<SyncChoice>,
    /// Keys in the key space (default 100,000; 10,000 with --quick).
    #[arg(long)]
    keys: Option<u64>,
    /// Connections of both load generators.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Skip Redis (only the ringstore rows).
    #[arg(long)]
    no_redis: bool,
    /// Extra arguments for every node (e.g. `--node-arg=--threads=2`); repeat for more.
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    node_args: Vec<String>,
}

impl Opts {
    fn duration(&self) -> Duration {
        self.duration.unwrap_or(if self.quick {
            Duration::from_secs(3)
        } else {
            Duration::from_secs(30)
        })
    }

    fn keys(&self) -> u64 {
        self.keys
            .unwrap_or(if self.quick { 10_000 } else { 100_000 })
    }
}

/// Latencies of one operation type, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Latency {
    p50: f64,
    p99: f64,
    p999: f64,
}

/// One row of the table.
#[derive(Clone, Debug)]
struct Row {
    system: String,
    /// Which rows compare.
    policy: SyncChoice,
    sync: String,
    ops_per_sec: f64,
    read: Latency,
    write: Latency,
    errors: String,
}

/// A running `ringstore demo` process and the addresses of the nodes it started (a cluster of
/// node processes it supervises), stopped (SIGTERM: every node seals its WAL) when dropped.
struct DemoCluster {
    demo: Child,
    addresses: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Drop for DemoCluster {
    fn drop(&mut self) {
        terminate(&mut self.demo, Duration::from_secs(20));
    }
}

/// SIGTERM, then SIGKILL if `child` has not exited within `grace`.
fn terminate(child: &mut Child, grace: Duration) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn start_cluster(opts: &Opts, nodes: u32, sync: SyncChoice) -> anyhow::Result<DemoCluster> {
    let dir = tempfile::Builder::new()
        .prefix("ringstore-bench-")
        .tempdir()?;
    let mut cmd = Command::new(&opts.bin);
    cmd.arg("demo")
        .args(["--nodes", &nodes.to_string(), "--base-port", "0"])
        .args(["--n", "3", "--w", "2", "--r", "2"])
        .arg("--data-dir")
        .arg(dir.path())
        .arg(format!("--node-arg=--sync={}", flag(sync)))
        // The demo's 5 s anti-entropy interval, back to the node's default.
        .arg("--node-arg=--anti-entropy-interval-ms=10000");
    for a in &opts.node_args {
        cmd.arg(format!("--node-arg={a}"));
    }
    let mut demo = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {} demo", opts.bin.display()))?;
    let stdout = demo.stdout.take().context("the demo's stdout")?;
    // Read the demo's lines on a thread, so the wait below has a deadline.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut cluster = DemoCluster {
        demo,
        addresses: Vec::new(),
        _dir: dir,
    };
    let deadline = Instant::now() + FORM_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).map_err(|_| {
            anyhow::anyhow!("the {nodes}-node cluster did not form within {FORM_TIMEOUT:?}")
        })?;
        // "    n1 at 127.0.0.1:41607 (pid 22087)"
        let words: Vec<&str> = line.split_whitespace().collect();
        if let [name, "at", addr, "(pid", _] = words[..]
            && name.starts_with('n')
        {
            cluster.addresses.push(addr.to_string());
        }
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    if cluster.addresses.len() != nodes as usize {
        bail!(
            "the demo listed {} nodes, not {nodes}",
            cluster.addresses.len()
        );
    }
    Ok(cluster)
}

fn ms(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn ringstore_row(opts: &Opts, nodes: u32, sync: SyncChoice) -> anyhow::Result<Row> {
    eprintln!("== ringstore, {nodes} nodes, --sync {}", flag(sync));
    let cluster = start_cluster(opts, nodes, sync)?;
    let out = Command::new(&opts.bin)
        .arg("bench")
        .args(["--nodes", &cluster.addresses.join(",")])
        .args(["--duration", &format!("{}ms", opts.duration().as_millis())])
        .args(["--concurrency", &opts.concurrency.to_string()])
        .args(["--value-bytes", &opts.value_bytes.to_string()])
        .args(["--keys", &opts.keys().to_string()])
        .args(["--read-ratio", "0.5", "--max-error-rate", "0.01", "--json"])
        .stderr(Stdio::inherit())
        .output()
        .context("running ringstore bench")?;
    drop(cluster);
    let text = String::from_utf8_lossy(&out.stdout);
    let summary: Value = serde_json::from_str(&text)
        .with_context(|| format!("ringstore bench printed no summary: {text}"))?;
    if !out.status.success() {
        bail!(
            "ringstore bench failed against {nodes} nodes at --sync {} (errors: {})",
            flag(sync),
            summary["errors"]
        );
    }
    let lat = |op: &str| Latency {
        p50: ms(&summary[op]["p50_ms"]),
        p99: ms(&summary[op]["p99_ms"]),
        p999: ms(&summary[op]["p999_ms"]),
    };
    let errors = summary["errors"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "none".into());
    Ok(Row {
        system: format!("ringstore, {nodes} nodes"),
        policy: sync,
        sync: format!("--sync {}", flag(sync)),
        ops_per_sec: ms(&summary["total"]["ops_per_sec"]),
        read: lat("reads"),
        write: lat("writes"),
        errors,
    })
}

/// A `redis-server` on a free port, in its own directory; killed when dropped.
struct Redis {
    server: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Redis {
    fn drop(&mut self) {
        terminate(&mut self.server, Duration::from_secs(10));
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn start_redis(sync: SyncChoice) -> anyhow::Result<Redis> {
    let dir = tempfile::Builder::new()
        .prefix("ringstore-bench-redis-")
        .tempdir()?;
    let port = free_port()?;
    let fsync = redis_fsync(sync);
    let server = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(dir.path())
        .args(["--save", "", "--appendonly", "yes", "--appendfsync", fsync])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting redis-server (Debian: apt-get install redis-server redis-tools)")?;
    let redis = Redis {
        server,
        port,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("redis-server did not listen on port {port} within 10 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(redis)
}

/// What `redis-benchmark` printed for one test: requests per second and latency percentiles.
#[derive(Debug, Default, PartialEq)]
struct RedisTest {
    rps: f64,
    latency: Latency,
}

/// Parses `redis-benchmark`'s output for one test: the percentile distribution
/// (`99.900% <= 3.103 milliseconds (cumulative count 99903)`, the first line at or past each
/// percentile) and `throughput summary: 53648.07 requests per second`.
fn parse_redis(text: &str) -> Option<RedisTest> {
    let mut out = RedisTest::default();
    let mut seen = [false; 3];
    let targets = [50.0, 99.0, 99.9];
    let mut in_percentiles = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("Latency by percentile distribution") {
            in_percentiles = true;
            continue;
        }
        if line.starts_with("Cumulative distribution") {
            in_percentiles = false;
        }
        if let Some(rest) = line.strip_prefix("throughput summary:") {
            out.rps = rest.split_whitespace().next()?.parse().ok()?;
        }
        if !in_percentiles {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(pct), Some("<="), Some(value)) = (words.next(), words.next(), words.next())
        else {
            continue;
        };
        let (Ok(pct), Ok(value)) = (pct.trim_end_matches('%').parse::<f64>(), value.parse()) else {
            continue;
        };
        for (i, t) in targets.iter().enumerate() {
            if !seen[i] && pct >= *t {
                seen[i] = true;
                let slot = match i {
                    0 => &mut out.latency.p50,
                    1 => &mut out.latency.p99,
                    _ => &mut out.latency.p999,
                };
                *slot = value;
            }
        }
    }
    (out.rps > 0.0 && seen.iter().all(|s| *s)).then_some(out)
}

fn redis_benchmark(opts: &Opts, port: u16, test: &str, requests: u64) -> anyhow::Result<RedisTest> {
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-c", &opts.concurrency.to_string()])
        .args(["-n", &requests.to_string()])
        .args(["-d", &opts.value_bytes.to_string()])
        .args(["-r", &opts.keys().to_string()])
        .args(["-t", test])
        .stderr(Stdio::inherit())
        .output()
        .context("running redis-benchmark (Debian: apt-get install redis-tools)")?;
    // Progress lines end in carriage returns; the summary follows the last one.
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "\n");
    if !out.status.success() {
        bail!("redis-benchmark -t {test} failed: {}", out.status);
    }
    parse_redis(&text).with_context(|| format!("no figures in redis-benchmark's output: {text}"))
}

/// The node's `--sync` value for a policy.
fn flag(sync: SyncChoice) -> String {
    sync.to_possible_value()
        .expect("every SyncChoice is a --sync value")
        .get_name()
        .to_owned()
}

/// Redis's `appendfsync` setting of the same durability as a ringstore `--sync` policy.
fn redis_fsync(sync: SyncChoice) -> &'static str {
    match sync {
        SyncChoice::Always => "always",
        SyncChoice::Interval => "everysec",
        SyncChoice::Never => "no",
    }
}

fn redis_row(opts: &Opts, sync: SyncChoice) -> anyhow::Result<Row> {
    eprintln!("== redis-server, appendfsync {}", redis_fsync(sync));
    let redis = start_redis(sync)?;
    // Fill the key space and find the rate, then size both runs to the ringstore runs' time.
    let fill = redis_benchmark(opts, redis.port, "set", opts.keys().max(10_000))?;
    let half = opts.duration().as_secs_f64() / 2.0;
    let requests = ((fill.rps * half) as u64).max(10_000);
    let set = redis_benchmark(opts, redis.port, "set", requests)?;
    let get = redis_benchmark(opts, redis.port, "get", requests)?;
    drop(redis);
    Ok(Row {
        system: "redis-server".into(),
        policy: sync,
        sync: format!("appendfsync {}", redis_fsync(sync)),
        ops_per_sec: 2.0 / (1.0 / set.rps + 1.0 / get.rps),
        read: get.latency,
        write: set.latency,
        errors: "none".into(),
    })
}

fn print_table(opts: &Opts, rows: &[Row]) {
    println!();
    println!(
        "{} keys, {}-byte values, {} connections, 50% reads; ringstore N=3 W=2 R=2, {:?} per run",
        opts.keys(),
        opts.value_bytes,
        opts.concurrency,
        opts.duration()
    );
    println!();
    println!(
        "| system | durability | ops/s | ringstore/redis | read p50 | read p99 | read p999 | write p50 | write p99 | write p999 | errors |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    let f = |v: f64| format!("{v:.2} ms");
    for row in rows {
        let redis = rows
            .iter()
            .find(|r| r.system == "redis-server" && r.policy == row.policy)
            .filter(|_| row.system != "redis-server");
        let ratio = redis.map_or_else(String::new, |r| {
            format!("{:.2}x", row.ops_per_sec / r.ops_per_sec)
        });
        println!(
            "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.system,
            row.sync,
            row.ops_per_sec,
            ratio,
            f(row.read.p50),
            f(row.read.p99),
            f(row.read.p999),
            f(row.write.p50),
            f(row.write.p99),
            f(row.write.p999),
            row.errors
        );
    }
}

fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    if !Path::new(&opts.bin).is_file() {
        bail!("no ringstore binary at {}", opts.bin.display());
    }
    let mut rows = Vec::new();
    for &sync in &opts.syncs {
        for &nodes in &opts.sizes {
            rows.push(ringstore_row(&opts, nodes, sync)?);
        }
        if !opts.no_redis {
            rows.push(redis_row(&opts, sync)?);
        }
    }
    print_table(&opts, &rows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_benchmark_output_parses() {
        let text = "\
====== GET ======
  100000 requests completed in 1.86 seconds
Latency by percentile distribution:
0.000% <= 0.183 milliseconds (cumulative count 1)
50.000% <= 0.655 milliseconds (cumulative count 50512)
98.944% <= 1.903 milliseconds (cumulative count 98944)
99.024% <= 2.007 milliseconds (cumulative count 99024)
99.908% <= 6.103 milliseconds (cumulative count 99908)
100.000% <= 25.103 milliseconds (cumulative count 100000)

Cumulative distribution of latencies:
99.999% <= 99.111 milliseconds (cumulative count 99999)

Summary:
  throughput summary: 53648.07 requests per second
";
        let t = parse_redis(text).unwrap();
        assert_eq!(t.rps, 53648.07);
        assert_eq!(t.latency.p50, 0.655);
        assert_eq!(t.latency.p99, 2.007);
        assert_eq!(t.latency.p999, 6.103);
        assert_eq!(parse_redis("nothing here"), None);
    }
}
