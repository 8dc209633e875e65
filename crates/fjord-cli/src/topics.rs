//! `fjord topics` / `kafka-topics`: create, list, describe, alter and delete topics.
//!
//! Partitions, leaders and replicas come from librdkafka's metadata, configs from its
//! DescribeConfigs; topic ids and ELR (which the `rdkafka` crate does not expose) from one
//! raw request in [`crate::wire`]. The `--describe` layout is Kafka 3.7+'s: a topic line with
//! TopicId, PartitionCount, ReplicationFactor and non-default Configs, then one line per
//! partition with Leader, Replicas, Isr, Elr and LastKnownElr (`N/A` when the broker does not
//! report ELR), all tab-separated.

use std::collections::HashMap;
use std::io::Write;

use anyhow::{anyhow, bail};
use clap::ArgGroup;
use rdkafka::admin::{
    AdminClient, AdminOptions, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::metadata::Metadata;
use rdkafka::types::RDKafkaErrorCode;
use regex::Regex;

use crate::Verbatim;
use crate::client::{self, ClientSettings, ConnectionArgs, ToolContext};
use crate::props;

/// Examples shown by `--help`.
pub const EXAMPLES: &str = "Examples:
  kafka-topics --bootstrap-server localhost:9092 --topic log_topic --create --partitions 2 --replication-factor 1
  kafka-topics --bootstrap-server localhost:9092 --list
  kafka-topics --bootstrap-server localhost:9092 --describe --topic log_topic
  kafka-topics --bootstrap-server localhost:9092 --alter --topic log_topic --partitions 4
  kafka-topics --bootstrap-server localhost:9092 --topic log_topic --delete
  fjord topics --create --topic compacted --config cleanup.policy=compact --config retention.ms=60000

--topic accepts a regular expression (whole-name match) except with --create.
Internal topics (__consumer_offsets) are hidden from --list and --describe unless
--include-internal is given or --topic names them.
--describe prints Kafka 3.7+'s layout: TopicId on the topic line, Elr and LastKnownElr on
partition lines. As in Kafka, the `Error while executing topic command` line goes to stdout.
Exit status: 0 on success, 1 when the operation fails or the broker cannot be reached,
2 on invalid usage.";

/// Arguments of `kafka-topics`, with Kafka's option names.
#[derive(clap::Args, Debug)]
#[command(group(ArgGroup::new("action").required(true).args(["create", "list", "describe", "alter", "delete"])))]
pub struct TopicsArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// Create a new topic
    #[arg(long)]
    create: bool,
    /// List all available topics
    #[arg(long)]
    list: bool,
    /// List details for the given topics
    #[arg(long)]
    describe: bool,
    /// Alter the number of partitions
    #[arg(long)]
    alter: bool,
    /// Delete a topic
    #[arg(long)]
    delete: bool,
    /// The topic to create, alter, describe or delete (a regex except with --create)
    #[arg(long, value_name = "TOPIC")]
    topic: Option<String>,
    /// Number of partitions for --create or --alter (default: the broker's num.partitions)
    #[arg(long, value_name = "N")]
    partitions: Option<i32>,
    /// Replication factor for --create (default: the broker's default.replication.factor)
    #[arg(long, value_name = "N")]
    replication_factor: Option<i32>,
    /// A topic config override for --create, e.g. retention.ms=60000 (repeatable)
    #[arg(long = "config", value_name = "KEY=VALUE")]
    configs: Vec<String>,
    /// With --create: do nothing if the topic already exists
    #[arg(long)]
    if_not_exists: bool,
    /// With --alter, --describe or --delete: do nothing if the topic does not exist
    #[arg(long)]
    if_exists: bool,
    /// With --list or --describe: hide internal topics (names starting with "__"); the
    /// default now, accepted for Kafka compatibility
    #[arg(long, conflicts_with = "include_internal")]
    exclude_internal: bool,
    /// With --list or --describe: show internal topics too (they are shown anyway when
    /// --topic names them)
    #[arg(long)]
    include_internal: bool,
    /// With --describe: only partitions whose ISR is smaller than the replica set
    #[arg(long)]
    under_replicated_partitions: bool,
    /// With --describe: only partitions without an available leader
    #[arg(long)]
    unavailable_partitions: bool,
    /// With --describe: only topics with config overrides (no partition lines)
    #[arg(long)]
    topics_with_overrides: bool,
}

/// Runs the command.
pub fn run(args: TopicsArgs) -> anyhow::Result<()> {
    if let Err(e) = check_usage(&args) {
        bail!(Verbatim(format!(
            "Error while executing topic command : {e}"
        )));
    }
    let settings = args.connection.settings()?;
    let (admin, _ctx): (AdminClient<ToolContext>, _) = client::create(&settings.config())?;
    let metadata = client::metadata(admin.inner(), &settings, None)?;
    let tool = Tool {
        args: &args,
        settings: &settings,
        admin: &admin,
        metadata: &metadata,
    };
    let result = if args.create {
        tool.create()
    } else if args.list {
        tool.list()
    } else if args.describe {
        tool.describe()
    } else if args.alter {
        tool.alter()
    } else {
        tool.delete()
    };
    result.map_err(|e| match e.downcast::<Verbatim>() {
        Ok(v) => anyhow!(v),
        Err(e) => anyhow!(Verbatim(format!(
            "Error while executing topic command : {e:#}"
        ))),
    })
}

/// Option combinations checked before connecting.
fn check_usage(args: &TopicsArgs) -> anyhow::Result<()> {
    let needs_topic = args.create || args.alter || args.delete;
    if needs_topic && args.topic.is_none() {
        let action = if args.create {
            "--create"
        } else if args.alter {
            "--alter"
        } else {
            "--delete"
        };
        bail!("--topic is required with {action}");
    }
    if args.alter && args.partitions.is_none() {
        bail!("--partitions is required with --alter");
    }
    Ok(())
}

struct Tool<'a> {
    args: &'a TopicsArgs,
    settings: &'a ClientSettings,
    admin: &'a AdminClient<ToolContext>,
    metadata: &'a Metadata,
}

/// Whether a topic is internal (`__consumer_offsets`, `__transaction_state`, ...).
fn is_internal(name: &str) -> bool {
    name.starts_with("__")
}

/// Kafka's topic filter: commas separate alternatives, quotes and spaces are dropped, and
/// the whole name must match.
pub fn topic_filter(spec: &str) -> anyhow::Result<Regex> {
    let cleaned: String = spec
        .trim()
        .trim_matches(|c| c == '"' || c == '\'')
        .replace(',', "|")
        .replace(' ', "");
    Regex::new(&format!("^(?:{cleaned})$"))
        .map_err(|e| anyhow!("invalid topic pattern '{spec}': {e}"))
}

impl Tool<'_> {
    fn options(&self) -> AdminOptions {
        self.settings.admin_options()
    }

    /// Topic names from metadata matching `--topic` (all when absent), sorted. Internal
    /// topics are left out unless `--include-internal` asks for them or `--topic` matches
    /// them; `--exclude-internal` always leaves them out.
    fn matching_topics(&self) -> anyhow::Result<Vec<String>> {
        let filter = self.args.topic.as_deref().map(topic_filter).transpose()?;
        let show_internal = !self.args.exclude_internal
            && (self.args.include_internal || self.args.topic.is_some());
        let mut names: Vec<String> = self
            .metadata
            .topics()
            .iter()
            .map(|t| t.name().to_string())
            .filter(|n| filter.as_ref().is_none_or(|f| f.is_match(n)))
            .filter(|n| show_internal || !is_internal(n))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Like [`Self::matching_topics`], but an explicit `--topic` that matches nothing is an
    /// error unless `--if-exists`.
    fn existing_topics(&self) -> anyhow::Result<Vec<String>> {
        let names = self.matching_topics()?;
        if let Some(t) = &self.args.topic
            && names.is_empty()
            && !self.args.if_exists
        {
            bail!("Topic '{t}' does not exist as expected");
        }
        Ok(names)
    }

    fn create(&self) -> anyhow::Result<()> {
        let Some(topic) = self.args.topic.as_deref() else {
            bail!("--topic is required with --create");
        };
        let configs = props::parse_kvs(&self.args.configs)?;
        if topic.contains('.') || topic.contains('_') {
            outln!(
                "WARNING: Due to limitations in metric names, topics with a period ('.') or underscore ('_') could collide. To avoid issues it is best to use either, but not both."
            )?;
        }
        let partitions = self.args.partitions.unwrap_or(-1);
        let rf = self.args.replication_factor.unwrap_or(-1);
        if self.args.partitions.is_some() && partitions < 1 {
            bail!("The partitions must be greater than 0");
        }
        if self.args.replication_factor.is_some() && rf < 1 {
            bail!("The replication factor must be greater than 0");
        }
        let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(rf));
        for (k, v) in &configs {
            new = new.set(k, v);
        }
        let results = client::block_on(self.admin.create_topics([&new], &self.options()))?
            .map_err(|e| self.admin_error(e))?;
        for r in results {
            match r {
                Ok(_) => outln!("Created topic {topic}.")?,
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) if self.args.if_not_exists => {}
                Err((name, code)) => bail!(self.create_error(&name, code, rf)),
            }
        }
        Ok(())
    }

    /// Kafka's message for a failed CreateTopics. The `rdkafka` crate passes on only the
    /// error code, so the well-known broker messages are rebuilt from the code and the
    /// cluster metadata; other codes show librdkafka's description of the code.
    fn create_error(&self, name: &str, code: RDKafkaErrorCode, rf: i32) -> String {
        let brokers = self.metadata.brokers().len();
        match code {
            RDKafkaErrorCode::TopicAlreadyExists => format!("Topic '{name}' already exists."),
            RDKafkaErrorCode::InvalidReplicationFactor
                if rf > 0 && usize::try_from(rf).is_ok_and(|rf| rf > brokers) =>
            {
                format!(
                    "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {brokers} broker(s) are registered."
                )
            }
            other => describe_code(other),
        }
    }

    fn admin_error(&self, e: rdkafka::error::KafkaError) -> anyhow::Error {
        if let rdkafka::error::KafkaError::AdminOp(RDKafkaErrorCode::OperationTimedOut) = e {
            return self.settings.unreachable(self.admin.inner().context());
        }
        anyhow!(client::describe_kafka_error(&e))
    }

    fn list(&self) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        for name in self.matching_topics()? {
            writeln!(out, "{name}")?;
        }
        Ok(())
    }

    fn describe(&self) -> anyhow::Result<()> {
        let names = self.existing_topics()?;
        let by_name: HashMap<&str, &rdkafka::metadata::MetadataTopic> = self
            .metadata
            .topics()
            .iter()
            .map(|t| (t.name(), t))
            .collect();
        let live: Vec<i32> = self.metadata.brokers().iter().map(|b| b.id()).collect();
        let partition_filters =
            self.args.under_replicated_partitions || self.args.unavailable_partitions;
        let configs = if partition_filters {
            HashMap::new()
        } else {
            self.non_default_configs(&names)?
        };
        let extras = self.extras(&names);
        let mut out = std::io::stdout().lock();
        for name in &names {
            let Some(t) = by_name.get(name.as_str()) else {
                continue;
            };
            let mut parts: Vec<_> = t.partitions().iter().collect();
            parts.sort_by_key(|p| p.id());
            let topic_configs = configs.get(name).map(String::as_str).unwrap_or("");
            if self.args.topics_with_overrides && topic_configs.is_empty() {
                continue;
            }
            let extra = extras.get(name);
            if !partition_filters {
                let rf = parts.first().map_or(0, |p| p.replicas().len());
                let id = extra
                    .and_then(|e| e.id.as_deref())
                    .map(|id| format!("\tTopicId: {id}"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "Topic: {name}{id}\tPartitionCount: {}\tReplicationFactor: {rf}\tConfigs: {topic_configs}",
                    parts.len()
                )?;
            }
            if self.args.topics_with_overrides {
                continue;
            }
            for p in parts {
                let unavailable = p.leader() < 0 || !live.contains(&p.leader());
                if self.args.under_replicated_partitions && p.isr().len() >= p.replicas().len() {
                    continue;
                }
                if self.args.unavailable_partitions && !unavailable {
                    continue;
                }
                let leader = if p.leader() < 0 {
                    "none".to_string()
                } else {
                    p.leader().to_string()
                };
                let (elr, last) = extra
                    .and_then(|e| e.elr.get(&p.id()))
                    .map(|(e, l)| (ids_or_na(e.as_deref()), ids_or_na(l.as_deref())))
                    .unwrap_or_else(|| ("N/A".into(), "N/A".into()));
                writeln!(
                    out,
                    "\tTopic: {name}\tPartition: {}\tLeader: {leader}\tReplicas: {}\tIsr: {}\tElr: {elr}\tLastKnownElr: {last}",
                    p.id(),
                    join_ids(p.replicas()),
                    join_ids(p.isr())
                )?;
            }
        }
        Ok(())
    }

    /// Topic ids and ELR; empty (ids omitted, ELR `N/A`) when the raw request cannot be
    /// made, e.g. over TLS.
    fn extras(&self, names: &[String]) -> HashMap<String, crate::wire::TopicExtras> {
        if !self.settings.plaintext() || names.is_empty() {
            return HashMap::new();
        }
        crate::wire::Conn::open(&self.settings.bootstrap, self.settings.timeout)
            .and_then(|mut c| c.topic_extras(names))
            .unwrap_or_else(|e| {
                eprintln!("WARN could not read topic ids: {e:#}");
                HashMap::new()
            })
    }

    /// `k=v,...` of each topic's configs that are not at their default, sorted by name.
    fn non_default_configs(&self, names: &[String]) -> anyhow::Result<HashMap<String, String>> {
        if names.is_empty() {
            return Ok(HashMap::new());
        }
        let specs: Vec<ResourceSpecifier<'_>> = names
            .iter()
            .map(|n| ResourceSpecifier::Topic(n.as_str()))
            .collect();
        let results = client::block_on(self.admin.describe_configs(&specs, &self.options()))?
            .map_err(|e| self.admin_error(e))?;
        let mut out = HashMap::new();
        for (name, r) in names.iter().zip(results) {
            let resource =
                r.map_err(|code| anyhow!("describing configs of {name}: {}", describe_code(code)))?;
            let mut entries: Vec<String> = resource
                .entries
                .iter()
                .filter(|e| !e.is_default)
                .map(|e| format!("{}={}", e.name, e.value.as_deref().unwrap_or("null")))
                .collect();
            entries.sort();
            out.insert(name.clone(), entries.join(","));
        }
        Ok(out)
    }

    fn alter(&self) -> anyhow::Result<()> {
        let Some(n) = self.args.partitions else {
            bail!("--partitions is required with --alter");
        };
        if self.args.topic.is_none() {
            bail!("--topic is required with --alter");
        }
        let names = self.existing_topics()?;
        let count =
            usize::try_from(n).map_err(|_| anyhow!("The partitions must be greater than 0"))?;
        let specs: Vec<NewPartitions<'_>> = names
            .iter()
            .map(|t| NewPartitions::new(t.as_str(), count))
            .collect();
        if specs.is_empty() {
            return Ok(());
        }
        let results = client::block_on(self.admin.create_partitions(&specs, &self.options()))?
            .map_err(|e| self.admin_error(e))?;
        for r in results {
            if let Err((name, code)) = r {
                let current = self
                    .metadata
                    .topics()
                    .iter()
                    .find(|t| t.name() == name)
                    .map(|t| t.partitions().len());
                bail!(match (code, current) {
                    (RDKafkaErrorCode::InvalidPartitions, Some(cur)) if cur == count =>
                        format!("Topic already has {cur} partitions."),
                    (RDKafkaErrorCode::InvalidPartitions, Some(cur)) if cur > count => format!(
                        "Topic currently has {cur} partitions, which is higher than the requested {count}."
                    ),
                    (code, _) => describe_code(code),
                });
            }
        }
        Ok(())
    }

    fn delete(&self) -> anyhow::Result<()> {
        if self.args.topic.is_none() {
            bail!("--topic is required with --delete");
        }
        let names = self.existing_topics()?;
        if let Some(internal) = names.iter().find(|n| is_internal(n)) {
            bail!(
                "Topic {internal} is a kafka internal topic and is not allowed to be marked for deletion."
            );
        }
        if names.is_empty() {
            return Ok(());
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let results = client::block_on(self.admin.delete_topics(&refs, &self.options()))?
            .map_err(|e| self.admin_error(e))?;
        for r in results {
            match r {
                Ok(_) => {}
                Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) if self.args.if_exists => {}
                Err((name, code)) => {
                    bail!("deleting topic {name}: {}", describe_code(code))
                }
            }
        }
        Ok(())
    }
}

fn ids_or_na(ids: Option<&[i32]>) -> String {
    ids.map_or_else(|| "N/A".to_string(), join_ids)
}

fn join_ids(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// librdkafka's description of an error code ("Broker: Invalid replication factor").
pub fn describe_code(code: RDKafkaErrorCode) -> String {
    code.to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn topic_filter_matches_whole_names_and_comma_lists() {
        let f = topic_filter("log_topic").unwrap();
        assert!(f.is_match("log_topic"));
        assert!(!f.is_match("log_topic2"));
        assert!(!f.is_match("xlog_topic"));
        let f = topic_filter("a, b").unwrap();
        assert!(f.is_match("a") && f.is_match("b") && !f.is_match("a,b"));
        let f = topic_filter("\"log.*\"").unwrap();
        assert!(f.is_match("log_topic") && f.is_match("logs"));
        assert!(topic_filter("(").is_err());
    }

    #[test]
    fn ids_are_joined_with_commas() {
        assert_eq!(join_ids(&[1, 2, 3]), "1,2,3");
        assert_eq!(join_ids(&[]), "");
        assert_eq!(ids_or_na(None), "N/A");
        assert_eq!(ids_or_na(Some(&[])), "");
    }
}
