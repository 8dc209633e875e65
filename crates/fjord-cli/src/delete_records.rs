//! `fjord delete-records` / `kafka-delete-records`: deletes the records before given offsets
//! (DeleteRecords through librdkafka, which sends each partition to its leader), reading
//! Kafka's offset JSON file:
//! `{"partitions": [{"topic": "t", "partition": 0, "offset": 5}], "version": 1}`.
//! Offset -1 deletes everything up to the high watermark.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use rdkafka::admin::AdminClient;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::client::{self, ConnectionArgs, ToolContext};

/// Examples shown by `--help`.
pub const EXAMPLES: &str = r#"Examples:
  echo '{"partitions": [{"topic": "log_topic", "partition": 0, "offset": 100}], "version": 1}' > delete.json
  kafka-delete-records --bootstrap-server localhost:9092 --offset-json-file delete.json

Prints "partition: T-P<TAB>low_watermark: N" per partition (or "error: ..."); offset -1
deletes everything below the high watermark. Exit status 1 when any partition failed."#;

/// Arguments of `kafka-delete-records`, with Kafka's option names.
#[derive(clap::Args, Debug)]
pub struct DeleteRecordsArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// JSON file of the partitions and offsets to delete up to
    #[arg(long, value_name = "FILE")]
    offset_json_file: PathBuf,
}

/// One partition to delete records from: records before `offset` go (-1: the high watermark).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Deletion {
    topic: String,
    partition: i32,
    offset: i64,
}

/// Parses Kafka's offset JSON file.
fn parse_offsets(text: &str) -> anyhow::Result<Vec<Deletion>> {
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| anyhow!("the offset JSON file is not JSON: {e}"))?;
    if let Some(v) = doc.get("version")
        && v.as_i64() != Some(1)
    {
        bail!("unsupported version {v} in the offset JSON file (1 is supported)");
    }
    let Some(partitions) = doc.get("partitions").and_then(|p| p.as_array()) else {
        bail!("the offset JSON file has no \"partitions\" array");
    };
    let mut out = Vec::with_capacity(partitions.len());
    let mut seen = BTreeSet::new();
    let mut duplicates = Vec::new();
    for (i, p) in partitions.iter().enumerate() {
        let field = |name: &str| {
            p.get(name)
                .ok_or_else(|| anyhow!("partition entry {i} has no \"{name}\""))
        };
        let topic = field("topic")?
            .as_str()
            .ok_or_else(|| anyhow!("partition entry {i}: \"topic\" must be a string"))?;
        let partition = field("partition")?
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| anyhow!("partition entry {i}: \"partition\" must be a partition id"))?;
        let offset = field("offset")?
            .as_i64()
            .filter(|n| *n >= -1)
            .ok_or_else(|| anyhow!("partition entry {i}: \"offset\" must be an offset or -1"))?;
        if !seen.insert((topic.to_string(), partition)) {
            duplicates.push(format!("{topic}-{partition}"));
        }
        out.push(Deletion {
            topic: topic.to_string(),
            partition,
            offset,
        });
    }
    if !duplicates.is_empty() {
        bail!(
            "Offset json file contains duplicate topic partitions: {}",
            duplicates.join(",")
        );
    }
    if out.is_empty() {
        bail!("the offset JSON file names no partitions");
    }
    Ok(out)
}

/// Runs the command.
pub fn run(args: DeleteRecordsArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.offset_json_file)
        .with_context(|| format!("reading {}", args.offset_json_file.display()))?;
    let deletions = parse_offsets(&text)?;
    let settings = args.connection.settings()?;
    let (admin, _ctx): (AdminClient<ToolContext>, _) = client::create(&settings.config())?;
    // Fails with the connection's error when the broker cannot be reached.
    client::metadata(admin.inner(), &settings, None)?;
    let mut tpl = TopicPartitionList::new();
    for d in &deletions {
        let offset = match d.offset {
            -1 => Offset::End,
            n => Offset::Offset(n),
        };
        tpl.add_partition_offset(&d.topic, d.partition, offset)
            .map_err(|e| anyhow!("{}-{}: {e}", d.topic, d.partition))?;
    }
    outln!("Executing records delete operation")?;
    let result = client::block_on(admin.delete_records(&tpl, &settings.admin_options()))?
        .map_err(|e| anyhow!("deleting records: {}", client::describe_kafka_error(&e)))?;
    outln!("Records delete operation completed:")?;
    let mut failed = 0;
    for e in result.elements() {
        let name = format!("{}-{}", e.topic(), e.partition());
        match (e.error(), e.offset()) {
            (Ok(()), Offset::Offset(low)) => {
                outln!("partition: {name}\tlow_watermark: {low}")?;
            }
            (Ok(()), other) => {
                outln!("partition: {name}\tlow_watermark: {other:?}")?;
            }
            (Err(err), _) => {
                failed += 1;
                // librdkafka reports a partition's error code as an "offset fetch" error.
                let reason = match err {
                    rdkafka::error::KafkaError::OffsetFetch(code) => code.to_string(),
                    other => client::describe_kafka_error(&other),
                };
                outln!("partition: {name}\terror: {reason}")?;
            }
        }
    }
    if failed > 0 {
        bail!("records of {failed} partition(s) could not be deleted");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn offset_files_parse_as_kafka_writes_them() {
        let d = parse_offsets(
            r#"{"partitions": [{"topic": "a", "partition": 0, "offset": 5},
                               {"topic": "a", "partition": 1, "offset": -1}], "version": 1}"#,
        )
        .unwrap();
        assert_eq!(
            d,
            vec![
                Deletion {
                    topic: "a".into(),
                    partition: 0,
                    offset: 5
                },
                Deletion {
                    topic: "a".into(),
                    partition: 1,
                    offset: -1
                }
            ]
        );
        // The version may be left out.
        assert_eq!(
            parse_offsets(r#"{"partitions": [{"topic": "a", "partition": 0, "offset": 0}]}"#)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn bad_offset_files_are_refused_with_the_reason() {
        let err = |text: &str| parse_offsets(text).unwrap_err().to_string();
        assert!(err("{").contains("not JSON"));
        assert!(err(r#"{"version": 2, "partitions": []}"#).contains("unsupported version 2"));
        assert!(err(r#"{"version": 1}"#).contains("no \"partitions\" array"));
        assert!(err(r#"{"partitions": []}"#).contains("names no partitions"));
        assert!(
            err(r#"{"partitions": [{"topic": "a", "offset": 1}]}"#)
                .contains("entry 0 has no \"partition\"")
        );
        assert!(
            err(r#"{"partitions": [{"topic": "a", "partition": -3, "offset": 1}]}"#)
                .contains("\"partition\" must be a partition id")
        );
        assert!(
            err(r#"{"partitions": [{"topic": "a", "partition": 0, "offset": -2}]}"#)
                .contains("\"offset\" must be an offset or -1")
        );
        assert!(
            err(r#"{"partitions": [{"topic": 7, "partition": 0, "offset": 1}]}"#)
                .contains("\"topic\" must be a string")
        );
        assert_eq!(
            err(
                r#"{"partitions": [{"topic": "a", "partition": 0, "offset": 1},
                                   {"topic": "a", "partition": 0, "offset": 2}]}"#
            ),
            "Offset json file contains duplicate topic partitions: a-0"
        );
    }
}
