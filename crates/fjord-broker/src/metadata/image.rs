//! The immutable view of cluster state that handlers read.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use super::MetadataRecord;

/// One topic as the metadata log describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    /// Topic name.
    pub name: String,
    /// Topic id.
    pub id: Uuid,
    /// Partition count.
    pub partitions: i32,
    /// Replication factor.
    pub replication_factor: i16,
    /// Config overrides (only what was set on the topic).
    pub configs: BTreeMap<String, String>,
}

/// Cluster state after applying every record of the metadata log, in order.
#[derive(Debug, Clone, Default)]
pub struct MetadataImage {
    topics: BTreeMap<String, TopicImage>,
    ids: HashMap<Uuid, String>,
    next_producer_id: i64,
    quotas: BTreeMap<crate::quota::Entity, BTreeMap<String, f64>>,
    /// Offset of the last applied record (its index in the log), -1 when empty.
    pub last_applied: i64,
}

impl MetadataImage {
    /// Returns the image of an empty metadata log.
    pub fn empty() -> Self {
        MetadataImage {
            last_applied: -1,
            ..Default::default()
        }
    }

    /// Returns a topic by name.
    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topics.get(name)
    }

    /// Returns a topic by id.
    pub fn topic_by_id(&self, id: &Uuid) -> Option<&TopicImage> {
        self.ids.get(id).and_then(|name| self.topics.get(name))
    }

    /// Iterates topics in name order.
    pub fn topics(&self) -> impl Iterator<Item = &TopicImage> {
        self.topics.values()
    }

    /// Returns every client quota by entity.
    pub fn quotas(&self) -> &BTreeMap<crate::quota::Entity, BTreeMap<String, f64>> {
        &self.quotas
    }

    /// Returns the next producer id not yet handed out.
    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }

    /// Applies one record. Records that do not fit the image (e.g. a config change for a
    /// topic that no longer exists) are ignored: the store only appends valid records, and
    /// replay must never fail on a log that was valid when written.
    pub fn apply(&mut self, record: &MetadataRecord) {
        self.last_applied += 1;
        match record {
            MetadataRecord::CreateTopic {
                name,
                id,
                partitions,
                replication_factor,
                configs,
            } => {
                let id = Uuid::parse_str(id).unwrap_or_else(|_| Uuid::nil());
                self.ids.insert(id, name.clone());
                self.topics.insert(
                    name.clone(),
                    TopicImage {
                        name: name.clone(),
                        id,
                        partitions: *partitions,
                        replication_factor: *replication_factor,
                        configs: configs.clone(),
                    },
                );
            }
            MetadataRecord::CreatePartitions { name, partitions } => {
                if let Some(t) = self.topics.get_mut(name) {
                    t.partitions = t.partitions.max(*partitions);
                }
            }
            MetadataRecord::SetTopicConfigs { name, configs } => {
                if let Some(t) = self.topics.get_mut(name) {
                    t.configs = configs.clone();
                }
            }
            MetadataRecord::DeleteTopic { name, .. } => {
                if let Some(t) = self.topics.remove(name) {
                    self.ids.remove(&t.id);
                }
            }
            MetadataRecord::ClientQuota { entity, key, value } => {
                let entity = crate::quota::normalize(entity.clone());
                match value {
                    Some(v) => {
                        self.quotas
                            .entry(entity)
                            .or_default()
                            .insert(key.clone(), *v);
                    }
                    None => {
                        if let Some(values) = self.quotas.get_mut(&entity) {
                            values.remove(key);
                            if values.is_empty() {
                                self.quotas.remove(&entity);
                            }
                        }
                    }
                }
            }
            MetadataRecord::ProducerIds { next } => {
                self.next_producer_id = self.next_producer_id.max(*next);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_sequence() {
        let mut img = MetadataImage::empty();
        let id = Uuid::new_v4();
        img.apply(&MetadataRecord::CreateTopic {
            name: "a".into(),
            id: id.to_string(),
            partitions: 2,
            replication_factor: 1,
            configs: BTreeMap::new(),
        });
        img.apply(&MetadataRecord::CreatePartitions {
            name: "a".into(),
            partitions: 5,
        });
        img.apply(&MetadataRecord::SetTopicConfigs {
            name: "a".into(),
            configs: BTreeMap::from([("retention.ms".into(), "1".into())]),
        });
        let t = img.topic_by_id(&id).unwrap();
        assert_eq!(t.partitions, 5);
        assert_eq!(t.configs.get("retention.ms").map(String::as_str), Some("1"));
        img.apply(&MetadataRecord::DeleteTopic {
            name: "a".into(),
            id: id.to_string(),
        });
        assert!(img.topic("a").is_none() && img.topic_by_id(&id).is_none());
        assert_eq!(img.last_applied, 3);
    }
}
