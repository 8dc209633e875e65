//! Coordinators: state machines whose state lives in internal topics. Today the group
//! coordinator (`__consumer_offsets`); the transaction coordinator comes later.

pub mod group;
