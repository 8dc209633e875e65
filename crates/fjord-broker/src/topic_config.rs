//! Topic-level configs: names, validation, broker-level synonyms and resolution.
//!
//! A topic's effective value for a config is its override (set at creation or by
//! Alter/IncrementalAlterConfigs) or else the broker's value of the synonym property, which is
//! itself either set at start or Kafka's default. DescribeConfigs reports all three layers.

use std::collections::BTreeMap;

use crate::config::{BrokerConfig, ConfigType, Source};

/// One topic config Fjord understands.
pub struct TopicProperty {
    /// Topic-level name, e.g. `retention.ms`.
    pub name: &'static str,
    /// Broker property that supplies the default, if any.
    pub synonym: Option<&'static str>,
    /// Default when there is no broker synonym.
    pub default: &'static str,
    /// Value type.
    pub kind: ConfigType,
    /// One-line documentation.
    pub doc: &'static str,
}

const fn tp(
    name: &'static str,
    synonym: Option<&'static str>,
    default: &'static str,
    kind: ConfigType,
    doc: &'static str,
) -> TopicProperty {
    TopicProperty {
        name,
        synonym,
        default,
        kind,
        doc,
    }
}

/// Every topic config, in DescribeConfigs order.
pub const TOPIC_PROPERTIES: &[TopicProperty] = &[
    tp(
        "cleanup.policy",
        Some("log.cleanup.policy"),
        "delete",
        ConfigType::List,
        "delete or compact (compaction is not implemented yet; compact only enforces keyed records).",
    ),
    tp(
        "compression.type",
        Some("compression.type"),
        "producer",
        ConfigType::String,
        "Only 'producer': batches are stored as the producer compressed them.",
    ),
    tp(
        "file.delete.delay.ms",
        Some("log.segment.delete.delay.ms"),
        "60000",
        ConfigType::Long,
        "Time a deleted segment's files stay (renamed .deleted) before they are removed.",
    ),
    tp(
        "flush.messages",
        Some("log.flush.interval.messages"),
        "9223372036854775807",
        ConfigType::Long,
        "Messages appended before the partition is fsynced.",
    ),
    tp(
        "flush.ms",
        Some("log.flush.interval.ms"),
        "9223372036854775807",
        ConfigType::Long,
        "Longest time appended data stays un-fsynced.",
    ),
    tp(
        "index.interval.bytes",
        Some("log.index.interval.bytes"),
        "4096",
        ConfigType::Int,
        "Bytes of log between offset index entries.",
    ),
    tp(
        "max.message.bytes",
        Some("message.max.bytes"),
        "1048588",
        ConfigType::Int,
        "Largest record batch accepted for this topic.",
    ),
    tp(
        "message.timestamp.type",
        Some("log.message.timestamp.type"),
        "CreateTime",
        ConfigType::String,
        "CreateTime keeps the producer's timestamps; LogAppendTime stamps batches at append.",
    ),
    tp(
        "min.insync.replicas",
        Some("min.insync.replicas"),
        "1",
        ConfigType::Int,
        "Replicas that must acknowledge an acks=all produce.",
    ),
    tp(
        "retention.bytes",
        Some("log.retention.bytes"),
        "-1",
        ConfigType::Long,
        "Partition size above which old segments are deleted; -1 is unlimited.",
    ),
    tp(
        "retention.ms",
        Some("log.retention.ms"),
        "604800000",
        ConfigType::Long,
        "Age after which old segments are deleted; -1 keeps them forever.",
    ),
    tp(
        "segment.bytes",
        Some("log.segment.bytes"),
        "1073741824",
        ConfigType::Int,
        "Segment file size before a new segment is rolled.",
    ),
    tp(
        "segment.ms",
        Some("log.roll.ms"),
        "604800000",
        ConfigType::Long,
        "Segment age before a new segment is rolled.",
    ),
];

/// Looks up a topic config by name.
pub fn topic_property(name: &str) -> Option<&'static TopicProperty> {
    TOPIC_PROPERTIES.iter().find(|p| p.name == name)
}

/// Checks a value for a topic config; `Err` carries the reason.
pub fn validate(name: &str, value: &str) -> Result<(), String> {
    let Some(p) = topic_property(name) else {
        return Err(format!("unknown topic config `{name}`"));
    };
    let number = |min: i64| -> Result<(), String> {
        match value.trim().parse::<i64>() {
            Ok(v) if v >= min => Ok(()),
            Ok(_) => Err(format!("`{name}` must be at least {min}")),
            Err(_) => Err(format!("`{name}` must be an integer, got `{value}`")),
        }
    };
    match name {
        "cleanup.policy" => {
            for part in value.split(',').map(str::trim) {
                if part != "delete" && part != "compact" {
                    return Err(format!(
                        "`cleanup.policy` must be delete and/or compact, got `{part}`"
                    ));
                }
            }
            Ok(())
        }
        "compression.type" if value != "producer" => {
            Err("`compression.type` must be 'producer' (batches are stored as sent)".into())
        }
        "message.timestamp.type" if value != "CreateTime" && value != "LogAppendTime" => {
            Err("`message.timestamp.type` must be CreateTime or LogAppendTime".into())
        }
        "retention.ms" | "retention.bytes" => number(-1),
        "file.delete.delay.ms" => number(0),
        "segment.bytes" => number(14),
        "min.insync.replicas"
        | "flush.messages"
        | "flush.ms"
        | "segment.ms"
        | "max.message.bytes"
        | "index.interval.bytes" => number(if p.kind == ConfigType::Long { 1 } else { 0 }),
        _ => Ok(()),
    }
}

/// Where a topic config's effective value came from (Kafka's ConfigSource codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicSource {
    /// Set on the topic (DYNAMIC_TOPIC_CONFIG, 1).
    Topic,
    /// Set on the broker at start (STATIC_BROKER_CONFIG, 4).
    StaticBroker,
    /// Built-in default (DEFAULT_CONFIG, 5).
    Default,
}

impl TopicSource {
    /// Returns Kafka's wire code.
    pub fn code(self) -> i8 {
        match self {
            TopicSource::Topic => 1,
            TopicSource::StaticBroker => 4,
            TopicSource::Default => 5,
        }
    }
}

/// A resolved value plus the layers below it (for DescribeConfigs synonyms).
pub struct Resolved {
    /// The effective value.
    pub value: String,
    /// Its source.
    pub source: TopicSource,
    /// (name, value, source) from most to least specific.
    pub synonyms: Vec<(String, String, TopicSource)>,
}

/// Resolves `p` for a topic with `overrides` on a broker configured as `broker`.
pub fn resolve(
    p: &TopicProperty,
    overrides: &BTreeMap<String, String>,
    broker: &BrokerConfig,
) -> Resolved {
    let mut synonyms = Vec::new();
    if let Some(v) = overrides.get(p.name) {
        synonyms.push((p.name.to_string(), v.clone(), TopicSource::Topic));
    }
    match p
        .synonym
        .and_then(|s| broker.get(s).map(|(v, src)| (s, v, src)))
    {
        Some((s, v, Source::Static)) => {
            synonyms.push((s.to_string(), v.to_string(), TopicSource::StaticBroker));
            let default = crate::config::broker_property(s).map_or(p.default, |bp| bp.default);
            synonyms.push((s.to_string(), default.to_string(), TopicSource::Default));
        }
        Some((s, v, Source::Default)) => {
            synonyms.push((s.to_string(), v.to_string(), TopicSource::Default));
        }
        None => synonyms.push((
            p.name.to_string(),
            p.default.to_string(),
            TopicSource::Default,
        )),
    }
    let (value, source) = synonyms
        .first()
        .map(|(_, v, s)| (v.clone(), *s))
        .unwrap_or_else(|| (p.default.to_string(), TopicSource::Default));
    Resolved {
        value,
        source,
        synonyms,
    }
}

/// The effective settings of one topic that the log and produce path use.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveTopicConfig {
    /// Settings handed to each partition's log.
    pub log: fjord_log::LogConfig,
    /// `max.message.bytes`.
    pub max_message_bytes: usize,
    /// `message.timestamp.type == LogAppendTime`.
    pub log_append_time: bool,
    /// `cleanup.policy` contains `compact`.
    pub compact: bool,
    /// `flush.ms` (None = never by time).
    pub flush_ms: Option<i64>,
    /// `min.insync.replicas`.
    pub min_insync_replicas: i64,
}

/// Computes a topic's effective settings.
pub fn effective(
    overrides: &BTreeMap<String, String>,
    broker: &BrokerConfig,
) -> EffectiveTopicConfig {
    let get = |name: &str| -> String {
        topic_property(name)
            .map(|p| resolve(p, overrides, broker).value)
            .unwrap_or_default()
    };
    let num = |name: &str| -> i64 { get(name).trim().parse().unwrap_or(-1) };
    let opt = |v: i64| {
        if v < 0 || v == i64::MAX {
            None
        } else {
            Some(v)
        }
    };
    let policy = get("cleanup.policy");
    let compact = policy.split(',').any(|p| p.trim() == "compact");
    // A compact-only topic keeps data until compaction replaces it: no time or size retention.
    let deletes = policy.split(',').any(|p| p.trim() == "delete");
    let log = fjord_log::LogConfig {
        segment_bytes: num("segment.bytes").max(14) as u64,
        roll_ms: opt(num("segment.ms")),
        retention_ms: if deletes {
            opt(num("retention.ms"))
        } else {
            None
        },
        retention_bytes: if deletes {
            opt(num("retention.bytes")).map(|v| v as u64)
        } else {
            None
        },
        flush_interval_messages: opt(num("flush.messages")).map(|v| v as u64),
        index_interval_bytes: num("index.interval.bytes").clamp(1, i32::MAX as i64) as u32,
        file_delete_delay_ms: num("file.delete.delay.ms").max(0) as u64,
    };
    EffectiveTopicConfig {
        log,
        max_message_bytes: num("max.message.bytes").max(0) as usize,
        log_append_time: get("message.timestamp.type") == "LogAppendTime",
        compact,
        flush_ms: opt(num("flush.ms")),
        min_insync_replicas: num("min.insync.replicas"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_reports_layers() {
        let mut b = BrokerConfig::builder();
        b.override_kv("log.retention.ms=1000").unwrap();
        let broker = b.build().unwrap();
        let p = topic_property("retention.ms").unwrap();
        let none = BTreeMap::new();
        let r = resolve(p, &none, &broker);
        assert_eq!(
            (r.value.as_str(), r.source),
            ("1000", TopicSource::StaticBroker)
        );
        assert_eq!(r.synonyms.len(), 2);
        let over = BTreeMap::from([("retention.ms".to_string(), "5".to_string())]);
        let r = resolve(p, &over, &broker);
        assert_eq!((r.value.as_str(), r.source), ("5", TopicSource::Topic));
        let p = topic_property("segment.bytes").unwrap();
        let r = resolve(p, &none, &broker);
        assert_eq!(
            (r.value.as_str(), r.source),
            ("1073741824", TopicSource::Default)
        );
    }

    #[test]
    fn validation() {
        assert!(validate("retention.ms", "-1").is_ok());
        assert!(validate("retention.ms", "x").is_err());
        assert!(validate("cleanup.policy", "compact,delete").is_ok());
        assert!(validate("cleanup.policy", "none").is_err());
        assert!(validate("no.such", "1").is_err());
        assert!(validate("segment.bytes", "10").is_err());
    }

    #[test]
    fn effective_config() {
        let broker = BrokerConfig::default();
        let over = BTreeMap::from([
            ("segment.bytes".to_string(), "1024".to_string()),
            ("retention.ms".to_string(), "-1".to_string()),
            (
                "message.timestamp.type".to_string(),
                "LogAppendTime".to_string(),
            ),
        ]);
        let e = effective(&over, &broker);
        assert_eq!(e.log.segment_bytes, 1024);
        assert_eq!(e.log.retention_ms, None);
        assert!(e.log_append_time);
        assert_eq!(e.max_message_bytes, 1048588);
        assert_eq!(e.flush_ms, None);
    }
}
