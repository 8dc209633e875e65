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
