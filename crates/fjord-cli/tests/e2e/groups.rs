//! Consumer groups with librdkafka: classic (eager and cooperative-sticky), static
//! membership, KIP-848 (`group.protocol=consumer`), commits surviving a broker restart.

use std::collections::{BTreeSet, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

use crate::clients::{create_topic, producer};
use crate::harness::BrokerProcess;

const TOPIC_PARTITIONS: i32 = 4;

/// Counts rebalances seen by a consumer.
#[derive(Clone, Default)]
struct Rebalances(Arc<AtomicUsize>);

impl ClientContext for Rebalances {}

impl ConsumerContext for Rebalances {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        if matches!(r, Rebalance::Assign(_) | Rebalance::Revoke(_)) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

type GroupConsumer = BaseConsumer<Rebalances>;

fn consumer(addr: &str, group: &str, extra: &[(&str, &str)]) -> GroupConsumer {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", addr)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    let kip848 = extra
        .iter()
        .any(|(k, v)| *k == "group.protocol" && *v == "consumer");
    if !kip848 {
        cfg.set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "500");
    }
    for (k, v) in extra {
        cfg.set(*k, *v);
    }
    cfg.create_with_context(Rebalances::default())
        .expect("consumer")
}

fn assigned(c: &GroupConsumer) -> BTreeSet<i32> {
    c.assignment()
        .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

fn produce_values(addr: &str, topic: &str, range: std::ops::Range<usize>) {
    let p = producer(addr, &[("acks", "all")]);
    for i in range {
        let v = format!("r{i}");
        let k = format!("k{i}");
        p.send(BaseRecord::to(topic).payload(&v).key(&k))
            .expect("send");
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(30)).expect("flush");
}

/// Polls every consumer once, collecting values and committing what was read.
fn poll_all(consumers: &[&GroupConsumer], seen: &mut HashSet<String>) {
    for c in consumers {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(30)) {
            seen.insert(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
            let _ = c.commit_message(&m, CommitMode::Async);
        }
    }
}

fn until(
    limit: Duration,
    what: &str,
    consumers: &[&GroupConsumer],
    seen: &mut HashSet<String>,
    mut done: impl FnMut(&HashSet<String>) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        poll_all(consumers, seen);
        if done(seen) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}; assignments {:?}",
            consumers.iter().map(|c| assigned(c)).collect::<Vec<_>>()
        );
    }
}

/// Two members share a 4-partition topic disjointly; when one leaves cleanly the other owns
/// everything; no record is lost across the rebalance.
fn two_member_scenario(overrides: &[&str], extra: &[(&str, &str)], group: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut o = vec![
        "group.initial.rebalance.delay.ms=0",
        "group.consumer.heartbeat.interval.ms=300",
    ];
    o.extend_from_slice(overrides);
    let broker = BrokerProcess::start(dir.path(), &o);
    let topic = format!("{group}-topic");
    create_topic(&broker.addr, &topic, TOPIC_PARTITIONS, &[]);
    produce_values(&broker.addr, &topic, 0..200);

    let c1 = consumer(&broker.addr, group, extra);
    c1.subscribe(&[&topic]).expect("subscribe");
    let c2 = consumer(&broker.addr, group, extra);
    c2.subscribe(&[&topic]).expect("subscribe");
    let mut seen = HashSet::new();
    until(
        Duration::from_secs(60),
        "a disjoint split of all partitions",
        &[&c1, &c2],
        &mut seen,
        |_| {
            let (a, b) = (assigned(&c1), assigned(&c2));
            !a.is_empty()
                && !b.is_empty()
                && a.is_disjoint(&b)
                && a.union(&b).count() == TOPIC_PARTITIONS as usize
        },
    );
    // The group runs the protocol that was asked for.
    let mut conn = crate::protocol::Conn::open(&broker.addr);
    let raw = conn.call(
        kafka_protocol::messages::ApiKey::ListGroups,
        5,
        &kafka_protocol::messages::ListGroupsRequest::default(),
    );
    let listed: kafka_protocol::messages::ListGroupsResponse = crate::protocol::decode(raw, 5);
    let g = listed
        .groups
        .iter()
        .find(|g| g.group_id.0.as_str() == group)
        .expect("group listed");
    let kip848 = extra
        .iter()
        .any(|(k, v)| *k == "group.protocol" && *v == "consumer");
    assert_eq!(
        g.group_type.as_str(),
        if kip848 { "consumer" } else { "classic" }
    );
    assert_eq!(g.group_state.as_str(), "Stable");
    drop(c2);
    let took = until(
        Duration::from_secs(30),
        "c1 to own every partition",
        &[&c1],
        &mut seen,
        |_| assigned(&c1).len() == TOPIC_PARTITIONS as usize,
    );
    assert!(
        took < Duration::from_secs(20),
        "rebalance after a clean leave took {took:?}"
    );
    produce_values(&broker.addr, &topic, 200..400);
    until(
        Duration::from_secs(60),
        "all 400 records",
        &[&c1],
        &mut seen,
        |s| s.len() >= 400,
    );
    for i in 0..400 {
        assert!(
            seen.contains(&format!("r{i}")),
            "r{i} lost across the rebalance"
        );
    }
    drop(c1);
    assert!(broker.terminate().success());
}

#[test]
fn classic_eager_group_splits_and_rebalances_on_leave() {
    two_member_scenario(
        &[],
        &[("partition.assignment.strategy", "range")],
        "eager-group",
    );
}

#[test]
fn cooperative_sticky_group_splits_and_rebalances_on_leave() {
    two_member_scenario(
        &[],
        &[("partition.assignment.strategy", "cooperative-sticky")],
        "coop-group",
    );
}

#[test]
fn kip848_consumer_protocol_group_splits_and_rebalances_on_leave() {
    two_member_scenario(
        &["group.consumer.session.timeout.ms=10000"],
        &[("group.protocol", "consumer")],
        "kip848-group",
    );
}

/// Runs as a child process (see `dead_member_is_expired_after_session_timeout`): joins a
/// group and polls until killed.
#[test]
#[ignore = "helper process for dead_member_is_expired_after_session_timeout"]
fn child_group_member() {
    let (Ok(addr), Ok(topic), Ok(group)) = (
        std::env::var("E2E_CHILD_ADDR"),
        std::env::var("E2E_CHILD_TOPIC"),
        std::env::var("E2E_CHILD_GROUP"),
    ) else {
        return;
    };
    let c = consumer(&addr, &group, &[]);
    c.subscribe(&[&topic]).expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut announced = false;
    while Instant::now() < deadline {
        c.poll(Duration::from_millis(50));
        if !announced && !assigned(&c).is_empty() {
            println!("CHILD-ASSIGNED");
            announced = true;
        }
    }
}

#[test]
fn dead_member_is_expired_after_session_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(dir.path(), &["group.initial.rebalance.delay.ms=0"]);
    let topic = "dead-member-topic";
    create_topic(&broker.addr, topic, TOPIC_PARTITIONS, &[]);
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--exact",
            "groups::child_group_member",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("E2E_CHILD_ADDR", &broker.addr)
        .env("E2E_CHILD_TOPIC", topic)
        .env("E2E_CHILD_GROUP", "dead-group")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let c1 = consumer(&broker.addr, "dead-group", &[]);
    c1.subscribe(&[topic]).expect("subscribe");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    // The child announces its assignment; meanwhile c1 must keep polling to stay in the group.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in lines.by_ref().map_while(Result::ok) {
            if l.contains("CHILD-ASSIGNED") {
                let _ = tx.send(());
            }
        }
    });
    let mut seen = HashSet::new();
    let start = Instant::now();
    while rx.try_recv().is_err() || assigned(&c1).len() == TOPIC_PARTITIONS as usize {
        poll_all(&[&c1], &mut seen);
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "child never got partitions"
        );
    }
    // kill -9: no LeaveGroup, no more heartbeats.
    let _ = child.kill();
    let _ = child.wait();
    let took = until(
        Duration::from_secs(40),
        "c1 to own every partition",
        &[&c1],
        &mut seen,
        |_| assigned(&c1).len() == TOPIC_PARTITIONS as usize,
    );
    // Session timeout 6 s, then one rebalance round.
    assert!(
        took < Duration::from_secs(25),
        "dead member expired after {took:?}"
    );
}

#[test]
fn committed_offsets_survive_broker_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(dir.path(), &["group.initial.rebalance.delay.ms=0"]);
    let topic = "resume-topic";
    create_topic(&broker.addr, topic, 1, &[]);
    produce_values(&broker.addr, topic, 0..100);
    let c = consumer(&broker.addr, "resume-group", &[]);
    c.subscribe(&[topic]).expect("subscribe");
    let mut last = None;
    let start = Instant::now();
    while last.is_none_or(|o| o < 49) {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(50)) {
            last = Some(m.offset());
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "consumer got no records"
        );
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(50))
        .expect("tpl");
    c.commit(&tpl, CommitMode::Sync).expect("commit");
    drop(c);
    assert!(broker.terminate().success());

    let broker = BrokerProcess::start(dir.path(), &["group.initial.rebalance.delay.ms=0"]);
    let c = consumer(&broker.addr, "resume-group", &[]);
    let committed = c.committed_offsets(
        {
            let mut t = TopicPartitionList::new();
            t.add_partition(topic, 0);
            t
        },
        Duration::from_secs(30),
    );
    assert_eq!(
        committed
            .expect("committed")
            .find_partition(topic, 0)
            .expect("p")
            .offset(),
        Offset::Offset(50)
    );
    c.subscribe(&[topic]).expect("subscribe");
    let start = Instant::now();
    let first = loop {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(50)) {
            break m.offset();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no record after restart"
        );
    };
    assert_eq!(first, 50, "resumes exactly after the committed offset");
}

#[test]
fn static_member_restart_keeps_assignment_without_rebalance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(dir.path(), &["group.initial.rebalance.delay.ms=0"]);
    let topic = "static-topic";
    create_topic(&broker.addr, topic, TOPIC_PARTITIONS, &[]);
    let s1 = consumer(
        &broker.addr,
        "static-group",
        &[
            ("group.instance.id", "instance-1"),
            ("session.timeout.ms", "30000"),
        ],
    );
    s1.subscribe(&[topic]).expect("subscribe");
    let s2 = consumer(
        &broker.addr,
        "static-group",
        &[
            ("group.instance.id", "instance-2"),
            ("session.timeout.ms", "30000"),
        ],
    );
    s2.subscribe(&[topic]).expect("subscribe");
    let mut seen = HashSet::new();
    until(
        Duration::from_secs(60),
        "a stable split",
        &[&s1, &s2],
        &mut seen,
        |_| {
            let (a, b) = (assigned(&s1), assigned(&s2));
            !a.is_empty() && !b.is_empty() && a.union(&b).count() == TOPIC_PARTITIONS as usize
        },
    );
    // Let the group settle, then note s2's rebalance count and s1's partitions.
    for _ in 0..20 {
        poll_all(&[&s1, &s2], &mut seen);
    }
    let before = assigned(&s1);
    let s2_rebalances = s2.context().0.load(Ordering::SeqCst);
    // A static member's close does not leave the group (KIP-345).
    drop(s1);
    let s1 = consumer(
        &broker.addr,
        "static-group",
        &[
            ("group.instance.id", "instance-1"),
            ("session.timeout.ms", "30000"),
        ],
    );
    s1.subscribe(&[topic]).expect("subscribe");
    until(
        Duration::from_secs(30),
        "s1 to get its partitions back",
        &[&s1, &s2],
        &mut seen,
        |_| !assigned(&s1).is_empty(),
    );
    assert_eq!(assigned(&s1), before, "same assignment after the restart");
    for _ in 0..20 {
        poll_all(&[&s1, &s2], &mut seen);
    }
    assert_eq!(
        s2.context().0.load(Ordering::SeqCst),
        s2_rebalances,
        "the other member saw no rebalance"
    );
}
