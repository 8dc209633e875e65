//! `fjord perf e2e`: end-to-end latency (send -> consumer receipt) at a fixed rate.
//!
//! One process runs both clients, so one monotonic clock serves both ends. The producer
//! (main thread) sends `rate x duration` records on a constant-rate schedule; the first 8
//! bytes of each value carry its *scheduled* send time in nanoseconds since the run's
//! origin, so a stall anywhere (client, broker, consumer) adds to the latency of every record
//! it delays (no coordinated omission). A consumer thread, assigned to every partition at
//! the high watermark read before the run, records `receipt - scheduled` for each record
//! (receipt: when librdkafka hands the record over; records queued together share one clock
//! read).
//! Records scheduled during the warm-up (connections, first fetch) are received but not
//! counted.
//!
//! The producer's delivery reports give a second figure from the same stamps: the *ack*
//! latency (scheduled send -> the broker's acknowledgement reaches the producer). A stall
//! shows in both when it is on the produce path (client queue, network, the broker's
//! append), and only in the end-to-end figure when it is on the fetch path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use rdkafka::ClientContext;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::batch::{BatchQueue, MAX_BATCH, Records};
use super::histogram::Histogram;
use super::report::{Json, Latency, MB, per_sec};
use super::topic_handle::TopicHandle;
use super::{CommonArgs, Output};
use crate::client::{self, ClientSettings, ToolContext};
use crate::signals::{self, StopFlag};

/// Examples shown by `fjord perf e2e --help`.
pub const EXAMPLES: &str = "Examples:
  fjord perf e2e --rate 1000 --duration 30
  fjord perf e2e --rate 102400 --record-size 1024 --duration 10 --topic e2e-fast --json

Output: a progress line every 5 s, an ack line (scheduled send -> delivery report), then
  Ack latency: 0.40 ms avg, 0.35 ms 50th, 0.60 ms 95th, 0.90 ms 99th, 1.80 ms 99.9th, 2.50 ms max.
  E2E latency at 1000 records/sec (0.98 MB/sec) for 30.0 s: 29000 records, 0.61 ms avg,
  0.55 ms 50th, 0.80 ms 95th, 1.10 ms 99th, 2.20 ms 99.9th, 3.10 ms max.
The topic (default fjord-perf-e2e) is created with --partitions (default 1) if missing.
Producer defaults: acks=1 linger.ms=0 compression.codec=none (Kafka's EndToEndLatency
settings); consumer defaults: fetch.wait.max.ms=500 fetch.queue.backoff.ms=1
enable.partition.eof=false. At tens of thousands of records/s, linger.ms=0 sends a request
every few records; with `--producer-props linger.ms=1` a request holds about a millisecond
of records, which on a small machine can lower the tail more than the millisecond it adds.";

const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    ("acks", "1"),
    ("linger.ms", "0"),
    ("compression.codec", "none"),
    ("queue.buffering.max.messages", "1000000"),
];

const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("fetch.wait.max.ms", "500"),
    ("fetch.queue.backoff.ms", "1"),
    ("enable.partition.eof", "false"),
    ("enable.auto.commit", "false"),
];

/// Arguments of `fjord perf e2e`.
#[derive(clap::Args, Debug)]
pub struct E2eArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Records per second
    #[arg(long, value_name = "RATE", value_parser = parse_positive)]
    rate: f64,
    /// Seconds to send for (the warm-up included)
    #[arg(long, value_name = "SECONDS", value_parser = parse_positive)]
    duration: f64,
    /// Size of each record's value in bytes (at least 8: the send time travels in it)
    #[arg(long, value_name = "BYTES", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(8..))]
    record_size: u32,
    /// The topic to use
    #[arg(long, value_name = "TOPIC", default_value = "fjord-perf-e2e")]
    topic: String,
    /// Partitions of the topic when it has to be created
    #[arg(long, value_name = "P", default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
    partitions: i32,
    /// Seconds at the start whose records are not counted
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    warmup: f64,
    /// Producer (librdkafka) properties (several after one flag)
    #[arg(long, value_name = "KEY=VALUE", num_args = 1..)]
    producer_props: Vec<String>,
    /// Consumer (librdkafka) properties (several after one flag)
    #[arg(long, value_name = "KEY=VALUE", num_args = 1..)]
    consumer_props: Vec<String>,
}

fn parse_positive(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a positive number")),
    }
}

/// Latencies from the scheduled-send stamps records carry: the whole run and the current
/// progress window. Records scheduled during the warm-up are not counted. The consumer
/// records end-to-end latency with one, the producer's delivery reports ack latency with
/// another.
struct Latencies {
    warmup_ns: u64,
    all: Histogram,
    window: Histogram,
}

impl Latencies {
    fn new(warmup_ns: u64) -> Latencies {
        Latencies {
            warmup_ns,
            all: Histogram::new(),
            window: Histogram::new(),
        }
    }

    /// Records a record scheduled at `scheduled` that arrived at `now` (both in ns since the
    /// run's origin).
    fn record(&mut self, scheduled: u64, now: u64) {
        if scheduled >= self.warmup_ns {
            let latency = now.saturating_sub(scheduled);
            self.all.record(latency);
            self.window.record(latency);
        }
    }

    /// The current window's figures; a new window starts.
    fn take_window(&mut self) -> Latency {
        let l = Latency::of(&self.window);
        self.window.clear();
        l
    }
}

/// Nanoseconds since `origin`, the clock the stamps are on.
fn since(origin: Instant) -> u64 {
    (Instant::now() - origin).as_nanos() as u64
}

/// Producer context: counts failed deliveries and records the ack latency of the others.
struct Deliveries {
    tool: ToolContext,
    failed: AtomicU64,
    /// The schedule's origin, set when sending starts; reports before it are not measured.
    origin: OnceLock<Instant>,
    acks: Mutex<Latencies>,
}

impl Deliveries {
    fn new(warmup_ns: u64) -> Deliveries {
        Deliveries {
            tool: ToolContext::default(),
            failed: AtomicU64::new(0),
            origin: OnceLock::new(),
            acks: Mutex::new(Latencies::new(warmup_ns)),
        }
    }

    fn acks(&self) -> std::sync::MutexGuard<'_, Latencies> {
        self.acks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ClientContext for Deliveries {
    fn error(&self, error: KafkaError, reason: &str) {
        self.tool.error(error, reason);
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Err((e, _)) => {
                if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                    eprintln!("ERROR delivery failed: {e}");
                }
            }
            Ok(m) => {
                let (Some(origin), Some(stamp)) = (
                    self.origin.get(),
                    m.payload().and_then(|v| v.first_chunk::<8>()),
                ) else {
                    return;
                };
                self.acks()
                    .record(u64::from_le_bytes(*stamp), since(*origin));
            }
        }
    }
}

/// What the consumer thread measured.
struct Received {
    latency: Histogram,
    records: u64,
}

/// Runs the command.
pub fn run(args: E2eArgs) -> anyhow::Result<()> {
    let out = Output {
        json: args.common.json,
    };
    let pprops = super::client_props(None, &args.producer_props, PRODUCER_DEFAULTS)?;
    let mut cprops = super::client_props(None, &args.consumer_props, CONSUMER_DEFAULTS)?;
    cprops.insert(
        "group.id".into(),
        format!("fjord-perf-e2e-{}", std::process::id()),
    );
    // The consumer picks its own start offsets and never commits; a commit's reply on its
    // queue is also something the batched reads (`batch::BatchQueue`) must never meet.
    cprops.insert("enable.auto.commit".into(), "false".into());
    let psettings = super::settings(&args.common, pprops)?;
    let csettings = super::settings(&args.common, cprops)?;
    out.settings(&format!(
        "producer {}",
        super::describe_settings(&psettings.props)
    ));
    out.settings(&format!(
        "consumer {}",
        super::describe_settings(&csettings.props)
    ));
    let stop = signals::install()?;
    let partitions = super::prepare_topic(&psettings, &args.topic, Some(args.partitions), false)?;

    let warmup_ns = (args.warmup.max(0.0) * 1e9) as u64;
    let producer =
        ThreadedProducer::from_config_and_context(&psettings.config(), Deliveries::new(warmup_ns))
            .map_err(|e| {
                anyhow!(
                    "invalid producer configuration: {}",
                    client::describe_kafka_error(&e)
                )
            })?;
    super::check_reachable(producer.client(), &producer.context().tool, &psettings)?;
    let consumer = assigned_consumer(&csettings, &args.topic, &partitions)?;

    let total = (args.rate * args.duration).round() as u64;
    let origin = Instant::now();
    let _ = producer.context().origin.set(origin);
    let sent = Arc::new(AtomicU64::new(u64::MAX));
    let reader = {
        let (sent, stop, out) = (Arc::clone(&sent), stop.clone(), Output { json: out.json });
        let deliveries = Arc::clone(producer.context());
        let interval = args.common.interval();
        std::thread::Builder::new()
            .name("e2e-consumer".into())
            .spawn(move || {
                receive(
                    &consumer,
                    origin,
                    warmup_ns,
                    (&sent, &deliveries),
                    &stop,
                    &out,
                    interval,
                )
            })
            .context("starting the consumer thread")?
    };

    let mut payload = super::random_payload(args.record_size as usize, 0xe2e);
    let topic = TopicHandle::new(&producer, &args.topic)?;
    let mut n = 0u64;
    while n < total && !stop.stopped() {
        let slot = (n as f64 * 1e9 / args.rate) as u64;
        super::produce::wait_until(origin, slot);
        payload[..8].copy_from_slice(&slot.to_le_bytes());
        // A full queue waits for room; Ctrl-C meanwhile ends the run with its summary.
        if !topic.send_waiting(None, &payload, (), &stop)? {
            break;
        }
        n += 1;
    }
    let send_elapsed = origin.elapsed();
    drop(topic);
    sent.store(n, Ordering::Release);
    let _ = producer.flush(Duration::from_secs(30));
    let received = reader
        .join()
        .map_err(|_| anyhow!("the consumer thread panicked"))??;
    let failed = producer.context().failed.load(Ordering::Relaxed);

    let (ack, acked) = {
        let acks = producer.context().acks();
        (Latency::of(&acks.all), acks.all.count())
    };
    let l = Latency::of(&received.latency);
    let rate = per_sec(n as f64, send_elapsed);
    let mbps = rate * f64::from(args.record_size) / MB;
    out.line(&format!(
        "Ack latency: {:.2} ms avg, {:.2} ms 50th, {:.2} ms 95th, {:.2} ms 99th, {:.2} ms 99.9th, {:.2} ms max.",
        ack.avg, ack.p50, ack.p95, ack.p99, ack.p999, ack.max
    ))?;
    out.line(&format!(
        "E2E latency at {rate:.0} records/sec ({mbps:.2} MB/sec) for {:.1} s: {} records, {:.2} ms avg, {:.2} ms 50th, {:.2} ms 95th, {:.2} ms 99th, {:.2} ms 99.9th, {:.2} ms max.",
        send_elapsed.as_secs_f64(),
        received.latency.count(),
        l.avg,
        l.p50,
        l.p95,
        l.p99,
        l.p999,
        l.max
    ))?;
    let doc = Json::obj()
        .with("tool", "e2e")
        .with("topic", args.topic.as_str())
        .with("partitions", partitions.len() as u64)
        .with("record_size", u64::from(args.record_size))
        .with("target_rate", args.rate)
        .with("achieved_rate", rate)
        .with("mb_per_sec", mbps)
        .with("duration_s", send_elapsed.as_secs_f64())
        .with("warmup_s", args.warmup)
        .with("sent", n)
        .with("received", received.records)
        .with("measured", received.latency.count())
        .with("failed", failed)
        .with("latency_ms", l.json())
        .with("acked_measured", acked)
        .with("ack_latency_ms", ack.json())
        .with("producer_settings", &psettings.props)
        .with("consumer_settings", &csettings.props)
        .with("librdkafka", super::librdkafka_version());
    out.document(&doc)?;
    if failed > 0 {
        bail!("{failed} record(s) could not be delivered");
    }
    if received.records < n && !stop.stopped() {
        bail!("received {} of {n} records", received.records);
    }
    Ok(())
}

/// A consumer assigned to every partition at its current high watermark, so it sees exactly
/// the records of this run.
fn assigned_consumer(
    settings: &ClientSettings,
    topic: &str,
    partitions: &[i32],
) -> anyhow::Result<BaseConsumer<ToolContext>> {
    let (consumer, tool): (BaseConsumer<ToolContext>, _) = client::create(&settings.config())?;
    super::check_reachable(consumer.client(), &tool, settings)?;
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        let (_, high) = consumer
            .fetch_watermarks(topic, *p, settings.timeout)
            .map_err(|e| anyhow!("reading the end of {topic}-{p}: {e}"))?;
        tpl.add_partition_offset(topic, *p, Offset::Offset(high))
            .map_err(|e| anyhow!("{e}"))?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| anyhow!("assigning partitions: {e}"))?;
    Ok(consumer)
}

/// The consumer loop: records latencies until every sent record arrived, or 10 s after the
/// producer finished.
fn receive(
    consumer: &BaseConsumer<ToolContext>,
    origin: Instant,
    warmup_ns: u64,
    (sent, deliveries): (&AtomicU64, &Deliveries),
    stop: &StopFlag,
    out: &Output,
    interval: Duration,
) -> anyhow::Result<Received> {
    let mut source = Records::Batch(BatchQueue::new(consumer)?);
    let mut stamps = Vec::with_capacity(MAX_BATCH);
    let mut latencies = Latencies::new(warmup_ns);
    let mut window_start = Instant::now();
    let mut records = 0u64;
    let mut done_at: Option<Instant> = None;
    loop {
        let total = sent.load(Ordering::Acquire);
        if records >= total || stop.stopped() {
            break;
        }
        if total != u64::MAX {
            let at = *done_at.get_or_insert_with(Instant::now);
            if at.elapsed() > Duration::from_secs(10) {
                break;
            }
        }
        stamps.clear();
        let batch = source.next(Duration::from_millis(50), u64::MAX, |value| {
            if let Some(stamp) = value.first_chunk::<8>() {
                stamps.push(u64::from_le_bytes(*stamp));
            }
        })?;
        for e in &batch.errors {
            eprintln!("WARN {e}");
        }
        // The batch is what the consumer handed over at this moment: one clock read for all.
        let now = since(origin);
        records += stamps.len() as u64;
        for &scheduled in &stamps {
            latencies.record(scheduled, now);
        }
        if window_start.elapsed() >= interval {
            let l = latencies.take_window();
            let ack = deliveries.acks().take_window();
            let _ = out.line(&format!(
                "{records} records received, {:.2} ms avg, {:.2} ms 99th, {:.2} ms max latency; acks {:.2} ms 99th, {:.2} ms max.",
                l.avg, l.p99, l.max, ack.p99, ack.max
            ));
            window_start = Instant::now();
        }
    }
    Ok(Received {
        latency: latencies.all,
        records,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    fn parse(args: &[&str]) -> Result<E2eArgs, clap::Error> {
        crate::parse_tool_args(args)
    }

    #[test]
    fn arguments_parse_with_defaults() {
        let a = parse(&["--rate", "1000", "--duration", "30"]).unwrap();
        assert_eq!(a.rate, 1000.0);
        assert_eq!(a.duration, 30.0);
        assert_eq!(a.record_size, 1024);
        assert_eq!(a.topic, "fjord-perf-e2e");
        assert_eq!(a.partitions, 1);
        assert_eq!(a.warmup, 1.0);
        let a = parse(&[
            "--rate",
            "102400",
            "--duration",
            "0.5",
            "--record-size",
            "8",
            "--producer-props",
            "acks=all",
            "linger.ms=1",
        ])
        .unwrap();
        assert_eq!(a.producer_props, ["acks=all", "linger.ms=1"]);
        assert!(parse(&["--rate", "0", "--duration", "1"]).is_err());
        assert!(parse(&["--rate", "10", "--duration", "-1"]).is_err());
        assert!(parse(&["--rate", "10", "--duration", "1", "--record-size", "7"]).is_err());
        assert!(parse(&["--duration", "1"]).is_err());
    }
}
