#!/usr/bin/env python3
"""How much a per-step classifier's score owes to the digital silence `eval` frames recordings with.

usage: Benchmarks/training/framed-eval.py MODEL MANIFEST [--frame zero|floor] [--cli PATH]

`ssm-stream eval` runs each recording from rest and then `tail` (0.25 s) of digital silence, so a
noisy recording starts and stops abruptly. A live stream does not: the room's noise goes on. This
scores MODEL (a classifier trained per step) on MANIFEST (path,label) the way `eval` does —
`ssm-stream run` with the model's own event settings, the prediction the class of the event that
peaks highest, the model's background class if none fires — with each recording (mono: channels
averaged) framed by

  zero   the model's `tail` (0.25 s) of digital silence after it (what `eval` does: the same figure), or
  floor  as long before and after it of white noise at the recording's own noise floor (the RMS of
         its quietest 10 % of 10 ms frames; seeded), as if cut from a continuing stream.

Prints "FRAME accuracy %". Needs numpy and scipy; runs one `ssm-stream run` per recording.
"""
import argparse, json, os, struct, subprocess, sys, tempfile
import numpy as np
import manifest
from scipy.io import wavfile


def model_options(path):
    """The model file's training options (safetensors metadata "ssm_train_options"), or {}."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        meta = json.loads(f.read(n)).get("__metadata__", {})
    return json.loads(meta.get("ssm_train_options", "{}"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("manifest")
    ap.add_argument("--frame", choices=["zero", "floor"], default="floor")
    ap.add_argument("--cli", default=os.path.join(os.path.dirname(__file__), "../../.build/release/ssm-stream"))
    a = ap.parse_args()
    options = model_options(a.model)
    if options.get("readout") != "per_step":
        sys.exit("framed-eval.py: the model was not trained per step (eval scores it by its mean logits, not by events)")
    tail, background = options.get("tail", 0.25), options.get("background")
    rows, base = manifest.read(a.manifest, "framed-eval.py")
    rng = np.random.default_rng(0)
    correct = 0
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "framed.wav")
        for path, label in rows:
            x, rate = manifest.mono(path if os.path.isabs(path) else os.path.join(base, path))
            pad = int(round(tail * rate))
            if a.frame == "floor":
                hop = max(1, rate // 100)
                frames = x[: len(x) // hop * hop].reshape(-1, hop)
                power = np.sort((frames ** 2).mean(axis=1)) if len(frames) else np.zeros(1)
                level = np.sqrt(power[: max(1, len(power) // 10)].mean())
                y = np.concatenate([rng.standard_normal(pad) * level, x, rng.standard_normal(pad) * level])
            else:
                y = np.concatenate([x, np.zeros(pad)])
            wavfile.write(wav, rate, y.astype(np.float32))
            out = subprocess.run([a.cli, "run", "-q", "--resample", a.model, wav], capture_output=True, text=True, check=True).stdout
            events = [json.loads(line) for line in out.splitlines()]
            predicted = max(events, key=lambda e: e["peak"])["class"] if events else background
            correct += predicted == label
    print(f"{a.frame} {100 * correct / len(rows):.1f} %")


if __name__ == "__main__":
    sys.exit(main())
