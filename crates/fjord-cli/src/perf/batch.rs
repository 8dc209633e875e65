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
//! With a group, rebalance and commit events on the consumer queue must reach rust-rdkafka,
//! so [`Records::Group`] forwards the topic's partition queues to a queue of the tool's own,
//! reads that one in batches, and polls the consumer queue (which then holds only events)
//! between batches. A group member stores the offsets of the records it counted itself and
//! stops at a partition's error ([`BatchQueue::for_group`] says why).
//!
//! librdkafka documents `rd_kafka_consume_batch_queue` with its legacy consumer API, but it
//! serves the high-level consumer's queue as well (it keeps each partition's application
//! position, and confluent-kafka-python's `Consumer.consume()` is built on it). Two things
//! differ from polling: events other than records are handled inside librdkafka, so a
//! client-level error (a broker connection refused) shows as librdkafka's own log line on
//! stderr rather than the tool's `WARN` line; and a commit's reply on the consumer queue would
//! make librdkafka abort, which is why [`BatchQueue::new`] refuses a consumer that commits
//! (a group member's commits stay on the consumer queue, which it polls).

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
    /// `rd_kafka_consume_batch_queue` on the consumer queue (assigned partitions only).
    Batch(BatchQueue<'a, C>),
    /// A group member: its topic's partition queues forwarded to a queue of the tool's own,
    /// read in batches, while the consumer queue, which keeps the group's events, is polled
    /// for rust-rdkafka to handle them ([`BatchQueue::for_group`]).
    Group(Group<'a, C>),
}

/// What [`Records::Group`] reads from and watches.
pub struct Group<'a, C: ConsumerContext> {
    /// The forwarded partition queues and the tool's own.
    pub queue: BatchQueue<'a, C>,
    /// The consumer, whose queue keeps the group's events.
    pub consumer: &'a BaseConsumer<C>,
    /// Assignments made to the consumer so far, counted by its context after each is
    /// applied (`ToolContext::assignments`).
    pub assignments: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// The count when the partition queues were last forwarded.
    pub forwarded_at: u64,
}

/// The longest a group member waits for records before it polls the group's events again.
const GROUP_EVENTS_EVERY: Duration = Duration::from_millis(10);

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
            Records::Batch(queue) => queue.next(timeout, max, &mut each),
            Records::Group(group) => {
                // Rebalances and commits are served here; a record of a partition that was
                // not forwarded (one added to the topic since) comes this way too.
                let batch = poll_batch(group.consumer, Duration::ZERO, max, &mut each);
                // A partition that is revoked loses its forwarding (librdkafka clears it when
                // it stops fetching) and, given back, would keep its records to itself: so
                // after every assignment, forward again (what is queued there moves over).
                let assignments = group.assignments.load(std::sync::atomic::Ordering::Acquire);
                if assignments != group.forwarded_at {
                    group.queue.forward();
                    group.forwarded_at = assignments;
                }
                if batch.records > 0 || !batch.errors.is_empty() {
                    return Ok(batch);
                }
                group
                    .queue
                    .next(timeout.min(GROUP_EVENTS_EVERY), max, &mut each)
            }
        }
    }
}

/// Polls a group member's consumer queue: its events, and the records of any partition not
/// forwarded. The member stores offsets itself (`enable.auto.offset.store=false`, see
/// [`BatchQueue::for_group`]), so each record's is stored here.
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
                // SAFETY: `m` is alive until the end of this arm.
                unsafe { store_offset(m.ptr()) };
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

/// A librdkafka queue of one consumer's records, read with `rd_kafka_consume_batch_queue`.
pub struct BatchQueue<'a, C: ConsumerContext> {
    /// The consumer whose client the queue belongs to: borrowed, so that it outlives the queue.
    consumer: PhantomData<&'a BaseConsumer<C>>,
    /// Our reference to the queue, released on drop.
    queue: NonNull<rdsys::rd_kafka_queue_t>,
    /// Partition queues forwarded to `queue` ([`BatchQueue::for_group`]): our references,
    /// unforwarded and released on drop.
    forwarded: Vec<NonNull<rdsys::rd_kafka_queue_t>>,
    /// Where librdkafka writes the messages of one call.
    slots: Vec<*mut rdsys::rd_kafka_message_t>,
    /// Whether this queue stores the offsets of the records it hands over, and stops at a
    /// partition's error ([`BatchQueue::for_group`]).
    stores_offsets: bool,
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
            forwarded: Vec::new(),
            slots: vec![ptr::null_mut(); MAX_BATCH],
            stores_offsets: false,
        })
    }

    /// A queue of the tool's own to which the fetch queues of `partitions` of `topic` are
    /// forwarded, for a consumer that subscribes (before it does). librdkafka keeps a
    /// forwarding the application set (`RD_KAFKA_Q_F_FWD_APP`) when it starts fetching an
    /// assigned partition, so whichever of these partitions the group assigns, their records
    /// (and per-partition errors) arrive here, and only those: rebalance and commit events
    /// stay on the consumer queue, for rust-rdkafka's `poll` ([`Records::Group`]). It clears
    /// the forwarding when it stops fetching a revoked partition, so [`Records::Group`]
    /// forwards again after every assignment.
    ///
    /// The consumer must have `enable.auto.offset.store=false`: `rd_kafka_consume_batch_queue`
    /// moves each partition's application position past every message it returns, errors
    /// included, and an automatic store would commit that. This queue stores, for each run
    /// of one partition's records in a batch, the offset after the last one
    /// (`rd_kafka_offset_store_message`, with its leader epoch). A message that reports an
    /// error of a partition (a fetch error, a corrupt batch, a failed offset lookup) ends the
    /// read with an error: the call moves the partition's position past the offset that
    /// message carries (a logical one, such as BEGINNING, can move it to the end), and any
    /// pause (every rebalance pauses the assignment) would resume fetching there, skipping
    /// records the member never saw. What it read before is stored, for the auto-commit (on
    /// by default) and the commit at close.
    /// librdkafka reports such errors only for real faults; the ones a healthy cluster
    /// causes (leadership moves, an offset out of range with a reset policy) it handles
    /// without a message.
    pub fn for_group(
        consumer: &'a BaseConsumer<C>,
        topic: &str,
        partitions: &[i32],
    ) -> anyhow::Result<Self> {
        let rk = consumer.client().native_ptr();
        let name =
            std::ffi::CString::new(topic).map_err(|_| anyhow!("topic {topic:?} has a NUL"))?;
        // SAFETY: `rk` is the live client of `consumer`, which the borrow keeps alive for as
        // long as this value; the call returns a new queue (or null), released on drop.
        let raw = unsafe { rdsys::rd_kafka_queue_new(rk) };
        let queue = NonNull::new(raw).ok_or_else(|| anyhow!("librdkafka made no queue"))?;
        let mut this = BatchQueue {
            consumer: PhantomData,
            queue,
            forwarded: Vec::with_capacity(partitions.len()),
            slots: vec![ptr::null_mut(); MAX_BATCH],
            stores_offsets: true,
        };
        for &p in partitions {
            // SAFETY: as above, and `name` is a valid C string for the call; the result is a
            // new reference to the partition's fetch queue (or null), released on drop.
            let raw = unsafe { rdsys::rd_kafka_queue_get_partition(rk, name.as_ptr(), p) };
            // Kept as soon as it is taken, so that drop releases it (and undoes its
            // forwarding) should a later partition fail.
            this.forwarded.push(
                NonNull::new(raw)
                    .ok_or_else(|| anyhow!("librdkafka has no queue for {topic}-{p}"))?,
            );
        }
        this.forward();
        Ok(this)
    }

    /// Forwards the partition queues of [`BatchQueue::for_group`] to this queue: once when it
    /// is made, and again after every assignment ([`Records::Group`]).
    fn forward(&self) {
        for partition in &self.forwarded {
            // SAFETY: both queues are live references of ours (see `for_group`).
            unsafe { rdsys::rd_kafka_queue_forward(partition.as_ptr(), self.queue.as_ptr()) };
        }
    }

    /// What is queued, up to `max`; when nothing is, waits up to `timeout` for one record.
    fn next(
        &mut self,
        timeout: Duration,
        max: usize,
        each: &mut impl FnMut(&[u8]),
    ) -> anyhow::Result<Batch> {
        let batch = self.take(Duration::ZERO, max, each)?;
        if batch.records > 0 || !batch.errors.is_empty() || max == 0 {
            return Ok(batch);
        }
        self.take(timeout, 1, each)
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
        // Destroys every message of the call when this function returns, panics included;
        // until then each stays valid, so the one whose offset is stored is still alive then.
        let owned = Owned {
            messages: &self.slots[..n.min(max)],
        };
        // The last record of the current run of one partition's records, whose offset is
        // stored when the run ends.
        let mut run: Option<*mut rdsys::rd_kafka_message_t> = None;
        for &message in owned.messages {
            // SAFETY: librdkafka filled the first `n` slots with messages that are now ours:
            // each, its topic handle and the `len` bytes its payload points to, are valid until
            // `Owned` destroys it, after this loop.
            unsafe {
                let m = &*message;
                if m.err == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                    if self.stores_offsets {
                        if let Some(last) = run
                            && !same_partition(&*last, m)
                        {
                            store_offset(last);
                        }
                        run = Some(message);
                    }
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
                    let text = if text.is_null() {
                        format!("consumer error {:?}", m.err)
                    } else {
                        CStr::from_ptr(text).to_string_lossy().into_owned()
                    };
                    if self.stores_offsets {
                        if let Some(last) = run.take() {
                            store_offset(last);
                        }
                        if !m.rkt.is_null() {
                            let topic = CStr::from_ptr(rdsys::rd_kafka_topic_name(m.rkt));
                            anyhow::bail!(
                                "{} [{}] at offset {}: {text}; stopping: reading on would move \
                                 this member's position past that offset (what was read \
                                 before it is stored for the group's commit)",
                                topic.to_string_lossy(),
                                m.partition,
                                m.offset
                            );
                        }
                    }
                    batch.errors.push(text);
                }
            }
        }
        if let Some(last) = run {
            // SAFETY: `last` is one of `owned`'s messages, not destroyed yet.
            unsafe { store_offset(last) };
        }
        Ok(batch)
    }
}

/// Whether two messages are of the same topic and partition.
fn same_partition(a: &rdsys::rd_kafka_message_t, b: &rdsys::rd_kafka_message_t) -> bool {
    a.rkt == b.rkt && a.partition == b.partition
}

/// Stores the offset after `m`'s, with the leader epoch `m` was fetched in, as its
/// partition's next to commit.
///
/// # Safety
///
/// `m` is a live message of a consumer (not destroyed yet).
unsafe fn store_offset(m: *mut rdsys::rd_kafka_message_t) {
    // SAFETY: per the contract, `m` is a live message. librdkafka stores `offset + 1` and the
    // message's leader epoch; it refuses (returns an error, changing nothing) for a partition
    // no longer assigned, whose next owner reads the record again from the last commit. The
    // error object is ours to destroy.
    unsafe {
        let error = rdsys::rd_kafka_offset_store_message(m);
        if !error.is_null() {
            rdsys::rd_kafka_error_destroy(error);
        }
    }
}

/// The messages of one call, destroyed on drop.
struct Owned<'s> {
    messages: &'s [*mut rdsys::rd_kafka_message_t],
}

impl Drop for Owned<'_> {
    fn drop(&mut self) {
        for &message in self.messages {
            // SAFETY: ours (see `BatchQueue::take`), destroyed once, here.
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
        for partition in self.forwarded.drain(..) {
            // SAFETY: our references (see `for_group`), not used again. Undoes the
            // forwarding; records already moved to the tool's queue go with it, uncounted
            // and unstored, so the group reads them again.
            unsafe {
                rdsys::rd_kafka_queue_forward(partition.as_ptr(), ptr::null_mut());
                rdsys::rd_kafka_queue_destroy(partition.as_ptr());
            }
        }
        // SAFETY: releases the one reference `new` or `for_group` took; not used again.
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
