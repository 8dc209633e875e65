//! Soak test (issue 6): one broker holds 1,000 concurrent connections for `SOAK_SECONDS`
//! (default 600) while 100 acks=all producers and 100 group consumers keep it busy.
//!
//! Not run by default (`#[ignore]`); `scripts/soak.sh` builds it in release mode and runs it.
//! Layout: 10 topics of 10 partitions; producer `i` writes `SOAK_RATE` (default 20) records a
//! second to topic `i % 10`; consumer `j` is one of 10 members of group `soak-group-{j % 10}`,
//! which reads topic `j % 10`. Each consumer polls in its own thread and each producer serves
//! its delivery reports in its own (`ThreadedProducer`), so a latency is measured when the
//! report arrives; ten threads pace the sends. Idle raw connections that send an ApiVersions request now and then make
//! up the rest of the 1,000 (counted on the broker's side, in `/proc/net/tcp`).
//!
//! It fails on any delivery error, consumer error or client error callback, on a failed ping,
//! when a group has not read every record by the end, or when the broker's RSS grows without
//! bound (the average over the last third of the samples more than 50% above the first
//! third's). It prints an RSS and connection sample every 5 s and, at the end, the produce
//! latencies (send to delivery report) at p50, p99 and p99.9.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use crate::clients::create_topic;
use crate::harness::{BrokerProcess, wait_for};

const TOPICS: usize = 10;
const PARTITIONS: i32 = 10;
/// Threads that pace the producers' sends.
const PACERS: usize = 10;
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Each raw connection sends an ApiVersions request about this often.
const PING_EVERY: Duration = Duration::from_secs(60);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
    })
}

/// Errors from every client and the produce latencies, shared by all threads.
#[derive(Default)]
struct Shared {
    errors: Mutex<Vec<String>>,
    /// Send-to-delivery latencies in microseconds.
    latencies: Mutex<Vec<u32>>,
    acked: AtomicUsize,
    consumed: AtomicUsize,
    /// Per (group, partition), the next offset after what the group's members have read.
    read_to: Mutex<HashMap<(usize, i32), i64>>,
}

impl Shared {
    fn error(&self, what: String) {
        let mut errors = self.errors.lock().expect("lock");
        if errors.len() < 1000 {
            errors.push(what);
        }
    }
}

/// Client context: reports client errors and, for producers, latencies.
#[derive(Clone)]
struct Ctx(Arc<Shared>);

impl ClientContext for Ctx {
    fn error(&self, error: KafkaError, reason: &str) {
        self.0.error(format!("client error: {error}: {reason}"));
    }
}

impl ConsumerContext for Ctx {}

impl ProducerContext for Ctx {
    type DeliveryOpaque = Box<Instant>;
    fn delivery(&self, result: &DeliveryResult<'_>, sent: Box<Instant>) {
        match result {
            Ok(_) => {
                let us = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
                self.0.latencies.lock().expect("lock").push(us);
                self.0.acked.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => self.0.error(format!("delivery: {e}")),
        }
    }
}

/// Sends each of `producers`' records at its scheduled time (`rate` a second, the producers'
/// schedules spread over one interval) while `sending`, until `stop`; then flushes them.
/// Delivery reports are served by each producer's own polling thread, so latencies are not
/// inflated by this loop.
fn pace(
    producers: Vec<(usize, ThreadedProducer<Ctx>)>,
    rate: u64,
    shared: Arc<Shared>,
    sending: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) {
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    let mut next: Vec<Instant> = (0..producers.len())
        .map(|k| start + interval.mul_f64(k as f64 / producers.len() as f64))
        .collect();
    let mut seq = vec![0u64; producers.len()];
    let padding = "p".repeat(200);
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        for (k, (i, p)) in producers.iter().enumerate() {
            while sending.load(Ordering::Relaxed) && next[k] <= now {
                let value = format!("{i}-{}-{padding}", seq[k]);
                let key = format!("k{}", seq[k] % 97);
                let topic = format!("soak-{}", i % TOPICS);
                let record = BaseRecord::with_opaque_to(&topic, Box::new(Instant::now()))
                    .payload(&value)
                    .key(&key);
                match p.send(record) {
                    Ok(()) => seq[k] += 1,
                    Err((e, _)) => shared.error(format!("send: {e}")),
                }
                next[k] += interval;
            }
        }
        let wake = next
            .iter()
            .min()
            .copied()
            .unwrap_or(now)
            .min(now + Duration::from_millis(50));
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
    }
    for (_, p) in &producers {
        if let Err(e) = p.flush(Duration::from_secs(30)) {
            shared.error(format!("flush: {e}"));
        }
    }
}

/// Consumes as member of group `soak-group-{j % 10}` until `stop`, recording how far the
/// group has read.
fn consume(j: usize, c: BaseConsumer<Ctx>, shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    let group = j % TOPICS;
    while !stop.load(Ordering::Relaxed) {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let mut read_to = shared.read_to.lock().expect("lock");
                let to = read_to.entry((group, m.partition())).or_default();
                *to = (*to).max(m.offset() + 1);
                shared.consumed.fetch_add(1, Ordering::Relaxed);
            }
            Some(Err(e)) => shared.error(format!("consumer {j}: {e}")),
            None => {}
        }
    }
}

/// Established connections whose local port is `port` (the broker's side), from
/// `/proc/net/tcp`.
fn established(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let local = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1].ends_with(&local) && f[3] == "01"
        })
        .count()
}

/// VmRSS of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds of `pid` (assuming 100 clock ticks a second).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let f: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // Fields 14 and 15 of stat; `f` starts at field 3.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// An ApiVersions v0 request (header v1, null client id).
fn api_versions_frame(correlation: i32) -> Vec<u8> {
    let mut frame = Vec::with_capacity(14);
    frame.extend(10i32.to_be_bytes());
    frame.extend(18i16.to_be_bytes());
    frame.extend(0i16.to_be_bytes());
    frame.extend(correlation.to_be_bytes());
    frame.extend((-1i16).to_be_bytes());
    frame
}

/// Sends one ApiVersions request and checks the answer (correlation id, error code 0).
fn ping(stream: &mut TcpStream, correlation: i32) -> Result<(), String> {
    stream
        .write_all(&api_versions_frame(correlation))
        .map_err(|e| format!("ping write: {e}"))?;
    let mut size = [0u8; 4];
    stream
        .read_exact(&mut size)
        .map_err(|e| format!("ping read: {e}"))?;
    let len = i32::from_be_bytes(size) as usize;
    if !(6..1 << 20).contains(&len) {
        return Err(format!("ping: response of {len} bytes"));
    }
    let mut body = vec![0u8; len];
    stream
        .read_exact(&mut body)
        .map_err(|e| format!("ping read: {e}"))?;
    let id = i32::from_be_bytes(body[..4].try_into().expect("4 bytes"));
    let code = i16::from_be_bytes(body[4..6].try_into().expect("2 bytes"));
    if id != correlation || code != 0 {
        return Err(format!(
            "ping: correlation {id} (sent {correlation}), error {code}"
        ));
    }
    Ok(())
}

fn open_raw(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).expect("raw connection");
    s.set_nodelay(true).expect("nodelay");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s
}

/// Keeps `conns` alive with a ping each about every [`PING_EVERY`], spread evenly, until `stop`.
fn pinger(mut conns: Vec<TcpStream>, shared: Arc<Shared>, stop: Arc<AtomicBool>) -> usize {
    let tick = Duration::from_millis(100);
    let per_tick = conns
        .len()
        .div_ceil((PING_EVERY.as_millis() / tick.as_millis()) as usize);
    let (mut next, mut pings) = (0usize, 0usize);
    while !stop.load(Ordering::Relaxed) && !conns.is_empty() {
        for _ in 0..per_tick {
            let i = next % conns.len();
            next += 1;
            pings += 1;
            if let Err(e) = ping(&mut conns[i], pings as i32) {
                shared.error(format!("raw connection {i}: {e}"));
            }
        }
        std::thread::sleep(tick);
    }
    pings
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    f64::from(sorted[i]) / 1000.0
}

#[test]
#[ignore = "soak: run with scripts/soak.sh"]
fn soak_1000_connections_100_producers_100_consumers() {
    let seconds = env_or("SOAK_SECONDS", 600);
    let rate = env_or("SOAK_RATE", 20);
    let target = env_or("SOAK_CONNECTIONS", 1000) as usize;
    let n_producers = env_or("SOAK_PRODUCERS", 100) as usize;
    let n_consumers = env_or("SOAK_CONSUMERS", 100) as usize;
    println!(
        "soak: {seconds} s, {n_producers} producers x {rate} records/s (acks=all), \
         {n_consumers} consumers in {TOPICS} groups, {target} connections; load {}",
        loadavg()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    // No connection may be closed as idle during the run: any disconnect is an error here.
    let idle = format!("connections.max.idle.ms={}", (seconds + 900) * 1000);
    let broker = BrokerProcess::start(dir.path(), &[&idle, "group.initial.rebalance.delay.ms=0"]);
    let pid = broker.child.id();
    let port: u16 = broker
        .addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    for t in 0..TOPICS {
        create_topic(&broker.addr, &format!("soak-{t}"), PARTITIONS, &[]);
    }

    let shared = Arc::new(Shared::default());
    let sending = Arc::new(AtomicBool::new(true));
    let stop = Arc::new(AtomicBool::new(false));
    let mut pacers: Vec<Vec<(usize, ThreadedProducer<Ctx>)>> =
        (0..PACERS).map(|_| Vec::new()).collect();
    for i in 0..n_producers {
        let p: ThreadedProducer<Ctx> = ClientConfig::new()
            .set("bootstrap.servers", &broker.addr)
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("client.id", format!("soak-producer-{i}"))
            .create_with_context(Ctx(shared.clone()))
            .expect("producer");
        pacers[i % PACERS].push((i, p));
    }
    let started = Instant::now();
    let mut handles = Vec::new();
    for j in 0..n_consumers {
        let c: BaseConsumer<Ctx> = ClientConfig::new()
            .set("bootstrap.servers", &broker.addr)
            .set("group.id", format!("soak-group-{}", j % TOPICS))
            .set("client.id", format!("soak-consumer-{j}"))
            .set("auto.offset.reset", "earliest")
            .set("check.crcs", "true")
            .create_with_context(Ctx(shared.clone()))
            .expect("consumer");
        c.subscribe(&[&format!("soak-{}", j % TOPICS)])
            .expect("subscribe");
        let (shared, stop) = (shared.clone(), stop.clone());
        handles.push(std::thread::spawn(move || consume(j, c, shared, stop)));
    }
    for producers in pacers {
        let (shared, sending, stop) = (shared.clone(), sending.clone(), stop.clone());
        handles.push(std::thread::spawn(move || {
            pace(producers, rate, shared, sending, stop)
        }));
    }

    // Once the clients have connected, raw connections make up the rest of the target.
    let clients = wait_for(Duration::from_secs(120), "client connections", || {
        let n = established(port);
        (shared.acked.load(Ordering::Relaxed) >= n_producers && n >= n_producers + n_consumers)
            .then_some(n)
    });
    let raw: Vec<TcpStream> = (0..target.saturating_sub(clients))
        .map(|_| open_raw(&broker.addr))
        .collect();
    for (i, c) in raw.iter().enumerate() {
        let mut c = c.try_clone().expect("clone");
        ping(&mut c, i as i32).unwrap_or_else(|e| panic!("first ping of raw connection {i}: {e}"));
    }
    println!(
        "soak: {clients} client connections, {} raw connections, {} established after {:.1?}",
        raw.len(),
        established(port),
        started.elapsed()
    );
    let pinger_handle = {
        let (shared, stop) = (shared.clone(), stop.clone());
        std::thread::spawn(move || pinger(raw, shared, stop))
    };

    let run_start = Instant::now();
    let cpu_start = cpu_seconds(pid);
    let mut samples: Vec<u64> = Vec::new();
    let mut conns: Vec<usize> = Vec::new();
    let mut next_sample = run_start;
    while run_start.elapsed() < Duration::from_secs(seconds) {
        let now = Instant::now();
        if now < next_sample {
            std::thread::sleep((next_sample - now).min(Duration::from_millis(500)));
            continue;
        }
        next_sample += SAMPLE_EVERY;
        let (rss, n) = (rss_kib(pid), established(port));
        samples.push(rss);
        conns.push(n);
        println!(
            "soak t={:>4}s rss={:.1} MiB conns={n} acked={} consumed={} errors={} load {}",
            run_start.elapsed().as_secs(),
            rss as f64 / 1024.0,
            shared.acked.load(Ordering::Relaxed),
            shared.consumed.load(Ordering::Relaxed),
            shared.errors.lock().expect("lock").len(),
            loadavg()
        );
        assert!(
            broker_alive(pid),
            "the broker process exited during the soak"
        );
    }
    let cpu = cpu_seconds(pid) - cpu_start;
    let run = run_start.elapsed();

    // Stop producing, let every group read to the end, then stop.
    sending.store(false, Ordering::SeqCst);
    let drained = Instant::now();
    let acked_total = wait_for(Duration::from_secs(60), "producers to settle", || {
        let a = shared.acked.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(500));
        (a == shared.acked.load(Ordering::Relaxed)).then_some(a)
    });
    let admin: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .expect("consumer");
    let mut ends: HashMap<(usize, i32), i64> = HashMap::new();
    for t in 0..TOPICS {
        for p in 0..PARTITIONS {
            let (_, high) = admin
                .fetch_watermarks(&format!("soak-{t}"), p, Duration::from_secs(30))
                .expect("watermarks");
            ends.insert((t, p), high);
        }
    }
    let records: i64 = ends.values().sum();
    let lagging = || {
        let read_to = shared.read_to.lock().expect("lock");
        let mut behind: Vec<((usize, i32), i64, i64)> = ends
            .iter()
            .map(|(k, end)| (*k, read_to.get(k).copied().unwrap_or(0), *end))
            .filter(|(_, read, end)| read < end)
            .collect();
        behind.sort_unstable();
        behind
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while !lagging().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let lagging = lagging();
    stop.store(true, Ordering::SeqCst);
    for h in handles {
        h.join().expect("client thread");
    }
    let pings = pinger_handle.join().expect("pinger thread");

    let mut lat = std::mem::take(&mut *shared.latencies.lock().expect("lock"));
    lat.sort_unstable();
    let errors = shared.errors.lock().expect("lock").clone();
    let third = samples.len() / 3;
    let avg = |s: &[u64]| s.iter().sum::<u64>() as f64 / s.len().max(1) as f64 / 1024.0;
    let (first, last) = (
        avg(&samples[..third]),
        avg(&samples[samples.len() - third..]),
    );
    let mib = |k: u64| k as f64 / 1024.0;
    println!(
        "soak result: {:.0?} run, {} records acknowledged ({:.0}/s), {} consumed, {records} in \
         the logs; {pings} pings on raw connections; broker CPU {cpu:.1} s ({:.0}%)",
        run,
        acked_total,
        acked_total as f64 / run.as_secs_f64(),
        shared.consumed.load(Ordering::Relaxed),
        100.0 * cpu / run.as_secs_f64()
    );
    println!(
        "soak result: connections min {} max {}; RSS {} samples: min {:.1} MiB, max {:.1} MiB, \
         last {:.1} MiB, first-third avg {first:.1} MiB, last-third avg {last:.1} MiB",
        conns.iter().min().unwrap_or(&0),
        conns.iter().max().unwrap_or(&0),
        samples.len(),
        mib(*samples.iter().min().unwrap_or(&0)),
        mib(*samples.iter().max().unwrap_or(&0)),
        mib(*samples.last().unwrap_or(&0)),
    );
    println!(
        "soak result: produce latency over {} records: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} \
         ms, max {:.2} ms; drained in {:.1?}; load {}",
        lat.len(),
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        percentile(&lat, 0.999),
        percentile(&lat, 1.0),
        drained.elapsed(),
        loadavg()
    );
    println!("soak result: RSS samples (KiB): {samples:?}");
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        &errors[..errors.len().min(20)]
    );
    assert!(
        lagging.is_empty(),
        "groups did not read to the end: {lagging:?}"
    );
    assert!(
        conns.iter().all(|&n| n >= target),
        "fewer than {target} connections at some sample: {conns:?}"
    );
    assert!(
        third == 0 || last <= first * 1.5,
        "broker RSS grew from {first:.1} MiB to {last:.1} MiB (averages of the first and last thirds)"
    );
    assert!(
        broker.terminate().success(),
        "clean shutdown after the soak"
    );
}

fn broker_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}
