//! `fjord consumer-groups` / `kafka-consumer-groups` against a real broker with real
//! librdkafka group members: lag in `--describe` (with and without active members),
//! `--members`, `--state`, `--list`, every `--reset-offsets` scenario on partitions with
//! known timestamps, `--delete` and `--delete-offsets`, and the Kafka aliases.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::clients::{create_topic, producer};
use crate::harness::{BrokerProcess, refusing_port, wait_exit, wait_for};

const LIMIT: Duration = Duration::from_secs(60);
pub(crate) const OFFSETS_HEADER: [&str; 9] = [
    "GROUP",
    "TOPIC",
    "PARTITION",
    "CURRENT-OFFSET",
    "LOG-END-OFFSET",
    "LAG",
    "CONSUMER-ID",
    "HOST",
    "CLIENT-ID",
];
const PLAN_HEADER: [&str; 4] = ["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"];

/// A finished tool run.
pub(crate) struct Out {
    code: Option<i32>,
    pub(crate) stdout: String,
    stderr: String,
}

impl Out {
    pub(crate) fn ok(self) -> Out {
        assert_eq!(
            self.code,
            Some(0),
            "stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self
    }

    fn failed(self) -> Out {
        assert_eq!(
            self.code,
            Some(1),
            "stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// The rows under the header line whose columns are `header` (split on whitespace), up
    /// to the next blank line.
    pub(crate) fn table(&self, header: &[&str]) -> Vec<Vec<String>> {
        let mut lines = self.stdout.lines();
        let found = lines.by_ref().any(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols == header
        });
        assert!(found, "no {header:?} header in:\n{}", self.stdout);
        lines
            .take_while(|l| !l.trim().is_empty())
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect()
    }
}

/// Runs a command to completion (bounded), capturing its output.
fn run(mut cmd: Command) -> Out {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn fjord");
    let mut so = child.stdout.take().expect("stdout");
    let mut se = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        so.read_to_string(&mut s).expect("read stdout");
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        se.read_to_string(&mut s).expect("read stderr");
        s
    });
    let status = wait_exit(&mut child, LIMIT);
    Out {
        code: status.code(),
        stdout: t_out.join().expect("stdout thread"),
        stderr: t_err.join().expect("stderr thread"),
    }
}

/// `fjord consumer-groups --bootstrap-server ADDR args...`
pub(crate) fn cg(addr: &str, args: &[&str]) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fjord"));
    cmd.arg("consumer-groups")
        .arg("--bootstrap-server")
        .arg(addr)
        .args(args);
    run(cmd)
}

/// The same through a `kafka-consumer-groups[.sh]` link in `dir`.
fn cg_alias(dir: &Path, sh: bool, addr: &str, args: &[&str]) -> Out {
    let name = if sh {
        "kafka-consumer-groups.sh"
    } else {
        "kafka-consumer-groups"
    };
    let mut cmd = Command::new(dir.join(name));
    cmd.arg("--bootstrap-server").arg(addr).args(args);
    run(cmd)
}

/// A group member (classic protocol) subscribed to `topic`; nothing is committed unless the
/// test commits.
fn member(addr: &str, group: &str, client_id: &str, topic: &str) -> BaseConsumer {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", group)
        .set("client.id", client_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .create()
        .expect("consumer");
    c.subscribe(&[topic]).expect("subscribe");
    c
}

/// Polls until the member owns `n` partitions.
fn wait_assigned(c: &BaseConsumer, n: usize) {
    wait_for(LIMIT, "the assignment", || {
        let _ = c.poll(Duration::from_millis(50));
        (c.assignment().map(|a| a.count()).unwrap_or(0) == n).then_some(())
    });
}

/// Commits `offsets` of `topic` for the consumer's group (as a member when it is one, as a
/// simple commit otherwise).
fn commit(c: &BaseConsumer, topic: &str, offsets: &[(i32, i64)]) {
    let mut tpl = TopicPartitionList::new();
    for (p, o) in offsets {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*o))
            .unwrap();
    }
    c.commit(&tpl, CommitMode::Sync).expect("commit");
}

/// Commits offsets for `group` without joining it.
fn simple_commit(addr: &str, group: &str, topic: &str, offsets: &[(i32, i64)]) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    commit(&c, topic, offsets);
}

/// Produces `count` records to one partition, with the given timestamps if any.
fn produce(addr: &str, topic: &str, partition: i32, count: usize, timestamps: Option<&[i64]>) {
    let p = producer(addr, &[("acks", "all")]);
    for i in 0..count {
        let v = format!("{topic}-{partition}-{i}");
        let mut r = BaseRecord::<(), str>::to(topic)
            .payload(v.as_str())
            .partition(partition);
        if let Some(ts) = timestamps {
            r = r.timestamp(ts[i]);
        }
        p.send(r).expect("send");
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(30)).expect("flush");
}

/// Waits until `--describe --state` reports `state` for the group.
fn wait_state(addr: &str, group: &str, state: &str) {
    wait_for(LIMIT, &format!("group {group} to be {state}"), || {
        let out = cg(addr, &["--describe", "--group", group, "--state"]);
        (out.code == Some(0) && out.stdout.contains(&format!(" {state} "))).then_some(())
    });
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The plan rows as partition -> new offset (all rows must be for `group` and `topic`).
fn plan(out: &Out, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    out.table(&PLAN_HEADER)
        .into_iter()
        .map(|r| {
            assert_eq!((r[0].as_str(), r[1].as_str()), (group, topic), "{r:?}");
            (r[2].parse().unwrap(), r[3].parse().unwrap())
        })
        .collect()
}

/// Writes the kafka-* links with `fjord aliases`.
fn aliases() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fjord"));
    cmd.arg("aliases").arg(dir.path());
    run(cmd).ok();
    dir
}

#[test]
fn describe_shows_lag_members_and_state_with_and_without_active_members() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["group.initial.rebalance.delay.ms=0"]);
    let addr = broker.addr.as_str();
    create_topic(addr, "lagged", 3, &[]);
    produce(addr, "lagged", 0, 10, None);
    produce(addr, "lagged", 1, 4, None);
    produce(addr, "lagged", 2, 3, None);

    let c = member(addr, "lag-group", "lag-client", "lagged");
    wait_assigned(&c, 3);
    commit(&c, "lagged", &[(0, 6), (1, 4)]);

    let out = cg(addr, &["--list"]).ok();
    assert_eq!(out.stdout.lines().collect::<Vec<_>>(), ["lag-group"]);

    // Active member: every assigned partition, lag = log end - committed, "-" where nothing
    // is committed.
    let out = cg(addr, &["--describe", "--group", "lag-group"]).ok();
    assert!(!out.stderr.contains("no active members"), "{}", out.stderr);
    let rows = out.table(&OFFSETS_HEADER);
    assert_eq!(rows.len(), 3, "{}", out.stdout);
    let consumer_id = rows[0][6].clone();
    assert!(consumer_id.starts_with("lag-client-"), "{consumer_id}");
    let with_member = |p: &str, cur: &str, end: &str, lag: &str| {
        strings(&[
            "lag-group",
            "lagged",
            p,
            cur,
            end,
            lag,
            &consumer_id,
            "/127.0.0.1",
            "lag-client",
        ])
    };
    assert_eq!(rows[0], with_member("0", "6", "10", "4"));
    assert_eq!(rows[1], with_member("1", "4", "4", "0"));
    assert_eq!(rows[2], with_member("2", "-", "3", "-"));
    // Kafka's layout: a blank line, then columns padded to the widest value (at least 15;
    // PARTITION 10), one space apart.
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "");
    let wc = consumer_id.len().max(15);
    assert_eq!(
        lines[1],
        format!(
            "{:<15} {:<15} {:<10} {:<15} {:<15} {:<15} {:<wc$} {:<15} CLIENT-ID",
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST"
        )
    );
    assert_eq!(
        lines[2],
        format!(
            "{:<15} {:<15} {:<10} {:<15} {:<15} {:<15} {:<wc$} {:<15} lag-client",
            "lag-group", "lagged", "0", "6", "10", "4", consumer_id, "/127.0.0.1"
        )
    );

    // --members (and --verbose with the assignment), --state; through the alias too.
    let links = aliases();
    for sh in [false, true] {
        let out = cg_alias(
            links.path(),
            sh,
            addr,
            &["--describe", "--group", "lag-group", "--members"],
        )
        .ok();
        let rows = out.table(&["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS"]);
        assert_eq!(
            rows,
            [strings(&[
                "lag-group",
                &consumer_id,
                "/127.0.0.1",
                "lag-client",
                "3"
            ])]
        );
        let out = cg_alias(links.path(), sh, addr, &["--list"]).ok();
        assert_eq!(out.stdout, "lag-group\n");
    }
    let out = cg(
        addr,
        &[
            "--describe",
            "--group",
            "lag-group",
            "--members",
            "--verbose",
        ],
    )
    .ok();
    let rows = out.table(&[
        "GROUP",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
        "#PARTITIONS",
        "ASSIGNMENT",
    ]);
    assert_eq!(
        rows,
        [strings(&[
            "lag-group",
            &consumer_id,
            "/127.0.0.1",
            "lag-client",
            "3",
            "lagged(0,1,2)"
        ])]
    );
    let out = cg_alias(
        links.path(),
        false,
        addr,
        &["--describe", "--group", "lag-group", "--state"],
    )
    .ok();
    let rows = out.table(&[
        "GROUP",
        "COORDINATOR",
        "(ID)",
        "ASSIGNMENT-STRATEGY",
        "STATE",
        "#MEMBERS",
    ]);
    assert_eq!(
        rows,
        [strings(&["lag-group", addr, "(1)", "range", "Stable", "1"])]
    );
    let out = cg(addr, &["--list", "--state", "stable"]).ok();
    assert_eq!(
        out.table(&["GROUP", "STATE"]),
        [strings(&["lag-group", "Stable"])]
    );
    let out = cg(addr, &["--list", "--state", "empty", "--type"]).ok();
    assert!(out.table(&["GROUP", "TYPE", "STATE"]).is_empty());

    // The member leaves: committed partitions remain, without consumer columns.
    drop(c);
    wait_state(addr, "lag-group", "Empty");
    let out = cg(addr, &["--describe", "--group", "lag-group"]).ok();
    assert!(
        out.stderr
            .contains("\nConsumer group 'lag-group' has no active members."),
        "{}",
        out.stderr
    );
    let rows = out.table(&OFFSETS_HEADER);
    let without = |p: &str, cur: &str, end: &str, lag: &str| {
        strings(&["lag-group", "lagged", p, cur, end, lag, "-", "-", "-"])
    };
    assert_eq!(
        rows,
        [without("0", "6", "10", "4"), without("1", "4", "4", "0")]
    );
    // Lag follows new records.
    produce(addr, "lagged", 1, 2, None);
    let rows = cg(addr, &["--describe", "--group", "lag-group"])
        .ok()
        .table(&OFFSETS_HEADER);
    assert_eq!(rows[1], without("1", "4", "6", "2"));

    // Unknown groups are an error (on stdout, as Kafka prints it).
    let out = cg(addr, &["--describe", "--group", "nobody"]).failed();
    assert_eq!(
        out.stdout.trim(),
        "Error: Consumer group 'nobody' does not exist."
    );

    // Internal topics are hidden from `topics --list` unless asked for.
    let topics = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fjord"));
        cmd.args(["topics", "--bootstrap-server", addr]).args(args);
        run(cmd).ok().stdout
    };
    assert_eq!(topics(&["--list"]), "lagged\n");
    assert_eq!(topics(&["--list", "--exclude-internal"]), "lagged\n");
    assert_eq!(
        topics(&["--list", "--include-internal"]),
        "__consumer_offsets\nlagged\n"
    );
    assert!(!topics(&["--describe"]).contains("__consumer_offsets"));
}

#[test]
fn describe_shows_kip848_groups_too() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        dir.path(),
        &[
            "group.initial.rebalance.delay.ms=0",
            "group.consumer.heartbeat.interval.ms=300",
        ],
    );
    let addr = broker.addr.as_str();
    create_topic(addr, "newproto", 2, &[]);
    produce(addr, "newproto", 0, 3, None);
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", "kip848")
        .set("group.protocol", "consumer")
        .set("client.id", "new-client")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    c.subscribe(&["newproto"]).expect("subscribe");
    wait_assigned(&c, 2);
    commit(&c, "newproto", &[(0, 1)]);

    let rows = cg(addr, &["--describe", "--group", "kip848"])
        .ok()
        .table(&OFFSETS_HEADER);
    assert_eq!(rows.len(), 2, "{rows:?}");
    let id = rows[0][6].clone();
    assert!(!id.is_empty() && id != "-", "{rows:?}");
    let tail = [id.as_str(), "/127.0.0.1", "new-client"];
    assert_eq!(&rows[0][1..6], strings(&["newproto", "0", "1", "3", "2"]));
    assert_eq!(&rows[1][1..6], strings(&["newproto", "1", "-", "0", "-"]));
    assert_eq!(&rows[0][6..], strings(&tail));
    assert_eq!(&rows[1][6..], strings(&tail));
    let out = cg(addr, &["--describe", "--group", "kip848", "--members"]).ok();
    let rows = out.table(&["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS"]);
    assert_eq!(
        rows,
        [strings(&["kip848", &id, "/127.0.0.1", "new-client", "2"])]
    );
    let out = cg(addr, &["--describe", "--group", "kip848", "--state"]).ok();
    let rows = out.table(&[
        "GROUP",
        "COORDINATOR",
        "(ID)",
        "ASSIGNMENT-STRATEGY",
        "STATE",
        "#MEMBERS",
    ]);
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0][4].as_str(), rows[0][5].as_str()), ("Stable", "1"));
    let out = cg(addr, &["--list", "--type", "--state"]).ok();
    assert_eq!(
        out.table(&["GROUP", "TYPE", "STATE"]),
        [strings(&["kip848", "Consumer", "Stable"])]
    );
    let out = cg(addr, &["--list", "--type", "classic"]).ok();
    assert!(out.table(&["GROUP", "TYPE"]).is_empty());
    assert_eq!(cg(addr, &["--list"]).ok().stdout, "kip848\n");
}

#[test]
fn reset_to_earliest_makes_the_group_reread_and_is_refused_while_active() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["group.initial.rebalance.delay.ms=0"]);
    let addr = broker.addr.as_str();
    create_topic(addr, "replay", 1, &[]);
    produce(addr, "replay", 0, 5, None);

    // A member reads everything and commits its position.
    let c = member(addr, "replay-group", "replayer", "replay");
    let mut read = 0;
    wait_for(LIMIT, "5 records", || {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(50)) {
            read += 1;
            c.commit_message(&m, CommitMode::Sync).expect("commit");
        }
        (read == 5).then_some(())
    });
    let rows = cg(addr, &["--describe", "--group", "replay-group"])
        .ok()
        .table(&OFFSETS_HEADER);
    assert_eq!(
        &rows[0][..6],
        strings(&["replay-group", "replay", "0", "5", "5", "0"])
    );

    // Refused while the member is there.
    let out = cg(
        addr,
        &[
            "--reset-offsets",
            "--group",
            "replay-group",
            "--topic",
            "replay",
            "--to-earliest",
            "--execute",
        ],
    )
    .failed();
    assert!(
        out.stdout.contains(
            "Error: Assignments can only be reset if the group 'replay-group' is inactive, but the current state is Stable."
        ),
        "{}",
        out.stdout
    );
    drop(c);
    wait_state(addr, "replay-group", "Empty");

    // A dry run (the default, with a warning; or explicit) prints the plan and changes nothing.
    let reset = [
        "--reset-offsets",
        "--group",
        "replay-group",
        "--topic",
        "replay",
        "--to-earliest",
    ];
    let out = cg(addr, &reset).ok();
    assert!(
        out.stderr.contains("WARN: No action will be performed"),
        "{}",
        out.stderr
    );
    assert_eq!(
        plan(&out, "replay-group", "replay"),
        BTreeMap::from([(0, 0)])
    );
    let mut dry = reset.to_vec();
    dry.push("--dry-run");
    let out = cg(addr, &dry).ok();
    assert_eq!(out.stderr, "");
    assert_eq!(
        out.stdout,
        format!(
            "\n{:<15} {:<15} {:<10} NEW-OFFSET\n{:<15} {:<15} {:<10} 0\n",
            "GROUP", "TOPIC", "PARTITION", "replay-group", "replay", "0"
        )
    );
    let rows = cg(addr, &["--describe", "--group", "replay-group"])
        .ok()
        .table(&OFFSETS_HEADER);
    assert_eq!(rows[0][3], "5", "a dry run commits nothing");

    // --execute commits; the describe shows it.
    let mut exec = reset.to_vec();
    exec.push("--execute");
    let out = cg(addr, &exec).ok();
    assert_eq!(
        plan(&out, "replay-group", "replay"),
        BTreeMap::from([(0, 0)])
    );
    let rows = cg(addr, &["--describe", "--group", "replay-group"])
        .ok()
        .table(&OFFSETS_HEADER);
    assert_eq!(&rows[0][3..6], strings(&["0", "5", "5"]));

    // A restarted member resumes from the committed offset 0 (not from auto.offset.reset).
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", "replay-group")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "latest")
        .create()
        .expect("consumer");
    c.subscribe(&["replay"]).expect("subscribe");
    let mut offsets = Vec::new();
    wait_for(LIMIT, "the 5 records again", || {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(50)) {
            offsets.push(m.offset());
        }
        (offsets.len() == 5).then_some(())
    });
    assert_eq!(offsets, [0, 1, 2, 3, 4]);
}

#[test]
fn reset_scenarios_compute_offsets_from_known_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["group.initial.rebalance.delay.ms=0"]);
    let addr = broker.addr.as_str();
    create_topic(addr, "timed", 2, &[]);
    // Partition 0: one record a minute from 2023-11-14T22:13:20Z (offsets 0..9).
    let base = 1_700_000_000_000i64;
    let fixed: Vec<i64> = (0..10).map(|i| base + i * 60_000).collect();
    produce(addr, "timed", 0, 10, Some(&fixed));
    // Partition 1: one record an hour, the last one an hour ago (offsets 0..5).
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let recent: Vec<i64> = (0..6).map(|i| now - (6 - i) * 3_600_000).collect();
    produce(addr, "timed", 1, 6, Some(&recent));
    simple_commit(addr, "timed-group", "timed", &[(0, 5), (1, 2)]);
    let rows = cg(addr, &["--describe", "--group", "timed-group"])
        .ok()
        .table(&OFFSETS_HEADER);
    assert_eq!(rows.len(), 2);
    assert_eq!(&rows[0][3..6], strings(&["5", "10", "5"]));
    assert_eq!(&rows[1][3..6], strings(&["2", "6", "4"]));

    let reset = |extra: &[&str]| {
        let mut args = vec!["--reset-offsets", "--group", "timed-group", "--dry-run"];
        args.extend_from_slice(extra);
        cg(addr, &args)
    };
    let planned = |extra: &[&str]| plan(&reset(extra).ok(), "timed-group", "timed");
    let both = |a: i64, b: i64| BTreeMap::from([(0, a), (1, b)]);

    assert_eq!(planned(&["--topic", "timed", "--to-earliest"]), both(0, 0));
    assert_eq!(planned(&["--all-topics", "--to-latest"]), both(10, 6));
    assert_eq!(planned(&["--topic", "timed", "--to-current"]), both(5, 2));
    assert_eq!(
        planned(&["--topic", "timed:1", "--to-offset", "3"]),
        BTreeMap::from([(1, 3)])
    );
    assert_eq!(
        planned(&["--topic", "timed", "--shift-by", "-2"]),
        both(3, 0)
    );
    assert_eq!(planned(&["--all-topics", "--shift-by", "3"]), both(8, 5));
    // Out of range: clamped to the log, with Kafka's warnings.
    let out = reset(&["--topic", "timed", "--to-offset", "7"]).ok();
    assert_eq!(plan(&out, "timed-group", "timed"), both(7, 6));
    assert!(
        out.stderr.contains(
            "New offset (7) is higher than latest offset for topic partition timed-1. Value will be set to 6."
        ),
        "{}",
        out.stderr
    );
    let out = reset(&["--topic", "timed", "--shift-by", "-5"]).ok();
    assert_eq!(plan(&out, "timed-group", "timed"), both(0, 0));
    assert!(
        out.stderr.contains(
            "New offset (-3) is lower than earliest offset for topic partition timed-1. Value will be set to 0."
        ),
        "{}",
        out.stderr
    );

    // By time: the first record at or after it.
    let at = |dt: &str| planned(&["--topic", "timed:0", "--to-datetime", dt]);
    assert_eq!(at("2023-11-14T22:16:20.000"), BTreeMap::from([(0, 3)]));
    assert_eq!(at("2023-11-14T22:16:50.000Z"), BTreeMap::from([(0, 4)]));
    assert_eq!(
        at("2023-11-14T23:16:20.000+01:00"),
        BTreeMap::from([(0, 3)])
    );
    assert_eq!(at("2020-01-01T00:00:00.000"), BTreeMap::from([(0, 0)]));
    // Nothing that new: the log end, with Kafka's note.
    let out = reset(&[
        "--topic",
        "timed:0",
        "--to-datetime",
        "2100-01-01T00:00:00.000",
    ])
    .ok();
    assert_eq!(
        plan(&out, "timed-group", "timed"),
        BTreeMap::from([(0, 10)])
    );
    assert!(
        out.stdout.contains(
            "Warn: Partition 0 from topic timed is empty. Falling back to latest known offset."
        ),
        "{}",
        out.stdout
    );
    // now - 3h30m falls between the records of 4h and 3h ago (offsets 2 and 3).
    let by = |d: &str| planned(&["--topic", "timed:1", "--by-duration", d]);
    assert_eq!(by("PT3H30M"), BTreeMap::from([(1, 3)]));
    assert_eq!(by("P1D"), BTreeMap::from([(1, 0)]));

    // CSV export of the plan.
    let out = reset(&["--topic", "timed:0", "--to-offset", "1", "--export"]).ok();
    assert_eq!(out.stdout, "timed,0,1\n\n");

    // Errors: unknown topics or partitions, shifting without a committed offset.
    let out = reset(&["--topic", "nosuch", "--to-earliest"]).failed();
    assert!(
        out.stdout.contains("Topic 'nosuch' does not exist"),
        "{}",
        out.stdout
    );
    let out = reset(&["--topic", "timed:0,7", "--to-earliest"]).failed();
    assert!(
        out.stdout
            .contains("The partitions \"timed-7\" do not exist"),
        "{}",
        out.stdout
    );
    let out = cg(
        addr,
        &[
            "--reset-offsets",
            "--group",
            "fresh",
            "--topic",
            "timed",
            "--shift-by",
            "1",
        ],
    )
    .failed();
    assert!(
        out.stdout.contains(
            "Cannot shift offset for partition timed-0 since there is no current committed offset"
        ),
        "{}",
        out.stdout
    );

    // Executed: the group's offsets are what the plan said.
    cg(
        addr,
        &[
            "--reset-offsets",
            "--group",
            "timed-group",
            "--topic",
            "timed:1",
            "--by-duration",
            "PT3H30M",
            "--execute",
        ],
    )
    .ok();
    let rows = cg(addr, &["--describe", "--group", "timed-group"])
        .ok()
        .table(&OFFSETS_HEADER);
    assert_eq!(&rows[0][3..6], strings(&["5", "10", "5"]));
    assert_eq!(&rows[1][3..6], strings(&["3", "6", "3"]));
}

#[test]
fn delete_groups_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["group.initial.rebalance.delay.ms=0"]);
    let addr = broker.addr.as_str();
    create_topic(addr, "gone", 2, &[]);
    create_topic(addr, "kept", 1, &[]);
    for (t, p) in [("gone", 0), ("gone", 1), ("kept", 0)] {
        produce(addr, t, p, 3, None);
    }

    // An active group can be neither deleted nor lose offsets of a topic it subscribes to.
    let c = member(addr, "busy", "busy-client", "gone");
    wait_assigned(&c, 2);
    commit(&c, "gone", &[(0, 1), (1, 1)]);
    let out = cg(addr, &["--delete", "--group", "busy"]).failed();
    assert_eq!(
        out.stdout.trim(),
        "Error: Deletion of some consumer groups failed:\n* Group 'busy' could not be deleted due to: org.apache.kafka.common.errors.GroupNotEmptyException: The group is not empty."
    );
    let out = cg(
        addr,
        &["--delete-offsets", "--group", "busy", "--topic", "gone"],
    )
    .failed();
    assert!(
        out.stdout
            .contains("Error: Encountered some partition-level error, see the follow-up details."),
        "{}",
        out.stdout
    );
    let rows = out.table(&["TOPIC", "PARTITION", "STATUS"]);
    assert_eq!(rows.len(), 2);
    assert!(
        rows[0]
            .join(" ")
            .starts_with("gone 0 Error: Deleting offsets of a topic is forbidden"),
        "{rows:?}"
    );
    drop(c);
    wait_state(addr, "busy", "Empty");

    // An inactive group with offsets in two topics loses one topic's.
    simple_commit(addr, "idle", "gone", &[(0, 2), (1, 3)]);
    simple_commit(addr, "idle", "kept", &[(0, 1)]);
    let out = cg(
        addr,
        &["--delete-offsets", "--group", "idle", "--topic", "gone"],
    )
    .ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "Request succeeded for deleting offsets from group idle."
    );
    assert_eq!(
        out.table(&["TOPIC", "PARTITION", "STATUS"]),
        [
            strings(&["gone", "0", "Successful"]),
            strings(&["gone", "1", "Successful"])
        ]
    );
    let rows = cg(addr, &["--describe", "--group", "idle"])
        .ok()
        .table(&OFFSETS_HEADER);
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][1..4], strings(&["kept", "0", "1"]));
    let out = cg(
        addr,
        &["--delete-offsets", "--group", "idle", "--topic", "nosuch"],
    )
    .failed();
    let rows = out.table(&["TOPIC", "PARTITION", "STATUS"]);
    assert_eq!(
        rows[0].join(" "),
        "nosuch - Error: This server does not host this topic-partition."
    );

    // Empty groups are deleted; afterwards they are gone from --list and --describe.
    let out = cg(addr, &["--delete", "--group", "idle", "--group", "busy"]).ok();
    assert_eq!(
        out.stdout,
        "Deletion of requested consumer groups ('idle', 'busy') was successful.\n"
    );
    let out = cg(addr, &["--list"]).ok();
    assert_eq!(out.stdout, "");
    let out = cg(addr, &["--describe", "--group", "idle"]).failed();
    assert!(out.stdout.contains("Consumer group 'idle' does not exist."));
    let out = cg(addr, &["--delete", "--group", "idle"]).failed();
    assert!(
        out.stdout
            .contains("GroupIdNotFoundException: The group id does not exist."),
        "{}",
        out.stdout
    );
}

#[test]
fn usage_errors_and_unreachable_broker() {
    let (_refusing, port) = refusing_port();
    let addr = format!("127.0.0.1:{port}");
    let out = cg(&addr, &["--list", "--timeout", "2000"]).failed();
    assert!(
        out.stderr.starts_with(&format!(
            "Error: cannot reach the broker at {addr} within 2s"
        )),
        "{}",
        out.stderr
    );
    // Kafka's option rules, checked before connecting.
    let out = cg(&addr, &["--describe"]).failed();
    assert_eq!(
        out.stderr.trim(),
        "Error: Option --describe takes one of these options: --all-groups, --group"
    );
    let out = cg(&addr, &["--reset-offsets", "--group", "g", "--to-earliest"]).failed();
    assert!(
        out.stderr.contains("--all-topics, --topic"),
        "{}",
        out.stderr
    );
    assert_eq!(cg(&addr, &["--list", "--describe"]).code, Some(2));
    assert_eq!(
        cg(
            &addr,
            &[
                "--reset-offsets",
                "--group",
                "g",
                "--to-earliest",
                "--to-latest"
            ]
        )
        .code,
        Some(2)
    );
}
