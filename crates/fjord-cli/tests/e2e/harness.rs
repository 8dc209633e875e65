//! Starts real `fjord` broker processes for end-to-end tests.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A broker process on a port picked by the OS.
pub struct BrokerProcess {
    pub child: Child,
    pub addr: String,
}

impl BrokerProcess {
    /// Starts `fjord start` on `data_dir` with port 0 and the given overrides, and waits for
    /// its "listening on" line.
    pub fn start(data_dir: &Path, overrides: &[&str]) -> BrokerProcess {
        Self::spawn(data_dir, overrides, Stdio::inherit())
    }

    /// As [`BrokerProcess::start`], with the broker's log (warnings and errors) written to
    /// `log` instead of the test's stderr, for tests that check what the broker reports.
    pub fn start_logging_to(data_dir: &Path, overrides: &[&str], log: &Path) -> BrokerProcess {
        let file = std::fs::File::create(log).expect("create the broker log");
        Self::spawn(data_dir, overrides, Stdio::from(file))
    }

    fn spawn(data_dir: &Path, overrides: &[&str], stderr: Stdio) -> BrokerProcess {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fjord"));
        cmd.arg("start")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--override")
            .arg("listeners=PLAINTEXT://127.0.0.1:0");
        for o in overrides {
            cmd.arg("--override").arg(o);
        }
        cmd.env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = cmd.spawn().expect("spawn fjord");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read startup line");
        let addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .unwrap_or_else(|| panic!("unexpected startup line: {line:?}"))
            .trim()
            .to_string();
        BrokerProcess { child, addr }
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        wait_exit(&mut self.child, Duration::from_secs(10))
    }

    /// Kills the process with SIGKILL (kill -9) and reaps it.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for a child to exit within `limit`; panics otherwise.
/// A local port that refuses connections for as long as the returned socket lives: bound but
/// never listening. (Binding a listener and closing it again let a broker of a test running
/// in parallel take the port, and a tool expected to fail then reached that broker.)
pub fn refusing_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("address"))
        .expect("bind");
    let port = socket.local_addr().expect("local address").port();
    (socket, port)
}

pub fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "process did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `f` until it returns `Some`, panicking after `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
