//! `fjord log-dirs` / `kafka-log-dirs`: the log directories of each broker, as Kafka's tool
//! prints them: two lines, then one JSON document with every partition's size on disk
//! (DescribeLogDirs, asked of each broker). Fjord also reports the volume's size and free
//! space (KIP-827), which appear as `totalBytes` and `usableBytes` where the broker knows them.

use anyhow::{anyhow, bail};
use serde_json::{Value, json};

use crate::client::{self, ConnectionArgs};
use crate::wire::{Conn, LogDir};

/// Examples shown by `--help`.
pub const EXAMPLES: &str = "Examples:
  kafka-log-dirs --bootstrap-server localhost:9092 --describe
  kafka-log-dirs --bootstrap-server localhost:9092 --describe --topic-list log_topic,other_topic

Prints \"Querying brokers for log directories information\", \"Received log directory
information from brokers 1\", then one JSON document:
{\"brokers\":[{\"broker\":1,\"logDirs\":[{\"logDir\":\"/var/lib/fjord\",\"error\":null,
\"partitions\":[{\"partition\":\"log_topic-0\",\"size\":1024,\"offsetLag\":0,\"isFuture\":false}],
\"totalBytes\":...,\"usableBytes\":...}]}],\"version\":1}";

/// Arguments of `kafka-log-dirs`, with Kafka's option names.
#[derive(clap::Args, Debug)]
pub struct LogDirsArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// Describe the log directories (the only action, required as by Kafka's tool)
    #[arg(long, required = true)]
    describe: bool,
    /// Comma-separated topics to show (all when absent)
    #[arg(long, value_name = "TOPICS")]
    topic_list: Option<String>,
    /// Comma-separated broker ids to ask (all when absent)
    #[arg(long, value_name = "IDS")]
    broker_list: Option<String>,
}

/// Comma-separated names, empty entries dropped.
fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
        .collect()
}

/// One broker's entry of the JSON document, with only the partitions of `topics` (all when
/// `None`), sorted by topic and partition.
fn broker_json(id: i32, dirs: &[LogDir], topics: Option<&[String]>) -> Value {
    let dirs: Vec<Value> = dirs
        .iter()
        .map(|d| {
            let mut parts: Vec<_> = d
                .partitions
                .iter()
                .filter(|p| topics.is_none_or(|t| t.contains(&p.topic)))
                .collect();
            parts.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
            let parts: Vec<Value> = parts
                .iter()
                .map(|p| {
                    json!({
                        "partition": format!("{}-{}", p.topic, p.partition),
                        "size": p.size,
                        "offsetLag": p.offset_lag,
                        "isFuture": p.is_future,
                    })
                })
                .collect();
            let error = match d.error_code {
                0 => Value::Null,
                code => Value::String(
                    kafka_protocol::error::ResponseError::try_from_code(code)
                        .map_or_else(|| format!("error code {code}"), |e| format!("{e:?}")),
                ),
            };
            let mut v = json!({ "logDir": d.path, "error": error, "partitions": parts });
            if d.total_bytes >= 0 {
                v["totalBytes"] = json!(d.total_bytes);
            }
            if d.usable_bytes >= 0 {
                v["usableBytes"] = json!(d.usable_bytes);
            }
            v
        })
        .collect();
    json!({ "broker": id, "logDirs": dirs })
}

/// Runs the command.
pub fn run(args: LogDirsArgs) -> anyhow::Result<()> {
    let settings = args.connection.wire_settings("log-dirs")?;
    let (_, mut brokers) = client::cluster(&settings, "log-dirs")?;
    if let Some(wanted) = &args.broker_list {
        let ids = list(wanted)
            .iter()
            .map(|s| {
                s.parse::<i32>()
                    .map_err(|_| anyhow!("--broker-list: '{s}' is not a broker id"))
            })
            .collect::<anyhow::Result<Vec<i32>>>()?;
        let unknown: Vec<String> = ids
            .iter()
            .filter(|id| !brokers.iter().any(|(b, _)| b == *id))
            .map(|id| id.to_string())
            .collect();
        if !unknown.is_empty() {
            bail!(
                "ERROR: The given brokers do not exist from --broker-list: {}. Current existent brokers: {}",
                unknown.join(","),
                brokers
                    .iter()
                    .map(|(id, _)| id.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            );
        }
        brokers.retain(|(id, _)| ids.contains(id));
    }
    let topics = args.topic_list.as_deref().map(list);
    outln!("Querying brokers for log directories information")?;
    let mut entries = Vec::with_capacity(brokers.len());
    for (id, addr) in &brokers {
        let mut conn = Conn::open(addr, settings.timeout)?;
        let dirs = conn
            .describe_log_dirs()
            .map_err(|e| anyhow!("broker {id} ({addr}): {e:#}"))?;
        entries.push(broker_json(*id, &dirs, topics.as_deref()));
    }
    let ids: Vec<String> = brokers.iter().map(|(id, _)| id.to_string()).collect();
    outln!(
        "Received log directory information from brokers {}",
        ids.join(",")
    )?;
    outln!("{}", json!({ "brokers": entries, "version": 1 }))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::wire::LogDirPartition;

    #[test]
    fn broker_entries_list_partitions_as_kafkas_tool() {
        let part = |topic: &str, partition, size| LogDirPartition {
            topic: topic.into(),
            partition,
            size,
            offset_lag: 0,
            is_future: false,
        };
        let dirs = vec![LogDir {
            path: "/d".into(),
            error_code: 0,
            total_bytes: 1000,
            usable_bytes: -1,
            partitions: vec![part("b", 1, 7), part("a", 0, 5), part("b", 0, 6)],
        }];
        let all = broker_json(1, &dirs, None);
        assert_eq!(
            all.to_string(),
            r#"{"broker":1,"logDirs":[{"error":null,"logDir":"/d","partitions":[{"isFuture":false,"offsetLag":0,"partition":"a-0","size":5},{"isFuture":false,"offsetLag":0,"partition":"b-0","size":6},{"isFuture":false,"offsetLag":0,"partition":"b-1","size":7}],"totalBytes":1000}]}"#
        );
        let only_b = broker_json(1, &dirs, Some(&["b".to_string()]));
        assert_eq!(
            only_b["logDirs"][0]["partitions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["partition"].as_str().unwrap())
                .collect::<Vec<_>>(),
            vec!["b-0", "b-1"]
        );
        let failed = broker_json(
            2,
            &[LogDir {
                error_code: 56,
                ..dirs[0].clone()
            }],
            None,
        );
        assert_eq!(failed["logDirs"][0]["error"], "KafkaStorageError");
    }
}
