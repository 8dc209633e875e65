//! The new consumer-group protocol (KIP-848: ConsumerGroupHeartbeat) as a pure state
//! machine with server-side assignment.
//!
//! Every change that can move partitions (a member joins or leaves, a subscription changes,
//! a subscribed topic grows) bumps the group epoch; the next heartbeat recomputes the target
//! assignment with the group's assignor (`uniform` or `range`). Each member then converges
//! on its target without two members ever owning a partition at once: partitions a member
//! must give up are first removed from its assignment and stay "pending revocation" until the
//! member reports (in `topic_partitions`) that it no longer owns them; only then may another
//! member receive them. A member's epoch advances to the assignment epoch once its
//! assignment equals its target.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError;
use serde::{Deserialize, Serialize};

/// Partitions by topic name.
pub type Assignment = BTreeMap<String, BTreeSet<i32>>;

/// Assignors served (KIP-848 server-side assignors); the first is the default.
pub const ASSIGNORS: &[&str] = &["uniform", "range"];

/// A member of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerMember {
    /// Member id.
    pub id: String,
    /// Static membership id.
    pub instance_id: Option<String>,
    /// Rack.
    pub rack_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Subscribed topic names.
    pub subscribed: Vec<String>,
    /// Subscribed regex, if any (matched against topic names).
    pub regex: Option<String>,
    /// Preferred server assignor.
    pub assignor: Option<String>,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Current member epoch.
    pub epoch: i32,
    /// The epoch before the last bump (a heartbeat whose answer was lost may still use it).
    pub previous_epoch: i32,
    /// What the member has been given.
    pub assigned: Assignment,
    /// Taken away, not yet confirmed released by the member.
    pub pending_revocation: Assignment,
    #[serde(skip)]
    last_seen_ms: i64,
    #[serde(skip)]
    revoking_since_ms: Option<i64>,
    #[serde(skip)]
    last_sent: Option<Assignment>,
}

/// A ConsumerGroupHeartbeat, with topic ids already resolved to names.
#[derive(Debug, Clone, Default)]
pub struct Heartbeat {
    /// Member id (empty on a v0 join).
    pub member_id: String,
    /// 0 join, -1 leave, -2 static leave, else the current epoch.
    pub member_epoch: i32,
    /// Static membership.
    pub instance_id: Option<String>,
    /// Rack.
    pub rack_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Rebalance timeout (-1 = unchanged).
    pub rebalance_timeout_ms: i32,
    /// New subscription, `None` = unchanged.
    pub subscribed: Option<Vec<String>>,
    /// New regex subscription, `None` = unchanged.
    pub regex: Option<String>,
    /// Preferred assignor, `None` = unchanged.
    pub assignor: Option<String>,
    /// Partitions the member owns now, `None` = unchanged.
    pub owned: Option<Assignment>,
    /// Id to give a joining member that brought none.
    pub new_member_id: String,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatResult {
    /// Member id.
    pub member_id: String,
    /// Member epoch.
    pub member_epoch: i32,
    /// The assignment, when it changed (or on join).
    pub assignment: Option<Assignment>,
}

/// A consumer group.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConsumerGroup {
    /// Group id.
    pub id: String,
    /// Group epoch.
    pub epoch: i32,
    /// Epoch of the current target assignment.
    pub assignment_epoch: i32,
    /// Members by id.
    pub members: BTreeMap<String, ConsumerMember>,
    /// Target assignment per member.
    pub target: BTreeMap<String, Assignment>,
    /// Partition counts of subscribed topics when the target was computed.
    pub topics_seen: BTreeMap<String, i32>,
}

impl ConsumerGroup {
    /// A new group.
    pub fn new(id: &str) -> Self {
        ConsumerGroup {
            id: id.to_string(),
            ..Default::default()
        }
    }

    /// Restarts heartbeat clocks after loading from `__consumer_offsets`.
    pub fn loaded(&mut self, now: i64) {
        for m in self.members.values_mut() {
            m.last_seen_ms = now;
            m.last_sent = None;
        }
    }

    /// Kafka's state name for DescribeGroups / ListGroups / ConsumerGroupDescribe.
    pub fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.epoch > self.assignment_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| m.epoch != self.assignment_epoch)
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// The assignor in use: the one most members prefer, else the default.
    pub fn assignor(&self) -> &'static str {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = m.assignor.as_deref()
                && let Some(known) = ASSIGNORS.iter().find(|k| **k == a)
            {
                *votes.entry(known).or_default() += 1;
            }
        }
        votes
            .into_iter()
            .max_by_key(|(name, n)| (*n, std::cmp::Reverse(*name)))
            .map_or(ASSIGNORS[0], |(n, _)| n)
    }

    /// Every topic some member subscribes to, resolving regexes against `all_topics`.
    pub fn subscribed_topics(&self, all_topics: &BTreeMap<String, i32>) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for m in self.members.values() {
            out.extend(member_topics(m, all_topics));
        }
        out
    }

    /// Handles a heartbeat at `now`; `topics` maps every existing topic to its partition count.
    pub fn heartbeat(
        &mut self,
        now: i64,
        hb: Heartbeat,
        topics: &BTreeMap<String, i32>,
    ) -> Result<HeartbeatResult, (ResponseError, String)> {
        let refuse = |e: ResponseError, msg: String| Err((e, msg));
        if hb.member_epoch == -1 || hb.member_epoch == -2 {
            if self.members.remove(&hb.member_id).is_none() {
                return refuse(
                    ResponseError::UnknownMemberId,
                    format!("member {} is not in the group", hb.member_id),
                );
            }
            self.target.remove(&hb.member_id);
            self.epoch += 1;
            return Ok(HeartbeatResult {
                member_id: hb.member_id,
                member_epoch: hb.member_epoch,
                assignment: None,
            });
        }
        let joining = hb.member_epoch == 0;
        let id = if joining && hb.member_id.is_empty() {
            hb.new_member_id.clone()
        } else {
            hb.member_id.clone()
        };
        if joining {
            let Some(subscribed) = hb
                .subscribed
                .clone()
                .or_else(|| hb.regex.as_ref().map(|_| Vec::new()))
            else {
                return refuse(
                    ResponseError::InvalidRequest,
                    "a joining member must send its subscription".into(),
                );
            };
            if let Some(iid) = &hb.instance_id
                && let Some(old) = self
                    .members
                    .values()
                    .find(|m| m.instance_id.as_ref() == Some(iid) && m.id != id)
                    .cloned()
            {
                // A static member restarting: the new id takes over; the old one is gone.
                self.members.remove(&old.id);
                self.target.remove(&old.id);
            }
            let existing = self.members.get(&id).cloned();
            let member = ConsumerMember {
                id: id.clone(),
                instance_id: hb.instance_id.clone(),
                rack_id: hb.rack_id.clone(),
                client_id: hb.client_id.clone(),
                client_host: hb.client_host.clone(),
                subscribed,
                regex: hb.regex.clone(),
                assignor: hb.assignor.clone(),
                rebalance_timeout_ms: hb.rebalance_timeout_ms.max(0),
                epoch: 0,
                previous_epoch: 0,
                assigned: Assignment::new(),
                pending_revocation: existing
                    .map(|m| union(&m.assigned, &m.pending_revocation))
                    .unwrap_or_default(),
                last_seen_ms: now,
                revoking_since_ms: None,
                last_sent: None,
            };
            self.members.insert(id.clone(), member);
            self.epoch += 1;
        } else {
            let Some(m) = self.members.get_mut(&id) else {
                return refuse(
                    ResponseError::UnknownMemberId,
                    format!("member {id} is not in the group"),
                );
            };
            if hb.member_epoch != m.epoch && hb.member_epoch != m.previous_epoch {
                return refuse(
                    ResponseError::FencedMemberEpoch,
                    format!(
                        "member epoch {} is neither {} nor {}",
                        hb.member_epoch, m.epoch, m.previous_epoch
                    ),
                );
            }
            if hb.member_epoch == m.previous_epoch && hb.member_epoch != m.epoch {
                // The answer that bumped the epoch was lost: send the assignment again.
                m.last_sent = None;
            }
            let mut changed = false;
            if let Some(s) = hb.subscribed.clone()
                && s != m.subscribed
            {
                m.subscribed = s;
                changed = true;
            }
            if hb.regex.is_some() && hb.regex != m.regex {
                m.regex = hb.regex.clone();
                changed = true;
            }
            if hb.assignor.is_some() && hb.assignor != m.assignor {
                m.assignor = hb.assignor.clone();
                changed = true;
            }
            if hb.rebalance_timeout_ms > 0 {
                m.rebalance_timeout_ms = hb.rebalance_timeout_ms;
            }
            if changed {
                self.epoch += 1;
            }
        }
        let member = self
            .members
            .get_mut(&id)
            .ok_or((ResponseError::UnknownMemberId, String::new()))?;
        member.last_seen_ms = now;
        if let Some(owned) = &hb.owned {
            // Partitions the member no longer owns are released.
            for (topic, parts) in member.pending_revocation.iter_mut() {
                let still = owned.get(topic);
                parts.retain(|p| still.is_some_and(|s| s.contains(p)));
            }
            member.pending_revocation.retain(|_, p| !p.is_empty());
        }
        // Topic metadata changes (new partitions, deleted topics) move partitions too.
        let seen: BTreeMap<String, i32> = self
            .subscribed_topics(topics)
            .into_iter()
            .filter_map(|t| topics.get(&t).map(|n| (t, *n)))
            .collect();
        if seen != self.topics_seen {
            self.topics_seen = seen;
            if !joining {
                self.epoch += 1;
            }
        }
        if self.epoch > self.assignment_epoch {
            self.compute_target(topics);
        }
        self.reconcile(&id, now);
        let member = self
            .members
            .get_mut(&id)
            .ok_or((ResponseError::UnknownMemberId, String::new()))?;
        let send = member.last_sent.as_ref() != Some(&member.assigned);
        if send {
            member.last_sent = Some(member.assigned.clone());
        }
        Ok(HeartbeatResult {
            member_id: id,
            member_epoch: member.epoch,
            assignment: send.then(|| member.assigned.clone()),
        })
    }

    fn compute_target(&mut self, topics: &BTreeMap<String, i32>) {
        let subs: BTreeMap<String, BTreeSet<String>> = self
            .members
            .values()
            .map(|m| (m.id.clone(), member_topics(m, topics)))
            .collect();
        self.target = match self.assignor() {
            "range" => assign_range(&subs, topics),
            _ => assign_uniform(&subs, topics, &self.target),
        };
        self.assignment_epoch = self.epoch;
    }

    /// Moves member `id` one step towards its target.
    fn reconcile(&mut self, id: &str, now: i64) {
        let target = self.target.get(id).cloned().unwrap_or_default();
        let owned_by_others: BTreeSet<(String, i32)> = self
            .members
            .values()
            .filter(|m| m.id != id)
            .flat_map(|m| pairs(&m.assigned).chain(pairs(&m.pending_revocation)))
            .collect();
        let epoch = self.assignment_epoch;
        let Some(m) = self.members.get_mut(id) else {
            return;
        };
        let revoke: Vec<(String, i32)> = pairs(&m.assigned)
            .filter(|(t, p)| !contains(&target, t, *p))
            .collect();
        for (t, p) in revoke {
            remove(&mut m.assigned, &t, p);
            m.pending_revocation.entry(t).or_default().insert(p);
        }
        if m.pending_revocation.is_empty() {
            m.revoking_since_ms = None;
            for (t, p) in pairs(&target) {
                if !contains(&m.assigned, &t, p) && !owned_by_others.contains(&(t.clone(), p)) {
                    m.assigned.entry(t).or_default().insert(p);
                }
            }
        } else if m.revoking_since_ms.is_none() {
            m.revoking_since_ms = Some(now);
        }
        // Kafka's rule: once nothing is left to revoke the member moves to the target epoch,
        // even while some of its new partitions are still being released by others.
        if m.pending_revocation.is_empty() && m.epoch != epoch {
            m.previous_epoch = m.epoch;
            m.epoch = epoch;
        }
    }

    /// Expires members whose session lapsed (`session_timeout_ms`) or who did not release
    /// partitions within their rebalance timeout. Returns whether anything changed.
    pub fn tick(&mut self, now: i64, session_timeout_ms: i64) -> bool {
        let before = self.members.len();
        self.members.retain(|_, m| {
            let alive = now - m.last_seen_ms <= session_timeout_ms;
            let revoking_ok = m
                .revoking_since_ms
                .is_none_or(|t| now - t <= i64::from(m.rebalance_timeout_ms.max(1)));
            alive && revoking_ok
        });
        let changed = self.members.len() != before;
        if changed {
            let members = &self.members;
            self.target.retain(|k, _| members.contains_key(k));
            self.epoch += 1;
        }
        changed
    }

    /// Checks an OffsetCommit / OffsetFetch member epoch.
    pub fn validate_member_epoch(&self, member_id: &str, epoch: i32) -> Result<(), ResponseError> {
        if member_id.is_empty() && epoch < 0 {
            return if self.members.is_empty() {
                Ok(())
            } else {
                Err(ResponseError::UnknownMemberId)
            };
        }
        match self.members.get(member_id) {
            None => Err(ResponseError::UnknownMemberId),
            Some(m) if m.epoch != epoch => Err(ResponseError::StaleMemberEpoch),
            Some(_) => Ok(()),
        }
    }
}

fn member_topics(m: &ConsumerMember, topics: &BTreeMap<String, i32>) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = m
        .subscribed
        .iter()
        .filter(|t| topics.contains_key(*t))
        .cloned()
        .collect();
    if let Some(re) = m.regex.as_deref()
        && let Some(re) = compile_regex(re)
    {
        out.extend(
            topics
                .keys()
                .filter(|t| !t.starts_with("__") && re.is_match(t))
                .cloned(),
        );
    }
    out
}

fn compile_regex(re: &str) -> Option<SimpleRegex> {
    SimpleRegex::new(re)
}

/// A small regex subset for subscriptions (`.`, `*`, `+`, `?`, `|`, anchors implied, and
/// literal characters), enough for the patterns consumers subscribe with (`orders-.*`).
struct SimpleRegex {
    alternatives: Vec<Vec<(Atom, Rep)>>,
}

#[derive(Clone, Copy, PartialEq)]
enum Atom {
    Any,
    Char(char),
}

#[derive(Clone, Copy, PartialEq)]
enum Rep {
    One,
    Star,
    Plus,
    Opt,
}

impl SimpleRegex {
    fn new(pattern: &str) -> Option<Self> {
        let mut alternatives = Vec::new();
        for alt in pattern
            .trim_start_matches('^')
            .trim_end_matches('$')
            .split('|')
        {
            let mut items: Vec<(Atom, Rep)> = Vec::new();
            let mut chars = alt.chars().peekable();
            while let Some(c) = chars.next() {
                let atom = match c {
                    '.' => Atom::Any,
                    '\\' => Atom::Char(chars.next()?),
                    '*' | '+' | '?' => {
                        let last = items.last_mut()?;
                        last.1 = match c {
                            '*' => Rep::Star,
                            '+' => Rep::Plus,
                            _ => Rep::Opt,
                        };
                        continue;
                    }
                    '(' | ')' | '[' | ']' | '{' | '}' => return None,
                    other => Atom::Char(other),
                };
                items.push((atom, Rep::One));
            }
            alternatives.push(items);
        }
        Some(SimpleRegex { alternatives })
    }

    fn is_match(&self, text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        self.alternatives
            .iter()
            .any(|alt| matches_from(alt, &chars))
    }
}

fn matches_from(items: &[(Atom, Rep)], text: &[char]) -> bool {
    let Some(((atom, rep), rest)) = items.split_first() else {
        return text.is_empty();
    };
    let fits = |c: &char| *atom == Atom::Any || *atom == Atom::Char(*c);
    match rep {
        Rep::One => text.first().is_some_and(fits) && matches_from(rest, &text[1..]),
        Rep::Opt => {
            matches_from(rest, text)
                || (text.first().is_some_and(fits) && matches_from(rest, &text[1..]))
        }
        Rep::Star | Rep::Plus => {
            let min = usize::from(*rep == Rep::Plus);
            let run = text.iter().take_while(|c| fits(c)).count();
            (min..=run).rev().any(|n| matches_from(rest, &text[n..]))
        }
    }
}

fn pairs(a: &Assignment) -> impl Iterator<Item = (String, i32)> + '_ {
    a.iter()
        .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
}

fn contains(a: &Assignment, t: &str, p: i32) -> bool {
    a.get(t).is_some_and(|s| s.contains(&p))
}

fn remove(a: &mut Assignment, t: &str, p: i32) {
    if let Some(s) = a.get_mut(t) {
        s.remove(&p);
        if s.is_empty() {
            a.remove(t);
        }
    }
}

fn union(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = a.clone();
    for (t, p) in pairs(b) {
        out.entry(t).or_default().insert(p);
    }
    out
}

/// Range: per topic, its subscribers (by member id) get contiguous ranges, the first
/// `partitions % members` one partition more.
pub fn assign_range(
    subs: &BTreeMap<String, BTreeSet<String>>,
    topics: &BTreeMap<String, i32>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = subs
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    let all: BTreeSet<&String> = subs.values().flatten().collect();
    for topic in all {
        let Some(&n) = topics.get(topic) else {
            continue;
        };
        let members: Vec<&String> = subs
            .iter()
            .filter(|(_, t)| t.contains(topic))
            .map(|(m, _)| m)
            .collect();
        let (per, extra) = (n / members.len() as i32, n % members.len() as i32);
        let mut next = 0;
        for (i, m) in members.iter().enumerate() {
            let count = per + i32::from((i as i32) < extra);
            if count > 0
                && let Some(a) = out.get_mut(*m)
            {
                a.entry(topic.clone())
                    .or_default()
                    .extend(next..next + count);
            }
            next += count;
        }
    }
    out
}

/// Uniform: spreads all subscribed partitions evenly, keeping each partition with its
/// previous owner while that owner is under its fair share (sticky).
pub fn assign_uniform(
    subs: &BTreeMap<String, BTreeSet<String>>,
    topics: &BTreeMap<String, i32>,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = subs
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    let mut counts: BTreeMap<&String, usize> = subs.keys().map(|m| (m, 0)).collect();
    let all: BTreeSet<&String> = subs.values().flatten().collect();
    let partitions: Vec<(String, i32)> = all
        .iter()
        .filter_map(|t| topics.get(*t).map(|n| (t, *n)))
        .flat_map(|(t, n)| (0..n).map(move |p| ((*t).clone(), p)))
        .collect();
    let quota = partitions.len().div_ceil(subs.len().max(1));
    let mut unassigned = Vec::new();
    for (t, p) in partitions {
        let owner = previous
            .iter()
            .find(|(m, a)| contains(a, &t, p) && subs.get(*m).is_some_and(|s| s.contains(&t)));
        match owner {
            Some((m, _)) if counts.get(m).is_some_and(|c| *c < quota) => {
                if let Some(c) = counts.get_mut(m) {
                    *c += 1;
                }
                if let Some(a) = out.get_mut(m) {
                    a.entry(t).or_default().insert(p);
                }
            }
            _ => unassigned.push((t, p)),
        }
    }
    for (t, p) in unassigned {
        let best = subs
            .iter()
            .filter(|(_, s)| s.contains(&t))
            .map(|(m, _)| m)
            .min_by_key(|m| (counts.get(m).copied().unwrap_or(0), *m));
        if let Some(m) = best {
            if let Some(c) = counts.get_mut(m) {
                *c += 1;
            }
            if let Some(a) = out.get_mut(m) {
                a.entry(t).or_default().insert(p);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics() -> BTreeMap<String, i32> {
        BTreeMap::from([("t".to_string(), 4), ("u".to_string(), 1)])
    }

    fn join(id: &str) -> Heartbeat {
        Heartbeat {
            member_id: id.into(),
            member_epoch: 0,
            subscribed: Some(vec!["t".into()]),
            rebalance_timeout_ms: 30_000,
            ..Default::default()
        }
    }

    fn hb(id: &str, epoch: i32, owned: Option<&Assignment>) -> Heartbeat {
        Heartbeat {
            member_id: id.into(),
            member_epoch: epoch,
            owned: owned.cloned(),
            ..Default::default()
        }
    }

    fn count(a: &Assignment) -> usize {
        a.values().map(BTreeSet::len).sum()
    }

    #[test]
    fn single_member_gets_everything_and_is_stable() {
        let mut g = ConsumerGroup::new("g");
        let r = g.heartbeat(0, join("a"), &topics()).unwrap();
        assert_eq!(r.member_epoch, 1);
        assert_eq!(count(r.assignment.as_ref().unwrap()), 4);
        assert_eq!(g.state(), "Stable");
        let r = g.heartbeat(1, hb("a", 1, None), &topics()).unwrap();
        assert_eq!(r.assignment, None, "unchanged assignment is not resent");
    }

    #[test]
    fn second_member_gets_partitions_only_after_first_releases_them() {
        let mut g = ConsumerGroup::new("g");
        let a1 = g
            .heartbeat(0, join("a"), &topics())
            .unwrap()
            .assignment
            .unwrap();
        let rb = g.heartbeat(1, join("b"), &topics()).unwrap();
        assert_eq!(
            rb.member_epoch, 2,
            "b is at the new epoch but waits for a's partitions"
        );
        assert_eq!(count(rb.assignment.as_ref().unwrap()), 0);
        assert_eq!(g.state(), "Reconciling");
        // a is told to drop two partitions; its epoch stays until it confirms.
        let ra = g.heartbeat(2, hb("a", 1, None), &topics()).unwrap();
        let kept = ra.assignment.unwrap();
        assert_eq!(count(&kept), 2);
        assert_eq!(ra.member_epoch, 1);
        // b still gets nothing while a has not confirmed.
        let rb = g.heartbeat(3, hb("b", 2, None), &topics()).unwrap();
        assert!(rb.assignment.is_none_or(|a| count(&a) == 0));
        // a confirms it owns only `kept`: its epoch advances, b receives the rest.
        let ra = g.heartbeat(4, hb("a", 1, Some(&kept)), &topics()).unwrap();
        assert_eq!(ra.member_epoch, 2);
        let rb = g.heartbeat(5, hb("b", 2, None), &topics()).unwrap();
        let got = rb.assignment.unwrap();
        assert_eq!(rb.member_epoch, 2);
        assert_eq!(count(&got), 2);
        let all: BTreeSet<(String, i32)> = pairs(&kept).chain(pairs(&got)).collect();
        assert_eq!(all.len(), 4, "disjoint and complete");
        assert_eq!(g.state(), "Stable");
        assert!(count(&a1) == 4);
    }

    #[test]
    fn leaving_member_returns_its_partitions() {
        let mut g = ConsumerGroup::new("g");
        g.heartbeat(0, join("a"), &topics()).unwrap();
        g.heartbeat(0, join("b"), &topics()).unwrap();
        let kept = g
            .heartbeat(1, hb("a", 1, None), &topics())
            .unwrap()
            .assignment
            .unwrap();
        g.heartbeat(2, hb("a", 1, Some(&kept)), &topics()).unwrap();
        g.heartbeat(3, hb("b", 2, None), &topics()).unwrap();
        g.heartbeat(4, hb("b", -1, None), &topics()).unwrap();
        let r = g.heartbeat(5, hb("a", 2, None), &topics()).unwrap();
        assert_eq!(count(r.assignment.as_ref().unwrap()), 4);
        assert_eq!(r.member_epoch, 3);
    }

    #[test]
    fn session_expiry_removes_member_and_fenced_epochs_are_refused() {
        let mut g = ConsumerGroup::new("g");
        g.heartbeat(0, join("a"), &topics()).unwrap();
        assert_eq!(
            g.heartbeat(1, hb("a", 7, None), &topics()).unwrap_err().0,
            ResponseError::FencedMemberEpoch
        );
        assert_eq!(
            g.heartbeat(1, hb("zz", 1, None), &topics()).unwrap_err().0,
            ResponseError::UnknownMemberId
        );
        assert!(!g.tick(40_000, 45_000));
        assert!(g.tick(46_000, 45_000));
        assert!(g.members.is_empty());
        assert_eq!(g.state(), "Empty");
    }

    #[test]
    fn assignors() {
        let subs = BTreeMap::from([
            ("a".to_string(), BTreeSet::from(["t".to_string()])),
            (
                "b".to_string(),
                BTreeSet::from(["t".to_string(), "u".to_string()]),
            ),
        ]);
        let r = assign_range(&subs, &topics());
        assert_eq!(r["a"]["t"], BTreeSet::from([0, 1]));
        assert_eq!(r["b"]["t"], BTreeSet::from([2, 3]));
        assert_eq!(r["b"]["u"], BTreeSet::from([0]));
        let u = assign_uniform(&subs, &topics(), &BTreeMap::new());
        let total: usize = u.values().map(count).sum();
        assert_eq!(total, 5);
        assert!(u.values().all(|a| count(a) >= 2));
        // Sticky: recomputing with the result as previous keeps it.
        assert_eq!(assign_uniform(&subs, &topics(), &u), u);
    }

    #[test]
    fn regex_subset() {
        let re = SimpleRegex::new("orders-.*").unwrap();
        assert!(re.is_match("orders-eu") && re.is_match("orders-") && !re.is_match("order"));
        let re = SimpleRegex::new("^a|b+c$").unwrap();
        assert!(re.is_match("a") && re.is_match("bbc") && !re.is_match("c"));
    }
}
