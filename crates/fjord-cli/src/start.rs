//! `fjord start`: runs a single-node broker with zero configuration.
//!
//! It listens on 127.0.0.1:9092 and keeps its data in `./fjord-data`. Settings use Kafka's
//! property names and come from `--config FILE` (properties or TOML), `FJORD_*` environment
//! variables and repeated `--override key=value`, in that order of precedence (last wins).

use std::path::PathBuf;

use anyhow::Context;
use fjord_broker::{Broker, BrokerConfig, Server};

/// Examples shown by `fjord start --help`.
pub const EXAMPLES: &str = "Examples:\n  fjord start\n  fjord start --data-dir /var/lib/fjord --override num.partitions=3\n  fjord start --config server.properties\n  FJORD_LISTENERS=PLAINTEXT://0.0.0.0:9092 fjord start";

/// Arguments of `fjord start`.
#[derive(clap::Args)]
pub struct StartArgs {
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

/// Runs the broker until Ctrl-C or SIGTERM.
pub fn run(args: StartArgs) -> anyhow::Result<()> {
    init_logging();
    start(args)
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
    // Before any log is opened: each partition keeps files open (fjord_broker::limits).
    match fjord_broker::limits::raise_open_file_limit() {
        Ok(fjord_broker::limits::FileLimit::Raised(from, to)) => {
            tracing::info!(from, to, "raised the open-file limit to the hard limit");
        }
        Ok(fjord_broker::limits::FileLimit::AtHard(_)) => {}
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
    // Every runtime thread serves requests (workers, and blocking threads for fsyncs and
    // file work); each asks for the configured time slice (fjord_broker::sched says why).
    let slice_us = u64::try_from(config.get_i64("request.thread.slice.us")).unwrap_or(0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(move || {
            if slice_us > 0
                && let Err(e) =
                    fjord_broker::sched::request_slice(std::time::Duration::from_micros(slice_us))
            {
                tracing::debug!(error = %e, "request.thread.slice.us not applied");
            }
        })
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let data_dir = config.data_dir.clone();
        let broker = Broker::open(config)?;
        let server = Server::bind(std::sync::Arc::clone(&broker))
            .await
            .context("binding listeners")?;
        // Handlers first: whoever reads the "listening" line may signal at once.
        let signals = Signals::install()?;
        let addrs: Vec<String> = server.local_addrs().iter().map(|a| a.to_string()).collect();
        let shown_dir = std::fs::canonicalize(&data_dir).unwrap_or(data_dir);
        println!(
            "fjord listening on {}, data in {}",
            addrs.join(" "),
            shown_dir.display()
        );
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let serve = tokio::spawn(server.serve(stop_rx));
        signals.wait().await;
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

/// SIGINT and SIGTERM streams, registered before the broker announces itself.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            int: signal(SignalKind::interrupt()).context("installing SIGINT handler")?,
            term: signal(SignalKind::terminate()).context("installing SIGTERM handler")?,
        })
    }

    /// Waits for Ctrl-C or SIGTERM.
    async fn wait(mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}
