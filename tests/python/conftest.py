"""Fixtures for the Fjord interop suite.

`broker` is one `fjord start` process shared by the whole session (fresh
temporary data dir, ephemeral port); it is stopped with SIGTERM at the end
and must exit 0.  `broker_factory` starts extra brokers with their own
overrides for tests that need a differently configured node.

Set FJORD_BIN to test another binary (default: target/debug/fjord).
"""

from __future__ import annotations

import shutil
import signal

import pytest

from fjord_support import BrokerProcess, ck_admin, unique_topic

_running: list[BrokerProcess] = []


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    root = tmp_path_factory.mktemp("fjord-session")
    proc = BrokerProcess(root / "data", root / "fjord.log")
    _running.append(proc)
    proc.start()
    yield proc
    _running.remove(proc)
    assert proc.alive(), f"broker died during the session (exit {proc.proc.returncode})\n{proc.log_tail()}"
    code = proc.stop(signal.SIGTERM)
    assert code == 0, f"fjord exited with {code} after SIGTERM\n{proc.log_tail()}"


@pytest.fixture
def bootstrap(broker) -> str:
    return broker.bootstrap


@pytest.fixture
def broker_factory(tmp_path):
    """Start extra brokers: factory(overrides=None, data_dir=None, name=None, file_limit=None,
    soft_file_limit=None)."""
    started: list[BrokerProcess] = []

    def start(
        overrides: dict | None = None,
        data_dir=None,
        name: str | None = None,
        file_limit: int | None = None,
        soft_file_limit: int | None = None,
    ) -> BrokerProcess:
        n = len(started)
        name = name or f"b{n}"
        data = data_dir or (tmp_path / f"{name}-data")
        proc = BrokerProcess(data, tmp_path / f"{name}-{n}.log", overrides, file_limit, soft_file_limit)
        started.append(proc)
        _running.append(proc)
        proc.start()
        return proc

    yield start
    for proc in started:
        _running.remove(proc)
        proc.kill()


@pytest.fixture
def admin(bootstrap):
    return ck_admin(bootstrap)


@pytest.fixture
def topic(request) -> str:
    """A unique topic name derived from the test name (not created)."""
    return unique_topic(request.node.name)


@pytest.fixture(scope="session")
def kcat_bin() -> str:
    path = shutil.which("kcat") or shutil.which("kafkacat")
    if path is None:
        pytest.fail("kcat is not installed (scripts/test.sh installs Debian's kcat package)")
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the tail of every running broker's stderr to failing tests."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for proc in list(_running):
            report.sections.append((f"fjord log {proc.log_path.name}", proc.log_tail(40)))
