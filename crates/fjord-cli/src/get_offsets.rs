//! `fjord get-offsets` / `kafka-get-offsets`: prints `topic:partition:offset` for the latest
//! (`--time -1`), earliest (`-2`) or first offset at or after a timestamp (`--time <ms>`),
//! using librdkafka's ListOffsets (`offsets_for_times`).

use std::path::PathBuf;

use anyhow::{anyhow, bail};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::client::{self, ClientSettings, ToolContext};
use crate::topics::topic_filter;

/// Examples shown by `--help`.
pub const EXAMPLES: &str = "Examples:
  kafka-get-offsets --bootstrap-server localhost:9092 --topic log_topic
  kafka-get-offsets --bootstrap-server localhost:9092 --topic log_topic --time -2
  kafka-get-offsets --bootstrap-server localhost:9092 --topic 'log.*' --partitions 0,1 --time 1700000000000

Prints one topic:partition:offset line per partition, sorted; the offset is empty when no
record has a timestamp at or after --time. --topic is a regular expression (whole-name
match); without it every topic is listed.";

/// Arguments of `kafka-get-offsets`, with Kafka's option names.
#[derive(clap::Args, Debug)]
pub struct GetOffsetsArgs {
    /// The broker to connect to (host:port[,host:port...])
    #[arg(long, visible_alias = "broker-list", value_name = "SERVER", default_value = client::DEFAULT_BOOTSTRAP)]
    bootstrap_server: String,
    /// Client properties file
    #[arg(long, value_name = "FILE")]
    command_config: Option<PathBuf>,
    /// How long to wait for the broker, in ms (default 5000)
    #[arg(long, value_name = "MS")]
    timeout: Option<u64>,
    /// Topic name or regular expression (all topics when absent)
    #[arg(long, value_name = "TOPIC")]
    topic: Option<String>,
    /// Comma-separated partition ids (all when absent)
    #[arg(long, value_name = "IDS")]
    partitions: Option<String>,
    /// -1 or latest, -2 or earliest, or a timestamp in ms
    #[arg(
        long,
        value_name = "TIME",
        default_value = "-1",
        allow_hyphen_values = true
    )]
    time: String,
    /// Leave out internal topics
    #[arg(long)]
    exclude_internal_topics: bool,
}

/// Parses `--time` into the ListOffsets "timestamp".
pub fn parse_time(s: &str) -> anyhow::Result<Offset> {
    match s.trim().to_ascii_lowercase().as_str() {
        "-1" | "latest" => Ok(Offset::End),
        "-2" | "earliest" => Ok(Offset::Beginning),
        "-3" | "max-timestamp" => {
            bail!("--time -3 (max-timestamp) is not supported by fjord get-offsets")
        }
        other => match other.parse::<i64>() {
            Ok(ms) if ms >= 0 => Ok(Offset::Offset(ms)),
            _ => bail!(
                "invalid --time '{s}': expected -1 (latest), -2 (earliest) or a timestamp in ms"
            ),
        },
    }
}

/// Parses `--partitions 0,1,3` (ranges `0-2` too).
pub fn parse_partitions(s: &str) -> anyhow::Result<Vec<i32>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || anyhow!("invalid partition '{part}' in --partitions '{s}'");
        match part.split_once('-') {
            Some((a, b)) => {
                let a: i32 = a.trim().parse().map_err(|_| bad())?;
                let b: i32 = b.trim().parse().map_err(|_| bad())?;
                if a > b {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Runs the command.
pub fn run(args: GetOffsetsArgs) -> anyhow::Result<()> {
    let time = parse_time(&args.time)?;
    let partitions = args
        .partitions
        .as_deref()
        .map(parse_partitions)
        .transpose()?;
    let filter = args.topic.as_deref().map(topic_filter).transpose()?;
    let settings = ClientSettings::for_admin_tool(
        &args.bootstrap_server,
        args.command_config.as_deref(),
        args.timeout,
    )?;
    let (consumer, _ctx): (BaseConsumer<ToolContext>, _) = {
        let mut cfg = settings.config();
        cfg.set("group.id", "fjord-get-offsets");
        cfg.set("enable.auto.commit", "false");
        client::create(&cfg)?
    };
    let metadata = client::metadata(consumer.client(), &settings, None)?;
    let mut tpl = TopicPartitionList::new();
    let mut topics: Vec<_> = metadata
        .topics()
        .iter()
        .filter(|t| filter.as_ref().is_none_or(|f| f.is_match(t.name())))
        .filter(|t| !(args.exclude_internal_topics && t.name().starts_with("__")))
        .collect();
    topics.sort_by_key(|t| t.name());
    for t in &topics {
        let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
        ids.sort_unstable();
        for p in ids {
            if partitions.as_ref().is_none_or(|want| want.contains(&p)) {
                tpl.add_partition_offset(t.name(), p, time)
                    .map_err(|e| anyhow!("{e}"))?;
            }
        }
    }
    if tpl.count() == 0 {
        match &args.topic {
            Some(t) => {
                bail!("Could not match any topic-partitions with the specified filters ({t})")
            }
            None => return Ok(()),
        }
    }
    let result = consumer
        .offsets_for_times(tpl, settings.timeout)
        .map_err(|e| match e {
            rdkafka::error::KafkaError::MetadataFetch(
                rdkafka::types::RDKafkaErrorCode::OperationTimedOut,
            ) => settings.unreachable(consumer.client().context()),
            e => anyhow!("listing offsets: {e}"),
        })?;
    let mut rows: Vec<(String, i32, String)> = Vec::new();
    for e in result.elements() {
        if let Err(err) = e.error() {
            bail!("{}:{}: {err}", e.topic(), e.partition());
        }
        let offset = match e.offset() {
            Offset::Offset(n) => n.to_string(),
            _ => String::new(),
        };
        rows.push((e.topic().to_string(), e.partition(), offset));
    }
    rows.sort();
    for (t, p, o) in rows {
        outln!("{t}:{p}:{o}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn time_accepts_kafka_values() {
        assert_eq!(parse_time("-1").unwrap(), Offset::End);
        assert_eq!(parse_time("latest").unwrap(), Offset::End);
        assert_eq!(parse_time("-2").unwrap(), Offset::Beginning);
        assert_eq!(
            parse_time("1700000000000").unwrap(),
            Offset::Offset(1700000000000)
        );
        assert!(parse_time("-3").is_err());
        assert!(parse_time("-7").is_err());
        assert!(parse_time("soon").is_err());
    }

    #[test]
    fn partitions_list_and_ranges() {
        assert_eq!(parse_partitions("0,2").unwrap(), vec![0, 2]);
        assert_eq!(parse_partitions("3,0-1").unwrap(), vec![0, 1, 3]);
        assert!(parse_partitions("a").is_err());
        assert!(parse_partitions("2-1").is_err());
    }
}
