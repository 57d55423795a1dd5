#!/usr/bin/env bash
# Reproduces the shipped spoken-digit classifier from nothing but espeak-ng, flite and FSDD:
#   scripts/train-digits.sh FSDD_DIR [s4d|s5|lru] [MINUTES]
# 1. scripts/make-digits.py writes the synthetic set, the manifests and the stream recording to
#    .build-digits/ (FSDD is referenced in place, never copied);
# 2. ssm-stream train runs examples/train/digits.toml with the chosen family's architecture (default
#    s4d, the shipped model's; the recipe's epochs on its two threads, or a MINUTES budget on all cores);
# 3. ssm-stream eval scores it on the held-out synthetic voices and the held-out human speaker.
# Everything lands in .build-digits/ (the model, the stream recording stream.wav and stream.txt,
# when each of its digits is spoken); nothing in the repository is changed.
set -euo pipefail
cd "$(dirname "$0")/.."
fsdd="${1:?usage: scripts/train-digits.sh FSDD_DIR [s4d|s5|lru] [MINUTES]}"
family="${2:-s4d}"
minutes="${3:-}"   # default: the recipe's epochs and threads (examples/train/digits.toml)
. scripts/digits-data.sh
out=".build-digits/digits-$family.safetensors"
$bin train --config examples/train/digits.toml --arch "examples/train/digits-$family.json" -o "$out" \
    ${minutes:+--minutes "$minutes" --threads "$(nproc)"} --json | tee ".build-digits/train-$family.jsonl"
$bin eval "$out" .build-digits/test-synth.csv --json | tee ".build-digits/eval-$family-synth.json"
$bin eval "$out" .build-digits/test-human.csv --json | tee ".build-digits/eval-$family-human.json"
echo "model: $out; a stream to try it on: $bin run $out .build-digits/stream.wav (cf. .build-digits/stream.txt)"
