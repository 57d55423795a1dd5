#!/usr/bin/env bash
# How low "G streams ÷ one stream" can go on this core (issue 13's bars), from what it can do at most:
# roofline.c measures its FMA rate (FLOP/s) and how fast a vector-times-matrix product takes in
# float32 and float16 weights; `ssm-stream inspect --json` gives each model's FLOP per sample, and
# `ssm-stream bench --streams` one stream's step time. G streams do G times the FLOPs of one, so
# their cost is at least G · FLOP ÷ peak, and the ratio to one stream at least that ÷ one stream's
# time: a bar below it cannot be met on this machine whatever the code. Needs a release build and a
# C compiler. Usage: Benchmarks/streams/ceilings.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=.build/release/ssm-stream
[ -x "$bin" ] || { echo "build first: swift build -c release --product ssm-stream" >&2; exit 1; }
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
cc -O2 -march=native Benchmarks/streams/roofline.c -o "$dir/roofline"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), family $(sed -n 's/^cpu family\t*: //p' /proc/cpuinfo | head -1) model $(sed -n 's/^model\t*: //p' /proc/cpuinfo | head -1); load $(cut -d' ' -f1-3 /proc/loadavg)"
"$dir/roofline" | tee "$dir/roofline.txt"
for spec in "64 glu" "256 none"; do
    set -- $spec
    python3 Benchmarks/streams/s5-stack.py "$1" "$2" > "$dir/s5-$1.json"
    $bin init -q "$dir/s5-$1.json" -o "$dir/s5-$1.safetensors"
    $bin inspect "$dir/s5-$1.safetensors" --json > "$dir/s5-$1.inspect.json"
    $bin bench --streams "$dir/s5-$1.safetensors" --counts 1 --repeats 5 --seconds 0.2 --json > "$dir/s5-$1.bench.json"
    python3 - "$dir/roofline.txt" "$dir/s5-$1.inspect.json" "$dir/s5-$1.bench.json" "$1" <<'PY'
import json, sys
roof = dict(l.split()[:2] for l in open(sys.argv[1]) if l.startswith("fma"))
peak = float(roof["fma_gflops"]) * 1e9
flops = json.load(open(sys.argv[2]))["flops_per_sample"]
t1 = json.load(open(sys.argv[3]))["step_ns_per_stream_sample"] * 1e-9
print(f"4 × S5, H = P = {sys.argv[4]}: {flops} FLOP per sample; one stream {t1 * 1e9:.0f} ns per sample = "
      f"{flops / t1 / 1e9:.1f} GFLOP/s ({100 * flops / t1 / peak:.0f} % of the FMA peak)")
for G in (8, 16):
    print(f"  {G} streams: at the FMA peak {G * flops / peak * 1e9:.0f} ns per sample, "
          f"so G streams ÷ one ≥ {G * flops / peak / t1:.2f}×")
PY
done
