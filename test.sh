#!/usr/bin/env bash
# Quick start 2: install what is missing and run the whole test suite (unit, golden
# conformance, I/O and command-line tests).
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
# The float64 gradient checks (finite differences of the product's own forward code, built with
# Scalar = Double); they leave their gradients for the float32 suite's precision check.
export SSM_GRADCHECK_DIR="$PWD/.build-f64/gradients"
scripts/gradcheck.sh
swift build --build-tests
# The allocation tests count the heap allocations of the release binary users run; the daemon's
# signal and timing tests run the release daemon too.
swift build -c release --product ssm-stream
swift build -c release --product ssm-streamd
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
swift test --skip-build --disable-xctest 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One plain closing line: "tests: N passed, N failed".
total=$(grep -oE 'Test run with [0-9]+ test' "$log" | grep -oE '[0-9]+' | tail -1 || true)
# (A failing test prints one "recorded an issue" line per issue and one "failed after" line.)
failed=$(grep -E '^✘ Test .* failed after [0-9.]+ seconds' "$log" | grep -v ' recorded an' \
    | grep -vcE '^✘ Test run with [0-9]+ tests? ' || true)
[ -n "$total" ] || { echo "error: swift test printed no summary" >&2; exit 1; }
echo "tests: $((total - failed)) passed, $failed failed"
exit "$status"
