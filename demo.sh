#!/usr/bin/env bash
# Quick start 1: install what is missing, build in release mode, and run the main job — the daemon
# listening to a recording of spoken digits through the shipped classifier, each digit reported as
# it is detected — then a filter: the shipped Butterworth lowpass on a noisy tone.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
swift build -c release --product ssm-stream
swift build -c release --product ssm-streamd
bin=.build/release/ssm-stream
# The main job: ssm-streamd on configs/digits-demo.toml (file source: examples/digits.wav, the ten
# digits by voices the model never heard; events on stderr and in digits-events.jsonl; exits at
# the end of the file).
rm -f digits-events.jsonl
.build/release/ssm-streamd --config configs/digits-demo.toml
echo "spoken (examples/digits.txt: start s, end s, digit):"
sed 's/^/  /' examples/digits.txt
# `ssm-stream run` on the same recording reports the same events as JSON Lines.
$bin run -q models/digits.safetensors examples/digits.wav digits-events-run.jsonl
echo "ssm-stream run: $(wc -l < digits-events-run.jsonl) events (digits-events-run.jsonl)"
# A filter: the daemon on configs/demo.toml streams a 220 Hz tone buried in a 4 kHz whistle and
# hiss through the 8th-order Butterworth lowpass and writes lowpass-out.wav; `run` the same.
.build/release/ssm-streamd --config configs/demo.toml
echo "wrote lowpass-out.wav: the 220 Hz tone kept, the 4 kHz whistle and the hiss removed"
$bin run -q models/butter8-lowpass-1k.safetensors examples/noisy-tone.wav lowpass-out-run.wav
cmp -s lowpass-out.wav lowpass-out-run.wav && echo "ssm-stream run wrote identical samples (lowpass-out-run.wav)"
