#!/usr/bin/env bash
# Training throughput of `ssm-stream bench --train` against the JAX/XLA S5 reference
# (../shared/anchors/jax-s5: the same 68 106-parameter classifier, batch 16, L = 8000), run in turn
# in the same minutes, ROUNDS times; prints each pair and the ratios (ours / JAX).
# Needs the release build (swift build -c release --product ssm-stream) and
# `pip install jax==0.10.2 jaxlib==0.10.2` (Python 3.11).
set -euo pipefail
cd "$(dirname "$0")/../.."
anchor="${JAX_S5:-../shared/anchors/jax-s5}"
rounds="${ROUNDS:-3}"
lscpu | grep -m1 "Model name" || true
for i in $(seq "$rounds"); do
    ours=$(.build/release/ssm-stream bench --train examples/train/s5-anchor.json --batch 16 --length 8000 --repeats 3 --json)
    jax=$(cd "$anchor" && python3 bench.py --L 8000 --batch 16 --mode scan --reps 3 | tail -1)
    python3 - "$ours" "$jax" <<'PY'
import json, sys
o, j = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"ssm-stream: forward {o['forward_samples_steps_per_s']/1e3:.0f}k, train step {o['train_samples_steps_per_s']/1e3:.0f}k "
      f"(x{o['train_to_forward_cost']:.2f} forward), peak RSS {o['peak_rss_mib']:.0f} MiB | "
      f"JAX: forward {j['fwd_st_per_s']/1e3:.0f}k, forward+backward {j['fwdbwd_st_per_s']/1e3:.0f}k | "
      f"ratio forward {o['forward_samples_steps_per_s']/j['fwd_st_per_s']:.2f}, train {o['train_samples_steps_per_s']/j['fwdbwd_st_per_s']:.2f}")
PY
done
