//! What every Kafka tool shares: building librdkafka clients from `--bootstrap-server` and
//! properties, the reachability deadline, and turning client errors into clear messages.
//!
//! Each tool first fetches cluster metadata within a deadline (`--timeout`, the
//! `default.api.timeout.ms` / `max.block.ms` client property, or 5 s). When that fails the
//! tool stops with `cannot reach the broker at ADDR within Ns` and the last connection error
//! librdkafka reported, instead of retrying forever as a Java tool would.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use rdkafka::ClientContext;
use rdkafka::client::Client;
use rdkafka::config::{ClientConfig, FromClientConfigAndContext};
use rdkafka::error::KafkaError;
use rdkafka::metadata::Metadata;

/// Where tools connect when `--bootstrap-server` is not given.
pub const DEFAULT_BOOTSTRAP: &str = "localhost:9092";

/// How long a tool waits for the broker by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Java client properties that librdkafka does not know; the tools read the ones that
/// matter (`default.api.timeout.ms`, `max.block.ms`) and drop the rest instead of failing,
/// so configuration files written for the Java tools keep working.
const JAVA_ONLY: &[&str] = &[
    "default.api.timeout.ms",
    "max.block.ms",
    "key.serializer",
    "value.serializer",
    "key.deserializer",
    "value.deserializer",
    "retry.backoff.max.ms",
    "buffer.memory",
    "exclude.internal.topics",
    "interceptor.classes",
    "metric.reporters",
    "partitioner.class",
];

/// The pieces of client configuration every tool accepts.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Comma-separated `host:port` list.
    pub bootstrap: String,
    /// librdkafka properties, from the properties file first and then the command line.
    pub props: BTreeMap<String, String>,
    /// How long to wait for the broker before giving up.
    pub timeout: Duration,
}

impl ClientSettings {
    /// The settings of an admin tool: `--bootstrap-server`, the properties of
    /// `--command-config FILE` (if given) and `--timeout`.
    pub fn for_admin_tool(
        bootstrap: &str,
        command_config: Option<&std::path::Path>,
        timeout_ms: Option<u64>,
    ) -> anyhow::Result<ClientSettings> {
        let file_props = match command_config {
            Some(p) => crate::props::read_properties_file(p)?,
            None => Default::default(),
        };
        ClientSettings::new(Some(bootstrap), file_props, timeout_ms)
    }

    /// Builds settings; `props` later entries win, `timeout` (ms) overrides any property.
    pub fn new(
        bootstrap: Option<&str>,
        props: BTreeMap<String, String>,
        timeout_ms: Option<u64>,
    ) -> anyhow::Result<ClientSettings> {
        let from_props = ["default.api.timeout.ms", "max.block.ms"]
            .iter()
            .find_map(|k| props.get(*k).map(|v| (*k, v)));
        let timeout = match (timeout_ms, from_props) {
            (Some(ms), _) => Duration::from_millis(ms),
            (None, Some((k, v))) => Duration::from_millis(
                v.trim()
                    .parse()
                    .map_err(|_| anyhow!("invalid value '{v}' for {k}: expected milliseconds"))?,
            ),
            (None, None) => DEFAULT_TIMEOUT,
        };
        let bootstrap = bootstrap
            .map(str::to_string)
            .or_else(|| props.get("bootstrap.servers").cloned())
            .unwrap_or_else(|| DEFAULT_BOOTSTRAP.to_string());
        Ok(ClientSettings {
            bootstrap,
            props,
            timeout,
        })
    }

    /// The librdkafka configuration: bootstrap, socket timeouts bounded by the deadline, then
    /// the user's properties (minus Java-only ones).
    pub fn config(&self) -> ClientConfig {
        let mut cfg = ClientConfig::new();
        let ms = self.timeout.as_millis().clamp(10, 300_000).to_string();
        cfg.set("bootstrap.servers", &self.bootstrap)
            .set("socket.connection.setup.timeout.ms", &ms)
            .set("client.id", "fjord-cli")
            .set("log_level", "0");
        for (k, v) in &self.props {
            if JAVA_ONLY.contains(&k.as_str()) || k == "bootstrap.servers" {
                continue;
            }
            cfg.set(k, v);
        }
        cfg
    }

    /// [`ClientSettings::for_admin_tool`] for tool `fjord {tool}`, which sends raw protocol
    /// requests ([`crate::wire`]) and so needs a PLAINTEXT listener.
    pub fn for_wire_tool(
        tool: &str,
        bootstrap: &str,
        command_config: Option<&std::path::Path>,
        timeout_ms: Option<u64>,
    ) -> anyhow::Result<ClientSettings> {
        let settings = Self::for_admin_tool(bootstrap, command_config, timeout_ms)?;
        if !settings.plaintext() {
            anyhow::bail!(
                "fjord {tool} needs a PLAINTEXT listener (security.protocol is not PLAINTEXT)"
            );
        }
        Ok(settings)
    }

    /// Admin API options with this tool's timeout for both the request and the operation.
    pub fn admin_options(&self) -> rdkafka::admin::AdminOptions {
        rdkafka::admin::AdminOptions::new()
            .request_timeout(Some(self.timeout))
            .operation_timeout(Some(self.timeout))
    }

    /// Whether raw protocol requests (see [`crate::wire`]) can reach the broker: only over
    /// plaintext listeners.
    pub fn plaintext(&self) -> bool {
        self.props
            .get("security.protocol")
            .is_none_or(|p| p.eq_ignore_ascii_case("plaintext"))
    }

    /// Formats the "unreachable" error.
    pub fn unreachable(&self, ctx: &ToolContext) -> anyhow::Error {
        let secs = self.timeout.as_secs_f64();
        let shown = if secs.fract() == 0.0 {
            format!("{secs:.0}s")
        } else {
            format!("{secs:.1}s")
        };
        let reason = ctx
            .last_error()
            .or_else(|| crate::wire::probe(&self.bootstrap, Duration::from_secs(1)));
        match reason {
            Some(e) => anyhow!(
                "cannot reach the broker at {} within {shown} ({e})",
                self.bootstrap
            ),
            None => anyhow!(
                "cannot reach the broker at {} within {shown}",
                self.bootstrap
            ),
        }
    }
}

/// Client context that remembers the last error librdkafka reported (connection refused,
/// name resolution failures, ...) so the tools can say why a broker is unreachable.
/// As a consumer's context it also counts the group's assignments to it.
#[derive(Clone, Default)]
pub struct ToolContext {
    last: Arc<Mutex<Option<String>>>,
    assignments: Arc<std::sync::atomic::AtomicU64>,
}

impl ToolContext {
    /// Returns the last client-level error, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last.lock().ok().and_then(|g| g.clone())
    }

    /// How many partition assignments the group has made to this consumer so far (counted
    /// after each is applied).
    pub fn assignments(&self) -> Arc<std::sync::atomic::AtomicU64> {
        Arc::clone(&self.assignments)
    }
}

impl rdkafka::consumer::ConsumerContext for ToolContext {
    fn post_rebalance(
        &self,
        _: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &rdkafka::consumer::Rebalance<'_>,
    ) {
        if let rdkafka::consumer::Rebalance::Assign(_) = rebalance {
            self.assignments
                .fetch_add(1, std::sync::atomic::Ordering::Release);
        }
    }
}

impl ClientContext for ToolContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if let Ok(mut g) = self.last.lock() {
            *g = Some(if reason.is_empty() {
                error.to_string()
            } else {
                reason.to_string()
            });
        }
    }
}

/// Creates a librdkafka client of type `T` with a fresh [`ToolContext`].
pub fn create<T>(cfg: &ClientConfig) -> anyhow::Result<(T, ToolContext)>
where
    T: FromClientConfigAndContext<ToolContext>,
{
    let ctx = ToolContext::default();
    let client = T::from_config_and_context(cfg, ctx.clone())
        .map_err(|e| anyhow!("invalid client configuration: {}", describe_kafka_error(&e)))?;
    Ok((client, ctx))
}

/// Fetches metadata (all topics, or one) within the settings' deadline; a timeout becomes
/// the "cannot reach the broker" error.
pub fn metadata(
    client: &Client<ToolContext>,
    settings: &ClientSettings,
    topic: Option<&str>,
) -> anyhow::Result<Metadata> {
    let started = Instant::now();
    match client.fetch_metadata(topic, settings.timeout) {
        Ok(m) => Ok(m),
        Err(e) if started.elapsed() + Duration::from_millis(50) >= settings.timeout => {
            let _ = e;
            Err(settings.unreachable(client.context()))
        }
        Err(e) => Err(anyhow!(describe_kafka_error(&e))).context("fetching metadata"),
    }
}

/// The options by which an admin tool reaches the cluster, with Kafka's names.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectionArgs {
    /// The broker to connect to (host:port[,host:port...])
    #[arg(long, value_name = "SERVER", default_value = DEFAULT_BOOTSTRAP)]
    bootstrap_server: String,
    /// Client properties file (librdkafka/Kafka property names)
    #[arg(long, value_name = "FILE")]
    command_config: Option<std::path::PathBuf>,
    /// How long to wait for the broker, in ms (default 5000)
    #[arg(long, value_name = "MS")]
    timeout: Option<u64>,
}

impl ConnectionArgs {
    /// [`ClientSettings::for_admin_tool`] from these options.
    pub fn settings(&self) -> anyhow::Result<ClientSettings> {
        ClientSettings::for_admin_tool(
            &self.bootstrap_server,
            self.command_config.as_deref(),
            self.timeout,
        )
    }

    /// [`ClientSettings::for_wire_tool`] from these options, for `fjord {tool}`.
    pub fn wire_settings(&self, tool: &str) -> anyhow::Result<ClientSettings> {
        ClientSettings::for_wire_tool(
            tool,
            &self.bootstrap_server,
            self.command_config.as_deref(),
            self.timeout,
        )
    }
}

/// The cluster's metadata (all topics), and its brokers as (id, `host:port`) sorted by id,
/// read with a librdkafka client of group id `fjord-{tool}` (never joined).
pub fn cluster(
    settings: &ClientSettings,
    tool: &str,
) -> anyhow::Result<(Metadata, Vec<(i32, String)>)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let (client, _ctx): (BaseConsumer<ToolContext>, _) = {
        let mut cfg = settings.config();
        cfg.set("group.id", format!("fjord-{tool}"));
        create(&cfg)?
    };
    let metadata = metadata(client.client(), settings, None)?;
    let mut brokers: Vec<(i32, String)> = metadata
        .brokers()
        .iter()
        .map(|b| (b.id(), format!("{}:{}", b.host(), b.port())))
        .collect();
    brokers.sort();
    Ok((metadata, brokers))
}

/// A short message for a client error: the librdkafka error code's description.
pub fn describe_kafka_error(e: &KafkaError) -> String {
    match e {
        KafkaError::ClientCreation(s) => s.clone(),
        KafkaError::ClientConfig(_, desc, key, value) => {
            format!("invalid property {key}={value}: {desc}")
        }
        other => other.to_string(),
    }
}

/// Runs a future on a small current-thread runtime (the admin API is async).
pub fn block_on<F: std::future::Future>(f: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    Ok(rt.block_on(f))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn timeout_comes_from_flag_then_properties_then_default() {
        let mut props = BTreeMap::new();
        let s = ClientSettings::new(None, props.clone(), None).unwrap();
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
        assert_eq!(s.bootstrap, "localhost:9092");
        props.insert("default.api.timeout.ms".into(), "1500".into());
        let s = ClientSettings::new(Some("h:1"), props.clone(), None).unwrap();
        assert_eq!(s.timeout, Duration::from_millis(1500));
        assert_eq!(s.bootstrap, "h:1");
        let s = ClientSettings::new(None, props.clone(), Some(200)).unwrap();
        assert_eq!(s.timeout, Duration::from_millis(200));
        props.insert("default.api.timeout.ms".into(), "soon".into());
        assert!(ClientSettings::new(None, props, None).is_err());
    }

    #[test]
    fn bootstrap_can_come_from_the_properties_file() {
        let mut props = BTreeMap::new();
        props.insert("bootstrap.servers".into(), "b:9".into());
        let s = ClientSettings::new(None, props, None).unwrap();
        assert_eq!(s.bootstrap, "b:9");
    }

    #[test]
    fn java_only_properties_are_not_passed_to_librdkafka() {
        let mut props = BTreeMap::new();
        props.insert("key.serializer".into(), "x".into());
        props.insert("acks".into(), "1".into());
        let s = ClientSettings::new(None, props, None).unwrap();
        let cfg = s.config();
        assert_eq!(cfg.get("acks"), Some("1"));
        assert_eq!(cfg.get("key.serializer"), None);
    }
}
