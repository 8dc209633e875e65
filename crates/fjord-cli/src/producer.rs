//! `fjord console-producer` / `kafka-console-producer`: one record per stdin line.
//!
//! A reader thread sends lines over a channel; the main thread parses each with the
//! [`LineReader`], hands it to librdkafka and serves delivery reports, so Ctrl-C is noticed
//! while stdin blocks. At EOF (or Ctrl-C) it flushes. Delivery failures are printed as they
//! arrive, with the broker's error, and make the exit status 1.
//!
//! Keyed records use librdkafka's `murmur2_random` partitioner: the Java client's murmur2
//! hash for keys, so a key lands in the same partition whichever client wrote it.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};

use crate::client::{self, ClientSettings, ToolContext};
use crate::line_reader::{LineReader, LineRecord};
use crate::{props, signals};

/// Examples shown by `--help`.
pub const EXAMPLES: &str = "Examples:
  kafka-console-producer --broker-list localhost:9092 --topic log_topic
  kafka-console-producer --bootstrap-server localhost:9092 --topic user_topic --property parse.key=true --property key.separator=,
  printf 'h1:v1\\tk1,v1\\n' | fjord console-producer --topic t --property parse.headers=true --property parse.key=true --property key.separator=,
  fjord console-producer --topic t --compression-codec zstd --producer-property enable.idempotence=true

Each line of stdin is one record. At end of input the producer flushes and exits 0; if any
record could not be delivered it prints the broker's error and exits 1.
Reader properties (--property): parse.key, key.separator (default TAB), parse.headers,
headers.delimiter (default TAB), headers.separator (default ,), headers.key.separator
(default :), null.marker, ignore.error.";

/// Arguments of `kafka-console-producer`, with Kafka's option names.
#[derive(clap::Args, Debug)]
pub struct ProducerArgs {
    /// The broker to connect to (host:port[,host:port...])
    #[arg(long, visible_alias = "broker-list", value_name = "SERVER")]
    bootstrap_server: Option<String>,
    /// The topic to produce to
    #[arg(long, value_name = "TOPIC")]
    topic: String,
    /// A line reader property, e.g. parse.key=true (repeatable)
    #[arg(
        long = "property",
        visible_alias = "reader-property",
        value_name = "KEY=VALUE"
    )]
    properties: Vec<String>,
    /// A producer (librdkafka) property, e.g. linger.ms=5 (repeatable)
    #[arg(long = "producer-property", value_name = "KEY=VALUE")]
    producer_properties: Vec<String>,
    /// Producer properties file
    #[arg(long = "producer.config", value_name = "FILE")]
    producer_config: Option<PathBuf>,
    /// Compression: none, gzip, snappy, lz4 or zstd (gzip when given without a value)
    #[arg(long, value_name = "CODEC", num_args = 0..=1, default_missing_value = "gzip")]
    compression_codec: Option<String>,
    /// Acks the broker must collect before answering: -1/all, 0 or 1 (default -1)
    #[arg(long, value_name = "ACKS", allow_hyphen_values = true)]
    request_required_acks: Option<String>,
    /// The ack timeout of produce requests in ms (default 1500)
    #[arg(long, value_name = "MS")]
    request_timeout_ms: Option<u64>,
    /// Send each record synchronously: wait for its acknowledgement before the next
    #[arg(long)]
    sync: bool,
    /// Batch size in bytes (default 16384)
    #[arg(long, value_name = "BYTES")]
    batch_size: Option<u64>,
    /// How long records wait for a batch to fill, in ms (linger.ms, default 1000)
    #[arg(long, value_name = "MS")]
    timeout: Option<u64>,
    /// Retries for a failed send (default 3)
    #[arg(long, value_name = "N")]
    message_send_max_retries: Option<u64>,
    /// Wait between retries in ms (default 100)
    #[arg(long, value_name = "MS")]
    retry_backoff_ms: Option<u64>,
    /// How long to wait for the broker at start, in ms (default 5000)
    #[arg(long, value_name = "MS")]
    max_block_ms: Option<u64>,
}

/// Builds the librdkafka property map: file, then `--producer-property`, then explicit
/// flags; flag defaults fill only what is still unset (Kafka's precedence).
fn producer_props(args: &ProducerArgs) -> anyhow::Result<BTreeMap<String, String>> {
    let mut p = match &args.producer_config {
        Some(f) => props::read_properties_file(f)?,
        None => BTreeMap::new(),
    };
    p.extend(props::parse_kvs(&args.producer_properties)?);
    let mut merge = |key: &str, flag: Option<String>, default: &str| match flag {
        Some(v) => {
            p.insert(key.to_string(), v);
        }
        None => {
            p.entry(key.to_string())
                .or_insert_with(|| default.to_string());
        }
    };
    let acks = args.request_required_acks.clone();
    if let Some(a) = &acks
        && !matches!(a.as_str(), "all" | "-1" | "0" | "1")
    {
        bail!("invalid --request-required-acks '{a}': expected all, -1, 0 or 1");
    }
    let codec = args.compression_codec.clone();
    if let Some(c) = &codec
        && !matches!(c.as_str(), "none" | "gzip" | "snappy" | "lz4" | "zstd")
    {
        bail!("invalid --compression-codec '{c}': expected none, gzip, snappy, lz4 or zstd");
    }
    merge("acks", acks, "-1");
    merge(
        "request.timeout.ms",
        args.request_timeout_ms.map(|v| v.to_string()),
        "1500",
    );
    merge("linger.ms", args.timeout.map(|v| v.to_string()), "1000");
    merge(
        "batch.size",
        args.batch_size.map(|v| v.to_string()),
        "16384",
    );
    merge(
        "retries",
        args.message_send_max_retries.map(|v| v.to_string()),
        "3",
    );
    merge(
        "retry.backoff.ms",
        args.retry_backoff_ms.map(|v| v.to_string()),
        "100",
    );
    merge("compression.type", codec, "none");
    merge("partitioner", None, "murmur2_random");
    if !p.contains_key("delivery.timeout.ms") {
        p.entry("message.timeout.ms".into())
            .or_insert_with(|| "120000".into());
    }
    Ok(p)
}

/// Delivery reports: failures are printed as they arrive and counted.
#[derive(Clone, Default)]
struct Reports {
    tool: ToolContext,
    failed: Arc<Mutex<u64>>,
}

impl ClientContext for Reports {
    fn error(&self, error: KafkaError, reason: &str) {
        self.tool.error(error, reason);
    }
}

impl ProducerContext for Reports {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, m)) = result {
            let size =
                |b: Option<&[u8]>| b.map_or("null".to_string(), |b| format!("{} bytes", b.len()));
            let reason = match e {
                KafkaError::MessageProduction(code) => code.to_string(),
                other => other.to_string(),
            };
            eprintln!(
                "ERROR Error when sending message to topic {} with key: {}, value: {} with error: {reason}",
                m.topic(),
                size(m.key()),
                size(m.payload())
            );
            if let Ok(mut n) = self.failed.lock() {
                *n += 1;
            }
        }
    }
}

/// Runs the command.
pub fn run(args: ProducerArgs) -> anyhow::Result<()> {
    let reader_props = props::parse_kvs(&args.properties)?;
    let reader = LineReader::from_properties(&reader_props)?;
    let producer_props = producer_props(&args)?;
    let settings = ClientSettings::new(
        args.bootstrap_server.as_deref(),
        producer_props,
        args.max_block_ms,
    )?;
    let stop = signals::install()?;
    let reports = Reports::default();
    let producer: BaseProducer<Reports> = settings
        .config()
        .create_with_context(reports.clone())
        .map_err(|e| {
            anyhow!(
                "invalid producer configuration: {}",
                client::describe_kafka_error(&e)
            )
        })?;
    let started = std::time::Instant::now();
    if producer
        .client()
        .fetch_metadata(None, settings.timeout)
        .is_err()
    {
        if started.elapsed() + Duration::from_millis(50) >= settings.timeout {
            return Err(settings.unreachable(&reports.tool));
        }
        bail!("cannot read cluster metadata from {}", settings.bootstrap);
    }

    let lines = spawn_stdin_reader();
    let mut line_no = 0u64;
    let mut parse_error = None;
    while !stop.stopped() {
        match lines.recv_timeout(Duration::from_millis(100)) {
            Ok(Ok(line)) => {
                line_no += 1;
                match reader.parse(&line, line_no) {
                    Ok(record) => send(&producer, &args.topic, &record, &stop),
                    Err(e) => {
                        parse_error = Some(e);
                        break;
                    }
                }
                if args.sync {
                    producer
                        .flush(Duration::from_secs(600))
                        .map_err(|e| anyhow!("flushing: {e}"))?;
                } else {
                    producer.poll(Duration::ZERO);
                }
            }
            Ok(Err(e)) => {
                parse_error = Some(anyhow!(e).context("reading stdin"));
                break;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => producer.poll(Duration::ZERO),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // librdkafka bounds the flush by message.timeout.ms: every record is then delivered
    // or reported as failed.
    let flushed = producer.flush(Duration::from_secs(3600));
    let failed = reports.failed.lock().map(|n| *n).unwrap_or(0);
    if let Some(e) = parse_error {
        return Err(e);
    }
    flushed.map_err(|e| anyhow!("flushing: {e}"))?;
    if failed > 0 {
        bail!("{failed} record(s) could not be delivered");
    }
    Ok(())
}

/// Queues one record, waiting while librdkafka's queue is full.
fn send(
    producer: &BaseProducer<Reports>,
    topic: &str,
    record: &LineRecord,
    stop: &signals::StopFlag,
) {
    let mut headers = None;
    if !record.headers.is_empty() {
        let mut h = OwnedHeaders::new_with_capacity(record.headers.len());
        for (k, v) in &record.headers {
            h = h.insert(Header {
                key: k,
                value: v.as_deref(),
            });
        }
        headers = Some(h);
    }
    let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic);
    rec.key = record.key.as_deref();
    rec.payload = record.value.as_deref();
    rec.headers = headers;
    loop {
        match producer.send(rec) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                if !stop.stopped() =>
            {
                rec = back;
                producer.poll(Duration::from_millis(100));
            }
            Err((e, m)) => {
                let size = |b: Option<&[u8]>| {
                    b.map_or("null".to_string(), |b| format!("{} bytes", b.len()))
                };
                eprintln!(
                    "ERROR Error when sending message to topic {topic} with key: {}, value: {} with error: {e}",
                    size(m.key),
                    size(m.payload)
                );
                return;
            }
        }
    }
}

type Line = std::io::Result<Vec<u8>>;

/// Reads stdin lines (without `\n` / `\r\n`) on a thread; the channel closes at EOF.
fn spawn_stdin_reader() -> mpsc::Receiver<Line> {
    let (tx, rx) = mpsc::sync_channel::<Line>(1024);
    let _ = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            let mut input = stdin.lock();
            loop {
                let mut buf = Vec::new();
                match input.read_until(b'\n', &mut buf) {
                    Ok(0) => return,
                    Ok(_) => {
                        if buf.last() == Some(&b'\n') {
                            buf.pop();
                            if buf.last() == Some(&b'\r') {
                                buf.pop();
                            }
                        }
                        if tx.send(Ok(buf)).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
        })
        .context("starting the stdin thread");
    rx
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(args: &[&str]) -> ProducerArgs {
        crate::parse_tool_args(args).unwrap()
    }

    #[test]
    fn kafka_defaults_apply_and_flags_win_over_properties() {
        let p = producer_props(&parse(&["--topic", "t"])).unwrap();
        assert_eq!(p["acks"], "-1");
        assert_eq!(p["linger.ms"], "1000");
        assert_eq!(p["partitioner"], "murmur2_random");
        assert_eq!(p["compression.type"], "none");
        let p = producer_props(&parse(&[
            "--topic",
            "t",
            "--producer-property",
            "acks=1",
            "--producer-property",
            "linger.ms=7",
            "--timeout",
            "9",
            "--compression-codec",
        ]))
        .unwrap();
        assert_eq!(p["acks"], "1", "a property wins over a flag's default");
        assert_eq!(p["linger.ms"], "9", "an explicit flag wins over a property");
        assert_eq!(
            p["compression.type"], "gzip",
            "bare --compression-codec is gzip"
        );
        let p = producer_props(&parse(&["--topic", "t", "--request-required-acks", "-1"])).unwrap();
        assert_eq!(p["acks"], "-1");
        assert!(producer_props(&parse(&["--topic", "t", "--request-required-acks", "2"])).is_err());
        assert!(
            producer_props(&parse(&["--topic", "t", "--compression-codec", "brotli"])).is_err()
        );
    }

    #[test]
    fn broker_list_is_an_alias() {
        let a = parse(&["--broker-list", "h:1", "--topic", "t"]);
        assert_eq!(a.bootstrap_server.as_deref(), Some("h:1"));
    }
}
