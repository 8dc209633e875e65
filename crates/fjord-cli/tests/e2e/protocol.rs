//! Raw protocol tests: hand-built frames against a real broker, for the traps that client
//! libraries hide (see shared/PROTOCOL-NOTES.md).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::harness::BrokerProcess;

pub(crate) struct Conn {
    stream: TcpStream,
    next_id: i32,
    client_id: String,
}

impl Conn {
    pub(crate) fn open(addr: &str) -> Conn {
        let stream = TcpStream::connect(addr).unwrap();
        // Without it, Nagle plus delayed ACKs add ~40 ms to every call.
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Conn {
            stream,
            next_id: 1,
            client_id: "raw-test".into(),
        }
    }

    /// Sends a request and returns the raw response after the correlation id.
    pub(crate) fn call<R: Encodable>(&mut self, key: ApiKey, version: i16, req: &R) -> Bytes {
        let (id, frame) = self.frame(key, version, req);
        self.stream.write_all(&frame).unwrap();
        self.response(id, key, version)
    }

    /// Encodes a request frame (size prefix included) without sending it; returns its
    /// correlation id too.
    fn frame<R: Encodable>(&mut self, key: ApiKey, version: i16, req: &R) -> (i32, Vec<u8>) {
        let id = self.next_id;
        self.next_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(id)
            .with_client_id(Some(StrBytes::from_string(self.client_id.clone())));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, key.request_header_version(version))
            .unwrap();
        req.encode(&mut body, version).unwrap();
        let mut frame = Vec::with_capacity(4 + body.len());
        frame.extend((body.len() as i32).to_be_bytes());
        frame.extend(&body[..]);
        (id, frame)
    }

    /// Reads the next response, which must answer request `id`; returns it after the
    /// correlation id.
    fn response(&mut self, id: i32, key: ApiKey, version: i16) -> Bytes {
        let mut resp = self.read_frame().expect("response");
        assert_eq!(resp.get_i32(), id, "correlation id");
        // Flexible response headers carry a tagged-field count.
        if key.response_header_version(version) >= 1 {
            assert_eq!(resp.get_u8(), 0, "no header tagged fields");
        }
        resp
    }

    fn send_frame(&mut self, body: &[u8]) {
        let mut frame = Vec::with_capacity(4 + body.len());
        frame.extend((body.len() as i32).to_be_bytes());
        frame.extend(body);
        self.stream.write_all(&frame).unwrap();
    }

    /// Reads one frame; `None` when the broker closed the connection.
    fn read_frame(&mut self) -> Option<Bytes> {
        let mut size = [0u8; 4];
        if self.stream.read_exact(&mut size).is_err() {
            return None;
        }
        let mut buf = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut buf).ok()?;
        Some(Bytes::from(buf))
    }
}

pub(crate) fn decode<T: Decodable>(mut b: Bytes, version: i16) -> T {
    T::decode(&mut b, version).unwrap()
}

fn create_topic(c: &mut Conn, name: &str, partitions: i32) {
    let req = CreateTopicsRequest::default()
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(name.into())))
                .with_num_partitions(partitions)
                .with_replication_factor(1),
        ])
        .with_timeout_ms(10_000);
    let resp: CreateTopicsResponse = decode(c.call(ApiKey::CreateTopics, 7, &req), 7);
    assert_eq!(
        resp.topics[0].error_code, 0,
        "{:?}",
        resp.topics[0].error_message
    );
}

fn produce(
    c: &mut Conn,
    topic: &str,
    batch: Vec<u8>,
) -> kafka_protocol::messages::produce_response::PartitionProduceResponse {
    let req = produce_req(topic, batch);
    let resp: ProduceResponse = decode(c.call(ApiKey::Produce, 9, &req), 9);
    resp.responses[0].partition_responses[0].clone()
}

fn produce_req(topic: &str, batch: Vec<u8>) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.into())))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(Bytes::from(batch))),
                ]),
        ])
}

fn fetch_req(topic: &str, offset: i64, max_wait_ms: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.into())))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(1 << 20)
                        .with_current_leader_epoch(-1)
                        .with_log_start_offset(-1),
                ]),
        ])
}

#[test]
fn api_versions_header_is_v0_and_unknown_version_gets_kip511_answer() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut c = Conn::open(&broker.addr);
    let req = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("raw"))
        .with_client_software_version(StrBytes::from_static_str("1"));
    let raw = c.call(ApiKey::ApiVersions, 3, &req);
    // Header v0: the body's error code follows the correlation id directly.
    assert_eq!(&raw[..2], &[0, 0]);
    // No tagged fields with default values: the body ends with an empty tagged-field count.
    assert_eq!(raw[raw.len() - 1], 0);
    let resp: ApiVersionsResponse = decode(raw, 3);
    assert!(resp.unknown_tagged_fields.is_empty() && resp.supported_features.is_empty());
    let fetch = resp
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Fetch as i16)
        .unwrap();
    assert_eq!((fetch.min_version, fetch.max_version), (4, 17));
    assert!(
        resp.api_keys
            .iter()
            .all(|k| k.api_key != ApiKey::EndTxn as i16),
        "transactions are not advertised yet"
    );

    // ApiVersions v99: error UNSUPPORTED_VERSION in the v0 layout, with our ranges.
    let header = RequestHeader::default()
        .with_request_api_key(18)
        .with_request_api_version(99)
        .with_correlation_id(77);
    let mut body = BytesMut::new();
    header.encode(&mut body, 1).unwrap();
    c.send_frame(&body);
    let mut frame = c.read_frame().unwrap();
    assert_eq!(frame.get_i32(), 77);
    let resp: ApiVersionsResponse = decode(frame, 0);
    assert_eq!(resp.error_code, ResponseError::UnsupportedVersion.code());
    assert!(
        resp.api_keys
            .iter()
            .any(|k| k.api_key == 18 && k.max_version == 4)
    );
    // The connection stays usable.
    let _: ApiVersionsResponse = decode(
        c.call(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default()),
        0,
    );
}

#[test]
fn oversized_frames_and_garbage_close_only_that_connection() {
    let dir = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("broker.log");
    let broker = BrokerProcess::start_logging_to(dir.path(), &[], &log);
    let mut good = Conn::open(&broker.addr);
    let mut conns = Vec::new();
    for _ in 0..20 {
        let mut bad = Conn::open(&broker.addr);
        // Announce 2 GiB and send nothing more: refused on the header, nothing allocated.
        bad.stream.write_all(&i32::MAX.to_be_bytes()).unwrap();
        conns.push(bad);
    }
    for bad in &mut conns {
        assert!(
            bad.read_frame().is_none(),
            "oversized frame closes the connection"
        );
    }
    let mut garbage = Conn::open(&broker.addr);
    garbage.send_frame(&[0x7f, 0x7f, 0, 0, 0, 0, 0, 1, 0xde, 0xad]);
    assert!(
        garbage.read_frame().is_none(),
        "unknown api key closes the connection"
    );
    // Array length prefixes that lie (2^31 elements in a 22-byte request; a compact array
    // announcing 2^32): refused as malformed by the bounds walker, before the decoder sizes
    // a Vec by them; the broker logs the API, version and count once per connection.
    let mut lying = Conn::open(&broker.addr);
    let mut body = Vec::new();
    body.extend(0i16.to_be_bytes()); // Produce
    body.extend(3i16.to_be_bytes()); // v3, non-flexible
    body.extend(9i32.to_be_bytes()); // correlation id
    body.extend((-1i16).to_be_bytes()); // client id: null
    body.extend((-1i16).to_be_bytes()); // transactional id: null
    body.extend(1i16.to_be_bytes()); // acks
    body.extend(1000i32.to_be_bytes()); // timeout
    body.extend(i32::MAX.to_be_bytes()); // topic_data: 2^31-1 topics
    lying.send_frame(&body);
    assert!(
        lying.read_frame().is_none(),
        "lying array length closes the connection"
    );
    let mut lying = Conn::open(&broker.addr);
    let mut body = Vec::new();
    body.extend(0i16.to_be_bytes()); // Produce
    body.extend(9i16.to_be_bytes()); // v9, flexible
    body.extend(10i32.to_be_bytes());
    body.extend((-1i16).to_be_bytes()); // client id
    body.push(0); // header tagged fields
    body.push(0); // transactional id: null (compact)
    body.extend(1i16.to_be_bytes());
    body.extend(1000i32.to_be_bytes());
    body.extend([0xff, 0xff, 0xff, 0xff, 0x0f]); // compact array length 2^32-1
    lying.send_frame(&body);
    assert!(
        lying.read_frame().is_none(),
        "lying compact array length closes the connection"
    );
    // The warning is written before the socket closes, so it is in the log by now.
    let logged = std::fs::read_to_string(&log).unwrap();
    for refusal in [
        "malformed request: Produce v3 body: array of 2147483647 elements at byte 8, but only 0 bytes remain",
        "malformed request: Produce v9 body: array of 4294967294 elements at byte 7, but only 0 bytes remain",
    ] {
        assert_eq!(
            logged.matches(refusal).count(),
            1,
            "expected once in the broker log: {refusal}\n{logged}"
        );
    }
    let mut short = Conn::open(&broker.addr);
    short.send_frame(&[0, 18]);
    assert!(
        short.read_frame().is_none(),
        "truncated header closes the connection"
    );
    let resp: ApiVersionsResponse = decode(
        good.call(ApiKey::ApiVersions, 2, &ApiVersionsRequest::default()),
        2,
    );
    assert_eq!(resp.error_code, 0, "other clients are served as before");
}

#[test]
fn fetch_mid_batch_returns_whole_batch_and_watermark_counts_records() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut c = Conn::open(&broker.addr);
    create_topic(&mut c, "midbatch", 1);
    let recs: Vec<fjord_log::testing::TestRecord<'_>> = (0..5)
        .map(|i| (None, Some(&b"abcdef"[i..i + 1]), 1_000 + i as i64))
        .collect();
    let p = produce(
        &mut c,
        "midbatch",
        fjord_log::testing::build_batch(0, &recs),
    );
    assert_eq!((p.error_code, p.base_offset), (0, 0));
    let p = produce(
        &mut c,
        "midbatch",
        fjord_log::testing::build_batch(0, &recs[..2]),
    );
    assert_eq!((p.error_code, p.base_offset), (0, 5));

    let resp: FetchResponse = decode(c.call(ApiKey::Fetch, 12, &fetch_req("midbatch", 2, 0)), 12);
    let part = &resp.responses[0].partitions[0];
    assert_eq!(part.error_code, 0);
    assert_eq!(part.high_watermark, 7);
    let records = part.records.clone().unwrap();
    let headers = fjord_log::validate_batches(&records).unwrap();
    assert_eq!(
        headers[0].base_offset, 0,
        "the batch holding offset 2 is returned whole"
    );
    assert_eq!(headers[0].records_count, 5);

    let lo = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("midbatch")))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-1),
                ]),
        ]);
    let resp: ListOffsetsResponse = decode(c.call(ApiKey::ListOffsets, 7, &lo), 7);
    assert_eq!(
        resp.topics[0].partitions[0].offset, 7,
        "latest is the high watermark: records, not batches"
    );
    for (ts, want_offset, want_ts) in [
        (-3i64, 4i64, 1004i64),
        (1002, 2, 1002),
        (999_999, -1, -1),
        (-2, 0, -1),
    ] {
        let lo = lo.clone().with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("midbatch")))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(ts),
                ]),
        ]);
        let resp: ListOffsetsResponse = decode(c.call(ApiKey::ListOffsets, 7, &lo), 7);
        let p = &resp.topics[0].partitions[0];
        assert_eq!(
            (p.offset, p.timestamp),
            (want_offset, want_ts),
            "timestamp query {ts}"
        );
    }
}

#[test]
fn produce_errors_are_per_partition_codes() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["auto.create.topics.enable=false"]);
    let mut c = Conn::open(&broker.addr);
    create_topic(&mut c, "errs", 1);
    let good = fjord_log::testing::build_batch(0, &[(None, Some(&b"x"[..]), 1)]);

    let mut corrupt = good.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert_eq!(
        produce(&mut c, "errs", corrupt).error_code,
        ResponseError::CorruptMessage.code()
    );

    let mut magic1 = good.clone();
    magic1[16] = 1;
    assert_eq!(
        produce(&mut c, "errs", magic1).error_code,
        ResponseError::UnsupportedForMessageFormat.code()
    );

    // Compressed batches are decompressed and their records checked, as Kafka does: a body
    // that is not gzip, or gzip holding fewer records than records_count, is refused (with a
    // correct CRC, so only the records can tell); a real gzip batch is stored.
    let gzip = fjord_log::testing::build_gzip_batch(0, &[(None, Some(&b"zipped"[..]), 1)]);
    let not_gzip = fjord_log::testing::build_opaque_batch(0, 1, 1, 1, 1, b"not gzip at all");
    let short =
        fjord_log::testing::build_opaque_batch(0, 1, 2, 1, 1, &gzip[fjord_log::BATCH_HEADER_LEN..]);
    for bad in [not_gzip, short] {
        assert_eq!(
            produce(&mut c, "errs", bad).error_code,
            ResponseError::InvalidRecord.code()
        );
    }
    assert_eq!(produce(&mut c, "errs", gzip).error_code, 0);

    assert_eq!(
        produce(&mut c, "missing", good.clone()).error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    let p = produce(&mut c, "errs", good);
    assert_eq!(
        (p.error_code, p.base_offset),
        (0, 1),
        "the connection still works (offset 0 is the gzip batch)"
    );

    // Metadata: invalid names and, with auto-create off, unknown topics.
    let md = MetadataRequest::default()
        .with_allow_auto_topic_creation(true)
        .with_topics(Some(vec![
            MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("bad/name")))),
            MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("nope")))),
        ]));
    let resp: MetadataResponse = decode(c.call(ApiKey::Metadata, 12, &md), 12);
    assert_eq!(
        resp.topics[0].error_code,
        ResponseError::InvalidTopicException.code()
    );
    assert_eq!(
        resp.topics[1].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
}

/// Pipelined produce requests, sent in one write, are answered in order (the broker sends
/// their answers together), and a long-polling fetch pipelined behind them does not hold
/// back their answers: they arrive while the fetch still waits for data.
#[test]
fn pipelined_produces_are_answered_in_order_and_not_held_by_a_fetch_behind_them() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut c = Conn::open(&broker.addr);
    create_topic(&mut c, "pipe", 1);
    let mut burst = Vec::new();
    let mut ids = Vec::new();
    for i in 0..20 {
        let value = format!("record {i}");
        let batch = fjord_log::testing::build_batch(0, &[(None, Some(value.as_bytes()), 1)]);
        let (id, frame) = c.frame(ApiKey::Produce, 9, &produce_req("pipe", batch));
        ids.push(id);
        burst.extend(frame);
    }
    let (fetch_id, frame) = c.frame(ApiKey::Fetch, 12, &fetch_req("pipe", 20, 60_000));
    burst.extend(frame);
    let sent = Instant::now();
    c.stream.write_all(&burst).unwrap();
    for (i, id) in ids.into_iter().enumerate() {
        let resp: ProduceResponse = decode(c.response(id, ApiKey::Produce, 9), 9);
        let part = &resp.responses[0].partition_responses[0];
        assert_eq!((part.error_code, part.base_offset), (0, i as i64));
    }
    assert!(
        sent.elapsed() < Duration::from_secs(30),
        "the produce answers waited for the fetch's 60 s long poll"
    );
    // Only an append ends the fetch's wait now.
    let mut other = Conn::open(&broker.addr);
    let p = produce(
        &mut other,
        "pipe",
        fjord_log::testing::build_batch(0, &[(None, Some(&b"wake"[..]), 1)]),
    );
    assert_eq!((p.error_code, p.base_offset), (0, 20));
    let fetched: FetchResponse = decode(c.response(fetch_id, ApiKey::Fetch, 12), 12);
    let records = fetched.responses[0].partitions[0].records.clone().unwrap();
    let headers = fjord_log::validate_batches(&records).unwrap();
    assert_eq!(headers[0].base_offset, 20);
}

#[test]
fn long_poll_fetch_is_woken_by_append() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut c = Conn::open(&broker.addr);
    create_topic(&mut c, "wake", 1);
    let addr = broker.addr.clone();
    let waiter = std::thread::spawn(move || {
        let mut c = Conn::open(&addr);
        let start = Instant::now();
        let resp: FetchResponse =
            decode(c.call(ApiKey::Fetch, 12, &fetch_req("wake", 0, 20_000)), 12);
        (start.elapsed(), resp)
    });
    // Whether the fetch is parked before this produce or not, it must return the data; when
    // parked, only the append can wake it before its 20 s max wait.
    let p = produce(
        &mut c,
        "wake",
        fjord_log::testing::build_batch(0, &[(None, Some(&b"x"[..]), 1)]),
    );
    assert_eq!(p.error_code, 0);
    let (elapsed, resp) = waiter.join().unwrap();
    assert!(
        resp.responses[0].partitions[0]
            .records
            .as_ref()
            .is_some_and(|r| !r.is_empty())
    );
    assert!(
        elapsed < Duration::from_secs(10),
        "woken by the append, not the 20 s max wait ({elapsed:?})"
    );
}

#[test]
fn connection_limits_and_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        dir.path(),
        &["max.connections.per.ip=3", "connections.max.idle.ms=300"],
    );
    let ping = |c: &mut Conn| -> bool {
        let header = RequestHeader::default()
            .with_request_api_key(18)
            .with_correlation_id(1);
        let mut body = BytesMut::new();
        header.encode(&mut body, 1).unwrap();
        c.send_frame(&body);
        c.read_frame().is_some()
    };
    let mut open: Vec<Conn> = (0..3).map(|_| Conn::open(&broker.addr)).collect();
    for c in &mut open {
        assert!(ping(c), "within the per-IP limit");
    }
    let mut fourth = Conn::open(&broker.addr);
    assert!(
        fourth.read_frame().is_none(),
        "the fourth connection from one IP is closed at once"
    );
    // Idle connections are closed after connections.max.idle.ms, which frees their slots.
    for c in &mut open {
        assert!(c.read_frame().is_none(), "idle connection closed");
    }
    let mut again = None;
    crate::harness::wait_for(Duration::from_secs(10), "a free slot", || {
        let mut c = Conn::open(&broker.addr);
        if ping(&mut c) {
            again = Some(c);
            Some(())
        } else {
            None
        }
    });
    assert!(again.is_some());
}

#[test]
fn large_requests_share_a_bounded_memory_pool_and_release_it() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        dir.path(),
        &[
            "queued.max.request.bytes=300000",
            "message.max.bytes=1000000",
        ],
    );
    let mut c = Conn::open(&broker.addr);
    create_topic(&mut c, "pool", 1);
    // A slow sender announces 200 kB and sends only half: it holds 200 kB of the pool.
    let mut slow = Conn::open(&broker.addr);
    slow.stream.write_all(&200_000i32.to_be_bytes()).unwrap();
    slow.stream.write_all(&vec![0u8; 100_000]).unwrap();
    // Another client's 200 kB request needs memory the slow one holds; when the slow sender
    // goes away its reservation is released and the request completes.
    let addr = broker.addr.clone();
    let other = std::thread::spawn(move || {
        let mut c = Conn::open(&addr);
        let value = vec![b'v'; 190_000];
        let batch = fjord_log::testing::build_batch(0, &[(None, Some(&value[..]), 1)]);
        produce(&mut c, "pool", batch)
    });
    drop(slow);
    let p = other.join().unwrap();
    assert_eq!((p.error_code, p.base_offset), (0, 0));
}

#[test]
fn client_quotas_throttle_only_the_client_over_its_rate() {
    use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
    use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let mut admin = Conn::open(&broker.addr);
    create_topic(&mut admin, "quota", 1);
    let alter = AlterClientQuotasRequest::default().with_entries(vec![
        EntryData::default()
            .with_entity(vec![
                EntityData::default()
                    .with_entity_type(StrBytes::from_static_str("client-id"))
                    .with_entity_name(Some(StrBytes::from_static_str("slow"))),
            ])
            .with_ops(vec![
                OpData::default()
                    .with_key(StrBytes::from_static_str("producer_byte_rate"))
                    .with_value(20_000.0),
            ]),
    ]);
    let resp: AlterClientQuotasResponse =
        decode(admin.call(ApiKey::AlterClientQuotas, 1, &alter), 1);
    assert_eq!(resp.entries[0].error_code, 0);
    let describe = DescribeClientQuotasRequest::default().with_components(vec![
        ComponentData::default()
            .with_entity_type(StrBytes::from_static_str("client-id"))
            .with_match_type(2),
    ]);
    let resp: DescribeClientQuotasResponse =
        decode(admin.call(ApiKey::DescribeClientQuotas, 1, &describe), 1);
    let entries = resp.entries.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (
            entries[0].values[0].key.as_str(),
            entries[0].values[0].value
        ),
        ("producer_byte_rate", 20_000.0)
    );

    let value = vec![b'q'; 100_000];
    let produce_throttle = |c: &mut Conn| -> i32 {
        let batch = fjord_log::testing::build_batch(0, &[(None, Some(&value[..]), 1)]);
        let req = ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_static_str("quota")))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(Bytes::from(batch))),
                    ]),
            ]);
        let resp: ProduceResponse = decode(c.call(ApiKey::Produce, 9, &req), 9);
        assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
        resp.throttle_time_ms
    };
    let mut slow = Conn::open(&broker.addr);
    slow.client_id = "slow".into();
    let mut fast = Conn::open(&broker.addr);
    fast.client_id = "fast".into();
    // 300 kB at 20 kB/s over 10 s windows is well over quota: the third response throttles.
    let throttles: Vec<i32> = (0..3).map(|_| produce_throttle(&mut slow)).collect();
    assert!(
        throttles[2] > 0,
        "over-quota client is throttled: {throttles:?}"
    );
    assert_eq!(produce_throttle(&mut fast), 0, "another client id is not");
    // Removing the quota lifts it.
    let remove = AlterClientQuotasRequest::default().with_entries(vec![
        EntryData::default()
            .with_entity(vec![
                EntityData::default()
                    .with_entity_type(StrBytes::from_static_str("client-id"))
                    .with_entity_name(Some(StrBytes::from_static_str("slow"))),
            ])
            .with_ops(vec![
                OpData::default()
                    .with_key(StrBytes::from_static_str("producer_byte_rate"))
                    .with_remove(true),
            ]),
    ]);
    let resp: AlterClientQuotasResponse =
        decode(admin.call(ApiKey::AlterClientQuotas, 1, &remove), 1);
    assert_eq!(resp.entries[0].error_code, 0);
    assert_eq!(produce_throttle(&mut slow), 0);
}
