//! A few raw Kafka requests for what the `rdkafka` crate does not expose: topic ids and
//! eligible leader replicas (`kafka-topics --describe`), config synonyms and incremental
//! config changes (`kafka-configs`).
//!
//! Flow: [`Conn::open`] connects to the first reachable bootstrap address (plaintext only)
//! and negotiates versions with ApiVersions v0; each call then picks the highest version both
//! sides support, encodes with the `kafka-protocol` crate and reads one response frame.
//! Everything else the tools do goes through librdkafka. The group-coordinator requests of
//! `fjord consumer-groups` are in [`groups`].

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_topic_partitions_request::{
    Cursor as RequestCursor, TopicRequest,
};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, DescribeConfigsRequest,
    DescribeConfigsResponse, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, MetadataRequest,
    MetadataResponse, RequestHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, Message, StrBytes};

mod groups;
mod log_dirs;
mod quotas;
pub use groups::{CommittedOffset, Coordinator, GroupDescription, GroupMember, ListedGroup};
pub use log_dirs::LogDir;
#[cfg(test)]
pub use log_dirs::LogDirPartition;
pub use quotas::{QuotaEntity, QuotaMatch, QuotaOp};

/// Largest response frame accepted (a describe of thousands of topics fits easily).
const MAX_FRAME: usize = 100 * 1024 * 1024;

/// Kafka's resource type codes for DescribeConfigs / IncrementalAlterConfigs.
pub const RESOURCE_TOPIC: i8 = 2;
/// Broker resource type code.
pub const RESOURCE_BROKER: i8 = 4;

/// One connection to a broker with the API versions it advertised.
pub struct Conn {
    stream: TcpStream,
    next_id: i32,
    versions: Vec<(i16, i16, i16)>,
}

/// What `--describe` needs beyond librdkafka's metadata, for one topic.
#[derive(Debug, Default, Clone)]
pub struct TopicExtras {
    /// Kafka's text form of the topic id (URL-safe base64, no padding); `None` when the
    /// broker has no topic ids.
    pub id: Option<String>,
    /// Per partition: (eligible leader replicas, last known ELR), `None` where the broker did
    /// not report them (older brokers: printed as `N/A`, as Kafka does).
    pub elr: std::collections::HashMap<i32, PartitionElr>,
}

/// A partition's (eligible leader replicas, last known ELR); `None` where not reported.
pub type PartitionElr = (Option<Vec<i32>>, Option<Vec<i32>>);

/// One config entry from DescribeConfigs.
#[derive(Debug, Clone)]
pub struct ConfigEntry {
    /// Property name.
    pub name: String,
    /// Value; `None` for sensitive or unset values.
    pub value: Option<String>,
    /// Kafka's source code (1 dynamic topic, 2 dynamic broker, 3 dynamic default broker,
    /// 4 static broker, 5 default, 6 dynamic broker logger).
    pub source: i8,
    /// Whether the value is sensitive.
    pub sensitive: bool,
    /// Synonyms in precedence order: (source, name, value).
    pub synonyms: Vec<(i8, String, Option<String>)>,
}

/// One incremental change to a config: SET (0) or DELETE (1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOp {
    /// Sets a property to a value.
    Set(String, String),
    /// Removes a dynamic override.
    Delete(String),
}

/// Tries a TCP connection to each bootstrap address; returns why none could be made (for
/// error messages), or `None` when one connected.
pub fn probe(bootstrap: &str, timeout: Duration) -> Option<String> {
    let mut reason = None;
    for hostport in bootstrap
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match hostport.to_socket_addrs() {
            Err(e) => reason = Some(format!("{hostport}: {e}")),
            Ok(addrs) => {
                for addr in addrs {
                    match TcpStream::connect_timeout(&addr, timeout) {
                        Ok(_) => return None,
                        Err(e) => reason = Some(format!("{addr}: {e}")),
                    }
                }
            }
        }
    }
    reason
}

impl Conn {
    /// Connects to the first reachable address in `bootstrap` (comma-separated host:port)
    /// within `timeout` and negotiates API versions.
    pub fn open(bootstrap: &str, timeout: Duration) -> anyhow::Result<Conn> {
        let deadline = Instant::now() + timeout;
        let mut last_err = None;
        for hostport in bootstrap
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let hostport = hostport
                .strip_prefix("PLAINTEXT://")
                .unwrap_or(hostport)
                .to_string();
            let addrs = match hostport.to_socket_addrs() {
                Ok(a) => a,
                Err(e) => {
                    last_err = Some(format!("{hostport}: {e}"));
                    continue;
                }
            };
            for addr in addrs {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match TcpStream::connect_timeout(&addr, left) {
                    Ok(stream) => {
                        stream.set_read_timeout(Some(left.max(Duration::from_millis(100))))?;
                        stream.set_nodelay(true)?;
                        let mut conn = Conn {
                            stream,
                            next_id: 1,
                            versions: Vec::new(),
                        };
                        conn.negotiate()?;
                        return Ok(conn);
                    }
                    Err(e) => last_err = Some(format!("{addr}: {e}")),
                }
            }
        }
        Err(anyhow!(
            "cannot connect to {bootstrap}: {}",
            last_err.unwrap_or_else(|| "no address".into())
        ))
    }

    fn negotiate(&mut self) -> anyhow::Result<()> {
        let resp: ApiVersionsResponse =
            self.call_version(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default())?;
        if resp.error_code != 0 {
            bail!("ApiVersions failed with error code {}", resp.error_code);
        }
        self.versions = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        Ok(())
    }

    /// The API versions the broker advertised: (key, min, max).
    pub fn advertised(&self) -> &[(i16, i16, i16)] {
        &self.versions
    }

    /// The highest version of `key` both sides support, if any.
    fn version_for<M: Message>(&self, key: ApiKey) -> Option<i16> {
        let (_, min, max) = self.versions.iter().find(|(k, _, _)| *k == key as i16)?;
        let hi = (*max).min(M::VERSIONS.max);
        (hi >= (*min).max(M::VERSIONS.min)).then_some(hi)
    }

    fn call<Req: Encodable + Message, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        req: &Req,
    ) -> anyhow::Result<Resp> {
        let v = self
            .version_for::<Req>(key)
            .ok_or_else(|| anyhow!("the broker does not support {key:?}"))?;
        self.call_version(key, v, req)
    }

    fn call_version<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Req,
    ) -> anyhow::Result<Resp> {
        let id = self.next_id;
        self.next_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(id)
            .with_client_id(Some(StrBytes::from_static_str("fjord-cli")));
        let mut body = BytesMut::new();
        header.encode(&mut body, key.request_header_version(version))?;
        req.encode(&mut body, version)?;
        let len = i32::try_from(body.len()).context("request too large")?;
        self.stream.write_all(&len.to_be_bytes())?;
        self.stream.write_all(&body)?;
        let mut size = [0u8; 4];
        self.stream
            .read_exact(&mut size)
            .with_context(|| format!("reading the {key:?} response"))?;
        let size = usize::try_from(i32::from_be_bytes(size)).unwrap_or(usize::MAX);
        if !(4..=MAX_FRAME).contains(&size) {
            bail!("invalid {key:?} response frame of {size} bytes");
        }
        let mut buf = vec![0u8; size];
        self.stream.read_exact(&mut buf)?;
        let mut resp = Bytes::from(buf);
        if resp.get_i32() != id {
            bail!("{key:?} response has the wrong correlation id");
        }
        if key.response_header_version(version) >= 1 {
            // Tagged fields of the response header: none are defined; skip an empty set.
            if !resp.has_remaining() {
                bail!("truncated {key:?} response");
            }
            let n = resp.get_u8();
            if n != 0 {
                bail!("unexpected tagged fields in the {key:?} response header");
            }
        }
        Resp::decode(&mut resp, version).map_err(|e| anyhow!("decoding {key:?}: {e}"))
    }

    /// Topic ids and ELR for `topics`: DescribeTopicPartitions (KIP-966) where served,
    /// otherwise Metadata v10+ (ids only).
    pub fn topic_extras(
        &mut self,
        topics: &[String],
    ) -> anyhow::Result<std::collections::HashMap<String, TopicExtras>> {
        let mut out = std::collections::HashMap::new();
        if topics.is_empty() {
            return Ok(out);
        }
        if self
            .version_for::<DescribeTopicPartitionsRequest>(ApiKey::DescribeTopicPartitions)
            .is_some()
        {
            let mut cursor = None;
            loop {
                let req = DescribeTopicPartitionsRequest::default()
                    .with_topics(
                        topics
                            .iter()
                            .map(|t| TopicRequest::default().with_name(topic_name(t)))
                            .collect(),
                    )
                    .with_response_partition_limit(2000)
                    .with_cursor(cursor);
                let resp: DescribeTopicPartitionsResponse =
                    self.call(ApiKey::DescribeTopicPartitions, &req)?;
                for t in &resp.topics {
                    let Some(name) = &t.name else { continue };
                    if t.error_code != 0 {
                        continue;
                    }
                    let e: &mut TopicExtras = out.entry(name.0.to_string()).or_default();
                    e.id = uuid_text(t.topic_id.as_bytes());
                    for p in &t.partitions {
                        let ids = |v: &Option<Vec<kafka_protocol::messages::BrokerId>>| {
                            v.as_ref().map(|v| v.iter().map(|b| b.0).collect())
                        };
                        e.elr.insert(
                            p.partition_index,
                            (ids(&p.eligible_leader_replicas), ids(&p.last_known_elr)),
                        );
                    }
                }
                cursor = resp.next_cursor.map(|c| {
                    RequestCursor::default()
                        .with_topic_name(c.topic_name)
                        .with_partition_index(c.partition_index)
                });
                if cursor.is_none() {
                    break;
                }
            }
            return Ok(out);
        }
        let Some(v) = self.version_for::<MetadataRequest>(ApiKey::Metadata) else {
            return Ok(out);
        };
        if v < 10 {
            return Ok(out); // no topic ids before Metadata v10
        }
        let req = MetadataRequest::default()
            .with_topics(Some(
                topics
                    .iter()
                    .map(|t| MetadataRequestTopic::default().with_name(Some(topic_name(t))))
                    .collect(),
            ))
            .with_allow_auto_topic_creation(false);
        let resp: MetadataResponse = self.call_version(ApiKey::Metadata, v, &req)?;
        for t in resp.topics {
            if let Some(name) = t.name {
                out.insert(
                    name.0.to_string(),
                    TopicExtras {
                        id: uuid_text(t.topic_id.as_bytes()),
                        elr: Default::default(),
                    },
                );
            }
        }
        Ok(out)
    }

    /// DescribeConfigs with synonyms for one resource.
    pub fn describe_configs(
        &mut self,
        resource_type: i8,
        name: &str,
    ) -> anyhow::Result<Vec<ConfigEntry>> {
        let req = DescribeConfigsRequest::default()
            .with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(resource_type)
                    .with_resource_name(StrBytes::from_string(name.to_string()))
                    .with_configuration_keys(None),
            ])
            .with_include_synonyms(true);
        let resp: DescribeConfigsResponse = self.call(ApiKey::DescribeConfigs, &req)?;
        let Some(result) = resp.results.into_iter().next() else {
            bail!("empty DescribeConfigs response");
        };
        if result.error_code != 0 {
            bail!(error_text(result.error_code, result.error_message));
        }
        Ok(result
            .configs
            .into_iter()
            .map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: c.value.map(|v| v.to_string()),
                source: c.config_source,
                sensitive: c.is_sensitive,
                synonyms: c
                    .synonyms
                    .into_iter()
                    .map(|s| (s.source, s.name.to_string(), s.value.map(|v| v.to_string())))
                    .collect(),
            })
            .collect())
    }

    /// IncrementalAlterConfigs for one resource.
    pub fn alter_configs(
        &mut self,
        resource_type: i8,
        name: &str,
        ops: &[ConfigOp],
    ) -> anyhow::Result<()> {
        let configs = ops
            .iter()
            .map(|op| match op {
                ConfigOp::Set(k, v) => AlterableConfig::default()
                    .with_name(StrBytes::from_string(k.clone()))
                    .with_config_operation(0)
                    .with_value(Some(StrBytes::from_string(v.clone()))),
                ConfigOp::Delete(k) => AlterableConfig::default()
                    .with_name(StrBytes::from_string(k.clone()))
                    .with_config_operation(1)
                    .with_value(None),
            })
            .collect();
        let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(name.to_string()))
                .with_configs(configs),
        ]);
        let resp: IncrementalAlterConfigsResponse =
            self.call(ApiKey::IncrementalAlterConfigs, &req)?;
        for r in resp.responses {
            if r.error_code != 0 {
                bail!(error_text(r.error_code, r.error_message));
            }
        }
        Ok(())
    }
}

fn topic_name(t: &str) -> TopicName {
    TopicName(StrBytes::from_string(t.to_string()))
}

/// The broker's message, or the error code's name when it sent none.
fn error_text(code: i16, message: Option<StrBytes>) -> String {
    match message {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => {
            let e = kafka_protocol::error::ResponseError::try_from_code(code);
            match e {
                Some(e) => e.to_string(),
                None => format!("error code {code}"),
            }
        }
    }
}

/// Kafka's text form of a UUID: URL-safe base64 without padding; the all-zero id means
/// "none" and gives `None`.
pub fn uuid_text(bytes: &[u8; 16]) -> Option<String> {
    if bytes.iter().all(|b| *b == 0) {
        return None;
    }
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let mut n = 0u32;
        for (i, b) in chunk.iter().enumerate() {
            n |= u32::from(*b) << (16 - 8 * i);
        }
        // A chunk of k bytes yields k + 1 characters.
        for i in 0..=chunk.len() {
            let idx = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[idx as usize]));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn uuid_text_is_url_safe_base64_without_padding() {
        assert_eq!(uuid_text(&[0; 16]), None);
        let mut b = [0u8; 16];
        b[15] = 1;
        assert_eq!(uuid_text(&b).unwrap(), "AAAAAAAAAAAAAAAAAAAAAQ");
        assert_eq!(uuid_text(&[0xff; 16]).unwrap(), "_____________________w");
        let b: [u8; 16] = [0xfb, 0xef, 0xbe, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(&uuid_text(&b).unwrap()[..4], "----");
    }
}
