//! The page's settings in its URL: a link reproduces a run.
//!
//! `?seed=7&nodes=16&n=3&w=2&r=2&vnodes=8&sync=always&membership=gossip&rate=200&reads=50&keys=100&loss=0&latency=10..30&speed=0.1&scenario=read_repair&embed=1`
//!
//! Every parameter is optional. A bad value (not a number, out of range, a quorum that does
//! not fit) is reported in words and replaced by its default: the page always opens. Unknown
//! parameters are reported too (a typo should not pass silently). [`Settings::to_query`]
//! writes only what differs from the defaults, so links stay short.

use crate::player::nearest_speed;
use ringstore_core::node::check_quorums;
use ringstore_core::storage::SyncPolicy;
use serde::{Deserialize, Serialize};

/// Nodes the page builds at most (the picture is meant for up to 64).
pub const NODES_MAX: u32 = 128;

/// Everything the URL can say.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The run's seed.
    pub seed: u64,
    /// Nodes.
    pub nodes: u32,
    /// Replicas per key.
    pub n: usize,
    /// Write quorum.
    pub w: usize,
    /// Read quorum.
    pub r: usize,
    /// Tokens per node.
    pub vnodes: u32,
    /// `always`, `never` or `interval:MS`.
    pub sync: String,
    /// Gossip membership with phi-accrual detection (else an oracle).
    pub gossip: bool,
    /// Client operations per simulated second.
    pub rate: u32,
    /// Percentage of reads in the workload.
    pub reads: u8,
    /// Keys in the workload.
    pub keys: u32,
    /// Message loss, percent.
    pub loss: u32,
    /// Smallest one-way latency, ms.
    pub latency_min: u64,
    /// Largest one-way latency, ms.
    pub latency_max: u64,
    /// Simulated ms per real ms.
    pub speed: f64,
    /// A scenario to play (its name), or empty.
    pub scenario: String,
    /// The compact layout for an iframe.
    pub embed: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            seed: 1,
            nodes: 5,
            n: 3,
            w: 2,
            r: 2,
            vnodes: 8,
            sync: "always".to_string(),
            gossip: true,
            rate: 20,
            reads: 50,
            keys: 100,
            loss: 0,
            latency_min: 10,
            latency_max: 30,
            speed: 0.1,
            scenario: String::new(),
            embed: false,
        }
    }
}

/// Settings read from a URL, with what was wrong with it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Parsed {
    /// The settings (defaults where the URL was wrong or silent).
    pub settings: Settings,
    /// One sentence per problem, for the page to show.
    pub warnings: Vec<String>,
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 3 <= bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads the settings from a query string (with or without the leading `?`).
pub fn parse(query: &str) -> Parsed {
    let mut s = Settings::default();
    let d = Settings::default();
    let mut warnings = Vec::new();
    let query = query.strip_prefix('?').unwrap_or(query);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (name, value) = (decode(name), decode(value));
        let mut bad = |what: &str| {
            warnings.push(format!(
                "{name}={value:?} is not valid ({what}); using the default"
            ));
        };
        macro_rules! number {
            ($field:ident, $lo:expr, $hi:expr) => {
                match value.parse() {
                    Ok(v) if ($lo..=$hi).contains(&v) => s.$field = v,
                    _ => bad(&format!("a whole number from {} to {}", $lo, $hi)),
                }
            };
        }
        match name.as_str() {
            "seed" => number!(seed, 0u64, u64::MAX),
            "nodes" => number!(nodes, 1u32, NODES_MAX),
            "n" => number!(n, 1usize, 16usize),
            "w" => number!(w, 1usize, 16usize),
            "r" => number!(r, 1usize, 16usize),
            "vnodes" => number!(vnodes, 1u32, 256u32),
            "rate" => number!(rate, 0u32, 5_000u32),
            "reads" => number!(reads, 0u8, 100u8),
            "keys" => number!(keys, 1u32, 100_000u32),
            "loss" => number!(loss, 0u32, 100u32),
            "sync" if value.parse::<SyncPolicy>().is_ok() => s.sync = value.clone(),
            "sync" => bad("always, never or interval:MS"),
            "membership" => match value.as_str() {
                "gossip" => s.gossip = true,
                "oracle" => s.gossip = false,
                _ => bad("gossip or oracle"),
            },
            "latency" => {
                let (lo, hi) = value.split_once("..").unwrap_or((&value, &value));
                match (lo.parse::<u64>(), hi.parse::<u64>()) {
                    (Ok(lo), Ok(hi)) if lo <= hi && hi <= 5_000 => {
                        s.latency_min = lo;
                        s.latency_max = hi;
                    }
                    _ => bad("MS or MIN..MAX, at most 5000"),
                }
            }
            "speed" => match value.parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => s.speed = nearest_speed(v),
                _ => bad("a positive number such as 0.1 or 10"),
            },
            "scenario" => {
                if crate::scenario::find(&value).is_some() {
                    s.scenario = value.clone();
                } else {
                    bad("not one of the scenarios");
                }
            }
            "embed" => match value.as_str() {
                "1" | "true" | "" => s.embed = true,
                "0" | "false" => s.embed = false,
                _ => bad("1 or 0"),
            },
            _ => warnings.push(format!("unknown parameter {name:?} ignored")),
        }
    }
    if s.n > s.nodes as usize {
        warnings.push(format!(
            "N={} needs at least {} nodes (there are {}); using N={}",
            s.n,
            s.n,
            s.nodes,
            d.n.min(s.nodes as usize)
        ));
        s.n = d.n.min(s.nodes as usize);
    }
    if let Err(e) = check_quorums(s.n, s.w, s.r) {
        warnings.push(format!("{e}; using W={} R={}", d.w.min(s.n), d.r.min(s.n)));
        s.w = d.w.min(s.n);
        s.r = d.r.min(s.n);
    }
    Parsed {
        settings: s,
        warnings,
    }
}

impl Settings {
    /// The query string for these settings: only what differs from the defaults (`""` if
    /// nothing does), without the leading `?`.
    pub fn to_query(&self) -> String {
        let d = Settings::default();
        let mut parts = Vec::new();
        macro_rules! put {
            ($field:ident) => {
                if self.$field != d.$field {
                    parts.push(format!("{}={}", stringify!($field), self.$field));
                }
            };
        }
        put!(seed);
        put!(nodes);
        put!(n);
        put!(w);
        put!(r);
        put!(vnodes);
        put!(sync);
        if self.gossip != d.gossip {
            parts.push(format!(
                "membership={}",
                if self.gossip { "gossip" } else { "oracle" }
            ));
        }
        put!(rate);
        put!(reads);
        put!(keys);
        put!(loss);
        if (self.latency_min, self.latency_max) != (d.latency_min, d.latency_max) {
            parts.push(format!(
                "latency={}..{}",
                self.latency_min, self.latency_max
            ));
        }
        put!(speed);
        put!(scenario);
        if self.embed {
            parts.push("embed=1".to_string());
        }
        parts.join("&")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_round_trips_its_settings() {
        let s = Settings {
            seed: 42,
            nodes: 16,
            n: 3,
            w: 1,
            r: 1,
            sync: "interval:100".into(),
            gossip: false,
            rate: 200,
            latency_min: 5,
            latency_max: 50,
            speed: 10.0,
            embed: true,
            scenario: "read_repair".into(),
            ..Settings::default()
        };
        let q = s.to_query();
        assert!(
            q.contains("seed=42") && q.contains("membership=oracle") && q.contains("latency=5..50")
        );
        let back = parse(&format!("?{q}"));
        assert_eq!(back.warnings, Vec::<String>::new());
        assert_eq!(back.settings, s);
        assert_eq!(Settings::default().to_query(), "");
    }

    #[test]
    fn bad_values_are_reported_and_fall_back_to_defaults() {
        let p = parse("nodes=banana&w=9&speed=-1&sync=sometimes&scenario=nope&frobnicate=1&embed");
        let d = Settings::default();
        assert_eq!(p.settings.nodes, d.nodes);
        assert_eq!(p.settings.speed, d.speed);
        assert_eq!(p.settings.sync, d.sync);
        assert!(p.settings.embed);
        assert_eq!((p.settings.w, p.settings.r), (2, 2));
        assert_eq!(p.warnings.len(), 6, "{:#?}", p.warnings);
        assert!(p.warnings.iter().any(|w| w.contains("nodes=\"banana\"")));
        assert!(p.warnings.iter().any(|w| w.contains("frobnicate")));
    }

    #[test]
    fn quorums_must_fit_the_cluster() {
        let p = parse("nodes=2&n=3&w=3");
        assert_eq!(p.settings.n, 2);
        assert_eq!(p.settings.w, 2);
        assert_eq!(p.warnings.len(), 2, "{:#?}", p.warnings);
        let p = parse("n=5&w=3&r=3&nodes=8");
        assert!(p.warnings.is_empty());
        assert_eq!((p.settings.n, p.settings.w, p.settings.r), (5, 3, 3));
    }

    #[test]
    fn percent_encoding_is_decoded() {
        let p = parse("sync=interval%3A50&latency=3%2E%2E9");
        assert_eq!(p.settings.sync, "interval:50");
        assert_eq!((p.settings.latency_min, p.settings.latency_max), (3, 9));
        assert_eq!(decode("a%zz"), "a%zz");
        assert_eq!(decode("%4"), "%4");
        assert_eq!(decode("%é1"), "%é1");
    }
}
