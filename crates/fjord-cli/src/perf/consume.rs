//! `fjord perf consume`: consumer throughput, with `kafka-consumer-perf-test`'s options and
//! its CSV-style result line.
//!
//! Without `--group` the consumer is assigned every partition of the topic from the
//! beginning (no group coordination); with `--group G` it subscribes as a member of G
//! (`auto.offset.reset=earliest`), as Kafka's tool does. The clock starts before the first
//! poll; `rebalance.time.ms` is the time until the first record arrives (connection, group
//! join and first fetch), and the `fetch.*` columns exclude it, so they measure the steady
//! state.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::anyhow;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::batch::{BatchQueue, Group, Records};
use super::report::{Json, MB, kafka_time, per_sec};
use super::{CommonArgs, Output};
use crate::client::{self, ToolContext};
use crate::signals;

/// Examples shown by `fjord perf consume --help`.
pub const EXAMPLES: &str = "Examples:
  fjord perf consume --topic t --messages 200000
  fjord perf consume --topic t --messages 200000 --group perf --consumer-props max.partition.fetch.bytes=8388608

Output: kafka-consumer-perf-test's header and result line (MB = 2^20 bytes of keys and values):
  start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
Progress lines go to stderr every 5 s. Properties not given keep these defaults:
fetch.max.bytes=52428800 max.partition.fetch.bytes=1048576 fetch.wait.max.ms=500
queued.max.messages.kbytes=65536 (librdkafka's and the Java client's values) and
fetch.queue.backoff.ms=1 (librdkafka's 1000 stalls a fast consumer for a second whenever
100,000 records are queued). Records are taken in batches; with --group the tool stores the
offsets of the records it counted itself (enable.auto.offset.store is always false) and
stops at an error of a partition (a corrupt batch, a failed fetch), so that the group's
commit never passes a record it did not read.";

/// Defaults for properties the user did not set (mostly librdkafka's own values, written
/// out so that the settings line shows them).
const DEFAULTS: &[(&str, &str)] = &[
    ("fetch.max.bytes", "52428800"),
    ("max.partition.fetch.bytes", "1048576"),
    ("fetch.wait.max.ms", "500"),
    ("queued.max.messages.kbytes", "65536"),
    // librdkafka >= 2.1 stops fetching for this long whenever its local queue holds
    // `queued.min.messages` (100,000) records: a fast consumer of small records then stalls
    // for a second at a time (10x slower for 100 B records here). The Java client has no
    // such pause.
    ("fetch.queue.backoff.ms", "1"),
    ("enable.partition.eof", "false"),
    ("auto.offset.reset", "earliest"),
];

/// The result header of kafka-consumer-perf-test.
const HEADER: &str = "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec";

/// Arguments of `fjord perf consume` (kafka-consumer-perf-test's names).
#[derive(clap::Args, Debug)]
pub struct ConsumeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// The topic to consume from
    #[arg(long, value_name = "TOPIC")]
    topic: String,
    /// Number of records to consume
    #[arg(long, value_name = "N")]
    messages: u64,
    /// Consume as a member of this group (default: assign all partitions, no group)
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,
    /// Give up after this many ms without a record
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    timeout: u64,
    /// Consumer (librdkafka) properties, e.g. fetch.wait.max.ms=100 (several after one flag)
    #[arg(long, value_name = "KEY=VALUE", num_args = 1..)]
    consumer_props: Vec<String>,
    /// Consumer properties file
    #[arg(long = "consumer.config", value_name = "FILE")]
    consumer_config: Option<PathBuf>,
    /// Do not print the header line
    #[arg(long)]
    hide_header: bool,
}

/// The result line, in the header's column order.
struct Result {
    start: SystemTime,
    end: SystemTime,
    bytes: u64,
    records: u64,
    total: Duration,
    to_first: Duration,
}

impl Result {
    fn fetch_time(&self) -> Duration {
        self.total.saturating_sub(self.to_first)
    }

    fn line(&self) -> String {
        let mb = self.bytes as f64 / MB;
        let fetch = self.fetch_time();
        format!(
            "{}, {}, {mb:.4}, {:.4}, {}, {:.4}, {}, {}, {:.4}, {:.4}",
            kafka_time(self.start),
            kafka_time(self.end),
            per_sec(mb, self.total),
            self.records,
            per_sec(self.records as f64, self.total),
            self.to_first.as_millis(),
            fetch.as_millis(),
            per_sec(mb, fetch),
            per_sec(self.records as f64, fetch),
        )
    }
}

/// Runs the command.
pub fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let out = Output {
        json: args.common.json,
    };
    let mut props = super::client_props(
        args.consumer_config.as_ref(),
        &args.consumer_props,
        DEFAULTS,
    )?;
    match &args.group {
        Some(g) => {
            props.insert("group.id".into(), g.clone());
            // The batched reads move librdkafka's application position past every message
            // they hand over, errors and end-of-partition events included, and with
            // automatic offset stores that position is what the member commits. So the tool
            // stores the offsets of the records it counted itself ([`BatchQueue::for_group`])
            // and has no use for end-of-partition events.
            props.insert("enable.auto.offset.store".into(), "false".into());
            props.insert("enable.partition.eof".into(), "false".into());
        }
        None => {
            // librdkafka wants a group.id even for assign(); this one never joins or commits.
            props.insert(
                "group.id".into(),
                format!("fjord-perf-consumer-{}", std::process::id()),
            );
            props.insert("enable.auto.commit".into(), "false".into());
        }
    }
    let settings = super::settings(&args.common, props)?;
    out.settings(&super::describe_settings(&settings.props));
    let stop = signals::install()?;
    let partitions = super::prepare_topic(&settings, &args.topic, None, false)?;
    let (consumer, tool): (BaseConsumer<ToolContext>, _) = client::create(&settings.config())?;
    super::check_reachable(consumer.client(), &tool, &settings)?;

    // Made before subscribing: a group member's partitions are forwarded to the batch queue
    // before the group assigns any of them.
    let mut source = match &args.group {
        Some(_) => Records::Group(Group {
            queue: BatchQueue::for_group(&consumer, &args.topic, &partitions)?,
            consumer: &consumer,
            assignments: tool.assignments(),
            forwarded_at: 0,
        }),
        None => Records::Batch(BatchQueue::new(&consumer)?),
    };
    let start_wall = SystemTime::now();
    let start = Instant::now();
    match &args.group {
        Some(_) => consumer
            .subscribe(&[&args.topic])
            .map_err(|e| anyhow!("subscribing: {e}"))?,
        None => {
            let mut tpl = TopicPartitionList::new();
            for p in &partitions {
                tpl.add_partition_offset(&args.topic, *p, Offset::Beginning)
                    .map_err(|e| anyhow!("{e}"))?;
            }
            consumer
                .assign(&tpl)
                .map_err(|e| anyhow!("assigning partitions: {e}"))?;
        }
    }
    let idle_limit = Duration::from_millis(args.timeout);
    let interval = args.common.interval();
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut first: Option<Instant> = None;
    let mut last = start;
    let (mut window_start, mut window_records, mut window_bytes) = (start, 0u64, 0u64);
    let mut timed_out = false;
    while records < args.messages && !stop.stopped() {
        let batch = source.next(Duration::from_millis(100), args.messages - records, |_| {})?;
        for e in &batch.errors {
            eprintln!("WARN {e}");
        }
        // One clock read per batch: the time its last record arrived.
        let now = Instant::now();
        if batch.records > 0 {
            records += batch.records;
            bytes += batch.bytes;
            window_records += batch.records;
            window_bytes += batch.bytes;
            last = now;
            first.get_or_insert(now);
        } else if now - last >= idle_limit {
            timed_out = true;
            break;
        }
        if now - window_start >= interval {
            let e = now - window_start;
            eprintln!(
                "{records} records consumed, {:.1} records/sec ({:.2} MB/sec)",
                per_sec(window_records as f64, e),
                per_sec(window_bytes as f64, e) / MB
            );
            (window_start, window_records, window_bytes) = (now, 0, 0);
        }
    }
    drop(source);
    if timed_out {
        eprintln!(
            "WARNING: Exiting before consuming the expected number of messages: timeout ({} ms) exceeded. You can use the --timeout option to increase the timeout.",
            args.timeout
        );
    }
    let result = Result {
        start: start_wall,
        end: start_wall + (last - start),
        bytes,
        records,
        total: last - start,
        to_first: first.map_or(Duration::ZERO, |f| f - start),
    };
    if !args.hide_header {
        out.line(HEADER)?;
    }
    out.line(&result.line())?;
    let fetch = result.fetch_time();
    let doc = Json::obj()
        .with("tool", "consume")
        .with("topic", args.topic.as_str())
        .with("partitions", partitions.len() as u64)
        .with("group", args.group.as_deref().unwrap_or(""))
        .with("records", records)
        .with("bytes", bytes)
        .with("elapsed_s", result.total.as_secs_f64())
        .with("records_per_sec", per_sec(records as f64, result.total))
        .with("mb_per_sec", per_sec(bytes as f64, result.total) / MB)
        .with("first_record_ms", result.to_first.as_secs_f64() * 1e3)
        .with("fetch_records_per_sec", per_sec(records as f64, fetch))
        .with("fetch_mb_per_sec", per_sec(bytes as f64, fetch) / MB)
        .with("settings", &settings.props)
        .with("librdkafka", super::librdkafka_version());
    out.document(&doc)?;
    if records < args.messages && !stop.stopped() {
        anyhow::bail!("consumed {records} of {} records", args.messages);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::UNIX_EPOCH;

    fn parse(args: &[&str]) -> std::result::Result<ConsumeArgs, clap::Error> {
        crate::parse_tool_args(args)
    }

    #[test]
    fn broker_list_names_the_broker_as_older_kafka_scripts_do() {
        let a = parse(&["--broker-list", "h:1", "--topic", "t", "--messages", "5"]).unwrap();
        assert_eq!(a.common.bootstrap_server.as_deref(), Some("h:1"));
    }

    #[test]
    fn kafka_style_arguments_parse() {
        let a = parse(&["--topic", "t", "--messages", "100"]).unwrap();
        assert_eq!(a.messages, 100);
        assert_eq!(a.group, None);
        assert_eq!(a.timeout, 10_000);
        let a = parse(&[
            "--topic",
            "t",
            "--messages",
            "5",
            "--group",
            "g",
            "--consumer-props",
            "fetch.wait.max.ms=10",
            "fetch.max.bytes=1000000",
            "--timeout",
            "2000",
            "--bootstrap-server",
            "h:1",
        ])
        .unwrap();
        assert_eq!(a.group.as_deref(), Some("g"));
        assert_eq!(
            a.consumer_props,
            ["fetch.wait.max.ms=10", "fetch.max.bytes=1000000"]
        );
        assert_eq!(a.common.bootstrap_server.as_deref(), Some("h:1"));
        assert!(parse(&["--topic", "t"]).is_err());
        assert!(parse(&["--messages", "1"]).is_err());
    }

    #[test]
    fn result_line_has_the_header_columns() {
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let r = Result {
            start,
            end: start + Duration::from_secs(2),
            bytes: 4 * 1024 * 1024,
            records: 4096,
            total: Duration::from_secs(2),
            to_first: Duration::from_secs(1),
        };
        let line = r.line();
        let cols: Vec<&str> = line.split(", ").collect();
        assert_eq!(cols.len(), HEADER.split(", ").count());
        assert_eq!(cols[0], "2023-11-14 22:13:20:000");
        assert_eq!(cols[2], "4.0000");
        assert_eq!(cols[3], "2.0000");
        assert_eq!(cols[4], "4096");
        assert_eq!(cols[5], "2048.0000");
        assert_eq!(cols[6], "1000");
        assert_eq!(cols[7], "1000");
        assert_eq!(cols[8], "4.0000");
        assert_eq!(cols[9], "4096.0000");
    }
}
