//! The `ringstore` binary: run a node or a local cluster, talk to a node, inspect a cluster.
//! `ringstore --help` and `ringstore COMMAND --help` describe everything.

use anyhow::Context;
use clap::{Parser, Subcommand};
use ringstore_node::client::Client;
use ringstore_node::options::NodeOptions;
use std::path::PathBuf;

/// mimalloc instead of glibc's malloc: the node allocates and frees many small buffers on
/// several threads (messages, requests, cells), where glibc's arenas spend measurably more
/// (docs/benchmarks.md, "The native node's hot path").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod commands;
mod demo;
mod storage_demo;

/// ringstore: a Dynamo-style distributed key-value store.
#[derive(Parser, Debug)]
#[command(name = "ringstore", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where a client command sends its request, and how many replicas must answer.
#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    /// The node to ask (`host:port`); it coordinates the request.
    #[arg(long, default_value = "127.0.0.1:7001")]
    node: String,
    /// How many replicas must answer: one, quorum, all, or a number.
    #[arg(long)]
    consistency: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one node of a cluster (until Ctrl-C). A flag given twice takes its last value.
    #[command(args_override_self = true)]
    Node(NodeOptions),
    /// Start a local cluster of separate node processes, wait until it has formed, print the
    /// page's URL, and stop every node on Ctrl-C.
    Demo(demo::DemoOptions),
    /// Store a value: `ringstore put KEY VALUE`.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
        #[command(flatten)]
        target: Target,
    },
    /// Read a value: `ringstore get KEY` prints it (exit status 1 if absent).
    Get {
        /// The key.
        key: String,
        #[command(flatten)]
        target: Target,
    },
    /// Delete a key.
    Delete {
        /// The key.
        key: String,
        #[command(flatten)]
        target: Target,
    },
    /// A table of the cluster's members as one node sees them: state, phi, ownership.
    Status {
        /// The node to ask.
        #[arg(long, default_value = "127.0.0.1:7001")]
        node: String,
    },
    /// The ring as one node sees it: every token in order, its owner and its share.
    Ring {
        /// The node to ask.
        #[arg(long, default_value = "127.0.0.1:7001")]
        node: String,
    },
    /// Load a running cluster with reads and writes and report throughput, latency
    /// percentiles and errors (first it writes every key once, so reads find values).
    Bench(ringstore_node::bench::BenchOptions),
    /// Walk one node's storage engine through writes, a flush, compactions, a restart and
    /// recovery on real files, printing what happens at each step.
    StorageDemo {
        /// Directory for the engine's files (default: a fresh temporary directory). Run twice
        /// with the same directory to see recovery of the first run's data.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// How many keys to write.
        #[arg(long, default_value_t = 100_000)]
        keys: u64,
        /// Bytes per value.
        #[arg(long, default_value_t = 100)]
        value_bytes: usize,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

/// A node's runtime: one thread for all its tasks (`--threads 1`, the default), or a pool.
fn node_runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    builder
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Node(opts) => {
            init_logging();
            node_runtime(opts.threads)?.block_on(ringstore_node::runtime::run(opts))
        }
        Command::Demo(opts) => runtime()?.block_on(demo::run(opts)),
        Command::Put { key, value, target } => {
            std::process::exit(commands::put(&target, &key, value.as_bytes())?)
        }
        Command::Get { key, target } => std::process::exit(commands::get(&target, &key)?),
        Command::Delete { key, target } => std::process::exit(commands::delete(&target, &key)?),
        Command::Status { node } => commands::status(&Client::new(&node)),
        Command::Ring { node } => commands::ring(&Client::new(&node)),
        Command::Bench(opts) => ringstore_node::bench::run(opts),
        Command::StorageDemo {
            data_dir,
            keys,
            value_bytes,
        } => storage_demo::run(data_dir, keys, value_bytes),
    }
}
