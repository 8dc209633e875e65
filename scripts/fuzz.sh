#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a while; fails if any input crashes one.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]    default 30; CI runs `scripts/fuzz.sh 20`
#   scripts/fuzz.sh 600 log_recovery ...    only the named targets
#
# Works on the stable toolchain: cargo-fuzz is installed from crates.io when missing, and
# targets are built with `--sanitizer none`, whose flags are all stable (-Cpasses=sancov-module
# and -Cllvm-args). The code under test is safe Rust apart from the broker's allocator, so the
# bugs to find are panics (debug assertions and overflow checks are on), failed invariants,
# hangs (-timeout) and memory blow-ups (-rss_limit_mb). AddressSanitizer needs the unstable
# -Zsanitizer flag; on stable it builds with RUSTC_BOOTSTRAP=1, by hand:
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -s address request
#
# Each target starts from fuzz/seeds/<target> and fuzz/regressions/<target> (read only, so a
# saved crash that comes back fails at once) plus fuzz/corpus/<target>, where new inputs go
# and which persists between local runs (not committed). A crash is saved under
# fuzz/artifacts/<target>/ and the command to reproduce it is printed.
#
# Runs shorter than 120 s per target (CI's smoke run) use an unoptimized build: it builds in
# about a third of the time (the kafka-protocol crate dominates), which saves more than the
# slower execution (~8x fewer inputs per second) loses in a short run. Seeds and saved crashes
# are replayed either way.
#
# Environment:
#   FJORD_FUZZ_PROFILE      release | dev (default: by run length, see above)
#   FJORD_FUZZ_TARGET_DIR   build directory (default ~/.cache/fjord-fuzz/target): apart from
#                           the workspace's, whose compiler flags differ, and outside the
#                           checkout so that fresh clones on one machine reuse the built
#                           dependencies
#   FUZZ_ARGS               extra libFuzzer flags, e.g. FUZZ_ARGS="-max_len=65536"
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"

seconds="${1:-30}"
shift || true
if [[ ! "$seconds" =~ ^[0-9]+$ ]]; then
    sed -n '2,31p' "$0"
    exit 2
fi
all_targets=(frame_stream request record_batch log_recovery)
targets=("${@:-${all_targets[@]}}")

CARGO_FUZZ_VERSION=0.13.2
export CARGO_TARGET_DIR="${FJORD_FUZZ_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fjord-fuzz/target}"
profile="${FJORD_FUZZ_PROFILE:-$([[ $seconds -lt 120 ]] && echo dev || echo release)}"
case "$profile" in
    release) profile_flag=() ;;
    dev) profile_flag=(--dev) ;;
    *) echo "FJORD_FUZZ_PROFILE must be release or dev" >&2; exit 2 ;;
esac
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# With the default ("all"), a run that panics prints its backtrace twice.
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

step() { printf '\n==> %s\n' "$*"; }
now() { date +%s; }
t0=$(now)

if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    step "install cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi
t_install=$(now)

step "build fuzz targets ($profile, sanitizer none, in $CARGO_TARGET_DIR)"
cargo fuzz build --sanitizer none "${profile_flag[@]}"
t_build=$(now)

failed=()
summary=()
for target in "${targets[@]}"; do
    step "fuzz $target for ${seconds}s"
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    inputs=("$corpus" "fuzz/seeds/$target")
    if [[ -d "fuzz/regressions/$target" ]]; then
        inputs+=("fuzz/regressions/$target")
    fi
    log="$(mktemp)"
    status=0
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    cargo fuzz run --sanitizer none "${profile_flag[@]}" "$target" "${inputs[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        ${FUZZ_ARGS:-} >"$log" 2>&1 || status=$?
    # A crash while loading the seeds leaves no stats behind.
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    cov="$({ grep -oE 'cov: [0-9]+' "$log" || true; } | tail -1 | cut -d' ' -f2)"
    line="$(printf '%-14s execs %-10s exec/s %-7s cov %-6s' "$target" "${execs:-?}" "${rate:-?}" "${cov:-?}")"
    if [[ $status -ne 0 ]]; then
        tail -n 60 "$log"
        echo
        grep -A3 -E 'panicked at|ERROR: libFuzzer' "$log" | head -n 20 || true
        artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)"
        line="$line FAILED (exit $status)"
        if [[ -n "$artifact" ]]; then
            line="$line: $artifact"
            echo
            flags="-s none${profile_flag[*]:+ ${profile_flag[*]}}"
            echo "reproduce: FJORD_FUZZ_TRACE=1 cargo fuzz run $flags $target $artifact"
            echo "minimize:  cargo fuzz tmin $flags $target $artifact"
            echo "then save it as fuzz/regressions/$target/<what-it-shows>"
        fi
        failed+=("$target")
    else
        grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' "$log" || true
    fi
    summary+=("$line")
    rm -f "$log"
done
t_end=$(now)

step "summary"
printf '%s\n' "${summary[@]}"
echo "time: install $((t_install - t0))s, build $((t_build - t_install))s, fuzz $((t_end - t_build))s"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "crashed: ${failed[*]}" >&2
    exit 1
fi
