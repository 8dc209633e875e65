#!/usr/bin/env bash
# One command for all of Fjord's checks: formatting, lints, Rust tests and the
# cross-client interop suite (confluent-kafka, kafka-python, kcat).
#
#   scripts/test.sh                 everything (what CI runs)
#   scripts/test.sh --python-only   build the broker, then only the interop suite
#   scripts/test.sh ... -- ARGS     extra ARGS are passed to pytest
#
# Setup is idempotent and works on a fresh Debian machine as root: kcat is
# installed with apt-get when missing, and the Python dependencies live in
# .venv at the repository root.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"

python_only=0
pytest_args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --python-only) python_only=1 ;;
        --) shift; pytest_args+=("$@"); break ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

step() { printf '\n==> %s\n' "$*"; }

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# ---------------------------------------------------------------- setup
if [[ $(id -u) -eq 0 ]]; then SUDO=(); else SUDO=(sudo); fi
apt_updated=0
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [[ $apt_updated -eq 0 ]]; then
        "${SUDO[@]}" apt-get update -q
        apt_updated=1
    fi
    "${SUDO[@]}" apt-get install -y -qq "$@"
}

step "setup: kcat"
if ! command -v kcat >/dev/null 2>&1; then
    apt_install kcat
fi
kcat -V

step "setup: python venv (.venv)"
VENV="$ROOT/.venv"
REQS="$ROOT/tests/python/requirements.txt"
STAMP="$VENV/.requirements.sha256"
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$VENV"
    if ! python3 -m venv "$VENV"; then
        # Debian's own python3 needs python3-venv for ensurepip.
        rm -rf "$VENV"
        apt_install python3-venv
        python3 -m venv "$VENV"
    fi
fi
want="$(sha256sum "$REQS" | cut -d' ' -f1)"
if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$want" ]]; then
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQS"
    echo "$want" > "$STAMP"
fi
"$VENV/bin/python" - <<'PY'
import confluent_kafka, kafka, pytest
print("confluent-kafka", confluent_kafka.version(), "librdkafka", confluent_kafka.libversion(),
      "kafka-python", kafka.__version__, "pytest", pytest.__version__)
PY

# ---------------------------------------------------------------- rust
if [[ $python_only -eq 0 ]]; then
    step "cargo fmt --all -- --check"
    cargo fmt --all -- --check

    step "cargo clippy --workspace --all-targets -- -D warnings"
    cargo clippy --workspace --all-targets -- -D warnings
fi

step "cargo build -p fjord-cli"
cargo build -p fjord-cli

if [[ $python_only -eq 0 ]]; then
    step "cargo test --workspace"
    cargo test --workspace

    step "fuzz targets: format, saved crashes, 20 s smoke run each (scripts/fuzz.sh)"
    cargo fmt --manifest-path fuzz/Cargo.toml -- --check
    cargo test --manifest-path fuzz/Cargo.toml --lib
    scripts/fuzz.sh 20
fi

# ---------------------------------------------------------------- interop
step "pytest tests/python (interop)"
export FJORD_BIN="${FJORD_BIN:-$ROOT/target/debug/fjord}"
"$VENV/bin/python" -m pytest -q tests/python "${pytest_args[@]}"
