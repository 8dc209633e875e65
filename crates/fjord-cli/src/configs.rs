//! `fjord configs` / `kafka-configs`: describe and change topic and broker configs, and the
//! quotas of clients and users.
//!
//! Uses DescribeConfigs (with synonyms, which the `rdkafka` crate drops) and
//! IncrementalAlterConfigs through [`crate::wire`]; librdkafka only checks reachability and
//! finds the brokers. Output follows Kafka's ConfigCommand:
//! `Dynamic configs for topic T are:` then `  name=value sensitive=false synonyms={...}`.
//! Quotas (`--entity-type clients|users`) go through DescribeClientQuotas and
//! AlterClientQuotas: `Quota configs for client-id 'C' are producer_byte_rate=1024.0`.

use std::path::PathBuf;

use anyhow::{anyhow, bail};
use clap::ArgGroup;

use crate::client::{self, ConnectionArgs};
use crate::props;
use crate::wire::{self, ConfigEntry, ConfigOp, Conn, QuotaEntity, QuotaMatch, QuotaOp};

/// Examples shown by `--help`.
pub const EXAMPLES: &str = "Examples:
  kafka-configs --bootstrap-server localhost:9092 --describe --entity-type topics --entity-name log_topic
  kafka-configs --bootstrap-server localhost:9092 --describe --entity-type topics --entity-name log_topic --all
  kafka-configs --bootstrap-server localhost:9092 --alter --entity-type topics --entity-name log_topic --add-config retention.ms=60000,cleanup.policy=[compact,delete]
  kafka-configs --bootstrap-server localhost:9092 --alter --entity-type topics --entity-name log_topic --delete-config retention.ms
  kafka-configs --bootstrap-server localhost:9092 --describe --entity-type brokers --entity-name 1 --all
  kafka-configs --bootstrap-server localhost:9092 --alter --entity-type clients --entity-name reports --add-config producer_byte_rate=1048576,consumer_byte_rate=2097152
  kafka-configs --bootstrap-server localhost:9092 --alter --entity-type users --entity-default --add-config request_percentage=50
  kafka-configs --bootstrap-server localhost:9092 --describe --entity-type clients
  fjord configs --describe --topic log_topic

Values containing commas are written in square brackets: key=[a,b].
Exit status: 0 on success, 1 when the operation fails or the broker cannot be reached,
2 on invalid usage.";

/// Arguments of `kafka-configs`, with Kafka's option names.
#[derive(clap::Args, Debug)]
#[command(group(ArgGroup::new("action").required(true).args(["describe", "alter"])))]
pub struct ConfigsArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// List configs for the given entity
    #[arg(long)]
    describe: bool,
    /// Alter the configuration of the entity
    #[arg(long)]
    alter: bool,
    /// topics, brokers, clients (quotas by client id) or users (quotas by user)
    #[arg(long, value_name = "TYPE")]
    entity_type: Option<String>,
    /// Topic name, broker id, client id or user (all of them when absent with --describe)
    #[arg(long, value_name = "NAME")]
    entity_name: Option<String>,
    /// The default quota entity of the clients or users type
    #[arg(long, conflicts_with = "entity_name")]
    entity_default: bool,
    /// Shorthand for --entity-type topics --entity-name TOPIC
    #[arg(long, value_name = "TOPIC", conflicts_with_all = ["entity_type", "entity_name", "broker"])]
    topic: Option<String>,
    /// Shorthand for --entity-type brokers --entity-name ID
    #[arg(long, value_name = "ID", conflicts_with_all = ["entity_type", "entity_name"])]
    broker: Option<String>,
    /// Configs to set: k1=v1,k2=[v1,v2]
    #[arg(long, value_name = "CONFIGS")]
    add_config: Option<String>,
    /// Properties file of configs to set
    #[arg(long, value_name = "FILE")]
    add_config_file: Option<PathBuf>,
    /// Config names to remove: k1,k2
    #[arg(long, value_name = "NAMES")]
    delete_config: Option<String>,
    /// With --describe: every config, not only dynamic overrides
    #[arg(long)]
    all: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entity {
    Topic,
    Broker,
}

/// Splits `--add-config` at commas outside square brackets; brackets around a value are
/// removed (`k=[a,b]` is the value `a,b`).
pub fn parse_add_config(s: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '[' => {
                depth += 1;
                cur.push(c);
            }
            ']' => {
                depth -= 1;
                if depth < 0 {
                    bail!("unbalanced ']' in '{s}'");
                }
                cur.push(c);
            }
            ',' if depth == 0 => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if depth != 0 {
        bail!("unbalanced '[' in '{s}'");
    }
    parts.push(cur);
    let mut out = Vec::new();
    for p in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| anyhow!("invalid entity config: all configs to be added must be in the format \"key=val\"; got '{p}'"))?;
        let v = v
            .strip_prefix('[')
            .and_then(|v| v.strip_suffix(']'))
            .unwrap_or(v);
        out.push((k.trim().to_string(), v.to_string()));
    }
    Ok(out)
}

/// Kafka's name of a config source.
fn source_name(code: i8) -> &'static str {
    match code {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

/// One `  name=value sensitive=... synonyms={...}` line.
fn entry_line(e: &ConfigEntry) -> String {
    let synonyms: Vec<String> = e
        .synonyms
        .iter()
        .map(|(src, name, value)| {
            format!(
                "{}:{name}={}",
                source_name(*src),
                value.as_deref().unwrap_or("null")
            )
        })
        .collect();
    format!(
        "  {}={} sensitive={} synonyms={{{}}}",
        e.name,
        e.value.as_deref().unwrap_or("null"),
        e.sensitive,
        synonyms.join(", ")
    )
}

/// Runs the command.
pub fn run(args: ConfigsArgs) -> anyhow::Result<()> {
    let (entity, name) = match (&args.topic, &args.broker, args.entity_type.as_deref()) {
        (Some(t), _, _) => (Entity::Topic, Some(t.clone())),
        (_, Some(b), _) => (Entity::Broker, Some(b.clone())),
        (_, _, Some("clients")) => return run_quotas(&args, "client-id"),
        (_, _, Some("users")) => return run_quotas(&args, "user"),
        (_, _, Some("topics")) => (Entity::Topic, args.entity_name.clone()),
        (_, _, Some("brokers")) => (Entity::Broker, args.entity_name.clone()),
        (_, _, Some(other)) => {
            bail!(
                "unsupported --entity-type '{other}': fjord configs handles topics, brokers, clients and users"
            )
        }
        (_, _, None) => bail!("--entity-type (topics, brokers, clients or users) is required"),
    };
    if args.entity_default {
        bail!("--entity-default goes with --entity-type clients or users");
    }
    let settings = args.connection.wire_settings("configs")?;
    let (metadata, brokers) = client::cluster(&settings, "configs")?;
    let mut topics: Vec<String> = metadata
        .topics()
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    topics.sort();
    // Broker configs must be asked of that broker; topic configs of any.
    let conn_for = |entity: Entity, name: &str| -> anyhow::Result<Conn> {
        if entity == Entity::Broker
            && let Some((_, addr)) = brokers.iter().find(|(id, _)| id.to_string() == name)
            && let Ok(c) = Conn::open(addr, settings.timeout)
        {
            return Ok(c);
        }
        Conn::open(&settings.bootstrap, settings.timeout)
    };
    let type_code = |e: Entity| match e {
        Entity::Topic => wire::RESOURCE_TOPIC,
        Entity::Broker => wire::RESOURCE_BROKER,
    };
    let singular = |e: Entity| match e {
        Entity::Topic => "topic",
        Entity::Broker => "broker",
    };
    if args.describe {
        if args.add_config.is_some() || args.delete_config.is_some() {
            bail!("--add-config and --delete-config go with --alter, not --describe");
        }
        let names: Vec<String> = match (&name, entity) {
            (Some(n), _) => vec![n.clone()],
            (None, Entity::Topic) => topics,
            (None, Entity::Broker) => brokers.iter().map(|(id, _)| id.to_string()).collect(),
        };
        for n in names {
            if entity == Entity::Topic && !metadata.topics().iter().any(|t| t.name() == n) {
                bail!("The topic '{n}' does not exist.");
            }
            let mut conn = conn_for(entity, &n)?;
            let entries = conn.describe_configs(type_code(entity), &n)?;
            outln!(
                "{} configs for {} {n} are:",
                if args.all { "All" } else { "Dynamic" },
                singular(entity)
            )?;
            let dynamic = |s: i8| match entity {
                Entity::Topic => s == 1,
                Entity::Broker => s == 2 || s == 3,
            };
            let mut shown: Vec<&ConfigEntry> = entries
                .iter()
                .filter(|e| args.all || dynamic(e.source))
                .collect();
            shown.sort_by(|a, b| a.name.cmp(&b.name));
            for e in shown {
                outln!("{}", entry_line(e))?;
            }
        }
        return Ok(());
    }
    // --alter
    let Some(name) = name else {
        bail!("--entity-name is required with --alter");
    };
    let mut ops: Vec<ConfigOp> = Vec::new();
    if let Some(file) = &args.add_config_file {
        for (k, v) in props::read_properties_file(file)? {
            ops.push(ConfigOp::Set(k, v));
        }
    }
    if let Some(add) = &args.add_config {
        for (k, v) in parse_add_config(add)? {
            ops.push(ConfigOp::Set(k, v));
        }
    }
    let deletes: Vec<String> = args
        .delete_config
        .as_deref()
        .map(|d| {
            d.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if ops.is_empty() && deletes.is_empty() {
        bail!("--alter needs --add-config, --add-config-file or --delete-config");
    }
    if entity == Entity::Topic && !metadata.topics().iter().any(|t| t.name() == name) {
        bail!("The topic '{name}' does not exist.");
    }
    let mut conn = conn_for(entity, &name)?;
    if !deletes.is_empty() {
        let known = conn.describe_configs(type_code(entity), &name)?;
        let invalid: Vec<&str> = deletes
            .iter()
            .filter(|d| !known.iter().any(|e| &e.name == *d))
            .map(String::as_str)
            .collect();
        if !invalid.is_empty() {
            bail!("Invalid config(s): {}", invalid.join(","));
        }
        ops.extend(deletes.into_iter().map(ConfigOp::Delete));
    }
    conn.alter_configs(type_code(entity), &name, &ops)?;
    outln!("Completed updating config for {} {name}.", singular(entity))?;
    Ok(())
}

/// `--entity-type clients|users` (`wire_type` is `client-id` or `user`): describe or change
/// quotas, as Kafka's ConfigCommand does. One entity type at a time; Kafka's combined
/// user-and-client entities are not offered here.
fn run_quotas(args: &ConfigsArgs, wire_type: &str) -> anyhow::Result<()> {
    if args.all {
        bail!("--all goes with topics and brokers, not quotas");
    }
    let which = match (&args.entity_name, args.entity_default) {
        (Some(n), _) => QuotaMatch::Name(n.clone()),
        (None, true) => QuotaMatch::Default,
        (None, false) => QuotaMatch::Any,
    };
    let settings = args.connection.wire_settings("configs")?;
    if args.describe {
        if args.add_config.is_some()
            || args.add_config_file.is_some()
            || args.delete_config.is_some()
        {
            bail!("--add-config and --delete-config go with --alter, not --describe");
        }
        let mut conn = Conn::open(&settings.bootstrap, settings.timeout)?;
        let mut entries = conn.describe_client_quotas(wire_type, &which)?;
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (entity, mut values) in entries {
            values.sort_by(|a, b| a.0.cmp(&b.0));
            let values: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            outln!(
                "Quota configs for {} are {}",
                entity_text(&entity),
                values.join(", ")
            )?;
        }
        return Ok(());
    }
    // --alter
    let name = match which {
        QuotaMatch::Name(n) => Some(n),
        QuotaMatch::Default => None,
        QuotaMatch::Any => bail!("--entity-name or --entity-default is required with --alter"),
    };
    let mut ops = Vec::new();
    let mut set = |k: String, v: String| -> anyhow::Result<()> {
        let value = v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| anyhow!("invalid value '{v}' for quota {k}: a number is required"))?;
        ops.push(QuotaOp::Set(k, value));
        Ok(())
    };
    if let Some(file) = &args.add_config_file {
        for (k, v) in props::read_properties_file(file)? {
            set(k, v)?;
        }
    }
    if let Some(add) = &args.add_config {
        for (k, v) in parse_add_config(add)? {
            set(k, v)?;
        }
    }
    for d in args.delete_config.as_deref().unwrap_or_default().split(',') {
        if !d.trim().is_empty() {
            ops.push(QuotaOp::Remove(d.trim().to_string()));
        }
    }
    if ops.is_empty() {
        bail!("--alter needs --add-config, --add-config-file or --delete-config");
    }
    let entity: QuotaEntity = vec![(wire_type.to_string(), name)];
    let mut conn = Conn::open(&settings.bootstrap, settings.timeout)?;
    conn.alter_client_quotas(&entity, &ops)?;
    outln!("Completed updating config for {}.", entity_text(&entity))?;
    Ok(())
}

/// `client-id 'C'`, `the default user`; parts of a combined entity joined with commas.
fn entity_text(entity: &QuotaEntity) -> String {
    let parts: Vec<String> = entity
        .iter()
        .map(|(t, n)| match n {
            Some(n) => format!("{t} '{n}'"),
            None => format!("the default {t}"),
        })
        .collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn add_config_splits_outside_brackets() {
        assert_eq!(
            parse_add_config("retention.ms=1000,cleanup.policy=[compact,delete]").unwrap(),
            vec![
                ("retention.ms".to_string(), "1000".to_string()),
                ("cleanup.policy".to_string(), "compact,delete".to_string())
            ]
        );
        assert_eq!(
            parse_add_config("a=1").unwrap(),
            vec![("a".to_string(), "1".to_string())]
        );
        assert_eq!(
            parse_add_config("a=x=y").unwrap(),
            vec![("a".to_string(), "x=y".to_string())]
        );
        assert!(parse_add_config("a").is_err());
        assert!(parse_add_config("a=[1,2").is_err());
        assert!(parse_add_config("a=1]").is_err());
    }

    #[test]
    fn entry_lines_match_kafka() {
        let e = ConfigEntry {
            name: "retention.ms".into(),
            value: Some("1000".into()),
            source: 1,
            sensitive: false,
            synonyms: vec![
                (1, "retention.ms".into(), Some("1000".into())),
                (5, "log.retention.ms".into(), Some("604800000".into())),
            ],
        };
        assert_eq!(
            entry_line(&e),
            "  retention.ms=1000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=1000, DEFAULT_CONFIG:log.retention.ms=604800000}"
        );
    }
}
