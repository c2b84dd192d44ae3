//! What a benchmark run measured: per-worker statistics, their merge, and the summary printed
//! as a table or as JSON.
//!
//! The JSON summary (`ringstore bench --json`), one object:
//!
//! | field | meaning |
//! | --- | --- |
//! | `nodes`, `concurrency`, `threads`, `value_bytes`, `keys`, `read_ratio`, `consistency` | the run's options |
//! | `cluster` | `{n, w, r, members}` from the first node's `/cluster` (null if it did not answer) |
//! | `preload` | `{keys, seconds, ops_per_sec, errors}` (null with `--no-preload`) |
//! | `seconds` | the measured time: from the start until the last in-flight request finished |
//! | `reads`, `writes`, `total` | `{ops, ops_per_sec, mean_ms, p50_ms, p99_ms, p999_ms, max_ms}` |
//! | `not_found` | reads answered `404 not_found` (counted in `reads`) |
//! | `errors` | failed requests by kind: an API error code, `http_<status>`, `timeout`, `connection` |
//! | `error_rate` | errors / (answered requests + errors) |
//!
//! `ops` counts answered requests (`200`, and a read's `404`). Latencies are those of
//! answered requests; a failed request is only counted in `errors`.

use super::BenchOptions;
use super::worker::ClusterSettings;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// A request's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// `GET /kv/{key}`.
    Read,
    /// `PUT /kv/{key}`.
    Write,
}

/// How one request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `200`.
    Ok,
    /// A read answered `404 not_found`.
    NotFound,
    /// A failure, by kind.
    Error(String),
}

/// Latencies above this (µs) are recorded as this.
const LATENCY_US_MAX: u64 = 60_000_000;

fn histogram() -> Histogram<u64> {
    // 1 µs to 60 s at 3 significant digits: bounds that are valid constants.
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).unwrap_or_else(|_| {
        unreachable!("1..60 s at 3 significant digits are valid histogram bounds")
    })
}

/// What one worker (or all, merged) recorded.
#[derive(Clone, Debug)]
pub struct WorkerStats {
    reads: Histogram<u64>,
    writes: Histogram<u64>,
    not_found: u64,
    errors: BTreeMap<String, u64>,
}

impl Default for WorkerStats {
    fn default() -> Self {
        WorkerStats {
            reads: histogram(),
            writes: histogram(),
            not_found: 0,
            errors: BTreeMap::new(),
        }
    }
}

impl WorkerStats {
    /// Records one request.
    pub fn record(&mut self, kind: OpKind, outcome: &Outcome, latency: Duration) {
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, LATENCY_US_MAX);
        match outcome {
            Outcome::Error(code) => *self.errors.entry(code.clone()).or_default() += 1,
            Outcome::NotFound | Outcome::Ok => {
                if *outcome == Outcome::NotFound {
                    self.not_found += 1;
                }
                let h = match kind {
                    OpKind::Read => &mut self.reads,
                    OpKind::Write => &mut self.writes,
                };
                h.saturating_record(us);
            }
        }
    }

    /// Everything recorded by `all`.
    pub fn merge(all: impl IntoIterator<Item = WorkerStats>) -> WorkerStats {
        let mut out = WorkerStats::default();
        for s in all {
            // Same bounds on both sides: adding cannot fail.
            let _ = out.reads.add(&s.reads);
            let _ = out.writes.add(&s.writes);
            out.not_found += s.not_found;
            for (code, n) in s.errors {
                *out.errors.entry(code).or_default() += n;
            }
        }
        out
    }

    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// The preload phase.
#[derive(Clone, Debug, Serialize)]
pub struct Preload {
    /// Keys written.
    pub keys: u64,
    /// How long it took.
    pub seconds: f64,
    /// Keys written per second.
    pub ops_per_sec: f64,
    /// Writes that failed.
    pub errors: u64,
}

impl Preload {
    /// The preload's figures from its statistics.
    pub fn new(stats: &WorkerStats, took: Duration) -> Preload {
        let keys = stats.writes.len();
        Preload {
            keys,
            seconds: took.as_secs_f64(),
            ops_per_sec: keys as f64 / took.as_secs_f64().max(1e-9),
            errors: stats.error_count(),
        }
    }
}

/// Throughput and latency of one request type.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct OpSummary {
    /// Requests answered.
    pub ops: u64,
    /// Answered per second of the measured time.
    pub ops_per_sec: f64,
    /// Mean latency.
    pub mean_ms: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

impl OpSummary {
    fn of(h: &Histogram<u64>, seconds: f64) -> OpSummary {
        let ms = |us: u64| us as f64 / 1000.0;
        let empty = h.is_empty();
        OpSummary {
            ops: h.len(),
            ops_per_sec: h.len() as f64 / seconds.max(1e-9),
            mean_ms: if empty { 0.0 } else { h.mean() / 1000.0 },
            p50_ms: ms(h.value_at_quantile(0.5)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// What a run measured (see the module's doc for the JSON form).
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The nodes requests went to.
    pub nodes: Vec<String>,
    /// Connections.
    pub concurrency: usize,
    /// Load generator threads.
    pub threads: usize,
    /// Bytes per value.
    pub value_bytes: usize,
    /// The key space.
    pub keys: u64,
    /// The share of reads.
    pub read_ratio: f64,
    /// The consistency asked for (`null`: the cluster's W and R).
    pub consistency: Option<String>,
    /// The cluster's settings, if the first node told them.
    pub cluster: Option<ClusterSettings>,
    /// The preload, if there was one.
    pub preload: Option<Preload>,
    /// Measured seconds.
    pub seconds: f64,
    /// Reads.
    pub reads: OpSummary,
    /// Writes.
    pub writes: OpSummary,
    /// Both.
    pub total: OpSummary,
    /// Reads of a missing key.
    pub not_found: u64,
    /// Failures by kind.
    pub errors: BTreeMap<String, u64>,
    /// The share of requests that failed.
    pub error_rate: f64,
}

impl Summary {
    /// The summary of a run.
    pub fn new(
        opts: &BenchOptions,
        cluster: Option<ClusterSettings>,
        preload: Option<Preload>,
        stats: &WorkerStats,
        elapsed: Duration,
    ) -> Summary {
        let seconds = elapsed.as_secs_f64();
        let mut all = stats.reads.clone();
        let _ = all.add(&stats.writes);
        let errors = stats.error_count();
        let attempted = all.len() + errors;
        Summary {
            nodes: opts.nodes.clone(),
            concurrency: opts.concurrency,
            threads: opts.threads,
            value_bytes: opts.value_bytes,
            keys: opts.keys,
            read_ratio: opts.read_ratio,
            consistency: opts.consistency.clone(),
            cluster,
            preload,
            seconds,
            reads: OpSummary::of(&stats.reads, seconds),
            writes: OpSummary::of(&stats.writes, seconds),
            total: OpSummary::of(&all, seconds),
            not_found: stats.not_found,
            errors: stats.errors.clone(),
            error_rate: if attempted == 0 {
                0.0
            } else {
                errors as f64 / attempted as f64
            },
        }
    }

    /// The summary as a table, for people.
    pub fn table(&self) -> String {
        let mut out = String::new();
        if let Some(p) = &self.preload {
            let _ = writeln!(
                out,
                "preload: {} keys in {:.1} s ({} writes/s, {} errors)",
                group(p.keys),
                p.seconds,
                group(p.ops_per_sec.round() as u64),
                p.errors
            );
        }
        let _ = writeln!(out, "measured: {:.1} s", self.seconds);
        let _ = writeln!(
            out,
            "{:<7} {:>10} {:>11} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "", "ops", "ops/s", "mean", "p50", "p99", "p999", "max"
        );
        for (name, s) in [
            ("reads", &self.reads),
            ("writes", &self.writes),
            ("total", &self.total),
        ] {
            let _ = writeln!(
                out,
                "{:<7} {:>10} {:>11} {:>9} {:>9} {:>9} {:>9} {:>9}",
                name,
                group(s.ops),
                group(s.ops_per_sec.round() as u64),
                ms(s.mean_ms),
                ms(s.p50_ms),
                ms(s.p99_ms),
                ms(s.p999_ms),
                ms(s.max_ms),
            );
        }
        if self.not_found > 0 {
            let _ = writeln!(
                out,
                "reads of a missing key (404 not_found, counted in reads): {}",
                group(self.not_found)
            );
        }
        if self.errors.is_empty() {
            let _ = writeln!(out, "errors: none");
        } else {
            let list: Vec<String> = self
                .errors
                .iter()
                .map(|(k, n)| format!("{k} {}", group(*n)))
                .collect();
            let _ = writeln!(
                out,
                "errors: {} ({:.3}% of requests)",
                list.join(", "),
                self.error_rate * 100.0
            );
        }
        out
    }

    /// `Ok` if something was measured and errors stayed within `max_error_rate`.
    pub fn verdict(&self, max_error_rate: f64) -> anyhow::Result<()> {
        if self.total.ops == 0 {
            anyhow::bail!("nothing was measured: no request was answered");
        }
        if self.error_rate > max_error_rate {
            anyhow::bail!(
                "{:.3}% of requests failed (more than --max-error-rate {})",
                self.error_rate * 100.0,
                max_error_rate
            );
        }
        Ok(())
    }
}

/// `1234567` as `1,234,567`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.2} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchOptions,
    }

    fn opts(args: &[&str]) -> BenchOptions {
        let mut all = vec!["ringstore"];
        all.extend_from_slice(args);
        Cli::parse_from(all).bench
    }

    #[test]
    fn options_take_the_issue_shape_and_refuse_nonsense() {
        let o = opts(&[
            "--nodes",
            "127.0.0.1:7001,127.0.0.1:7002",
            "--duration",
            "30s",
            "--concurrency",
            "64",
            "--read-ratio",
            "0.5",
        ]);
        assert_eq!(o.nodes.len(), 2);
        assert_eq!(o.duration, Duration::from_secs(30));
        assert!(o.validate().is_ok());
        assert_eq!(o.queries(), (String::new(), String::new()));
        let q = opts(&["--consistency", "3"]);
        assert_eq!(q.queries(), ("?w=3".to_string(), "?r=3".to_string()));
        assert!(opts(&["--read-ratio", "1.5"]).validate().is_err());
        assert!(opts(&["--concurrency", "0"]).validate().is_err());
        assert!(opts(&["--duration", "0s"]).validate().is_err());
    }

    #[test]
    fn stats_merge_and_summarise_by_kind() {
        let mut a = WorkerStats::default();
        let mut b = WorkerStats::default();
        for i in 1..=100u64 {
            a.record(OpKind::Read, &Outcome::Ok, Duration::from_micros(i * 10));
            b.record(OpKind::Write, &Outcome::Ok, Duration::from_millis(2));
        }
        a.record(OpKind::Read, &Outcome::NotFound, Duration::from_micros(5));
        b.record(
            OpKind::Write,
            &Outcome::Error("quorum_unavailable".into()),
            Duration::from_millis(1),
        );
        b.record(
            OpKind::Read,
            &Outcome::Error("timeout".into()),
            Duration::ZERO,
        );
        let all = WorkerStats::merge([a, b]);
        let s = Summary::new(&opts(&[]), None, None, &all, Duration::from_secs(2));
        assert_eq!(s.reads.ops, 101, "a miss is an answered read");
        assert_eq!(s.writes.ops, 100);
        assert_eq!(s.total.ops, 201);
        assert_eq!(s.not_found, 1);
        assert!((s.writes.ops_per_sec - 50.0).abs() < 1e-9);
        assert!((s.writes.p50_ms - 2.0).abs() < 0.01, "{}", s.writes.p50_ms);
        assert!((s.reads.p99_ms - 0.99).abs() < 0.01, "{}", s.reads.p99_ms);
        assert_eq!(s.errors.get("quorum_unavailable"), Some(&1));
        assert_eq!(s.errors.get("timeout"), Some(&1));
        assert!((s.error_rate - 2.0 / 203.0).abs() < 1e-12);
        assert!(s.verdict(0.05).is_ok());
        assert!(s.verdict(0.001).is_err(), "over the error budget");
        let table = s.table();
        assert!(table.contains("quorum_unavailable 1"), "{table}");
        assert!(table.contains("missing key"), "{table}");
        let json: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(json["writes"]["ops"], 100);
        assert_eq!(json["errors"]["timeout"], 1);
    }

    #[test]
    fn nothing_answered_is_a_failure() {
        let s = Summary::new(
            &opts(&[]),
            None,
            None,
            &WorkerStats::default(),
            Duration::from_secs(1),
        );
        assert!(s.verdict(1.0).is_err());
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1234567), "1,234,567");
        assert_eq!(super::super::key_name(42), "key:000000000042");
    }
}
