//! The `ringstore` binary: the command-line interface to a native node.
//!
//! Today it offers the storage engine demo; the node, the local cluster and the client
//! commands arrive with the cluster (see the README).

use clap::{Parser, Subcommand};
use std::path::PathBuf;

mod storage_demo;

/// ringstore: a Dynamo-style distributed key-value store.
#[derive(Parser, Debug)]
#[command(name = "ringstore", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
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

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::StorageDemo {
            data_dir,
            keys,
            value_bytes,
        } => storage_demo::run(data_dir, keys, value_bytes),
    }
}
