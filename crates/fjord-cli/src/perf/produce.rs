//! `fjord perf produce`: producer throughput and send -> acknowledgement latency, with
//! `kafka-producer-perf-test`'s options and output lines.
//!
//! The main thread queues records with librdkafka; the `ThreadedProducer`'s polling thread
//! serves delivery reports as they arrive, so a latency is taken when the acknowledgement
//! comes back, not when the sender finds time to look. Each record carries, as its delivery
//! opaque, the nanosecond (since the run's origin) it was meant to be sent at:
//!
//! * `--throughput -1`: the moment the send was attempted (a full queue's wait counts, as a
//!   blocking `send` counts in Kafka's tool);
//! * `--throughput R`: the record's slot in the constant-rate schedule, `i / R` seconds after
//!   the start. When the client falls behind (the broker stalls and the queue fills), later
//!   records keep their slots, so the stall shows in their latencies: no coordinated
//!   omission.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use rdkafka::ClientContext;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use super::histogram::Histogram;
use super::report::{Json, Latency, MB, per_sec};
use super::topic_handle::TopicHandle;
use super::{CommonArgs, Output};
use crate::client::{self, ToolContext};
use crate::signals;

/// Examples shown by `fjord perf produce --help`.
pub const EXAMPLES: &str = "Examples:
  fjord perf produce --topic t --num-records 200000 --record-size 1024 --throughput -1 --producer-props acks=1
  fjord perf produce --topic t --num-records 1000000 --record-size 100 --throughput -1 --partitions 4 --producer-props acks=all linger.ms=10
  fjord perf produce --topic t --num-records 60000 --record-size 1024 --throughput 1000 --keys 100 --json

Output: a progress line every 5 s and a final line, in kafka-producer-perf-test's format
with more precise percentiles:
  200000 records sent, 371014.8 records/sec (362.32 MB/sec), 40.12 ms avg latency,
  75.31 ms max latency, 39.02 ms 50th, 70.11 ms 95th, 73.20 ms 99th, 75.01 ms 99.9th.
Latency is send -> acknowledgement; with --throughput R it counts from each record's
scheduled send time. Properties not given keep these defaults: compression.codec=none
linger.ms=5 batch.size=1000000 batch.num.messages=10000 queue.buffering.max.messages=1000000
queue.buffering.max.kbytes=1048576 (acks stays librdkafka's default, all).";

/// Defaults for properties the user did not set; see [`EXAMPLES`] and docs/performance.md.
const DEFAULTS: &[(&str, &str)] = &[
    ("compression.codec", "none"),
    ("linger.ms", "5"),
    ("batch.size", "1000000"),
    ("batch.num.messages", "10000"),
    ("queue.buffering.max.messages", "1000000"),
    ("queue.buffering.max.kbytes", "1048576"),
];

/// Arguments of `fjord perf produce` (kafka-producer-perf-test's names).
#[derive(clap::Args, Debug)]
pub struct ProduceArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// The topic to produce to
    #[arg(long, value_name = "TOPIC")]
    topic: String,
    /// Number of records to send
    #[arg(long, value_name = "N")]
    num_records: u64,
    /// Size of each record's value in bytes
    #[arg(long, value_name = "BYTES", value_parser = super::parse_size)]
    record_size: usize,
    /// Records per second to send at (constant rate), or -1 for as fast as possible
    #[arg(long, value_name = "RATE", allow_hyphen_values = true, default_value = "-1", value_parser = parse_throughput)]
    throughput: Throughput,
    /// Producer (librdkafka) properties, e.g. acks=1 linger.ms=5 (several after one flag)
    #[arg(long, value_name = "KEY=VALUE", num_args = 1..)]
    producer_props: Vec<String>,
    /// Producer properties file
    #[arg(long = "producer.config", value_name = "FILE")]
    producer_config: Option<PathBuf>,
    /// Give records keys, K distinct ones in turn (record i gets key i mod K); default: no keys
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    keys: Option<u64>,
    /// Create the topic with P partitions when it does not exist (and require P if it does)
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(i32).range(1..))]
    partitions: Option<i32>,
}

/// `--throughput`: records per second, `None` for as fast as possible.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Throughput(Option<f64>);

/// Parses `--throughput`: a positive rate, or any negative number for "unthrottled".
fn parse_throughput(s: &str) -> Result<Throughput, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number"))?;
    if !v.is_finite() || v == 0.0 {
        return Err("expected a positive rate or -1".into());
    }
    Ok(Throughput((v > 0.0).then_some(v)))
}

/// Statistics, updated by delivery reports.
struct Stats {
    all: Histogram,
    window: Histogram,
    window_bytes: u64,
    window_start: Instant,
    acked: u64,
    acked_bytes: u64,
    failed: u64,
    first_error: Option<String>,
    last_ack: Instant,
}

/// Producer context: the statistics and the run's time origin.
struct PerfContext {
    tool: ToolContext,
    origin: Instant,
    record_size: u64,
    stats: Mutex<Stats>,
}

impl ClientContext for PerfContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.tool.error(error, reason);
    }
}

impl ProducerContext for PerfContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, scheduled_ns: usize) {
        let now = Instant::now();
        let latency = (now - self.origin).as_nanos() as u64 - scheduled_ns as u64;
        let Ok(mut s) = self.stats.lock() else {
            return;
        };
        match result {
            Ok(_) => {
                s.all.record(latency);
                s.window.record(latency);
                s.window_bytes += self.record_size;
                s.acked += 1;
                s.acked_bytes += self.record_size;
                s.last_ack = now;
            }
            Err((e, _)) => {
                s.failed += 1;
                if s.first_error.is_none() {
                    s.first_error = Some(match e {
                        KafkaError::MessageProduction(code) => code.to_string(),
                        other => other.to_string(),
                    });
                }
            }
        }
    }
}

/// Kafka's window line: `N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency.`
fn window_line(count: u64, bytes: u64, elapsed: Duration, h: &Histogram) -> String {
    let l = Latency::of(h);
    format!(
        "{count} records sent, {:.1} records/sec ({:.2} MB/sec), {:.1} ms avg latency, {:.1} ms max latency.",
        per_sec(count as f64, elapsed),
        per_sec(bytes as f64, elapsed) / MB,
        l.avg,
        l.max
    )
}

/// The final line: Kafka's, with percentiles in ms to two decimals.
fn final_line(count: u64, bytes: u64, elapsed: Duration, l: &Latency) -> String {
    format!(
        "{count} records sent, {:.1} records/sec ({:.2} MB/sec), {:.2} ms avg latency, {:.2} ms max latency, {:.2} ms 50th, {:.2} ms 95th, {:.2} ms 99th, {:.2} ms 99.9th.",
        per_sec(count as f64, elapsed),
        per_sec(bytes as f64, elapsed) / MB,
        l.avg,
        l.max,
        l.p50,
        l.p95,
        l.p99,
        l.p999
    )
}

/// Runs the command.
pub fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let out = Output {
        json: args.common.json,
    };
    let props = super::client_props(
        args.producer_config.as_ref(),
        &args.producer_props,
        DEFAULTS,
    )?;
    let settings = super::settings(&args.common, props)?;
    out.settings(&super::describe_settings(&settings.props));
    let stop = signals::install()?;
    let partitions = super::prepare_topic(&settings, &args.topic, args.partitions, true)?;

    let origin = Instant::now();
    let ctx = PerfContext {
        tool: ToolContext::default(),
        origin,
        record_size: args.record_size as u64,
        stats: Mutex::new(Stats {
            all: Histogram::new(),
            window: Histogram::new(),
            window_bytes: 0,
            window_start: origin,
            acked: 0,
            acked_bytes: 0,
            failed: 0,
            first_error: None,
            last_ack: origin,
        }),
    };
    let producer =
        ThreadedProducer::from_config_and_context(&settings.config(), ctx).map_err(|e| {
            anyhow!(
                "invalid producer configuration: {}",
                client::describe_kafka_error(&e)
            )
        })?;
    super::check_reachable(producer.client(), &producer.context().tool, &settings)?;

    let payload = super::random_payload(args.record_size, 0x5eed_f00d);
    let keys: Vec<String> = match args.keys {
        Some(k) => (0..k).map(|i| format!("key-{i}")).collect(),
        None => Vec::new(),
    };
    let interval = args.common.interval();
    let start = Instant::now();
    if let Ok(mut s) = producer.context().stats.lock() {
        s.window_start = start;
    }
    let start_ns = (start - origin).as_nanos() as u64;
    let topic = TopicHandle::new(&producer, &args.topic)?;
    let mut sent = 0u64;
    while sent < args.num_records && !stop.stopped() {
        let scheduled = match args.throughput.0 {
            Some(rate) => {
                let slot = start_ns + (sent as f64 * 1e9 / rate) as u64;
                wait_until(origin, slot);
                slot
            }
            None => (Instant::now() - origin).as_nanos() as u64,
        };
        let key = (!keys.is_empty()).then(|| keys[(sent % keys.len() as u64) as usize].as_bytes());
        // A full queue waits for room; Ctrl-C meanwhile ends the run with its summary.
        if !topic.send_waiting(key, &payload, scheduled as usize, &stop)? {
            break;
        }
        sent += 1;
        if sent.is_multiple_of(512) {
            report_window(&producer, interval, &out)?;
        }
    }
    drop(topic);
    // Drain: wait until every record is acknowledged or failed (librdkafka fails what is
    // still queued after message.timeout.ms).
    while producer.in_flight_count() > 0 {
        std::thread::sleep(Duration::from_millis(2));
        report_window(&producer, interval, &out)?;
        if stop.stopped() {
            producer.purge(rdkafka::producer::PurgeConfig::default().queue().inflight());
            let _ = producer.flush(Duration::from_secs(1));
            break;
        }
    }
    let stats = producer
        .context()
        .stats
        .lock()
        .map_err(|_| anyhow!("statistics lock poisoned"))?;
    let elapsed = stats.last_ack.saturating_duration_since(start);
    let latency = Latency::of(&stats.all);
    out.line(&final_line(
        stats.acked,
        stats.acked_bytes,
        elapsed,
        &latency,
    ))?;
    let doc = Json::obj()
        .with("tool", "produce")
        .with("topic", args.topic.as_str())
        .with("partitions", partitions.len() as u64)
        .with("num_records", args.num_records)
        .with("record_size", args.record_size as u64)
        .with("throughput_limit", args.throughput.0.unwrap_or(-1.0))
        .with("keys", args.keys.map_or(0, |k| k as i64))
        .with("records", stats.acked)
        .with("failed", stats.failed)
        .with("elapsed_s", elapsed.as_secs_f64())
        .with("records_per_sec", per_sec(stats.acked as f64, elapsed))
        .with(
            "mb_per_sec",
            per_sec(stats.acked_bytes as f64, elapsed) / MB,
        )
        .with("latency_ms", latency.json())
        .with("settings", &settings.props)
        .with("librdkafka", super::librdkafka_version());
    out.document(&doc)?;
    if stats.failed > 0 {
        bail!(
            "{} record(s) could not be delivered: {}",
            stats.failed,
            stats.first_error.as_deref().unwrap_or("unknown error")
        );
    }
    Ok(())
}

/// Sleeps until `slot` (ns since `origin`); returns at once when late.
pub(super) fn wait_until(origin: Instant, slot: u64) {
    let now = (Instant::now() - origin).as_nanos() as u64;
    if slot > now {
        std::thread::sleep(Duration::from_nanos(slot - now));
    }
}

/// Prints and restarts the progress window when it is `interval` old.
fn report_window(
    producer: &ThreadedProducer<PerfContext>,
    interval: Duration,
    out: &Output,
) -> anyhow::Result<()> {
    let line = {
        let Ok(mut s) = producer.context().stats.lock() else {
            return Ok(());
        };
        let elapsed = s.window_start.elapsed();
        if elapsed < interval {
            return Ok(());
        }
        let line = window_line(s.window.count(), s.window_bytes, elapsed, &s.window);
        s.window.clear();
        s.window_bytes = 0;
        s.window_start = Instant::now();
        line
    };
    out.line(&line)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    fn parse(args: &[&str]) -> Result<ProduceArgs, clap::Error> {
        crate::parse_tool_args(args)
    }

    #[test]
    fn kafka_style_arguments_parse() {
        let a = parse(&[
            "--topic",
            "t",
            "--num-records",
            "1000",
            "--record-size",
            "100",
            "--throughput",
            "-1",
            "--producer-props",
            "acks=1",
            "linger.ms=5",
            "--keys",
            "10",
            "--partitions",
            "4",
        ])
        .unwrap();
        assert_eq!(a.topic, "t");
        assert_eq!(a.num_records, 1000);
        assert_eq!(a.record_size, 100);
        assert_eq!(a.throughput, Throughput(None));
        assert_eq!(a.producer_props, ["acks=1", "linger.ms=5"]);
        assert_eq!(a.keys, Some(10));
        assert_eq!(a.partitions, Some(4));
        assert_eq!(a.common.reporting_interval, 5000);
        assert!(!a.common.json);

        let a = parse(&[
            "--topic",
            "t",
            "--num-records",
            "5",
            "--record-size",
            "1",
            "--throughput",
            "2500.5",
            "--json",
        ])
        .unwrap();
        assert_eq!(a.throughput, Throughput(Some(2500.5)));
        assert!(a.common.json);
    }

    #[test]
    fn bad_arguments_are_refused() {
        let base = ["--topic", "t", "--num-records", "5"];
        let with = |extra: &[&str]| {
            let mut v = base.to_vec();
            v.extend_from_slice(extra);
            parse(&v)
        };
        assert!(with(&["--record-size", "0"]).is_err());
        assert!(with(&["--record-size", "10", "--throughput", "0"]).is_err());
        assert!(with(&["--record-size", "10", "--throughput", "fast"]).is_err());
        assert!(with(&["--record-size", "10", "--keys", "0"]).is_err());
        assert!(with(&["--record-size", "10", "--partitions", "0"]).is_err());
        assert!(with(&["--record-size", "10"]).is_ok());
        assert!(parse(&["--topic", "t", "--record-size", "10"]).is_err());
    }

    #[test]
    fn lines_follow_kafkas_format() {
        let mut h = Histogram::new();
        h.record(2_000_000);
        h.record(4_000_000);
        let w = window_line(2, 2048, Duration::from_secs(2), &h);
        assert_eq!(
            w,
            "2 records sent, 1.0 records/sec (0.00 MB/sec), 3.0 ms avg latency, 4.0 ms max latency."
        );
        let l = Latency::of(&h);
        let f = final_line(2, 2 * 1024 * 1024, Duration::from_secs(1), &l);
        assert!(
            f.starts_with(
                "2 records sent, 2.0 records/sec (2.00 MB/sec), 3.00 ms avg latency, 4.00 ms max latency, "
            ),
            "{f}"
        );
        assert!(f.ends_with("ms 99.9th."), "{f}");
    }
}
