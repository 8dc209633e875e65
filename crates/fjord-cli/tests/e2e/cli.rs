//! The Kafka command-line tools (`fjord topics`, `fjord console-producer`, ...) against a
//! real broker, run both as `fjord <sub>` and through the `kafka-*` links that
//! `fjord aliases` writes. Outputs are compared line by line with Kafka's formats.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::clients::consume_all;
use crate::harness::{BrokerProcess, refusing_port, wait_exit};

const LIMIT: Duration = Duration::from_secs(60);
const WARNING: &str = "WARNING: Due to limitations in metric names, topics with a period ('.') or underscore ('_') could collide. To avoid issues it is best to use either, but not both.";

/// How the tools are invoked: `fjord <sub>` or a `kafka-*` link.
enum Via {
    Fjord,
    /// Links in this directory; `sh` picks the `.sh` names.
    Alias {
        dir: PathBuf,
        sh: bool,
    },
}

/// A tool invocation ready to get arguments.
struct Tools {
    via: Via,
    addr: String,
}

/// The finished process: status and its output as text.
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    fn ok(self) -> Out {
        assert_eq!(
            self.code,
            Some(0),
            "stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self
    }
}

impl Tools {
    /// The links of [`aliases`] (the `.sh` names with `sh`).
    fn linked(links: &tempfile::TempDir, sh: bool, addr: &str) -> Tools {
        Tools::new(
            Via::Alias {
                dir: links.path().join("bin"),
                sh,
            },
            addr,
        )
    }

    fn new(via: Via, addr: &str) -> Tools {
        Tools {
            via,
            addr: addr.to_string(),
        }
    }

    /// The command for Kafka tool `tool` (e.g. "topics" for kafka-topics).
    fn cmd(&self, tool: &str) -> Command {
        match &self.via {
            Via::Fjord => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_fjord"));
                c.arg(tool);
                c
            }
            Via::Alias { dir, sh } => {
                let name = format!("kafka-{tool}{}", if *sh { ".sh" } else { "" });
                Command::new(dir.join(name))
            }
        }
    }

    /// Runs `tool args` with `input` on stdin, bounded by [`LIMIT`].
    fn run(&self, tool: &str, args: &[&str], input: &str) -> Out {
        let mut cmd = self.cmd(tool);
        cmd.args(args);
        run_cmd(cmd, input)
    }

    /// Runs `tool --bootstrap-server ADDR args` (the producer's `--broker-list` spelling
    /// is tested separately).
    fn at(&self, tool: &str, args: &[&str]) -> Out {
        self.at_in(tool, args, "")
    }

    fn at_in(&self, tool: &str, args: &[&str], input: &str) -> Out {
        let mut all = vec!["--bootstrap-server", self.addr.as_str()];
        all.extend_from_slice(args);
        self.run(tool, &all, input)
    }

    /// Starts a long-running tool with stdout lines delivered over a channel.
    fn spawn(&self, tool: &str, args: &[&str]) -> Running {
        let mut cmd = self.cmd(tool);
        cmd.arg("--bootstrap-server")
            .arg(&self.addr)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn tool");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Running { child, lines: rx }
    }
}

struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_cmd(mut cmd: Command, input: &str) -> Out {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn tool");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("write stdin");
    drop(stdin);
    // Drain the pipes on threads so a chatty tool cannot block on a full pipe.
    let mut so = child.stdout.take().expect("stdout");
    let mut se = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut so, &mut s).expect("read stdout");
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut se, &mut s).expect("read stderr");
        s
    });
    let status = wait_exit(&mut child, LIMIT);
    Out {
        code: status.code(),
        stdout: t_out.join().expect("stdout thread"),
        stderr: t_err.join().expect("stderr thread"),
    }
}

fn fjord(args: &[&str]) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fjord"));
    cmd.args(args);
    run_cmd(cmd, "")
}

/// Writes the alias links into a fresh directory with `fjord aliases`.
fn aliases() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let links = dir.path().join("bin");
    let out = fjord(&["aliases", links.to_str().unwrap()]).ok();
    assert_eq!(out.lines().len(), 22, "{}", out.stdout);
    for tool in [
        "topics",
        "console-producer",
        "console-consumer",
        "consumer-groups",
        "configs",
        "get-offsets",
        "delete-records",
        "log-dirs",
        "broker-api-versions",
        "producer-perf-test",
        "consumer-perf-test",
    ] {
        for name in [format!("kafka-{tool}"), format!("kafka-{tool}.sh")] {
            let link = links.join(&name);
            let meta = std::fs::symlink_metadata(&link).unwrap();
            assert!(meta.file_type().is_symlink(), "{name}");
            assert!(
                out.stdout.contains(&format!("{} -> ", link.display())),
                "{name} reported"
            );
        }
    }
    dir
}

/// The Java client's murmur2 partitioner, written from its specification: murmur2 with
/// seed 0x9747b28c, then the sign bit cleared, modulo the partition count.
fn java_partition(key: &[u8], partitions: u32) -> i32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ key.len() as u32;
    let mut chunks = key.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    ((h & 0x7fff_ffff) % partitions) as i32
}

/// The quickstart flow, with the commands exactly as a Kafka user types them.
fn seed_flow(t: &Tools) {
    let addr = t.addr.as_str();
    // kafka-topics --bootstrap-server ... --topic log_topic --create --partitions 2 --replication-factor 1
    let out = t
        .at(
            "topics",
            &[
                "--topic",
                "log_topic",
                "--create",
                "--partitions",
                "2",
                "--replication-factor",
                "1",
            ],
        )
        .ok();
    assert_eq!(out.lines(), vec![WARNING, "Created topic log_topic."]);

    // kafka-topics --list: sorted; internal topics hidden (--exclude-internal still accepted).
    let out = t.at("topics", &["--list"]).ok();
    let listed = out.lines();
    assert!(listed.contains(&"log_topic"), "{listed:?}");
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted);
    let out = t.at("topics", &["--list", "--exclude-internal"]).ok();
    assert_eq!(out.lines(), vec!["log_topic"]);

    // kafka-topics --describe --topic log_topic (Kafka 3.7+ layout).
    let out = t.at("topics", &["--describe", "--topic", "log_topic"]).ok();
    let lines = out.lines();
    assert_eq!(lines.len(), 3, "{lines:?}");
    let head: Vec<&str> = lines[0].split('\t').collect();
    assert_eq!(head.len(), 5, "{lines:?}");
    assert_eq!(head[0], "Topic: log_topic");
    let id = head[1].strip_prefix("TopicId: ").expect("TopicId field");
    assert_eq!(id.len(), 22, "base64 UUID: {id}");
    assert_eq!(
        &head[2..],
        ["PartitionCount: 2", "ReplicationFactor: 1", "Configs: "]
    );
    for p in 0..2 {
        assert_eq!(
            lines[1 + p],
            format!(
                "\tTopic: log_topic\tPartition: {p}\tLeader: 1\tReplicas: 1\tIsr: 1\tElr: \tLastKnownElr: "
            )
        );
    }

    // kafka-console-producer --broker-list ... --topic log_topic (no keys)
    let out = t
        .run(
            "console-producer",
            &["--broker-list", addr, "--topic", "log_topic"],
            "log1\nlog2\nlog3\nlog4\n",
        )
        .ok();
    assert_eq!(out.stdout, "");

    // kafka-console-producer ... --property parse.key=true --property key.separator=,
    t.at_in(
        "console-producer",
        &[
            "--topic",
            "log_topic",
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=,",
        ],
        "user1,login website\nuser1,click the top item\n",
    )
    .ok();

    // What a librdkafka consumer sees: keys, partitions, offsets.
    let seen = consume_all(addr, "log_topic", 2, 6);
    let keyed: Vec<_> = seen.iter().filter(|s| s.key.is_some()).collect();
    assert_eq!(keyed.len(), 2);
    let p = java_partition(b"user1", 2);
    assert!(
        keyed
            .iter()
            .all(|s| s.partition == p && s.key.as_deref() == Some(&b"user1"[..])),
        "both user1 records in the murmur2 partition {p}: {keyed:?}"
    );
    assert_eq!(
        keyed[1].offset,
        keyed[0].offset + 1,
        "in order, consecutive"
    );
    let mut unkeyed: Vec<String> = seen
        .iter()
        .filter(|s| s.key.is_none())
        .map(|s| String::from_utf8(s.value.clone().unwrap()).unwrap())
        .collect();
    unkeyed.sort();
    assert_eq!(unkeyed, vec!["log1", "log2", "log3", "log4"]);

    // kafka-console-consumer --topic log_topic --from-beginning: every record, values only.
    let out = t
        .at(
            "console-consumer",
            &[
                "--topic",
                "log_topic",
                "--from-beginning",
                "--max-messages",
                "6",
            ],
        )
        .ok();
    let mut values = out.lines();
    values.sort();
    assert_eq!(
        values,
        vec![
            "click the top item",
            "log1",
            "log2",
            "log3",
            "log4",
            "login website"
        ]
    );
    assert!(
        out.stderr.contains("Processed a total of 6 messages"),
        "{}",
        out.stderr
    );
    // The same with keys, partitions and offsets printed, as the librdkafka consumer saw them.
    let out = t
        .at(
            "console-consumer",
            &[
                "--topic",
                "log_topic",
                "--from-beginning",
                "--max-messages",
                "6",
                "--property",
                "print.key=true",
                "--property",
                "print.partition=true",
                "--property",
                "print.offset=true",
            ],
        )
        .ok();
    let mut got: Vec<String> = out.lines().iter().map(|l| l.to_string()).collect();
    got.sort();
    let mut want: Vec<String> = seen
        .iter()
        .map(|s| {
            format!(
                "Partition:{}\tOffset:{}\t{}\t{}",
                s.partition,
                s.offset,
                s.key
                    .as_deref()
                    .map_or("null".into(), |k| String::from_utf8_lossy(k).into_owned()),
                String::from_utf8_lossy(s.value.as_deref().unwrap())
            )
        })
        .collect();
    want.sort();
    assert_eq!(got, want);

    // kafka-console-consumer --topic log_topic: only records produced after it started.
    let consumer = t.spawn(
        "console-consumer",
        &["--topic", "log_topic", "--max-messages", "1"],
    );
    let out = produce_until_exit(t, consumer, "log_topic", "new1");
    assert_eq!(out.lines(), vec!["new1"], "never an old record");
    assert!(out.stderr.contains("Processed a total of 1 messages"));

    // kafka-topics --topic log_topic --delete
    let out = t.at("topics", &["--topic", "log_topic", "--delete"]).ok();
    assert_eq!(out.stdout, "");
    let out = t.at("topics", &["--list", "--exclude-internal"]).ok();
    assert_eq!(out.stdout, "");
}

/// Produces `value` repeatedly until the consumer exits (it was started at the log end, so
/// it sees one of the copies whichever is first after its start position was resolved).
fn produce_until_exit(t: &Tools, mut consumer: Running, topic: &str, value: &str) -> Out {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(status) = consumer.child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(consumer.child.stderr.as_mut().unwrap(), &mut stderr)
                .unwrap();
            let mut stdout = String::new();
            while let Ok(l) = consumer.lines.recv_timeout(Duration::from_secs(5)) {
                stdout.push_str(&l);
                stdout.push('\n');
            }
            assert!(status.success(), "consumer failed: {stderr}");
            return Out {
                code: status.code(),
                stdout,
                stderr,
            };
        }
        assert!(Instant::now() < deadline, "consumer never saw {value}");
        t.at_in(
            "console-producer",
            &["--topic", topic, "--timeout", "0"],
            &format!("{value}\n"),
        )
        .ok();
    }
}

#[test]
fn seed_flow_as_fjord_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    seed_flow(&Tools::new(Via::Fjord, &broker.addr));
}

#[test]
fn seed_flow_via_kafka_aliases() {
    let links = aliases();
    let bin = links.path().join("bin");
    for sh in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let broker = BrokerProcess::start(dir.path(), &[]);
        let tools = Tools::new(
            Via::Alias {
                dir: bin.clone(),
                sh,
            },
            &broker.addr,
        );
        seed_flow(&tools);
    }
}

#[test]
fn replication_factor_above_broker_count_fails_with_kafkas_message() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let links = aliases();
    for t in [
        Tools::new(Via::Fjord, &broker.addr),
        Tools::linked(&links, true, &broker.addr),
    ] {
        let started = Instant::now();
        let out = t.at(
            "topics",
            &[
                "--create",
                "--topic",
                "rf3",
                "--partitions",
                "1",
                "--replication-factor",
                "3",
            ],
        );
        assert_eq!(out.code, Some(1), "{}", out.stderr);
        assert_eq!(
            out.lines(),
            vec![
                "Error while executing topic command : Unable to replicate the partition 3 time(s): The target replication factor of 3 cannot be reached because only 1 broker(s) are registered."
            ]
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    let t = Tools::new(Via::Fjord, &broker.addr);
    assert_eq!(
        t.at("topics", &["--list", "--exclude-internal"])
            .ok()
            .stdout,
        ""
    );
}

#[test]
fn topics_create_options_describe_filters_alter_and_if_exists() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let t = Tools::new(Via::Fjord, &broker.addr);
    let out = t
        .at(
            "topics",
            &[
                "--create",
                "--topic",
                "cfgtopic",
                "--partitions",
                "1",
                "--config",
                "retention.ms=60000",
                "--config",
                "cleanup.policy=compact",
            ],
        )
        .ok();
    assert_eq!(out.lines(), vec!["Created topic cfgtopic."]);
    // Exists already: an error, unless --if-not-exists.
    let out = t.at("topics", &["--create", "--topic", "cfgtopic"]);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.lines(),
        vec!["Error while executing topic command : Topic 'cfgtopic' already exists."]
    );
    let out = t
        .at(
            "topics",
            &["--create", "--topic", "cfgtopic", "--if-not-exists"],
        )
        .ok();
    assert_eq!(out.stdout, "");

    let out = t.at("topics", &["--describe", "--topic", "cfgtopic"]).ok();
    let head = out.lines()[0].to_string();
    assert!(
        head.ends_with(
            "\tPartitionCount: 1\tReplicationFactor: 1\tConfigs: cleanup.policy=compact,retention.ms=60000"
        ),
        "{head}"
    );
    let out = t
        .at(
            "topics",
            &[
                "--describe",
                "--topics-with-overrides",
                "--exclude-internal",
            ],
        )
        .ok();
    assert_eq!(out.lines(), vec![head.as_str()]);

    // --alter --partitions grows the topic; shrinking is refused with Kafka's message.
    t.at(
        "topics",
        &["--alter", "--topic", "cfgtopic", "--partitions", "3"],
    )
    .ok();
    let out = t.at("topics", &["--describe", "--topic", "cfgtopic"]).ok();
    assert_eq!(out.lines().len(), 4);
    assert!(out.lines()[0].contains("\tPartitionCount: 3\t"));
    assert!(out.lines()[3].starts_with("\tTopic: cfgtopic\tPartition: 2\tLeader: 1\t"));
    let out = t.at(
        "topics",
        &["--alter", "--topic", "cfgtopic", "--partitions", "2"],
    );
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.lines(),
        vec![
            "Error while executing topic command : Topic currently has 3 partitions, which is higher than the requested 2."
        ]
    );

    // Healthy single broker: nothing under-replicated or unavailable.
    for filter in ["--under-replicated-partitions", "--unavailable-partitions"] {
        assert_eq!(t.at("topics", &["--describe", filter]).ok().stdout, "");
    }
    // Describe of everything lists the topic; a regex --topic matches whole names.
    let out = t.at("topics", &["--describe", "--exclude-internal"]).ok();
    assert!(out.lines()[0].starts_with("Topic: cfgtopic\tTopicId: "));
    let out = t.at("topics", &["--list", "--topic", "cfg.*"]).ok();
    assert_eq!(out.lines(), vec!["cfgtopic"]);
    assert_eq!(
        t.at("topics", &["--list", "--topic", "cfg"]).ok().stdout,
        ""
    );

    // Missing topics: errors unless --if-exists.
    for action in [
        &["--describe"][..],
        &["--delete"],
        &["--alter", "--partitions", "5"],
    ] {
        let mut args = action.to_vec();
        args.extend(["--topic", "nope"]);
        let out = t.at("topics", &args);
        assert_eq!(out.code, Some(1), "{action:?}");
        assert_eq!(
            out.lines(),
            vec!["Error while executing topic command : Topic 'nope' does not exist as expected"]
        );
        args.push("--if-exists");
        assert_eq!(t.at("topics", &args).ok().stdout, "");
    }

    // Usage errors exit 2 with clap's message.
    let out = t.at("topics", &["--list", "--describe"]);
    assert_eq!(out.code, Some(2));
    let out = t.at("topics", &["--create"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stdout.contains("--topic is required"), "{}", out.stdout);
}

#[test]
fn producer_headers_null_marker_and_formatter_properties() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let t = Tools::new(Via::Fjord, &broker.addr);
    t.at(
        "topics",
        &["--create", "--topic", "hdrs", "--partitions", "1"],
    )
    .ok();
    t.at_in(
        "console-producer",
        &[
            "--topic",
            "hdrs",
            "--sync",
            "--property",
            "parse.headers=true",
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=,",
            "--property",
            "null.marker=NULL",
            "--compression-codec",
            "zstd",
            "--request-required-acks",
            "1",
        ],
        "h1:v1,h2:v2\tk1,one\nh3:NULL\tNULL,two\nNULL\tk3,NULL\n",
    )
    .ok();
    let out = t
        .at(
            "console-consumer",
            &[
                "--topic",
                "hdrs",
                "--from-beginning",
                "--max-messages",
                "3",
                "--property",
                "print.headers=true",
                "--property",
                "print.key=true",
                "--property",
                "print.offset=true",
                "--property",
                "key.separator=|",
            ],
        )
        .ok();
    assert_eq!(
        out.lines(),
        vec![
            "Offset:0|h1:v1,h2:v2|k1|one",
            "Offset:1|h3:null|null|two",
            "Offset:2|NO_HEADERS|k3|null",
        ]
    );
    // Timestamps print as CreateTime:<ms>; a value-less format ends the line after the key.
    let out = t
        .at(
            "console-consumer",
            &[
                "--topic",
                "hdrs",
                "--partition",
                "0",
                "--offset",
                "1",
                "--max-messages",
                "2",
                "--property",
                "print.timestamp=true",
                "--property",
                "print.key=true",
                "--property",
                "print.value=false",
            ],
        )
        .ok();
    let lines = out.lines();
    assert_eq!(lines.len(), 2);
    let (ts, key) = lines[0].split_once('\t').unwrap();
    assert!(
        ts.strip_prefix("CreateTime:")
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 0
    );
    assert_eq!(key, "null");
    assert!(lines[1].ends_with("\tk3"));

    // A misspelt reader property fails before anything is sent.
    let out = t.at_in(
        "console-producer",
        &["--topic", "hdrs", "--property", "key.seperator=,"],
        "x\n",
    );
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("did you mean key.separator?"),
        "{}",
        out.stderr
    );
    let out = t.at(
        "console-consumer",
        &["--topic", "hdrs", "--property", "print.kye=true"],
    );
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("did you mean print.key?"),
        "{}",
        out.stderr
    );
    // A line without the key separator is an error naming the line.
    let out = t.at_in(
        "console-producer",
        &["--topic", "hdrs", "--property", "parse.key=true"],
        "fine\tvalue\nbroken\n",
    );
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .contains("No key separator found on line number 2: 'broken'"),
        "{}",
        out.stderr
    );
}

#[test]
fn producer_reports_delivery_failures_with_the_brokers_error() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let t = Tools::new(Via::Fjord, &broker.addr);
    t.at(
        "topics",
        &[
            "--create",
            "--topic",
            "small",
            "--config",
            "max.message.bytes=200",
        ],
    )
    .ok();
    let big = "x".repeat(1000);
    let out = t.at_in(
        "console-producer",
        // --sync: one record per request, so the small one is not in the rejected batch.
        &["--topic", "small", "--sync"],
        &format!("ok\n{big}\n"),
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "Error when sending message to topic small with key: null, value: 1000 bytes with error:"
        ) && out.stderr.contains("Message size too large"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("1 record(s) could not be delivered"));
    // The small record made it.
    let out = t
        .at(
            "console-consumer",
            &[
                "--topic",
                "small",
                "--from-beginning",
                "--max-messages",
                "1",
            ],
        )
        .ok();
    assert_eq!(out.lines(), vec!["ok"]);
}

#[test]
fn consumer_include_timeout_and_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let t = Tools::new(Via::Fjord, &broker.addr);
    for topic in ["inc-a", "inc-b", "other"] {
        t.at(
            "topics",
            &["--create", "--topic", topic, "--partitions", "1"],
        )
        .ok();
        t.at_in(
            "console-producer",
            &["--topic", topic],
            &format!("{topic}-1\n"),
        )
        .ok();
    }
    // --include matches whole topic names; --timeout-ms ends an idle consumer with exit 0.
    let out = t
        .at(
            "console-consumer",
            &[
                "--include",
                "inc-.*",
                "--from-beginning",
                "--timeout-ms",
                "3000",
            ],
        )
        .ok();
    let mut lines = out.lines();
    lines.sort();
    assert_eq!(lines, vec!["inc-a-1", "inc-b-1"]);
    assert!(out.stderr.contains("Processed a total of 2 messages"));

    // Ctrl-C: a clean exit 0 with the summary line. Wait until it is consuming first.
    let mut consumer = t.spawn("console-consumer", &["--topic", "other"]);
    let deadline = Instant::now() + LIMIT;
    loop {
        t.at_in(
            "console-producer",
            &["--topic", "other", "--timeout", "0"],
            "ping\n",
        )
        .ok();
        if consumer
            .lines
            .recv_timeout(Duration::from_millis(300))
            .is_ok()
        {
            break;
        }
        assert!(Instant::now() < deadline, "consumer never printed");
    }
    let pid = consumer.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = wait_exit(&mut consumer.child, LIMIT);
    assert!(status.success(), "{status}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(consumer.child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("Processed a total of "), "{stderr}");
}

#[test]
fn configs_describe_alter_via_fjord_and_alias() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let links = aliases();
    let fj = Tools::new(Via::Fjord, &broker.addr);
    fj.at(
        "topics",
        &["--create", "--topic", "conf", "--partitions", "1"],
    )
    .ok();
    for t in [&fj, &Tools::linked(&links, false, &broker.addr)] {
        let out = t
            .at(
                "configs",
                &[
                    "--alter",
                    "--entity-type",
                    "topics",
                    "--entity-name",
                    "conf",
                    "--add-config",
                    "retention.ms=60000,cleanup.policy=[compact,delete]",
                ],
            )
            .ok();
        assert_eq!(
            out.lines(),
            vec!["Completed updating config for topic conf."]
        );
        let out = t
            .at(
                "configs",
                &[
                    "--describe",
                    "--entity-type",
                    "topics",
                    "--entity-name",
                    "conf",
                ],
            )
            .ok();
        assert_eq!(
            out.lines(),
            vec![
                "Dynamic configs for topic conf are:",
                "  cleanup.policy=compact,delete sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy=compact,delete, DEFAULT_CONFIG:log.cleanup.policy=delete}",
                "  retention.ms=60000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=60000, DEFAULT_CONFIG:log.retention.ms=604800000}",
            ]
        );
        let out = t
            .at(
                "configs",
                &[
                    "--alter",
                    "--entity-type",
                    "topics",
                    "--entity-name",
                    "conf",
                    "--delete-config",
                    "retention.ms,cleanup.policy",
                ],
            )
            .ok();
        assert_eq!(
            out.lines(),
            vec!["Completed updating config for topic conf."]
        );
        let out = t
            .at(
                "configs",
                &[
                    "--describe",
                    "--entity-type",
                    "topics",
                    "--entity-name",
                    "conf",
                ],
            )
            .ok();
        assert_eq!(out.lines(), vec!["Dynamic configs for topic conf are:"]);
        // --all lists every config with its default synonym.
        let out = t
            .at(
                "configs",
                &[
                    "--describe",
                    "--entity-type",
                    "topics",
                    "--entity-name",
                    "conf",
                    "--all",
                ],
            )
            .ok();
        assert_eq!(out.lines()[0], "All configs for topic conf are:");
        assert!(out.lines().contains(
            &"  cleanup.policy=delete sensitive=false synonyms={DEFAULT_CONFIG:log.cleanup.policy=delete}"
        ));
        // Unknown names to delete are refused, as Kafka does.
        let out = t.at(
            "configs",
            &[
                "--alter",
                "--entity-type",
                "topics",
                "--entity-name",
                "conf",
                "--delete-config",
                "no.such.config",
            ],
        );
        assert_eq!(out.code, Some(1));
        assert!(
            out.stderr.contains("Invalid config(s): no.such.config"),
            "{}",
            out.stderr
        );
    }
    // Broker configs: described; static on Fjord, so altering fails with the broker's error.
    let out = fj
        .at(
            "configs",
            &[
                "--describe",
                "--entity-type",
                "brokers",
                "--entity-name",
                "1",
                "--all",
            ],
        )
        .ok();
    assert_eq!(out.lines()[0], "All configs for broker 1 are:");
    assert!(out.lines().len() > 5);
    let out = fj.at(
        "configs",
        &[
            "--alter",
            "--entity-type",
            "brokers",
            "--entity-name",
            "1",
            "--add-config",
            "log.retention.ms=5",
        ],
    );
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.starts_with("Error: "), "{}", out.stderr);
}

/// Creates each topic with `partitions` partitions and produces `lines` (one record per line,
/// no keys) to it with the console producer.
fn create_and_fill(tools: &Tools, topics: &[&str], partitions: u32, lines: &str) {
    let partitions = partitions.to_string();
    for topic in topics {
        tools
            .at(
                "topics",
                &["--create", "--topic", topic, "--partitions", &partitions],
            )
            .ok();
        tools
            .at_in("console-producer", &["--topic", topic], lines)
            .ok();
    }
}

/// `kafka-broker-api-versions`: Kafka's layout, and the ranges are the broker's own
/// ApiVersions answer (read here with a raw request, not through the tool).
#[test]
fn broker_api_versions_lists_what_the_broker_advertises() {
    use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let links = aliases();
    let out = Tools::linked(&links, true, &broker.addr)
        .at("broker-api-versions", &[])
        .ok();
    let lines = out.lines();
    assert_eq!(
        lines[0],
        format!("{} (id: 1 rack: null) -> (", broker.addr),
        "{}",
        out.stdout
    );
    assert_eq!(*lines.last().unwrap(), ")");
    let body = &lines[1..lines.len() - 1];
    assert!(body.iter().all(|l| l.starts_with('\t')), "{}", out.stdout);
    assert!(body[..body.len() - 1].iter().all(|l| l.ends_with(',')));
    let mut conn = crate::protocol::Conn::open(&broker.addr);
    let resp: ApiVersionsResponse = crate::protocol::decode(
        conn.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()),
        3,
    );
    assert!(resp.api_keys.len() > 30);
    for k in &resp.api_keys {
        let key = ApiKey::try_from(k.api_key).unwrap();
        let range = if k.min_version == k.max_version {
            k.min_version.to_string()
        } else {
            format!("{} to {}", k.min_version, k.max_version)
        };
        let prefix = format!("\t{key:?}({}): {range} [", k.api_key);
        assert!(
            body.iter().any(|l| l.starts_with(&prefix)),
            "no line {prefix:?} in\n{}",
            out.stdout
        );
    }
    // An API Fjord does not serve: known to the tool, listed as unsupported.
    assert!(
        body.iter()
            .any(|l| l.starts_with("\tEndTxn(26): UNSUPPORTED")),
        "{}",
        out.stdout
    );
}

/// `kafka-log-dirs --describe`: Kafka's two lines and JSON document, each partition's size
/// equal to its segment files on disk, the volume's size and free space (KIP-827), and
/// `--topic-list` keeping only the topics named.
#[test]
fn log_dirs_report_partition_sizes_and_free_space() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let links = aliases();
    let fj = Tools::new(Via::Fjord, &broker.addr);
    let lines: String = (0..50).map(|i| format!("record {i}\n")).collect();
    create_and_fill(&fj, &["ld", "other"], 2, &lines);
    let out = Tools::linked(&links, false, &broker.addr)
        .at("log-dirs", &["--describe", "--topic-list", "ld"])
        .ok();
    let got = out.lines();
    assert_eq!(
        got[..2],
        [
            "Querying brokers for log directories information",
            "Received log directory information from brokers 1"
        ],
        "{}",
        out.stdout
    );
    let doc: serde_json::Value = serde_json::from_str(got[2]).unwrap();
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["brokers"][0]["broker"], 1);
    let log_dir = &doc["brokers"][0]["logDirs"][0];
    assert_eq!(log_dir["error"], serde_json::Value::Null);
    let path = std::path::PathBuf::from(log_dir["logDir"].as_str().unwrap());
    assert_eq!(path, std::fs::canonicalize(dir.path()).unwrap());
    let (total, usable) = (
        log_dir["totalBytes"].as_i64().unwrap(),
        log_dir["usableBytes"].as_i64().unwrap(),
    );
    assert!(0 < usable && usable <= total, "{log_dir}");
    let parts = log_dir["partitions"].as_array().unwrap();
    let names: Vec<&str> = parts
        .iter()
        .map(|p| p["partition"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["ld-0", "ld-1"]);
    let mut written = 0;
    for p in parts {
        let name = p["partition"].as_str().unwrap();
        let on_disk: u64 = std::fs::read_dir(path.join(name))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|f| f.extension().is_some_and(|x| x == "log"))
            .map(|f| std::fs::metadata(f).unwrap().len())
            .sum();
        assert_eq!(p["size"].as_u64().unwrap(), on_disk, "{name}");
        assert_eq!(
            (p["offsetLag"].as_i64(), p["isFuture"].as_bool()),
            (Some(0), Some(false))
        );
        written += on_disk;
    }
    assert!(written > 50 * 8, "{written} bytes for 50 records");
    // An unknown broker id is refused with the ids there are.
    let bad = fj.at("log-dirs", &["--describe", "--broker-list", "7"]);
    assert_eq!(bad.code, Some(1));
    assert!(
        bad.stderr.contains(
            "The given brokers do not exist from --broker-list: 7. Current existent brokers: 1"
        ),
        "{}",
        bad.stderr
    );
}

/// `kafka-delete-records` with Kafka's offset JSON file: the low watermarks move, -1 means
/// the high watermark, and an offset past it fails that partition with exit status 1.
#[test]
fn delete_records_moves_the_low_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let links = aliases();
    let fj = Tools::new(Via::Fjord, &broker.addr);
    let lines: String = (0..10).map(|i| format!("{i}\n")).collect();
    create_and_fill(&fj, &["dr", "dr2"], 1, &lines);
    let file = dir.path().join("delete.json");
    std::fs::write(
        &file,
        r#"{"partitions": [{"topic": "dr", "partition": 0, "offset": 4},
                           {"topic": "dr2", "partition": 0, "offset": -1}], "version": 1}"#,
    )
    .unwrap();
    let alias = Tools::linked(&links, true, &broker.addr);
    let out = alias
        .at(
            "delete-records",
            &["--offset-json-file", file.to_str().unwrap()],
        )
        .ok();
    let mut got = out.lines();
    assert_eq!(
        got[..2],
        [
            "Executing records delete operation",
            "Records delete operation completed:"
        ],
        "{}",
        out.stdout
    );
    got[2..].sort();
    assert_eq!(
        got[2..],
        [
            "partition: dr-0\tlow_watermark: 4",
            "partition: dr2-0\tlow_watermark: 10"
        ]
    );
    let earliest = fj
        .at("get-offsets", &["--topic", "dr.*", "--time", "-2"])
        .ok();
    let mut earliest = earliest.lines();
    earliest.sort();
    assert_eq!(earliest, vec!["dr2:0:10", "dr:0:4"]);
    // Past the high watermark: that partition's error, exit status 1.
    std::fs::write(
        &file,
        r#"{"partitions": [{"topic": "dr", "partition": 0, "offset": 99}]}"#,
    )
    .unwrap();
    let out = fj.at(
        "delete-records",
        &["--offset-json-file", file.to_str().unwrap()],
    );
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stdout.contains("partition: dr-0\terror: "),
        "{}",
        out.stdout
    );
    let earliest = fj
        .at("get-offsets", &["--topic", "dr", "--time", "-2"])
        .ok();
    assert_eq!(earliest.lines(), vec!["dr:0:4"]);
}

/// The perf tools answer to Kafka's names with Kafka's arguments: the broker given as
/// `bootstrap.servers` in `--producer-props`, as older Kafka scripts pass it.
#[test]
fn perf_tools_run_under_kafkas_names() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let links = aliases();
    let bootstrap = format!("bootstrap.servers={}", broker.addr);
    let produced = Tools::linked(&links, true, &broker.addr)
        .run(
            "producer-perf-test",
            &[
                "--topic",
                "perf-alias",
                "--num-records",
                "2000",
                "--record-size",
                "100",
                "--throughput",
                "-1",
                "--producer-props",
                &bootstrap,
                "acks=1",
            ],
            "",
        )
        .ok();
    let last = produced.lines().last().copied().unwrap_or_default();
    assert!(
        last.starts_with("2000 records sent, "),
        "{}",
        produced.stdout
    );
    let consumed = Tools::linked(&links, false, &broker.addr)
        .at(
            "consumer-perf-test",
            &["--topic", "perf-alias", "--messages", "2000"],
        )
        .ok();
    // Kafka's header line, then one line of figures with the records read.
    let lines = consumed.lines();
    assert!(
        lines[0].starts_with("start.time, end.time, "),
        "{}",
        consumed.stdout
    );
    assert!(lines[1].contains(", 2000, "), "{}", consumed.stdout);
}

/// `--entity-type clients|users`: quotas set, described and removed through the tool (the
/// Python clients and librdkafka cannot set them; their throttling is tested in
/// tests/python with real clients), with Kafka's wording: `user-principal`, and
/// `Completed updating config for client C.`.
#[test]
fn configs_set_describe_and_remove_client_quotas() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let fj = Tools::new(Via::Fjord, &broker.addr);
    let configs = |args: &[&str]| fj.at("configs", args);
    let out = configs(&[
        "--alter",
        "--entity-type",
        "clients",
        "--entity-name",
        "reports",
        "--add-config",
        "producer_byte_rate=1048576,consumer_byte_rate=2097152",
    ])
    .ok();
    assert_eq!(
        out.lines(),
        vec!["Completed updating config for client reports."]
    );
    let out = configs(&[
        "--alter",
        "--entity-type",
        "clients",
        "--entity-default",
        "--add-config",
        "request_percentage=50",
    ])
    .ok();
    assert_eq!(
        out.lines(),
        vec!["Completed updating default config for clients in the cluster."]
    );
    configs(&[
        "--alter",
        "--entity-type",
        "users",
        "--entity-name",
        "alice",
        "--add-config",
        "consumer_byte_rate=1000",
    ])
    .ok();
    let describe = |args: &[&str]| {
        let mut a = vec!["--describe"];
        a.extend_from_slice(args);
        configs(&a)
            .ok()
            .lines()
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        describe(&["--entity-type", "clients", "--entity-name", "reports"]),
        vec![
            "Quota configs for client-id 'reports' are consumer_byte_rate=2097152.0, producer_byte_rate=1048576.0"
        ]
    );
    assert_eq!(
        describe(&["--entity-type", "clients", "--entity-default"]),
        vec!["Quota configs for the default client-id are request_percentage=50.0"]
    );
    // Without a name: every entity of the type, the default included (as Kafka's KRaft
    // brokers answer MATCH_TYPE_SPECIFIED), and none of another type.
    assert_eq!(
        describe(&["--entity-type", "clients"]),
        vec![
            "Quota configs for the default client-id are request_percentage=50.0",
            "Quota configs for client-id 'reports' are consumer_byte_rate=2097152.0, producer_byte_rate=1048576.0"
        ]
    );
    assert_eq!(
        describe(&["--entity-type", "users"]),
        vec!["Quota configs for user-principal 'alice' are consumer_byte_rate=1000.0"]
    );
    let out = configs(&[
        "--alter",
        "--entity-type",
        "clients",
        "--entity-name",
        "reports",
        "--delete-config",
        "producer_byte_rate",
    ])
    .ok();
    assert_eq!(
        out.lines(),
        vec!["Completed updating config for client reports."]
    );
    assert_eq!(
        describe(&["--entity-type", "clients", "--entity-name", "reports"]),
        vec!["Quota configs for client-id 'reports' are consumer_byte_rate=2097152.0"]
    );
    // A user's clients: the n-th name goes with the n-th type, as in Kafka's tool; the
    // shorthands say the same.
    let out = configs(&[
        "--alter",
        "--entity-type",
        "users",
        "--entity-name",
        "alice",
        "--entity-type",
        "clients",
        "--entity-name",
        "reports",
        "--add-config",
        "producer_byte_rate=4096",
    ])
    .ok();
    assert_eq!(
        out.lines(),
        vec!["Completed updating config for user alice."]
    );
    let out = configs(&[
        "--alter",
        "--entity-type",
        "users",
        "--entity-default",
        "--entity-type",
        "clients",
        "--entity-name",
        "batch",
        "--add-config",
        "consumer_byte_rate=8192",
    ])
    .ok();
    assert_eq!(
        out.lines(),
        vec!["Completed updating default config for users in the cluster."]
    );
    assert_eq!(
        describe(&["--user", "alice", "--client", "reports"]),
        vec![
            "Quota configs for user-principal 'alice', client-id 'reports' are producer_byte_rate=4096.0"
        ]
    );
    // Without names: every user-and-client entity, defaults included (as for one type).
    assert_eq!(
        describe(&["--entity-type", "users", "--entity-type", "clients"]),
        vec![
            "Quota configs for the default user-principal, client-id 'batch' are consumer_byte_rate=8192.0",
            "Quota configs for user-principal 'alice', client-id 'reports' are producer_byte_rate=4096.0"
        ]
    );
    assert_eq!(
        describe(&["--user-defaults", "--client", "batch"]),
        vec![
            "Quota configs for the default user-principal, client-id 'batch' are consumer_byte_rate=8192.0"
        ]
    );
    // A user alone is still only the user's own quotas (strict).
    assert_eq!(
        describe(&["--entity-type", "users"]),
        vec!["Quota configs for user-principal 'alice' are consumer_byte_rate=1000.0"]
    );
    // Refused, with exit status 1 and the reason: Kafka's checks of the entity options, the
    // tool's own check of values, then the broker's.
    let refused = |args: &[&str], message: &str| {
        let mut a = vec!["--alter"];
        a.extend_from_slice(args);
        let bad = configs(&a);
        assert_eq!(bad.code, Some(1), "{args:?}");
        assert!(bad.stderr.contains(message), "{args:?}: {}", bad.stderr);
    };
    let add = ["--add-config", "producer_byte_rate=5"];
    for (entity, message) in [
        (
            &[
                "--entity-type",
                "users",
                "--entity-name",
                "alice",
                "--entity-type",
                "clients",
            ][..],
            "Exactly one entity name must be specified for every entity type",
        ),
        (
            &[
                "--entity-type",
                "users",
                "--entity-type",
                "topics",
                "--entity-name",
                "a",
            ][..],
            "Only 'users' and 'clients' entity types may be specified together",
        ),
        (
            &[
                "--entity-type",
                "clients",
                "--entity-name",
                "a",
                "--entity-name",
                "b",
            ][..],
            "More entity names specified than entity types",
        ),
        (
            &[
                "--entity-type",
                "clients",
                "--entity-type",
                "clients",
                "--entity-name",
                "a",
            ][..],
            "Duplicate entity type(s) specified: clients",
        ),
        (
            &["--entity-type", "clients"][..],
            "--entity-name or --entity-default is required with --alter",
        ),
    ] {
        refused(&[entity, &add[..]].concat(), message);
    }
    // Only a quota the entity has can be removed.
    refused(
        &[
            "--client",
            "reports",
            "--delete-config",
            "request_percentage,consumer_byte_rate",
        ],
        "Invalid config(s): request_percentage",
    );
    for (config, message) in [
        (
            "producer_byte_rate=fast",
            "invalid value 'fast' for quota producer_byte_rate: a number is required",
        ),
        ("fetch_rate=5", "unsupported quota key fetch_rate"),
        (
            "producer_byte_rate=0",
            "quota producer_byte_rate must be a positive number",
        ),
    ] {
        refused(&["--client", "reports", "--add-config", config], message);
    }
    // Nothing of the refused changes was applied.
    assert_eq!(
        describe(&["--entity-type", "clients", "--entity-name", "reports"]),
        vec!["Quota configs for client-id 'reports' are consumer_byte_rate=2097152.0"]
    );
}

#[test]
fn get_offsets_latest_earliest_and_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let links = aliases();
    let fj = Tools::new(Via::Fjord, &broker.addr);
    fj.at(
        "topics",
        &["--create", "--topic", "offs", "--partitions", "2"],
    )
    .ok();
    fj.at_in(
        "console-producer",
        &[
            "--topic",
            "offs",
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=,",
        ],
        "a,1\na,2\na,3\n",
    )
    .ok();
    let p = java_partition(b"a", 2);
    let (latest, earliest) = if p == 0 {
        (vec!["offs:0:3", "offs:1:0"], vec!["offs:0:0", "offs:1:0"])
    } else {
        (vec!["offs:0:0", "offs:1:3"], vec!["offs:0:0", "offs:1:0"])
    };
    for t in [&fj, &Tools::linked(&links, true, &broker.addr)] {
        assert_eq!(
            t.at("get-offsets", &["--topic", "offs"]).ok().lines(),
            latest
        );
        assert_eq!(
            t.at("get-offsets", &["--topic", "offs", "--time", "-1"])
                .ok()
                .lines(),
            latest
        );
        assert_eq!(
            t.at("get-offsets", &["--topic", "offs", "--time", "-2"])
                .ok()
                .lines(),
            earliest
        );
        // By timestamp: 0 is before every record; far future is after all (empty offset).
        let by_time = t
            .at(
                "get-offsets",
                &[
                    "--topic",
                    "offs",
                    "--time",
                    "0",
                    "--partitions",
                    &p.to_string(),
                ],
            )
            .ok();
        assert_eq!(by_time.lines(), vec![format!("offs:{p}:0")]);
        let future = t
            .at(
                "get-offsets",
                &[
                    "--topic",
                    "offs",
                    "--time",
                    "99999999999999",
                    "--partitions",
                    &p.to_string(),
                ],
            )
            .ok();
        assert_eq!(future.lines(), vec![format!("offs:{p}:")]);
    }
}

#[test]
fn unreachable_broker_is_a_clear_error_within_seconds() {
    let (refusing, port) = refusing_port();
    let addr = format!("127.0.0.1:{port}");
    let t = Tools::new(Via::Fjord, &addr);
    let want = format!("Error: cannot reach the broker at {addr} within 2s");
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("topics", vec!["--list", "--timeout", "2000"]),
        (
            "configs",
            vec!["--describe", "--entity-type", "topics", "--timeout", "2000"],
        ),
        ("get-offsets", vec!["--timeout", "2000"]),
        (
            "console-producer",
            vec!["--topic", "t", "--max-block-ms", "2000"],
        ),
        (
            "console-consumer",
            vec![
                "--topic",
                "t",
                "--consumer-property",
                "default.api.timeout.ms=2000",
            ],
        ),
    ];
    for (tool, args) in cases {
        let started = Instant::now();
        let out = t.at_in(tool, &args, "x\n");
        assert_eq!(out.code, Some(1), "{tool}: {}", out.stderr);
        assert!(out.stderr.starts_with(&want), "{tool}: {}", out.stderr);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{tool} took {:?}",
            started.elapsed()
        );
    }
    // The default deadline is 5 s.
    let started = Instant::now();
    let out = t.at("topics", &["--list"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.starts_with(&format!(
            "Error: cannot reach the broker at {addr} within 5s"
        )),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    drop(refusing);
}

#[test]
fn help_and_completions() {
    for sub in [
        "topics",
        "console-producer",
        "console-consumer",
        "consumer-groups",
        "configs",
        "get-offsets",
    ] {
        let out = fjord(&[sub, "--help"]).ok();
        assert!(out.stdout.contains("Examples:"), "{sub}: {}", out.stdout);
        assert!(out.stdout.contains(&format!("kafka-{sub}")), "{sub}");
    }
    let links = aliases();
    let out = run_cmd(Command::new(links.path().join("bin/kafka-topics.sh")), "");
    assert_eq!(out.code, Some(2), "no action is a usage error");
    assert!(
        out.stderr.contains("Usage: kafka-topics.sh"),
        "{}",
        out.stderr
    );
    for shell in ["bash", "zsh", "fish"] {
        let out = fjord(&["completions", shell]).ok();
        assert!(out.stdout.contains("console-consumer"), "{shell}");
    }
}

#[test]
fn console_consumer_with_group_resumes_from_committed_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let t = Tools::new(Via::Fjord, &broker.addr);
    // One partition, so it has a committed offset after the first run (a partition without
    // one would start at its end: auto.offset.reset=latest).
    t.at(
        "topics",
        &["--create", "--topic", "grouped", "--partitions", "1"],
    )
    .ok();
    t.at_in("console-producer", &["--topic", "grouped"], "g1\ng2\ng3\n")
        .ok();
    let out = t
        .at(
            "console-consumer",
            &[
                "--topic",
                "grouped",
                "--group",
                "cli-group",
                "--from-beginning",
                "--max-messages",
                "3",
            ],
        )
        .ok();
    let mut lines = out.lines();
    lines.sort();
    assert_eq!(lines, vec!["g1", "g2", "g3"]);
    // The group committed its position: a second run sees only what is new.
    t.at_in("console-producer", &["--topic", "grouped"], "g4\n")
        .ok();
    let out = t
        .at(
            "console-consumer",
            &[
                "--topic",
                "grouped",
                "--group",
                "cli-group",
                "--max-messages",
                "1",
                "--timeout-ms",
                "30000",
            ],
        )
        .ok();
    assert_eq!(out.lines(), vec!["g4"]);
}

#[test]
fn config_files_isolation_level_and_skip_message_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let t = Tools::new(Via::Fjord, &broker.addr);
    t.at(
        "topics",
        &["--create", "--topic", "files", "--partitions", "1"],
    )
    .ok();
    // Java-style properties files; Java-only names (serializers) are ignored, not errors.
    let producer_conf = dir.path().join("producer.properties");
    std::fs::write(
        &producer_conf,
        "# producer\nacks=1\nlinger.ms=0\nkey.serializer=org.apache.kafka.common.serialization.StringSerializer\n",
    )
    .unwrap();
    // The second line is the 8 bytes of the long 7 (big-endian).
    let input = "not-a-long\n\0\0\0\0\0\0\0\x07\n";
    t.at_in(
        "console-producer",
        &[
            "--topic",
            "files",
            "--producer.config",
            producer_conf.to_str().unwrap(),
            "--batch-size",
            "1024",
        ],
        input,
    )
    .ok();
    let consumer_conf = dir.path().join("consumer.properties");
    std::fs::write(&consumer_conf, "fetch.wait.max.ms=100\n").unwrap();
    let base = [
        "--topic",
        "files",
        "--from-beginning",
        "--consumer.config",
        consumer_conf.to_str().unwrap(),
        "--isolation-level",
        "read_committed",
        "--value-deserializer",
        "org.apache.kafka.common.serialization.LongDeserializer",
    ];
    // The first value is not 8 bytes: without --skip-message-on-error the consumer stops
    // with exit 1, with it the record is skipped and the next one is printed.
    let mut args = base.to_vec();
    args.extend(["--max-messages", "1"]);
    let out = t.at("console-consumer", &args);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("Error processing message, terminating consumer process"),
        "{}",
        out.stderr
    );
    args.push("--skip-message-on-error");
    let out = t.at("console-consumer", &args).ok();
    assert_eq!(out.lines(), vec!["7"]);
    assert!(out.stderr.contains("skipping it"), "{}", out.stderr);
    assert!(out.stderr.contains("Processed a total of 1 messages"));
}

#[test]
fn command_config_timeout_is_honoured() {
    let (refusing, port) = refusing_port();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("admin.properties");
    std::fs::write(&conf, "default.api.timeout.ms=1000\n").unwrap();
    let t = Tools::new(Via::Fjord, &format!("127.0.0.1:{port}"));
    let started = Instant::now();
    let out = t.at(
        "topics",
        &["--list", "--command-config", conf.to_str().unwrap()],
    );
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.starts_with(&format!(
            "Error: cannot reach the broker at 127.0.0.1:{port} within 1s"
        )),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(8));
    drop(refusing);
}
