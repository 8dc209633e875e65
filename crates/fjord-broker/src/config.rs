//! Broker configuration under Kafka's property names.
//!
//! Settings come from four layers, later ones winning: built-in defaults, a properties or TOML
//! file (`--config`), `FJORD_*` environment variables (`FJORD_LOG_DIRS` -> `log.dirs`), and
//! `--override key=value` flags. Every setting is checked when the broker starts: an unknown
//! property name or an invalid value is an error naming the property. Environment variables
//! are the one exception for unknown names: the environment is shared with other programs, so an
//! unknown `FJORD_*` variable is logged and ignored, while an invalid value still fails.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where a setting's value came from (Kafka's `ConfigSource` for broker configs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// Set in a file, the environment or an override at start.
    Static,
}

/// The value type of a setting, as reported by DescribeConfigs v3+.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// `true` / `false`.
    Boolean,
    /// Free text.
    String,
    /// 32-bit integer.
    Int,
    /// 64-bit integer.
    Long,
    /// Comma-separated list.
    List,
}

impl ConfigType {
    /// Returns Kafka's wire code for the type (DescribeConfigs `config_type`).
    pub fn code(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Long => 5,
            ConfigType::List => 7,
        }
    }
}

/// One broker property the broker understands.
pub struct BrokerProperty {
    /// Kafka's name, e.g. `log.segment.bytes`.
    pub name: &'static str,
    /// Default value as text.
    pub default: &'static str,
    /// Value type.
    pub kind: ConfigType,
    /// One-line documentation.
    pub doc: &'static str,
}

/// Every broker property Fjord accepts, with its default.
pub const BROKER_PROPERTIES: &[BrokerProperty] = &[
    prop(
        "listeners",
        "PLAINTEXT://127.0.0.1:9092",
        ConfigType::List,
        "Listener URIs the broker binds; port 0 picks a free port.",
    ),
    prop(
        "advertised.listeners",
        "",
        ConfigType::List,
        "Addresses given to clients in metadata; defaults to the bound listeners.",
    ),
    prop(
        "log.dirs",
        "./fjord-data",
        ConfigType::String,
        "Directory holding the metadata log and partition logs.",
    ),
    prop("node.id", "1", ConfigType::Int, "This broker's node id."),
    prop(
        "num.partitions",
        "1",
        ConfigType::Int,
        "Partitions of auto-created topics and of topics created with -1 partitions.",
    ),
    prop(
        "auto.create.topics.enable",
        "true",
        ConfigType::Boolean,
        "Whether Metadata requests may create missing topics.",
    ),
    prop(
        "default.replication.factor",
        "1",
        ConfigType::Int,
        "Replication factor of auto-created topics.",
    ),
    prop(
        "log.segment.bytes",
        "1073741824",
        ConfigType::Int,
        "Maximum size of one segment file before a new one is rolled.",
    ),
    prop(
        "log.roll.ms",
        "604800000",
        ConfigType::Long,
        "Maximum age of the active segment before a new one is rolled.",
    ),
    prop(
        "log.retention.ms",
        "604800000",
        ConfigType::Long,
        "How long segments are kept; -1 keeps them forever.",
    ),
    prop(
        "log.retention.bytes",
        "-1",
        ConfigType::Long,
        "Maximum partition size before old segments are deleted; -1 is unlimited.",
    ),
    prop(
        "log.segment.delete.delay.ms",
        "60000",
        ConfigType::Long,
        "Default time a deleted segment's files stay before they are removed.",
    ),
    prop(
        "log.retention.check.interval.ms",
        "300000",
        ConfigType::Long,
        "How often retention is applied.",
    ),
    prop(
        "log.flush.interval.messages",
        "9223372036854775807",
        ConfigType::Long,
        "Messages appended to a partition before it is fsynced.",
    ),
    prop(
        "log.flush.interval.ms",
        "9223372036854775807",
        ConfigType::Long,
        "Longest time appended data stays un-fsynced.",
    ),
    prop(
        "log.index.interval.bytes",
        "4096",
        ConfigType::Int,
        "Bytes of log between two offset index entries.",
    ),
    prop(
        "log.cleanup.policy",
        "delete",
        ConfigType::List,
        "Default cleanup policy of topics.",
    ),
    prop(
        "log.message.timestamp.type",
        "CreateTime",
        ConfigType::String,
        "Default timestamp type of topics: CreateTime or LogAppendTime.",
    ),
    prop(
        "message.max.bytes",
        "1048588",
        ConfigType::Int,
        "Largest record batch the broker accepts.",
    ),
    prop(
        "socket.request.max.bytes",
        "104857600",
        ConfigType::Int,
        "Largest request frame the broker accepts.",
    ),
    prop(
        "min.insync.replicas",
        "1",
        ConfigType::Int,
        "Replicas that must acknowledge an acks=all produce.",
    ),
    prop(
        "compression.type",
        "producer",
        ConfigType::String,
        "Compression of stored batches; only 'producer' (keep as sent) is supported.",
    ),
    prop(
        "cluster.id",
        "",
        ConfigType::String,
        "Cluster id; generated and stored in the data dir on first start when empty.",
    ),
    prop(
        "offsets.topic.num.partitions",
        "50",
        ConfigType::Int,
        "Partitions of __consumer_offsets (fixed once the topic exists).",
    ),
    prop(
        "offsets.retention.minutes",
        "10080",
        ConfigType::Int,
        "Committed offsets of an empty group are deleted after this long.",
    ),
    prop(
        "offsets.retention.check.interval.ms",
        "600000",
        ConfigType::Long,
        "How often committed offsets are checked for expiry.",
    ),
    prop(
        "offset.metadata.max.bytes",
        "4096",
        ConfigType::Int,
        "Largest metadata string of a committed offset.",
    ),
    prop(
        "group.initial.rebalance.delay.ms",
        "3000",
        ConfigType::Int,
        "How long an empty classic group waits for more members before its first rebalance.",
    ),
    prop(
        "group.min.session.timeout.ms",
        "6000",
        ConfigType::Int,
        "Smallest session timeout a classic member may ask for.",
    ),
    prop(
        "group.max.session.timeout.ms",
        "1800000",
        ConfigType::Int,
        "Largest session timeout a classic member may ask for.",
    ),
    prop(
        "group.consumer.session.timeout.ms",
        "45000",
        ConfigType::Int,
        "Session timeout of KIP-848 consumer group members.",
    ),
    prop(
        "group.consumer.heartbeat.interval.ms",
        "5000",
        ConfigType::Int,
        "Heartbeat interval given to KIP-848 consumer group members.",
    ),
    prop(
        "max.incremental.fetch.session.cache.slots",
        "1000",
        ConfigType::Int,
        "Most incremental fetch sessions (KIP-227) the broker keeps; 0 turns them off.",
    ),
    prop(
        "max.connections",
        "2147483647",
        ConfigType::Int,
        "Most client connections the broker accepts at once.",
    ),
    prop(
        "max.connections.per.ip",
        "2147483647",
        ConfigType::Int,
        "Most client connections from one IP address.",
    ),
    prop(
        "connections.max.idle.ms",
        "600000",
        ConfigType::Long,
        "A connection with no request for this long is closed.",
    ),
    prop(
        "queued.max.request.bytes",
        "536870912",
        ConfigType::Long,
        "Bytes of large requests being read or handled at once, over all connections; readers wait beyond it.",
    ),
    prop(
        "socket.loopback.congestion.control",
        "cubic",
        ConfigType::String,
        "TCP congestion control for connections from this host (loopback addresses); empty keeps the system's. Pacing algorithms such as BBR time every send on a path with no link to pace.",
    ),
    prop(
        "request.thread.slice.us",
        "300",
        ConfigType::Int,
        "Scheduler time slice, in microseconds, that the threads serving requests ask for (Linux 6.12 and later); shorter than other tasks' slices, it lets a request run as soon as it arrives instead of after them. 100 to 100000, or 0 for the kernel's default.",
    ),
];

const fn prop(
    name: &'static str,
    default: &'static str,
    kind: ConfigType,
    doc: &'static str,
) -> BrokerProperty {
    BrokerProperty {
        name,
        default,
        kind,
        doc,
    }
}

/// Looks up a broker property by name.
pub fn broker_property(name: &str) -> Option<&'static BrokerProperty> {
    BROKER_PROPERTIES.iter().find(|p| p.name == name)
}

/// A configuration error, always naming the offending setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The property name is not one Fjord knows.
    #[error("unknown setting `{name}` (from {origin}){hint}")]
    Unknown {
        /// The name as given.
        name: String,
        /// Where it came from.
        origin: String,
        /// A "did you mean" suffix, possibly empty.
        hint: String,
    },
    /// The value does not parse or is out of range.
    #[error("invalid value `{value}` for setting `{name}`: {reason}")]
    Invalid {
        /// The property name.
        name: String,
        /// The rejected value.
        value: String,
        /// Why.
        reason: String,
    },
    /// The config file could not be read or parsed.
    #[error("config file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// One `NAME://host:port` listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Listener name, e.g. `PLAINTEXT`.
    pub name: String,
    /// Host part as written.
    pub host: String,
    /// Port (0 = pick a free one).
    pub port: u16,
}

/// The broker's validated configuration.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    values: BTreeMap<String, (String, Source)>,
    /// Parsed `listeners`.
    pub listeners: Vec<Listener>,
    /// Parsed `advertised.listeners` (empty = derive from bound listeners).
    pub advertised_listeners: Vec<Listener>,
    /// `log.dirs`.
    pub data_dir: PathBuf,
    /// `node.id`.
    pub node_id: i32,
    /// `num.partitions`.
    pub num_partitions: i32,
    /// `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval_ms: i64,
    /// `socket.request.max.bytes`.
    pub socket_request_max_bytes: usize,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        // The defaults are valid by construction; `from_layers` with nothing cannot fail.
        match BrokerConfig::builder().build() {
            Ok(config) => config,
            Err(e) => unreachable!("built-in defaults are invalid: {e}"),
        }
    }
}

/// Collects settings layer by layer, then validates them.
#[derive(Debug, Default)]
pub struct ConfigBuilder {
    values: BTreeMap<String, (String, String)>,
}

impl ConfigBuilder {
    /// Sets `name` to `value`, remembering `origin` for error messages. Unknown names fail.
    pub fn set(&mut self, name: &str, value: &str, origin: &str) -> Result<&mut Self, ConfigError> {
        let name = name.trim();
        if broker_property(name).is_none() {
            return Err(ConfigError::Unknown {
                name: name.to_string(),
                origin: origin.to_string(),
                hint: did_you_mean(name),
            });
        }
        self.values.insert(
            name.to_string(),
            (value.trim().to_string(), origin.to_string()),
        );
        Ok(self)
    }

    /// Reads a Java properties file (`key=value` / `key: value`, `#` and `!` comments) or, when
    /// the path ends in `.toml`, a TOML file whose keys are the property names (dotted keys and
    /// tables both work: `log.dirs = "x"` and `[log] dirs = "x"` mean the same).
    pub fn file(&mut self, path: &std::path::Path) -> Result<&mut Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let origin = path.display().to_string();
        if path.extension().is_some_and(|e| e == "toml") {
            let table: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::File {
                        path: path.to_path_buf(),
                        reason: e.to_string(),
                    })?;
            let mut flat = Vec::new();
            flatten_toml("", &toml::Value::Table(table), &mut flat);
            for (k, v) in flat {
                self.set(&k, &v, &origin)?;
            }
        } else {
            for (lineno, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                    continue;
                }
                let Some(split) = line.find(['=', ':']) else {
                    return Err(ConfigError::File {
                        path: path.to_path_buf(),
                        reason: format!("line {}: expected key=value", lineno + 1),
                    });
                };
                let (k, v) = (&line[..split], &line[split + 1..]);
                self.set(k, v, &format!("{origin}:{}", lineno + 1))?;
            }
        }
        Ok(self)
    }

    /// Applies `FJORD_*` variables: `FJORD_LOG_DIRS=/x` sets `log.dirs`. Unknown names are
    /// returned (for a warning) rather than failing; see the module docs.
    pub fn env<I: IntoIterator<Item = (String, String)>>(
        &mut self,
        vars: I,
    ) -> Result<Vec<String>, ConfigError> {
        let mut ignored = Vec::new();
        for (key, value) in vars {
            let Some(rest) = key.strip_prefix("FJORD_") else {
                continue;
            };
            let name = rest.to_ascii_lowercase().replace('_', ".");
            if broker_property(&name).is_some() {
                self.set(&name, &value, &format!("environment variable {key}"))?;
            } else {
                ignored.push(key);
            }
        }
        Ok(ignored)
    }

    /// Applies one `key=value` override.
    pub fn override_kv(&mut self, kv: &str) -> Result<&mut Self, ConfigError> {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(ConfigError::Invalid {
                name: kv.to_string(),
                value: String::new(),
                reason: "an override must be key=value".into(),
            });
        };
        self.set(k, v, "--override")
    }

    /// Adds where a setting came from to an `Invalid` error.
    fn with_origin(&self, e: ConfigError) -> ConfigError {
        match e {
            ConfigError::Invalid {
                name,
                value,
                reason,
            } => {
                let reason = match self.values.get(&name) {
                    Some((_, origin)) => format!("{reason} (from {origin})"),
                    None => reason,
                };
                ConfigError::Invalid {
                    name,
                    value,
                    reason,
                }
            }
            other => other,
        }
    }

    /// Validates every setting and returns the configuration.
    pub fn build(&self) -> Result<BrokerConfig, ConfigError> {
        let mut values = BTreeMap::new();
        for p in BROKER_PROPERTIES {
            let (v, source) = match self.values.get(p.name) {
                Some((v, _)) => (v.clone(), Source::Static),
                None => (p.default.to_string(), Source::Default),
            };
            check_type(p, &v).map_err(|e| self.with_origin(e))?;
            values.insert(p.name.to_string(), (v, source));
        }
        let get = |name: &str| {
            values
                .get(name)
                .map(|(v, _)| v.as_str())
                .unwrap_or_default()
        };
        let invalid = |name: &str, reason: &str| {
            self.with_origin(ConfigError::Invalid {
                name: name.to_string(),
                value: get(name).to_string(),
                reason: reason.to_string(),
            })
        };
        let listeners = parse_listeners("listeners", get("listeners"))?;
        if listeners.is_empty() {
            return Err(invalid("listeners", "at least one listener is required"));
        }
        let advertised_listeners =
            parse_listeners("advertised.listeners", get("advertised.listeners"))?;
        let dirs: Vec<&str> = get("log.dirs")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if dirs.len() != 1 {
            return Err(invalid("log.dirs", "exactly one directory is supported"));
        }
        let int = |name: &str| -> i64 { get(name).parse().unwrap_or_default() };
        let positive = |name: &str| -> Result<i64, ConfigError> {
            let v = int(name);
            if v <= 0 {
                return Err(invalid(name, "must be greater than 0"));
            }
            Ok(v)
        };
        let node_id = int("node.id");
        if !(0..=i32::MAX as i64).contains(&node_id) {
            return Err(invalid("node.id", "must be between 0 and 2147483647"));
        }
        let num_partitions = positive("num.partitions")?;
        let rf = positive("default.replication.factor")?;
        if rf > i16::MAX as i64 {
            return Err(invalid("default.replication.factor", "too large"));
        }
        for name in [
            "log.segment.bytes",
            "message.max.bytes",
            "socket.request.max.bytes",
            "log.roll.ms",
            "log.flush.interval.messages",
            "log.flush.interval.ms",
            "log.retention.check.interval.ms",
            "log.index.interval.bytes",
            "min.insync.replicas",
            "offsets.topic.num.partitions",
            "offsets.retention.minutes",
            "offsets.retention.check.interval.ms",
            "group.min.session.timeout.ms",
            "group.max.session.timeout.ms",
            "group.consumer.session.timeout.ms",
            "group.consumer.heartbeat.interval.ms",
            "max.connections",
            "max.connections.per.ip",
            "connections.max.idle.ms",
            "queued.max.request.bytes",
        ] {
            positive(name)?;
        }
        if int("log.segment.delete.delay.ms") < 0 {
            return Err(invalid("log.segment.delete.delay.ms", "must be >= 0"));
        }
        if int("group.initial.rebalance.delay.ms") < 0 {
            return Err(invalid("group.initial.rebalance.delay.ms", "must be >= 0"));
        }
        if int("max.incremental.fetch.session.cache.slots") < 0 {
            return Err(invalid(
                "max.incremental.fetch.session.cache.slots",
                "must be >= 0",
            ));
        }
        let slice = int("request.thread.slice.us");
        if slice != 0 && !(100..=100_000).contains(&slice) {
            return Err(invalid(
                "request.thread.slice.us",
                "must be 0 (the kernel's default) or 100 to 100000",
            ));
        }
        if int("log.segment.bytes") < 14 {
            return Err(invalid("log.segment.bytes", "must be at least 14"));
        }
        for name in ["log.retention.ms", "log.retention.bytes"] {
            if int(name) < -1 {
                return Err(invalid(name, "must be -1 (unlimited) or >= 0"));
            }
        }
        crate::topic_config::validate("cleanup.policy", get("log.cleanup.policy"))
            .map_err(|r| invalid("log.cleanup.policy", &r))?;
        crate::topic_config::validate("message.timestamp.type", get("log.message.timestamp.type"))
            .map_err(|r| invalid("log.message.timestamp.type", &r))?;
        if get("compression.type") != "producer" {
            return Err(invalid("compression.type", "only 'producer' is supported"));
        }
        Ok(BrokerConfig {
            listeners,
            advertised_listeners,
            data_dir: PathBuf::from(dirs[0]),
            node_id: node_id as i32,
            num_partitions: num_partitions as i32,
            auto_create_topics: get("auto.create.topics.enable") == "true",
            default_replication_factor: rf as i16,
            retention_check_interval_ms: int("log.retention.check.interval.ms"),
            socket_request_max_bytes: int("socket.request.max.bytes") as usize,
            values,
        })
    }
}

impl BrokerConfig {
    /// Starts an empty builder (defaults only).
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// Returns the value and source of a broker property.
    pub fn get(&self, name: &str) -> Option<(&str, Source)> {
        self.values.get(name).map(|(v, s)| (v.as_str(), *s))
    }

    /// Returns a numeric property; properties are validated at build time.
    pub fn get_i64(&self, name: &str) -> i64 {
        self.get(name)
            .and_then(|(v, _)| v.parse().ok())
            .unwrap_or_default()
    }

    /// Returns a copy with `log.dirs` replaced (the `--data-dir` flag).
    pub fn with_data_dir(mut self, dir: PathBuf) -> Self {
        self.values.insert(
            "log.dirs".into(),
            (dir.display().to_string(), Source::Static),
        );
        self.data_dir = dir;
        self
    }
}

fn check_type(p: &BrokerProperty, v: &str) -> Result<(), ConfigError> {
    let err = |reason: &str| ConfigError::Invalid {
        name: p.name.to_string(),
        value: v.to_string(),
        reason: reason.to_string(),
    };
    match p.kind {
        ConfigType::Boolean if v != "true" && v != "false" => Err(err("expected true or false")),
        ConfigType::Int if v.parse::<i32>().is_err() => Err(err("expected a 32-bit integer")),
        ConfigType::Long if v.parse::<i64>().is_err() => Err(err("expected an integer")),
        _ => Ok(()),
    }
}

fn parse_listeners(name: &str, text: &str) -> Result<Vec<Listener>, ConfigError> {
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let err = |reason: &str| ConfigError::Invalid {
            name: name.to_string(),
            value: item.to_string(),
            reason: reason.to_string(),
        };
        let Some((proto, addr)) = item.split_once("://") else {
            return Err(err("expected NAME://host:port"));
        };
        if proto != "PLAINTEXT" {
            return Err(err("only PLAINTEXT listeners are supported"));
        }
        let Some((host, port)) = addr.rsplit_once(':') else {
            return Err(err("expected NAME://host:port"));
        };
        let port: u16 = port.parse().map_err(|_| err("port must be 0..65535"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        out.push(Listener {
            name: proto.to_string(),
            host,
            port,
        });
    }
    Ok(out)
}

impl Listener {
    /// Returns the socket address to bind (an empty host binds all interfaces).
    pub fn bind_addr(&self) -> Result<SocketAddr, std::io::Error> {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            self.host.as_str()
        };
        std::net::ToSocketAddrs::to_socket_addrs(&(host, self.port))?
            .next()
            .ok_or_else(|| std::io::Error::other(format!("cannot resolve {host}")))
    }
}

fn flatten_toml(prefix: &str, value: &toml::Value, out: &mut Vec<(String, String)>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_toml(&key, v, out);
            }
        }
        toml::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        toml::Value::Array(items) => {
            let joined: Vec<String> = items
                .iter()
                .map(|i| match i {
                    toml::Value::String(s) => s.clone(),
                    other => toml_scalar(other),
                })
                .collect();
            out.push((prefix.to_string(), joined.join(",")));
        }
        other => out.push((prefix.to_string(), toml_scalar(other))),
    }
}

fn toml_scalar(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(_) | toml::Value::Table(_) => String::new(),
    }
}

/// Returns `", did you mean `x`?"` for the closest known property, or an empty string.
fn did_you_mean(name: &str) -> String {
    BROKER_PROPERTIES
        .iter()
        .map(|p| (edit_distance(name, p.name), p.name))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, n)| format!(", did you mean `{n}`?"))
        .unwrap_or_default()
}

/// Levenshtein distance, for suggestions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_zero_config() {
        let c = BrokerConfig::default();
        assert_eq!(c.listeners[0].port, 9092);
        assert_eq!(c.data_dir, PathBuf::from("./fjord-data"));
        assert_eq!(c.node_id, 1);
        assert_eq!(c.get("num.partitions"), Some(("1", Source::Default)));
    }

    #[test]
    fn unknown_setting_is_named_with_a_suggestion() {
        let err = BrokerConfig::builder()
            .override_kv("log.segmnt.bytes=5")
            .err();
        let msg = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("log.segmnt.bytes"), "{msg}");
        assert!(msg.contains("did you mean `log.segment.bytes`"), "{msg}");
    }

    #[test]
    fn invalid_value_is_named() {
        let mut b = BrokerConfig::builder();
        b.override_kv("num.partitions=zero").unwrap();
        let msg = b.build().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.contains("num.partitions") && msg.contains("zero"),
            "{msg}"
        );
        let mut b = BrokerConfig::builder();
        b.override_kv("num.partitions=0").unwrap();
        assert!(b.build().is_err());
        // The kernel's range for a time slice, or 0 for its default.
        for (value, ok) in [("0", true), ("100", true), ("100000", true), ("99", false)] {
            let mut b = BrokerConfig::builder();
            b.override_kv(&format!("request.thread.slice.us={value}"))
                .unwrap();
            let built = b.build();
            assert_eq!(built.is_ok(), ok, "{value}: {:?}", built.err());
        }
        let mut b = BrokerConfig::builder();
        b.override_kv("request.thread.slice.us=100001").unwrap();
        let msg = b.build().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("request.thread.slice.us"), "{msg}");
    }

    #[test]
    fn layers_override_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let props = dir.path().join("server.properties");
        std::fs::write(&props, "# comment\nnum.partitions=3\nlog.dirs = /tmp/a\n").unwrap();
        let toml_path = dir.path().join("fjord.toml");
        std::fs::write(
            &toml_path,
            "[log]\nsegment.bytes = 1000\n\"retention.ms\" = 5\n",
        )
        .unwrap();
        let mut b = BrokerConfig::builder();
        b.file(&props).unwrap();
        b.file(&toml_path).unwrap();
        let ignored = b
            .env(vec![
                ("FJORD_NUM_PARTITIONS".to_string(), "4".to_string()),
                ("FJORD_SOMETHING_ELSE".to_string(), "x".to_string()),
                ("PATH".to_string(), "/bin".to_string()),
            ])
            .unwrap();
        assert_eq!(ignored, vec!["FJORD_SOMETHING_ELSE".to_string()]);
        b.override_kv("listeners=PLAINTEXT://127.0.0.1:0").unwrap();
        let c = b.build().unwrap();
        assert_eq!(c.num_partitions, 4);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/a"));
        assert_eq!(c.get_i64("log.segment.bytes"), 1000);
        assert_eq!(c.get_i64("log.retention.ms"), 5);
        assert_eq!(c.listeners[0].port, 0);
        assert_eq!(
            c.get("log.segment.bytes").map(|v| v.1),
            Some(Source::Static)
        );
    }

    #[test]
    fn bad_listener_is_rejected() {
        let mut b = BrokerConfig::builder();
        b.override_kv("listeners=SSL://x:1").unwrap();
        assert!(
            b.build()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
                .contains("listeners")
        );
    }
}
