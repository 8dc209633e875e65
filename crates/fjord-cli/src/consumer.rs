//! `fjord console-consumer` / `kafka-console-consumer`: prints records to stdout.
//!
//! Without `--group` no consumer group is used: the tool looks the partitions up in the
//! metadata (`--topic`, or every non-internal topic matching `--include`) and assigns them
//! with explicit start offsets (`--from-beginning`: earliest; otherwise latest, so only new
//! records; `--partition` with `--offset`), and never commits. With `--group` it subscribes
//! and commits like Kafka's tool. Records are printed by the [`Formatter`]; at exit the tool
//! prints `Processed a total of N messages` on stderr, as Kafka does.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use clap::ArgGroup;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use regex::Regex;

use crate::client::{self, ClientSettings, ToolContext};
use crate::formatter::{Deserializer, Formatter, Record, Timestamp};
use crate::{props, signals};

/// Examples shown by `--help`.
pub const EXAMPLES: &str = "Examples:
  kafka-console-consumer --bootstrap-server localhost:9092 --topic log_topic
  kafka-console-consumer --bootstrap-server localhost:9092 --topic log_topic --from-beginning
  fjord console-consumer --topic log_topic --from-beginning --property print.key=true --property print.partition=true
  fjord console-consumer --topic log_topic --partition 1 --offset 3 --max-messages 2
  fjord console-consumer --include 'log.*' --from-beginning --timeout-ms 5000

Without --group no consumer group is used (partitions are assigned directly and nothing is
committed); --include then matches the topics that exist at start.
Formatter properties (--property): print.key, print.value, print.offset, print.partition,
print.timestamp, print.headers, key.separator (default TAB), line.separator (default \\n),
headers.separator, null.literal, key.deserializer, value.deserializer.
Exit status: 0 after --max-messages, --timeout-ms or Ctrl-C; 1 on errors.";

/// Arguments of `kafka-console-consumer`, with Kafka's option names.
#[derive(clap::Args, Debug)]
#[command(group(ArgGroup::new("source").required(true).args(["topic", "include"])))]
pub struct ConsumerArgs {
    /// The broker to connect to (host:port[,host:port...])
    #[arg(long, value_name = "SERVER")]
    bootstrap_server: Option<String>,
    /// The topic to consume
    #[arg(long, value_name = "TOPIC")]
    topic: Option<String>,
    /// Regular expression of the topics to consume (whole-name match)
    #[arg(long, visible_alias = "whitelist", value_name = "REGEX")]
    include: Option<String>,
    /// Start with the earliest record instead of the latest
    #[arg(long)]
    from_beginning: bool,
    /// Consume only this partition (requires --topic)
    #[arg(long, value_name = "P")]
    partition: Option<i32>,
    /// Start offset with --partition: earliest, latest or a non-negative offset
    #[arg(long, value_name = "OFFSET")]
    offset: Option<String>,
    /// Consumer group: subscribe and commit offsets
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,
    /// Exit after this many records
    #[arg(long, value_name = "N")]
    max_messages: Option<u64>,
    /// Exit when no record arrives for this long
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
    /// read_uncommitted (default) or read_committed
    #[arg(long, value_name = "LEVEL")]
    isolation_level: Option<String>,
    /// A consumer (librdkafka) property (repeatable)
    #[arg(long = "consumer-property", value_name = "KEY=VALUE")]
    consumer_properties: Vec<String>,
    /// Consumer properties file
    #[arg(long = "consumer.config", value_name = "FILE")]
    consumer_config: Option<PathBuf>,
    /// A formatter property, e.g. print.key=true (repeatable)
    #[arg(
        long = "property",
        visible_alias = "formatter-property",
        value_name = "KEY=VALUE"
    )]
    properties: Vec<String>,
    /// Print an error and skip a record that cannot be read, instead of stopping
    #[arg(long)]
    skip_message_on_error: bool,
    /// Message formatter class (only Kafka's default formatter is available)
    #[arg(long, value_name = "CLASS")]
    formatter: Option<String>,
    /// Key deserializer class (String, ByteArray, Long, Integer, ...)
    #[arg(long, value_name = "CLASS")]
    key_deserializer: Option<String>,
    /// Value deserializer class
    #[arg(long, value_name = "CLASS")]
    value_deserializer: Option<String>,
}

/// Where each assigned partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The log start.
    Earliest,
    /// The high watermark: only new records.
    Latest,
    /// An explicit offset.
    At(i64),
}

impl Start {
    fn offset(self) -> Offset {
        match self {
            Start::Earliest => Offset::Beginning,
            Start::Latest => Offset::End,
            Start::At(n) => Offset::Offset(n),
        }
    }
}

/// Checks the option combinations Kafka's tool rejects and returns the start position.
pub fn start_position(
    from_beginning: bool,
    topic: Option<&str>,
    partition: Option<i32>,
    offset: Option<&str>,
    group: Option<&str>,
) -> anyhow::Result<Start> {
    if partition.is_some() && topic.is_none() {
        bail!("The topic is required when partition is specified.");
    }
    if partition.is_some() && group.is_some() {
        bail!("Options group and partition cannot be specified together.");
    }
    if offset.is_some() && partition.is_none() {
        bail!("The partition is required when offset is specified.");
    }
    if offset.is_some() && from_beginning {
        bail!("Options from-beginning and offset cannot be specified together.");
    }
    Ok(match offset {
        None if from_beginning => Start::Earliest,
        None => Start::Latest,
        Some(o) => match o.to_ascii_lowercase().as_str() {
            "earliest" => Start::Earliest,
            "latest" => Start::Latest,
            n => match n.parse::<i64>() {
                Ok(n) if n >= 0 => Start::At(n),
                _ => bail!(
                    "The provided offset value '{o}' is incorrect. Valid values are 'earliest', 'latest', or a non-negative long."
                ),
            },
        },
    })
}

/// Runs the command.
pub fn run(args: ConsumerArgs) -> anyhow::Result<()> {
    let mut formatter = Formatter::from_properties(&props::parse_kvs(&args.properties)?)?;
    if let Some(f) = &args.formatter
        && !f.ends_with("DefaultMessageFormatter")
    {
        bail!("unsupported formatter '{f}': only the default formatter is available");
    }
    if let Some(d) = &args.key_deserializer {
        formatter.set_key_deserializer(Deserializer::parse(d)?);
    }
    if let Some(d) = &args.value_deserializer {
        formatter.set_value_deserializer(Deserializer::parse(d)?);
    }
    let mut props = match &args.consumer_config {
        Some(f) => props::read_properties_file(f)?,
        None => BTreeMap::new(),
    };
    props.extend(props::parse_kvs(&args.consumer_properties)?);
    let group = match (&args.group, props.get("group.id")) {
        (Some(a), Some(b)) if a != b => bail!(
            "The group ids provided in different places (directly using '--group', via '--consumer-property', or via '--consumer.config') do not match. Detected group ids: '{a}', '{b}'"
        ),
        (Some(g), _) | (None, Some(g)) => Some(g.clone()),
        (None, None) => None,
    };
    let start = start_position(
        args.from_beginning,
        args.topic.as_deref(),
        args.partition,
        args.offset.as_deref(),
        group.as_deref(),
    )?;
    let include = args
        .include
        .as_deref()
        .map(|r| {
            Regex::new(&format!("^(?:{r})$")).map_err(|e| anyhow!("invalid --include '{r}': {e}"))
        })
        .transpose()?;
    match &group {
        Some(g) => {
            props.insert("group.id".into(), g.clone());
            props
                .entry("enable.auto.commit".into())
                .or_insert_with(|| "true".into());
            if args.from_beginning {
                props.insert("auto.offset.reset".into(), "earliest".into());
            } else {
                props
                    .entry("auto.offset.reset".into())
                    .or_insert_with(|| "latest".into());
            }
        }
        None => {
            // librdkafka wants a group.id even for assign(); this one never joins or commits.
            props.insert(
                "group.id".into(),
                format!("fjord-console-consumer-{}", std::process::id()),
            );
            props.insert("enable.auto.commit".into(), "false".into());
            props.insert("enable.auto.offset.store".into(), "false".into());
        }
    }
    if let Some(level) = &args.isolation_level {
        if !matches!(level.as_str(), "read_committed" | "read_uncommitted") {
            bail!(
                "invalid --isolation-level '{level}': expected read_committed or read_uncommitted"
            );
        }
        props.insert("isolation.level".into(), level.clone());
    }
    props.insert("enable.partition.eof".into(), "false".into());
    let settings = ClientSettings::new(args.bootstrap_server.as_deref(), props, None)?;
    let stop = signals::install()?;
    let (consumer, ctx): (BaseConsumer<ToolContext>, _) = client::create(&settings.config())?;
    let metadata = client::metadata(consumer.client(), &settings, None)?;
    drop(metadata);

    let deadline = args
        .timeout_ms
        .map(|ms| Instant::now() + Duration::from_millis(ms));
    if group.is_some() {
        let pattern = match (&args.topic, &args.include) {
            (Some(t), _) => t.clone(),
            (None, Some(r)) => format!("^{r}$"),
            (None, None) => bail!("Exactly one of include/topic is required."),
        };
        consumer
            .subscribe(&[&pattern])
            .map_err(|e| anyhow!("subscribing: {e}"))?;
    } else {
        let Some(tpl) = wait_for_assignment(
            &consumer,
            &settings,
            &args,
            include.as_ref(),
            start,
            &stop,
            deadline,
        )?
        else {
            eprintln!("Processed a total of 0 messages");
            return Ok(());
        };
        consumer
            .assign(&tpl)
            .map_err(|e| anyhow!("assigning partitions: {e}"))?;
    }
    let count = consume(&consumer, &formatter, &args, &stop);
    eprintln!(
        "Processed a total of {} messages",
        count.as_ref().map_or_else(|(n, _)| *n, |n| *n)
    );
    let _ = ctx;
    count.map(|_| ()).map_err(|(_, e)| e)
}

/// Builds the assignment from metadata, waiting (like Kafka's tool does) for a topic that
/// does not exist yet. `None` when stopped or timed out first.
fn wait_for_assignment(
    consumer: &BaseConsumer<ToolContext>,
    settings: &ClientSettings,
    args: &ConsumerArgs,
    include: Option<&Regex>,
    start: Start,
    stop: &signals::StopFlag,
    deadline: Option<Instant>,
) -> anyhow::Result<Option<TopicPartitionList>> {
    let mut warned = false;
    loop {
        let metadata = client::metadata(consumer.client(), settings, None)?;
        let mut tpl = TopicPartitionList::new();
        let mut topics: Vec<_> = metadata
            .topics()
            .iter()
            .filter(|t| match (&args.topic, include) {
                (Some(name), _) => t.name() == name,
                (None, Some(re)) => !t.name().starts_with("__") && re.is_match(t.name()),
                (None, None) => false,
            })
            .filter(|t| t.error().is_none() && !t.partitions().is_empty())
            .collect();
        topics.sort_by_key(|t| t.name());
        for t in &topics {
            if let Some(p) = args.partition {
                if !t.partitions().iter().any(|mp| mp.id() == p) {
                    bail!(
                        "partition {p} does not exist in topic {} (it has {} partitions)",
                        t.name(),
                        t.partitions().len()
                    );
                }
                tpl.add_partition_offset(t.name(), p, start.offset())
                    .map_err(|e| anyhow!("{e}"))?;
                continue;
            }
            let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
            ids.sort_unstable();
            for p in ids {
                tpl.add_partition_offset(t.name(), p, start.offset())
                    .map_err(|e| anyhow!("{e}"))?;
            }
        }
        if tpl.count() > 0 {
            return Ok(Some(tpl));
        }
        if !warned {
            match (&args.topic, &args.include) {
                (Some(t), _) => eprintln!("WARN topic '{t}' does not exist (yet); waiting for it"),
                (_, Some(r)) => eprintln!("WARN no topic matches '{r}' (yet); waiting for one"),
                _ => {}
            }
            warned = true;
        }
        let pause = Instant::now() + Duration::from_millis(500);
        while Instant::now() < pause {
            if stop.stopped() || deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether a consumer error is a connection hiccup librdkafka retries by itself.
fn transient(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::Resolve
            | RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::NotLeaderForPartition
            | RDKafkaErrorCode::LeaderNotAvailable
            | RDKafkaErrorCode::NetworkException
    )
}

/// The poll loop; returns the record count, with the error that stopped it, if any.
fn consume(
    consumer: &BaseConsumer<ToolContext>,
    formatter: &Formatter,
    args: &ConsumerArgs,
    stop: &signals::StopFlag,
) -> Result<u64, (u64, anyhow::Error)> {
    let mut count = 0u64;
    let mut last_record = Instant::now();
    let idle_limit = args.timeout_ms.map(Duration::from_millis);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut buf = Vec::new();
    let mut warned: Vec<RDKafkaErrorCode> = Vec::new();
    loop {
        if stop.stopped() || args.max_messages.is_some_and(|m| count >= m) {
            return Ok(count);
        }
        if idle_limit.is_some_and(|l| last_record.elapsed() >= l) {
            return Ok(count);
        }
        let Some(polled) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let msg = match polled {
            Ok(m) => m,
            Err(KafkaError::MessageConsumption(code)) if transient(code) => {
                if !warned.contains(&code) {
                    eprintln!("WARN {code} (retrying)");
                    warned.push(code);
                }
                continue;
            }
            Err(e) if args.skip_message_on_error => {
                eprintln!("ERROR Error processing message, skipping it: {e}");
                continue;
            }
            Err(e) => {
                return Err((
                    count,
                    anyhow!("Error processing message, terminating consumer process: {e}"),
                ));
            }
        };
        last_record = Instant::now();
        let headers: Vec<(&str, Option<&[u8]>)> = msg
            .headers()
            .map(|h| h.iter().map(|h| (h.key, h.value)).collect())
            .unwrap_or_default();
        let record = Record {
            timestamp: match msg.timestamp() {
                rdkafka::Timestamp::NotAvailable => Timestamp::None,
                rdkafka::Timestamp::CreateTime(t) => Timestamp::CreateTime(t),
                rdkafka::Timestamp::LogAppendTime(t) => Timestamp::LogAppendTime(t),
            },
            partition: msg.partition(),
            offset: msg.offset(),
            headers,
            key: msg.key(),
            value: msg.payload(),
        };
        buf.clear();
        if let Err(e) = formatter.format(&record, &mut buf) {
            if args.skip_message_on_error {
                eprintln!(
                    "ERROR Error processing message at {}-{} offset {}, skipping it: {e:#}",
                    msg.topic(),
                    msg.partition(),
                    msg.offset()
                );
                continue;
            }
            return Err((
                count,
                anyhow!("Error processing message, terminating consumer process: {e:#}"),
            ));
        }
        count += 1;
        if let Err(e) = out.write_all(&buf).and_then(|()| out.flush()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(count);
            }
            return Err((count, anyhow!("writing to stdout: {e}")));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn start_positions_follow_kafka_rules() {
        assert_eq!(
            start_position(false, Some("t"), None, None, None).unwrap(),
            Start::Latest
        );
        assert_eq!(
            start_position(true, Some("t"), None, None, None).unwrap(),
            Start::Earliest
        );
        assert_eq!(
            start_position(false, Some("t"), Some(1), Some("3"), None).unwrap(),
            Start::At(3)
        );
        assert_eq!(
            start_position(false, Some("t"), Some(1), Some("earliest"), None).unwrap(),
            Start::Earliest
        );
        assert_eq!(
            start_position(false, Some("t"), Some(1), Some("LATEST"), None).unwrap(),
            Start::Latest
        );
        let err = |r: anyhow::Result<Start>| r.unwrap_err().to_string();
        assert_eq!(
            err(start_position(false, Some("t"), None, Some("1"), None)),
            "The partition is required when offset is specified."
        );
        assert_eq!(
            err(start_position(true, Some("t"), Some(0), Some("1"), None)),
            "Options from-beginning and offset cannot be specified together."
        );
        assert_eq!(
            err(start_position(false, None, Some(0), None, None)),
            "The topic is required when partition is specified."
        );
        assert!(
            err(start_position(false, Some("t"), Some(0), Some("-5"), None)).contains("incorrect")
        );
        assert!(start_position(false, Some("t"), Some(0), None, Some("g")).is_err());
    }
}
