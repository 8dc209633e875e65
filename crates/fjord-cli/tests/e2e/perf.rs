//! `fjord perf produce`, `consume` and `e2e` against a real broker, a few thousand records
//! each: the runs succeed and their result lines parse (Kafka's formats, and `--json`).

use std::process::{Command, Output};
use std::time::Duration;

use crate::harness::{BrokerProcess, wait_exit};

/// Runs `fjord perf ARGS` against `addr`, bounded in time; panics unless it exits 0.
fn perf(addr: &str, args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .arg("perf")
        .args(args)
        .args(["--bootstrap-server", addr])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn fjord perf");
    let status = wait_exit(&mut child, Duration::from_secs(30));
    let Output { stdout, stderr, .. } = child.wait_with_output().expect("collect output");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    );
    assert!(
        status.success(),
        "fjord perf {args:?}: {status}\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stderr.contains("settings: "), "no settings line: {stderr}");
    stdout
}

/// The number before each `suffix` in `line`, in order ("12.5 ms 50th" -> 12.5).
fn number_before(line: &str, suffix: &str) -> f64 {
    let at = line
        .find(suffix)
        .unwrap_or_else(|| panic!("no '{suffix}' in {line:?}"));
    let word = line[..at].trim_end().rsplit([' ', '(']).next().unwrap();
    word.parse()
        .unwrap_or_else(|_| panic!("'{word}' before '{suffix}' in {line:?}"))
}

#[test]
fn perf_tools_run_and_report_parseable_results() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let addr = broker.addr.clone();

    // Flat out, two partitions, keys.
    let out = perf(
        &addr,
        &[
            "produce",
            "--topic",
            "perf-smoke",
            "--num-records",
            "3000",
            "--record-size",
            "100",
            "--throughput",
            "-1",
            "--partitions",
            "2",
            "--keys",
            "10",
            "--producer-props",
            "acks=1",
            "linger.ms=1",
        ],
    );
    let last = out.lines().last().expect("a result line");
    assert!(last.starts_with("3000 records sent, "), "{last}");
    assert!(number_before(last, " records/sec") > 0.0, "{last}");
    assert!(number_before(last, " MB/sec") > 0.0, "{last}");
    let p50 = number_before(last, " ms 50th");
    let p99 = number_before(last, " ms 99th");
    let max = number_before(last, " ms max latency");
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{last}");
    number_before(last, " ms 95th");
    number_before(last, " ms 99.9th");
    number_before(last, " ms avg latency");

    // Constant rate (open loop), JSON document.
    let out = perf(
        &addr,
        &[
            "produce",
            "--topic",
            "perf-smoke",
            "--num-records",
            "1000",
            "--record-size",
            "100",
            "--throughput",
            "4000",
            "--json",
        ],
    );
    let doc = out.trim();
    assert!(doc.starts_with(r#"{"tool":"produce","#), "{doc}");
    assert!(doc.contains(r#""records":1000,"#), "{doc}");
    assert!(doc.contains(r#""throughput_limit":4000,"#), "{doc}");
    assert!(doc.contains(r#""latency_ms":{"avg":"#), "{doc}");

    // Everything back, from the beginning, without and with a group; then fewer records
    // than the topic holds, which the batches of the run without a group must not overshoot.
    for (group, n) in [(None, 4000), (Some("perf-smoke-group"), 4000), (None, 3500)] {
        let count = n.to_string();
        let mut args = vec!["consume", "--topic", "perf-smoke", "--messages", &count];
        if let Some(g) = group {
            args.extend(["--group", g]);
        } else if n == 3500 {
            // Overridden without a group: a commit's reply would abort the batched reads.
            args.extend([
                "--consumer-props",
                "enable.auto.commit=true",
                "auto.commit.interval.ms=50",
            ]);
        }
        let out = perf(&addr, &args);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(lines[0].starts_with("start.time, end.time, data.consumed.in.MB"));
        let cols: Vec<&str> = lines[1].split(", ").collect();
        assert_eq!(cols.len(), 10, "{out}");
        assert_eq!(cols[4], count, "{out}");
        let mb: f64 = cols[2].parse().unwrap();
        // Keys count too, as in Kafka's tool: the first run's 3,000 keys are "key-0".."key-9".
        if n == 4000 {
            let bytes = 4000.0 * 100.0 + 3000.0 * 5.0;
            assert!((mb - bytes / 1048576.0).abs() < 0.0002, "{out}");
        } else {
            let (least, most) = (n as f64 * 100.0, n as f64 * 105.0);
            assert!(
                least / 1048576.0 - 0.0001 <= mb && mb <= most / 1048576.0 + 0.0001,
                "{out}"
            );
        }
        for c in &cols[3..] {
            c.parse::<f64>()
                .unwrap_or_else(|_| panic!("column {c:?} in {out}"));
        }
    }

    // End to end at a low rate.
    let out = perf(
        &addr,
        &[
            "e2e",
            "--topic",
            "perf-smoke-e2e",
            "--rate",
            "2000",
            "--duration",
            "1",
            "--warmup",
            "0.2",
            "--record-size",
            "64",
            // Overridden: a commit's reply would abort the batched consumer (librdkafka).
            "--consumer-props",
            "enable.auto.commit=true",
            "auto.commit.interval.ms=50",
        ],
    );
    let last = out.lines().last().expect("a result line");
    assert!(last.starts_with("E2E latency at "), "{last}");
    let p99 = number_before(last, " ms 99th");
    assert!(
        p99 > 0.0 && p99 <= number_before(last, " ms max."),
        "{last}"
    );
    assert!(number_before(last, " records,") >= 1000.0, "{last}");
    broker.terminate();
}
