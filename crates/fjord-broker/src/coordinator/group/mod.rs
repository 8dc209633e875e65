//! The group coordinator: runs the group state machines ([`classic`], [`consumer`]), keeps
//! committed offsets, and persists both in the internal topic `__consumer_offsets`.
//!
//! How a request flows: a handler calls into [`GroupCoordinator`], which takes its lock, feeds
//! the request to the group's engine at the current time, executes the returned effects
//! (answering parked requests through one-shot channels, appending snapshots and offsets to
//! `__consumer_offsets`), releases the lock and, for JoinGroup/SyncGroup, awaits its answer.
//! A ticker calls [`GroupCoordinator::tick`] every 100 ms so sessions and rebalance timeouts
//! expire without a request.
//!
//! Storage: group `g` lives in partition `abs(javaHash(g)) % offsets.topic.num.partitions`,
//! as Kafka places it. Records are keyed JSON: `{"k":"offset","group","topic","partition"}`
//! with the committed offset as value, and `{"k":"group","group"}` with the group's snapshot;
//! a null value deletes. The latest record per key wins on replay at start-up.

pub mod classic;
pub mod consumer;
pub mod consumer_protocol;
mod store;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use kafka_protocol::error::ResponseError;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

pub use classic::{ClassicConfig, ClassicGroup};
pub use consumer::ConsumerGroup;
pub use store::{OFFSETS_TOPIC, Unflushed};

use crate::broker::Broker;

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedOffset {
    /// The offset (the next record to read).
    pub offset: i64,
    /// Leader epoch of the record before it, -1 if unknown.
    pub leader_epoch: i32,
    /// Client metadata string.
    pub metadata: Option<String>,
    /// When it was committed.
    pub commit_timestamp_ms: i64,
}

/// A group of either protocol.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Group {
    /// JoinGroup/SyncGroup protocol.
    Classic(ClassicGroup),
    /// KIP-848 protocol.
    Consumer(ConsumerGroup),
}

impl Group {
    /// Kafka's state name.
    pub fn state_name(&self) -> &'static str {
        match self {
            Group::Classic(g) => g.state.name(),
            Group::Consumer(g) => g.state(),
        }
    }

    /// Whether the group has no members.
    pub fn is_empty(&self) -> bool {
        match self {
            Group::Classic(g) => g.is_empty(),
            Group::Consumer(g) => g.members.is_empty(),
        }
    }

    /// `classic` or `consumer` (ListGroups group type, KIP-848).
    pub fn type_name(&self) -> &'static str {
        match self {
            Group::Classic(_) => "classic",
            Group::Consumer(_) => "consumer",
        }
    }

    /// Protocol type as ListGroups reports it.
    pub fn protocol_type(&self) -> String {
        match self {
            Group::Classic(g) => g.protocol_type.clone().unwrap_or_default(),
            Group::Consumer(_) => "consumer".to_string(),
        }
    }
}

/// Settings of the coordinator.
#[derive(Debug, Clone, Copy)]
pub struct CoordinatorConfig {
    /// Classic protocol timing.
    pub classic: ClassicConfig,
    /// `offsets.topic.num.partitions`.
    pub offsets_partitions: i32,
    /// `offsets.retention.minutes` in ms.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`.
    pub offsets_retention_check_interval_ms: i64,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: usize,
    /// `group.consumer.session.timeout.ms`.
    pub consumer_session_timeout_ms: i64,
    /// `group.consumer.heartbeat.interval.ms`.
    pub consumer_heartbeat_interval_ms: i32,
}

/// An answer delivered to a parked request.
#[derive(Debug)]
pub enum Answer {
    /// JoinGroup.
    Join(classic::JoinResult),
    /// SyncGroup.
    Sync(classic::SyncResult),
}

#[derive(Default)]
struct State {
    groups: BTreeMap<String, Group>,
    offsets: BTreeMap<String, BTreeMap<(String, i32), CommittedOffset>>,
    /// Parked requests, answered with the group write their answer must wait for, if any.
    waiting: HashMap<u64, oneshot::Sender<(Answer, Option<Unflushed>)>>,
    next_token: u64,
    next_member: u64,
    /// When committed offsets were last checked for expiry (0: not yet).
    offsets_checked_ms: i64,
}

/// The group coordinator of this broker (every group: a single node leads every partition
/// of `__consumer_offsets`).
pub struct GroupCoordinator {
    /// Settings.
    pub config: CoordinatorConfig,
    state: Mutex<State>,
}

/// Who sends a SyncGroup or OffsetCommit.
#[derive(Debug, Clone, Copy)]
pub struct MemberRef<'a> {
    /// Group id.
    pub group_id: &'a str,
    /// Member id (empty for a simple commit).
    pub member_id: &'a str,
    /// Static membership.
    pub instance_id: Option<&'a str>,
    /// Generation (classic) or member epoch (KIP-848); -1 for a simple commit.
    pub generation: i32,
}

/// A classic JoinGroup as the handler decoded it.
pub struct JoinRequest {
    /// Group id.
    pub group_id: String,
    /// The join itself; `token` and `new_member_id` are filled in by the coordinator.
    pub join: classic::Join,
}

impl GroupCoordinator {
    /// A coordinator with no groups; [`GroupCoordinator::load`] replays the stored state.
    pub fn new(config: CoordinatorConfig) -> Self {
        GroupCoordinator {
            config,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replays `__consumer_offsets` into memory.
    pub fn load(&self, broker: &Broker, now: i64) {
        let (groups, offsets) = store::replay(broker, self.config.offsets_partitions);
        let mut st = self.lock();
        st.groups = groups;
        for g in st.groups.values_mut() {
            match g {
                Group::Classic(c) => c.loaded(now),
                Group::Consumer(c) => c.loaded(now),
            }
        }
        st.offsets = offsets;
        tracing::info!(groups = st.groups.len(), "group coordinator loaded");
    }

    fn new_member_id(st: &mut State, client_id: &str) -> String {
        st.next_member += 1;
        let prefix = if client_id.is_empty() {
            "member"
        } else {
            client_id
        };
        format!("{prefix}-{}", uuid::Uuid::new_v4())
    }

    /// Handles a classic JoinGroup; waits until the rebalance answers it.
    pub async fn join(
        &self,
        broker: &Broker,
        now: i64,
        mut req: JoinRequest,
    ) -> classic::JoinResult {
        let rx = {
            let mut st = self.lock();
            let fallback = classic::JoinResult {
                error: Some(ResponseError::InconsistentGroupProtocol),
                generation: -1,
                protocol_type: None,
                protocol_name: None,
                leader: String::new(),
                member_id: req.join.member_id.clone(),
                members: Vec::new(),
            };
            let group = st
                .groups
                .entry(req.group_id.clone())
                .or_insert_with(|| Group::Classic(ClassicGroup::new(&req.group_id)));
            if matches!(group, Group::Consumer(c) if !c.members.is_empty()) {
                return fallback;
            }
            if matches!(group, Group::Consumer(_)) {
                *group = Group::Classic(ClassicGroup::new(&req.group_id));
            }
            st.next_token += 1;
            let token = st.next_token;
            req.join.token = token;
            req.join.new_member_id = Self::new_member_id(&mut st, &req.join.client_id);
            let (tx, rx) = oneshot::channel();
            st.waiting.insert(token, tx);
            let effects = match st.groups.get_mut(&req.group_id) {
                Some(Group::Classic(g)) => g.join(now, &self.config.classic, req.join),
                _ => Vec::new(),
            };
            // Every answer, this one's through `rx` too, carries the write it waits for.
            let _ = self.execute(broker, &mut st, &req.group_id, effects);
            rx
        };
        match rx.await {
            Ok((Answer::Join(r), unflushed)) => {
                match Unflushed::wait_for(unflushed, &req.group_id).await {
                    Ok(()) => r,
                    Err(e) => classic::JoinResult {
                        error: Some(e),
                        generation: -1,
                        protocol_type: None,
                        protocol_name: None,
                        leader: String::new(),
                        member_id: r.member_id,
                        members: Vec::new(),
                    },
                }
            }
            _ => classic::JoinResult {
                error: Some(ResponseError::RebalanceInProgress),
                generation: -1,
                protocol_type: None,
                protocol_name: None,
                leader: String::new(),
                member_id: String::new(),
                members: Vec::new(),
            },
        }
    }

    /// Handles a classic SyncGroup; a follower waits for the leader's assignment.
    pub async fn sync(
        &self,
        broker: &Broker,
        now: i64,
        who: MemberRef<'_>,
        assignments: Vec<(String, Vec<u8>)>,
    ) -> classic::SyncResult {
        let MemberRef {
            group_id,
            member_id,
            instance_id,
            generation,
        } = who;
        let error = |e| classic::SyncResult {
            error: Some(e),
            protocol_type: None,
            protocol_name: None,
            assignment: Vec::new(),
        };
        let rx = {
            let mut st = self.lock();
            st.next_token += 1;
            let token = st.next_token;
            let effects = match st.groups.get_mut(group_id) {
                Some(Group::Classic(g)) => {
                    g.sync(now, token, member_id, instance_id, generation, assignments)
                }
                _ => return error(ResponseError::UnknownMemberId),
            };
            let (tx, rx) = oneshot::channel();
            st.waiting.insert(token, tx);
            let _ = self.execute(broker, &mut st, group_id, effects);
            rx
        };
        match rx.await {
            Ok((Answer::Sync(r), unflushed)) => {
                match Unflushed::wait_for(unflushed, group_id).await {
                    Ok(()) => r,
                    Err(e) => error(e),
                }
            }
            _ => error(ResponseError::RebalanceInProgress),
        }
    }

    /// Handles a classic Heartbeat.
    pub fn heartbeat(
        &self,
        now: i64,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Option<ResponseError> {
        let mut st = self.lock();
        match st.groups.get_mut(group_id) {
            Some(Group::Classic(g)) => g.heartbeat(now, member_id, instance_id, generation),
            _ => Some(ResponseError::UnknownMemberId),
        }
    }

    /// Handles LeaveGroup; per-member errors, or a group-level error. The answer waits for the
    /// group write, if any ([`Unflushed::wait_for`]).
    pub fn leave(
        &self,
        broker: &Broker,
        now: i64,
        group_id: &str,
        leavers: &[(String, Option<String>)],
    ) -> Result<(Vec<Option<ResponseError>>, Option<Unflushed>), ResponseError> {
        let mut st = self.lock();
        let (errors, effects) = match st.groups.get_mut(group_id) {
            Some(Group::Classic(g)) => g.leave(now, &self.config.classic, leavers),
            _ => return Err(ResponseError::UnknownMemberId),
        };
        let unflushed = self.execute(broker, &mut st, group_id, effects);
        Ok((errors, unflushed))
    }

    /// Handles a ConsumerGroupHeartbeat (KIP-848). The answer waits for the group write, if
    /// any ([`Unflushed::wait_for`]).
    pub fn consumer_heartbeat(
        &self,
        broker: &Broker,
        now: i64,
        group_id: &str,
        mut hb: consumer::Heartbeat,
    ) -> Result<(consumer::HeartbeatResult, Option<Unflushed>), (ResponseError, String)> {
        let image = broker.image();
        let topics: BTreeMap<String, i32> = image
            .topics()
            .map(|t| (t.name.clone(), t.partitions))
            .collect();
        let mut st = self.lock();
        hb.new_member_id = uuid::Uuid::new_v4().to_string();
        let group = st
            .groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::Consumer(ConsumerGroup::new(group_id)));
        if let Group::Classic(c) = group {
            if !c.is_empty() {
                return Err((
                    ResponseError::GroupIdNotFound,
                    format!("group {group_id} is a classic group with members"),
                ));
            }
            *group = Group::Consumer(ConsumerGroup::new(group_id));
        }
        let Group::Consumer(g) = group else {
            return Err((ResponseError::UnknownServerError, String::new()));
        };
        let before = (g.epoch, g.members.len());
        let result = g.heartbeat(now, hb, &topics);
        let after = (g.epoch, g.members.len());
        let mut unflushed = None;
        if before != after || result.as_ref().is_ok_and(|r| r.assignment.is_some()) {
            unflushed = self.execute(broker, &mut st, group_id, vec![classic::Effect::Persist]);
        }
        result.map(|r| (r, unflushed))
    }

    /// Validates and stores an OffsetCommit. Returns a group-level error, or per-partition
    /// results in request order and, under a flush policy, the write the answer must wait for
    /// ([`Unflushed::wait`], with no lock held).
    pub fn commit(
        &self,
        broker: &Broker,
        now: i64,
        who: MemberRef<'_>,
        offsets: Vec<((String, i32), CommittedOffset)>,
    ) -> Result<(Vec<Option<ResponseError>>, Option<Unflushed>), ResponseError> {
        let MemberRef {
            group_id,
            member_id,
            instance_id,
            generation,
        } = who;
        let mut st = self.lock();
        match st.groups.get(group_id) {
            Some(Group::Classic(g)) => g.validate_commit(member_id, instance_id, generation)?,
            Some(Group::Consumer(g)) => g.validate_member_epoch(member_id, generation)?,
            None if generation >= 0 || !member_id.is_empty() => {
                return Err(ResponseError::IllegalGeneration);
            }
            None => {}
        }
        let image = broker.image();
        let mut results = Vec::with_capacity(offsets.len());
        let mut accepted = Vec::new();
        for ((topic, partition), off) in offsets {
            let exists = image
                .topic(&topic)
                .is_some_and(|t| partition >= 0 && partition < t.partitions);
            if !exists {
                results.push(Some(ResponseError::UnknownTopicOrPartition));
            } else if off
                .metadata
                .as_ref()
                .is_some_and(|m| m.len() > self.config.offset_metadata_max_bytes)
            {
                results.push(Some(ResponseError::OffsetMetadataTooLarge));
            } else {
                results.push(None);
                accepted.push(((topic, partition), off));
            }
        }
        let mut unflushed = None;
        if !accepted.is_empty() {
            unflushed = store::write_offsets(
                broker,
                self.config.offsets_partitions,
                group_id,
                &accepted,
                now,
            )
            .map_err(|e| {
                tracing::error!(group = group_id, error = %e, "offset commit write failed");
                ResponseError::CoordinatorNotAvailable
            })?;
            if !st.groups.contains_key(group_id) {
                // A commit without membership creates an empty ("simple") group, as in Kafka.
                let g = Group::Classic(ClassicGroup::new(group_id));
                st.groups.insert(group_id.to_string(), g);
            }
            let entry = st.offsets.entry(group_id.to_string()).or_default();
            for (k, v) in accepted {
                entry.insert(k, v);
            }
        }
        Ok((results, unflushed))
    }

    /// Committed offsets of a group (all of them when `partitions` is None).
    pub fn fetch_offsets(&self, group_id: &str) -> BTreeMap<(String, i32), CommittedOffset> {
        self.lock()
            .offsets
            .get(group_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Validates an OffsetFetch v9 member epoch.
    pub fn validate_fetch(
        &self,
        group_id: &str,
        member_id: &str,
        epoch: i32,
    ) -> Result<(), ResponseError> {
        match self.lock().groups.get(group_id) {
            Some(Group::Consumer(g)) => g.validate_member_epoch(member_id, epoch),
            _ => Ok(()),
        }
    }

    /// Returns (group id, snapshot) of every group.
    pub fn groups(&self) -> Vec<(String, Group)> {
        self.lock()
            .groups
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Returns one group.
    pub fn group(&self, group_id: &str) -> Option<Group> {
        self.lock().groups.get(group_id).cloned()
    }

    /// Deletes an empty group with its offsets. The answer waits for the tombstones, if asked
    /// ([`Unflushed::wait_for`]).
    pub fn delete_group(
        &self,
        broker: &Broker,
        group_id: &str,
    ) -> Result<Option<Unflushed>, ResponseError> {
        let mut st = self.lock();
        let Some(g) = st.groups.get(group_id) else {
            return Err(ResponseError::GroupIdNotFound);
        };
        if !g.is_empty() {
            return Err(ResponseError::NonEmptyGroup);
        }
        let keys: Vec<(String, i32)> = st
            .offsets
            .get(group_id)
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        let unflushed = store::write_tombstones(
            broker,
            self.config.offsets_partitions,
            group_id,
            &keys,
            true,
        )
        .map_err(|_| ResponseError::CoordinatorNotAvailable)?;
        st.groups.remove(group_id);
        st.offsets.remove(group_id);
        Ok(unflushed)
    }

    /// OffsetDelete: removes offsets of topics the group is not subscribed to. The answer waits
    /// for the tombstones, if asked ([`Unflushed::wait_for`]).
    pub fn delete_offsets(
        &self,
        broker: &Broker,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<(Vec<Option<ResponseError>>, Option<Unflushed>), ResponseError> {
        let mut st = self.lock();
        let image = broker.image();
        let all_topics: BTreeMap<String, i32> = image
            .topics()
            .map(|t| (t.name.clone(), t.partitions))
            .collect();
        let subscribed = match st.groups.get(group_id) {
            None => return Err(ResponseError::GroupIdNotFound),
            Some(Group::Classic(g)) => g.subscribed_topics(),
            Some(Group::Consumer(g)) => g.subscribed_topics(&all_topics),
        };
        let mut results = Vec::new();
        let mut delete = Vec::new();
        for (t, p) in partitions {
            if subscribed.contains(t) {
                results.push(Some(ResponseError::GroupSubscribedToTopic));
            } else if !all_topics.contains_key(t) {
                results.push(Some(ResponseError::UnknownTopicOrPartition));
            } else {
                results.push(None);
                delete.push((t.clone(), *p));
            }
        }
        let unflushed = store::write_tombstones(
            broker,
            self.config.offsets_partitions,
            group_id,
            &delete,
            false,
        )
        .map_err(|_| ResponseError::CoordinatorNotAvailable)?;
        if let Some(o) = st.offsets.get_mut(group_id) {
            for k in &delete {
                o.remove(k);
            }
        }
        Ok((results, unflushed))
    }

    /// Expires sessions, ends rebalance waits, and (every
    /// `offsets.retention.check.interval.ms`) drops offsets of empty groups older than
    /// `offsets.retention.minutes`.
    pub fn tick(&self, broker: &Broker, now: i64) {
        let mut st = self.lock();
        // Groups are independent, so every group ticks first and only those with something
        // to do are named (10 times a second, a copy of every group id was a cost of its own
        // with many idle groups).
        let mut due = Vec::new();
        for (id, group) in st.groups.iter_mut() {
            let effects = match group {
                Group::Classic(g) => g.tick(now, &self.config.classic),
                Group::Consumer(g) => {
                    if g.tick(now, self.config.consumer_session_timeout_ms) {
                        vec![classic::Effect::Persist]
                    } else {
                        Vec::new()
                    }
                }
            };
            if !effects.is_empty() {
                due.push((id.clone(), effects));
            }
        }
        for (id, effects) in due {
            // Nothing is acknowledged here: the next flush covers the write.
            let _ = self.execute(broker, &mut st, &id, effects);
        }
        // Every `offsets.retention.check.interval.ms`, as Kafka does: the check walks every
        // committed offset of every empty group under the coordinator's lock.
        if now - st.offsets_checked_ms >= self.config.offsets_retention_check_interval_ms {
            st.offsets_checked_ms = now;
            self.expire_offsets(broker, &mut st, now);
        }
    }

    fn expire_offsets(&self, broker: &Broker, st: &mut State, now: i64) {
        let retention = self.config.offsets_retention_ms;
        let mut expired: Vec<(String, Vec<(String, i32)>)> = Vec::new();
        for (group, offsets) in &st.offsets {
            if st.groups.get(group).is_some_and(|g| !g.is_empty()) {
                continue;
            }
            let old: Vec<(String, i32)> = offsets
                .iter()
                .filter(|(_, o)| now - o.commit_timestamp_ms > retention)
                .map(|(k, _)| k.clone())
                .collect();
            if !old.is_empty() {
                expired.push((group.clone(), old));
            }
        }
        for (group, keys) in expired {
            // Expiry acknowledges nothing: the next flush covers the tombstones.
            if store::write_tombstones(broker, self.config.offsets_partitions, &group, &keys, false)
                .is_err()
            {
                continue;
            }
            tracing::info!(%group, partitions = keys.len(), "expired committed offsets of an empty group");
            if let Some(o) = st.offsets.get_mut(&group) {
                for k in &keys {
                    o.remove(k);
                }
                if o.is_empty() {
                    st.offsets.remove(&group);
                    if st.groups.get(&group).is_some_and(Group::is_empty) {
                        let _ = store::write_tombstones(
                            broker,
                            self.config.offsets_partitions,
                            &group,
                            &[],
                            true,
                        );
                        st.groups.remove(&group);
                    }
                }
            }
        }
    }

    /// Carries out a state machine's effects. The group snapshot (`Persist`) is written first,
    /// so that every answer sent here carries the write it must wait for under a flush policy
    /// (the receiver waits, with no lock held); the snapshot is of the group as it is now,
    /// whatever the effect's place in the list. Returns that write for the caller's own answer.
    fn execute(
        &self,
        broker: &Broker,
        st: &mut State,
        group_id: &str,
        effects: Vec<classic::Effect>,
    ) -> Option<Unflushed> {
        let mut unflushed = None;
        if effects.contains(&classic::Effect::Persist)
            && let Some(g) = st.groups.get(group_id)
        {
            match store::write_group(broker, self.config.offsets_partitions, group_id, g) {
                Ok(u) => unflushed = u,
                Err(e) => {
                    tracing::error!(group = group_id, error = %e, "persisting group failed");
                }
            }
        }
        for e in effects {
            let (token, answer) = match e {
                classic::Effect::Join { token, result } => (token, Answer::Join(result)),
                classic::Effect::Sync { token, result } => (token, Answer::Sync(result)),
                classic::Effect::Persist => continue,
            };
            if let Some(tx) = st.waiting.remove(&token) {
                let _ = tx.send((answer, unflushed.clone()));
            }
        }
        unflushed
    }
}

/// Kafka's placement of a group: `abs(String.hashCode()) % partitions`.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in group_id.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    // Kafka's Utils.abs maps i32::MIN to 0.
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A broker keeping offsets of empty groups for a minute, checking every `check_ms`.
    fn broker(dir: &std::path::Path, check_ms: i64) -> std::sync::Arc<Broker> {
        Broker::open_for_test(
            dir,
            &[
                "offsets.topic.num.partitions=3",
                "offsets.retention.minutes=1",
                &format!("offsets.retention.check.interval.ms={check_ms}"),
            ],
        )
    }

    /// Commits offset 5 of `t`-0 for group `g` at `at_ms` from outside the group (a simple
    /// commit: no member, generation -1); returns the offset as stored.
    fn commit_outside_group(b: &Broker, at_ms: i64) -> CommittedOffset {
        let who = MemberRef {
            group_id: "g",
            member_id: "",
            instance_id: None,
            generation: -1,
        };
        let off = CommittedOffset {
            offset: 5,
            leader_epoch: -1,
            metadata: Some("m".into()),
            commit_timestamp_ms: at_ms,
        };
        let r = b
            .groups
            .commit(b, at_ms, who, vec![(("t".into(), 0), off.clone())])
            .unwrap();
        assert_eq!(r.0, vec![None]);
        assert!(r.1.is_none(), "nothing to wait for without a flush policy");
        off
    }

    #[tokio::test]
    async fn offsets_of_empty_groups_expire_and_stay_expired_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        let b = broker(dir.path(), 1_000);
        b.create_test_topic("t", 1, Default::default()).await;
        let off = commit_outside_group(&b, 1_000);
        assert_eq!(
            b.groups.fetch_offsets("g").get(&("t".to_string(), 0)),
            Some(&off)
        );
        // Within offsets.retention.minutes nothing happens; after it the offsets go.
        b.groups.tick(&b, 1_000 + 59_000);
        assert_eq!(b.groups.fetch_offsets("g").len(), 1);
        b.groups.tick(&b, 1_000 + 61_000);
        assert!(b.groups.fetch_offsets("g").is_empty());
        assert!(
            b.groups.group("g").is_none(),
            "the empty group goes with its last offsets"
        );
        b.close();
        drop(b);
        let b = broker(dir.path(), 1_000);
        assert!(b.groups.fetch_offsets("g").is_empty(), "tombstones replay");
        // A commit from a member that is not in the group is refused.
        let who = MemberRef {
            group_id: "g2",
            member_id: "m",
            instance_id: None,
            generation: 3,
        };
        assert_eq!(
            b.groups.commit(&b, 1, who, vec![]).unwrap_err(),
            ResponseError::IllegalGeneration
        );
    }

    /// Expired offsets wait for the next check, `offsets.retention.check.interval.ms` after
    /// the last one (Kafka's default: 10 minutes), instead of being looked for at every tick:
    /// the check walks every committed offset of every empty group under the coordinator's
    /// lock.
    #[tokio::test]
    async fn offsets_expire_at_the_next_retention_check() {
        let dir = tempfile::tempdir().unwrap();
        let b = broker(dir.path(), 600_000);
        b.create_test_topic("t", 1, Default::default()).await;
        commit_outside_group(&b, 1_000_000);
        // The first tick checks (nothing is old yet); the next check is due 600 s later.
        b.groups.tick(&b, 1_000_000);
        assert_eq!(b.groups.fetch_offsets("g").len(), 1);
        // Past the retention but before the next check: kept.
        b.groups.tick(&b, 1_000_000 + 120_000);
        b.groups.tick(&b, 1_000_000 + 599_999);
        assert_eq!(b.groups.fetch_offsets("g").len(), 1);
        // The check: gone.
        b.groups.tick(&b, 1_000_000 + 600_000);
        assert!(b.groups.fetch_offsets("g").is_empty());
    }

    #[test]
    fn placement_matches_java_string_hash() {
        // "test".hashCode() == 3556498
        assert_eq!(super::partition_for("test", 50), 3556498 % 50);
        assert_eq!(super::partition_for("", 50), 0);
    }
}
