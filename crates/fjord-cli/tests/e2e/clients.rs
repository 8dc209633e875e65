//! End-to-end tests with librdkafka (the `rdkafka` crate) against a real `fjord` process.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::harness::{BrokerProcess, wait_for};

const TIMEOUT: Duration = Duration::from_secs(30);

/// One record as a consumer saw it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seen {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// Payload -> Ok((partition, offset)) or the delivery error.
pub type DeliveryMap = HashMap<String, Result<(i32, i64), String>>;

/// Collects delivery reports.
#[derive(Clone, Default)]
pub struct Deliveries(pub Arc<Mutex<DeliveryMap>>);

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let mut map = self.0.lock().expect("lock");
        match result {
            Ok(m) => {
                let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
                map.insert(v, Ok((m.partition(), m.offset())));
            }
            Err((e, m)) => {
                let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
                map.insert(v, Err(e.to_string()));
            }
        }
    }
}

pub fn producer(addr: &str, extra: &[(&str, &str)]) -> BaseProducer<Deliveries> {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", addr)
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000");
    for (k, v) in extra {
        cfg.set(*k, *v);
    }
    cfg.create_with_context(Deliveries::default())
        .expect("producer")
}

pub fn admin(addr: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", addr)
        .create()
        .expect("admin")
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

pub fn create_topic(addr: &str, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let admin = admin(addr);
    let mut t = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        t = t.set(k, v);
    }
    let res =
        block_on(admin.create_topics([&t], &AdminOptions::new().operation_timeout(Some(TIMEOUT))))
            .expect("create_topics");
    for r in res {
        r.expect("topic created");
    }
}

/// Reads every record of `partitions` from the beginning until `expected` records arrived.
pub fn consume_all(addr: &str, topic: &str, partitions: i32, expected: usize) -> Vec<Seen> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", "unused-assign-only")
        .set("enable.auto.commit", "false")
        .set("check.crcs", "true")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut seen: Vec<Seen> = Vec::with_capacity(expected);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < expected {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out: {} of {expected} records, last offsets {:?}",
            seen.len(),
            (0..partitions)
                .map(|p| seen
                    .iter()
                    .filter(|s| s.partition == p)
                    .map(|s| s.offset)
                    .max())
                .collect::<Vec<_>>()
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => seen.push(Seen {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
            }),
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => panic!("consumer error: {e}"),
        }
    }
    seen
}

#[test]
fn quickstart_10k_keyed_and_unkeyed_survive_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(dir.path(), &[]);
    let topic = "quickstart-10k";
    create_topic(&broker.addr, topic, 2, &[]);

    let p = producer(&broker.addr, &[("acks", "all")]);
    let n = 10_000;
    for i in 0..n {
        let value = format!("v{i}");
        let key = format!("user{}", i % 37);
        let mut rec: BaseRecord<'_, str, str> = BaseRecord::to(topic).payload(value.as_str());
        if i % 2 == 0 {
            rec = rec.key(key.as_str());
        }
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    rec = r;
                    p.poll(Duration::from_millis(10));
                }
                Err((e, _)) => panic!("send: {e}"),
            }
        }
        p.poll(Duration::ZERO);
    }
    p.flush(TIMEOUT).expect("flush");
    let deliveries = p.context().0.lock().expect("lock").clone();
    assert_eq!(deliveries.len(), n);
    assert!(
        deliveries.values().all(Result::is_ok),
        "every record acknowledged"
    );

    let seen = consume_all(&broker.addr, topic, 2, n);
    check_10k(&seen, &deliveries, n);

    let status = broker.terminate();
    assert!(status.success(), "clean shutdown exits 0, got {status}");
    let broker = BrokerProcess::start(dir.path(), &[]);
    let again = consume_all(&broker.addr, topic, 2, n);
    let (mut a, mut b) = (seen.clone(), again);
    a.sort();
    b.sort();
    assert_eq!(a, b, "records read after restart are identical");
}

fn check_10k(seen: &[Seen], deliveries: &DeliveryMap, n: usize) {
    assert_eq!(seen.len(), n, "every record exactly once");
    let mut by_value = HashMap::new();
    let mut key_partition: BTreeMap<Vec<u8>, i32> = BTreeMap::new();
    let mut last_offset: HashMap<i32, i64> = HashMap::new();
    let mut last_seq: HashMap<i32, usize> = HashMap::new();
    for s in seen {
        let value = String::from_utf8(s.value.clone().expect("value")).expect("utf8");
        assert!(
            by_value.insert(value.clone(), s.partition).is_none(),
            "{value} seen twice"
        );
        assert_eq!(
            deliveries.get(&value),
            Some(&Ok((s.partition, s.offset))),
            "{value} where it was acked"
        );
        // In order per partition: offsets and the producer's sequence both increase.
        let seq: usize = value[1..].parse().expect("seq");
        if let Some(prev) = last_offset.insert(s.partition, s.offset) {
            assert!(s.offset > prev);
        }
        if let Some(prev) = last_seq.insert(s.partition, seq) {
            assert!(seq > prev, "partition {} out of order", s.partition);
        }
        if let Some(k) = &s.key {
            let p = *key_partition.entry(k.clone()).or_insert(s.partition);
            assert_eq!(p, s.partition, "same key -> same partition");
        }
    }
    assert!(key_partition.len() == 37);
    let used: std::collections::HashSet<i32> = seen.iter().map(|s| s.partition).collect();
    assert_eq!(used.len(), 2, "both partitions used");
}

#[test]
fn kill9_during_acks1_produce_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(dir.path(), &[]);
    let topic = "crash-acks1";
    create_topic(&broker.addr, topic, 2, &[]);
    let p = producer(
        &broker.addr,
        &[
            ("acks", "1"),
            ("linger.ms", "1"),
            ("message.timeout.ms", "5000"),
            ("retries", "0"),
        ],
    );
    let mut sent = 0usize;
    // Produce until a good number are acknowledged, then kill -9 mid-stream.
    loop {
        let value = format!("c{sent}");
        if p.send(BaseRecord::<(), _, ()>::to(topic).payload(&value))
            .is_ok()
        {
            sent += 1;
        }
        p.poll(Duration::ZERO);
        let acked = p
            .context()
            .0
            .lock()
            .expect("lock")
            .values()
            .filter(|r| r.is_ok())
            .count();
        if acked >= 3000 {
            break;
        }
        if sent.is_multiple_of(100) {
            p.poll(Duration::from_millis(1));
        }
    }
    broker.kill9();
    // Let the producer give up on what was in flight, then take the acknowledged set.
    let _ = p.flush(Duration::from_secs(15));
    let acked: Vec<(String, (i32, i64))> = p
        .context()
        .0
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|(k, v)| v.as_ref().ok().map(|po| (k.clone(), *po)))
        .collect();
    drop(p);
    assert!(acked.len() >= 3000);

    let broker = BrokerProcess::start(dir.path(), &[]);
    let c = admin(&broker.addr);
    drop(c);
    let total = {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &broker.addr)
            .create()
            .expect("consumer");
        (0..2)
            .map(|p| {
                consumer
                    .fetch_watermarks(topic, p, TIMEOUT)
                    .expect("watermarks")
                    .1 as usize
            })
            .sum::<usize>()
    };
    assert!(
        total >= acked.len(),
        "log has {total} records, {} were acknowledged",
        acked.len()
    );
    // check.crcs=true in consume_all: a corrupt batch would surface as a consumer error.
    let seen = consume_all(&broker.addr, topic, 2, total);
    let at: HashMap<String, (i32, i64)> = seen
        .iter()
        .map(|s| {
            (
                String::from_utf8_lossy(s.value.as_deref().unwrap_or_default()).to_string(),
                (s.partition, s.offset),
            )
        })
        .collect();
    for (value, po) in &acked {
        assert_eq!(
            at.get(value),
            Some(po),
            "acknowledged record {value} survives kill -9 at its offset"
        );
    }
}

#[test]
fn admin_configs_offsets_and_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(
        dir.path(),
        &["auto.create.topics.enable=true", "num.partitions=3"],
    );
    let addr = broker.addr.clone();
    let admin = admin(&addr);
    let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT));

    // Invalid names are refused with INVALID_TOPIC_EXCEPTION.
    for bad in ["bad/name", "..", &"x".repeat(250)] {
        let res = block_on(
            admin.create_topics([&NewTopic::new(bad, 1, TopicReplication::Fixed(1))], &opts),
        )
        .expect("call");
        assert!(
            matches!(res[0], Err((_, RDKafkaErrorCode::InvalidTopic))),
            "{bad}: {:?}",
            res[0]
        );
    }
    // Replication factor larger than the broker count: a clear error, not a hang.
    let res = block_on(admin.create_topics(
        [&NewTopic::new("rf3", 1, TopicReplication::Fixed(3))],
        &opts,
    ))
    .expect("call");
    assert!(
        matches!(res[0], Err((_, RDKafkaErrorCode::InvalidReplicationFactor))),
        "{:?}",
        res[0]
    );

    // Per-topic configs at creation; DescribeConfigs returns every config with its source.
    create_topic(
        &addr,
        "cfg-topic",
        1,
        &[("retention.ms", "123456"), ("max.message.bytes", "2000")],
    );
    let described =
        block_on(admin.describe_configs([&ResourceSpecifier::Topic("cfg-topic")], &opts))
            .expect("describe");
    let resource = described.into_iter().next().expect("one").expect("ok");
    let entry = |name: &str| {
        resource
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    assert_eq!(entry("retention.ms").value.as_deref(), Some("123456"));
    assert!(!entry("retention.ms").is_default);
    assert_eq!(entry("segment.bytes").value.as_deref(), Some("1073741824"));
    assert!(entry("segment.bytes").is_default);
    assert!(
        resource.entries.len() >= 10,
        "all configs, not only overrides"
    );

    // MESSAGE_TOO_LARGE for that record; the producer keeps working.
    let p = producer(&addr, &[("acks", "all"), ("message.max.bytes", "10000000")]);
    let big = vec![b'x'; 5000];
    p.send(BaseRecord::<(), _, ()>::to("cfg-topic").payload(&big))
        .expect("send");
    p.flush(TIMEOUT).expect("flush");
    p.send(BaseRecord::<(), _, ()>::to("cfg-topic").payload("small"))
        .expect("send");
    p.flush(TIMEOUT).expect("flush");
    let d = p.context().0.lock().expect("lock").clone();
    let big_key = String::from_utf8_lossy(&big).to_string();
    assert!(
        d[&big_key]
            .as_ref()
            .is_err_and(|e| e.contains("MessageSizeTooLarge") || e.contains("too large")),
        "{:?}",
        d[&big_key]
    );
    assert_eq!(d["small"], Ok((0, 0)));

    // Auto-create through Metadata with num.partitions.
    p.send(BaseRecord::<(), _, ()>::to("auto-created").payload("a"))
        .expect("send");
    p.flush(TIMEOUT).expect("flush");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &addr)
        .create()
        .expect("consumer");
    let md = consumer
        .fetch_metadata(Some("auto-created"), TIMEOUT)
        .expect("metadata");
    assert_eq!(md.topics()[0].partitions().len(), 3);

    // Watermarks count records; offsets_for_times finds the first record at or after a time.
    let t = "offsets-topic";
    create_topic(&addr, t, 1, &[]);
    for (i, ts) in [1000i64, 2000, 3000, 4000].iter().enumerate() {
        let v = format!("o{i}");
        p.send(BaseRecord::<(), _, ()>::to(t).payload(&v).timestamp(*ts))
            .expect("send");
    }
    p.flush(TIMEOUT).expect("flush");
    assert_eq!(
        consumer.fetch_watermarks(t, 0, TIMEOUT).expect("wm"),
        (0, 4)
    );
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(t, 0, Offset::Offset(2500))
        .expect("tpl");
    let found = consumer
        .offsets_for_times(tpl, TIMEOUT)
        .expect("offsets_for_times");
    assert_eq!(
        found.find_partition(t, 0).expect("p").offset(),
        Offset::Offset(2)
    );

    // DeleteRecords moves the log start; earliest follows it.
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(t, 0, Offset::Offset(3))
        .expect("tpl");
    block_on(admin.delete_records(&tpl, &opts)).expect("delete_records");
    assert_eq!(
        consumer.fetch_watermarks(t, 0, TIMEOUT).expect("wm"),
        (3, 4)
    );

    // CreatePartitions and DeleteTopics.
    block_on(admin.create_partitions([&rdkafka::admin::NewPartitions::new(t, 4)], &opts))
        .expect("create_partitions")[0]
        .as_ref()
        .expect("ok");
    let md = consumer.fetch_metadata(Some(t), TIMEOUT).expect("metadata");
    assert_eq!(md.topics()[0].partitions().len(), 4);
    block_on(admin.delete_topics(&[t], &opts)).expect("delete")[0]
        .as_ref()
        .expect("ok");
    let md = consumer.fetch_metadata(None, TIMEOUT).expect("metadata");
    assert!(md.topics().iter().all(|x| x.name() != t));
    assert!(broker.terminate().success());
}

#[test]
fn idempotent_producer_headers_and_null_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(dir.path(), &[]);
    let t = "idem-topic";
    create_topic(&broker.addr, t, 1, &[]);
    let p = producer(
        &broker.addr,
        &[
            ("enable.idempotence", "true"),
            ("compression.codec", "zstd"),
        ],
    );
    for i in 0..100 {
        let v = format!("i{i}");
        let headers = OwnedHeaders::new().insert(Header {
            key: "h",
            value: Some("hv"),
        });
        p.send(BaseRecord::to(t).payload(&v).key("k").headers(headers))
            .expect("send");
    }
    p.send(BaseRecord::<str, str, ()>::to(t).key("tombstone"))
        .expect("send null value");
    p.flush(TIMEOUT).expect("flush");
    let d = p.context().0.lock().expect("lock").clone();
    assert!(d.values().all(Result::is_ok), "{d:?}");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("group.id", "unused")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(t, 0, Offset::Beginning)
        .expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let mut got = Vec::new();
    wait_for(TIMEOUT, "101 records", || {
        if let Some(r) = consumer.poll(Duration::from_millis(100)) {
            let m = r.expect("message");
            let header = m.headers().map(|h| h.get(0).value.map(<[u8]>::to_vec));
            got.push((
                m.offset(),
                m.key().map(<[u8]>::to_vec),
                m.payload().map(<[u8]>::to_vec),
                header,
            ));
        }
        (got.len() >= 101).then_some(())
    });
    assert_eq!(
        got[0],
        (
            0,
            Some(b"k".to_vec()),
            Some(b"i0".to_vec()),
            Some(Some(b"hv".to_vec()))
        )
    );
    assert_eq!(got[100].1.as_deref(), Some(&b"tombstone"[..]));
    assert_eq!(got[100].2, None, "null value round-trips");
}
