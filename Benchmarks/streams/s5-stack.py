#!/usr/bin/env python3
"""The S5 stacks of issue 13's benchmarks (streams-bench.sh, ceilings.sh): four S5 blocks of
H = P (LayerNorm, GELU, residual) with output "glu" or "none", at 16 kHz, as architecture JSON.
usage: s5-stack.py H OUTPUT > arch.json"""
import json, sys
H, out = int(sys.argv[1]), sys.argv[2]
blocks = [{"layer": {"family": "s5", "d_model": H, "d_state": H}, "norm": "layer", "activation": "gelu",
           "output": out, "residual": True} for _ in range(4)]
print(json.dumps({"sample_rate": 16000, "d_input": 1, "d_model": H, "d_output": 1, "encoder": True,
                  "decoder": True, "blocks": blocks}))
