//! Fetch sessions (KIP-227).
//!
//! A consumer of many partitions would otherwise name every partition in every Fetch and get
//! every partition back, changed or not. With a session the broker remembers the partitions
//! and their fetch parameters. The client then sends only what changed, and the broker answers
//! only for partitions that have records, a new high watermark or log start offset, or an
//! error.
//!
//! A request's `session_id` and `session_epoch` say what it wants:
//! - epoch -1 (`FINAL_EPOCH`): a full fetch without a session; a named session is closed;
//! - epoch 0 (`INITIAL_EPOCH`): a full fetch that makes a new session (a named one is closed);
//! - a session id and that session's current epoch: an incremental fetch. The request's
//!   partitions are added or updated, then its forgotten partitions removed, and the epoch
//!   moves on. An unknown id is refused with FETCH_SESSION_ID_NOT_FOUND, a wrong epoch with
//!   INVALID_FETCH_SESSION_EPOCH, and a change between topic names (v7–12) and topic ids
//!   (v13+) with FETCH_SESSION_TOPIC_ID_ERROR.
//!
//! The partitions an incremental answer includes go to the end of the session's read order,
//! so a fetch whose byte limit is reached early does not always favour the same partitions.
//!
//! The cache holds at most `max.incremental.fetch.session.cache.slots` sessions (0 turns
//! sessions off). When it is full, a new session takes the place of the one unused longest,
//! if that one has been idle for [`EVICTABLE_AFTER`]. Otherwise the full fetch is answered
//! with session id 0, and the client keeps sending full fetches.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::TopicName;
use kafka_protocol::messages::fetch_request::ForgottenTopic;
use uuid::Uuid;

use super::fetch_answer::{FetchAnswer, PartitionAnswer};
use super::fetch_wanted::{FetchWanted, WantedTopic};

/// Session id of a fetch without a session.
pub(crate) const NO_SESSION: i32 = 0;
/// Epoch of a full fetch that asks for a new session.
const INITIAL_EPOCH: i32 = 0;
/// Epoch of a full fetch that wants no session.
const FINAL_EPOCH: i32 = -1;
/// A full cache evicts a session only after it has been unused this long (Kafka's
/// `min.incremental.fetch.session.eviction.ms` default).
pub(crate) const EVICTABLE_AFTER: Duration = Duration::from_secs(120);

/// Most partitions all sessions together hold (48 bytes each with what the client was last
/// told, so about 12 MB): a session that would pass it is not made, and one that grows past
/// it ends. Either way its client goes on with full fetches. Sessions are kept for clients
/// the broker cannot vouch for, and the sessions a cache of `slots` can hold would otherwise
/// be bounded only by the partitions a request can name.
pub(crate) const MAX_CACHED_PARTITIONS: usize = 250_000;

/// What a fetch request asks of the session cache ([`SessionCache::plan`]).
#[derive(Debug)]
pub(crate) enum Plan {
    /// A full fetch: read the request's partitions and answer for all of them. `create`: make
    /// a session of them afterwards with [`SessionCache::create`].
    Full { create: bool },
    /// An incremental fetch of session `id`: read `topics` (the session's partitions, with the
    /// request's changes applied), then pass the answer to [`SessionCache::finish`].
    Incremental {
        id: i32,
        epoch: i32,
        topics: Arc<Vec<WantedTopic>>,
    },
    /// Refused: the answer carries this top-level error and nothing else.
    Refused(ResponseError),
}

/// The broker's fetch sessions.
pub(crate) struct SessionCache {
    slots: usize,
    max_partitions: usize,
    sessions: Mutex<HashMap<i32, Session>>,
}

struct Session {
    /// The epoch the session's next request must carry.
    epoch: i32,
    /// Whether the session names topics by id (Fetch v13+) rather than by name.
    by_id: bool,
    /// What an incremental fetch reads: every partition with the parameters the client last
    /// gave, in read order. Shared with the fetch being served, copied only if it changes
    /// while that fetch holds it.
    topics: Arc<Vec<WantedTopic>>,
    /// For each partition of `topics` (same shape): what the client was last told.
    sent: Vec<Vec<Sent>>,
    last_used: Instant,
}

/// The fields of a partition's answer that, when they change, make an incremental fetch
/// include the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sent {
    high_watermark: i64,
    log_start_offset: i64,
}

/// A partition the client has not been told about yet.
const UNSENT: Sent = Sent {
    high_watermark: -1,
    log_start_offset: -1,
};

impl Sent {
    fn of(p: &PartitionAnswer) -> Self {
        Sent {
            // After an error the partition is sent again once it has a high watermark.
            high_watermark: if p.error_code == 0 {
                p.high_watermark
            } else {
                -1
            },
            log_start_offset: p.log_start_offset,
        }
    }
}

/// How a session names a topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum TopicKey {
    Id(Uuid),
    Name(TopicName),
}

impl TopicKey {
    fn of(by_id: bool, name: &TopicName, id: Uuid) -> Self {
        if by_id {
            TopicKey::Id(id)
        } else {
            TopicKey::Name(name.clone())
        }
    }
}

/// The epoch after `epoch`; it wraps to 1, since 0 and -1 mean full fetches.
fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX { 1 } else { epoch + 1 }
}

impl Session {
    fn new(by_id: bool, now: Instant) -> Self {
        Session {
            epoch: next_epoch(INITIAL_EPOCH),
            by_id,
            topics: Arc::new(Vec::new()),
            sent: Vec::new(),
            last_used: now,
        }
    }

    fn len(&self) -> usize {
        self.topics.iter().map(|t| t.partitions.len()).sum()
    }

    fn index(&self) -> HashMap<TopicKey, usize> {
        self.topics
            .iter()
            .enumerate()
            .map(|(i, t)| (TopicKey::of(self.by_id, &t.topic, t.topic_id), i))
            .collect()
    }

    /// Adds the partitions `ft` names, or updates their fetch parameters if the session has
    /// them. `sent(i)` is what the client was told of `ft`'s i-th partition, for new ones.
    fn upsert(
        &mut self,
        index: &mut HashMap<TopicKey, usize>,
        ft: &WantedTopic,
        sent: impl Fn(usize) -> Sent,
    ) {
        let key = TopicKey::of(self.by_id, &ft.topic, ft.topic_id);
        let topics = Arc::make_mut(&mut self.topics);
        let sents = &mut self.sent;
        let ti = *index.entry(key).or_insert_with(|| {
            topics.push(WantedTopic {
                topic: ft.topic.clone(),
                topic_id: ft.topic_id,
                partitions: Vec::new(),
            });
            sents.push(Vec::new());
            topics.len() - 1
        });
        let (parts, sents) = (&mut topics[ti].partitions, &mut sents[ti]);
        // A request naming many partitions of one topic finds them through a map.
        let mut by_partition: Option<HashMap<i32, usize>> = (ft.partitions.len() > 8).then(|| {
            parts
                .iter()
                .enumerate()
                .map(|(i, p)| (p.partition, i))
                .collect()
        });
        for (i, fp) in ft.partitions.iter().enumerate() {
            let at = match &by_partition {
                Some(m) => m.get(&fp.partition).copied(),
                None => parts.iter().position(|p| p.partition == fp.partition),
            };
            match at {
                Some(j) => parts[j] = *fp,
                None => {
                    if let Some(m) = &mut by_partition {
                        m.insert(fp.partition, parts.len());
                    }
                    parts.push(*fp);
                    sents.push(sent(i));
                }
            }
        }
    }

    /// Removes the partitions `f` names (topics left empty stay until [`Session::compact`]).
    fn forget(&mut self, index: &HashMap<TopicKey, usize>, f: &ForgottenTopic) {
        let Some(&ti) = index.get(&TopicKey::of(self.by_id, &f.topic, f.topic_id)) else {
            return;
        };
        let gone: HashSet<i32> = f.partitions.iter().copied().collect();
        let topics = Arc::make_mut(&mut self.topics);
        let keep: Vec<bool> = topics[ti]
            .partitions
            .iter()
            .map(|p| !gone.contains(&p.partition))
            .collect();
        retain_aligned(&mut topics[ti].partitions, &mut self.sent[ti], &keep);
    }

    /// Drops topics without partitions.
    fn compact(&mut self) {
        if self.topics.iter().all(|t| !t.partitions.is_empty()) {
            return;
        }
        let keep: Vec<bool> = self
            .topics
            .iter()
            .map(|t| !t.partitions.is_empty())
            .collect();
        retain_aligned(Arc::make_mut(&mut self.topics), &mut self.sent, &keep);
    }
}

/// The partitions all `sessions` hold.
fn cached_partitions(sessions: &HashMap<i32, Session>) -> usize {
    sessions.values().map(Session::len).sum()
}

/// Keeps the elements of `a` and `b` (same length as `keep`) where `keep` is true, in order.
fn retain_aligned<A, B>(a: &mut Vec<A>, b: &mut Vec<B>, keep: &[bool]) {
    let mut kept = 0;
    for (i, &k) in keep.iter().enumerate() {
        if k {
            a.swap(kept, i);
            b.swap(kept, i);
            kept += 1;
        }
    }
    a.truncate(kept);
    b.truncate(kept);
}

/// Moves the elements of `a` and `b` where `last` is true to the end, keeping the order within
/// both groups.
fn rotate_aligned<A, B>(a: &mut Vec<A>, b: &mut Vec<B>, last: &[bool]) {
    if !last.contains(&true) {
        return;
    }
    let (mut a_stay, mut a_go) = (Vec::with_capacity(a.len()), Vec::new());
    let (mut b_stay, mut b_go) = (Vec::with_capacity(b.len()), Vec::new());
    for ((x, y), &l) in a.drain(..).zip(b.drain(..)).zip(last) {
        if l {
            a_go.push(x);
            b_go.push(y);
        } else {
            a_stay.push(x);
            b_stay.push(y);
        }
    }
    a_stay.append(&mut a_go);
    b_stay.append(&mut b_go);
    *a = a_stay;
    *b = b_stay;
}

impl SessionCache {
    /// A cache of at most `slots` sessions (0 makes none) holding at most `max_partitions`
    /// partitions together ([`MAX_CACHED_PARTITIONS`]).
    pub(crate) fn new(slots: usize, max_partitions: usize) -> Self {
        SessionCache {
            slots,
            max_partitions,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Session>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sessions held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.sessions().len()
    }

    /// Decides how `req` (of a version with sessions, v7+) is served, and for an incremental
    /// fetch applies its changes to the session. `by_id`: the request names topics by id.
    pub(crate) fn plan(&self, req: &FetchWanted, by_id: bool, now: Instant) -> Plan {
        let (id, epoch) = (req.session_id, req.session_epoch);
        if epoch == INITIAL_EPOCH || epoch == FINAL_EPOCH {
            if id != NO_SESSION && self.sessions().remove(&id).is_some() {
                tracing::debug!(session = id, "fetch session closed by its client");
            }
            return Plan::Full {
                create: epoch == INITIAL_EPOCH,
            };
        }
        let mut sessions = self.sessions();
        let Some(session) = sessions.get_mut(&id) else {
            return Plan::Refused(ResponseError::FetchSessionIdNotFound);
        };
        if session.epoch != epoch {
            return Plan::Refused(ResponseError::InvalidFetchSessionEpoch);
        }
        if session.by_id != by_id {
            return Plan::Refused(ResponseError::FetchSessionTopicIdError);
        }
        let before = session.len();
        if !req.topics.is_empty() || !req.forgotten_topics_data.is_empty() {
            let mut index = session.index();
            for ft in &req.topics {
                session.upsert(&mut index, ft, |_| UNSENT);
            }
            for f in &req.forgotten_topics_data {
                session.forget(&index, f);
            }
            session.compact();
        }
        let grown = session.len() > before;
        if session.topics.is_empty() {
            // Nothing left to fetch: the session ends, and the request is served as it is
            // (its partitions, if any, were all forgotten again).
            sessions.remove(&id);
            return Plan::Full { create: false };
        }
        if grown && cached_partitions(&sessions) > self.max_partitions {
            tracing::debug!(
                session = id,
                "fetch session ended: the sessions hold too many partitions"
            );
            sessions.remove(&id);
            return Plan::Full { create: false };
        }
        let Some(session) = sessions.get_mut(&id) else {
            return Plan::Refused(ResponseError::FetchSessionIdNotFound);
        };
        session.epoch = next_epoch(epoch);
        session.last_used = now;
        Plan::Incremental {
            id,
            epoch: session.epoch,
            topics: Arc::clone(&session.topics),
        }
    }

    /// Makes a session of the partitions of a full fetch (`topics`, answered by `response`,
    /// one answer per partition in request order). Returns its id, or [`NO_SESSION`] when the
    /// answer failed, named no partition, or the cache has no room.
    pub(crate) fn create(
        &self,
        by_id: bool,
        topics: &[WantedTopic],
        response: &FetchAnswer,
        now: Instant,
    ) -> i32 {
        if self.slots == 0 || response.error_code != 0 {
            return NO_SESSION;
        }
        let mut session = Session::new(by_id, now);
        let mut index = HashMap::new();
        for (ft, answered) in topics.iter().zip(&response.responses) {
            session.upsert(&mut index, ft, |i| {
                answered.partitions.get(i).map_or(UNSENT, Sent::of)
            });
        }
        if session.len() == 0 {
            return NO_SESSION;
        }
        let mut sessions = self.sessions();
        if cached_partitions(&sessions) + session.len() > self.max_partitions {
            return NO_SESSION;
        }
        if sessions.len() >= self.slots {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(&id, s)| (id, s.last_used));
            match oldest {
                Some((old, used)) if now.saturating_duration_since(used) >= EVICTABLE_AFTER => {
                    tracing::debug!(session = old, "fetch session evicted for a new one");
                    sessions.remove(&old);
                }
                _ => return NO_SESSION,
            }
        }
        let id = loop {
            // Random, so a client still holding an id from before a restart is unlikely to
            // name someone else's session.
            let id = (Uuid::new_v4().as_u128() as i32) & i32::MAX;
            if id != NO_SESSION && !sessions.contains_key(&id) {
                break id;
            }
        };
        sessions.insert(id, session);
        id
    }

    /// Turns the answer to an incremental fetch (one answer per partition of `topics`, in
    /// order) into the partitions that changed since the client was last told, records what
    /// it is told now, and moves those partitions to the end of the read order. When the
    /// session was closed or used again meanwhile, the whole answer goes out unchanged (an
    /// incremental answer may include any partition of the session).
    pub(crate) fn finish(
        &self,
        id: i32,
        epoch: i32,
        topics: Arc<Vec<WantedTopic>>,
        response: &mut FetchAnswer,
    ) {
        let mut sessions = self.sessions();
        let Some(session) = sessions.get_mut(&id) else {
            return;
        };
        let unchanged = session.epoch == epoch && Arc::ptr_eq(&session.topics, &topics);
        drop(topics);
        let same_shape = response.responses.len() == session.sent.len()
            && response
                .responses
                .iter()
                .zip(&session.sent)
                .all(|(t, s)| t.partitions.len() == s.len());
        if !unchanged || !same_shape {
            return;
        }
        let mut topic_moved = Vec::with_capacity(session.sent.len());
        let session_topics = Arc::make_mut(&mut session.topics);
        for ((answer, sent), fetch) in response
            .responses
            .iter_mut()
            .zip(session.sent.iter_mut())
            .zip(session_topics.iter_mut())
        {
            let include: Vec<bool> = answer
                .partitions
                .iter()
                .zip(sent.iter_mut())
                .map(|(p, s)| {
                    let now = Sent::of(p);
                    let has_records = !p.records.is_empty();
                    let changed = now != *s;
                    *s = now;
                    has_records || changed || p.error_code != 0
                })
                .collect();
            let mut keep = include.iter();
            answer
                .partitions
                .retain(|_| keep.next().copied().unwrap_or(true));
            topic_moved.push(include.contains(&true));
            rotate_aligned(&mut fetch.partitions, sent, &include);
        }
        response.responses.retain(|t| !t.partitions.is_empty());
        rotate_aligned(session_topics, &mut session.sent, &topic_moved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Topic "t" with `parts` to read from offset 0.
    fn topic(parts: &[i32]) -> WantedTopic {
        WantedTopic {
            topic: TopicName(kafka_protocol::protocol::StrBytes::from_static_str("t")),
            topic_id: Uuid::nil(),
            partitions: parts
                .iter()
                .map(|&p| super::super::fetch_wanted::WantedPartition::new(p))
                .collect(),
        }
    }

    /// An answer of one topic with `n` partitions answered without error.
    fn answered(n: usize) -> FetchAnswer {
        let ok = PartitionAnswer {
            high_watermark: 0,
            ..PartitionAnswer::new(0)
        };
        FetchAnswer {
            responses: vec![super::super::fetch_answer::TopicAnswer {
                partitions: vec![ok; n],
                ..Default::default()
            }],
            ..FetchAnswer::default()
        }
    }

    #[test]
    fn epochs_wrap_past_zero_and_minus_one() {
        assert_eq!(next_epoch(1), 2);
        assert_eq!(next_epoch(i32::MAX), 1);
    }

    /// A full cache evicts the session unused longest once it has been idle for
    /// [`EVICTABLE_AFTER`], and not before.
    #[test]
    fn a_full_cache_evicts_only_sessions_idle_long_enough() {
        let topics = vec![topic(&[0])];
        let response = answered(1);
        let cache = SessionCache::new(1, MAX_CACHED_PARTITIONS);
        let t0 = Instant::now();
        let first = cache.create(false, &topics, &response, t0);
        assert_ne!(first, NO_SESSION);
        let soon = t0 + EVICTABLE_AFTER - Duration::from_secs(1);
        assert_eq!(cache.create(false, &topics, &response, soon), NO_SESSION);
        let later = t0 + EVICTABLE_AFTER;
        let second = cache.create(false, &topics, &response, later);
        assert!(second != NO_SESSION && second != first);
        assert_eq!(cache.len(), 1);
        // An answer with a top-level error or without partitions makes no session.
        let failed = FetchAnswer {
            error_code: 1,
            ..response.clone()
        };
        let later = later + EVICTABLE_AFTER;
        assert_eq!(cache.create(false, &topics, &failed, later), NO_SESSION);
        assert_eq!(cache.create(false, &[], &response, later), NO_SESSION);
    }

    /// All sessions together hold at most the partition budget: a session past it is not
    /// made, and one that grows past it ends (its request served without a session).
    #[test]
    fn sessions_hold_at_most_the_partition_budget() {
        let cache = SessionCache::new(10, 3);
        let now = Instant::now();
        let first = cache.create(false, &[topic(&[0, 1])], &answered(2), now);
        assert_ne!(first, NO_SESSION);
        assert_eq!(
            cache.create(false, &[topic(&[0, 1])], &answered(2), now),
            NO_SESSION
        );
        let incremental = |epoch: i32, parts: &[i32]| FetchWanted {
            session_id: first,
            session_epoch: epoch,
            topics: vec![topic(parts)],
            ..FetchWanted::default()
        };
        let plan = cache.plan(&incremental(1, &[2]), false, now);
        assert!(matches!(plan, Plan::Incremental { .. }), "{plan:?}");
        let plan = cache.plan(&incremental(2, &[3]), false, now);
        assert!(matches!(plan, Plan::Full { create: false }), "{plan:?}");
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn aligned_helpers_keep_order() {
        let (mut a, mut b) = (vec![1, 2, 3, 4, 5], vec!['a', 'b', 'c', 'd', 'e']);
        retain_aligned(&mut a, &mut b, &[true, false, true, false, true]);
        assert_eq!((a.clone(), b.clone()), (vec![1, 3, 5], vec!['a', 'c', 'e']));
        rotate_aligned(&mut a, &mut b, &[true, false, false]);
        assert_eq!((a, b), (vec![3, 5, 1], vec!['c', 'e', 'a']));
    }
}
