#!/usr/bin/env bash
# The `ssm-stream run` performance bar (issue 4), side by side in one run:
#   1. a 60-minute 16 kHz mono file through a 4-layer S5 model (H = P = 64): `run --mode block`
#      throughput against the bare engine's block scan (`inspect --bench`), and peak RSS for the
#      60-minute file against a 1-minute file;
#   2. an 8th-order designed Butterworth lowpass through `run` against sox running four 2-pole
#      lowpass stages over the same file.
# Needs a release build (swift build -c release --product ssm-stream), sox and GNU time.
# Usage: Benchmarks/pipeline/run-throughput.sh [minutes (60)] [repeats (3)]
set -euo pipefail
cd "$(dirname "$0")/../.."
minutes=${1:-60}
repeats=${2:-3}
bin=.build/release/ssm-stream
[ -x "$bin" ] || { echo "build first: swift build -c release --product ssm-stream" >&2; exit 1; }
command -v sox >/dev/null && [ -x /usr/bin/time ] || { echo "needs sox and GNU time (apt install sox time)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

$bin init -q configs/architectures/s5-4x64.json -o "$work/s5x4.safetensors"
$bin design butterworth lowpass --order 8 --cutoff 1000 --rate 16000 -o "$work/lp8.safetensors" -q
sox -q -n -r 16000 -b 16 -c 1 "$work/long.wav" synth $((minutes * 60)) pinknoise vol 0.3
sox -q -n -r 16000 -b 16 -c 1 "$work/short.wav" synth 60 pinknoise vol 0.3
frames=$((minutes * 60 * 16000))

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "file: $minutes min at 16 kHz mono s16 ($frames frames)"
engine() { $bin inspect --bench --json "$work/s5x4.safetensors" | python3 -c 'import json,sys; print(json.load(sys.stdin)["block_ns_per_sample"])'; }
for r in $(seq 1 "$repeats"); do
    # The engine alone (inspect --bench: block scans of 256 in memory, best of before and after), and
    # run over the whole file, by its CPU time (user + sys: robust to other load on a shared machine).
    e1=$(engine)
    long=$(/usr/bin/time -f "%U %S %M" $bin run -q --mode block "$work/s5x4.safetensors" "$work/long.wav" "$work/out.wav" 2>&1 | tail -1)
    e2=$(engine)
    short=$(/usr/bin/time -f "%U %S %M" $bin run -q --mode block "$work/s5x4.safetensors" "$work/short.wav" "$work/out-short.wav" 2>&1 | tail -1)
    python3 - "$e1" "$e2" "$frames" $long $short <<'PY'
import sys
e1, e2, frames, lu, ls, lkb, su, ss, skb = map(float, sys.argv[1:])
engine = min(e1, e2)
run = (lu + ls) * 1e9 / frames
print(f"S5x4 H=P=64: engine block {engine:.1f} ns/sample, run --mode block {run:.1f} ns/sample (CPU time) "
      f"→ run reaches {100 * engine / run:.1f} % of the engine; peak RSS {lkb / 1024:.1f} MiB (long) "
      f"vs {skb / 1024:.1f} MiB (1 min), difference {(lkb - skb) / 1024:+.2f} MiB")
PY
    t0=$(date +%s.%N); $bin run -q --mode block "$work/lp8.safetensors" "$work/long.wav" "$work/lp8.wav"; t1=$(date +%s.%N)
    sox -q "$work/long.wav" "$work/sox8.wav" lowpass 1000 lowpass 1000 lowpass 1000 lowpass 1000; t2=$(date +%s.%N)
    python3 -c "a=$t1-$t0; b=$t2-$t1; print(f'8th-order lowpass: ssm-stream run (block) {a:.2f} s, sox 4× lowpass {b:.2f} s → sox time / ssm-stream time = {b/a:.2f}')"
done
