//! The `mamori` binary: parse the command line, run the command.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use mamori::{
    app::{self, RunSettings},
    capture,
    cli::{Cli, Command, ConfigCommand, EsArgs, EsCommand, RulesCommand, RunArgs},
    commands,
    config::{self, FormatName},
    outputs::{Format, Sink, elasticsearch::configure as es_config},
    rules_configmap,
    telemetry::logging,
};

/// The agent allocates for every event (decoded arguments, rendered
/// alerts); mimalloc's thread-local free lists cost a fraction of glibc's
/// and musl's malloc on that path.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(ref args) => run(&cli, args),
        Command::Rules(RulesCommand::Validate { ref rules }) => {
            match commands::validate(rules, cli.json) {
                Ok(true) => Ok(()),
                Ok(false) => return std::process::ExitCode::FAILURE,
                Err(e) => Err(e),
            }
        }
        Command::Rules(RulesCommand::Test {
            ref files,
            ref rules,
        }) => match commands::rules_test(files, rules, cli.json) {
            Ok(true) => Ok(()),
            Ok(false) => return std::process::ExitCode::FAILURE,
            Err(e) => Err(e),
        },
        Command::Rules(RulesCommand::Explain(ref args)) => commands::explain(args, cli.json),
        Command::Fields => {
            commands::fields(cli.json);
            Ok(())
        }
        Command::Replay(ref args) => commands::replay(&args.file, &args.rules, cli.json),
        Command::Es(EsCommand::Setup(ref args)) => es_setup(&cli, args),
        Command::Config(ConfigCommand::Check(ref args)) => config_check(&cli, args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mamori: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The configuration file, or an empty one.
fn load_config(path: Option<&PathBuf>, options: &[String]) -> anyhow::Result<config::File> {
    Ok(config::load_with(path.map(PathBuf::as_path), options)?)
}

/// The Elasticsearch output's settings from the file and flags.
fn es_settings(
    file: &config::File,
    config_path: Option<&PathBuf>,
    overrides: &es_config::Overrides,
) -> anyhow::Result<Option<mamori::outputs::elasticsearch::Settings>> {
    let path = config_path
        .cloned()
        .unwrap_or_else(|| PathBuf::from("(flags)"));
    Ok(es_config::settings(
        file.outputs
            .elasticsearch
            .as_ref()
            .unwrap_or(&Default::default()),
        overrides,
        &path,
    )?)
}

fn run(cli: &Cli, args: &RunArgs) -> anyhow::Result<()> {
    let file = load_config(args.config.as_ref(), &args.options)?;
    let level = file
        .log_level
        .clone()
        .unwrap_or_else(|| cli.log_level.clone());
    let json_logs = cli.log_json || file.log_format == Some(FormatName::Json);
    logging::init(&level, json_logs);
    let settings = settings(cli, args, file)?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(app::run(settings))
}

/// `mamori config check`: everything `run` would resolve, and the rules,
/// without loading anything into the kernel.
fn config_check(cli: &Cli, args: &RunArgs) -> anyhow::Result<()> {
    let file = load_config(args.config.as_ref(), &args.options)?;
    let settings = settings(cli, args, file)?;
    let ok = commands::config_check(&settings, cli.json)?;
    anyhow::ensure!(ok, "the rules do not load");
    Ok(())
}

/// `mamori es setup`: installs the templates and reports what it did.
fn es_setup(cli: &Cli, args: &EsArgs) -> anyhow::Result<()> {
    logging::init(&cli.log_level, cli.log_json);
    let file = load_config(args.config.as_ref(), &[])?;
    let overrides = es_config::Overrides {
        url: args.es_url.clone(),
        spool_dir: None,
    };
    let Some(settings) = es_settings(&file, args.config.as_ref(), &overrides)? else {
        anyhow::bail!("no Elasticsearch URL: pass --es-url or set outputs.elasticsearch.url");
    };
    let report = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(commands::es_setup(&settings))?;
    if cli.json {
        println!(
            "{}",
            serde_json::json!({"installed": report.installed, "fallbacks": report.fallbacks})
        );
    } else {
        for i in &report.installed {
            println!("installed {i}");
        }
        for f in &report.fallbacks {
            println!("note: {f}");
        }
    }
    Ok(())
}

/// Flags override the file; the file overrides defaults.
fn settings(cli: &Cli, args: &RunArgs, file: config::File) -> anyhow::Result<RunSettings> {
    let format_of = |f: Option<FormatName>| match f {
        Some(FormatName::Json) => Format::Json,
        Some(FormatName::Text) => Format::Text,
        None if cli.json => Format::Json,
        None => Format::Text,
    };
    let mut sinks = Vec::new();
    match &file.outputs.stdout {
        Some(s) if !s.enabled => {}
        Some(s) => sinks.push(Sink::Stdout(if cli.json {
            Format::Json
        } else {
            format_of(s.format)
        })),
        None => sinks.push(Sink::Stdout(format_of(None))),
    }
    if let Some(f) = &file.outputs.file {
        sinks.push(Sink::File {
            path: f.path.clone(),
            format: format_of(f.format.or(Some(FormatName::Json))),
            max_bytes: f.max_size_mib.unwrap_or(100) << 20,
            keep: f.keep.unwrap_or(5),
        });
    }
    if let Some(path) = &args.output_file {
        sinks.push(Sink::File {
            path: path.clone(),
            format: Format::Json,
            max_bytes: 100 << 20,
            keep: 5,
        });
    }
    let elasticsearch = es_settings(
        &file,
        args.config.as_ref(),
        &es_config::Overrides {
            url: args.es_url.clone(),
            spool_dir: args.spool_dir.clone(),
        },
    )?;
    let config_path = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("(flags)"));
    let alertmanager = match &file.outputs.alertmanager {
        Some(c) => mamori::outputs::webhook::configure::alertmanager(c, &config_path)?,
        None => None,
    };
    let http = match &file.outputs.http {
        Some(c) => mamori::outputs::webhook::configure::http(c, &config_path)?,
        None => None,
    };
    let rules = if !args.rules.is_empty() {
        args.rules.clone()
    } else if !file.rules.is_empty() {
        file.rules.clone()
    } else if PathBuf::from("rules").is_dir() {
        vec![PathBuf::from("rules")]
    } else {
        Vec::new()
    };
    let rules_configmap = file
        .rules_configmap
        .as_ref()
        .map(|c| rules_configmap::Settings {
            name: c.name.clone(),
            namespace: c.namespace.clone(),
            directory: c.directory.clone(),
        });
    if let Some(c) = &rules_configmap {
        anyhow::ensure!(
            rules.contains(&c.directory),
            "rules_configmap.directory {} is not among the rules loaded ({}): give it with -r too",
            c.directory.display(),
            rules
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let ring_mib = file.capture.ring_mib.unwrap_or(args.ring_mib);
    anyhow::ensure!(
        ring_mib.is_power_of_two() && (1..=1024).contains(&ring_mib),
        "--ring-mib must be a power of two between 1 and 1024, not {ring_mib}"
    );
    let mut capture = capture::Options {
        ring_bytes: ring_mib << 20,
        ..Default::default()
    };
    if let Some(args) = file.capture.args_bytes {
        capture.args_bytes = args;
    }
    if let Some(env) = file.capture.env_bytes {
        capture.env_bytes = env;
    }
    capture.buffer_bytes = file
        .capture
        .buffer_bytes
        .unwrap_or(capture::DEFAULT_BUFFER_BYTES);
    capture.bpf_stats = file.capture.bpf_stats.unwrap_or(false);
    capture.watch_unimplemented = file.capture.watch_unimplemented.unwrap_or(false);
    Ok(RunSettings {
        rules,
        rules_configmap,
        sinks,
        health_addr: args.health_addr.or(file.health_addr),
        events: args.events,
        capture,
        hostname: hostname(),
        elasticsearch,
        alertmanager,
        http,
        storm: mamori::outputs::storm::settings(&file.storm_control, &config_path)?,
        cri_sockets: if args.cri_socket.is_empty() {
            file.containers.cri_sockets
        } else {
            args.cri_socket.clone()
        },
        record: args.record.clone(),
        config_file: args.config.clone(),
        rules_options: mamori::rules_files::LoadOptions {
            mode: match file.rule_matching {
                Some(config::RuleMatching::All) => mamori_rules::MatchMode::All,
                Some(config::RuleMatching::First) | None => mamori_rules::MatchMode::First,
            },
            append_output: file
                .append_output
                .iter()
                .map(config::AppendOutput::to_rules)
                .collect(),
        },
        fd_table_bytes: file
            .state
            .fd_table_mib
            .map_or(mamori::state::fds::DEFAULT_BUDGET_BYTES, |m| {
                (m as usize) << 20
            }),
    })
}

/// `MAMORI_HOSTNAME` (the node name in Kubernetes), else the kernel's.
fn hostname() -> String {
    if let Ok(h) = std::env::var("MAMORI_HOSTNAME")
        && !h.is_empty()
    {
        return h;
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}
