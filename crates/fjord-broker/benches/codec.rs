//! Micro-benchmarks of the request/response codec on the hot paths: decoding Produce and
//! Fetch requests the way a connection does (`parse_request` on a frame) and encoding
//! Produce and Fetch responses. Run with `cargo bench -p fjord-broker --bench codec`.
//!
//! Record payloads are opaque bytes to the codec, so the figures show the per-request
//! overhead plus one copy of the records (fetch encoding copies them into the frame).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fjord_broker::api::Response;
use fjord_broker::api::fetch_answer::{FetchAnswer, PartitionAnswer, TopicAnswer};
use fjord_broker::server::connection::parse_request;
use fjord_log::testing::build_batch;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, FetchRequest, ProduceRequest, ProduceResponse, RequestHeader, ResponseKind, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

/// One uncompressed batch of `count` records of `size` bytes.
fn records(count: usize, size: usize) -> Bytes {
    let value = vec![b'x'; size];
    let recs: Vec<_> = (0..count)
        .map(|i| (None, Some(&value[..]), 1_700_000_000_000 + i as i64))
        .collect();
    Bytes::from(build_batch(0, &recs))
}

fn topic() -> TopicName {
    TopicName(StrBytes::from_static_str("bench-topic"))
}

/// A request frame as it arrives (without the size prefix).
fn frame(key: ApiKey, version: i16, body: &impl Encodable) -> Bytes {
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("rdkafka")))
        .encode(&mut buf, key.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    buf.freeze()
}

fn produce_request(partitions: i32, batch: &Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(topic())
                .with_partition_data(
                    (0..partitions)
                        .map(|p| {
                            PartitionProduceData::default()
                                .with_index(p)
                                .with_records(Some(batch.clone()))
                        })
                        .collect(),
                ),
        ])
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    for (name, partitions, batch) in [
        ("produce_v9_1x1MiB", 1, records(1000, 1024)),
        ("produce_v9_100x16KiB", 100, records(16, 1024)),
    ] {
        let f = frame(ApiKey::Produce, 9, &produce_request(partitions, &batch));
        g.throughput(Throughput::Bytes(f.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| black_box(parse_request(f.clone()).unwrap()))
        });
    }
    let fetch = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(52_428_800)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default().with_topic(topic()).with_partitions(
                (0..4)
                    .map(|p| {
                        FetchPartition::default()
                            .with_partition(p)
                            .with_fetch_offset(123_456)
                            .with_partition_max_bytes(1 << 20)
                    })
                    .collect(),
            ),
        ]);
    let f = frame(ApiKey::Fetch, 12, &fetch);
    g.throughput(Throughput::Elements(1));
    g.bench_function("fetch_v12_4_partitions", |b| {
        b.iter(|| black_box(parse_request(f.clone()).unwrap()))
    });
    g.finish();
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    let batch = records(1000, 1024);
    let answer = |partitions: Vec<PartitionAnswer>| {
        Response::Fetch(FetchAnswer {
            responses: vec![TopicAnswer {
                topic: topic(),
                topic_id: Default::default(),
                partitions,
            }],
            ..FetchAnswer::default()
        })
    };
    let partition = |index: i32, records: Bytes| PartitionAnswer {
        partition_index: index,
        error_code: 0,
        high_watermark: 1_000_000,
        last_stable_offset: 1_000_000,
        log_start_offset: 0,
        records,
    };
    let fetch = answer(vec![partition(0, batch.clone())]);
    g.throughput(Throughput::Bytes(batch.len() as u64));
    // The broker's frame encoder: the record set is shared, not copied.
    g.bench_function("fetch_response_v12_1MiB", |b| {
        b.iter(|| {
            black_box(fjord_broker::server::frame::encode(7, 1, 12, &fetch, Vec::new()).unwrap())
        })
    });
    // A fetch of 1,000 partitions that finds records in none (a consumer of many partitions
    // that does not use fetch sessions, as librdkafka does not).
    let idle = answer((0..1000).map(|p| partition(p, Bytes::new())).collect());
    g.throughput(Throughput::Elements(1000));
    g.bench_function("fetch_response_v12_1000_idle_partitions", |b| {
        b.iter(|| {
            black_box(fjord_broker::server::frame::encode(7, 1, 12, &idle, Vec::new()).unwrap())
        })
    });
    let produce = Response::Kafka(ResponseKind::Produce(
        ProduceResponse::default().with_responses(vec![
            TopicProduceResponse::default()
                .with_name(topic())
                .with_partition_responses(
                    (0..4)
                        .map(|p| {
                            PartitionProduceResponse::default()
                                .with_index(p)
                                .with_base_offset(1_000_000)
                        })
                        .collect(),
                ),
        ]),
    ));
    g.throughput(Throughput::Elements(1));
    g.bench_function("produce_response_v9_4_partitions", |b| {
        b.iter(|| {
            black_box(fjord_broker::server::frame::encode(7, 0, 9, &produce, Vec::new()).unwrap())
        })
    });
    g.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
