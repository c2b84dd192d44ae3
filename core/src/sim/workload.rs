//! A client workload generator: a rate of operations, a read/write/delete mix, a key
//! distribution, value sizes and a consistency level, all drawn from the simulation's seeded
//! generator.
//!
//! A put's value is `value_bytes` long, or, for `large_value_pct` percent of puts, drawn
//! uniformly up to `value_bytes_max` (the cluster's limit), a quarter of those exactly at it:
//! values at the limit are where encodings that add a few bytes (a hint, a frame) overflow.

use crate::DetRng;
use crate::node::{ClientOp, Consistency};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// How keys are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyDistribution {
    /// Every key equally likely.
    Uniform,
    /// 80% of operations go to the first 20% of keys (hot keys).
    Hot,
}

/// A steady client workload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadConfig {
    /// Operations per simulated second (0 = off).
    pub ops_per_sec: u32,
    /// Percentage of reads.
    pub read_pct: u8,
    /// Percentage of deletes (the rest are puts).
    pub delete_pct: u8,
    /// Number of distinct keys: `key0` … `key{keys-1}`.
    pub keys: u32,
    /// How keys are chosen.
    pub distribution: KeyDistribution,
    /// Bytes per value.
    pub value_bytes: usize,
    /// Percentage of puts with a large value (see the module docs).
    #[serde(default)]
    pub large_value_pct: u8,
    /// The largest value drawn: the cluster's `value_bytes_max`.
    #[serde(default)]
    pub value_bytes_max: usize,
    /// Consistency for every operation (`None`: the cluster's W and R).
    pub consistency: Option<Consistency>,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            ops_per_sec: 0,
            read_pct: 50,
            delete_pct: 5,
            keys: 100,
            distribution: KeyDistribution::Uniform,
            value_bytes: 16,
            large_value_pct: 0,
            value_bytes_max: 0,
            consistency: None,
        }
    }
}

/// Draws one operation. `counter` makes values unique, so a read shows which write it saw.
pub fn next_op(config: &WorkloadConfig, rng: &mut DetRng, counter: u64) -> ClientOp {
    let keys = config.keys.max(1);
    let index = match config.distribution {
        KeyDistribution::Uniform => rng.random_range(0..keys),
        KeyDistribution::Hot => {
            let hot = (keys / 5).max(1);
            if rng.random_range(0..100) < 80 {
                rng.random_range(0..hot)
            } else {
                rng.random_range(0..keys)
            }
        }
    };
    let key = format!("key{index}").into_bytes();
    let roll = rng.random_range(0..100u8);
    if roll < config.read_pct {
        ClientOp::Get {
            key,
            consistency: config.consistency,
        }
    } else if roll < config.read_pct.saturating_add(config.delete_pct) {
        ClientOp::Delete {
            key,
            consistency: config.consistency,
        }
    } else {
        let mut value = format!("v{counter}").into_bytes();
        let mut len = config.value_bytes;
        if config.large_value_pct > 0 && rng.random_range(0..100u8) < config.large_value_pct {
            let max = config.value_bytes_max.max(len);
            len = if rng.random_range(0..4u8) == 0 {
                max
            } else {
                rng.random_range(len..=max)
            };
        }
        value.resize(len.max(value.len()), b'.');
        ClientOp::Put {
            key,
            value,
            consistency: config.consistency,
        }
    }
}
