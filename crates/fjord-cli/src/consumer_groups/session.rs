//! The connections of one run: librdkafka for metadata, the group list and ListOffsets;
//! raw connections ([`crate::wire`]) to each group's coordinator for the rest.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::metadata::Metadata;
use rdkafka::{Offset, TopicPartitionList};

use super::{ConsumerGroupsArgs, Tp, is_consumer_protocol};
use crate::client::{self, ClientSettings, ToolContext};
use crate::wire::{CommittedOffset, Conn, Coordinator, GroupDescription};

/// The connections of one run: a librdkafka consumer (metadata, group list, ListOffsets)
/// and raw connections to group coordinators.
pub(crate) struct Session<'a> {
    pub(super) args: &'a ConsumerGroupsArgs,
    settings: ClientSettings,
    consumer: BaseConsumer<ToolContext>,
    pub(super) metadata: Metadata,
    bootstrap: Option<Conn>,
    /// Coordinator per group id.
    coordinator_of: HashMap<String, Coordinator>,
    /// Open connections by coordinator id.
    conns: HashMap<i32, Conn>,
}

impl<'a> Session<'a> {
    /// Creates the librdkafka client and fetches metadata within the deadline (the
    /// "cannot reach the broker" error otherwise).
    pub(super) fn connect(
        args: &'a ConsumerGroupsArgs,
        settings: ClientSettings,
    ) -> anyhow::Result<Self> {
        let (consumer, _ctx): (BaseConsumer<ToolContext>, _) = {
            let mut cfg = settings.config();
            // Never joins or commits: offsets are read and written by raw requests.
            cfg.set("group.id", "fjord-consumer-groups")
                .set("enable.auto.commit", "false");
            client::create(&cfg)?
        };
        let metadata = client::metadata(consumer.client(), &settings, None)?;
        Ok(Session {
            args,
            settings,
            consumer,
            metadata,
            bootstrap: None,
            coordinator_of: HashMap::new(),
            conns: HashMap::new(),
        })
    }

    /// How long one step (a request and its answer) may take: `--timeout`, as in Kafka's
    /// tool, where it bounds each admin call.
    pub(super) fn timeout(&self) -> Duration {
        self.settings.timeout
    }

    /// A raw connection to any bootstrap broker.
    pub(super) fn bootstrap_conn(&mut self) -> anyhow::Result<&mut Conn> {
        if self.bootstrap.is_none() {
            self.bootstrap = Some(Conn::open(&self.settings.bootstrap, self.timeout())?);
        }
        self.bootstrap
            .as_mut()
            .ok_or_else(|| anyhow!("no bootstrap connection"))
    }

    /// The coordinator of `group` (FindCoordinator, cached).
    pub(super) fn coordinator(&mut self, group: &str) -> anyhow::Result<Coordinator> {
        if let Some(c) = self.coordinator_of.get(group) {
            return Ok(c.clone());
        }
        let deadline = Instant::now() + self.timeout();
        let c = self.bootstrap_conn()?.find_coordinator(group, deadline)?;
        self.coordinator_of.insert(group.to_string(), c.clone());
        Ok(c)
    }

    /// A connection to the coordinator of `group`.
    pub(super) fn conn_for(&mut self, group: &str) -> anyhow::Result<&mut Conn> {
        let c = self.coordinator(group)?;
        if !self.conns.contains_key(&c.id) {
            let conn = Conn::open(&c.address(), self.timeout())?;
            self.conns.insert(c.id, conn);
        }
        self.conns
            .get_mut(&c.id)
            .ok_or_else(|| anyhow!("no connection to the coordinator of {group}"))
    }

    /// DescribeGroups for one group.
    pub(super) fn describe_group(&mut self, group: &str) -> anyhow::Result<GroupDescription> {
        let groups = [group.to_string()];
        self.conn_for(group)?
            .describe_groups(&groups)?
            .into_iter()
            .find(|d| d.id == group)
            .ok_or_else(|| anyhow!("DescribeGroups did not answer for group {group}"))
    }

    /// Every committed offset of `group`.
    pub(super) fn committed(&mut self, group: &str) -> anyhow::Result<Vec<CommittedOffset>> {
        self.conn_for(group)?.offset_fetch(group)
    }

    /// Consumer groups (ids, sorted) from librdkafka's group list.
    pub(super) fn consumer_groups(&self) -> anyhow::Result<Vec<String>> {
        let list = self
            .consumer
            .fetch_group_list(None, self.timeout())
            .map_err(|e| anyhow!("listing groups: {}", client::describe_kafka_error(&e)))?;
        let mut ids: Vec<String> = list
            .groups()
            .iter()
            .filter(|g| is_consumer_protocol(g.protocol_type()))
            .map(|g| g.name().to_string())
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// The groups named by `--group`, or every consumer group with `--all-groups`.
    pub(super) fn target_groups(&self) -> anyhow::Result<Vec<String>> {
        if self.args.all_groups {
            self.consumer_groups()
        } else {
            let mut seen = Vec::new();
            for g in &self.args.group {
                if !seen.contains(g) {
                    seen.push(g.clone());
                }
            }
            Ok(seen)
        }
    }

    /// Whether a partition exists in the metadata.
    pub(super) fn partition_exists(&self, topic: &str, partition: i32) -> bool {
        self.metadata
            .topics()
            .iter()
            .any(|t| t.name() == topic && t.partitions().iter().any(|p| p.id() == partition))
    }

    /// ListOffsets through librdkafka for partitions that exist: `Offset::End` (log end),
    /// `Offset::Beginning` (log start) or `Offset::Offset(ms)` (first offset at or after a
    /// timestamp). Values are `None` where the broker had no answer — for a timestamp, when
    /// no record is that new.
    pub(super) fn list_offsets(
        &self,
        partitions: &[Tp],
        spec: Offset,
    ) -> anyhow::Result<HashMap<Tp, Option<i64>>> {
        let mut tpl = TopicPartitionList::new();
        for (t, p) in partitions {
            if self.partition_exists(t, *p) {
                tpl.add_partition_offset(t, *p, spec)
                    .map_err(|e| anyhow!("{e}"))?;
            }
        }
        let mut out: HashMap<Tp, Option<i64>> = partitions
            .iter()
            .map(|(t, p)| ((t.clone(), *p), None))
            .collect();
        if tpl.count() == 0 {
            return Ok(out);
        }
        let result = self
            .consumer
            .offsets_for_times(tpl, self.timeout())
            .map_err(|e| match e {
                rdkafka::error::KafkaError::MetadataFetch(
                    rdkafka::types::RDKafkaErrorCode::OperationTimedOut,
                ) => self.settings.unreachable(self.consumer.client().context()),
                e => anyhow!("listing offsets: {}", client::describe_kafka_error(&e)),
            })?;
        for e in result.elements() {
            let value = match (e.error(), e.offset()) {
                (Ok(()), Offset::Offset(n)) => Some(n),
                _ => None,
            };
            out.insert((e.topic().to_string(), e.partition()), value);
        }
        Ok(out)
    }
}
