#!/usr/bin/env bash
# Quick start 1: install what is missing, build in release mode, and stream the shipped noisy
# tone through the shipped 8th-order Butterworth lowpass, designed by `ssm-stream design` as a
# diagonal (modal) state-space model.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
swift build -c release --product ssm-stream
swift build -c release --product ssm-streamd
bin=.build/release/ssm-stream
# The main job: the daemon, on the embedded default of configs/demo.toml (file source, same
# lowpass, exits at the end of the file; logs to stderr).
.build/release/ssm-streamd --config configs/demo.toml
echo "wrote lowpass-out.wav: the 220 Hz tone kept, the 4 kHz whistle and the hiss removed"
# The same through the command-line tool gives the same samples.
$bin run -q models/butter8-lowpass-1k.safetensors examples/noisy-tone.wav lowpass-out-run.wav
cmp -s lowpass-out.wav lowpass-out-run.wav && echo "ssm-stream run wrote identical samples (lowpass-out-run.wav)"
