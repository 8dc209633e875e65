//! The `fjord` binary.
//!
//! `fjord start` runs a single-node broker with zero configuration: it listens on
//! 127.0.0.1:9092 and keeps its data in `./fjord-data`. Settings use Kafka's property names
//! and come from `--config FILE` (properties or TOML), `FJORD_*` environment variables and
//! repeated `--override key=value`, in that order of precedence (last wins).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use fjord_broker::{Broker, BrokerConfig, Server};

#[derive(Parser)]
#[command(
    name = "fjord",
    version,
    about = "Fjord: a Kafka-compatible event streaming platform in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a broker (zero configuration: 127.0.0.1:9092, data in ./fjord-data)
    #[command(
        after_help = "Examples:\n  fjord start\n  fjord start --data-dir /var/lib/fjord --override num.partitions=3\n  fjord start --config server.properties\n  FJORD_LISTENERS=PLAINTEXT://0.0.0.0:9092 fjord start"
    )]
    Start(StartArgs),
}

#[derive(clap::Args)]
struct StartArgs {
    /// Data directory (short form of `--override log.dirs=DIR`)
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Properties or TOML file with Kafka broker property names
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Set one property, e.g. `--override num.partitions=3` (repeatable)
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Start(args) => start(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fjord: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn load_config(args: &StartArgs) -> anyhow::Result<BrokerConfig> {
    let mut builder = BrokerConfig::builder();
    if let Some(path) = &args.config {
        builder.file(path)?;
    }
    let ignored = builder.env(std::env::vars())?;
    for var in ignored {
        tracing::warn!(%var, "ignoring environment variable: no broker setting of that name");
    }
    for kv in &args.overrides {
        builder.override_kv(kv)?;
    }
    let mut config = builder.build()?;
    if let Some(dir) = &args.data_dir {
        config = config.with_data_dir(dir.clone());
    }
    Ok(config)
}

fn start(args: StartArgs) -> anyhow::Result<()> {
    let config = load_config(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let data_dir = config.data_dir.clone();
        let broker = Broker::open(config)?;
        let server = Server::bind(std::sync::Arc::clone(&broker))
            .await
            .context("binding listeners")?;
        let addrs: Vec<String> = server.local_addrs().iter().map(|a| a.to_string()).collect();
        let shown_dir = std::fs::canonicalize(&data_dir).unwrap_or(data_dir);
        println!(
            "fjord listening on {}, data in {}",
            addrs.join(" "),
            shown_dir.display()
        );
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let serve = tokio::spawn(server.serve(stop_rx));
        wait_for_signal().await?;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
        let _ = serve.await;
        let b = std::sync::Arc::clone(&broker);
        tokio::task::spawn_blocking(move || b.close())
            .await
            .context("closing logs")?;
        tracing::info!("stopped cleanly");
        Ok(())
    })
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}
