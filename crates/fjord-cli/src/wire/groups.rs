//! Group-coordinator requests for `fjord consumer-groups`: FindCoordinator, ListGroups (with
//! state and type filters), DescribeGroups, OffsetFetch, OffsetCommit, DeleteGroups and
//! OffsetDelete. librdkafka offers none of them with the detail Kafka's tool prints.
//!
//! Each call picks the highest version both sides support and fills in only the fields that
//! version has (OffsetFetch and FindCoordinator changed shape at v8 and v4). Error codes are
//! passed back as numbers; the tool turns them into Kafka's messages.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::{Buf, Bytes};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    ApiKey, ConsumerProtocolAssignment, DeleteGroupsRequest, DeleteGroupsResponse,
    DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse,
    GroupId, ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest, OffsetFetchResponse,
};
use kafka_protocol::protocol::{Decodable, Message, StrBytes};

use super::{Conn, error_text, topic_name};

/// COORDINATOR_LOAD_IN_PROGRESS and COORDINATOR_NOT_AVAILABLE: FindCoordinator is retried.
const RETRY_COORDINATOR: [i16; 2] = [14, 15];

/// Per-partition error codes: (topic, partition, Kafka error code).
pub type PartitionErrors = Vec<(String, i32, i16)>;

/// The broker that coordinates a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinator {
    /// Broker id.
    pub id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
}

impl Coordinator {
    /// `host:port`, for connecting.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// One group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    /// Group id.
    pub id: String,
    /// `consumer` for consumer groups (empty for a classic group that only has offsets).
    pub protocol_type: String,
    /// State (ListGroups v4+).
    pub state: Option<String>,
    /// `classic` or `consumer` (ListGroups v5+).
    pub group_type: Option<String>,
}

/// One member as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// Member id (Kafka's CONSUMER-ID).
    pub member_id: String,
    /// Static membership id (KIP-345), if any.
    pub instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address as the broker saw it (`/127.0.0.1`).
    pub client_host: String,
    /// Assigned partitions, decoded from the consumer-protocol assignment; empty when the
    /// group does not use the consumer protocol or nothing is assigned.
    pub assignment: Vec<(String, Vec<i32>)>,
}

/// DescribeGroups' answer for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub id: String,
    /// Kafka error code (0: none; 69 GROUP_ID_NOT_FOUND from v6 for unknown groups).
    pub error_code: i16,
    /// State name (`Stable`, `Empty`, `Dead`, ...).
    pub state: String,
    /// Protocol type (`consumer`).
    pub protocol_type: String,
    /// Chosen protocol: the assignor (`range`, `cooperative-sticky`, `uniform`, ...).
    pub protocol: String,
    /// Members.
    pub members: Vec<GroupMember>,
}

/// A committed offset from OffsetFetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The committed offset.
    pub offset: i64,
    /// Leader epoch stored with the commit; -1 when unknown.
    pub leader_epoch: i32,
}

/// Decodes a ConsumerProtocolAssignment (any version: later versions only append fields, so
/// versions above 3 are read as 3). Empty input is an empty assignment.
pub fn decode_assignment(bytes: &[u8]) -> anyhow::Result<Vec<(String, Vec<i32>)>> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut buf = Bytes::copy_from_slice(bytes);
    if buf.remaining() < 2 {
        bail!("truncated consumer protocol assignment");
    }
    let version = buf
        .get_i16()
        .clamp(0, ConsumerProtocolAssignment::VERSIONS.max);
    let a = ConsumerProtocolAssignment::decode(&mut buf, version)
        .map_err(|e| anyhow::anyhow!("decoding a consumer protocol assignment: {e}"))?;
    Ok(a.assigned_partitions
        .into_iter()
        .map(|tp| (tp.topic.0.to_string(), tp.partitions))
        .collect())
}

fn group_id(g: &str) -> GroupId {
    GroupId(StrBytes::from_string(g.to_string()))
}

impl Conn {
    /// The negotiated version of `key`, or an error naming the API.
    fn group_version<M: Message>(&self, key: ApiKey) -> anyhow::Result<i16> {
        self.version_for::<M>(key)
            .with_context(|| format!("the broker does not support {key:?}"))
    }

    /// FindCoordinator for a group, retrying while the coordinator is loading or not yet
    /// available, until `deadline`.
    pub fn find_coordinator(
        &mut self,
        group: &str,
        deadline: Instant,
    ) -> anyhow::Result<Coordinator> {
        let v = self.group_version::<FindCoordinatorRequest>(ApiKey::FindCoordinator)?;
        loop {
            let key = StrBytes::from_string(group.to_string());
            // v4 batched the keys (KIP-699).
            let req = if v >= 4 {
                FindCoordinatorRequest::default().with_coordinator_keys(vec![key])
            } else {
                FindCoordinatorRequest::default().with_key(key)
            };
            let resp: FindCoordinatorResponse =
                self.call_version(ApiKey::FindCoordinator, v, &req)?;
            let (code, message, found) = if v >= 4 {
                let Some(c) = resp.coordinators.into_iter().next() else {
                    bail!("empty FindCoordinator response");
                };
                let found = Coordinator {
                    id: c.node_id.0,
                    host: c.host.to_string(),
                    port: c.port,
                };
                (c.error_code, c.error_message, found)
            } else {
                let found = Coordinator {
                    id: resp.node_id.0,
                    host: resp.host.to_string(),
                    port: resp.port,
                };
                (resp.error_code, resp.error_message, found)
            };
            if code == 0 {
                return Ok(found);
            }
            if !RETRY_COORDINATOR.contains(&code) || Instant::now() >= deadline {
                bail!(
                    "finding the coordinator of group '{group}': {}",
                    error_text(code, message)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// ListGroups, filtered by state (v4+) and type (v5+) when the filters are not empty.
    pub fn list_groups(
        &mut self,
        states: &[String],
        types: &[String],
    ) -> anyhow::Result<Vec<ListedGroup>> {
        let v = self.group_version::<ListGroupsRequest>(ApiKey::ListGroups)?;
        if !states.is_empty() && v < 4 {
            bail!("the broker cannot filter groups by state (ListGroups v{v})");
        }
        if !types.is_empty() && v < 5 {
            bail!("the broker cannot filter groups by type (ListGroups v{v})");
        }
        let strs = |v: &[String]| {
            v.iter()
                .map(|s| StrBytes::from_string(s.clone()))
                .collect::<Vec<_>>()
        };
        let mut req = ListGroupsRequest::default();
        if v >= 4 {
            req = req.with_states_filter(strs(states));
        }
        if v >= 5 {
            req = req.with_types_filter(strs(types));
        }
        let resp: ListGroupsResponse = self.call_version(ApiKey::ListGroups, v, &req)?;
        if resp.error_code != 0 {
            bail!("listing groups: {}", error_text(resp.error_code, None));
        }
        Ok(resp
            .groups
            .into_iter()
            .map(|g| ListedGroup {
                id: g.group_id.0.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: (v >= 4).then(|| g.group_state.to_string()),
                group_type: (v >= 5).then(|| g.group_type.to_string()),
            })
            .collect())
    }

    /// DescribeGroups for `groups` (send to their coordinator).
    pub fn describe_groups(&mut self, groups: &[String]) -> anyhow::Result<Vec<GroupDescription>> {
        let v = self.group_version::<DescribeGroupsRequest>(ApiKey::DescribeGroups)?;
        let req = DescribeGroupsRequest::default()
            .with_groups(groups.iter().map(|g| group_id(g)).collect());
        let resp: DescribeGroupsResponse = self.call_version(ApiKey::DescribeGroups, v, &req)?;
        let mut out = Vec::with_capacity(resp.groups.len());
        for g in resp.groups {
            let protocol_type = g.protocol_type.to_string();
            let mut members = Vec::with_capacity(g.members.len());
            for m in g.members {
                // Only the consumer protocol's assignment has a known layout.
                let assignment = if protocol_type == "consumer" {
                    decode_assignment(&m.member_assignment).with_context(|| {
                        format!("member {} of group {}", m.member_id, g.group_id.0)
                    })?
                } else {
                    Vec::new()
                };
                members.push(GroupMember {
                    member_id: m.member_id.to_string(),
                    instance_id: m.group_instance_id.map(|s| s.to_string()),
                    client_id: m.client_id.to_string(),
                    client_host: m.client_host.to_string(),
                    assignment,
                });
            }
            out.push(GroupDescription {
                id: g.group_id.0.to_string(),
                error_code: g.error_code,
                state: g.group_state.to_string(),
                protocol_type,
                protocol: g.protocol_data.to_string(),
                members,
            });
        }
        Ok(out)
    }

    /// Every committed offset of `group` (OffsetFetch with null topics). A group-level error
    /// is returned as `Err`; partitions with an error or without an offset are left out.
    pub fn offset_fetch(&mut self, group: &str) -> anyhow::Result<Vec<CommittedOffset>> {
        let v = self.group_version::<OffsetFetchRequest>(ApiKey::OffsetFetch)?;
        if v < 2 {
            bail!("the broker cannot list all committed offsets (OffsetFetch v{v})");
        }
        // v8 moved the group into a list (KIP-709).
        let req = if v >= 8 {
            OffsetFetchRequest::default().with_groups(vec![
                OffsetFetchRequestGroup::default()
                    .with_group_id(group_id(group))
                    .with_topics(None),
            ])
        } else {
            OffsetFetchRequest::default()
                .with_group_id(group_id(group))
                .with_topics(None)
        };
        let resp: OffsetFetchResponse = self.call_version(ApiKey::OffsetFetch, v, &req)?;
        let mut out = Vec::new();
        let mut keep = |topic: &str, p: i32, offset: i64, epoch: i32, code: i16| {
            if code == 0 && offset >= 0 {
                out.push(CommittedOffset {
                    topic: topic.to_string(),
                    partition: p,
                    offset,
                    leader_epoch: epoch,
                });
            }
        };
        if v >= 8 {
            let Some(g) = resp.groups.into_iter().next() else {
                bail!("empty OffsetFetch response");
            };
            if g.error_code != 0 {
                bail!(error_text(g.error_code, None));
            }
            for t in g.topics {
                for p in t.partitions {
                    keep(
                        &t.name.0,
                        p.partition_index,
                        p.committed_offset,
                        p.committed_leader_epoch,
                        p.error_code,
                    );
                }
            }
        } else {
            if resp.error_code != 0 {
                bail!(error_text(resp.error_code, None));
            }
            for t in resp.topics {
                for p in t.partitions {
                    keep(
                        &t.name.0,
                        p.partition_index,
                        p.committed_offset,
                        p.committed_leader_epoch,
                        p.error_code,
                    );
                }
            }
        }
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(out)
    }

    /// OffsetCommit outside any generation (generation -1, empty member id): how an admin
    /// client sets the offsets of an inactive group. Returns each partition's error code.
    pub fn offset_commit(
        &mut self,
        group: &str,
        offsets: &[(String, i32, i64)],
    ) -> anyhow::Result<PartitionErrors> {
        let v = self.group_version::<OffsetCommitRequest>(ApiKey::OffsetCommit)?;
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for (t, p, o) in offsets {
            let part = OffsetCommitRequestPartition::default()
                .with_partition_index(*p)
                .with_committed_offset(*o);
            match topics.iter_mut().find(|x| x.name.0.as_str() == t.as_str()) {
                Some(x) => x.partitions.push(part),
                None => topics.push(
                    OffsetCommitRequestTopic::default()
                        .with_name(topic_name(t))
                        .with_partitions(vec![part]),
                ),
            }
        }
        let req = OffsetCommitRequest::default()
            .with_group_id(group_id(group))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(StrBytes::default())
            .with_topics(topics);
        let resp: OffsetCommitResponse = self.call_version(ApiKey::OffsetCommit, v, &req)?;
        Ok(resp
            .topics
            .into_iter()
            .flat_map(|t| {
                let name = t.name.0.to_string();
                t.partitions
                    .into_iter()
                    .map(move |p| (name.clone(), p.partition_index, p.error_code))
            })
            .collect())
    }

    /// DeleteGroups; returns each group's error code.
    pub fn delete_groups(&mut self, groups: &[String]) -> anyhow::Result<Vec<(String, i16)>> {
        let v = self.group_version::<DeleteGroupsRequest>(ApiKey::DeleteGroups)?;
        let req = DeleteGroupsRequest::default()
            .with_groups_names(groups.iter().map(|g| group_id(g)).collect());
        let resp: DeleteGroupsResponse = self.call_version(ApiKey::DeleteGroups, v, &req)?;
        Ok(resp
            .results
            .into_iter()
            .map(|r| (r.group_id.0.to_string(), r.error_code))
            .collect())
    }

    /// OffsetDelete: the group-level error code and each partition's.
    pub fn offset_delete(
        &mut self,
        group: &str,
        partitions: &[(String, i32)],
    ) -> anyhow::Result<(i16, PartitionErrors)> {
        let v = self.group_version::<OffsetDeleteRequest>(ApiKey::OffsetDelete)?;
        let mut topics: Vec<OffsetDeleteRequestTopic> = Vec::new();
        for (t, p) in partitions {
            let part = OffsetDeleteRequestPartition::default().with_partition_index(*p);
            match topics.iter_mut().find(|x| x.name.0.as_str() == t.as_str()) {
                Some(x) => x.partitions.push(part),
                None => topics.push(
                    OffsetDeleteRequestTopic::default()
                        .with_name(topic_name(t))
                        .with_partitions(vec![part]),
                ),
            }
        }
        let req = OffsetDeleteRequest::default()
            .with_group_id(group_id(group))
            .with_topics(topics);
        let resp: OffsetDeleteResponse = self.call_version(ApiKey::OffsetDelete, v, &req)?;
        let parts = resp
            .topics
            .into_iter()
            .flat_map(|t| {
                let name = t.name.0.to_string();
                t.partitions
                    .into_iter()
                    .map(move |p| (name.clone(), p.partition_index, p.error_code))
            })
            .collect();
        Ok((resp.error_code, parts))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn assignments_decode_in_every_version() {
        // version 1, one topic "t" with partitions 0 and 2, null user data
        let mut b = vec![
            0, 1, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2,
        ];
        b.extend((-1i32).to_be_bytes());
        assert_eq!(
            decode_assignment(&b).unwrap(),
            vec![("t".to_string(), vec![0, 2])]
        );
        // A future version is read as the newest known one.
        b[1] = 9;
        assert_eq!(decode_assignment(&b).unwrap().len(), 1);
        assert!(decode_assignment(&[]).unwrap().is_empty());
        assert!(decode_assignment(&[0]).is_err());
        assert!(decode_assignment(&[0, 0, 0, 0, 0, 5]).is_err());
    }
}
