//! End-to-end tests: real `fjord` processes, real Kafka clients, raw protocol frames.
//! One test binary for the crate (build time); modules by subject.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod clients;
mod consumer_groups;
mod crash;
mod groups;
mod harness;
mod perf;
mod process;
mod protocol;
mod soak;
