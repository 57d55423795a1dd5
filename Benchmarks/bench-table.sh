#!/usr/bin/env bash
# The README's layer table: `ssm-stream bench` for every family at the issue sizes, one session,
# printed as Markdown rows. Needs a release build. Usage: Benchmarks/bench-table.sh [repeats (3)]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.build/release/ssm-stream
[ -x "$bin" ] || { echo "build first: swift build -c release --product ssm-stream" >&2; exit 1; }
repeats=${1:-3}
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), family $(sed -n 's/^cpu family\t*: //p' /proc/cpuinfo | head -1), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| family | H | P | FLOP/sample | step ns | step GFLOP/s | block ns | block GFLOP/s | step × real time @16 kHz |"
echo "|---|---|---|---|---|---|---|---|---|"
row() {  # family H P label-H label-P
    $bin bench --family "$1" --H "$2" --P "$3" --seconds 0.2 --repeats "$repeats" --json | python3 -c '
import json, sys
j = json.load(sys.stdin)
cells = [j["family"], sys.argv[1], sys.argv[2], j["flops_per_sample"], "%.0f" % j["step_ns_per_sample"],
         "%.1f" % j["step_gflops"], "%.0f" % j["block_ns_per_sample"], "%.1f" % j["block_gflops"],
         "%.0f×" % j["step_realtime_factor_16k"]]
print("| " + " | ".join(str(c) for c in cells) + " |")' "$4" "$5"
}
for f in s4d s5 lru; do for n in 16 64 256; do row $f $n $n $n $n; done; done
row s4 64 64 64 N=64
row h3 64 64 "d_model 64" N=64
row mamba 64 16 "d_model 64" "N=16, E=128"
row hawk 64 64 "d_model 64" "lru 64"
for n in 16 64 256; do row rglru $n $n $n $n; done
