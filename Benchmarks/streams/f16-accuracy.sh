#!/usr/bin/env bash
# Half-precision weights (issue 13): each family's model (configs/architectures, initialized) and the
# shipped models, converted with `ssm-stream convert --weights f16`, run by `ssm-stream run` in step
# and block mode on the same input as the float32 model; prints max |y16 − y32| / max |y32| (for a
# classifier: the scores every 10 samples) and the file sizes. The shipped digit classifier also
# with `convert --max-error 1e-3`: probed on examples/digits.wav itself (the bound then holds on it
# by construction), and probed on the recording's first half, measured on its second half (speech
# the conversion did not see). Needs a release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=.build/release/ssm-stream
[ -x "$bin" ] || { echo "build first: swift build -c release --product ssm-stream" >&2; exit 1; }
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
python3 - "$dir" <<'PY'
import numpy as np, sys, wave
d = sys.argv[1]
rng = np.random.default_rng(5)
for rate in (16000, 8000):
    x = (0.3 * np.sin(2 * np.pi * 440 * np.arange(2 * rate) / rate) + 0.1 * rng.standard_normal(2 * rate)).clip(-1, 1)
    with wave.open(f"{d}/in{rate}.wav", "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(rate); w.writeframes((x * 32767).astype("<i2").tobytes())
w = wave.open("examples/digits.wav")
frames, half, size = w.getnframes(), w.getnframes() // 2, w.getsampwidth() * w.getnchannels()
data = w.readframes(frames)
for name, part in (("first", data[:half * size]), ("second", data[half * size:])):
    with wave.open(f"{d}/digits-{name}.wav", "wb") as o:
        o.setnchannels(w.getnchannels()); o.setsampwidth(w.getsampwidth()); o.setframerate(w.getframerate())
        o.writeframes(part)
PY
echo "| model | f32 bytes | f16 bytes | step: max rel. error | block: max rel. error |"
echo "|---|---|---|---|---|"
compare() {  # name model input [convert options]
    local name=$1 m=$2 in=$3
    shift 3
    # With options (--max-error, --probe): what convert measured on its probe and kept, on stderr.
    if [ $# -gt 0 ]; then $bin convert "$m" --weights f16 "$@" -o "$dir/h.safetensors" 2>&1 | sed -n 's/^ssm-stream convert: on /  (convert, on /p' >&2
    else $bin convert -q "$m" --weights f16 -o "$dir/h.safetensors"; fi
    local kind; kind=$($bin inspect --json "$m" | python3 -c 'import json,sys; print(json.load(sys.stdin)["task"])')
    local errs=()
    for mode in step block; do
        if [ "$kind" = classify ]; then
            $bin run -q --mode "$mode" --posteriors 10 --threshold 1 "$m" "$in" "$dir/a.jsonl"
            $bin run -q --mode "$mode" --posteriors 10 --threshold 1 "$dir/h.safetensors" "$in" "$dir/b.jsonl"
            errs+=("$(python3 - "$dir/a.jsonl" "$dir/b.jsonl" <<'PY'
import json, sys
def scores(p):
    return [v for l in open(p) for o in [json.loads(l)] if o.get("type") == "posteriors" for v in o["scores"].values()]
a, b = scores(sys.argv[1]), scores(sys.argv[2])
print("%.2e" % (max(abs(x - y) for x, y in zip(a, b)) / max(abs(x) for x in a)))
PY
)")
        else
            $bin run -q --mode "$mode" --encoding f32 "$m" "$in" "$dir/a.wav"
            $bin run -q --mode "$mode" --encoding f32 "$dir/h.safetensors" "$in" "$dir/b.wav"
            errs+=("$(python3 - "$dir/a.wav" "$dir/b.wav" <<'PY'
import sys, numpy as np
def read(p):
    b = open(p, "rb").read(); i = b.find(b"data"); return np.frombuffer(b[i + 8:], dtype="<f4")
a, b = read(sys.argv[1]), read(sys.argv[2])
print("%.2e" % (np.abs(a - b).max() / np.abs(a).max()))
PY
)")
        fi
    done
    echo "| $name | $(stat -c %s "$m") | $(stat -c %s "$dir/h.safetensors") | ${errs[0]} | ${errs[1]} |"
}
for a in s5-4x64 mamba-2x64 griffin-64 h3-64 s4d-classifier; do
    $bin init -q "configs/architectures/$a.json" -o "$dir/$a.safetensors"
    rate=$($bin inspect --json "$dir/$a.safetensors" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sample_rate"])')
    compare "$a (init)" "$dir/$a.safetensors" "$dir/in$rate.wav"
done
compare "models/digits.safetensors" models/digits.safetensors examples/digits.wav
compare "models/digits.safetensors, \`--max-error 1e-3 --probe examples/digits.wav\`" models/digits.safetensors \
    examples/digits.wav --max-error 1e-3 --probe examples/digits.wav
compare "models/digits.safetensors, second half of digits.wav" models/digits.safetensors "$dir/digits-second.wav"
compare "models/digits.safetensors, second half, \`--max-error 1e-3\` probed on the first" models/digits.safetensors \
    "$dir/digits-second.wav" --max-error 1e-3 --probe "$dir/digits-first.wav"
compare "models/lowpass-1k.safetensors" models/lowpass-1k.safetensors "$dir/in16000.wav"
