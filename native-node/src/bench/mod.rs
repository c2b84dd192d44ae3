//! `ringstore bench`: a closed-loop load generator for a running cluster's HTTP API.
//!
//! `--concurrency` workers each own one keep-alive HTTP/1.1 connection (hyper's client
//! connection, no pool in between) to one of `--nodes` (worker `i` talks to node
//! `i mod nodes`, so the load is spread evenly over the coordinators), and each sends its next
//! request as soon as the previous one is answered. First every key of the key space is
//! written once (the *preload*, so reads find values; `--no-preload` skips it and reads of
//! missing keys are then counted apart as `not found`), then for `--duration` every request is
//! a GET with probability `--read-ratio`, else a PUT, of a key drawn uniformly from
//! `key:000000000000` … (the same key shape as `redis-benchmark -r`).
//!
//! Each worker records latencies in its own HDR histograms (microseconds, 3 significant
//! digits), merged at the end, and counts failures by kind: the API's error codes
//! (`quorum_unavailable`, `overloaded`, …), `http_<status>` for an answer without one,
//! `timeout` (no answer within `--timeout`: the connection is dropped and reopened) and
//! `connection` (connect, reset or protocol errors). The summary is printed as a table, or as
//! JSON with `--json` ([`report::Summary`]), and the command fails if nothing was measured or
//! more than `--max-error-rate` of the requests failed.

pub mod report;
mod worker;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use report::{OpKind, Summary, WorkerStats};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Options of `ringstore bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchOptions {
    /// The nodes to send requests to (`host:port`, comma-separated); the connections are spread
    /// evenly over them.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:7001")]
    pub nodes: Vec<String>,
    /// How long to measure (e.g. `30s`, `2m`, `500ms`), after the preload.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Connections, each with one request in flight at a time.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Bytes per value written.
    #[arg(long, default_value_t = 100)]
    pub value_bytes: usize,
    /// Size of the key space (`key:000000000000` to `key:{keys-1}`, 16 bytes each).
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,
    /// The share of requests that are reads (0 to 1); the rest are writes.
    #[arg(long, default_value_t = 0.5)]
    pub read_ratio: f64,
    /// Replicas that must answer: one, quorum, all, or a number (default: the cluster's W
    /// and R).
    #[arg(long)]
    pub consistency: Option<String>,
    /// Do not write every key before measuring (reads of missing keys count as `not found`).
    #[arg(long)]
    pub no_preload: bool,
    /// How long one request may take before it counts as a timeout (its connection is
    /// reopened).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Threads of the load generator (1: one thread drives every connection, as
    /// `redis-benchmark` does by default).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Seed of the key and operation choices (default: a fixed seed, so runs send the same
    /// sequence).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Fail (exit status 1) if more than this share of the measured requests failed.
    #[arg(long, default_value_t = 0.01)]
    pub max_error_rate: f64,
    /// Print the summary as one JSON object on stdout (for scripts) instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl BenchOptions {
    /// Checks the options for values that make no sense.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.nodes.is_empty() || self.nodes.iter().any(|n| n.trim().is_empty()) {
            bail!("--nodes needs at least one host:port");
        }
        if self.concurrency == 0 || self.concurrency > 10_000 {
            bail!("--concurrency must be 1 to 10000");
        }
        if self.keys == 0 || self.keys > 1_000_000_000_000 {
            bail!("--keys must be 1 to 10^12 (keys have 12 digits)");
        }
        if !(0.0..=1.0).contains(&self.read_ratio) {
            bail!("--read-ratio must be between 0 and 1");
        }
        if self.value_bytes > ringstore_core::storage::VALUE_BYTES_LIMIT {
            bail!(
                "--value-bytes must be at most {}",
                ringstore_core::storage::VALUE_BYTES_LIMIT
            );
        }
        if self.duration.is_zero() {
            bail!("--duration must be more than zero");
        }
        if self.threads == 0 || self.threads > 256 {
            bail!("--threads must be 1 to 256");
        }
        Ok(())
    }

    /// The query string of a write and of a read (`w=2` / `r=2`, or `consistency=quorum`).
    fn queries(&self) -> (String, String) {
        match self.consistency.as_deref() {
            None => (String::new(), String::new()),
            Some(c) if c.parse::<u32>().is_ok() => (format!("?w={c}"), format!("?r={c}")),
            Some(c) => (format!("?consistency={c}"), format!("?consistency={c}")),
        }
    }
}

/// The key of index `i`: `key:` and 12 digits, as `redis-benchmark -r` names its keys.
pub fn key_name(i: u64) -> String {
    format!("key:{i:012}")
}

/// What the workers share: the plan, and live counters for the progress bar.
struct Shared {
    nodes: Vec<String>,
    value: Bytes,
    write_query: String,
    read_query: String,
    timeout: Duration,
    keys: u64,
    read_ratio: f64,
    concurrency: usize,
    done: AtomicU64,
    failed: AtomicU64,
}

/// Runs the benchmark and prints its summary.
pub fn run(opts: BenchOptions) -> anyhow::Result<()> {
    opts.validate()?;
    let runtime = if opts.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(opts.threads)
            .enable_all()
            .build()
    }
    .context("starting the tokio runtime")?;
    let summary = runtime.block_on(measure(&opts))?;
    if opts.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", summary.table());
    }
    summary.verdict(opts.max_error_rate)
}

fn bar(len: u64, template: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Preloads, then measures; returns the merged summary.
async fn measure(opts: &BenchOptions) -> anyhow::Result<Summary> {
    let (write_query, read_query) = opts.queries();
    let shared = Arc::new(Shared {
        nodes: opts.nodes.clone(),
        value: Bytes::from(vec![b'x'; opts.value_bytes]),
        write_query,
        read_query,
        timeout: opts.timeout,
        keys: opts.keys,
        read_ratio: opts.read_ratio,
        concurrency: opts.concurrency,
        done: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    });
    let cluster = worker::cluster_settings(&opts.nodes[0], opts.timeout).await;
    if cluster.is_none() {
        bail!(
            "{} does not answer GET /cluster: is a ringstore node listening there?",
            opts.nodes[0]
        );
    }
    if !opts.json {
        eprintln!(
            "ringstore bench: {} node(s) ({}), {} connections, {}-byte values, {} keys, {:.0}% reads{}",
            opts.nodes.len(),
            opts.nodes.join(", "),
            opts.concurrency,
            opts.value_bytes,
            opts.keys,
            opts.read_ratio * 100.0,
            cluster
                .as_ref()
                .map(|c| format!(
                    ", cluster N={} W={} R={} ({} members)",
                    c.n, c.w, c.r, c.members
                ))
                .unwrap_or_default(),
        );
    }

    let mut workers: Vec<worker::Worker> = (0..opts.concurrency)
        .map(|i| worker::Worker::new(i, shared.clone(), opts.seed))
        .collect();

    // Preload: every key once, key i by worker i mod concurrency.
    let mut preload = None;
    if !opts.no_preload {
        let bar = bar(
            opts.keys,
            "preload  {bar:40} {pos}/{len} keys, {per_sec}, {elapsed}",
            opts.json,
        );
        let started = Instant::now();
        let ticker = tick(bar.clone(), shared.clone(), None);
        let tasks: Vec<_> = workers
            .into_iter()
            .map(|w| tokio::spawn(w.preload()))
            .collect();
        workers = join_all(tasks).await?;
        ticker.abort();
        bar.finish_and_clear();
        let stats = WorkerStats::merge(workers.iter_mut().map(worker::Worker::take_stats));
        preload = Some(report::Preload::new(&stats, started.elapsed()));
        shared.done.store(0, Ordering::Relaxed);
        shared.failed.store(0, Ordering::Relaxed);
    }

    let duration_ms = u64::try_from(opts.duration.as_millis()).unwrap_or(u64::MAX);
    let bar = bar(
        duration_ms,
        "measure  {bar:40} {elapsed}/{duration} {msg}",
        opts.json,
    );
    let started = Instant::now();
    let deadline = started + opts.duration;
    let ticker = tick(bar.clone(), shared.clone(), Some(started));
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|w| tokio::spawn(w.measure(deadline)))
        .collect();
    let mut workers = join_all(tasks).await?;
    let elapsed = started.elapsed();
    ticker.abort();
    bar.finish_and_clear();
    let stats = WorkerStats::merge(workers.iter_mut().map(worker::Worker::take_stats));
    Ok(Summary::new(opts, cluster, preload, &stats, elapsed))
}

async fn join_all<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> anyhow::Result<Vec<T>> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.context("a benchmark worker panicked")?);
    }
    Ok(out)
}

/// Updates the progress bar every 200 ms: position from the counters (preload) or the clock
/// (measurement, with the live rate as its message).
fn tick(
    bar: ProgressBar,
    shared: Arc<Shared>,
    timed: Option<Instant>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_millis(200));
        loop {
            interval.tick().await;
            let done = shared.done.load(Ordering::Relaxed);
            let failed = shared.failed.load(Ordering::Relaxed);
            match timed {
                None => bar.set_position(done),
                Some(started) => {
                    let secs = started.elapsed().as_secs_f64().max(1e-3);
                    bar.set_position(u64::try_from(started.elapsed().as_millis()).unwrap_or(0));
                    bar.set_message(format!(
                        "{} ops, {:.0} ops/s, {failed} errors",
                        done,
                        done as f64 / secs
                    ));
                }
            }
        }
    })
}

impl OpKind {
    fn pick(read_ratio: f64, draw: f64) -> OpKind {
        if draw < read_ratio {
            OpKind::Read
        } else {
            OpKind::Write
        }
    }
}
