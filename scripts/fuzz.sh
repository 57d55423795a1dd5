#!/usr/bin/env bash
# Fuzzes every parser of untrusted input with libFuzzer + AddressSanitizer, SECONDS seconds each
# (default 60), from a corpus made of the shipped files:
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# targets: safetensors architecture statespace config text audio control
# Prints one line per target (executions, coverage, crashes) and exits 1 if any target found a
# crash, a leak, an ASan report, a timeout (10 s) or more than 2 GiB of memory (the input is kept in
# .build-fuzz/findings/TARGET/). CI runs it for 8 s each.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors architecture statespace config text audio control)
# Package.swift instruments every target (-sanitize=fuzzer,address) when SSM_FUZZ=1.
SSM_FUZZ=1 swift build -c release --scratch-path .build-fuzz --product ssm-fuzz 2>&1 \
    | grep -E "error|Build" || true
bin=.build-fuzz/release/ssm-fuzz
[ -x "$bin" ] || { echo "error: $bin was not built" >&2; exit 1; }

# Seeds: the shipped models, architectures, configurations, examples and golden vectors.
seed() {
    local t=$1 dir=.build-fuzz/corpus/$1
    mkdir -p "$dir"
    case $t in
    safetensors) cp models/*.safetensors "$dir"/ ;;
    architecture) cp configs/architectures/*.json "$dir"/ ;;
    statespace)
        printf '{ "a": [[-1000, 3000], [-3000, -1000]], "b": [[1], [0]], "c": [[0, 500]], "d": [[0]],\n  "domain": "continuous", "discretization": "bilinear", "rate": 16000 }\n' > "$dir/ss.json"
        printf '{ "num": [0.2, 0.4, 0.2], "den": [1, -0.5, 0.3], "domain": "discrete", "rate": 8000 }\n' > "$dir/tf.json" ;;
    config) cp configs/*.toml "$dir"/ ;;
    text) printf 'a,b\n0.1,0.2\n0.3,-0.4\n' > "$dir/seed.csv"; printf '# c\n1 2 3\n4 5 6\n' > "$dir/seed.txt" ;;
    audio) head -c 8192 examples/noisy-tone.wav > "$dir/seed.wav" ;;
    control) printf 'status\nping\n' > "$dir/a"; printf 'subscribe\nhelp\nfrobnicate x\n\n' > "$dir/b" ;;
    esac
}

failed=0
for t in "${targets[@]}"; do
    seed "$t"
    rm -rf ".build-fuzz/findings/$t"; mkdir -p ".build-fuzz/findings/$t"
    log=".build-fuzz/fuzz-$t.log"
    set +e
    SSM_FUZZ_TARGET=$t ASAN_OPTIONS=detect_leaks=1 SWIFT_BACKTRACE=enable=no "$bin" ".build-fuzz/corpus/$t" \
        -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix=".build-fuzz/findings/$t/" -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo "?")
    crashes=$(find ".build-fuzz/findings/$t" -type f | wc -l)
    echo "fuzz $t: $runs executions in ${seconds} s, coverage $cov edges, crashes $crashes (exit $rc)"
    if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then failed=1; tail -30 "$log" >&2; fi
done
exit $failed
