#!/usr/bin/env bash
# Many streams through one model (issue 13): `ssm-stream bench --streams` on a 4-layer S5 stack of
# H = P = 64 (GLU blocks, the issue's per-channel case) and of H = P = 256 (GELU and residual, no
# GLU: the f16 bar's model), G = 1, 2, 4, 8, 16 streams, step and block mode, one core, thread CPU
# time per stream-sample, float32 weights and f16 (`ssm-stream convert --weights f16`), printed as
# Markdown rows. Needs a release build.
# Usage: Benchmarks/streams/streams-bench.sh [repeats (5)]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=.build/release/ssm-stream
[ -x "$bin" ] || { echo "build first: swift build -c release --product ssm-stream" >&2; exit 1; }
repeats=${1:-5}
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), family $(sed -n 's/^cpu family\t*: //p' /proc/cpuinfo | head -1) model $(sed -n 's/^model\t*: //p' /proc/cpuinfo | head -1), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| model | streams G | step ns per stream-sample | step: G streams ÷ one | block ns per stream-sample | block: G streams ÷ one |"
echo "|---|---|---|---|---|---|"
for spec in "64 glu" "256 none"; do
    set -- $spec
    H=$1; out=$2
    python3 Benchmarks/streams/s5-stack.py "$H" "$out" > "$dir/s5-$H.json"
    $bin init -q "$dir/s5-$H.json" -o "$dir/s5-$H.safetensors"
    $bin convert -q "$dir/s5-$H.safetensors" --weights f16 -o "$dir/s5-$H-f16.safetensors"
    for prec in fp32 f16; do
    m="$dir/s5-$H.safetensors"; [ "$prec" = f16 ] && m="$dir/s5-$H-f16.safetensors"
    $bin bench --streams "$m" --counts 1,2,4,8,16 --repeats "$repeats" --seconds 0.2 --json | python3 -c '
import json, sys
label = sys.argv[1]
for line in sys.stdin:
    j = json.loads(line)
    print("| %s | %d | %.0f | %.2f× | %.0f | %.2f× |" % (label, j["streams"], j["step_ns_per_stream_sample"],
          j["step_cost_vs_one_stream"], j["block_ns_per_stream_sample"], j["block_cost_vs_one_stream"]))' "4 × S5, H = P = $H, $([ "$out" = glu ] && echo GLU || echo "no GLU"), $prec"
    done
done
