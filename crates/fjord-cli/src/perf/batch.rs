//! Where `fjord perf consume` and `fjord perf e2e` take their records from, a batch at a time.
//!
//! rust-rdkafka hands out one record per `poll`, and each poll costs librdkafka a queue lock,
//! a condition-variable wake-up and three or four clock reads (its `max.poll.interval.ms` and
//! poll-idle accounting), plus an allocation on the Rust side. With 1 KiB records that was a
//! fifth of the consuming thread. Without a group nothing on the consumer queue needs
//! rust-rdkafka's event handling (no rebalances, no commits), so [`Records::Batch`] takes
//! what is queued, up to [`MAX_BATCH`] records per call, with `rd_kafka_consume_batch_queue`
//! (`rdkafka_performance -C` does the same through its callback API). That call waits until
//! the whole array is filled or the timeout passes, which would hold early records back, so
//! it is only ever called either without waiting (take what is queued) or for one record
//! (wait for the next): a record is handed over as soon as a `poll` would have returned it.
//! With a group, rebalance events must reach rust-rdkafka, so [`Records::Poll`] keeps
//! polling, but drains what is queued before the caller looks at the clock.
//!
//! librdkafka documents `rd_kafka_consume_batch_queue` with its legacy consumer API, but it
//! serves the high-level consumer's queue as well (it keeps each partition's application
//! position, and confluent-kafka-python's `Consumer.consume()` is built on it). Two things
//! differ from polling: events other than records are handled inside librdkafka, so a
//! client-level error (a broker connection refused) shows as librdkafka's own log line on
//! stderr rather than the tool's `WARN` line; and a commit's reply on that queue would make
//! librdkafka abort, which is why [`BatchQueue::new`] refuses a consumer that commits.

#![allow(unsafe_code)]

use std::ffi::CStr;
use std::marker::PhantomData;
use std::os::raw::c_int;
use std::ptr::{self, NonNull};
use std::time::Duration;

use anyhow::anyhow;
use rdkafka::Message;
use rdkafka::bindings as rdsys;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};

/// The most records taken in one call.
pub const MAX_BATCH: usize = 1024;

/// What one call returned.
#[derive(Debug, Default)]
pub struct Batch {
    /// Records received.
    pub records: u64,
    /// Their keys and values, in bytes (as Kafka's tool counts).
    pub bytes: u64,
    /// Errors the consumer reported in place of records.
    pub errors: Vec<String>,
}

/// A consumer's records, by polling or in batches.
pub enum Records<'a, C: ConsumerContext> {
    /// One `poll` per record (group members, whose rebalances rust-rdkafka must see).
    Poll(&'a BaseConsumer<C>),
    /// `rd_kafka_consume_batch_queue` on the consumer queue (assigned partitions only).
    Batch(BatchQueue<'a, C>),
}

impl<C: ConsumerContext> Records<'_, C> {
    /// Waits up to `timeout` for a record and returns at most `max` (and at most
    /// [`MAX_BATCH`]): the first to arrive and those queued behind it. `each` sees every
    /// record's value.
    pub fn next(
        &mut self,
        timeout: Duration,
        max: u64,
        mut each: impl FnMut(&[u8]),
    ) -> anyhow::Result<Batch> {
        let max = usize::try_from(max).unwrap_or(MAX_BATCH).min(MAX_BATCH);
        match self {
            Records::Poll(consumer) => Ok(poll_batch(consumer, timeout, max, &mut each)),
            Records::Batch(queue) => {
                let mut batch = queue.take(Duration::ZERO, max, &mut each)?;
                if batch.records == 0 && batch.errors.is_empty() && max > 0 {
                    batch = queue.take(timeout, 1, &mut each)?;
                }
                Ok(batch)
            }
        }
    }
}

fn poll_batch<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    timeout: Duration,
    max: usize,
    each: &mut impl FnMut(&[u8]),
) -> Batch {
    let mut batch = Batch::default();
    let mut wait = timeout;
    while (batch.records as usize) < max {
        match consumer.poll(wait) {
            Some(Ok(m)) => {
                let value = m.payload().unwrap_or_default();
                batch.records += 1;
                batch.bytes += (value.len() + m.key().map_or(0, <[u8]>::len)) as u64;
                each(value);
            }
            Some(Err(e)) => {
                batch.errors.push(e.to_string());
                break;
            }
            None => break,
        }
        wait = Duration::ZERO;
    }
    batch
}

/// librdkafka's consumer queue of one consumer, read with `rd_kafka_consume_batch_queue`.
pub struct BatchQueue<'a, C: ConsumerContext> {
    /// The consumer whose client the queue belongs to: borrowed, so that it outlives the queue.
    consumer: PhantomData<&'a BaseConsumer<C>>,
    /// Our reference to the queue (`rd_kafka_queue_get_consumer`), released on drop.
    queue: NonNull<rdsys::rd_kafka_queue_t>,
    /// Where librdkafka writes the messages of one call.
    slots: Vec<*mut rdsys::rd_kafka_message_t>,
}

impl<'a, C: ConsumerContext> BatchQueue<'a, C> {
    /// The consumer queue of `consumer`, which must have a `group.id` (rust-rdkafka then
    /// forwards the main queue to it), must only ever be assigned partitions, never
    /// subscribe, and must never commit (`enable.auto.commit=false`): rebalance events taken
    /// from this queue would not reach rust-rdkafka, and librdkafka aborts the process when
    /// `rd_kafka_consume_batch_queue` meets a commit's reply there.
    ///
    /// Both conditions are checked here, so that breaking them is an error and not an abort.
    pub fn new(consumer: &'a BaseConsumer<C>) -> anyhow::Result<Self> {
        let subscribed = consumer.subscription().map_or(0, |s| s.count());
        anyhow::ensure!(
            subscribed == 0,
            "batched reads need assigned partitions, not a subscription"
        );
        let rk = consumer.client().native_ptr();
        anyhow::ensure!(
            !auto_commit(rk)?,
            "batched reads need enable.auto.commit=false"
        );
        // SAFETY: `rk` is the live client handle of `consumer`, which the borrow keeps alive
        // for as long as this queue; the call returns a new reference (or null for a client
        // that is not a consumer), which `drop` releases.
        let raw = unsafe { rdsys::rd_kafka_queue_get_consumer(rk) };
        let queue = NonNull::new(raw).ok_or_else(|| anyhow!("librdkafka has no consumer queue"))?;
        Ok(BatchQueue {
            consumer: PhantomData,
            queue,
            slots: vec![ptr::null_mut(); MAX_BATCH],
        })
    }

    /// One `rd_kafka_consume_batch_queue`: it returns when `max` records are there or
    /// `timeout` has passed, whichever is first.
    fn take(
        &mut self,
        timeout: Duration,
        max: usize,
        each: &mut impl FnMut(&[u8]),
    ) -> anyhow::Result<Batch> {
        let max = max.min(self.slots.len());
        let timeout_ms = c_int::try_from(timeout.as_millis()).unwrap_or(c_int::MAX);
        // SAFETY: the queue reference is ours and its client alive (see `new`); `slots` has
        // room for `max` pointers, and librdkafka writes at most that many.
        let n = unsafe {
            rdsys::rd_kafka_consume_batch_queue(
                self.queue.as_ptr(),
                timeout_ms,
                self.slots.as_mut_ptr(),
                max,
            )
        };
        // librdkafka 2.12 never returns -1 here (only older versions did, for a queue not
        // served by a consumer); nothing was returned then.
        let n = usize::try_from(n)
            .map_err(|_| anyhow!("rd_kafka_consume_batch_queue refused the consumer queue"))?;
        let mut batch = Batch::default();
        // Destroys whatever `each` did not get through, should it panic.
        let mut owned = Owned {
            messages: &self.slots[..n.min(max)],
            next: 0,
        };
        while let Some(&message) = owned.messages.get(owned.next) {
            // SAFETY: librdkafka filled the first `n` slots with messages that are now ours:
            // each, and the `len` bytes its payload points to, is valid until
            // `rd_kafka_message_destroy`, called once: here after the last use of both, or by
            // `Owned`'s drop (from `next` on) if `each` panics.
            unsafe {
                let m = &*message;
                if m.err == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                    let value: &[u8] = if m.payload.is_null() {
                        &[]
                    } else {
                        std::slice::from_raw_parts(m.payload.cast::<u8>(), m.len)
                    };
                    let key = if m.key.is_null() { 0 } else { m.key_len };
                    batch.records += 1;
                    batch.bytes += (value.len() + key) as u64;
                    each(value);
                } else {
                    let text = rdsys::rd_kafka_message_errstr(message);
                    batch.errors.push(if text.is_null() {
                        format!("consumer error {:?}", m.err)
                    } else {
                        CStr::from_ptr(text).to_string_lossy().into_owned()
                    });
                }
                rdsys::rd_kafka_message_destroy(message);
            }
            owned.next += 1;
        }
        Ok(batch)
    }
}

/// Messages of one call, `next..` still to be destroyed.
struct Owned<'s> {
    messages: &'s [*mut rdsys::rd_kafka_message_t],
    next: usize,
}

impl Drop for Owned<'_> {
    fn drop(&mut self) {
        for &message in &self.messages[self.next..] {
            // SAFETY: messages past `next` were not destroyed yet (see `BatchQueue::take`).
            unsafe { rdsys::rd_kafka_message_destroy(message) };
        }
    }
}

/// Whether the client `rk` commits offsets by itself (`enable.auto.commit`).
fn auto_commit(rk: *mut rdsys::rd_kafka_t) -> anyhow::Result<bool> {
    let mut value = [0 as std::os::raw::c_char; 16];
    let mut size = value.len();
    // SAFETY: `rk` is a live client (see `BatchQueue::new`), whose configuration librdkafka
    // owns; the name is a C string literal; librdkafka writes at most `size` bytes,
    // NUL-terminated, into `value` and the needed size into `size`.
    let result = unsafe {
        rdsys::rd_kafka_conf_get(
            rdsys::rd_kafka_conf(rk),
            c"enable.auto.commit".as_ptr(),
            value.as_mut_ptr(),
            &mut size,
        )
    };
    anyhow::ensure!(
        result == rdsys::rd_kafka_conf_res_t::RD_KAFKA_CONF_OK && size <= value.len(),
        "cannot read enable.auto.commit"
    );
    // SAFETY: librdkafka wrote a NUL-terminated string of at most `size` bytes into `value`.
    let value = unsafe { CStr::from_ptr(value.as_ptr()) };
    Ok(value.to_bytes() == b"true")
}

impl<C: ConsumerContext> Drop for BatchQueue<'_, C> {
    fn drop(&mut self) {
        // SAFETY: releases the one reference `new` took; the pointer is not used again.
        unsafe { rdsys::rd_kafka_queue_destroy(self.queue.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rdkafka::ClientConfig;
    use rdkafka::consumer::DefaultConsumerContext;

    /// A consumer that never reaches a broker (none is needed to build the queue).
    fn consumer(auto_commit: &str) -> BaseConsumer<DefaultConsumerContext> {
        ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:9")
            .set("group.id", "batch-test")
            .set("enable.auto.commit", auto_commit)
            .set("log_level", "0")
            .create()
            .unwrap()
    }

    #[test]
    fn only_a_consumer_that_neither_commits_nor_subscribes_reads_in_batches() {
        let plain = consumer("false");
        assert!(BatchQueue::new(&plain).is_ok());

        let committing = consumer("true");
        let err = BatchQueue::new(&committing).err().unwrap().to_string();
        assert!(err.contains("enable.auto.commit=false"), "{err}");

        let subscribed = consumer("false");
        subscribed.subscribe(&["t"]).unwrap();
        let err = BatchQueue::new(&subscribed).err().unwrap().to_string();
        assert!(err.contains("not a subscription"), "{err}");
    }
}
