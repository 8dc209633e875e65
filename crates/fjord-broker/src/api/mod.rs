//! Request handlers, one module per API family: decode -> act -> encode.
//!
//! [`handle`] routes a decoded request to its handler. Handlers return the response body;
//! per-partition and per-topic failures are Kafka error codes inside it. `Err` is kept for
//! failures that must close the connection. [`SUPPORTED`] is the single table of what is
//! served: ApiVersions advertises exactly it, and the connection refuses anything outside it.
//! [`bounds`] checks every request body's counts and lengths before it is decoded.

pub(crate) mod admin;
pub(crate) mod api_versions;
pub mod bounds;
pub(crate) mod cluster;
pub(crate) mod configs;
pub(crate) mod fetch;
pub mod fetch_answer;
pub(crate) mod fetch_session;
pub mod fetch_wanted;
pub(crate) mod groups;
pub(crate) mod metadata;
pub(crate) mod offsets;
pub(crate) mod produce;
pub(crate) mod quotas;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;

use crate::broker::Broker;
use crate::server::connection::ConnectionError;

/// Everything a handler may need about the request it serves.
pub(crate) struct RequestContext {
    /// The broker.
    pub broker: Arc<Broker>,
    /// The request's API version.
    pub api_version: i16,
    /// The request header.
    pub header: RequestHeader,
    /// The client's address as Kafka reports it (`/127.0.0.1`).
    pub client_host: Arc<str>,
    /// This connection's waker for long-polling fetches (registered with partitions).
    pub fetch_waker: Arc<tokio::sync::Notify>,
    /// Becomes true at shutdown; long polls stop waiting.
    pub shutdown: watch::Receiver<bool>,
    /// Where a fetch response's placeholder record sets are to be sent from (see
    /// [`crate::server::frame`]), in response order.
    pub file_records: std::sync::Mutex<Vec<fjord_log::FileSlice>>,
}

/// The APIs served and their version ranges. See `docs/api-versions.md`.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 13),
    (ApiKey::Fetch, 4, 17),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    // v0 is the bytes of v1 (see `wire_version`), for kafka-python, which speaks only v0.
    (ApiKey::DescribeLogDirs, 0, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::DescribeTopicPartitions, 0, 0),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
];

/// The version whose bytes a request and response of `key` at `version` have: an old version
/// that Kafka defines as identical to the next one, which kafka-protocol no longer knows,
/// is decoded and encoded as that one. DescribeLogDirs v0 ("Version 1 is the same as version
/// 0") is served for kafka-python, whose admin client sends nothing else; Kafka 4.0 dropped it.
/// Both versions have the same header versions, so only the body's version changes.
pub fn wire_version(key: ApiKey, version: i16) -> i16 {
    match (key, version) {
        (ApiKey::DescribeLogDirs, 0) => 1,
        _ => version,
    }
}

/// Returns the served version range of an API, or `None` when it is not served.
pub fn supported_versions(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, min, max)| (*min, *max))
}

/// A handler's response body: kafka-protocol's, or a Fetch answer in the broker's own type
/// (see [`fetch_answer`]).
#[derive(Debug, Clone)]
// `ResponseKind` is as large as it was when handlers returned it alone; boxing it would add
// an allocation to every response.
#[allow(clippy::large_enum_variant)]
pub enum Response {
    Kafka(ResponseKind),
    Fetch(fetch_answer::FetchAnswer),
}

impl Response {
    /// The response as kafka-protocol's type.
    pub fn into_kafka(self) -> ResponseKind {
        match self {
            Response::Kafka(r) => r,
            Response::Fetch(f) => ResponseKind::Fetch(f.to_kafka()),
        }
    }
}

/// A decoded request body: kafka-protocol's, or a Fetch in the broker's own type (see
/// [`fetch_wanted`]).
#[derive(Debug)]
pub enum Request {
    Kafka(RequestKind),
    Fetch(fetch_wanted::FetchWanted),
}

impl From<RequestKind> for Request {
    /// kafka-protocol's request, a Fetch turned into the broker's type.
    fn from(request: RequestKind) -> Self {
        match request {
            RequestKind::Fetch(r) => Request::Fetch(r.into()),
            other => Request::Kafka(other),
        }
    }
}

/// [`handle`] with kafka-protocol's types for the request and the response, for tests.
#[cfg(test)]
pub(crate) async fn dispatch(
    ctx: &RequestContext,
    request: RequestKind,
) -> Result<Option<ResponseKind>, ConnectionError> {
    Ok(handle(ctx, request.into()).await?.map(Response::into_kafka))
}

/// Routes one request. `Ok(None)`: send no response (acks=0 produce).
pub(crate) async fn handle(
    ctx: &RequestContext,
    request: Request,
) -> Result<Option<Response>, ConnectionError> {
    let v = ctx.api_version;
    let request = match request {
        Request::Fetch(r) => return Ok(Some(Response::Fetch(fetch::handle(ctx, r).await))),
        Request::Kafka(request) => request,
    };
    // A Fetch is always `Request::Fetch` (`Request::from` turns kafka-protocol's into it).
    let response = match request {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(api_versions::handle()),
        RequestKind::Metadata(r) => ResponseKind::Metadata(metadata::handle(ctx, r).await),
        RequestKind::Produce(r) => match produce::handle(ctx, r).await {
            Some(resp) => ResponseKind::Produce(resp),
            None => return Ok(None),
        },
        RequestKind::ListOffsets(r) => ResponseKind::ListOffsets(offsets::list_offsets(ctx, r)),
        RequestKind::DeleteRecords(r) => {
            ResponseKind::DeleteRecords(offsets::delete_records(ctx, r))
        }
        RequestKind::CreateTopics(r) => {
            ResponseKind::CreateTopics(admin::create_topics(ctx, r).await)
        }
        RequestKind::DeleteTopics(r) => {
            ResponseKind::DeleteTopics(admin::delete_topics(ctx, r).await)
        }
        RequestKind::CreatePartitions(r) => {
            ResponseKind::CreatePartitions(admin::create_partitions(ctx, r).await)
        }
        RequestKind::InitProducerId(r) => {
            ResponseKind::InitProducerId(admin::init_producer_id(ctx, r).await)
        }
        RequestKind::DescribeConfigs(r) => ResponseKind::DescribeConfigs(configs::describe(ctx, r)),
        RequestKind::AlterConfigs(r) => ResponseKind::AlterConfigs(configs::alter(ctx, r).await),
        RequestKind::IncrementalAlterConfigs(r) => {
            ResponseKind::IncrementalAlterConfigs(configs::incremental_alter(ctx, r).await)
        }
        RequestKind::DescribeCluster(r) => {
            ResponseKind::DescribeCluster(cluster::describe_cluster(ctx, r))
        }
        RequestKind::DescribeLogDirs(r) => {
            ResponseKind::DescribeLogDirs(cluster::describe_log_dirs(ctx, r))
        }
        RequestKind::DescribeTopicPartitions(r) => {
            ResponseKind::DescribeTopicPartitions(metadata::describe_topic_partitions(ctx, r))
        }
        RequestKind::FindCoordinator(r) => {
            ResponseKind::FindCoordinator(groups::find_coordinator(ctx, r))
        }
        RequestKind::JoinGroup(r) => ResponseKind::JoinGroup(groups::join_group(ctx, r).await),
        RequestKind::SyncGroup(r) => ResponseKind::SyncGroup(groups::sync_group(ctx, r).await),
        RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(groups::heartbeat(ctx, r)),
        RequestKind::LeaveGroup(r) => ResponseKind::LeaveGroup(groups::leave_group(ctx, r).await),
        RequestKind::OffsetCommit(r) => {
            ResponseKind::OffsetCommit(groups::offset_commit(ctx, r).await)
        }
        RequestKind::OffsetFetch(r) => ResponseKind::OffsetFetch(groups::offset_fetch(ctx, r)),
        RequestKind::ListGroups(r) => ResponseKind::ListGroups(groups::list_groups(ctx, r)),
        RequestKind::DescribeGroups(r) => {
            ResponseKind::DescribeGroups(groups::describe_groups(ctx, r))
        }
        RequestKind::DeleteGroups(r) => {
            ResponseKind::DeleteGroups(groups::delete_groups(ctx, r).await)
        }
        RequestKind::OffsetDelete(r) => {
            ResponseKind::OffsetDelete(groups::offset_delete(ctx, r).await)
        }
        RequestKind::ConsumerGroupHeartbeat(r) => {
            ResponseKind::ConsumerGroupHeartbeat(groups::consumer_group_heartbeat(ctx, r).await)
        }
        RequestKind::ConsumerGroupDescribe(r) => {
            ResponseKind::ConsumerGroupDescribe(groups::consumer_group_describe(ctx, r))
        }
        RequestKind::DescribeClientQuotas(r) => {
            ResponseKind::DescribeClientQuotas(quotas::describe(ctx, r))
        }
        RequestKind::AlterClientQuotas(r) => {
            ResponseKind::AlterClientQuotas(quotas::alter(ctx, r).await)
        }
        other => {
            return Err(ConnectionError::Malformed(format!(
                "no handler for {other:?} v{v}"
            )));
        }
    };
    Ok(Some(Response::Kafka(response)))
}

/// Sets the `throttle_time_ms` of a response (quota enforcement, KIP-219). Responses of
/// versions without the field simply do not carry it; the connection is muted regardless.
pub(crate) fn set_throttle(response: &mut Response, ms: i32) {
    let response = match response {
        Response::Fetch(f) => {
            f.throttle_time_ms = ms;
            return;
        }
        Response::Kafka(r) => r,
    };
    macro_rules! set {
        ($($kind:ident),*) => {
            match response {
                $(ResponseKind::$kind(r) => r.throttle_time_ms = ms,)*
                _ => {}
            }
        };
    }
    set!(
        Produce,
        ListOffsets,
        Metadata,
        ApiVersions,
        CreateTopics,
        DeleteTopics,
        DeleteRecords,
        InitProducerId,
        DescribeConfigs,
        AlterConfigs,
        DescribeLogDirs,
        CreatePartitions,
        IncrementalAlterConfigs,
        DescribeCluster,
        DescribeTopicPartitions,
        OffsetCommit,
        OffsetFetch,
        FindCoordinator,
        JoinGroup,
        Heartbeat,
        LeaveGroup,
        SyncGroup,
        DescribeGroups,
        ListGroups,
        DeleteGroups,
        OffsetDelete,
        ConsumerGroupHeartbeat,
        ConsumerGroupDescribe,
        DescribeClientQuotas,
        AlterClientQuotas
    );
}

/// Converts text into the protocol's string type.
pub(crate) fn sb(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
