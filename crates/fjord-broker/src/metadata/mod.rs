//! Cluster metadata: a log of records applied to an immutable image.
//!
//! Every change to cluster state (a topic created, partitions added, configs altered, a topic
//! deleted, a block of producer ids handed out) is a [`MetadataRecord`]. The
//! [`MetadataStore`] appends the record to the metadata log (today a local file,
//! `<data-dir>/meta/metadata.log`; later the same records go through Raft), then applies it to
//! a copy of the current [`MetadataImage`] and publishes the new image. Request handlers read
//! the image through an `Arc` and never see a half-applied change.

mod image;
mod records;
mod store;

pub use image::{MetadataImage, TopicImage};
pub use records::MetadataRecord;
pub use store::{MetadataError, MetadataStore};
