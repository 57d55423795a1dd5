#!/usr/bin/env python3
"""How much a per-step classifier's score owes to the digital silence `eval` frames recordings with.

usage: Benchmarks/training/framed-eval.py MODEL MANIFEST [--frame zero|floor] [--cli PATH]

`ssm-stream eval` runs each recording from rest and then `tail` (0.25 s) of digital silence, so a
noisy recording starts and stops abruptly. A live stream does not: the room's noise goes on. This
scores MODEL on MANIFEST (path,label) the way `eval` does — `ssm-stream run` with the model's own
event settings, the prediction the class of the event that peaks highest, the background class
"silence" if none fires — with each recording framed by

  zero   0.25 s of digital silence after it (what `eval` does; its figure should equal eval's), or
  floor  0.25 s before and after it of white noise at the recording's own noise floor (the RMS of
         its quietest 10 % of 10 ms frames; seeded), as if cut from a continuing stream.

Prints "FRAME accuracy %". Needs numpy and scipy; runs one `ssm-stream run` per recording.
"""
import argparse, csv, json, os, subprocess, sys, tempfile
import numpy as np
from scipy.io import wavfile


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("manifest")
    ap.add_argument("--frame", choices=["zero", "floor"], default="floor")
    ap.add_argument("--cli", default=os.path.join(os.path.dirname(__file__), "../../.build/release/ssm-stream"))
    a = ap.parse_args()
    rows = list(csv.reader(open(a.manifest)))[1:]
    base = os.path.dirname(os.path.abspath(a.manifest))
    rng = np.random.default_rng(0)
    correct = 0
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "framed.wav")
        for path, label in rows:
            rate, x = wavfile.read(path if os.path.isabs(path) else os.path.join(base, path))
            x = x.astype(np.float64) * (32767 if np.issubdtype(x.dtype, np.floating) else 1)
            pad = int(0.25 * rate)
            if a.frame == "floor":
                frames = x[: len(x) // (rate // 100) * (rate // 100)].reshape(-1, rate // 100)
                power = np.sort((frames ** 2).mean(axis=1))
                level = np.sqrt(power[: max(1, len(power) // 10)].mean())
                y = np.concatenate([rng.standard_normal(pad) * level, x, rng.standard_normal(pad) * level])
            else:
                y = np.concatenate([x, np.zeros(pad)])
            wavfile.write(wav, rate, np.clip(y, -32768, 32767).astype(np.int16))
            out = subprocess.run([a.cli, "run", "-q", a.model, wav], capture_output=True, text=True, check=True).stdout
            events = [json.loads(line) for line in out.splitlines()]
            predicted = max(events, key=lambda e: e["peak"])["class"] if events else "silence"
            correct += predicted == label
    print(f"{a.frame} {100 * correct / max(1, len(rows)):.1f} %")


if __name__ == "__main__":
    sys.exit(main())
