//! Command line (clap derive). The contract other tools and tests rely on:
//! `mamori [--json] run [-c CONFIG] [-r PATH]... [--json] [--health-addr ADDR]`.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "mamori", version, about = "eBPF host runtime security agent")]
pub struct Cli {
    /// Machine-readable output: Falco-shaped JSON alerts (`run`), JSON
    /// reports (other commands). Accepted before or after the subcommand.
    #[arg(long, global = true)]
    pub json: bool,

    /// Log filter (error, warn, info, debug, trace, or a tracing directive).
    #[arg(long, global = true, default_value = "info", env = "MAMORI_LOG")]
    pub log_level: String,

    /// Write logs as JSON.
    #[arg(long, global = true)]
    pub log_json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load the kernel programs and the rules, and report alerts.
    Run(RunArgs),
    /// Work with rules files without running the agent.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// List every field conditions and outputs may use.
    Fields,
    /// Evaluate rules over a recording (`run --record`) offline, as the
    /// agent would have live.
    Replay(ReplayArgs),
    /// Work with the Elasticsearch output.
    #[command(subcommand)]
    Es(EsCommand),
    /// Work with the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check the configuration (file, `-o` overrides and flags, as `run`
    /// takes them) and the rules it names, without running; exit 0 when
    /// both are valid.
    Check(RunArgs),
}

#[derive(Debug, Subcommand)]
pub enum EsCommand {
    /// Install (or update) the ILM policy, component and index templates
    /// for alerts and dead letters.
    Setup(EsArgs),
}

#[derive(Debug, Args)]
pub struct EsArgs {
    /// Configuration file (its `outputs.elasticsearch` section).
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,

    /// Elasticsearch URL (overrides the file).
    #[arg(long, env = "MAMORI_ES_URL")]
    pub es_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Load and compile rules files; exit 0 when they are valid, 1 otherwise.
    Validate {
        /// Rules file or directory, repeatable, loaded in order. Default:
        /// the built-in rules.
        #[arg(short = 'r', long = "rules")]
        rules: Vec<PathBuf>,
    },
    /// Show, part by part, why a rule does or does not match one event:
    /// the last event of a rules-test case, or event N of a recording.
    Explain(ExplainArgs),
    /// Run rule unit tests (YAML files of events and the rules they must
    /// fire) without a kernel; exit 0 when all pass.
    Test {
        /// Test files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Rules file or directory, repeatable. Default: the built-in rules.
        #[arg(short = 'r', long = "rules")]
        rules: Vec<PathBuf>,
    },
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["test", "recording"]))]
pub struct ExplainArgs {
    /// The rule's name.
    pub rule: String,

    /// A rules-test file; its case `--case` (default: the first).
    #[arg(long, value_name = "FILE")]
    pub test: Option<PathBuf>,

    #[arg(long, requires = "test")]
    pub case: Option<String>,

    /// A recording (`run --record`): the `--event`-th event (default the
    /// first) that the condition `--filter` selects.
    #[arg(long, value_name = "FILE", requires = "filter")]
    pub recording: Option<PathBuf>,

    /// A condition in the rules language picking the event, e.g.
    /// `proc.pid = 4242 and fd.name = /etc/shadow`.
    #[arg(long, value_name = "CONDITION", requires = "recording")]
    pub filter: Option<String>,

    #[arg(long, requires = "recording", default_value_t = 1)]
    pub event: u64,

    /// Rules file or directory, repeatable. Default: the built-in rules.
    #[arg(short = 'r', long = "rules")]
    pub rules: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The recording.
    pub file: PathBuf,

    /// Rules file or directory, repeatable. Default: the built-in rules.
    #[arg(short = 'r', long = "rules")]
    pub rules: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Configuration file (YAML).
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,

    /// Set a configuration key, over the file: `-o outputs.stdout.format=json`
    /// (the value is YAML). Repeatable.
    #[arg(short = 'o', long = "option", value_name = "KEY=VALUE")]
    pub options: Vec<String>,

    /// Rules file or directory (its *.yaml files, sorted by name). Repeatable;
    /// files load in order, later ones refine earlier ones. Default: ./rules
    /// if present, else the built-in default rules.
    #[arg(short = 'r', long = "rules")]
    pub rules: Vec<PathBuf>,

    /// Serve /healthz, /readyz and /metrics on this address.
    #[arg(long)]
    pub health_addr: Option<SocketAddr>,

    /// Also append alerts to this file.
    #[arg(long)]
    pub output_file: Option<PathBuf>,

    /// Print every captured event as a JSON line instead of alerts
    /// (for seeing what the kernel reports, and for writing rules).
    #[arg(long)]
    pub events: bool,

    /// Ring buffer size in MiB (a power of two).
    #[arg(long, default_value_t = 8)]
    pub ring_mib: u32,

    /// Send alerts to Elasticsearch at this URL (overrides
    /// `outputs.elasticsearch.url`).
    #[arg(long, env = "MAMORI_ES_URL")]
    pub es_url: Option<String>,

    /// Disk spool for Elasticsearch (default /var/lib/mamori/spool).
    #[arg(long)]
    pub spool_dir: Option<PathBuf>,

    /// A container runtime's CRI socket to ask for pod metadata (repeat
    /// for several; default: containerd's and CRI-O's usual sockets).
    #[arg(long, env = "MAMORI_CRI_SOCKET", value_delimiter = ',')]
    pub cri_socket: Vec<PathBuf>,

    /// Record the enriched event stream to this file (gzip JSON lines),
    /// for `mamori replay`.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
}
