//! `cargo xtask <command>`: the only entry points a person needs.
//!
//! - `setup`: install what a fresh Debian machine lacks (idempotent).
//! - `build`: build the agent (release).
//! - `run [ARGS]`: setup, build, then `mamori run ARGS` as root.
//! - `test`: setup, fmt check, clippy, unit tests, end-to-end tests.
//! - `es build|start|stop|status`: the real Elasticsearch node the tests
//!   use (from Maven Central, run as user `mamori-es`).
//! - `k8s up|down|status|kubectl ARGS`: a real single-node Kubernetes
//!   cluster (built from the Go module proxy, in its own namespaces).
//! - `bench capture|rules`: capture overhead on syscall loops; rule
//!   evaluation throughput.

mod bench;
mod cmd;
mod es;
mod image;
mod k8s;
mod pin;
mod prometheus;
mod setup;
mod test;
mod toolchain;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install apt packages, the pinned toolchain, bpf-linker; mount tracefs.
    Setup,
    /// Build the mamori binary (release).
    Build,
    /// Set up, build, and run `mamori run` with these arguments.
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Set up, then fmt check, clippy, unit tests and end-to-end tests.
    Test {
        /// Only run tests whose name contains this.
        filter: Option<String>,
        /// Skip fmt and clippy.
        #[arg(long)]
        no_lint: bool,
    },
    /// Benchmarks: `capture` (what the agent costs workloads, against no
    /// agent and bpftrace), `rules` (rule evaluation), `state`, `delivery`.
    Bench {
        #[arg(default_value = "capture")]
        what: String,
        /// Fewer rounds and shorter loops (a few minutes instead of ~30).
        #[arg(long)]
        quick: bool,
    },
    /// The test Elasticsearch node: `build`, `start`, `stop` or `status`.
    Es { what: String },
    /// The test Kubernetes cluster: `up`, `down`, `status`, `build`, or
    /// `kubectl ARGS` (as its admin, in its network namespace).
    K8s {
        what: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Prometheus's Alertmanager and promtool for the tests (built once
    /// from the Go module proxy).
    Prometheus,
    /// The container image (static musl binary, FROM scratch), built
    /// offline with podman.
    Image,
    /// Internal: one pinned workload loop for `bench capture`.
    #[command(hide = true)]
    BenchWorkload { kind: String, arg: String },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Setup => setup::run(),
        Command::Build => {
            setup::run()?;
            build()
        }
        Command::Run { args } => {
            setup::run()?;
            build()?;
            let mut full = vec!["run".to_owned()];
            full.extend(args);
            cmd::exec(cmd::root().join("target/release/mamori"), &full)
        }
        Command::Test { filter, no_lint } => {
            setup::run()?;
            test::run(filter.as_deref(), !no_lint)
        }
        Command::Bench { what, quick } => {
            setup::run()?;
            build()?;
            bench::run(&what, quick)
        }
        Command::Es { what } => {
            if what != "status" && what != "stop" {
                setup::run()?;
            }
            es::run(&what)
        }
        Command::K8s { what, args } => {
            if what == "up" || what == "build" {
                setup::run()?;
            }
            k8s::run(&what, &args)
        }
        Command::Prometheus => prometheus::build(),
        Command::Image => {
            setup::run()?;
            image::build()
        }
        Command::BenchWorkload { kind, arg } => bench::workload(&kind, &arg),
    }
}

fn build() -> anyhow::Result<()> {
    cmd::cargo(&["build", "--release", "--package", "mamori"])
}
