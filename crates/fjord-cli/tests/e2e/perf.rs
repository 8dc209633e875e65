//! `fjord perf produce`, `consume` and `e2e` against a real broker, a few thousand records
//! each: the runs succeed and their result lines parse (Kafka's formats, and `--json`).

use std::process::{Command, Output};
use std::time::Duration;

use crate::harness::{BrokerProcess, wait_exit, wait_for};

/// Runs `fjord perf ARGS` against `addr`, bounded in time; panics unless it exits 0.
fn perf(addr: &str, args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .arg("perf")
        .args(args)
        .args(["--bootstrap-server", addr])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn fjord perf");
    let status = wait_exit(&mut child, Duration::from_secs(30));
    let Output { stdout, stderr, .. } = child.wait_with_output().expect("collect output");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    );
    assert!(
        status.success(),
        "fjord perf {args:?}: {status}\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stderr.contains("settings: "), "no settings line: {stderr}");
    stdout
}

/// The number before each `suffix` in `line`, in order ("12.5 ms 50th" -> 12.5).
fn number_before(line: &str, suffix: &str) -> f64 {
    let at = line
        .find(suffix)
        .unwrap_or_else(|| panic!("no '{suffix}' in {line:?}"));
    let word = line[..at].trim_end().rsplit([' ', '(']).next().unwrap();
    word.parse()
        .unwrap_or_else(|_| panic!("'{word}' before '{suffix}' in {line:?}"))
}

#[test]
fn perf_tools_run_and_report_parseable_results() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let addr = broker.addr.clone();

    // Flat out, two partitions, keys.
    let out = perf(
        &addr,
        &[
            "produce",
            "--topic",
            "perf-smoke",
            "--num-records",
            "3000",
            "--record-size",
            "100",
            "--throughput",
            "-1",
            "--partitions",
            "2",
            "--keys",
            "10",
            "--producer-props",
            "acks=1",
            "linger.ms=1",
        ],
    );
    let last = out.lines().last().expect("a result line");
    assert!(last.starts_with("3000 records sent, "), "{last}");
    assert!(number_before(last, " records/sec") > 0.0, "{last}");
    assert!(number_before(last, " MB/sec") > 0.0, "{last}");
    let p50 = number_before(last, " ms 50th");
    let p99 = number_before(last, " ms 99th");
    let max = number_before(last, " ms max latency");
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{last}");
    number_before(last, " ms 95th");
    number_before(last, " ms 99.9th");
    number_before(last, " ms avg latency");

    // Constant rate (open loop), JSON document.
    let out = perf(
        &addr,
        &[
            "produce",
            "--topic",
            "perf-smoke",
            "--num-records",
            "1000",
            "--record-size",
            "100",
            "--throughput",
            "4000",
            "--json",
        ],
    );
    let doc = out.trim();
    assert!(doc.starts_with(r#"{"tool":"produce","#), "{doc}");
    assert!(doc.contains(r#""records":1000,"#), "{doc}");
    assert!(doc.contains(r#""throughput_limit":4000,"#), "{doc}");
    assert!(doc.contains(r#""latency_ms":{"avg":"#), "{doc}");

    // Everything back, from the beginning, without and with a group; then fewer records
    // than the topic holds, which the batches of the run without a group must not overshoot.
    for (group, n) in [(None, 4000), (Some("perf-smoke-group"), 4000), (None, 3500)] {
        let count = n.to_string();
        let mut args = vec!["consume", "--topic", "perf-smoke", "--messages", &count];
        if let Some(g) = group {
            args.extend(["--group", g]);
        } else if n == 3500 {
            // Overridden without a group: a commit's reply would abort the batched reads.
            args.extend([
                "--consumer-props",
                "enable.auto.commit=true",
                "auto.commit.interval.ms=50",
            ]);
        }
        let out = perf(&addr, &args);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(lines[0].starts_with("start.time, end.time, data.consumed.in.MB"));
        let cols: Vec<&str> = lines[1].split(", ").collect();
        assert_eq!(cols.len(), 10, "{out}");
        assert_eq!(cols[4], count, "{out}");
        let mb: f64 = cols[2].parse().unwrap();
        // Keys count too, as in Kafka's tool: the first run's 3,000 keys are "key-0".."key-9".
        if n == 4000 {
            let bytes = 4000.0 * 100.0 + 3000.0 * 5.0;
            assert!((mb - bytes / 1048576.0).abs() < 0.0002, "{out}");
        } else {
            let (least, most) = (n as f64 * 100.0, n as f64 * 105.0);
            assert!(
                least / 1048576.0 - 0.0001 <= mb && mb <= most / 1048576.0 + 0.0001,
                "{out}"
            );
        }
        for c in &cols[3..] {
            c.parse::<f64>()
                .unwrap_or_else(|_| panic!("column {c:?} in {out}"));
        }
    }

    // End to end at a low rate.
    let out = perf(
        &addr,
        &[
            "e2e",
            "--topic",
            "perf-smoke-e2e",
            "--rate",
            "2000",
            "--duration",
            "1",
            "--warmup",
            "0.2",
            "--record-size",
            "64",
            // Overridden: a commit's reply would abort the batched consumer (librdkafka).
            "--consumer-props",
            "enable.auto.commit=true",
            "auto.commit.interval.ms=50",
        ],
    );
    let last = out.lines().last().expect("a result line");
    assert!(last.starts_with("E2E latency at "), "{last}");
    let p99 = number_before(last, " ms 99th");
    assert!(
        p99 > 0.0 && p99 <= number_before(last, " ms max."),
        "{last}"
    );
    assert!(number_before(last, " records,") >= 1000.0, "{last}");
    // The line before: the same records' ack latency, from the delivery reports.
    let ack = out.lines().rev().nth(1).expect("an ack line");
    assert!(ack.starts_with("Ack latency: "), "{ack}");
    let ack_p99 = number_before(ack, " ms 99th");
    assert!(
        ack_p99 > 0.0 && ack_p99 <= number_before(ack, " ms max."),
        "{ack}"
    );
    broker.terminate();
}

/// Starts `fjord perf consume` as a member of `group`: `messages` records at most, 5 s of
/// idleness at most. Its exit status is not checked: a member that gets fewer than
/// `messages` fails, as Kafka's tool does.
fn group_member(addr: &str, topic: &str, group: &str, messages: u64) -> std::process::Child {
    group_member_with(addr, topic, group, messages, 5_000, &[])
}

/// [`group_member`] with `idle_ms` of idleness at most and `extra` arguments; stdout and
/// stderr are piped.
fn group_member_with(
    addr: &str,
    topic: &str,
    group: &str,
    messages: u64,
    idle_ms: u64,
    extra: &[&str],
) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_fjord"))
        .args(["perf", "consume", "--topic", topic, "--group", group])
        .args(["--messages", &messages.to_string()])
        .args(["--timeout", &idle_ms.to_string()])
        .args(["--bootstrap-server", addr, "--hide-header"])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn fjord perf consume")
}

/// The records a member started by [`group_member`] consumed, from its result line.
fn consumed(mut member: std::process::Child) -> u64 {
    wait_exit(&mut member, Duration::from_secs(60));
    let out = member.wait_with_output().expect("collect output");
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    line.trim()
        .split(", ")
        .nth(4)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no result line: {line:?}"))
}

/// Produces `records` x 100 B to `topic` (made with `partitions` if missing) with
/// `fjord perf produce`, as fast as it goes.
fn produce_small(addr: &str, topic: &str, partitions: u32, records: u64) {
    let (partitions, records) = (partitions.to_string(), records.to_string());
    perf(
        addr,
        &[
            "produce",
            "--topic",
            topic,
            "--partitions",
            &partitions,
            "--num-records",
            &records,
            "--record-size",
            "100",
            "--throughput",
            "-1",
        ],
    );
}

/// Two members of one group read in batches from their partitions' queues, forwarded to a
/// queue of the tool's own: one stops after its share and leaves, the other takes its
/// partitions over from the offsets it committed. Between them every record is consumed,
/// none twice (both hand over cleanly: commit on revocation and on close).
#[test]
fn perf_consume_group_members_hand_partitions_over() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["group.initial.rebalance.delay.ms=0"]);
    let addr = broker.addr.clone();
    produce_small(&addr, "perf-group", 4, 20_000);
    let first = group_member(&addr, "perf-group", "perf-group-members", 5_000);
    let second = group_member(&addr, "perf-group", "perf-group-members", 20_000);
    let (first, second) = (consumed(first), consumed(second));
    assert!(first <= 5_000, "{first} + {second}");
    assert_eq!(first + second, 20_000, "{first} + {second}");
    broker.terminate();
}

/// The state and member count `fjord consumer-groups --describe --state` shows for `group`.
fn group_state(addr: &str, group: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .args(["consumer-groups", "--bootstrap-server", addr])
        .args(["--describe", "--state", "--group", group])
        .output()
        .expect("run fjord consumer-groups");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find(|l| l.starts_with(group))
        .map(|l| {
            l.split_whitespace()
                .rev()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// A member whose partitions are revoked and given back keeps reading them: librdkafka
/// clears the forwarding of a partition's queue when it stops fetching it, so the tool
/// forwards again after every assignment. Records produced after the hand-back must all
/// arrive.
#[test]
fn perf_consume_group_member_reads_partitions_given_back() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["group.initial.rebalance.delay.ms=0"]);
    let addr = broker.addr.clone();
    let produce = || produce_small(&addr, "perf-regain", 4, 4_000);
    produce();
    let group = "perf-regain-members";
    let mut first = group_member_with(&addr, "perf-regain", group, 8_000, 20_000, &[]);
    wait_for(Duration::from_secs(20), "the first member to join", || {
        (group_state(&addr, group) == "1 Stable").then_some(())
    });
    // A second member joins (every partition of the first is revoked, some given back),
    // finds nothing new and leaves after its idle time (the rest given back).
    let second = consumed(group_member(&addr, "perf-regain", group, 1));
    wait_for(
        Duration::from_secs(20),
        "the first member alone again",
        || (group_state(&addr, group) == "1 Stable").then_some(()),
    );
    produce();
    wait_exit(&mut first, Duration::from_secs(30));
    let first = consumed(first);
    assert_eq!(first + second, 8_000, "{first} + {second}");
}

/// A group member that meets a corrupt batch stops there and commits exactly what it read.
/// The batched reads move librdkafka's position past every message they return, errors
/// included; so the tool stores its records' offsets itself and ends the run at an error of
/// a partition (the reverted version, with automatic stores and such errors only warned
/// about, read on, counted a thousand records twice and exited 0).
#[test]
fn perf_consume_group_member_stops_at_a_corrupt_batch_and_commits_what_it_read() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};
    use std::os::unix::fs::FileExt;

    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["group.initial.rebalance.delay.ms=0"]);
    let addr = broker.addr.clone();
    let topic = "perf-corrupt";
    for _ in 0..3 {
        produce_small(&addr, topic, 1, 1_000);
    }
    // The first batch from offset 1000 on gets one byte of its last record flipped, so its
    // CRC no longer matches; the broker serves it as stored.
    let log = dir
        .path()
        .join(format!("{topic}-0"))
        .join(format!("{:020}.log", 0));
    let bytes = std::fs::read(&log).unwrap();
    let mut pos = 0;
    let (at, base) = loop {
        assert!(pos + 12 <= bytes.len(), "no batch from offset 1000 on");
        let base = i64::from_be_bytes(bytes[pos..pos + 8].try_into().unwrap());
        let len = i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().unwrap()) as usize;
        if base >= 1000 {
            break (pos + 12 + len - 1, base);
        }
        pos += 12 + len;
    };
    let file = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
    file.write_at(&[bytes[at] ^ 0xff], at as u64).unwrap();

    let group = "perf-corrupt-members";
    let mut member = group_member_with(
        &addr,
        topic,
        group,
        3_000,
        5_000,
        &["--consumer-props", "check.crcs=true"],
    );
    let status = wait_exit(&mut member, Duration::from_secs(60));
    let out = member.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("[0] at offset {base}:")),
        "{stderr}"
    );

    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &addr)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let committed = reader
        .committed_offsets(tpl, Duration::from_secs(10))
        .unwrap();
    let offset = committed.find_partition(topic, 0).unwrap().offset();
    assert_eq!(offset, Offset::Offset(base), "{stderr}");
    // The commit carries the leader epoch the records were fetched in (Fjord's is 0), not
    // "unknown" (-1, shown as "-").
    let out =
        crate::consumer_groups::cg(&addr, &["--describe", "--group", group, "--verbose"]).ok();
    // `--verbose` adds LEADER-EPOCH after PARTITION.
    let mut header = crate::consumer_groups::OFFSETS_HEADER.to_vec();
    header.insert(3, "LEADER-EPOCH");
    let rows = out.table(&header);
    assert_eq!(rows.len(), 1, "{}", out.stdout);
    assert_eq!(rows[0][3..5], ["0", &base.to_string()], "{}", out.stdout);
    broker.terminate();
}
