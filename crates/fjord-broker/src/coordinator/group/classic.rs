//! The classic consumer-group protocol (JoinGroup / SyncGroup / Heartbeat / LeaveGroup) as a
//! pure state machine: no I/O, time passed in as milliseconds.
//!
//! States follow Kafka: `Empty` -> `PreparingRebalance` (collecting joins) ->
//! `CompletingRebalance` (waiting for the leader's SyncGroup) -> `Stable`. Requests that must
//! wait (a JoinGroup until the rebalance completes, a follower's SyncGroup until the leader's
//! arrives) carry a `token`; their answers come back as [`Effect`]s with that token, either
//! at once or from a later input. [`Effect::Persist`] asks the runtime to write the group's
//! snapshot to `__consumer_offsets`.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError;
use serde::{Deserialize, Serialize};

/// Coordinator settings that shape the protocol.
#[derive(Debug, Clone, Copy)]
pub struct ClassicConfig {
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`: how long an empty group's first rebalance waits
    /// for more members.
    pub initial_rebalance_delay_ms: i32,
}

/// Group state, with Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    /// No members.
    Empty,
    /// Collecting JoinGroups.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Assignment distributed.
    Stable,
}

impl State {
    /// Kafka's state name (DescribeGroups, ListGroups).
    pub fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
        }
    }
}

/// A group member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Member id given by the coordinator.
    pub id: String,
    /// `group.instance.id` of a static member (KIP-345).
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Supported protocols, in preference order, with their metadata.
    pub protocols: Vec<(String, Vec<u8>)>,
    /// The assignment from the last SyncGroup.
    pub assignment: Vec<u8>,
    #[serde(skip)]
    join_token: Option<u64>,
    #[serde(skip)]
    sync_token: Option<u64>,
    #[serde(skip)]
    last_seen_ms: i64,
}

/// A JoinGroup request.
#[derive(Debug, Clone)]
pub struct Join {
    /// Correlates the answer.
    pub token: u64,
    /// Empty for a new member.
    pub member_id: String,
    /// Static membership.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Protocol type, `consumer` for consumers.
    pub protocol_type: String,
    /// (name, metadata) in preference order.
    pub protocols: Vec<(String, Vec<u8>)>,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// v4+: a new member first gets MEMBER_ID_REQUIRED (KIP-394).
    pub require_known_member_id: bool,
    /// The member id to hand out if one is needed (the runtime makes it unique).
    pub new_member_id: String,
}

/// The answer to a JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    /// Error, if any.
    pub error: Option<ResponseError>,
    /// Generation.
    pub generation: i32,
    /// Protocol type.
    pub protocol_type: Option<String>,
    /// Chosen protocol.
    pub protocol_name: Option<String>,
    /// Leader member id.
    pub leader: String,
    /// The member's id.
    pub member_id: String,
    /// For the leader: every member's (id, instance id, metadata for the chosen protocol).
    pub members: Vec<(String, Option<String>, Vec<u8>)>,
}

/// The answer to a SyncGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    /// Error, if any.
    pub error: Option<ResponseError>,
    /// Protocol type.
    pub protocol_type: Option<String>,
    /// Chosen protocol.
    pub protocol_name: Option<String>,
    /// The member's assignment.
    pub assignment: Vec<u8>,
}

/// What the runtime must do after an input, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Answer the JoinGroup with this token.
    Join {
        /// Request token.
        token: u64,
        /// The answer.
        result: JoinResult,
    },
    /// Answer the SyncGroup with this token.
    Sync {
        /// Request token.
        token: u64,
        /// The answer.
        result: SyncResult,
    },
    /// Write the group's snapshot.
    Persist,
}

/// One classic group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassicGroup {
    /// Group id.
    pub id: String,
    /// State.
    pub state: State,
    /// Generation.
    pub generation: i32,
    /// Protocol type of the members.
    pub protocol_type: Option<String>,
    /// Chosen protocol.
    pub protocol: Option<String>,
    /// Leader member id.
    pub leader: Option<String>,
    /// Members by id.
    pub members: BTreeMap<String, Member>,
    #[serde(skip)]
    pending: BTreeMap<String, i64>,
    #[serde(skip)]
    rebalance_deadline_ms: Option<i64>,
    #[serde(skip)]
    initial_delay_until_ms: Option<i64>,
}

fn err<T>(e: ResponseError) -> Result<T, ResponseError> {
    Err(e)
}

impl ClassicGroup {
    /// A new, empty group.
    pub fn new(id: &str) -> Self {
        ClassicGroup {
            id: id.to_string(),
            state: State::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending: BTreeMap::new(),
            rebalance_deadline_ms: None,
            initial_delay_until_ms: None,
        }
    }

    /// Restarts heartbeat clocks after the group was loaded from `__consumer_offsets`:
    /// members get a full session to come back.
    pub fn loaded(&mut self, now_ms: i64) {
        for m in self.members.values_mut() {
            m.last_seen_ms = now_ms;
        }
        if self.state == State::PreparingRebalance || self.state == State::CompletingRebalance {
            // Nobody is waiting on a restarted broker; restart the rebalance.
            self.state = if self.members.is_empty() {
                State::Empty
            } else {
                State::Stable
            };
        }
    }

    /// Whether the group has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    fn static_member(&self, instance_id: &str) -> Option<&Member> {
        self.members
            .values()
            .find(|m| m.instance_id.as_deref() == Some(instance_id))
    }

    /// Checks a member's identity: unknown ids and static members whose id is stale.
    fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ResponseError> {
        if let Some(iid) = instance_id
            && let Some(m) = self.static_member(iid)
            && m.id != member_id
        {
            return err(ResponseError::FencedInstanceId);
        }
        if !self.members.contains_key(member_id) {
            return err(ResponseError::UnknownMemberId);
        }
        Ok(())
    }

    /// Handles a JoinGroup.
    pub fn join(&mut self, now: i64, cfg: &ClassicConfig, j: Join) -> Vec<Effect> {
        let fail = |e: ResponseError, member_id: &str| {
            vec![Effect::Join {
                token: j.token,
                result: join_error(e, member_id),
            }]
        };
        if j.session_timeout_ms < cfg.min_session_timeout_ms
            || j.session_timeout_ms > cfg.max_session_timeout_ms
        {
            return fail(ResponseError::InvalidSessionTimeout, &j.member_id);
        }
        if j.protocols.is_empty()
            || (!self.members.is_empty()
                && (self.protocol_type.as_deref() != Some(j.protocol_type.as_str())
                    || !self.supports_any(&j.protocols)))
        {
            return fail(ResponseError::InconsistentGroupProtocol, &j.member_id);
        }
        if j.member_id.is_empty() {
            return self.join_new_member(now, cfg, j);
        }
        if let Some(iid) = &j.instance_id
            && let Some(m) = self.static_member(iid)
            && m.id != j.member_id
        {
            return fail(ResponseError::FencedInstanceId, &j.member_id);
        }
        if self.pending.remove(&j.member_id).is_some() {
            let id = j.member_id.clone();
            return self.add_member(now, cfg, id, j);
        }
        let Some(member) = self.members.get_mut(&j.member_id) else {
            return fail(ResponseError::UnknownMemberId, &j.member_id);
        };
        let changed = member.protocols != j.protocols;
        member.protocols = j.protocols.clone();
        member.session_timeout_ms = j.session_timeout_ms;
        member.rebalance_timeout_ms = j.rebalance_timeout_ms;
        member.client_id = j.client_id.clone();
        member.last_seen_ms = now;
        member.join_token = Some(j.token);
        let is_leader = self.leader.as_deref() == Some(j.member_id.as_str());
        match self.state {
            State::PreparingRebalance => self.maybe_complete_join(now),
            State::CompletingRebalance | State::Stable
                if !(changed || (self.state == State::Stable && is_leader)) =>
            {
                // Nothing changed: answer with the current generation without a rebalance.
                if let Some(m) = self.members.get_mut(&j.member_id) {
                    m.join_token = None;
                }
                vec![Effect::Join {
                    token: j.token,
                    result: self.join_result(&j.member_id),
                }]
            }
            _ => self.prepare_rebalance(now, cfg),
        }
    }

    fn join_new_member(&mut self, now: i64, cfg: &ClassicConfig, j: Join) -> Vec<Effect> {
        let new_id = j.new_member_id.clone();
        if let Some(iid) = j.instance_id.clone() {
            if let Some(old) = self.static_member(&iid).cloned() {
                // KIP-345: a static member coming back replaces its old id; in a stable group
                // with unchanged protocols it gets its assignment back without a rebalance.
                let mut effects = Vec::new();
                let mut member = old.clone();
                self.members.remove(&old.id);
                if let Some(t) = old.join_token {
                    effects.push(Effect::Join {
                        token: t,
                        result: join_error(ResponseError::FencedInstanceId, &old.id),
                    });
                }
                if let Some(t) = old.sync_token {
                    effects.push(Effect::Sync {
                        token: t,
                        result: sync_error(ResponseError::FencedInstanceId),
                    });
                }
                let unchanged = member.protocols == j.protocols;
                member.id = new_id.clone();
                member.protocols = j.protocols.clone();
                member.client_id = j.client_id.clone();
                member.client_host = j.client_host.clone();
                member.session_timeout_ms = j.session_timeout_ms;
                member.rebalance_timeout_ms = j.rebalance_timeout_ms;
                member.last_seen_ms = now;
                member.join_token = None;
                member.sync_token = None;
                let was_leader = self.leader.as_deref() == Some(old.id.as_str());
                if was_leader {
                    self.leader = Some(new_id.clone());
                }
                self.members.insert(new_id.clone(), member);
                if self.state == State::Stable && unchanged {
                    effects.push(Effect::Persist);
                    let mut result = self.join_result(&new_id);
                    // The leader is not asked to assign again: the assignment stands.
                    result.members.clear();
                    effects.push(Effect::Join {
                        token: j.token,
                        result,
                    });
                    return effects;
                }
                if let Some(m) = self.members.get_mut(&new_id) {
                    m.join_token = Some(j.token);
                }
                effects.extend(match self.state {
                    State::PreparingRebalance => self.maybe_complete_join(now),
                    _ => self.prepare_rebalance(now, cfg),
                });
                return effects;
            }
            return self.add_member(now, cfg, new_id, j);
        }
        if j.require_known_member_id {
            self.pending
                .insert(new_id.clone(), now + i64::from(j.session_timeout_ms));
            return vec![Effect::Join {
                token: j.token,
                result: join_error(ResponseError::MemberIdRequired, &new_id),
            }];
        }
        self.add_member(now, cfg, new_id, j)
    }

    fn add_member(&mut self, now: i64, cfg: &ClassicConfig, id: String, j: Join) -> Vec<Effect> {
        if self.members.is_empty() {
            self.protocol_type = Some(j.protocol_type.clone());
        }
        self.members.insert(
            id.clone(),
            Member {
                id,
                instance_id: j.instance_id,
                client_id: j.client_id,
                client_host: j.client_host,
                session_timeout_ms: j.session_timeout_ms,
                rebalance_timeout_ms: j.rebalance_timeout_ms,
                protocols: j.protocols,
                assignment: Vec::new(),
                join_token: Some(j.token),
                sync_token: None,
                last_seen_ms: now,
            },
        );
        match self.state {
            State::PreparingRebalance => {
                if let Some(until) = self.initial_delay_until_ms {
                    // Kafka extends the initial delay with each new member, bounded by the
                    // rebalance timeout.
                    let bound = self.rebalance_deadline_ms.unwrap_or(until);
                    self.initial_delay_until_ms =
                        Some((now + i64::from(cfg.initial_rebalance_delay_ms)).min(bound));
                }
                self.maybe_complete_join(now)
            }
            _ => self.prepare_rebalance(now, cfg),
        }
    }

    fn supports_any(&self, protocols: &[(String, Vec<u8>)]) -> bool {
        protocols.iter().any(|(name, _)| {
            self.members
                .values()
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        })
    }

    fn prepare_rebalance(&mut self, now: i64, cfg: &ClassicConfig) -> Vec<Effect> {
        let mut effects = Vec::new();
        // Followers waiting for an assignment of the old generation must rejoin.
        for m in self.members.values_mut() {
            if let Some(t) = m.sync_token.take() {
                effects.push(Effect::Sync {
                    token: t,
                    result: sync_error(ResponseError::RebalanceInProgress),
                });
            }
        }
        let was_empty = self.state == State::Empty;
        self.state = State::PreparingRebalance;
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0);
        self.rebalance_deadline_ms = Some(now + i64::from(timeout));
        self.initial_delay_until_ms =
            (was_empty && cfg.initial_rebalance_delay_ms > 0).then(|| {
                (now + i64::from(cfg.initial_rebalance_delay_ms)).min(now + i64::from(timeout))
            });
        effects.extend(self.maybe_complete_join(now));
        effects
    }

    /// Completes the join phase when every member has rejoined (and any initial delay is
    /// over), or when the rebalance timeout has passed (members that did not rejoin leave).
    fn maybe_complete_join(&mut self, now: i64) -> Vec<Effect> {
        if self.state != State::PreparingRebalance {
            return Vec::new();
        }
        let all_joined = self.members.values().all(|m| m.join_token.is_some());
        let delay_over = self.initial_delay_until_ms.is_none_or(|t| now >= t);
        let timed_out = self.rebalance_deadline_ms.is_some_and(|t| now >= t);
        if !(timed_out || (all_joined && delay_over)) {
            return Vec::new();
        }
        self.members.retain(|_, m| m.join_token.is_some());
        self.rebalance_deadline_ms = None;
        self.initial_delay_until_ms = None;
        self.generation += 1;
        if self.members.is_empty() {
            self.state = State::Empty;
            self.protocol = None;
            self.leader = None;
            return vec![Effect::Persist];
        }
        self.protocol = self.select_protocol();
        if self
            .leader
            .as_ref()
            .is_none_or(|l| !self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.state = State::CompletingRebalance;
        let mut effects = Vec::new();
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let result = self.join_result(&id);
            if let Some(m) = self.members.get_mut(&id) {
                m.last_seen_ms = now;
                if let Some(token) = m.join_token.take() {
                    effects.push(Effect::Join { token, result });
                }
            }
        }
        effects.push(Effect::Persist);
        effects
    }

    /// Picks the protocol every member supports with the most first-preference votes.
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(x, _)| x == *n))
            })
            .collect();
        let mut votes: BTreeMap<&String, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some((n, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(&n)) {
                *votes.entry(n).or_default() += 1;
            }
        }
        candidates
            .into_iter()
            .max_by_key(|n| (votes.get(n).copied().unwrap_or(0), std::cmp::Reverse(*n)))
            .cloned()
    }

    fn join_result(&self, member_id: &str) -> JoinResult {
        let protocol = self.protocol.clone();
        let is_leader = self.leader.as_deref() == Some(member_id);
        let members = if is_leader {
            self.members
                .values()
                .map(|m| {
                    let meta = m
                        .protocols
                        .iter()
                        .find(|(n, _)| Some(n) == protocol.as_ref())
                        .map(|(_, md)| md.clone())
                        .unwrap_or_default();
                    (m.id.clone(), m.instance_id.clone(), meta)
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: protocol,
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members,
        }
    }

    /// Handles a SyncGroup. `assignments` is the leader's (member id -> assignment).
    pub fn sync(
        &mut self,
        now: i64,
        token: u64,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Vec<u8>)>,
    ) -> Vec<Effect> {
        let fail = |e| {
            vec![Effect::Sync {
                token,
                result: sync_error(e),
            }]
        };
        if let Err(e) = self.check_member(member_id, instance_id) {
            return fail(e);
        }
        if generation != self.generation {
            return fail(ResponseError::IllegalGeneration);
        }
        match self.state {
            State::Empty => fail(ResponseError::UnknownMemberId),
            State::PreparingRebalance => fail(ResponseError::RebalanceInProgress),
            State::Stable => {
                let assignment = self
                    .members
                    .get(member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                vec![Effect::Sync {
                    token,
                    result: self.sync_ok(assignment),
                }]
            }
            State::CompletingRebalance => {
                if let Some(m) = self.members.get_mut(member_id) {
                    m.sync_token = Some(token);
                    m.last_seen_ms = now;
                }
                if self.leader.as_deref() != Some(member_id) {
                    return Vec::new();
                }
                let given: BTreeMap<String, Vec<u8>> = assignments.into_iter().collect();
                for m in self.members.values_mut() {
                    m.assignment = given.get(&m.id).cloned().unwrap_or_default();
                }
                self.state = State::Stable;
                let mut effects = vec![Effect::Persist];
                let waiting: Vec<(u64, Vec<u8>)> = self
                    .members
                    .values_mut()
                    .filter_map(|m| m.sync_token.take().map(|t| (t, m.assignment.clone())))
                    .collect();
                for (t, a) in waiting {
                    effects.push(Effect::Sync {
                        token: t,
                        result: self.sync_ok(a),
                    });
                }
                effects
            }
        }
    }

    fn sync_ok(&self, assignment: Vec<u8>) -> SyncResult {
        SyncResult {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment,
        }
    }

    /// Handles a Heartbeat.
    pub fn heartbeat(
        &mut self,
        now: i64,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Option<ResponseError> {
        if let Err(e) = self.check_member(member_id, instance_id) {
            return Some(e);
        }
        if generation != self.generation {
            return Some(ResponseError::IllegalGeneration);
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_seen_ms = now;
        }
        match self.state {
            State::PreparingRebalance => Some(ResponseError::RebalanceInProgress),
            State::Empty => Some(ResponseError::UnknownMemberId),
            _ => None,
        }
    }

    /// Handles LeaveGroup for each (member id, instance id); returns per-member errors.
    pub fn leave(
        &mut self,
        now: i64,
        cfg: &ClassicConfig,
        leavers: &[(String, Option<String>)],
    ) -> (Vec<Option<ResponseError>>, Vec<Effect>) {
        let mut errors = Vec::with_capacity(leavers.len());
        let mut effects = Vec::new();
        let mut removed = false;
        for (member_id, instance_id) in leavers {
            let id = match instance_id {
                Some(iid) => match self.static_member(iid) {
                    Some(m) if member_id.is_empty() || m.id == *member_id => Some(m.id.clone()),
                    Some(_) => {
                        errors.push(Some(ResponseError::FencedInstanceId));
                        continue;
                    }
                    None => None,
                },
                None => self
                    .members
                    .contains_key(member_id)
                    .then(|| member_id.clone()),
            };
            let Some(id) = id else {
                if self.pending.remove(member_id).is_some() {
                    errors.push(None);
                } else {
                    errors.push(Some(ResponseError::UnknownMemberId));
                }
                continue;
            };
            effects.extend(self.remove_member(&id));
            removed = true;
            errors.push(None);
        }
        if removed {
            effects.extend(self.after_removal(now, cfg));
        }
        (errors, effects)
    }

    fn remove_member(&mut self, id: &str) -> Vec<Effect> {
        let mut effects = Vec::new();
        if let Some(m) = self.members.remove(id) {
            if let Some(t) = m.join_token {
                effects.push(Effect::Join {
                    token: t,
                    result: join_error(ResponseError::UnknownMemberId, id),
                });
            }
            if let Some(t) = m.sync_token {
                effects.push(Effect::Sync {
                    token: t,
                    result: sync_error(ResponseError::UnknownMemberId),
                });
            }
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
        effects
    }

    fn after_removal(&mut self, now: i64, cfg: &ClassicConfig) -> Vec<Effect> {
        match self.state {
            State::PreparingRebalance => self.maybe_complete_join(now),
            State::Empty => vec![Effect::Persist],
            _ => self.prepare_rebalance(now, cfg),
        }
    }

    /// Advances time: expires members whose session lapsed, ends rebalance waits.
    pub fn tick(&mut self, now: i64, cfg: &ClassicConfig) -> Vec<Effect> {
        self.pending.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.join_token.is_none() && now - m.last_seen_ms > i64::from(m.session_timeout_ms)
            })
            .map(|m| m.id.clone())
            .collect();
        let mut effects = Vec::new();
        for id in &expired {
            effects.extend(self.remove_member(id));
        }
        if !expired.is_empty() {
            effects.extend(self.after_removal(now, cfg));
        }
        effects.extend(self.maybe_complete_join(now));
        effects
    }

    /// Checks an OffsetCommit's identity against the group (Kafka's rules: a commit with
    /// generation -1 and no member id is a "simple" commit, allowed only on an empty group).
    pub fn validate_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        if generation < 0 && member_id.is_empty() {
            return if self.members.is_empty() {
                Ok(())
            } else {
                err(ResponseError::UnknownMemberId)
            };
        }
        self.check_member(member_id, instance_id)?;
        if generation != self.generation {
            return err(ResponseError::IllegalGeneration);
        }
        if self.state == State::CompletingRebalance {
            return err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    /// Topics the members subscribe to (from consumer-protocol metadata), for OffsetDelete.
    pub fn subscribed_topics(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for m in self.members.values() {
            if let Some((_, meta)) = m
                .protocols
                .iter()
                .find(|(n, _)| Some(n) == self.protocol.as_ref())
            {
                out.extend(super::consumer_protocol::subscription_topics(meta));
            }
        }
        out
    }
}

fn join_error(e: ResponseError, member_id: &str) -> JoinResult {
    JoinResult {
        error: Some(e),
        generation: -1,
        protocol_type: None,
        protocol_name: None,
        leader: String::new(),
        member_id: member_id.to_string(),
        members: Vec::new(),
    }
}

fn sync_error(e: ResponseError) -> SyncResult {
    SyncResult {
        error: Some(e),
        protocol_type: None,
        protocol_name: None,
        assignment: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: ClassicConfig = ClassicConfig {
        min_session_timeout_ms: 6000,
        max_session_timeout_ms: 300_000,
        initial_rebalance_delay_ms: 0,
    };

    fn join(token: u64, member: &str, new_id: &str) -> Join {
        Join {
            token,
            member_id: member.into(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), vec![1]), ("roundrobin".into(), vec![2])],
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            require_known_member_id: true,
            new_member_id: new_id.into(),
        }
    }

    fn join_result(effects: &[Effect], token: u64) -> JoinResult {
        effects
            .iter()
            .find_map(|e| match e {
                Effect::Join { token: t, result } if *t == token => Some(result.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no join answer for {token} in {effects:?}"))
    }

    /// m1 joins (MEMBER_ID_REQUIRED, then joins with its id), syncs as leader: Stable.
    fn stable_group_with_m1() -> ClassicGroup {
        let mut g = ClassicGroup::new("g");
        let e = g.join(0, &CFG, join(1, "", "m1"));
        assert_eq!(
            join_result(&e, 1).error,
            Some(ResponseError::MemberIdRequired)
        );
        let e = g.join(1, &CFG, join(2, "m1", "unused"));
        let r = join_result(&e, 2);
        assert_eq!(
            (r.error, r.generation, r.leader.as_str(), r.members.len()),
            (None, 1, "m1", 1)
        );
        assert_eq!(r.protocol_name.as_deref(), Some("range"));
        let e = g.sync(2, 3, "m1", None, 1, vec![("m1".into(), b"A".to_vec())]);
        assert!(e.contains(&Effect::Persist));
        assert_eq!(g.state, State::Stable);
        g
    }

    #[test]
    fn first_member_becomes_leader_and_group_stabilizes() {
        let g = stable_group_with_m1();
        assert_eq!(g.members["m1"].assignment, b"A".to_vec());
    }

    #[test]
    fn second_member_joining_a_stable_group_starts_a_rebalance() {
        let mut g = stable_group_with_m1();
        let mut j = join(10, "", "m2");
        j.require_known_member_id = false;
        let e = g.join(100, &CFG, j);
        assert!(e.is_empty(), "m2 waits for m1 to rejoin: {e:?}");
        assert_eq!(g.state, State::PreparingRebalance);
        assert_eq!(
            g.heartbeat(101, "m1", None, 1),
            Some(ResponseError::RebalanceInProgress)
        );
        let e = g.join(102, &CFG, join(11, "m1", "x"));
        let (r1, r2) = (join_result(&e, 11), join_result(&e, 10));
        assert_eq!((r1.generation, r2.generation), (2, 2));
        assert_eq!(r1.members.len(), 2, "leader gets all members");
        assert!(r2.members.is_empty());
        // The follower's sync waits for the leader's.
        assert!(g.sync(103, 12, "m2", None, 2, vec![]).is_empty());
        let e = g.sync(
            104,
            13,
            "m1",
            None,
            2,
            vec![("m1".into(), b"a".to_vec()), ("m2".into(), b"b".to_vec())],
        );
        let synced: Vec<(u64, Vec<u8>)> = e
            .iter()
            .filter_map(|e| match e {
                Effect::Sync { token, result } => Some((*token, result.assignment.clone())),
                _ => None,
            })
            .collect();
        assert!(synced.contains(&(12, b"b".to_vec())) && synced.contains(&(13, b"a".to_vec())));
        assert_eq!(g.state, State::Stable);
    }

    #[test]
    fn expired_member_is_removed_and_others_rebalance() {
        let mut g = stable_group_with_m1();
        let mut j = join(10, "", "m2");
        j.require_known_member_id = false;
        g.join(100, &CFG, j);
        let e = g.join(101, &CFG, join(11, "m1", "x"));
        assert_eq!(join_result(&e, 11).generation, 2);
        g.sync(102, 12, "m1", None, 2, vec![]);
        g.sync(102, 13, "m2", None, 2, vec![]);
        assert_eq!(g.state, State::Stable);
        // m1 keeps heartbeating, m2 goes silent past its 10 s session.
        assert_eq!(g.heartbeat(8_000, "m1", None, 2), None);
        let e = g.tick(10_200, &CFG);
        assert!(!g.members.contains_key("m2"));
        assert_eq!(g.state, State::PreparingRebalance, "{e:?}");
        let e = g.join(10_300, &CFG, join(14, "m1", "x"));
        let r = join_result(&e, 14);
        assert_eq!((r.generation, r.members.len()), (3, 1));
    }

    #[test]
    fn wrong_generation_and_unknown_member_are_refused() {
        let mut g = stable_group_with_m1();
        assert_eq!(
            g.heartbeat(5, "m1", None, 7),
            Some(ResponseError::IllegalGeneration)
        );
        assert_eq!(
            g.heartbeat(5, "zz", None, 1),
            Some(ResponseError::UnknownMemberId)
        );
        assert_eq!(
            g.validate_commit("m1", None, 0),
            Err(ResponseError::IllegalGeneration)
        );
        assert_eq!(g.validate_commit("m1", None, 1), Ok(()));
        assert_eq!(
            g.validate_commit("", None, -1),
            Err(ResponseError::UnknownMemberId)
        );
        let e = g.join(6, &CFG, join(20, "zz", "x"));
        assert_eq!(
            join_result(&e, 20).error,
            Some(ResponseError::UnknownMemberId)
        );
    }

    #[test]
    fn static_member_rejoin_keeps_assignment_without_rebalance_and_fences_old_id() {
        let mut g = ClassicGroup::new("g");
        let mut j = join(1, "", "s1");
        j.instance_id = Some("inst-1".into());
        let e = g.join(0, &CFG, j.clone());
        assert_eq!(join_result(&e, 1).generation, 1);
        g.sync(
            1,
            2,
            "s1",
            Some("inst-1"),
            1,
            vec![("s1".into(), b"P0".to_vec())],
        );
        assert_eq!(g.state, State::Stable);
        // Restart: same instance id, no member id.
        let mut again = j.clone();
        again.token = 3;
        again.new_member_id = "s1b".into();
        let e = g.join(5_000, &CFG, again);
        let r = join_result(&e, 3);
        assert_eq!(
            (r.error, r.generation, r.member_id.as_str()),
            (None, 1, "s1b")
        );
        assert_eq!(g.state, State::Stable, "no rebalance");
        let e = g.sync(5_001, 4, "s1b", Some("inst-1"), 1, vec![]);
        assert!(
            matches!(&e[0], Effect::Sync { result, .. } if result.assignment == b"P0".to_vec())
        );
        assert_eq!(
            g.heartbeat(5_002, "s1", Some("inst-1"), 1),
            Some(ResponseError::FencedInstanceId)
        );
    }

    #[test]
    fn leave_triggers_rebalance_and_last_leave_empties() {
        let mut g = stable_group_with_m1();
        let (errors, e) = g.leave(10, &CFG, &[("m1".into(), None), ("nope".into(), None)]);
        assert_eq!(errors, vec![None, Some(ResponseError::UnknownMemberId)]);
        assert!(e.contains(&Effect::Persist));
        assert_eq!(g.state, State::Empty);
        assert_eq!(g.generation, 2);
        assert_eq!(g.validate_commit("", None, -1), Ok(()));
    }

    #[test]
    fn initial_rebalance_delay_waits_for_more_members() {
        let cfg = ClassicConfig {
            initial_rebalance_delay_ms: 3000,
            ..CFG
        };
        let mut g = ClassicGroup::new("g");
        let mut j = join(1, "", "m1");
        j.require_known_member_id = false;
        assert!(g.join(0, &cfg, j).is_empty());
        let mut j = join(2, "", "m2");
        j.require_known_member_id = false;
        assert!(g.join(1000, &cfg, j).is_empty());
        assert!(g.tick(2000, &cfg).is_empty());
        let e = g.tick(4000, &cfg);
        assert_eq!(join_result(&e, 1).generation, 1);
        assert_eq!(join_result(&e, 2).generation, 1);
    }

    #[test]
    fn incompatible_protocols_are_refused() {
        let mut g = stable_group_with_m1();
        let mut j = join(9, "", "m9");
        j.protocols = vec![("other".into(), vec![])];
        j.require_known_member_id = false;
        let e = g.join(1, &CFG, j);
        assert_eq!(
            join_result(&e, 9).error,
            Some(ResponseError::InconsistentGroupProtocol)
        );
        let mut j = join(10, "", "m10");
        j.session_timeout_ms = 10;
        let e = g.join(1, &CFG, j);
        assert_eq!(
            join_result(&e, 10).error,
            Some(ResponseError::InvalidSessionTimeout)
        );
    }
}
