#!/usr/bin/env bash
# The float64 gradient checks: builds the numeric library and the trainer with Scalar = Double
# (SSM_FLOAT64=1, scratch .build-f64) and runs GradientTests there, which compares every analytic
# gradient with central finite differences (max relative error 1e-6) and writes the gradients to
# $SSM_GRADCHECK_DIR (default .build-f64/gradients) for the float32 suite's precision check.
set -euo pipefail
cd "$(dirname "$0")/.."
export SSM_GRADCHECK_DIR="${SSM_GRADCHECK_DIR:-$PWD/.build-f64/gradients}"
mkdir -p "$SSM_GRADCHECK_DIR"
rm -f "$SSM_GRADCHECK_DIR"/*.txt
SSM_FLOAT64=1 swift build --scratch-path .build-f64 --build-tests
SSM_FLOAT64=1 swift test --scratch-path .build-f64 --skip-build --disable-xctest
n=$(ls "$SSM_GRADCHECK_DIR"/*.txt 2>/dev/null | wc -l)
[ "$n" -gt 0 ] || { echo "error: the float64 gradient checks wrote no gradients" >&2; exit 1; }
echo "gradcheck: float64 gradients of $n cases in $SSM_GRADCHECK_DIR"
