//! `fjord perf`: load generators that report what a real client sees, like Kafka's
//! `kafka-producer-perf-test` and `kafka-consumer-perf-test`, plus an end-to-end latency test.
//!
//! * [`produce`]: sends N records of S bytes, flat out (`--throughput -1`) or at a constant
//!   rate; latency is send -> acknowledgement. At a constant rate it is measured from the
//!   *scheduled* send time, so a stall that delays later sends shows in the percentiles
//!   instead of being hidden (coordinated omission).
//! * [`consume`]: reads N records from the beginning, by assignment or in a group.
//! * [`e2e`]: produces at a fixed rate while consuming in the same process; latency is the
//!   scheduled send time (carried in the record) -> the consumer's receipt.
//!
//! All three use librdkafka through the `rdkafka` crate, with the settings they used printed
//! (stderr, or in the `--json` document) so that a figure can be reproduced. Latencies go
//! into a log-linear [`histogram::Histogram`]. Progress lines come every
//! `--reporting-interval` ms (5 s).

mod batch;
mod consume;
mod e2e;
mod histogram;
mod produce;
mod report;
mod topic_handle;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::Client;

use crate::client::{self, ClientSettings, ToolContext};
use crate::props;

/// Examples shown by `fjord perf --help`.
pub const EXAMPLES: &str = "Examples:
  fjord perf produce --topic t --num-records 200000 --record-size 1024 --throughput -1 --producer-props acks=1
  fjord perf produce --topic t --num-records 100000 --record-size 100 --throughput 10000 --partitions 4
  fjord perf consume --topic t --messages 200000
  fjord perf e2e --rate 1000 --duration 30";

/// `fjord perf` and its subcommands.
#[derive(clap::Args, Debug)]
pub struct PerfArgs {
    #[command(subcommand)]
    command: PerfCommand,
}

#[derive(clap::Subcommand, Debug)]
enum PerfCommand {
    /// Producer throughput and send -> ack latency (kafka-producer-perf-test)
    #[command(after_help = produce::EXAMPLES)]
    Produce(produce::ProduceArgs),
    /// Consumer throughput from the beginning of a topic (kafka-consumer-perf-test)
    #[command(after_help = consume::EXAMPLES)]
    Consume(consume::ConsumeArgs),
    /// End-to-end latency (send -> consumer receipt) at a fixed rate
    #[command(after_help = e2e::EXAMPLES)]
    E2e(e2e::E2eArgs),
}

/// Options every perf tool has.
#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    /// The broker to connect to (default: bootstrap.servers from the properties, or localhost:9092)
    // `--broker-list`: what kafka-consumer-perf-test took before Kafka 3.0, still in scripts.
    #[arg(long, visible_alias = "broker-list", value_name = "SERVER")]
    bootstrap_server: Option<String>,
    /// Milliseconds between progress lines
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    reporting_interval: u64,
    /// Print the result as one JSON document on stdout (progress lines go to stderr)
    #[arg(long)]
    json: bool,
}

impl CommonArgs {
    fn interval(&self) -> Duration {
        Duration::from_millis(self.reporting_interval.max(1))
    }
}

impl PerfArgs {
    /// The arguments of perf subcommand `sub` (`produce` or `consume`) parsed on their own,
    /// for a binary invoked as `kafka-producer-perf-test` or `kafka-consumer-perf-test`.
    pub fn from_tool_matches(
        sub: &str,
        matches: &clap::ArgMatches,
    ) -> Result<PerfArgs, clap::Error> {
        use clap::FromArgMatches as _;
        let command = match sub {
            "produce" => PerfCommand::Produce(produce::ProduceArgs::from_arg_matches(matches)?),
            "consume" => PerfCommand::Consume(consume::ConsumeArgs::from_arg_matches(matches)?),
            other => {
                return Err(clap::Error::raw(
                    clap::error::ErrorKind::InvalidSubcommand,
                    format!("no perf tool named {other}"),
                ));
            }
        };
        Ok(PerfArgs { command })
    }
}

/// Runs a perf subcommand.
pub fn run(args: PerfArgs) -> anyhow::Result<()> {
    match args.command {
        PerfCommand::Produce(a) => produce::run(a),
        PerfCommand::Consume(a) => consume::run(a),
        PerfCommand::E2e(a) => e2e::run(a),
    }
}

/// Client properties from an optional properties file, then `key=value` arguments (later
/// ones win), then `defaults` for whatever is still unset.
fn client_props(
    file: Option<&PathBuf>,
    kvs: &[String],
    defaults: &[(&str, &str)],
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut p = match file {
        Some(f) => props::read_properties_file(f)?,
        None => BTreeMap::new(),
    };
    p.extend(props::parse_kvs(kvs)?);
    for (k, v) in defaults {
        p.entry((*k).to_string())
            .or_insert_with(|| (*v).to_string());
    }
    Ok(p)
}

/// Client settings for the perf tools: a 10 s reachability deadline unless the properties
/// say otherwise.
fn settings(
    common: &CommonArgs,
    props: BTreeMap<String, String>,
) -> anyhow::Result<ClientSettings> {
    let timeout =
        if props.contains_key("default.api.timeout.ms") || props.contains_key("max.block.ms") {
            None
        } else {
            Some(10_000)
        };
    ClientSettings::new(common.bootstrap_server.as_deref(), props, timeout)
}

/// The settings line printed before a run: every property the tool set, and librdkafka's
/// version for everything left at its default.
fn describe_settings(props: &BTreeMap<String, String>) -> String {
    let set: Vec<String> = props.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "settings: {} (other properties: librdkafka {} defaults)",
        set.join(" "),
        librdkafka_version()
    )
}

/// librdkafka's version string.
fn librdkafka_version() -> String {
    rdkafka::util::get_rdkafka_version().1
}

/// Waits until `topic` has partitions with leaders and returns their ids, creating it with
/// `create` partitions when it does not exist and a count was given. With `strict`, an
/// existing topic must have exactly that count.
fn prepare_topic(
    settings: &ClientSettings,
    topic: &str,
    create: Option<i32>,
    strict: bool,
) -> anyhow::Result<Vec<i32>> {
    let (admin, _ctx): (AdminClient<ToolContext>, _) = client::create(&settings.config())?;
    let deadline = Instant::now() + settings.timeout.max(Duration::from_secs(30));
    // Create first: asking for the metadata of a missing topic may auto-create it with the
    // broker's default partition count.
    let created = match create {
        Some(n) => create_topic(&admin, topic, n)?,
        None => false,
    };
    loop {
        let md = client::metadata(admin.inner(), settings, Some(topic))?;
        let found = md.topics().iter().find(|t| t.name() == topic);
        let partitions: Vec<i32> = found
            .filter(|t| t.error().is_none())
            .map(|t| t.partitions().iter().map(|p| p.id()).collect())
            .unwrap_or_default();
        let leaders = found.is_some_and(|t| t.partitions().iter().all(|p| p.leader() >= 0));
        let count_ok = match create {
            Some(n) if strict => partitions.len() as i32 == n,
            _ => true,
        };
        if !partitions.is_empty() && !count_ok && !created {
            bail!(
                "topic {topic} exists with {} partitions, not {}: use another topic",
                partitions.len(),
                create.unwrap_or_default()
            );
        }
        if !partitions.is_empty() && leaders && count_ok {
            return Ok(sorted(partitions));
        }
        if Instant::now() >= deadline {
            bail!("topic {topic} is not ready (no metadata with leaders for its partitions)");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sorted(mut v: Vec<i32>) -> Vec<i32> {
    v.sort_unstable();
    v
}

/// Creates `topic`; returns false when it already existed.
fn create_topic(
    admin: &AdminClient<ToolContext>,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<bool> {
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = client::block_on(admin.create_topics([&new], &opts))?
        .map_err(|e| anyhow!("creating topic {topic}: {e}"))?;
    let mut created = true;
    for r in results {
        match r {
            Ok(_) => {}
            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => created = false,
            Err((t, code)) => bail!("creating topic {t}: {code}"),
        }
    }
    Ok(created)
}

/// Fetches metadata once so that an unreachable broker fails fast with a clear message.
fn check_reachable<C: rdkafka::ClientContext>(
    client: &Client<C>,
    tool: &ToolContext,
    settings: &ClientSettings,
) -> anyhow::Result<()> {
    let started = Instant::now();
    if client.fetch_metadata(None, settings.timeout).is_err() {
        if started.elapsed() + Duration::from_millis(50) >= settings.timeout {
            return Err(settings.unreachable(tool));
        }
        bail!("cannot read cluster metadata from {}", settings.bootstrap);
    }
    Ok(())
}

/// A payload of `size` random upper-case letters, as Kafka's perf tool sends; generated once
/// and reused, so the client spends no time making data.
fn random_payload(size: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..size)
        .map(|_| {
            // xorshift64: good enough to defeat any compression along the way.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'A' + (x % 26) as u8
        })
        .collect()
}

/// Parses a positive record size.
fn parse_size(s: &str) -> Result<usize, String> {
    let n: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number"))?;
    if n == 0 {
        return Err("must be at least 1".into());
    }
    Ok(n)
}

/// A run's output sink: human lines on stdout, or (with `--json`) progress on stderr and
/// the final document on stdout.
struct Output {
    json: bool,
}

impl Output {
    /// Prints a progress or result line.
    fn line(&self, text: &str) -> anyhow::Result<()> {
        if self.json {
            eprintln!("{text}");
            Ok(())
        } else {
            outln!("{text}").context("writing to stdout")
        }
    }

    /// Prints the settings line (always on stderr: stdout keeps Kafka's format).
    fn settings(&self, text: &str) {
        eprintln!("{text}");
    }

    /// Prints the JSON document when asked for.
    fn document(&self, doc: &report::Json) -> anyhow::Result<()> {
        if self.json {
            outln!("{doc}").context("writing to stdout")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn properties_from_arguments_win_and_defaults_fill_gaps() {
        let kvs = vec!["acks=1".to_string(), "linger.ms=7".to_string()];
        let p = client_props(
            None,
            &kvs,
            &[("linger.ms", "5"), ("compression.codec", "none")],
        )
        .unwrap();
        assert_eq!(p["acks"], "1");
        assert_eq!(p["linger.ms"], "7");
        assert_eq!(p["compression.codec"], "none");
        assert!(client_props(None, &["oops".to_string()], &[]).is_err());
    }

    #[test]
    fn payload_is_letters_and_deterministic() {
        let a = random_payload(1000, 42);
        assert_eq!(a.len(), 1000);
        assert!(a.iter().all(u8::is_ascii_uppercase));
        assert_eq!(a, random_payload(1000, 42));
        // Not one repeated letter.
        assert!(a.iter().any(|c| *c != a[0]));
    }

    #[test]
    fn sizes_must_be_positive_numbers() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert!(parse_size("0").is_err());
        assert!(parse_size("1k").is_err());
    }

    #[test]
    fn settings_line_lists_every_property() {
        let mut p = BTreeMap::new();
        p.insert("acks".to_string(), "1".to_string());
        p.insert("linger.ms".to_string(), "5".to_string());
        let line = describe_settings(&p);
        assert!(line.starts_with("settings: acks=1 linger.ms=5 (other properties: librdkafka "));
    }
}
