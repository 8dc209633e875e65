//! `fjord configs` / `kafka-configs`: describe and change topic and broker configs, and the
//! quotas of clients and users.
//!
//! Uses DescribeConfigs (with synonyms, which the `rdkafka` crate drops) and
//! IncrementalAlterConfigs through [`crate::wire`]; librdkafka only checks reachability and
//! finds the brokers. Output follows Kafka's ConfigCommand:
//! `Dynamic configs for topic T are:` then `  name=value sensitive=false synonyms={...}`.
//! Quotas (`--entity-type clients|users`, the two together for a user's clients) go through
//! DescribeClientQuotas and AlterClientQuotas:
//! `Quota configs for user-principal 'U', client-id 'C' are producer_byte_rate=1024.0`.

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
  kafka-configs --bootstrap-server localhost:9092 --alter --entity-type users --entity-name alice --entity-type clients --entity-name reports --add-config producer_byte_rate=4096
  fjord configs --describe --topic log_topic

Values containing commas are written in square brackets: key=[a,b].
Exit status: 0 on success, 1 when the operation fails or the broker cannot be reached,
2 on invalid usage.";

/// Arguments of `kafka-configs`, with Kafka's option names.
#[derive(clap::Args, Debug)]
#[command(group(ArgGroup::new("action").required(true).args(["describe", "alter"])))]
pub struct ConfigsOptions {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// List configs for the given entity
    #[arg(long)]
    describe: bool,
    /// Alter the configuration of the entity
    #[arg(long)]
    alter: bool,
    /// topics, brokers, clients (quotas by client id) or users (quotas by user); users and
    /// clients may be given together, for the quotas of one user's clients
    #[arg(long, value_name = "TYPE")]
    entity_type: Vec<String>,
    /// Topic name, broker id, client id or user, one per --entity-type in the same order (all of
    /// them when absent with --describe)
    #[arg(long, value_name = "NAME")]
    entity_name: Vec<String>,
    /// The default quota entity of the clients or users type (in place of an --entity-name)
    #[arg(long, action = clap::ArgAction::Count)]
    entity_default: u8,
    /// Shorthand for --entity-type topics --entity-name TOPIC
    #[arg(long, value_name = "TOPIC", conflicts_with_all = ["entity_type", "entity_name", "entity_default", "broker"])]
    topic: Option<String>,
    /// Shorthand for --entity-type brokers --entity-name ID
    #[arg(long, value_name = "ID", conflicts_with_all = ["entity_type", "entity_name", "entity_default"])]
    broker: Option<String>,
    /// Shorthand for --entity-type clients --entity-name CLIENT_ID
    #[arg(long, value_name = "CLIENT_ID", conflicts_with_all = ["entity_type", "entity_name", "entity_default", "topic", "broker"])]
    client: Option<String>,
    /// Shorthand for --entity-type clients --entity-default
    #[arg(long, conflicts_with_all = ["entity_type", "entity_name", "entity_default", "topic", "broker"])]
    client_defaults: bool,
    /// Shorthand for --entity-type users --entity-name USER
    #[arg(long, value_name = "USER", conflicts_with_all = ["entity_type", "entity_name", "entity_default", "topic", "broker"])]
    user: Option<String>,
    /// Shorthand for --entity-type users --entity-default
    #[arg(long, conflicts_with_all = ["entity_type", "entity_name", "entity_default", "topic", "broker"])]
    user_defaults: bool,
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

/// [`ConfigsOptions`] and the entity names in the order they were given: Kafka's tool pairs
/// the n-th `--entity-name` or `--entity-default` with the n-th `--entity-type`, which the
/// options alone cannot say once both kinds appear.
#[derive(Debug)]
pub struct ConfigsArgs {
    opts: ConfigsOptions,
    /// Each `--entity-name` (`Some`) and `--entity-default` (`None`), in command-line order.
    names: Vec<Option<String>>,
}

impl clap::FromArgMatches for ConfigsArgs {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let opts = ConfigsOptions::from_arg_matches(m)?;
        let mut names: Vec<(usize, Option<String>)> = Vec::new();
        if let (Some(at), Some(values)) = (
            m.indices_of("entity_name"),
            m.get_many::<String>("entity_name"),
        ) {
            names.extend(at.zip(values.map(|v| Some(v.clone()))));
        }
        if opts.entity_default > 0
            && let Some(at) = m.indices_of("entity_default")
        {
            names.extend(at.map(|i| (i, None)));
        }
        names.sort_by_key(|(at, _)| *at);
        Ok(ConfigsArgs {
            opts,
            names: names.into_iter().map(|(_, n)| n).collect(),
        })
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl clap::Args for ConfigsArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        ConfigsOptions::augment_args(cmd)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        ConfigsOptions::augment_args_for_update(cmd)
    }
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

/// The entity types and names a command line gives, as Kafka's tool lists them: the
/// `--entity-type` values and the names in the order given, or the shorthand options (named
/// entities first, then defaults). A name of `None` is the type's default entity; a type past
/// the end of the names has none.
fn entities(
    args: &ConfigsOptions,
    names: Vec<Option<String>>,
) -> (Vec<String>, Vec<Option<String>>) {
    if let Some(t) = &args.topic {
        return (vec!["topics".into()], vec![Some(t.clone())]);
    }
    if let Some(b) = &args.broker {
        return (vec!["brokers".into()], vec![Some(b.clone())]);
    }
    let mut types = args.entity_type.clone();
    let mut names = names;
    for (given, entity_type, name) in [
        (args.client.is_some(), "clients", args.client.clone()),
        (args.user.is_some(), "users", args.user.clone()),
        (args.client_defaults, "clients", None),
        (args.user_defaults, "users", None),
    ] {
        if given {
            types.push(entity_type.into());
            names.push(name);
        }
    }
    (types, names)
}

/// Runs the command.
pub fn run(args: ConfigsArgs) -> anyhow::Result<()> {
    let ConfigsArgs { opts: args, names } = args;
    let (types, names) = entities(&args, names);
    if types.is_empty() {
        bail!("--entity-type (topics, brokers, clients or users) is required");
    }
    if let Some(other) = types
        .iter()
        .find(|t| !["topics", "brokers", "clients", "users"].contains(&t.as_str()))
    {
        bail!(
            "unsupported --entity-type '{other}': fjord configs handles topics, brokers, clients and users"
        );
    }
    let mut duplicates: Vec<&str> = types
        .iter()
        .enumerate()
        .filter(|(i, t)| types[..*i].contains(t))
        .map(|(_, t)| t.as_str())
        .collect();
    duplicates.dedup();
    if !duplicates.is_empty() {
        bail!(
            "Duplicate entity type(s) specified: {}",
            duplicates.join(",")
        );
    }
    if types.len() > 1 && !types.iter().all(|t| t == "users" || t == "clients") {
        bail!("Only 'users' and 'clients' entity types may be specified together");
    }
    if names.len() > types.len() {
        bail!("More entity names specified than entity types");
    }
    let entity = match types[0].as_str() {
        "clients" | "users" => return run_quotas(&args, &types, &names),
        "topics" => Entity::Topic,
        _ => Entity::Broker,
    };
    let name = match names.into_iter().next() {
        Some(Some(n)) => Some(n),
        Some(None) => bail!("--entity-default goes with --entity-type clients or users"),
        None => None,
    };
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

/// The wire name of a quota entity type (`clients` or `users`).
fn quota_wire_type(entity_type: &str) -> &'static str {
    if entity_type == "users" {
        "user"
    } else {
        "client-id"
    }
}

/// `--entity-type clients|users`, alone or together: describe or change quotas, as Kafka's
/// ConfigCommand does. `names[i]` belongs to `types[i]` (`None`: the default entity); a type
/// without one matches every entity of the type when describing.
fn run_quotas(
    args: &ConfigsOptions,
    types: &[String],
    names: &[Option<String>],
) -> anyhow::Result<()> {
    if args.all {
        bail!("--all goes with topics and brokers, not quotas");
    }
    let components = |types: &[String]| -> Vec<(String, QuotaMatch)> {
        types
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let which = match names.get(i) {
                    Some(Some(n)) => QuotaMatch::Name(n.clone()),
                    Some(None) => QuotaMatch::Default,
                    None => QuotaMatch::Any,
                };
                (quota_wire_type(t).to_string(), which)
            })
            .collect()
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
        let mut entries = conn.describe_client_quotas(&components(types))?;
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
    if names.len() < types.len() {
        if types.len() == 1 {
            bail!("--entity-name or --entity-default is required with --alter");
        }
        bail!("Exactly one entity name must be specified for every entity type");
    }
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
    let deletes: Vec<String> = args
        .delete_config
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .collect();
    if ops.is_empty() && deletes.is_empty() {
        bail!("--alter needs --add-config, --add-config-file or --delete-config");
    }
    let mut conn = Conn::open(&settings.bootstrap, settings.timeout)?;
    if !deletes.is_empty() {
        // As Kafka's tool: only a quota the entity has can be removed.
        let current = conn.describe_client_quotas(&components(types))?;
        let set_now: Vec<&str> = current
            .iter()
            .flat_map(|(_, values)| values.iter().map(|(k, _)| k.as_str()))
            .collect();
        let invalid: Vec<&str> = deletes
            .iter()
            .map(String::as_str)
            .filter(|d| !set_now.contains(d))
            .collect();
        if !invalid.is_empty() {
            bail!("Invalid config(s): {}", invalid.join(","));
        }
        ops.extend(deletes.into_iter().map(QuotaOp::Remove));
    }
    let entity: QuotaEntity = types
        .iter()
        .zip(names)
        .map(|(t, n)| (quota_wire_type(t).to_string(), n.clone()))
        .collect();
    conn.alter_client_quotas(&entity, &ops)?;
    // Kafka's wording names the first entity type and its name.
    match &names[0] {
        Some(n) => outln!(
            "Completed updating config for {} {n}.",
            types[0].trim_end_matches('s')
        )?,
        None => outln!(
            "Completed updating default config for {} in the cluster.",
            types[0]
        )?,
    }
    Ok(())
}

/// Kafka's text for a quota entity: `user-principal 'U', client-id 'C'`, with
/// `the default client-id` for a default part; the user part first.
fn entity_text(entity: &QuotaEntity) -> String {
    let part = |wire: &str, label: &str| {
        entity
            .iter()
            .find(|(t, _)| t == wire)
            .map(|(_, n)| match n {
                Some(n) => format!("{label} '{n}'"),
                None => format!("the default {label}"),
            })
    };
    [
        part("user", "user-principal"),
        part("client-id", "client-id"),
        part("ip", "ip"),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ")
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

    /// Types and names as `run` sees them, from a command line.
    fn entities_of(args: &[&str]) -> (Vec<String>, Vec<Option<String>>) {
        let parsed: ConfigsArgs = crate::parse_tool_args(args).unwrap();
        entities(&parsed.opts, parsed.names)
    }

    fn owned(types: &[&str], names: &[Option<&str>]) -> (Vec<String>, Vec<Option<String>>) {
        (
            types.iter().map(|t| t.to_string()).collect(),
            names.iter().map(|n| n.map(str::to_string)).collect(),
        )
    }

    /// The n-th --entity-name or --entity-default belongs to the n-th --entity-type, in the
    /// order given, as in Kafka's tool; the shorthands list named entities before defaults.
    #[test]
    fn entity_names_pair_with_types_in_command_line_order() {
        let e = |rest: &[&str]| {
            let mut a = vec!["--describe"];
            a.extend_from_slice(rest);
            entities_of(&a)
        };
        assert_eq!(
            e(&[
                "--entity-type",
                "users",
                "--entity-default",
                "--entity-type",
                "clients",
                "--entity-name",
                "app"
            ]),
            owned(&["users", "clients"], &[None, Some("app")])
        );
        assert_eq!(
            e(&[
                "--entity-type",
                "users",
                "--entity-name",
                "alice",
                "--entity-type",
                "clients",
                "--entity-default"
            ]),
            owned(&["users", "clients"], &[Some("alice"), None])
        );
        assert_eq!(
            e(&[
                "--entity-type",
                "users",
                "--entity-name",
                "alice",
                "--entity-type",
                "clients"
            ]),
            owned(&["users", "clients"], &[Some("alice")])
        );
        assert_eq!(e(&["--entity-type", "clients"]), owned(&["clients"], &[]));
        assert_eq!(
            e(&["--user", "alice", "--client-defaults"]),
            owned(&["users", "clients"], &[Some("alice"), None])
        );
        assert_eq!(
            e(&["--user-defaults", "--client", "app"]),
            owned(&["clients", "users"], &[Some("app"), None])
        );
        assert_eq!(e(&["--topic", "t"]), owned(&["topics"], &[Some("t")]));
        // Shorthands do not mix with --entity-*.
        assert!(
            crate::parse_tool_args::<ConfigsArgs>(&[
                "--describe",
                "--user",
                "u",
                "--entity-type",
                "clients"
            ])
            .is_err()
        );
    }

    #[test]
    fn quota_entities_read_as_in_kafka() {
        let entity = |parts: &[(&str, Option<&str>)]| -> QuotaEntity {
            parts
                .iter()
                .map(|(t, n)| (t.to_string(), n.map(str::to_string)))
                .collect()
        };
        assert_eq!(
            entity_text(&entity(&[("client-id", Some("app"))])),
            "client-id 'app'"
        );
        assert_eq!(
            entity_text(&entity(&[("user", None)])),
            "the default user-principal"
        );
        // The user part comes first whatever order the broker answers in.
        assert_eq!(
            entity_text(&entity(&[("client-id", None), ("user", Some("alice"))])),
            "user-principal 'alice', the default client-id"
        );
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
