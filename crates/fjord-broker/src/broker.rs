//! The broker's shared state: configuration, metadata, hosted partitions, and the admin
//! operations that change them.
//!
//! Admin changes (create/delete topics, add partitions, alter configs) are serialized by one
//! async mutex: validate against the current image, commit records to the metadata log, then
//! bring the hosted partitions in line with the new image. Produce and fetch never take that
//! lock; they look partitions up in a read-mostly map and lock only the partition they touch.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use fjord_log::Log;
use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use crate::config::BrokerConfig;
use crate::coordinator::group::{
    ClassicConfig, CoordinatorConfig, GroupCoordinator, OFFSETS_TOPIC,
};
use crate::metadata::{MetadataError, MetadataImage, MetadataRecord, MetadataStore, TopicImage};
use crate::partition::Partition;
use crate::topic_config;

/// Producer ids are reserved from the metadata log in blocks of this size.
const PRODUCER_ID_BLOCK: i64 = 1000;

/// Longest topic name Kafka accepts.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// A failure that stops the broker from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Another broker holds the data directory.
    #[error("data directory {dir} is in use by another broker (lock file {lock})")]
    Locked {
        /// The data dir.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The metadata log failed.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// A partition log failed to open.
    #[error("partition {topic}-{partition}: {source}")]
    Log {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The cause.
        source: fjord_log::LogError,
    },
}

/// An admin request refused with a Kafka error code and message.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The Kafka error.
    pub error: ResponseError,
    /// Detail for the client (`error_message`).
    pub message: String,
}

impl ApiError {
    /// Builds an error.
    pub fn new(error: ResponseError, message: impl Into<String>) -> Self {
        ApiError {
            error,
            message: message.into(),
        }
    }
}

/// A new topic as requested.
#[derive(Debug, Clone)]
pub struct NewTopic {
    /// Name.
    pub name: String,
    /// Partition count (-1 = `num.partitions`).
    pub partitions: i32,
    /// Replication factor (-1 = `default.replication.factor`).
    pub replication_factor: i16,
    /// Config overrides.
    pub configs: BTreeMap<String, String>,
}

/// The hosted partitions of one topic, by index (`None` where an index is not hosted).
pub type TopicPartitions = Arc<Vec<Option<Arc<Partition>>>>;

/// The broker's hosted partitions, by topic name and then index. A request that names many
/// partitions of a topic (a fetch of 1,000, on each read of its long poll) looks the topic up
/// once, hashing its name once, and its partitions by index. A change copies a topic's list
/// if a reader still holds it (`Arc::make_mut`), so a reader can keep it without the lock.
#[derive(Default)]
struct PartitionMap(HashMap<String, TopicPartitions>);

impl PartitionMap {
    fn topic(&self, topic: &str) -> Option<&TopicPartitions> {
        self.0.get(topic)
    }

    fn get(&self, topic: &str, index: i32) -> Option<&Arc<Partition>> {
        let index = usize::try_from(index).ok()?;
        self.topic(topic)?.get(index)?.as_ref()
    }

    fn insert(&mut self, p: Arc<Partition>) {
        let Ok(index) = usize::try_from(p.index) else {
            return;
        };
        let list = Arc::make_mut(self.0.entry(p.topic.clone()).or_default());
        if list.len() <= index {
            list.resize(index + 1, None);
        }
        list[index] = Some(p);
    }

    fn remove(&mut self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        let index = usize::try_from(index).ok()?;
        let list = self.0.get_mut(topic)?;
        list.get(index)?.as_ref()?;
        let removed = Arc::make_mut(list)[index].take();
        if list.iter().all(Option::is_none) {
            self.0.remove(topic);
        }
        removed
    }

    fn iter(&self) -> impl Iterator<Item = &Arc<Partition>> {
        self.0.values().flat_map(|list| list.iter().flatten())
    }

    /// Empties the map; yields each topic's list (shared if a request still holds it).
    fn drain(&mut self) -> impl Iterator<Item = TopicPartitions> + '_ {
        self.0.drain().map(|(_, list)| list)
    }
}

/// The broker.
pub struct Broker {
    /// Validated configuration.
    pub config: BrokerConfig,
    /// Cluster id, stored in `meta/meta.properties`.
    pub cluster_id: String,
    metadata: MetadataStore,
    partitions: RwLock<PartitionMap>,
    admin: tokio::sync::Mutex<()>,
    advertised: OnceLock<Vec<(String, u16)>>,
    producer_ids: std::sync::Mutex<(i64, i64)>,
    /// The consumer-group coordinator.
    pub groups: GroupCoordinator,
    /// Client quota rates.
    pub quotas: crate::quota::QuotaManager,
    /// Fetch sessions (KIP-227).
    pub(crate) fetch_sessions: crate::api::fetch_session::SessionCache,
    _lock: File,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Runs `f`, which waits for the disk (fsyncs, file creation and removal), without holding up
/// the tasks queued behind the caller on its runtime worker: on a multi-thread runtime the
/// worker first hands them to another thread (`block_in_place`). Elsewhere (a current-thread
/// runtime, or no runtime) `f` simply runs. Under a busy disk one metadata fsync took 1.5 s,
/// and every connection on that worker waited with it.
pub(crate) fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

#[cfg(test)]
impl Broker {
    /// Tests: a broker with data in `dir`, a loopback listener on port 0 (bound only if a
    /// test starts a server) and the `overrides`.
    pub(crate) fn open_for_test(dir: &std::path::Path, overrides: &[&str]) -> Arc<Broker> {
        let mut b = BrokerConfig::builder();
        b.override_kv(&format!("log.dirs={}", dir.display()))
            .unwrap();
        b.override_kv("listeners=PLAINTEXT://127.0.0.1:0").unwrap();
        for kv in overrides {
            b.override_kv(kv).unwrap();
        }
        Broker::open(b.build().unwrap()).unwrap()
    }

    /// Tests: creates topic `name` with `partitions` partitions and `configs`, and returns it.
    pub(crate) async fn create_test_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> TopicImage {
        let new = NewTopic {
            name: name.into(),
            partitions,
            replication_factor: 1,
            configs,
        };
        self.create_topics(vec![new], false)
            .await
            .pop()
            .unwrap()
            .unwrap()
    }
}

/// Checks a topic name the way Kafka does: 1..=249 characters of `[a-zA-Z0-9._-]`, not `.`
/// or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), ApiError> {
    let invalid = |why: String| Err(ApiError::new(ResponseError::InvalidTopicException, why));
    if name.is_empty() {
        return invalid("topic name is empty".into());
    }
    if name == "." || name == ".." {
        return invalid(format!("topic name cannot be \"{name}\""));
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return invalid(format!(
            "topic name is longer than {MAX_TOPIC_NAME_LEN} characters"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return invalid(format!(
            "topic name {name:?} contains {c:?}; legal characters are [a-zA-Z0-9._-]"
        ));
    }
    Ok(())
}

impl Broker {
    /// Opens the data directory: takes its lock, replays the metadata log and opens (and
    /// recovers) every partition the metadata names.
    pub fn open(config: BrokerConfig) -> Result<Arc<Broker>, BrokerError> {
        let dir = config.data_dir.clone();
        let io = |context: String| move |source| BrokerError::Io { context, source };
        std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
        let lock_path = dir.join(".lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(format!("opening {}", lock_path.display())))?;
        if lock.try_lock().is_err() {
            return Err(BrokerError::Locked {
                dir,
                lock: lock_path,
            });
        }
        let meta_dir = dir.join("meta");
        let metadata = MetadataStore::open(&meta_dir)?;
        let cluster_id = load_cluster_id(&config, &meta_dir)?;
        let next_pid = metadata.image().next_producer_id();
        let groups = GroupCoordinator::new(coordinator_config(&config));
        let fetch_sessions = crate::api::fetch_session::SessionCache::new(
            usize::try_from(config.get_i64("max.incremental.fetch.session.cache.slots"))
                .unwrap_or(0),
            crate::api::fetch_session::MAX_CACHED_PARTITIONS,
        );
        let broker = Broker {
            config,
            cluster_id,
            metadata,
            partitions: RwLock::new(PartitionMap::default()),
            admin: tokio::sync::Mutex::new(()),
            advertised: OnceLock::new(),
            producer_ids: std::sync::Mutex::new((next_pid, next_pid)),
            groups,
            quotas: crate::quota::QuotaManager::default(),
            fetch_sessions,
            _lock: lock,
        };
        broker.sync_partitions(&broker.image())?;
        broker.remove_stray_dirs();
        broker.ensure_offsets_topic()?;
        broker.groups.load(&broker, now_ms());
        Ok(Arc::new(broker))
    }

    /// Creates `__consumer_offsets` on first start (compacted, `offsets.topic.num.partitions`).
    fn ensure_offsets_topic(&self) -> Result<(), BrokerError> {
        if self.image().topic(OFFSETS_TOPIC).is_some() {
            return Ok(());
        }
        let record = MetadataRecord::CreateTopic {
            name: OFFSETS_TOPIC.to_string(),
            id: Uuid::new_v4().to_string(),
            partitions: self.groups.config.offsets_partitions,
            replication_factor: 1,
            configs: BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]),
        };
        let image = self.metadata.commit(&[record])?;
        self.sync_partitions(&image)
    }

    /// Returns the current metadata image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.metadata.image()
    }

    /// Records the addresses clients should use (set once the listeners are bound).
    pub fn set_advertised(&self, addrs: Vec<(String, u16)>) {
        let _ = self.advertised.set(addrs);
    }

    /// Returns the advertised host and port of this broker.
    pub fn advertised(&self) -> (String, u16) {
        self.advertised
            .get()
            .and_then(|a| a.first().cloned())
            .unwrap_or_else(|| ("127.0.0.1".to_string(), 9092))
    }

    /// Returns a hosted partition.
    pub fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        let map = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        map.get(topic, index).cloned()
    }

    /// Returns the hosted partitions of `topic`, by index: for a request that names many of
    /// them, one lookup instead of one per partition.
    pub fn topic_partitions(&self, topic: &str) -> Option<TopicPartitions> {
        let map = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        map.topic(topic).cloned()
    }

    /// Returns every hosted partition.
    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions_where(|_| true)
    }

    /// Returns the hosted partitions `keep` accepts (called under the map's read lock, so it
    /// must not lock anything else).
    pub fn partitions_where(&self, keep: impl Fn(&Partition) -> bool) -> Vec<Arc<Partition>> {
        let map = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        map.iter().filter(|p| keep(p)).cloned().collect()
    }

    /// Creates topics. With `validate_only` nothing is written. Results are per topic, in
    /// request order.
    pub async fn create_topics(
        &self,
        topics: Vec<NewTopic>,
        validate_only: bool,
    ) -> Vec<Result<TopicImage, ApiError>> {
        let _guard = self.admin.lock().await;
        let mut out = Vec::with_capacity(topics.len());
        for t in topics {
            out.push(self.create_topic_locked(t, validate_only));
        }
        out
    }

    fn create_topic_locked(
        &self,
        t: NewTopic,
        validate_only: bool,
    ) -> Result<TopicImage, ApiError> {
        validate_topic_name(&t.name)?;
        let image = self.image();
        if image.topic(&t.name).is_some() {
            return Err(ApiError::new(
                ResponseError::TopicAlreadyExists,
                format!("Topic '{}' already exists.", t.name),
            ));
        }
        let partitions = if t.partitions == -1 {
            self.config.num_partitions
        } else {
            t.partitions
        };
        if partitions <= 0 {
            return Err(ApiError::new(
                ResponseError::InvalidPartitions,
                "Number of partitions must be larger than 0.",
            ));
        }
        let rf = if t.replication_factor == -1 {
            self.config.default_replication_factor
        } else {
            t.replication_factor
        };
        if rf <= 0 {
            return Err(ApiError::new(
                ResponseError::InvalidReplicationFactor,
                "Replication factor must be larger than 0.",
            ));
        }
        if rf > 1 {
            return Err(ApiError::new(
                ResponseError::InvalidReplicationFactor,
                format!(
                    "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only 1 broker(s) are registered."
                ),
            ));
        }
        validate_configs(&t.configs)?;
        check_file_budget(i64::from(partitions))?;
        let id = Uuid::new_v4();
        let topic = TopicImage {
            name: t.name.clone(),
            id,
            partitions,
            replication_factor: rf,
            configs: t.configs.clone(),
        };
        if validate_only {
            return Ok(topic);
        }
        self.commit(&[MetadataRecord::CreateTopic {
            name: t.name,
            id: id.to_string(),
            partitions,
            replication_factor: rf,
            configs: t.configs,
        }])?;
        Ok(topic)
    }

    /// Returns the named topic, or UNKNOWN_TOPIC_OR_PARTITION.
    fn existing_topic(&self, name: &str) -> Result<TopicImage, ApiError> {
        self.image().topic(name).cloned().ok_or_else(|| {
            ApiError::new(
                ResponseError::UnknownTopicOrPartition,
                format!("topic {name} does not exist"),
            )
        })
    }

    /// Deletes a topic by name and removes its partition directories.
    pub async fn delete_topic(&self, name: &str) -> Result<TopicImage, ApiError> {
        let _guard = self.admin.lock().await;
        let topic = self.existing_topic(name)?;
        self.commit(&[MetadataRecord::DeleteTopic {
            name: topic.name.clone(),
            id: topic.id.to_string(),
        }])?;
        Ok(topic)
    }

    /// Grows a topic to `total` partitions.
    pub async fn create_partitions(
        &self,
        name: &str,
        total: i32,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        let _guard = self.admin.lock().await;
        let topic = self.existing_topic(name)?;
        if total <= topic.partitions {
            return Err(ApiError::new(
                ResponseError::InvalidPartitions,
                format!(
                    "Topic currently has {} partitions, which is higher than the requested {total}.",
                    topic.partitions
                ),
            ));
        }
        check_file_budget(i64::from(total - topic.partitions))?;
        if validate_only {
            return Ok(());
        }
        self.commit(&[MetadataRecord::CreatePartitions {
            name: name.to_string(),
            partitions: total,
        }])?;
        Ok(())
    }

    /// Replaces a topic's config overrides after validating each one. `change` gets the current
    /// overrides and returns the new set.
    pub async fn alter_topic_configs(
        &self,
        name: &str,
        validate_only: bool,
        change: impl FnOnce(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ApiError>,
    ) -> Result<(), ApiError> {
        let _guard = self.admin.lock().await;
        let topic = self.existing_topic(name)?;
        let configs = change(&topic.configs)?;
        validate_configs(&configs)?;
        if validate_only || configs == topic.configs {
            return Ok(());
        }
        self.commit(&[MetadataRecord::SetTopicConfigs {
            name: name.to_string(),
            configs,
        }])?;
        Ok(())
    }

    /// Sets or removes client quotas: `ops` are (key, Some(value) | None to remove).
    pub async fn alter_quota(
        &self,
        entity: crate::quota::Entity,
        ops: Vec<(String, Option<f64>)>,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        let _guard = self.admin.lock().await;
        if entity.is_empty() {
            return Err(ApiError::new(
                ResponseError::InvalidRequest,
                "a quota entity is required",
            ));
        }
        for (t, _) in &entity {
            if t != "user" && t != "client-id" {
                return Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("unsupported quota entity type {t}"),
                ));
            }
        }
        let mut records = Vec::new();
        for (key, value) in ops {
            if !crate::quota::KEYS.contains(&key.as_str()) {
                return Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("unsupported quota key {key}"),
                ));
            }
            if value.is_some_and(|v| !v.is_finite() || v <= 0.0) {
                return Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("quota {key} must be a positive number"),
                ));
            }
            records.push(MetadataRecord::ClientQuota {
                entity: entity.clone(),
                key,
                value,
            });
        }
        if validate_only || records.is_empty() {
            return Ok(());
        }
        self.commit(&records)
    }

    /// Records a client's use of a quota key and returns the throttle time in ms.
    pub fn record_quota(&self, key: &'static str, client_id: &str, amount: f64) -> i32 {
        let image = self.image();
        if image.quotas().is_empty() {
            return 0;
        }
        let quota = crate::quota::resolve(image.quotas(), key, crate::quota::ANONYMOUS, client_id);
        self.quotas.record(
            key,
            quota,
            crate::quota::ANONYMOUS,
            client_id,
            amount,
            now_ms(),
        )
    }

    /// Hands out a new producer id, reserving a block in the metadata log when needed.
    pub async fn allocate_producer_id(&self) -> Result<i64, ApiError> {
        {
            let mut ids = self.producer_ids.lock().unwrap_or_else(|p| p.into_inner());
            if ids.0 < ids.1 {
                ids.0 += 1;
                return Ok(ids.0 - 1);
            }
        }
        let _guard = self.admin.lock().await;
        let mut ids = self.producer_ids.lock().unwrap_or_else(|p| p.into_inner());
        if ids.0 >= ids.1 {
            let start = self.image().next_producer_id().max(ids.1);
            let next = start + PRODUCER_ID_BLOCK;
            blocking(|| {
                self.metadata
                    .commit(&[MetadataRecord::ProducerIds { next }])
            })
            .map_err(|e| ApiError::new(ResponseError::KafkaStorageError, e.to_string()))?;
            *ids = (start, next);
        }
        ids.0 += 1;
        Ok(ids.0 - 1)
    }

    fn commit(&self, records: &[MetadataRecord]) -> Result<(), ApiError> {
        blocking(|| {
            let image = self.metadata.commit(records).map_err(|e| {
                tracing::error!(error = %e, "metadata commit failed");
                ApiError::new(ResponseError::KafkaStorageError, e.to_string())
            })?;
            self.sync_partitions(&image).map_err(|e| {
                tracing::error!(error = %e, "applying metadata to partitions failed");
                ApiError::new(ResponseError::KafkaStorageError, e.to_string())
            })
        })
    }

    /// Brings hosted partitions in line with `image`: opens new ones, applies config changes,
    /// closes and deletes those of deleted topics.
    ///
    /// The partition map's lock is held only to look and to swap entries, never across file
    /// system work: opening a log creates and syncs files, and deleting one removes a
    /// directory, each of which can wait for a busy disk for as long as it takes, while every
    /// produce and fetch looks its partition up in that map. Callers hold the admin lock (or
    /// are the only user, at open), so no other change runs between the steps.
    fn sync_partitions(&self, image: &MetadataImage) -> Result<(), BrokerError> {
        let now = now_ms();
        let mut missing = Vec::new();
        let stale: Vec<(String, i32)> = {
            let map = self.partitions.read().unwrap_or_else(|p| p.into_inner());
            for topic in image.topics() {
                let effective = topic_config::effective(&topic.configs, &self.config);
                for index in 0..topic.partitions {
                    match map.get(&topic.name, index) {
                        Some(p) if p.topic_id == topic.id => {
                            let mut st = p.lock();
                            if st.config != effective {
                                st.log.set_config(effective.log.clone());
                                st.config = effective.clone();
                            }
                        }
                        _ => missing.push((topic, index, effective.clone())),
                    }
                }
            }
            map.iter()
                .filter(|p| image.topic(&p.topic).is_none_or(|ti| ti.id != p.topic_id))
                .map(|p| (p.topic.clone(), p.index))
                .collect()
        };
        // Stale entries go first: a topic deleted and created again under its name must not
        // open the old directory.
        let removed: Vec<((String, i32), Arc<Partition>)> = {
            let mut map = self.partitions.write().unwrap_or_else(|p| p.into_inner());
            stale
                .into_iter()
                .filter_map(|key| map.remove(&key.0, key.1).map(|p| (key, p)))
                .collect()
        };
        for ((topic, index), p) in removed {
            let dir = self
                .config
                .data_dir
                .join(Partition::dir_name(&topic, index));
            // Renamed now (so the name is free for a topic created again), removed by the
            // log's delete thread after file.delete.delay.ms, as Kafka does.
            let deleted = match Arc::try_unwrap(p) {
                Ok(p) => p.into_state().log.delete(),
                Err(p) => {
                    let delay = p.lock().log.config().file_delete_delay();
                    drop(p);
                    fjord_log::delete_dir(&dir, delay)
                }
            };
            if let Err(e) = deleted {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove deleted partition");
            }
        }
        let mut opened = Vec::with_capacity(missing.len());
        let mut failed = None;
        for (topic, index, effective) in missing {
            let dir = self
                .config
                .data_dir
                .join(Partition::dir_name(&topic.name, index));
            match Log::open(&dir, effective.log.clone(), now) {
                Ok(log) => opened.push(Partition::new(
                    topic.name.clone(),
                    topic.id,
                    index,
                    log,
                    effective,
                    now,
                )),
                Err(source) => {
                    failed = Some(BrokerError::Log {
                        topic: topic.name.clone(),
                        partition: index,
                        source,
                    });
                    break;
                }
            }
        }
        if !opened.is_empty() {
            let mut map = self.partitions.write().unwrap_or_else(|p| p.into_inner());
            for p in opened {
                map.insert(Arc::new(p));
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Deletes partition directories that the metadata does not name (left by a crash between
    /// a topic deletion's metadata record and the removal of its files), and hands deleted
    /// topics' renamed directories to the log's delete thread.
    fn remove_stray_dirs(&self) {
        let Ok(entries) = std::fs::read_dir(&self.config.data_dir) else {
            return;
        };
        let map = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        for entry in entries.flatten() {
            // A deleted topic's partition, renamed before a stop cut its delay short.
            if fjord_log::remove_if_deleted(&entry.path()) {
                continue;
            }
            let name = entry.file_name().to_string_lossy().to_string();
            let Some((topic, idx)) = name.rsplit_once('-') else {
                continue;
            };
            let Ok(idx) = idx.parse::<i32>() else {
                continue;
            };
            if !entry.path().is_dir() || map.get(topic, idx).is_some() {
                continue;
            }
            tracing::info!(dir = %entry.path().display(), "removing partition directory of a deleted topic");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }

    /// Periodic work: `flush.ms` fsyncs, time-based rolls, and (when `retention_due`)
    /// retention. Returns the partitions whose rolled segments wait for their fsync, for the
    /// caller to run [`Partition::flush_rolled`] on each, off this loop (it can take as long as
    /// the disk needs to write a segment).
    ///
    /// A partition nobody has locked since the last walk, with nothing due yet, is skipped
    /// without its lock ([`Partition::housekeeping_due`]); a retention check visits every one.
    pub fn housekeeping(&self, retention_due: bool) -> Vec<Arc<Partition>> {
        let now = now_ms();
        let mut rolled = Vec::new();
        for p in self.partitions_where(|p| retention_due || p.housekeeping_due(now)) {
            if let Err(e) = p.flush_if_due(now) {
                tracing::error!(topic = %p.topic, partition = p.index, error = %e, "flush failed");
            }
            let mut st = p.lock();
            if let Err(e) = st.log.maybe_roll(now) {
                tracing::error!(topic = %p.topic, partition = p.index, error = %e, "roll failed");
            }
            if retention_due {
                match st.log.apply_retention(now) {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(topic = %p.topic, partition = p.index, segments = n, "retention deleted segments")
                    }
                    Err(e) => {
                        tracing::error!(topic = %p.topic, partition = p.index, error = %e, "retention failed")
                    }
                }
            }
            let due = st.log.roll_flush_due();
            let next = st.next_housekeeping_ms();
            st.defer_housekeeping(next);
            drop(st);
            if due {
                rolled.push(p);
            }
        }
        rolled
    }

    /// Flushes every partition and marks each log cleanly closed.
    pub fn close(&self) {
        let mut map = self.partitions.write().unwrap_or_else(|p| p.into_inner());
        for list in map.drain() {
            // A request still holding the topic's list holds its partitions too.
            for p in Arc::unwrap_or_clone(list).into_iter().flatten() {
                let (topic, index) = (p.topic.clone(), p.index);
                match Arc::try_unwrap(p) {
                    Ok(p) => {
                        let st = p.into_state();
                        if let Err(e) = st.log.close() {
                            tracing::error!(%topic, partition = index, error = %e, "close failed");
                        }
                    }
                    Err(p) => {
                        // A request still holds it: flush so nothing is lost; recovery will
                        // scan.
                        if let Err(e) = p.lock().log.flush() {
                            tracing::error!(%topic, partition = index, error = %e, "flush at shutdown failed");
                        }
                    }
                }
            }
        }
    }
}

/// Checks every topic config override (INVALID_CONFIG on the first bad one).
fn validate_configs(configs: &BTreeMap<String, String>) -> Result<(), ApiError> {
    for (k, v) in configs {
        topic_config::validate(k, v).map_err(|m| ApiError::new(ResponseError::InvalidConfig, m))?;
    }
    Ok(())
}

/// Open files a new partition takes at once: its active segment's log, index and time index.
const FILES_PER_PARTITION: i64 = 3;

/// Refuses new partitions that would take this process past its open-file limit
/// (`RLIMIT_NOFILE`), before anything is committed. Past the limit, opening the partitions
/// fails after their topic is in the metadata log, and every later start fails on them too.
/// Where the limit or the open files cannot be read (not Linux), nothing is checked.
fn check_file_budget(new_partitions: i64) -> Result<(), ApiError> {
    use crate::limits::{open_file_limit, open_files};
    let (Some(limit), Some(open)) = (open_file_limit(), open_files()) else {
        return Ok(());
    };
    file_budget(limit, open, new_partitions)
        .map_err(|message| ApiError::new(ResponseError::PolicyViolation, message))
}

/// What [`check_file_budget`] decides, given the soft limit and the files open now. A quarter
/// of the limit, at most 1,024 files, stays free for connections.
fn file_budget(limit: i64, open: i64, new_partitions: i64) -> Result<(), String> {
    let reserve = (limit / 4).min(1024);
    let needed = new_partitions.saturating_mul(FILES_PER_PARTITION);
    if open.saturating_add(needed).saturating_add(reserve) <= limit {
        return Ok(());
    }
    Err(format!(
        "{new_partitions} new partitions need {needed} open files; this broker has {open} of \
         its limit of {limit} open and keeps {reserve} free for connections. Raise the \
         limit (ulimit -n, or LimitNOFILE in a systemd unit) and restart the broker."
    ))
}

fn coordinator_config(config: &BrokerConfig) -> CoordinatorConfig {
    let int = |name: &str| config.get_i64(name);
    CoordinatorConfig {
        classic: ClassicConfig {
            min_session_timeout_ms: int("group.min.session.timeout.ms") as i32,
            max_session_timeout_ms: int("group.max.session.timeout.ms") as i32,
            initial_rebalance_delay_ms: int("group.initial.rebalance.delay.ms") as i32,
        },
        offsets_partitions: int("offsets.topic.num.partitions") as i32,
        offsets_retention_ms: int("offsets.retention.minutes") * 60_000,
        offsets_retention_check_interval_ms: int("offsets.retention.check.interval.ms"),
        offset_metadata_max_bytes: int("offset.metadata.max.bytes").max(0) as usize,
        consumer_session_timeout_ms: int("group.consumer.session.timeout.ms"),
        consumer_heartbeat_interval_ms: int("group.consumer.heartbeat.interval.ms") as i32,
    }
}

fn load_cluster_id(
    config: &BrokerConfig,
    meta_dir: &std::path::Path,
) -> Result<String, BrokerError> {
    let path = meta_dir.join("meta.properties");
    let io = |source| BrokerError::Io {
        context: format!("reading {}", path.display()),
        source,
    };
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Some(id) = text.lines().find_map(|l| l.strip_prefix("cluster.id="))
    {
        return Ok(id.trim().to_string());
    }
    let id = match config.get("cluster.id") {
        Some((v, _)) if !v.is_empty() => v.to_string(),
        _ => short_uuid(Uuid::new_v4()),
    };
    let text = format!("version=1\nnode.id={}\ncluster.id={id}\n", config.node_id);
    std::fs::write(&path, text).map_err(io)?;
    Ok(id)
}

/// Kafka prints cluster ids as URL-safe base64 of the UUID without padding.
fn short_uuid(id: Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("log_topic").is_ok());
        assert!(validate_topic_name("a.b-c_9").is_ok());
        assert!(validate_topic_name(&"x".repeat(249)).is_ok());
        for bad in ["", ".", "..", "bad/name", "sp ace", "ü"] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }

    /// The map finds each partition by topic and index, lists a topic's partitions by index
    /// (gaps as `None`), and copies a topic's list that a reader holds on a change, so a list
    /// taken before the change stays as it was.
    #[test]
    fn the_partition_map_finds_partitions_by_topic_and_index() {
        let dir = tempfile::tempdir().unwrap();
        let partition = |topic: &str, index: i32| {
            let log = Log::open(
                &dir.path().join(Partition::dir_name(topic, index)),
                fjord_log::LogConfig::default(),
                0,
            )
            .unwrap();
            let config = topic_config::effective(&BTreeMap::new(), &BrokerConfig::default());
            Arc::new(Partition::new(
                topic.to_string(),
                Uuid::nil(),
                index,
                log,
                config,
                0,
            ))
        };
        let mut map = PartitionMap::default();
        for (topic, index) in [("a", 0), ("a", 2), ("a-1", 0), ("b", 1)] {
            map.insert(partition(topic, index));
        }
        for (topic, index) in [("a", 0), ("a", 2), ("a-1", 0), ("b", 1)] {
            let p = map.get(topic, index).unwrap();
            assert_eq!((p.topic.as_str(), p.index), (topic, index));
        }
        for (topic, index) in [("a", 1), ("a", 3), ("a", -1), ("a-", 1), ("b", 0), ("c", 0)] {
            assert!(map.get(topic, index).is_none(), "{topic} {index}");
        }
        let before = map.topic("a").cloned().unwrap();
        let indexes = |list: &TopicPartitions| -> Vec<Option<i32>> {
            list.iter().map(|p| p.as_ref().map(|p| p.index)).collect()
        };
        assert_eq!(indexes(&before), [Some(0), None, Some(2)]);
        assert_eq!(map.remove("a", 0).map(|p| p.index), Some(0));
        assert!(map.remove("a", 0).is_none());
        assert_eq!(indexes(&before), [Some(0), None, Some(2)]);
        assert_eq!(indexes(map.topic("a").unwrap()), [None, None, Some(2)]);
        assert_eq!(map.iter().count(), 3);
        assert!(map.remove("a", 2).is_some());
        assert!(map.topic("a").is_none());
        assert_eq!(
            map.drain()
                .map(|l| l.iter().flatten().count())
                .sum::<usize>(),
            2
        );
        assert_eq!(map.iter().count(), 0);
    }

    #[test]
    fn cluster_id_is_22_chars() {
        assert_eq!(short_uuid(Uuid::new_v4()).len(), 22);
    }

    #[test]
    fn new_partitions_must_fit_under_the_open_file_limit() {
        // 20,000 files: 1,024 kept free; 6,000 open leaves room for 4,325 partitions.
        assert!(file_budget(20_000, 6_000, 4_325).is_ok());
        let refused = file_budget(20_000, 6_000, 4_326).unwrap_err();
        assert!(
            refused.contains("4326 new partitions need 12978 open files"),
            "{refused}"
        );
        assert!(refused.contains("ulimit -n"), "{refused}");
        // A small limit keeps a quarter free.
        assert!(file_budget(400, 40, 86).is_ok());
        assert!(file_budget(400, 40, 87).is_err());
        // Counts far past any limit do not overflow.
        assert!(file_budget(1 << 20, 10, i64::MAX).is_err());
    }
}
