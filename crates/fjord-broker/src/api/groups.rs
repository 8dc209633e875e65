//! Consumer-group APIs: FindCoordinator (10), JoinGroup (11), Heartbeat (12), LeaveGroup (13),
//! SyncGroup (14), DescribeGroups (15), ListGroups (16), OffsetCommit (8), OffsetFetch (9),
//! DeleteGroups (42), OffsetDelete (47), ConsumerGroupHeartbeat (68) and
//! ConsumerGroupDescribe (69). Each converts the request into coordinator calls
//! (`coordinator::group`) and the result into the response of the request's version.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::{RequestContext, sb};
use crate::broker::now_ms;
use crate::coordinator::group::{
    CommittedOffset, Group, JoinRequest, MemberRef, Unflushed, classic, consumer,
};

const GROUP_KEY: i8 = 0;

fn s(v: &StrBytes) -> String {
    v.to_string()
}

fn opt(v: &Option<StrBytes>) -> Option<String> {
    v.as_ref().map(s)
}

pub(crate) fn find_coordinator(
    ctx: &RequestContext,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let (host, port) = ctx.broker.advertised();
    let node = BrokerId(ctx.broker.config.node_id);
    let answer = |key_type: i8| -> Result<(), (ResponseError, &'static str)> {
        if key_type == GROUP_KEY {
            Ok(())
        } else {
            Err((
                ResponseError::CoordinatorNotAvailable,
                "transactions are not supported yet",
            ))
        }
    };
    if ctx.api_version >= 4 {
        let coordinators = req
            .coordinator_keys
            .iter()
            .map(|k| {
                let c = find_coordinator_response::Coordinator::default().with_key(k.clone());
                match answer(req.key_type) {
                    Ok(()) => c
                        .with_node_id(node)
                        .with_host(sb(host.clone()))
                        .with_port(port.into()),
                    Err((e, m)) => c
                        .with_node_id(BrokerId(-1))
                        .with_error_code(e.code())
                        .with_error_message(Some(sb(m))),
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    match answer(req.key_type) {
        Ok(()) => FindCoordinatorResponse::default()
            .with_node_id(node)
            .with_host(sb(host))
            .with_port(port.into()),
        Err((e, m)) => FindCoordinatorResponse::default()
            .with_error_code(e.code())
            .with_error_message((ctx.api_version >= 1).then(|| sb(m)))
            .with_node_id(BrokerId(-1))
            .with_port(-1),
    }
}

pub(crate) async fn join_group(ctx: &RequestContext, req: JoinGroupRequest) -> JoinGroupResponse {
    let v = ctx.api_version;
    if req.group_id.is_empty() {
        return JoinGroupResponse::default()
            .with_error_code(ResponseError::InvalidGroupId.code())
            .with_generation_id(-1);
    }
    let join = classic::Join {
        token: 0,
        member_id: s(&req.member_id),
        instance_id: opt(&req.group_instance_id),
        client_id: opt(&ctx.header.client_id).unwrap_or_default(),
        client_host: ctx.client_host.to_string(),
        protocol_type: s(&req.protocol_type),
        protocols: req
            .protocols
            .iter()
            .map(|p| (s(&p.name), p.metadata.to_vec()))
            .collect(),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: it equals the session timeout.
        rebalance_timeout_ms: if v >= 1 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        },
        require_known_member_id: v >= 4,
        new_member_id: String::new(),
    };
    let wait =
        Duration::from_millis(join.rebalance_timeout_ms.max(0) as u64) + Duration::from_secs(5);
    let request = JoinRequest {
        group_id: req.group_id.0.to_string(),
        join,
    };
    let result =
        match tokio::time::timeout(wait, ctx.broker.groups.join(&ctx.broker, now_ms(), request))
            .await
        {
            Ok(r) => r,
            Err(_) => classic::JoinResult {
                error: Some(ResponseError::RebalanceInProgress),
                generation: -1,
                protocol_type: None,
                protocol_name: None,
                leader: String::new(),
                member_id: s(&req.member_id),
                members: Vec::new(),
            },
        };
    let members = result
        .members
        .into_iter()
        .map(|(id, iid, meta)| {
            join_group_response::JoinGroupResponseMember::default()
                .with_member_id(sb(id))
                .with_group_instance_id(if v >= 5 { iid.map(sb) } else { None })
                .with_metadata(Bytes::from(meta))
        })
        .collect();
    JoinGroupResponse::default()
        .with_error_code(result.error.map_or(0, |e| e.code()))
        .with_generation_id(result.generation)
        .with_protocol_type(result.protocol_type.map(sb))
        // Before v7 the protocol name is not nullable.
        .with_protocol_name(
            Some(sb(result.protocol_name.unwrap_or_default())).filter(|p| v < 7 || !p.is_empty()),
        )
        .with_leader(sb(result.leader))
        .with_member_id(sb(result.member_id))
        .with_members(members)
}

pub(crate) async fn sync_group(ctx: &RequestContext, req: SyncGroupRequest) -> SyncGroupResponse {
    let assignments = req
        .assignments
        .iter()
        .map(|a| (s(&a.member_id), a.assignment.to_vec()))
        .collect();
    let who = MemberRef {
        group_id: &req.group_id.0,
        member_id: &req.member_id,
        instance_id: req.group_instance_id.as_deref(),
        generation: req.generation_id,
    };
    let fut = ctx
        .broker
        .groups
        .sync(&ctx.broker, now_ms(), who, assignments);
    let result = match tokio::time::timeout(Duration::from_secs(300), fut).await {
        Ok(r) => r,
        Err(_) => classic::SyncResult {
            error: Some(ResponseError::RebalanceInProgress),
            protocol_type: None,
            protocol_name: None,
            assignment: Vec::new(),
        },
    };
    SyncGroupResponse::default()
        .with_error_code(result.error.map_or(0, |e| e.code()))
        .with_protocol_type(result.protocol_type.map(sb))
        .with_protocol_name(result.protocol_name.map(sb))
        .with_assignment(Bytes::from(result.assignment))
}

pub(crate) fn heartbeat(ctx: &RequestContext, req: HeartbeatRequest) -> HeartbeatResponse {
    let e = ctx.broker.groups.heartbeat(
        now_ms(),
        &req.group_id.0,
        &req.member_id,
        req.group_instance_id.as_deref(),
        req.generation_id,
    );
    HeartbeatResponse::default().with_error_code(e.map_or(0, |e| e.code()))
}

pub(crate) async fn leave_group(
    ctx: &RequestContext,
    req: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let v = ctx.api_version;
    let leavers: Vec<(String, Option<String>)> = if v >= 3 {
        req.members
            .iter()
            .map(|m| (s(&m.member_id), opt(&m.group_instance_id)))
            .collect()
    } else {
        vec![(s(&req.member_id), None)]
    };
    let result = ctx
        .broker
        .groups
        .leave(&ctx.broker, now_ms(), &req.group_id.0, &leavers);
    let result = match result {
        Ok((errors, unflushed)) => Unflushed::wait_for(unflushed, &req.group_id.0)
            .await
            .map(|()| errors),
        Err(e) => Err(e),
    };
    match result {
        Err(e) => LeaveGroupResponse::default().with_error_code(e.code()),
        Ok(errors) if v < 3 => LeaveGroupResponse::default()
            .with_error_code(errors.first().copied().flatten().map_or(0, |e| e.code())),
        Ok(errors) => {
            let members = leavers
                .into_iter()
                .zip(errors)
                .map(|((id, iid), e)| {
                    leave_group_response::MemberResponse::default()
                        .with_member_id(sb(id))
                        .with_group_instance_id(iid.map(sb))
                        .with_error_code(e.map_or(0, |e| e.code()))
                })
                .collect();
            LeaveGroupResponse::default().with_members(members)
        }
    }
}

pub(crate) async fn offset_commit(
    ctx: &RequestContext,
    req: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let now = now_ms();
    let mut offsets = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            let off = CommittedOffset {
                offset: p.committed_offset,
                leader_epoch: if ctx.api_version >= 6 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: opt(&p.committed_metadata),
                commit_timestamp_ms: now,
            };
            offsets.push(((t.name.0.to_string(), p.partition_index), off));
        }
    }
    let result = if req.group_id.is_empty() {
        Err(ResponseError::InvalidGroupId)
    } else {
        let who = MemberRef {
            group_id: &req.group_id.0,
            member_id: &req.member_id,
            instance_id: req.group_instance_id.as_deref(),
            generation: req.generation_id_or_member_epoch,
        };
        ctx.broker.groups.commit(&ctx.broker, now, who, offsets)
    };
    // Under a flush policy the commit is acknowledged once it is on disk, as a produce is:
    // the wait joins the partition's group commit, with no lock held.
    let result = match result {
        Ok((mut per, unflushed)) => {
            if let Err(e) = Unflushed::wait_for(unflushed, &req.group_id.0).await {
                for r in per.iter_mut().filter(|r| r.is_none()) {
                    *r = Some(e);
                }
            }
            Ok(per)
        }
        Err(e) => Err(e),
    };
    let mut codes = match &result {
        Ok(per) => per
            .iter()
            .map(|e| e.map_or(0, |e| e.code()))
            .collect::<Vec<_>>()
            .into_iter(),
        Err(e) => vec![e.code(); req.topics.iter().map(|t| t.partitions.len()).sum()].into_iter(),
    };
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    offset_commit_response::OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(codes.next().unwrap_or(0))
                })
                .collect();
            offset_commit_response::OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// Offsets per topic: (partition, committed offset if any).
type TopicOffsets = Vec<(String, Vec<(i32, Option<CommittedOffset>)>)>;

/// One group's requested offsets: `None` topics = everything committed.
fn lookup_offsets(
    ctx: &RequestContext,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> TopicOffsets {
    let committed = ctx.broker.groups.fetch_offsets(group);
    match topics {
        Some(topics) => topics
            .into_iter()
            .map(|(t, ps)| {
                let parts = ps
                    .into_iter()
                    .map(|p| (p, committed.get(&(t.clone(), p)).cloned()))
                    .collect();
                (t, parts)
            })
            .collect(),
        None => {
            let mut by_topic: BTreeMap<String, Vec<(i32, Option<CommittedOffset>)>> =
                BTreeMap::new();
            for ((t, p), o) in committed {
                by_topic.entry(t).or_default().push((p, Some(o)));
            }
            by_topic.into_iter().collect()
        }
    }
}

/// (offset, leader epoch, metadata) of an OffsetFetch partition: -1 / -1 / "" when nothing is
/// committed, as Kafka answers.
fn committed_fields(o: Option<CommittedOffset>, with_epoch: bool) -> (i64, i32, Option<StrBytes>) {
    match o {
        Some(o) => (
            o.offset,
            if with_epoch { o.leader_epoch } else { -1 },
            Some(sb(o.metadata.unwrap_or_default())),
        ),
        None => (-1, -1, Some(sb(""))),
    }
}

pub(crate) fn offset_fetch(ctx: &RequestContext, req: OffsetFetchRequest) -> OffsetFetchResponse {
    let v = ctx.api_version;
    if v < 8 {
        let topics = req.topics.map(|ts| {
            ts.into_iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes))
                .collect()
        });
        let found = lookup_offsets(ctx, &req.group_id.0, topics);
        let topics = found
            .into_iter()
            .map(|(t, parts)| {
                let partitions = parts
                    .into_iter()
                    .map(|(p, o)| {
                        let (offset, epoch, metadata) = committed_fields(o, v >= 5);
                        offset_fetch_response::OffsetFetchResponsePartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(offset)
                            .with_committed_leader_epoch(epoch)
                            .with_metadata(metadata)
                    })
                    .collect();
                offset_fetch_response::OffsetFetchResponseTopic::default()
                    .with_name(TopicName(sb(t)))
                    .with_partitions(partitions)
            })
            .collect();
        return OffsetFetchResponse::default().with_topics(topics);
    }
    let groups = req
        .groups
        .into_iter()
        .map(|g| {
            let base = offset_fetch_response::OffsetFetchResponseGroup::default()
                .with_group_id(g.group_id.clone());
            if let Some(member) = &g.member_id
                && let Err(e) =
                    ctx.broker
                        .groups
                        .validate_fetch(&g.group_id.0, member, g.member_epoch)
            {
                return base.with_error_code(e.code());
            }
            let topics = g.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes))
                    .collect()
            });
            let found = lookup_offsets(ctx, &g.group_id.0, topics);
            let topics = found
                .into_iter()
                .map(|(t, parts)| {
                    let partitions = parts
                        .into_iter()
                        .map(|(p, o)| {
                            let (offset, epoch, metadata) = committed_fields(o, true);
                            offset_fetch_response::OffsetFetchResponsePartitions::default()
                                .with_partition_index(p)
                                .with_committed_offset(offset)
                                .with_committed_leader_epoch(epoch)
                                .with_metadata(metadata)
                        })
                        .collect();
                    offset_fetch_response::OffsetFetchResponseTopics::default()
                        .with_name(TopicName(sb(t)))
                        .with_partitions(partitions)
                })
                .collect();
            base.with_topics(topics)
        })
        .collect();
    OffsetFetchResponse::default().with_groups(groups)
}

pub(crate) fn list_groups(ctx: &RequestContext, req: ListGroupsRequest) -> ListGroupsResponse {
    let v = ctx.api_version;
    let states: BTreeSet<String> = req.states_filter.iter().map(|x| x.to_lowercase()).collect();
    let types: BTreeSet<String> = req.types_filter.iter().map(|x| x.to_lowercase()).collect();
    let groups = ctx
        .broker
        .groups
        .groups()
        .into_iter()
        .filter(|(_, g)| states.is_empty() || states.contains(&g.state_name().to_lowercase()))
        .filter(|(_, g)| types.is_empty() || types.contains(g.type_name()))
        .map(|(id, g)| {
            let listed = list_groups_response::ListedGroup::default()
                .with_group_id(GroupId(sb(id)))
                .with_protocol_type(sb(g.protocol_type()));
            let listed = if v >= 4 {
                listed.with_group_state(sb(g.state_name()))
            } else {
                listed
            };
            if v >= 5 {
                listed.with_group_type(sb(g.type_name()))
            } else {
                listed
            }
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

pub(crate) fn describe_groups(
    ctx: &RequestContext,
    req: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let v = ctx.api_version;
    let image = ctx.broker.image();
    let groups = req
        .groups
        .into_iter()
        .map(|id| {
            let base = describe_groups_response::DescribedGroup::default()
                .with_group_id(id.clone())
                .with_authorized_operations(if req.include_authorized_operations && v >= 3 {
                    0
                } else {
                    i32::MIN
                });
            match ctx.broker.groups.group(&id.0) {
                None => {
                    let dead = base.with_group_state(sb("Dead"));
                    if v >= 6 {
                        dead.with_error_code(ResponseError::GroupIdNotFound.code())
                            .with_error_message(Some(sb(format!("group {} not found", id.0))))
                    } else {
                        dead
                    }
                }
                Some(Group::Classic(g)) => {
                    let protocol = g.protocol.clone().unwrap_or_default();
                    let members = g
                        .members
                        .values()
                        .map(|m| {
                            let meta = m
                                .protocols
                                .iter()
                                .find(|(n, _)| *n == protocol)
                                .map(|(_, md)| md.clone())
                                .unwrap_or_default();
                            describe_groups_response::DescribedGroupMember::default()
                                .with_member_id(sb(m.id.clone()))
                                .with_group_instance_id(if v >= 4 {
                                    m.instance_id.clone().map(sb)
                                } else {
                                    None
                                })
                                .with_client_id(sb(m.client_id.clone()))
                                .with_client_host(sb(m.client_host.clone()))
                                .with_member_metadata(Bytes::from(meta))
                                .with_member_assignment(Bytes::from(m.assignment.clone()))
                        })
                        .collect();
                    base.with_group_state(sb(g.state.name()))
                        .with_protocol_type(sb(g.protocol_type.clone().unwrap_or_default()))
                        .with_protocol_data(sb(protocol))
                        .with_members(members)
                }
                Some(Group::Consumer(g)) => {
                    let members = g
                        .members
                        .values()
                        .map(|m| {
                            describe_groups_response::DescribedGroupMember::default()
                                .with_member_id(sb(m.id.clone()))
                                .with_group_instance_id(if v >= 4 {
                                    m.instance_id.clone().map(sb)
                                } else {
                                    None
                                })
                                .with_client_id(sb(m.client_id.clone()))
                                .with_client_host(sb(m.client_host.clone()))
                                .with_member_metadata(Bytes::from(encode_subscription(
                                    &m.subscribed,
                                )))
                                .with_member_assignment(Bytes::from(encode_assignment(&m.assigned)))
                        })
                        .collect();
                    let _ = &image;
                    base.with_group_state(sb(g.state()))
                        .with_protocol_type(sb("consumer"))
                        .with_protocol_data(sb(g.assignor()))
                        .with_members(members)
                }
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

/// ConsumerProtocolSubscription v0: topics, no user data.
fn encode_subscription(topics: &[String]) -> Vec<u8> {
    let mut out = vec![0, 0];
    out.extend((topics.len() as i32).to_be_bytes());
    for t in topics {
        out.extend((t.len() as i16).to_be_bytes());
        out.extend(t.as_bytes());
    }
    out.extend((-1i32).to_be_bytes());
    out
}

/// ConsumerProtocolAssignment v0: topic partitions, no user data — so tools that read
/// classic DescribeGroups (lag, `kafka-consumer-groups --describe`) see KIP-848 members too.
fn encode_assignment(a: &consumer::Assignment) -> Vec<u8> {
    let mut out = vec![0, 0];
    out.extend((a.len() as i32).to_be_bytes());
    for (t, ps) in a {
        out.extend((t.len() as i16).to_be_bytes());
        out.extend(t.as_bytes());
        out.extend((ps.len() as i32).to_be_bytes());
        for p in ps {
            out.extend(p.to_be_bytes());
        }
    }
    out.extend((-1i32).to_be_bytes());
    out
}

pub(crate) async fn delete_groups(
    ctx: &RequestContext,
    req: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(req.groups_names.len());
    for id in req.groups_names {
        let e = match ctx.broker.groups.delete_group(&ctx.broker, &id.0) {
            Ok(unflushed) => Unflushed::wait_for(unflushed, &id.0).await.err(),
            Err(e) => Some(e),
        };
        results.push(
            delete_groups_response::DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(e.map_or(0, |e| e.code())),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}

pub(crate) async fn offset_delete(
    ctx: &RequestContext,
    req: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let wanted: Vec<(String, i32)> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.name.0.to_string(), p.partition_index))
        })
        .collect();
    let result = ctx
        .broker
        .groups
        .delete_offsets(&ctx.broker, &req.group_id.0, &wanted);
    let result = match result {
        Ok((errors, unflushed)) => Unflushed::wait_for(unflushed, &req.group_id.0)
            .await
            .map(|()| errors),
        Err(e) => Err(e),
    };
    match result {
        Err(e) => OffsetDeleteResponse::default().with_error_code(e.code()),
        Ok(errors) => {
            let mut errors = errors.into_iter();
            let topics = req
                .topics
                .iter()
                .map(|t| {
                    let partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            offset_delete_response::OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(errors.next().flatten().map_or(0, |e| e.code()))
                        })
                        .collect();
                    offset_delete_response::OffsetDeleteResponseTopic::default()
                        .with_name(t.name.clone())
                        .with_partitions(partitions)
                })
                .collect();
            OffsetDeleteResponse::default().with_topics(topics)
        }
    }
}

pub(crate) async fn consumer_group_heartbeat(
    ctx: &RequestContext,
    req: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let interval = ctx.broker.groups.config.consumer_heartbeat_interval_ms;
    let fail = |e: ResponseError, m: String| {
        ConsumerGroupHeartbeatResponse::default()
            .with_error_code(e.code())
            .with_error_message(Some(sb(m)))
            .with_heartbeat_interval_ms(interval)
    };
    if req.group_id.is_empty() {
        return fail(ResponseError::InvalidRequest, "group id is empty".into());
    }
    if let Some(a) = &req.server_assignor
        && !consumer::ASSIGNORS.contains(&a.as_str())
    {
        return fail(
            ResponseError::UnsupportedAssignor,
            format!("assignor {a} is not supported; use uniform or range"),
        );
    }
    let image = ctx.broker.image();
    let owned = req.topic_partitions.as_ref().map(|tps| {
        let mut a = consumer::Assignment::new();
        for tp in tps {
            if let Some(t) = image.topic_by_id(&tp.topic_id) {
                a.entry(t.name.clone())
                    .or_default()
                    .extend(tp.partitions.iter().copied());
            }
        }
        a
    });
    let hb = consumer::Heartbeat {
        member_id: s(&req.member_id),
        member_epoch: req.member_epoch,
        instance_id: opt(&req.instance_id),
        rack_id: opt(&req.rack_id),
        client_id: opt(&ctx.header.client_id).unwrap_or_default(),
        client_host: ctx.client_host.to_string(),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed: req
            .subscribed_topic_names
            .as_ref()
            .map(|ts| ts.iter().map(|t| t.0.to_string()).collect()),
        regex: opt(&req.subscribed_topic_regex),
        assignor: opt(&req.server_assignor),
        owned,
        new_member_id: String::new(),
    };
    let result = ctx
        .broker
        .groups
        .consumer_heartbeat(&ctx.broker, now_ms(), &req.group_id.0, hb);
    let result = match result {
        Ok((r, unflushed)) => Unflushed::wait_for(unflushed, &req.group_id.0)
            .await
            .map(|()| r)
            .map_err(|e| (e, "the group's state could not be made durable".to_string())),
        Err(e) => Err(e),
    };
    match result {
        Err((e, m)) => fail(e, m),
        Ok(r) => {
            let assignment = r.assignment.map(|a| {
                let topic_partitions = a
                    .into_iter()
                    .filter_map(|(t, ps)| {
                        image.topic(&t).map(|ti| {
                            consumer_group_heartbeat_response::TopicPartitions::default()
                                .with_topic_id(ti.id)
                                .with_partitions(ps.into_iter().collect())
                        })
                    })
                    .collect();
                consumer_group_heartbeat_response::Assignment::default()
                    .with_topic_partitions(topic_partitions)
            });
            ConsumerGroupHeartbeatResponse::default()
                .with_member_id(Some(sb(r.member_id)))
                .with_member_epoch(r.member_epoch)
                .with_heartbeat_interval_ms(interval)
                .with_assignment(assignment)
        }
    }
}

pub(crate) fn consumer_group_describe(
    ctx: &RequestContext,
    req: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let image = ctx.broker.image();
    let to_wire = |a: &consumer::Assignment| {
        let topic_partitions = a
            .iter()
            .filter_map(|(t, ps)| {
                image.topic(t).map(|ti| {
                    consumer_group_describe_response::TopicPartitions::default()
                        .with_topic_id(ti.id)
                        .with_topic_name(TopicName(sb(t.clone())))
                        .with_partitions(ps.iter().copied().collect())
                })
            })
            .collect();
        consumer_group_describe_response::Assignment::default()
            .with_topic_partitions(topic_partitions)
    };
    let groups = req
        .group_ids
        .into_iter()
        .map(|id| {
            let base = consumer_group_describe_response::DescribedGroup::default()
                .with_group_id(id.clone())
                .with_authorized_operations(if req.include_authorized_operations {
                    0
                } else {
                    i32::MIN
                });
            match ctx.broker.groups.group(&id.0) {
                Some(Group::Consumer(g)) => {
                    let members = g
                        .members
                        .values()
                        .map(|m| {
                            let target = g.target.get(&m.id).cloned().unwrap_or_default();
                            consumer_group_describe_response::Member::default()
                                .with_member_id(sb(m.id.clone()))
                                .with_instance_id(m.instance_id.clone().map(sb))
                                .with_rack_id(m.rack_id.clone().map(sb))
                                .with_member_epoch(m.epoch)
                                .with_client_id(sb(m.client_id.clone()))
                                .with_client_host(sb(m.client_host.clone()))
                                .with_subscribed_topic_names(
                                    m.subscribed
                                        .iter()
                                        .map(|t| TopicName(sb(t.clone())))
                                        .collect(),
                                )
                                .with_subscribed_topic_regex(m.regex.clone().map(sb))
                                .with_assignment(to_wire(&m.assigned))
                                .with_target_assignment(to_wire(&target))
                                .with_member_type(if ctx.api_version >= 1 { 1 } else { -1 })
                        })
                        .collect();
                    base.with_group_state(sb(g.state()))
                        .with_group_epoch(g.epoch)
                        .with_assignment_epoch(g.assignment_epoch)
                        .with_assignor_name(sb(g.assignor()))
                        .with_members(members)
                }
                Some(Group::Classic(_)) => base
                    .with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(sb(format!(
                        "group {} is not a consumer group",
                        id.0
                    )))),
                None => base
                    .with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(sb(format!("group {} not found", id.0)))),
            }
        })
        .collect();
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}
