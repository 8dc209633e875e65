//! The `fjord start` process: configuration errors, the data-dir lock, clean shutdown.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{BrokerProcess, wait_exit};

fn fjord_start(args: &[&str]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .arg("start")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_exit(&mut child, Duration::from_secs(10));
    child.wait_with_output().expect("output")
}

#[test]
fn unknown_or_invalid_settings_fail_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = fjord_start(&["--data-dir", d, "--override", "log.segmnt.bytes=100"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("log.segmnt.bytes") && err.contains("did you mean `log.segment.bytes`"),
        "{err}"
    );

    let out = fjord_start(&["--data-dir", d, "--override", "num.partitions=-3"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("num.partitions"));

    let conf = dir.path().join("bad.properties");
    std::fs::write(
        &conf,
        "listeners=PLAINTEXT://127.0.0.1:0\nauto.create.topics.enable=maybe\n",
    )
    .unwrap();
    let out = fjord_start(&["--data-dir", d, "--config", conf.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("auto.create.topics.enable"));
}

/// The time slice (`se.slice`, ns) of each of `pid`'s threads named `comm`, from
/// /proc/PID/task/TID/sched; empty when the kernel does not show it.
fn thread_slices(pid: u32, comm: &str) -> Vec<u64> {
    let mut slices = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap().path();
        let name = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        if name.trim() != comm {
            continue;
        }
        let sched = std::fs::read_to_string(task.join("sched")).unwrap_or_default();
        slices.extend(sched.lines().filter_map(|l| {
            let (key, value) = l.split_once(':')?;
            (key.trim() == "se.slice").then(|| value.trim().parse::<u64>().ok())?
        }));
    }
    slices
}

/// Whether this kernel lets a normal thread set its own time slice (Linux 6.12).
fn kernel_has_custom_slices() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (6, 12)
}

#[test]
fn request_threads_run_with_the_configured_time_slice() {
    if !kernel_has_custom_slices() {
        eprintln!("kernel before 6.12: no custom time slices to check");
        return;
    }
    for (overrides, expected_ns) in [
        (vec![], Some(300_000)),
        (vec!["request.thread.slice.us=1000"], Some(1_000_000)),
        (vec!["request.thread.slice.us=0"], None),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let broker = BrokerProcess::start(dir.path(), &overrides);
        let pid = broker.child.id();
        let workers = thread_slices(pid, "tokio-rt-worker");
        let main = thread_slices(pid, "fjord");
        if workers.is_empty() || main.is_empty() {
            eprintln!("/proc/PID/task/TID/sched shows no se.slice here; skipped");
            broker.terminate();
            return;
        }
        // Without a setting of its own a thread keeps the kernel's default, the main thread's.
        let want = expected_ns.unwrap_or(main[0]);
        assert!(
            workers.iter().all(|&s| s == want),
            "{overrides:?}: worker slices {workers:?}, want {want} (main thread {main:?})"
        );
        broker.terminate();
    }
}

#[test]
fn second_broker_on_same_data_dir_refuses_and_sigterm_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let first = BrokerProcess::start(dir.path(), &[]);
    let out = fjord_start(&[
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--override",
        "listeners=PLAINTEXT://127.0.0.1:0",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("in use"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = first.terminate();
    assert!(status.success(), "{status}");
    // The lock is released: a new broker starts on the same dir.
    let again = BrokerProcess::start(dir.path(), &[]);
    assert!(again.terminate().success());
}

#[test]
fn config_file_and_environment_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("fjord.toml");
    std::fs::write(&conf, "num.partitions = 5\n[log]\nsegment.bytes = 2048\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .args([
            "start",
            "--config",
            conf.to_str().unwrap(),
            "--data-dir",
            dir.path().join("d").to_str().unwrap(),
        ])
        .env("FJORD_LISTENERS", "PLAINTEXT://127.0.0.1:0")
        .env("FJORD_NUM_PARTITIONS", "not-a-number")
        .output()
        .unwrap();
    assert!(!out.status.success(), "invalid FJORD_ value fails");
    assert!(String::from_utf8_lossy(&out.stderr).contains("FJORD_NUM_PARTITIONS"));
}

/// A full disk: produce gets KAFKA_STORAGE_ERROR, reads keep working, and writes resume when
/// space returns. Needs a small tmpfs (root); where mounting is not allowed the test says so
/// and passes without checking anything.
#[test]
fn disk_full_refuses_writes_keeps_reads_and_recovers() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::producer::{BaseRecord, Producer};
    use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

    let mount_point = tempfile::tempdir().unwrap();
    let Some(disk) = fjord_log::testing::SmallDisk::mount(mount_point.path(), 1 << 20) else {
        eprintln!("SKIPPED disk_full test: cannot mount a tmpfs here (needs root)");
        return;
    };
    let data = mount_point.path().join("data");
    let broker = BrokerProcess::start(
        &data,
        &[
            "offsets.topic.num.partitions=1",
            "log.segment.bytes=10000000",
        ],
    );
    crate::clients::create_topic(&broker.addr, "full", 1, &[]);
    let p = crate::clients::producer(
        &broker.addr,
        &[("acks", "all"), ("retries", "0"), ("linger.ms", "0")],
    );
    let value = vec![b'x'; 20_000];
    let mut acked = 0usize;
    let mut storage_error = None;
    for i in 0..200 {
        let v = format!("{i:04}{}", String::from_utf8_lossy(&value));
        p.send(BaseRecord::<(), _, ()>::to("full").payload(&v))
            .expect("send");
        p.flush(Duration::from_secs(30)).expect("flush");
        let d = p.context().0.lock().unwrap().get(&v).cloned();
        match d {
            Some(Ok(_)) => acked += 1,
            Some(Err(e)) => {
                storage_error = Some(e);
                break;
            }
            None => panic!("no delivery report"),
        }
    }
    let e = storage_error.expect("the 1 MiB disk fills up");
    assert!(
        e.contains("KafkaStorageError") || e.contains("storage"),
        "{e}"
    );
    assert!(acked > 10, "some records fit first ({acked})");
    // Reads still work and see every acknowledged record.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("group.id", "unused")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("full", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut got = 0usize;
    crate::harness::wait_for(Duration::from_secs(30), "acknowledged records", || {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            assert_eq!(m.offset(), got as i64);
            got += 1;
        }
        (got >= acked).then_some(())
    });
    // Space returns: writes resume.
    assert!(disk.resize(8 << 20), "remounting the tmpfs larger");
    let v = "after".to_string();
    p.send(BaseRecord::<(), _, ()>::to("full").payload(&v))
        .expect("send");
    p.flush(Duration::from_secs(30)).expect("flush");
    let d = p.context().0.lock().unwrap().get(&v).cloned();
    assert_eq!(
        d,
        Some(Ok((0, acked as i64))),
        "the next record lands right after the acknowledged ones"
    );
    drop(consumer);
    assert!(broker.terminate().success());
}
