//! The Fjord broker: a Kafka wire-protocol server over durable partition logs.
//!
//! Main types: [`BrokerConfig`] (Kafka property names, validated at start), [`Broker`]
//! (shared state: metadata image, hosted partitions, admin operations) and [`Server`]
//! (listeners and connections).
//!
//! How a request flows: `server::connection` reads a size-prefixed frame (bounded by
//! `socket.request.max.bytes`), parses the request header with the `kafka-protocol` crate,
//! checks every count and length of the body against the bytes left (`api::bounds`), decodes
//! the body, and hands the request to `api::dispatch`, which calls the handler of that API
//! family (`api::produce`, `api::fetch`, ...). Handlers read the current
//! [`metadata::MetadataImage`], lock only the partitions they touch, and return the response
//! body, which the connection encodes and writes back in request order.
//!
//! Cluster state changes (topics, partitions, configs, producer-id blocks) are records appended
//! to the metadata log ([`metadata::MetadataStore`]) and then applied to a new image; record
//! batches live in one [`fjord_log::Log`] per partition.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod alloc;
pub mod api;
pub mod broker;
pub mod config;
pub mod coordinator;
pub mod limits;
pub mod metadata;
pub mod partition;
pub mod quota;
pub mod sched;
pub mod server;
pub mod topic_config;

pub use broker::{Broker, BrokerError};

/// Every binary linking the broker gets the reserving allocator: should a lying array length
/// prefix get past the bounds walker ([`api::bounds`]), it still cannot abort the process
/// (see [`alloc`]).
#[global_allocator]
static GLOBAL: alloc::ReservingAllocator = alloc::ReservingAllocator;
pub use config::{BrokerConfig, ConfigError};
pub use server::Server;
