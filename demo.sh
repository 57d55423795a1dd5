#!/usr/bin/env bash
# Quick start 1: install what is missing, build in release mode, and stream the shipped noisy
# tone through the shipped 8th-order Butterworth lowpass, designed by `ssm-stream design` as a
# diagonal (modal) state-space model.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
swift build -c release --product ssm-stream
bin=.build/release/ssm-stream
$bin run models/butter8-lowpass-1k.safetensors examples/noisy-tone.wav lowpass-out.wav
echo "wrote lowpass-out.wav: the 220 Hz tone kept, the 4 kHz whistle and the hiss removed"
