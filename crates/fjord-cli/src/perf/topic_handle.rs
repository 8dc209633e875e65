//! Queuing records for `fjord perf produce` and `e2e` through a topic handle made once.
//!
//! rust-rdkafka's `send` makes a C string of the topic name for every record and passes the
//! record through `rd_kafka_producev`'s variadic arguments, where librdkafka looks the topic
//! up by name under its topic-list lock. With 100 B records that was a fifth of the sending
//! thread, which (with librdkafka's own clock reads) is what limited the tool. [`TopicHandle`]
//! holds the `rd_kafka_topic_t` from one `rd_kafka_topic_new` and queues each record with
//! `rd_kafka_produce`, which is what `rdkafka_performance -P` does. Delivery reports still go
//! through rust-rdkafka (`ProducerContext::delivery`): the delivery opaque is passed the way
//! rust-rdkafka passes it. `fjord perf e2e` sends through one too.

#![allow(unsafe_code)]

use std::ffi::{CString, c_void};
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use anyhow::anyhow;
use rdkafka::bindings as rdsys;
use rdkafka::producer::{Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::IntoOpaque;

use crate::signals::StopFlag;

/// librdkafka's `RD_KAFKA_PARTITION_UA`: let the topic's partitioner choose.
const PARTITION_UNASSIGNED: i32 = -1;

/// One topic of one producer, for [`TopicHandle::send`].
pub struct TopicHandle<'a, C: ProducerContext + 'static> {
    /// The producer whose client the handle belongs to: borrowed, so that it outlives it.
    producer: PhantomData<&'a ThreadedProducer<C>>,
    /// Our reference to the topic (`rd_kafka_topic_new`), released on drop.
    topic: NonNull<rdsys::rd_kafka_topic_t>,
}

impl<'a, C: ProducerContext + 'static> TopicHandle<'a, C> {
    /// The topic `name` of `producer`, with the producer's default topic configuration.
    pub fn new(producer: &'a ThreadedProducer<C>, name: &str) -> anyhow::Result<Self> {
        let name = CString::new(name).map_err(|_| anyhow!("topic name {name:?} has a NUL"))?;
        // SAFETY: `native_ptr` is the live client handle of `producer`, which the borrow keeps
        // alive for as long as this handle; `name` is a valid C string for the call; a null
        // configuration means the default one. The call returns a new reference (or null),
        // which `drop` releases.
        let raw = unsafe {
            rdsys::rd_kafka_topic_new(
                producer.client().native_ptr(),
                name.as_ptr(),
                ptr::null_mut(),
            )
        };
        let topic = NonNull::new(raw).ok_or_else(|| {
            // SAFETY: reads librdkafka's thread-local last error; no pointers involved.
            let code = RDKafkaErrorCode::from(unsafe { rdsys::rd_kafka_last_error() });
            anyhow!("librdkafka refused topic {name:?}: {code}")
        })?;
        Ok(TopicHandle {
            producer: PhantomData,
            topic,
        })
    }

    /// Queues one record (librdkafka copies key and value) to the partition the producer's
    /// partitioner picks, with `opaque` as its delivery opaque. `Err` is librdkafka's reason,
    /// e.g. `QueueFull`.
    pub fn send(
        &self,
        key: Option<&[u8]>,
        value: &[u8],
        opaque: C::DeliveryOpaque,
    ) -> Result<(), RDKafkaErrorCode> {
        let (key_ptr, key_len) = key.map_or((ptr::null(), 0), |k| (k.as_ptr().cast(), k.len()));
        // As rust-rdkafka's own `send` passes it: it turns the pointer back into the opaque
        // (`IntoOpaque::from_ptr`) when it reports the delivery.
        let opaque = opaque.into_ptr();
        // SAFETY: the topic reference is ours and its client alive (see `new`); with
        // RD_KAFKA_MSG_F_COPY librdkafka copies `value` and `key` before returning and never
        // writes through the payload pointer; it keeps `opaque` only if the call succeeds.
        let rc = unsafe {
            rdsys::rd_kafka_produce(
                self.topic.as_ptr(),
                PARTITION_UNASSIGNED,
                rdsys::RD_KAFKA_MSG_F_COPY,
                value.as_ptr().cast_mut().cast::<c_void>(),
                value.len(),
                key_ptr,
                key_len,
                opaque,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        // SAFETY: as in `new`.
        let error = RDKafkaErrorCode::from(unsafe { rdsys::rd_kafka_last_error() });
        // SAFETY: librdkafka refused the record and kept nothing of it, so the pointer made
        // above is still the only one: take the opaque back, to drop it.
        drop(unsafe { C::DeliveryOpaque::from_ptr(opaque) });
        Err(error)
    }
}

impl<C: ProducerContext<DeliveryOpaque: Copy> + 'static> TopicHandle<'_, C> {
    /// [`TopicHandle::send`], waiting for room while librdkafka's queue is full. False if
    /// `stop` was set meanwhile (the record was not queued), so that the tool can end with its
    /// summary.
    pub fn send_waiting(
        &self,
        key: Option<&[u8]>,
        value: &[u8],
        opaque: C::DeliveryOpaque,
        stop: &StopFlag,
    ) -> anyhow::Result<bool> {
        loop {
            match self.send(key, value, opaque) {
                Ok(()) => return Ok(true),
                Err(RDKafkaErrorCode::QueueFull) if stop.stopped() => return Ok(false),
                Err(RDKafkaErrorCode::QueueFull) => {
                    std::thread::sleep(std::time::Duration::from_micros(500));
                }
                Err(e) => anyhow::bail!("cannot queue a record: {e}"),
            }
        }
    }
}

impl<C: ProducerContext + 'static> Drop for TopicHandle<'_, C> {
    fn drop(&mut self) {
        // SAFETY: releases the one reference `new` took; the pointer is not used again.
        unsafe { rdsys::rd_kafka_topic_destroy(self.topic.as_ptr()) };
    }
}
