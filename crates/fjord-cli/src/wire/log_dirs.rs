//! DescribeLogDirs for `fjord log-dirs` (`kafka-log-dirs`): each broker's log directories,
//! the size of every partition in them, and (KIP-827) the volume's size and free space.

use anyhow::bail;
use kafka_protocol::messages::{ApiKey, DescribeLogDirsRequest, DescribeLogDirsResponse};

use super::{Conn, error_text};

/// One log directory of a broker.
#[derive(Debug, Clone, PartialEq)]
pub struct LogDir {
    pub path: String,
    /// The directory's error code (0: none).
    pub error_code: i16,
    /// The volume's size and usable bytes; -1 where the broker does not know.
    pub total_bytes: i64,
    pub usable_bytes: i64,
    pub partitions: Vec<LogDirPartition>,
}

/// One partition's replica in a log directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDirPartition {
    pub topic: String,
    pub partition: i32,
    pub size: i64,
    pub offset_lag: i64,
    pub is_future: bool,
}

impl Conn {
    /// The log directories of the broker this connection is to, with every partition.
    pub fn describe_log_dirs(&mut self) -> anyhow::Result<Vec<LogDir>> {
        let req = DescribeLogDirsRequest::default().with_topics(None);
        let resp: DescribeLogDirsResponse = self.call(ApiKey::DescribeLogDirs, &req)?;
        if resp.error_code != 0 {
            bail!(error_text(resp.error_code, None));
        }
        Ok(resp
            .results
            .into_iter()
            .map(|r| LogDir {
                path: r.log_dir.to_string(),
                error_code: r.error_code,
                total_bytes: r.total_bytes,
                usable_bytes: r.usable_bytes,
                partitions: r
                    .topics
                    .into_iter()
                    .flat_map(|t| {
                        let topic = t.name.0.to_string();
                        t.partitions.into_iter().map(move |p| LogDirPartition {
                            topic: topic.clone(),
                            partition: p.partition_index,
                            size: p.partition_size,
                            offset_lag: p.offset_lag,
                            is_future: p.is_future_key,
                        })
                    })
                    .collect(),
            })
            .collect())
    }
}
